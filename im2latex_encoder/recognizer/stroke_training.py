"""Training a `StrokeRecognizer` on this machine: cached token features, equal-length batches.

The symbol classifier is frozen, so each stroke's features are computed once per draw of the
ink (a clean draw and `draws - 1` augmented ones, `cached_stroke_features`) and every epoch
reads, for each expression, one of its draws at random. Batches group expressions of equal
stroke count (nothing is padded on the encoder side, so the decoder's cross-attention needs
no mask), shuffled within and across counts by ``(seed, epoch)``: a batch is a pure function
of its epoch and index, so a resumed run sees what an uninterrupted one would.

Example:
>>> import numpy as np
>>> batches = StrokeBatches(
...     draws=[(np.zeros((5, 4), "float16"), np.zeros((5, 12), "float32"))],
...     expression_strokes=np.array([2, 3]), targets=[[5, 6], [7]],
...     stroke_labels=np.zeros(5, "int16"), stroke_groups=np.array([0, 0, 0, 1, 1]),
...     batch_size=4)
>>> x, y = batches[0]
>>> sorted(x), sorted(y)
(['features', 'geometry', 'ids'], ['joins', 'symbols', 'tokens'])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from im2latex_encoder.formulas.tokenizer import Vocabulary

if TYPE_CHECKING:
    from im2latex_encoder.recognizer.symbol_cutter import SymbolCutter


def join_targets(groups: np.ndarray, expression_strokes: np.ndarray) -> np.ndarray:
    """1 where a stroke belongs to the previous stroke's symbol, 0 where not, -1 unknown.

    The first stroke of each expression, and strokes in no symbol, are unknown.

    Example:
    >>> join_targets(np.array([0, 0, 1, -1, 0]), np.array([4, 1])).tolist()
    [-1, 1, 0, -1, -1]
    """
    groups = np.asarray(groups)
    out = np.full(len(groups), -1, np.int8)
    same = (groups[1:] == groups[:-1]) & (groups[1:] >= 0)
    known = (groups[1:] >= 0) & (groups[:-1] >= 0)
    out[1:] = np.where(known, same.astype(np.int8), -1)
    starts = np.concatenate([[0], np.cumsum(expression_strokes)[:-1]]).astype(np.int64)
    out[starts] = -1
    return out


def component_annotation(
    components: Any,
    stroke_labels: np.ndarray,
    stroke_groups: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    *,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The symbol labels and groups of a `ComponentDraws`' tokens, from their strokes'.

    Each component takes the annotation of the stroke that drew most of its ink
    (`ComponentDraws.stroke_owners`), so the auxiliary losses, the guided attention and, at
    reading time, the symbol-count prior learn image tokens as they learn strokes.

    Args:
        components: `ComponentDraws` over the expressions.
        stroke_labels, stroke_groups: ``(S,)`` annotation of all the strokes.
        starts: ``(expressions,)`` each expression's first row in the stroke arrays.
        counts: ``(expressions,)`` tokens per expression in the cached features.

    Returns:
        ``(labels, groups)``, int64 ``(counts.sum(),)``; -1 for a token no stroke drew.

    Raises:
        ValueError: where an expression's components are not the cached token count (the
            cache was drawn differently), or the lengths disagree.

    Example:
    >>> from im2latex_encoder.recognizer.stroke_synthesis import ComponentDraws
    >>> strokes = [np.array([[8., 0.], [8., 10.]]), np.array([[0., 0.], [0., 10.]])]
    >>> labels, groups = component_annotation(ComponentDraws([strokes]), np.array([3, 5]),
    ...                                       np.array([0, 1]), np.array([0]), np.array([2]))
    >>> labels.tolist(), groups.tolist()
    ([5, 3], [1, 0])
    """
    starts, counts = np.asarray(starts, np.int64), np.asarray(counts, np.int64)
    if not len(components) == len(starts) == len(counts):
        raise ValueError(
            "`components`, `starts` and `counts` must have one entry per expression. "
            f"Received: {len(components)}, {len(starts)} and {len(counts)}"
        )
    indices: Any = range(len(components))
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc="component labels", unit="expression")
    labels, groups = [], []
    for index in indices:
        owners = components.stroke_owners(index)
        if len(owners) != counts[index]:
            raise ValueError(
                f"Expression {index} draws {len(owners)} components but its cached features "
                f"have {counts[index]} tokens: delete the component feature cache"
            )
        rows = np.where(owners >= 0, starts[index] + owners, -1)
        labels.append(np.where(rows >= 0, np.asarray(stroke_labels)[rows], -1))
        groups.append(np.where(rows >= 0, np.asarray(stroke_groups)[rows], -1))
    if not labels:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(labels).astype(np.int64), np.concatenate(groups).astype(np.int64)


#: Caption tokens written as an ink symbol of another name (the fraction bar is a ``-``).
TOKEN_SYMBOLS = {",": "COMMA", "<": "\\lt", ">": "\\gt", "'": "\\prime", "\\frac": "-"}


def token_symbol_classes(tokens: Sequence[str], labels: Sequence[str] | None = None) -> np.ndarray:
    """For each vocabulary token, the symbol class its ink is (-1: none, as ``^``).

    Args:
        tokens: the vocabulary's tokens.
        labels: the symbol classes, in the classifier's order (default: CROHME's 101).

    Example:
    >>> from im2latex_encoder.symbols import CROHME_SYMBOLS
    >>> classes = token_symbol_classes(["x", "^", "\\\\frac", ","])
    >>> [CROHME_SYMBOLS[c] if c >= 0 else None for c in classes]
    ['x', None, '-', 'COMMA']
    """
    from im2latex_encoder.symbols import CROHME_SYMBOLS

    index = {name: i for i, name in enumerate(CROHME_SYMBOLS if labels is None else labels)}
    return np.array([index.get(TOKEN_SYMBOLS.get(t, t), -1) for t in tokens], np.int64)


def align_symbols(
    target: Sequence[int], token_classes: np.ndarray, labels: np.ndarray, groups: np.ndarray
) -> np.ndarray:
    """Which ink symbol (stroke group) each caption token writes, or -1.

    Each token that is a symbol takes the first symbol of its class, in writing order, that
    no earlier token took: captions and handwriting both run mostly left to right. Tokens of
    structure (``^``, ``{``) and tokens with no such symbol left get -1.

    Args:
        target: token ids of the caption.
        token_classes: `token_symbol_classes` of the vocabulary.
        labels, groups: the expression's stroke labels and symbol groups.

    Example:
    >>> classes = np.array([-1, 7, 9])          # ids 1 and 2 are symbols of classes 7 and 9
    >>> align_symbols([1, 0, 2, 1], classes, np.array([7, 9, 9, 7]),
    ...               np.array([0, 1, 1, 2])).tolist()
    [0, -1, 1, 2]
    """
    symbols: list[tuple[int, int]] = []  # (class, group) in order of first stroke
    seen = set()
    for label, group in zip(np.asarray(labels).tolist(), np.asarray(groups).tolist()):
        if group >= 0 and label >= 0 and group not in seen:
            seen.add(group)
            symbols.append((label, group))
    taken = [False] * len(symbols)
    out = np.full(len(target), -1, np.int64)
    for position, token in enumerate(target):
        wanted = token_classes[token] if 0 <= token < len(token_classes) else -1
        if wanted < 0:
            continue
        for k, (label, group) in enumerate(symbols):
            if not taken[k] and label == wanted:
                taken[k] = True
                out[position] = group
                break
    return out


class StrokeBatches(keras.utils.PyDataset):
    """Teacher-forcing batches of stroke tokens, one draw per expression per epoch.

    Each epoch reads every expression once, in one of its versions picked at random: one of
    the `draws` of its own ink, or one of the draws of a `variants` version (the expression
    rewritten, `rename_symbols`: other strokes, another caption). Each (version, draw) pair
    is equally likely.

    Args:
        draws: list of ``(features (S, F), geometry (S, 12))``, each covering every stroke of
            the expressions in order; draw 0 is the clean one.
        expression_strokes: int ``(N,)``. Strokes per expression.
        targets: N lists of token ids, without `<start>`/`<end>` (added here).
        stroke_labels, stroke_groups: ``(S,)`` annotation for the auxiliary losses.
        batch_size: int. Most expressions per batch.
        seed: int.
        shuffle: bool. False: a fixed order and the clean draw of the expressions' own ink
            (validation).
        variants: other versions of the same N expressions, in the same order, each a dict
            with the keys ``draws``, ``expression_strokes``, ``targets``, ``stroke_labels``,
            ``stroke_groups`` as above; a None target means that expression has no such
            version.
        token_classes: `token_symbol_classes` of the vocabulary, for the guided attention:
            ``y["guide"]`` ``(batch, T, strokes)`` marks, for each next token, the strokes of
            the symbol it writes (`align_symbols`). None: no guide.

    Example:
    >>> len(StrokeBatches([(np.zeros((1, 2)), np.zeros((1, 12)))], np.array([1]), [[4]],
    ...                   np.zeros(1), np.zeros(1)))
    1
    """

    def __init__(
        self,
        draws: Sequence[tuple[np.ndarray, np.ndarray]],
        expression_strokes: np.ndarray,
        targets: Sequence[Sequence[int]],
        stroke_labels: np.ndarray,
        stroke_groups: np.ndarray,
        *,
        batch_size: int = 32,
        seed: int = 0,
        shuffle: bool = True,
        start_id: int = Vocabulary.START_ID if hasattr(Vocabulary, "START_ID") else 1,
        end_id: int = 2,
        variants: Sequence[dict] = (),
        token_classes: np.ndarray | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.versions = [
            self._version(draws, expression_strokes, targets, stroke_labels, stroke_groups)
        ]
        count = len(self.versions[0]["targets"])
        for number, variant in enumerate(variants):
            version = self._version(
                variant["draws"],
                variant["expression_strokes"],
                variant["targets"],
                variant["stroke_labels"],
                variant["stroke_groups"],
            )
            if len(version["targets"]) != count:
                raise ValueError(
                    f"Each variant must cover the same {count} expressions. Received: variant "
                    f"{number} with {len(version['targets'])}"
                )
            self.versions.append(version)
        # every (version, draw) an expression may be read as
        self.choices = [
            (v, d) for v, version in enumerate(self.versions) for d in range(len(version["draws"]))
        ]
        self.available = np.array(
            [
                [self.versions[v]["targets"][i] is not None for v, _ in self.choices]
                for i in range(count)
            ],
            bool,
        ).reshape(count, len(self.choices))
        if count and not self.available[:, 0].all():
            raise ValueError(
                "Every expression needs a target in `targets` (the variants may lack one)"
            )
        self.batch_size, self.seed, self.shuffle = int(batch_size), int(seed), shuffle
        self.start_id, self.end_id = start_id, end_id
        self.token_classes = None if token_classes is None else np.asarray(token_classes)
        self._guides: dict[tuple[int, int], np.ndarray] = {}  # (version, expression) -> guide
        self.epoch = 0
        self._plan = self._make_plan(0)

    @staticmethod
    def _version(draws, expression_strokes, targets, stroke_labels, stroke_groups) -> dict:
        counts = np.asarray(expression_strokes, np.int64)
        return {
            "groups": np.asarray(stroke_groups, np.int64),
            "draws": list(draws),
            "counts": counts,
            "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            "targets": [None if t is None else list(t) for t in targets],
            "labels": np.asarray(stroke_labels, np.int64),
            "joins": join_targets(stroke_groups, counts),
        }

    @property
    def counts(self) -> np.ndarray:
        """Strokes per expression in its own ink (version 0)."""
        return self.versions[0]["counts"]

    def _make_plan(self, epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng([self.seed, epoch])
        count = len(self.available)
        if self.shuffle:
            # a uniform pick among each expression's available (version, draw) pairs
            keys = rng.random(self.available.shape) + np.where(self.available, 0.0, -2.0)
            picks = keys.argmax(axis=1)
        else:
            picks = np.zeros(count, np.int64)
        strokes = np.array(
            [self.versions[self.choices[p][0]]["counts"][i] for i, p in enumerate(picks)], np.int64
        )
        plan = []
        for length in np.unique(strokes):
            members = np.flatnonzero(strokes == length)
            if self.shuffle:
                members = rng.permutation(members)
            plan += [
                (members[i : i + self.batch_size], picks[members[i : i + self.batch_size]])
                for i in range(0, len(members), self.batch_size)
            ]
        if self.shuffle:
            plan = [plan[i] for i in rng.permutation(len(plan))]
        return self._first_two_differ(plan)

    def _first_two_differ(self, plan: list) -> list:
        """The plan with a batch unlike the first moved second, where one exists.

        Keras fixes a `PyDataset`'s input shapes from its first two batches: a dimension they
        share (rows, strokes or caption length) is fixed for the whole fit, and a later batch
        that differs there stops training. So the second batch differs from the first in all
        three, when the plan holds such a batch (most do; otherwise it is left as it is).
        """

        def shape(batch) -> tuple[int, int, int]:
            members, picks = batch
            number = self.choices[picks[0]][0]
            version = self.versions[number]
            strokes = int(version["counts"][members[0]])
            longest = max(
                len(self.versions[self.choices[p][0]]["targets"][m]) for m, p in zip(members, picks)
            )
            return len(members), strokes, longest

        if len(plan) < 2:
            return plan
        first = shape(plan[0])
        for index in range(1, len(plan)):
            if all(a != b for a, b in zip(first, shape(plan[index]))):
                plan[1], plan[index] = plan[index], plan[1]  # the plan is this call's own list
                return plan
        return plan

    def set_epoch(self, epoch: int) -> None:
        """Use epoch `epoch`'s batch plan (a resumed run calls it with its first epoch).

        Example:
        >>> StrokeBatches.set_epoch.__doc__ is not None
        True
        """
        self.epoch = int(epoch)
        self._plan = self._make_plan(self.epoch)

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)

    def __len__(self) -> int:
        return len(self._plan)

    def _guide(self, number: int, member: int) -> np.ndarray:
        """Expression `member`'s guide in version `number`: (target tokens, strokes), bool.

        A pure function of the two, so it is aligned once and kept for the later epochs.
        """
        key = (number, member)
        if key not in self._guides and self.token_classes is not None:
            version = self.versions[number]
            a, b = version["offsets"][member], version["offsets"][member + 1]
            groups = version["groups"][a:b]
            symbol_of = align_symbols(
                version["targets"][member], self.token_classes, version["labels"][a:b], groups
            )
            self._guides[key] = (symbol_of[:, None] >= 0) & (groups[None, :] == symbol_of[:, None])
        return self._guides[key]

    def __getitem__(self, index: int):
        members, picks = self._plan[index]
        features, geometry, labels, joins, sequences, guides = [], [], [], [], [], []
        for member, pick in zip(members, picks):
            number, draw = self.choices[pick]
            version = self.versions[number]
            a, b = version["offsets"][member], version["offsets"][member + 1]
            features.append(version["draws"][draw][0][a:b])
            geometry.append(version["draws"][draw][1][a:b])
            labels.append(version["labels"][a:b])
            joins.append(version["joins"][a:b])
            sequences.append([self.start_id, *version["targets"][member], self.end_id])
            if self.token_classes is not None:
                guides.append(self._guide(number, int(member)))
        length = max(len(s) for s in sequences)
        ids = np.zeros((len(members), length), np.int32)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = sequence
        x = {
            "features": np.stack(features).astype(np.float32),
            "geometry": np.stack(geometry).astype(np.float32),
            "ids": ids[:, :-1],
        }
        y: dict[str, np.ndarray] = {
            "tokens": ids[:, 1:],
            "symbols": np.stack(labels).astype(np.int32),
            "joins": np.stack(joins).astype(np.int32),
        }
        if self.token_classes is not None:
            guide = np.zeros((len(members), length - 1, len(features[0])), np.float32)
            for row, rows in enumerate(guides):
                guide[row, : len(rows)] = rows
            y["guide"] = guide
        return x, y


def expression_formulas(data, caption_map: dict | None) -> list:
    """Each expression's formula as caption tokens, or None where it has none.

    From `caption_map` (`read_crohme_captions`: file name to tokens) when given, else from
    each file's own truth (`normalize_crohme_truth`). `train_strokes` and
    `train-symbol-cutter` split the validation formulas from these (`split_by_formula`), so
    the two hold out the same expressions.

    Example:
    >>> from types import SimpleNamespace
    >>> data = SimpleNamespace(names=["a", "b"], truths=["$x^2$", None])
    >>> expression_formulas(data, None)
    [['x', '^', '{', '2', '}'], None]
    >>> expression_formulas(data, {"b": ["y"]})
    [None, ['y']]
    """
    from im2latex_encoder.formulas.crohme_truth import normalize_crohme_truth

    if caption_map:
        return [caption_map.get(name) for name in data.names]
    return [normalize_crohme_truth(t) if t else None for t in data.truths]


def split_by_expression(names: Sequence[str], fraction: float, seed: int) -> np.ndarray:
    """Held-out mask over expressions: a name is held when its seeded hash is under `fraction`.

    Example:
    >>> split_by_expression([f"e{i}" for i in range(1000)], 0.1, 0).mean().round(2)
    np.float64(0.1)
    """
    import hashlib

    def unit(name: str) -> float:
        digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8]
        return int.from_bytes(digest, "big") / 2.0**64

    return np.array([unit(name) < fraction for name in names], bool)


def split_by_formula(
    captions: Sequence[Sequence[str] | None], fraction: float, seed: int
) -> np.ndarray:
    """Held-out mask over expressions, by formula: every expression of a held formula is held.

    CROHME's writers copied the same formulas, so a split by expression validates mostly on
    formulas the model trained on; this one measures formulas it has not seen, as a test set
    does. A formula is held when its seeded hash is under `fraction`; expressions without a
    caption (None) are never held.

    Example:
    >>> held = split_by_formula([["x"], ["x"], ["y"], None], 0.5, 3)
    >>> bool(held[0] == held[1]), bool(held[3])
    (True, False)
    """
    return np.array(
        [
            caption is not None
            and bool(split_by_expression([" ".join(caption)], fraction, seed)[0])
            for caption in captions
        ],
        bool,
    )


def token_targets(
    data, vocabulary: Vocabulary, captions: dict | None, max_length: int
) -> tuple[list, dict]:
    """Each expression's target ids (or None) and ``{name: why none}``.

    With `captions` (stem → tokens) the caption, else the normalised ``truth``; a target longer
    than the decoder's `max_length` (with `<start>`) is left out and reported.

    Example:
    >>> token_targets.__doc__ is not None
    True
    """
    from im2latex_encoder.formulas.crohme_truth import normalize_crohme_truth

    targets: list = []
    skipped: dict = {}
    for name, truth in zip(data.names, data.truths):
        tokens: list | None
        if captions is not None:
            tokens, reason = captions.get(name), "no caption"
        else:
            tokens, reason = (normalize_crohme_truth(truth) if truth else None), "no truth"
        if tokens and len(tokens) + 1 > max_length:
            reason = f"longer than max_length ({len(tokens)} tokens)"
            tokens = None
        if not tokens:
            skipped[name] = reason
            targets.append(None)
            continue
        targets.append(vocabulary.encode(tokens, add_start_end=False))
    return targets, skipped


def score_expressions(model, data, targets, *, beam_width: int = 1, tokens=None) -> dict:
    """ExpRate (exact, ≤ 1 and ≤ 2 token errors) of `model` on `data` against token ids.

    Expressions without a target are left out (``n`` counts the scored ones); reading speed
    is reported as ``formulas_per_second`` (features included unless `tokens` are given).

    Example:
    >>> score_expressions.__doc__ is not None
    True
    """
    import time

    from im2latex_encoder.recognizer.metrics import expression_rates
    from im2latex_encoder.recognizer.stroke_features import expression_tokens

    keep = [i for i, t in enumerate(targets) if t is not None]
    started = time.perf_counter()
    if tokens is None:
        features, geometry = expression_tokens(
            model.featurizer, [data.strokes(i) for i in keep], chunk=256
        )
        bounds = np.cumsum([0, *[data.stroke_count(i) for i in keep]])
        tokens = [
            {"features": features[a:b].astype(np.float32), "geometry": geometry[a:b]}
            for a, b in zip(bounds[:-1], bounds[1:])
        ]
    else:
        tokens = [tokens[i] for i in keep]
    ids = model.recognize_token_ids(tokens, beam_width=beam_width)
    seconds = time.perf_counter() - started
    rates = expression_rates([targets[i] for i in keep], ids)
    rates.update(
        decoding="greedy" if beam_width == 1 else f"beam-{beam_width}",
        formulas_per_second=len(keep) / seconds if seconds else 0.0,
        skipped=len(targets) - len(keep),
    )
    return rates


def _data_hash(data) -> str:
    import hashlib

    digest = hashlib.sha256()
    for array in (data.points, data.stroke_sizes, data.expression_strokes):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update("\n".join(data.names).encode())
    return digest.hexdigest()[:16]


def _index_hash(indices) -> str:
    import hashlib

    return hashlib.sha256(np.asarray(indices, np.int64).tobytes()).hexdigest()[:16]


def train_strokes(
    folders,
    out,
    *,
    captions=None,
    dictionary=None,
    preset: str | None = "crohme101",
    draws: int = 3,
    renamed_draws: int = 3,
    component_draws: int = 2,
    layout_draws: int = 0,
    label_components: bool = True,
    split_junctions: bool = False,
    component_order: str = "left-to-right",
    writing_order: bool = True,
    symbol_cutter: SymbolCutter | None = None,
    init_from: str | None = None,
    epochs: int = 60,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    hidden_dim: int = 128,
    encoder_layers: int = 3,
    decoder_layers: int = 3,
    num_heads: int = 4,
    intermediate_dim: int = 192,
    dropout: float = 0.1,
    max_length: int = 128,
    auxiliary_weight: float = 0.5,
    attention_weight: float = 0.5,
    views: Sequence[str] = ("alone", "previous", "next"),
    validation_fraction: float = 0.05,
    validation_split: str = "formula",
    validation_seed: int | None = None,
    eval_folders: Sequence = (),
    beam: int | None = None,
    max_train: int | None = None,
    seed: int = 0,
    members: int = 1,
    cache_dir=None,
    progress: bool = True,
    command: str = "",
) -> dict:
    """Train a `StrokeRecognizer` on CROHME ink: resumable, scored, saved as a preset.

    The recipe that learns on a 2-core CPU: the symbol classifier of `preset` (frozen)
    featurizes every stroke once per draw (`draws` draws: a clean one and augmented ones,
    cached under `cache_dir`) and once per renamed draw (`renamed_draws` augmented draws of
    the expressions with some symbols renamed, `rename_symbols`: formulas the decoder has not
    seen, from the training ink) and once per component draw (`component_draws` draws of the
    expressions as formula images read back by their connected components, as
    `recognize_images` reads a picture: cut where their lines meet, or whole with
    ``split_junctions=False``, `image_tokens`; typical symbol 20-72 px; with
    `label_components`, each token carries the annotation of the stroke that drew most of it,
    `component_annotation`, so the auxiliary losses read image tokens too; in
    `component_order`, `image_tokens`' ``order``, which the model records as its
    `image_order`; cut where `symbol_cutter` says symbols touch, if one is given) and once
    per layout draw (`layout_draws` draws of the training ink with each expression's strokes
    in an image's layout order, `stroke_layout_order`: the first clean, the others
    augmented), then the token encoder and the decoder train on the cached features with the
    auxiliary stroke losses, AdamW with a warm-up and cosine decay. Every epoch is
    checkpointed atomically (`RunCheckpoint`): run the same call again after a crash to
    resume. Validation holds out `validation_fraction` of the formulas
    (``validation_split="formula"``: what the model reads there it has not trained on, as on
    a test set) or of the expressions (``"expression"``), chosen by `validation_seed` (None:
    `seed`, which also seeds the weights and the batches). ``preset=None`` trains the same
    recipe on an untrained classifier (the from-scratch baseline the pretrained one is
    measured against).

    ``writing_order=False`` trains a recognizer that reads each expression's tokens as a set
    (`StrokeRecognizer`'s ``writing_order``: no positions, no pen travel; `views` then need
    no order, such as ``("alone", "window")``), as an image's tokens come.

    With `init_from` (a stroke recognizer's preset, such as ``"crohme-formulas"``), training
    starts from its trained weights instead: member ``m`` from its member ``m``, with its
    featurizer, vocabulary and shape (`preset`, `dictionary` and the width arguments are not
    used): a fine-tune, at the `learning_rate` given (a tenth of a fresh training's, say).

    With ``members > 1``, that many recognizers train one after another on the same features
    and validation split, member ``m`` seeded ``seed + m`` (its weights and batch order), and
    are joined into one that reads as all of them (`StrokeRecognizer.from_members`: each
    decoding step averages their log-probabilities), its weights stored as float16. Each
    member is checkpointed on its own (``checkpoint-m/``, ``history-m.csv``,
    ``curves-m.png``), so a resumed run skips the members already trained.

    The run folder gets ``checkpoint/``, ``history.csv``, ``curves.png``, ``metrics.json`` and
    the trained preset ``recognizer/``.

    Returns:
        ``{"metrics": {...}, "history": [...], "seconds": {...}}``.

    Example:
    >>> train_strokes("../shared/data/crohme/train", "runs/strokes",
    ...               captions="../shared/data/crohme/train_caption.txt")  # doctest: +SKIP
    """
    import json
    import os
    import time
    from pathlib import Path

    from im2latex_encoder._atomic import atomic_write_text
    from im2latex_encoder.classifier import SymbolClassifier
    from im2latex_encoder.encoder import SymbolEncoder
    from im2latex_encoder.formulas.crohme_truth import read_crohme_captions
    from im2latex_encoder.recognizer.stroke_components import (
        checked_token_order,
        stroke_layout_order,
    )
    from im2latex_encoder.recognizer.stroke_data import StrokeExpressions, read_stroke_expressions
    from im2latex_encoder.recognizer.stroke_features import StrokeAugment, cached_stroke_features
    from im2latex_encoder.recognizer.stroke_recognizer import StrokeRecognizer
    from im2latex_encoder.recognizer.stroke_synthesis import ComponentDraws, rename_symbols
    from im2latex_encoder.recognizer.stroke_tokens import StrokeDrawing, check_views_need_no_order
    from im2latex_encoder.recognizer.vocabulary import crohme_vocabulary
    from im2latex_encoder.training.checkpoint import RunCheckpoint

    if not isinstance(members, int) or isinstance(members, bool) or members < 1:
        raise ValueError(f"`members` must be a positive int. Received: members={members!r}")
    if not isinstance(draws, int) or draws < 1:
        raise ValueError(f"`draws` must be a positive int. Received: draws={draws!r}")
    if not isinstance(renamed_draws, int) or renamed_draws < 0:
        raise ValueError(
            f"`renamed_draws` must be an int >= 0. Received: renamed_draws={renamed_draws!r}"
        )
    if not isinstance(component_draws, int) or component_draws < 0:
        raise ValueError(
            f"`component_draws` must be an int >= 0. Received: component_draws={component_draws!r}"
        )
    if not isinstance(layout_draws, int) or isinstance(layout_draws, bool) or layout_draws < 0:
        raise ValueError(
            f"`layout_draws` must be an int >= 0. Received: layout_draws={layout_draws!r}"
        )
    if not attention_weight >= 0:
        raise ValueError(
            f"`attention_weight` must be >= 0. Received: attention_weight={attention_weight!r}"
        )
    if validation_seed is not None and (
        not isinstance(validation_seed, int) or isinstance(validation_seed, bool)
    ):
        raise ValueError(
            "`validation_seed` must be an int or None. Received: "
            f"validation_seed={validation_seed!r}"
        )
    checked_token_order(component_order)
    if not writing_order:  # refused before the data is read
        check_views_need_no_order(views)
    if validation_split not in ("formula", "expression"):
        raise ValueError(
            "`validation_split` must be 'formula' or 'expression'. Received: "
            f"validation_split={validation_split!r}"
        )
    start = None  # the trained recognizer a fine-tune starts from
    if init_from is not None:
        start = StrokeRecognizer.from_preset(init_from)
        if members > start.members:
            raise ValueError(
                f"`init_from` {init_from!r} has {start.members} member(s), one to start each "
                f"member from. Received: members={members!r}"
            )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir is not None else out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    started = time.perf_counter()

    data_file = cache / "train-strokes.npz"
    data = None
    if data_file.is_file():
        try:
            data = StrokeExpressions.load(data_file)
        except (OSError, ValueError):
            data = None
    if data is None:
        data = read_stroke_expressions(folders, progress=progress)
        data.save(data_file)
    caption_map = read_crohme_captions(captions) if captions else None
    formulas = expression_formulas(data, caption_map)
    if start is not None:
        vocabulary = start.vocabulary
    elif dictionary:
        vocabulary = crohme_vocabulary(dictionary)
    else:
        vocabulary = Vocabulary(sorted({t for tokens in formulas if tokens for t in tokens}))
    targets, skipped = token_targets(data, vocabulary, caption_map, max_length)
    if validation_seed is None:
        validation_seed = seed
    if validation_split == "formula":
        held = split_by_formula(formulas, validation_fraction, validation_seed)
    else:
        held = split_by_expression(data.names, validation_fraction, validation_seed)
    train_index = [i for i in range(len(data)) if targets[i] is not None and not held[i]]
    validation_index = [i for i in range(len(data)) if targets[i] is not None and held[i]]
    if max_train is not None:
        train_index = train_index[:max_train]

    widths: dict[str, Any] = {
        "drawing": StrokeDrawing(views=tuple(views)),
        "hidden_dim": hidden_dim,
        "encoder_layers": encoder_layers,
        "decoder_layers": decoder_layers,
        "num_heads": num_heads,
        "intermediate_dim": intermediate_dim,
        "max_length": max_length,
        "dropout": dropout,
        "split_junctions": split_junctions,
        "image_order": component_order,
        "writing_order": writing_order,
        "auxiliary_weights": {
            "symbols": auxiliary_weight,
            "joins": auxiliary_weight,
            "attention": attention_weight,
        },
    }

    def new_model(member_seed: int, first: StrokeRecognizer | None = None) -> StrokeRecognizer:
        keras.utils.set_random_seed(member_seed)
        if start is not None:  # a fine-tune: member m of the trained recognizer, copied
            member = start.member(member_seed - seed)
            member.split_junctions, member.image_order = split_junctions, component_order
            return member
        if preset:  # every member's featurizer the same preset's
            return StrokeRecognizer.from_symbol_classifier(
                SymbolClassifier.from_preset(preset), vocabulary, **widths
            )
        if first is not None:  # the untrained featurizer the features were computed with
            return StrokeRecognizer(first.encoder, first.symbol_head, vocabulary, **widths)
        # the from-scratch baseline: an untrained encoder and head, frozen as well
        return StrokeRecognizer(SymbolEncoder(), None, vocabulary, **widths)

    model = new_model(seed)

    expressions = [data.strokes(i) for i in range(len(data))]
    data_hash = _data_hash(data)
    feature_draws = []
    for draw in range(draws):
        feature_draws.append(
            cached_stroke_features(
                cache / f"stroke-features-{draw}.npz",
                model.featurizer,
                expressions,
                data_hash=data_hash,
                augment=None if draw == 0 else StrokeAugment(),
                seed=draw,
                progress=progress,
            )
        )
    offsets = np.concatenate([[0], np.cumsum(data.expression_strokes)]).astype(np.int64)

    def rows_of(indices, bounds=offsets):
        return np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in indices])

    # Renamed draws: new formulas from the training ink (donors: training expressions only,
    # and a renamed formula that is a held-out one is not trained on).
    held_formulas = {" ".join(f) for f, h in zip(formulas, held) if h and f}
    named = {name: f for name, f in zip(data.names, formulas) if f}
    donors = [i for i in range(len(data)) if not held[i] and formulas[i]]
    variants = []
    for number in range(1, renamed_draws + 1):
        renamed, renamed_captions = rename_symbols(data, named, seed=number, donors=donors)
        renamed_features = cached_stroke_features(
            cache / f"renamed-features-{number}.npz",
            model.featurizer,
            [renamed.strokes(i) for i in range(len(renamed))],
            data_hash=_data_hash(renamed),
            augment=StrokeAugment(),
            seed=100 + number,
            progress=progress,
        )
        renamed_bounds = np.concatenate([[0], np.cumsum(renamed.expression_strokes)])
        renamed_rows = rows_of(train_index, renamed_bounds.astype(np.int64))
        renamed_targets = []
        for i in train_index:
            tokens = renamed_captions.get(renamed.names[i])
            keep = tokens and " ".join(tokens) not in held_formulas
            keep = keep and len(tokens) + 1 <= max_length and all(t in vocabulary for t in tokens)
            renamed_targets.append(vocabulary.encode(tokens, add_start_end=False) if keep else None)
        variants.append(
            {
                "draws": [(renamed_features[0][renamed_rows], renamed_features[1][renamed_rows])],
                "expression_strokes": renamed.expression_strokes[train_index],
                "targets": renamed_targets,
                "stroke_labels": renamed.stroke_labels[renamed_rows],
                "stroke_groups": renamed.stroke_groups[renamed_rows],
            }
        )
    # Layout draws: the training ink with its strokes in the order an image's tokens come in
    # (`stroke_layout_order`), for a model to read without the writer's order (measured: it
    # does not pay; docs/formulas.md).
    if layout_draws:  # each expression's order, and its strokes' rows in that order, once
        layout_orders = [
            np.asarray(stroke_layout_order(expressions[i]), np.int64) for i in train_index
        ]
        layout_expressions = [
            [expressions[i][k] for k in o] for i, o in zip(train_index, layout_orders)
        ]
        layout_rows = np.concatenate(
            [offsets[i] + o for i, o in zip(train_index, layout_orders)]
        ).astype(np.int64)
    for number in range(1, layout_draws + 1):
        layout_features = cached_stroke_features(
            cache / f"layout-features-{number}.npz",
            model.featurizer,
            layout_expressions,
            # the rows in their order: a change to the ordering rule redraws the cache
            data_hash=f"{data_hash} train {_index_hash(train_index)} layout "
            f"{_index_hash(layout_rows)}",
            augment=None if number == 1 else StrokeAugment(),
            seed=200 + number,
            progress=progress,
        )
        variants.append(
            {
                "draws": [layout_features[:2]],
                "expression_strokes": data.expression_strokes[train_index],
                "targets": [targets[i] for i in train_index],
                "stroke_labels": data.stroke_labels[layout_rows],
                "stroke_groups": data.stroke_groups[layout_rows],
            }
        )
    # Component draws: the training ink as images, read back by their components (with
    # `label_components`, each with the annotation of the stroke that drew most of its ink).
    train_expressions = [expressions[i] for i in train_index]
    for number in range(1, component_draws + 1):
        components = ComponentDraws(
            train_expressions,
            seed=number,
            augment=StrokeAugment(),
            split_junctions=split_junctions,
            symbol_cutter=symbol_cutter,
            order=component_order,
        )
        component_features = cached_stroke_features(
            cache / f"component-features-{number}.npz",
            model.featurizer,
            components,
            data_hash=f"{data_hash} train {_index_hash(train_index)} {components.describe()}",
            progress=progress,
            with_counts=True,
        )
        counts = np.asarray(component_features[2], np.int64)
        if label_components:
            component_labels, component_groups = component_annotation(
                components,
                data.stroke_labels,
                data.stroke_groups,
                offsets[train_index],
                counts,
                progress=progress,
            )
        else:  # unannotated: the auxiliary losses and the guided attention skip these tokens
            component_labels = component_groups = np.full(int(counts.sum()), -1, np.int64)
        variants.append(
            {
                "draws": [component_features[:2]],
                "expression_strokes": counts,
                "targets": [targets[i] for i in train_index],
                "stroke_labels": component_labels,
                "stroke_groups": component_groups,
            }
        )
    feature_seconds = time.perf_counter() - started

    train_rows = rows_of(train_index)
    token_classes = token_symbol_classes(vocabulary.tokens) if attention_weight > 0 else None
    # What every member's batches read, gathered once.
    train_draws = [
        (features[train_rows], geometry[train_rows]) for features, geometry in feature_draws
    ]
    train_strokes = data.expression_strokes[train_index]
    train_targets = [targets[i] for i in train_index]
    train_labels, train_groups = data.stroke_labels[train_rows], data.stroke_groups[train_rows]
    validation_rows = rows_of(validation_index) if validation_index else train_rows[:0]
    validation_batches = (
        StrokeBatches(
            [(feature_draws[0][0][validation_rows], feature_draws[0][1][validation_rows])],
            data.expression_strokes[validation_index],
            [targets[i] for i in validation_index],
            data.stroke_labels[validation_rows],
            data.stroke_groups[validation_rows],
            batch_size=batch_size,
            shuffle=False,
            token_classes=token_classes,
        )
        if validation_index
        else None
    )
    # Each member trains alone, as a run of its own seed would (`seed + member`: its weights
    # and batch order), on the same features and validation split; several are then joined
    # into one recognizer that averages them (`StrokeRecognizer.from_members`).
    trained: list[StrokeRecognizer] = []
    histories: list[list] = []
    epochs_run = 0
    fit_started = time.perf_counter()
    for member in range(members):
        member_seed = seed + member
        if member > 0:
            model = new_model(member_seed, trained[0])
        batches = StrokeBatches(
            train_draws,
            train_strokes,
            train_targets,
            train_labels,
            train_groups,
            batch_size=batch_size,
            seed=member_seed,
            variants=variants,
            token_classes=token_classes,
        )
        steps = len(batches) * epochs
        warmup = min(500, max(1, steps // 10))
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0,
            max(1, steps - warmup),
            alpha=0.02,
            warmup_target=learning_rate,
            warmup_steps=warmup,
        )
        model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01, clipnorm=1.0))
        suffix = "" if members == 1 else f"-{member}"
        checkpoint = RunCheckpoint(
            out / f"checkpoint{suffix}", history_csv=out / f"history{suffix}.csv"
        )
        x, _ = batches[0]
        model({key: value[:1] for key, value in x.items()})
        initial_epoch = checkpoint.restore(model)
        batches.set_epoch(initial_epoch)
        if initial_epoch < epochs:
            if members > 1:
                print(f"member {member + 1} of {members} (seed {member_seed})", flush=True)
            model.fit(
                batches,
                epochs=epochs,
                initial_epoch=initial_epoch,
                validation_data=validation_batches,
                callbacks=[checkpoint],
                verbose=1 if progress else 2,
                shuffle=False,  # StrokeBatches regroups every epoch itself (seeded, resumable)
            )
        epochs_run += epochs - initial_epoch
        trained.append(model)
        histories.append(checkpoint.history)
    training_seconds = time.perf_counter() - fit_started
    model = trained[0] if members == 1 else StrokeRecognizer.from_members(trained)

    clean_features, clean_geometry = feature_draws[0]

    def clean_tokens(indices):
        return [
            {
                "features": clean_features[offsets[i] : offsets[i + 1]].astype(np.float32),
                "geometry": clean_geometry[offsets[i] : offsets[i + 1]],
            }
            for i in indices
        ]

    beams = [1] + ([beam] if beam and beam > 1 else [])
    metrics: dict = {"validation": {}}
    validation_targets = [targets[i] for i in validation_index]
    for width in beams:
        metrics["validation"]["greedy" if width == 1 else f"beam{width}"] = score_expressions(
            model, None, validation_targets, beam_width=width, tokens=clean_tokens(validation_index)
        )
    for folder in eval_folders:
        test = read_stroke_expressions(folder, progress=progress)
        test_targets, _ = token_targets(test, vocabulary, None, 10**6)
        scores = {}
        for width in beams:
            scores["greedy" if width == 1 else f"beam{width}"] = score_expressions(
                model, test, test_targets, beam_width=width
            )
        metrics[Path(os.fspath(folder)).name] = scores
    if members > 1:  # each member alone, greedy, beside the ensemble
        metrics["validation_members"] = {
            f"member {m} (seed {seed + m}), greedy": score_expressions(
                alone, None, validation_targets, tokens=clean_tokens(validation_index)
            )
            for m, alone in enumerate(trained)
        }
    history = histories[0]
    seconds = {
        "features": feature_seconds,
        "training": training_seconds,
        "per_epoch": training_seconds / max(1, epochs_run),
        "total": time.perf_counter() - started,
    }
    record = {
        "command": command,
        # the classifier the features came from: a fine-tune's is the one it starts from
        "preset": preset if start is None else init_from,
        "draws": draws,
        "renamed_draws": renamed_draws,
        "attention_weight": attention_weight,
        "component_draws": component_draws,
        "layout_draws": layout_draws,
        "label_components": label_components,
        "split_junctions": split_junctions,
        "component_order": component_order,
        "writing_order": writing_order,
        "symbol_cutter": None
        if symbol_cutter is None
        else {"fingerprint": symbol_cutter.fingerprint(), "threshold": symbol_cutter.threshold},
        "init_from": init_from,
        "validation_split": validation_split,
        "seed": seed,
        "validation_seed": validation_seed,
        "epochs": epochs,
        "members": members,
        "train_expressions": len(train_index),
        "validation_expressions": len(validation_index),
        "skipped": skipped,
        "seconds": seconds,
    }
    model.save_to_preset(
        os.fspath(out / "recognizer"),
        metadata={"training": record, "metrics": metrics},
        extra_files={"model_card.md": stroke_model_card(record, metrics)},
        # an ensemble's members stored at half the size (`weights_dtype`), under 10 MB for two
        weights_dtype="float32" if members == 1 else "float16",
    )
    atomic_write_text(out / "metrics.json", json.dumps({**record, "metrics": metrics}, indent=1))
    for member, member_history in enumerate(histories):
        if member_history:
            from im2latex_encoder.training.plots import plot_history

            plot_history(
                member_history,
                out / ("curves.png" if members == 1 else f"curves-{member}.png"),
                metric="tokens_loss",
                title="Caption loss (teacher-forced)"
                + ("" if members == 1 else f", member {member} (seed {seed + member})"),
                validation_label="validation expressions",
            )
    return {"metrics": metrics, "history": history, "seconds": seconds}


def stroke_model_card(record: dict, metrics: dict, *, name: str = "stroke recognizer") -> str:
    """The model card of a trained `StrokeRecognizer`: data, licence, results, training.

    Args:
        record: dict. `train_strokes`' record (command, preset, draws, epochs, seconds, ...;
            ``notes``: lines added under Training).
        metrics: dict. Scores by data set and decoding (`score_expressions`' dicts).
        name: str. The model's name in the title.

    Example:
    >>> card = stroke_model_card({"epochs": 2, "seconds": {"training": 60.0}},
    ...                          {"validation": {"greedy": {"exprate": 0.5, "exprate_1": 0.75,
    ...                           "exprate_2": 1.0, "token_error_rate": 0.1, "n": 4}}})
    >>> card.splitlines()[0]
    '# Model card: `stroke recognizer`'
    >>> "non-commercial" in card
    True
    """
    lines = [
        f"# Model card: `{name}`",
        "",
        "Reads a handwritten expression given as pen strokes (an InkML file, a drawing) and "
        "writes its LaTeX tokens (CROHME's caption form); reads a formula image by its "
        "connected components. Each stroke is one token: the pretrained symbol classifier "
        "(`crohme101`'s conv encoder and head, frozen) looks at it alone and with its "
        "neighbours, a Transformer encoder reads the tokens in writing order and a decoder "
        "writes the LaTeX. Nothing from a file's annotation reaches a reading: the scale is "
        "estimated from the strokes themselves.",
        "",
        "## Data",
        "",
        "Trained on CROHME data (the CROHME 2014/2016 training expressions, real handwriting), "
        "which is distributed for non-commercial research use only; these weights inherit "
        "that restriction. The CROHME 2016 test expressions were used for evaluation only, "
        "never for training or for choices (those were made on expressions held out of the "
        "training set).",
        "",
        f"- Symbol features: `{record.get('preset')}` (frozen); {record.get('draws')} draws of "
        "the training ink (one clean, the others augmented); "
        f"{record.get('renamed_draws', 0)} augmented draws with digits and letters renamed in "
        "caption and ink (`rename_symbols`: formulas not in the training set); "
        f"{record.get('component_draws', 0)} draws as formula images read back by their "
        + (
            "ink cut where its lines meet"
            if record.get("split_junctions")
            else "connected components"
        )
        + (
            ", each labelled with the symbol of the stroke that drew most of it."
            if record.get("label_components")
            else "."
        )
        + (
            f" {record['layout_draws']} draws of the training ink with its strokes in an "
            "image's layout order (`stroke_layout_order`)."
            if record.get("layout_draws")
            else ""
        ),
        f"- Training expressions: {record.get('train_expressions')}; validation: "
        f"{record.get('validation_expressions')} (held out by "
        f"{record.get('validation_split', 'expression')}).",
        "",
        "## Results",
        "",
        "| data | decoding | ExpRate | ≤1 | ≤2 | token error rate | n |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for data, scores in metrics.items():
        for decoding, score in scores.items():
            lines.append(
                f"| {data} | {decoding} | {100 * score['exprate']:.2f}% | "
                f"{100 * score['exprate_1']:.2f}% | {100 * score['exprate_2']:.2f}% | "
                f"{100 * score['token_error_rate']:.2f}% | {score['n']} |"
            )
    seconds = record.get("seconds", {})
    lines += [
        "",
        "## Training",
        "",
        f"- {record.get('epochs')} epochs; {seconds.get('training', 0.0):.0f} s of training "
        f"and {seconds.get('features', 0.0):.0f} s of stroke features on the machine that ran it.",
    ]
    members = int(record.get("members", 1))
    if members > 1:
        seed = int(record.get("seed", 0))
        lines.append(
            f"- {members} members (seeds {', '.join(str(seed + m) for m in range(members))}), "
            "each trained alone on the same features and validation split, the training time "
            "their sum; reading averages their log-probabilities at every decoding step and "
            "their heads' logits in the symbol-count prior. The trained weights are stored as "
            "float16, the frozen symbol classifier's as float32."
        )
    if record.get("command"):
        lines.append(f"- Command: `{record['command']}`")
    lines += [f"- {note}" for note in record.get("notes", ())]
    return "\n".join(lines) + "\n"
