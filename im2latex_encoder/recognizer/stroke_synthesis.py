"""New training formulas from the training ink: symbols renamed, with another writer's ink.

The stroke recognizer reads 62% of validation expressions whose formulas it has trained on
and 18% of the CROHME 2016 test formulas, which it has not: its decoder learns the training
formulas. `rename_symbols` writes formulas it has not seen from the ones it has: in each
expression, some digits, letters or Greek letters are renamed consistently (every ``x``
becomes ``k``, say), in the caption and in the ink, where each renamed symbol's strokes are
replaced by the strokes of a symbol of the new class taken from another training expression,
scaled by the two expressions' typical symbols (estimated from the ink, as a reading does)
and centred on the box of the symbol it replaces. The layout, the writer of the other
symbols and the formula's structure stay; the symbols the decoder has to read change.

A class is renamed only where the caption writes it as many times as the ink draws it (so
``\\sin`` in a caption, written as the letters s, i, n, leaves those letters alone), and the
new class appears nowhere in the expression.

Example:
>>> import numpy as np
>>> from im2latex_encoder.recognizer.stroke_data import StrokeExpressions
>>> from im2latex_encoder.symbols import CROHME_SYMBOLS
>>> x, y, plus = (CROHME_SYMBOLS.index(c) for c in ("x", "y", "+"))
>>> bar = lambda x0: np.array([[x0, 0.], [x0 + 1., 1.]])
>>> data = StrokeExpressions.from_lists(
...     [[bar(0), bar(2), bar(4)], [bar(0)]], names=["e0", "e1"], truths=["", ""],
...     stroke_labels=[[x, plus, x], [y]], stroke_groups=[[0, 1, 2], [0]])
>>> captions = {"e0": ["x", "+", "x"], "e1": ["y"]}
>>> renamed, renamed_captions = rename_symbols(data, captions, seed=0, probability=1.0)
>>> renamed.names
('e0~renamed', 'e1~renamed')
>>> renamed_captions["e0~renamed"]
['y', '+', 'y']
>>> renamed.labels(0).tolist() == [y, plus, y]
True
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from im2latex_encoder.formulas.grammar import DIGITS, GREEK, LOWER_LETTERS, UPPER_LETTERS
from im2latex_encoder.symbols import CROHME_SYMBOLS

if TYPE_CHECKING:
    from im2latex_encoder.recognizer.symbol_cutter import SymbolCutter

#: The classes a rename may swap, each only within its family.
RENAMABLE_FAMILIES: dict[str, tuple[str, ...]] = {
    "digits": DIGITS,
    "lowercase": LOWER_LETTERS,
    "uppercase": UPPER_LETTERS,
    "greek": tuple(g for g in GREEK if g[1].islower()),  # not \\Delta: a capital
}


def _symbols_of(labels: np.ndarray, groups: np.ndarray) -> dict[int, tuple[int, list[int]]]:
    """``{group: (class, [stroke positions])}`` for the labelled symbols of one expression."""
    out: dict[int, tuple[int, list[int]]] = {}
    for position, (label, group) in enumerate(zip(labels.tolist(), groups.tolist())):
        if group < 0 or label < 0:
            continue
        out.setdefault(group, (label, []))[1].append(position)
    return out


def rename_symbols(
    data,
    captions: Mapping[str, Sequence[str]],
    *,
    seed: int = 0,
    probability: float = 0.7,
    donors: Sequence[int] | None = None,
    suffix: str = "~renamed",
):
    """Expressions with some symbols renamed in caption and ink; see the module docstring.

    Args:
        data: `StrokeExpressions` with stroke labels and groups (`read_stroke_expressions`).
        captions: ``{name: tokens}`` (`read_crohme_captions`). An expression without one is
            copied unchanged.
        seed: int. The renames and the donor symbols are a function of it.
        probability: float in [0, 1]. Chance that each renamable class of an expression is
            renamed.
        donors: indices of the expressions whose symbols may be lent (the training ones:
            keep validation ink out of training). Default: all of them.
        suffix: str. Added to each renamed expression's name.

    Returns:
        ``(StrokeExpressions, {name: tokens})``, one expression per expression of `data` in
        the same order (unchanged where nothing could be renamed, and then not suffixed);
        renamed strokes carry their new class and symbol groups.

    Example:
    >>> rename_symbols.__doc__ is not None
    True
    """
    from im2latex_encoder.formulas.handwritten import reference_size
    from im2latex_encoder.recognizer.stroke_data import StrokeExpressions

    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"`probability` must be in [0, 1]. Received: {probability!r}")
    rng = np.random.default_rng(seed)
    family_of = {
        CROHME_SYMBOLS.index(c): tuple(CROHME_SYMBOLS.index(m) for m in members)
        for members in RENAMABLE_FAMILIES.values()
        for c in members
    }
    donor_index = range(len(data)) if donors is None else [int(i) for i in donors]
    pool: dict[int, list[tuple[int, list[int]]]] = defaultdict(list)
    for i in donor_index:
        for label, positions in _symbols_of(data.labels(i), data.groups(i)).values():
            if label in family_of:
                pool[label].append((i, positions))
    scales: dict[int, float] = {}

    def scale_of(i: int) -> float:
        if i not in scales:
            scales[i] = float(reference_size(data.strokes(i)))
        return scales[i]

    expressions, names, labels_out, groups_out = [], [], [], []
    new_captions: dict[str, list[str]] = {}
    for i in range(len(data)):
        name, strokes = data.names[i], data.strokes(i)
        labels, groups = data.labels(i), data.groups(i)
        caption = captions.get(name)
        symbols = _symbols_of(labels, groups)
        mapping: dict[int, int] = {}
        if caption is not None:
            drawn: dict[int, int] = defaultdict(int)
            for label, _ in symbols.values():
                drawn[label] += 1
            present = set(drawn) | {CROHME_SYMBOLS.index(t) for t in caption if t in CROHME_SYMBOLS}
            for label in sorted(drawn):
                if label not in family_of or rng.random() >= probability:
                    continue
                if caption.count(CROHME_SYMBOLS[label]) != drawn[label]:
                    continue
                choices = [
                    c
                    for c in family_of[label]
                    if c not in present and c not in mapping.values() and pool[c]
                ]
                if choices:
                    mapping[label] = int(rng.choice(choices))
        if not mapping:
            expressions.append(strokes)
            names.append(name)
            labels_out.append(labels.tolist())
            groups_out.append(groups.tolist())
            if caption is not None:
                new_captions[name] = list(caption)
            continue
        # stroke slots: each kept stroke keeps its place; a renamed symbol's donor strokes
        # take the place of its first stroke
        slots: list[list[tuple[np.ndarray, int, int]]] = [[] for _ in strokes]
        replaced = set()
        for group, (label, positions) in symbols.items():
            if label not in mapping:
                continue
            replaced.update(positions)
            donor, donor_positions = pool[mapping[label]][
                int(rng.integers(len(pool[mapping[label]])))
            ]
            donor_strokes = data.strokes(donor)
            lent = [donor_strokes[p] for p in donor_positions]
            ratio = scale_of(i) / scale_of(donor)
            target = np.concatenate([strokes[p] for p in positions])
            source = np.concatenate(lent)
            centre = (target.min(0) + target.max(0)) / 2
            source_centre = (source.min(0) + source.max(0)) / 2
            slots[positions[0]] = [
                ((s - source_centre) * ratio + centre, mapping[label], group) for s in lent
            ]
        for position, stroke in enumerate(strokes):
            if position not in replaced:
                slots[position] = [(stroke, int(labels[position]), int(groups[position]))]
        flat = [entry for slot in slots for entry in slot]
        renumber: dict[int, int] = {}
        for _, _, group in flat:
            if group >= 0 and group not in renumber:
                renumber[group] = len(renumber)
        expressions.append([stroke for stroke, _, _ in flat])
        labels_out.append([label for _, label, _ in flat])
        groups_out.append([renumber.get(group, -1) for _, _, group in flat])
        names.append(name + suffix)
        if caption is not None:
            words = {CROHME_SYMBOLS[a]: CROHME_SYMBOLS[b] for a, b in mapping.items()}
            new_captions[name + suffix] = [words.get(t, t) for t in caption]
    result = StrokeExpressions.from_lists(
        expressions,
        names=names,
        truths=[""] * len(names),
        stroke_labels=labels_out,
        stroke_groups=groups_out,
        report={"renamed": sum(n.endswith(suffix) for n in names), "seed": seed},
    )
    return result, new_captions


class ComponentDraws(Sequence):
    """Expressions drawn as formula images and read back as image tokens, drawn on access.

    The tokens `StrokeRecognizer.recognize_images` reads from a picture of the formula: one
    per connected component of ink (`image_tokens`; with `split_junctions`, its skeleton cut
    where lines meet), left to right, so a model trained on them as well as on strokes reads
    images and ink as one model. Expression ``i`` is warped by
    `augment` (a `StrokeAugment`, optional), then drawn with its typical symbol a random size
    in `symbol_sizes` pixels (`draw_expression_image`), seeded by ``(seed, i)``: the same
    index gives the same tokens, so the sequence can stand in for a list of token lists
    (`cached_stroke_features` draws nothing when its cache is valid).

    Args:
        expressions: each a list of ``(n, 2)`` strokes.
        seed: int.
        symbol_sizes: ``(low, high)`` pixels of the typical symbol.
        augment: `StrokeAugment` or None.
        split_junctions: bool. `image_tokens`' (and `component_owners`'): read the images as
            pieces cut at their junctions (True) or as whole components (False).
        symbol_cutter: `SymbolCutter` or None. `image_tokens`': cut the images where it
            predicts that two symbols meet.
        order: one of `TOKEN_ORDERS`, `image_tokens`': the tokens left to right or in a
            caption's reading of the layout.

    Example:
    >>> strokes = [np.array([[0., 0.], [0., 10.]]), np.array([[8., 0.], [8., 10.]])]
    >>> draws = ComponentDraws([strokes], seed=0)
    >>> len(draws), len(draws[0])   # two strokes that do not touch: two components
    (1, 2)
    """

    def __init__(
        self,
        expressions: Sequence[Sequence[np.ndarray]],
        *,
        seed: int = 0,
        symbol_sizes: tuple[float, float] = (20.0, 72.0),
        augment: Any = None,
        split_junctions: bool = False,
        symbol_cutter: SymbolCutter | None = None,
        order: str = "left-to-right",
    ):
        from im2latex_encoder.recognizer.stroke_components import checked_token_order

        low, high = (float(v) for v in symbol_sizes)
        if not 0 < low <= high:
            raise ValueError(
                "`symbol_sizes` must be (low, high) pixels with 0 < low <= high. Received: "
                f"{symbol_sizes!r}"
            )
        self.expressions, self.seed = expressions, int(seed)
        self.symbol_sizes, self.augment = (low, high), augment
        self.split_junctions = bool(split_junctions)
        self.symbol_cutter, self.order = symbol_cutter, checked_token_order(order)

    def __len__(self) -> int:
        return len(self.expressions)

    def __getitem__(self, index):
        from im2latex_encoder.recognizer.stroke_components import image_tokens

        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        image, _ = self._drawn(int(index))
        return image_tokens(
            image,
            split_junctions=self.split_junctions,
            symbol_cutter=self.symbol_cutter,
            order=self.order,
        )

    def stroke_owners(self, index: int) -> np.ndarray:
        """Which stroke of expression `index` drew each of its tokens (`component_owners`).

        int64 ``(tokens,)``, in the order of ``self[index]``: an index into the expression's
        strokes, or -1. Training gives each token that stroke's symbol annotation.

        Example:
        >>> strokes = [np.array([[8., 0.], [8., 10.]]), np.array([[0., 0.], [0., 10.]])]
        >>> ComponentDraws([strokes], seed=0).stroke_owners(0).tolist()
        [1, 0]
        """
        from im2latex_encoder.recognizer.stroke_components import component_owners

        return component_owners(
            *self._drawn(int(index), owners=True),
            split_junctions=self.split_junctions,
            symbol_cutter=self.symbol_cutter,
            order=self.order,
        )

    def _drawn(self, index: int, *, owners: bool = False):
        """The image of expression `index` (and its owner image, with one stroke's parts one
        owner) drawn from the same seeded warp and size on every call."""
        from im2latex_encoder.recognizer.stroke_components import draw_expression_image
        from im2latex_encoder.recognizer.stroke_tokens import normalize_expression

        rng = np.random.default_rng([self.seed, index])
        units = normalize_expression(self.expressions[index])
        if self.augment is not None:
            units = self.augment.apply(units, rng)
        strokes = [part for parts in units for part in parts]
        size = float(rng.uniform(*self.symbol_sizes))
        if not owners:
            return draw_expression_image(strokes, size), None
        image, part_owners = draw_expression_image(strokes, size, owners=True)
        stroke_of_part = np.array(
            [0] + [k + 1 for k, parts in enumerate(units) for _ in parts], np.int64
        )
        return image, stroke_of_part[part_owners]

    def describe(self) -> str:
        """The settings as text, for a cache key.

        Example:
        >>> ComponentDraws([], seed=3).describe()
        'components seed=3 symbol_sizes=(20.0, 72.0) augment=None'
        >>> ComponentDraws([], split_junctions=True).describe().endswith(" split_junctions=True")
        True
        >>> ComponentDraws([], order="layout").describe().endswith(" order=layout")
        True
        """
        return (
            f"components seed={self.seed} symbol_sizes={self.symbol_sizes} augment={self.augment!r}"
            # the defaults keep the key they had before the options existed (their caches hold)
            + (" split_junctions=True" if self.split_junctions else "")
            + ("" if self.symbol_cutter is None else f" cutter={self.symbol_cutter.fingerprint()}")
            + ("" if self.order == "left-to-right" else f" order={self.order}")
        )
