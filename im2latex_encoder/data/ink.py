"""Real handwriting kept as strokes: a prepared ink cache, stroke-level augmentation, batches.

Strokes are vectors, so a symbol can be slanted, stretched, rotated, re-jittered, thinned of
points and drawn with another pen before it is rasterised, which image-space layers cannot do
as cheaply (or at all: a pen width cannot be changed once drawn). `prepare_crohme_ink` reads
CROHME folders once into an `InkDataset` (a pickle-free ``.npz``, reused while the source is
unchanged); `InkBatches` draws augmented training batches from it, a pure function of the
step like every other `BatchSource`; `InkDataset.split_by_group` holds out whole expressions
for validation, so no symbol's siblings (same formula, same writer) sit on both sides.

Example:
>>> strokes = [np.array([[0.0, 0.0], [4.0, 8.0]]), np.array([[4.0, 0.0]])]
>>> ink = InkDataset.from_symbols([strokes, strokes], [0, 1], ("a", "b"), groups=[0, 1])
>>> batches = InkBatches(ink, batch_size=2, image_size=16, augment=InkAugment())
>>> images, labels = batches.batch(0)
>>> images.shape, images.dtype, sorted(labels.tolist())
((2, 16, 16), dtype('float32'), [0, 1])
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from im2latex_encoder._deprecation import renamed_arguments
from im2latex_encoder.data.errors import CacheError
from im2latex_encoder.data.npz import open_npz, save_npz

#: Version of the ink ``.npz`` layout; `load_ink` refuses others.
INK_FORMAT_VERSION = 3
#: The `save_npz` kind of an ink cache.
INK_KIND = "ink"
_INK_ARRAYS = ("points", "stroke_sizes", "symbol_strokes", "labels", "groups", "relative_sizes")
# Version 2 files have no "boxes" (their symbols' places are unknown: NaN).
_INK_VERSIONS = (2, INK_FORMAT_VERSION)
_INK_METADATA = ("label_names", "group_names", "settings", "report")  # JSON
#: Smallest relative size a context-scaled symbol is drawn at (a dot or a comma still shows).
MIN_RELATIVE_SIZE = 0.2


def context_fill(context_scale: bool | float) -> float | None:
    """The share of the box an expression's typical symbol fills under `context_scale`.

    ``context_scale`` is False (off: every symbol fills the box), True (the typical symbol
    fills the box: smaller ones are drawn smaller, larger ones fill it too) or a float in
    (0, 1]: the typical symbol fills that share of the box, so a symbol up to ``1 / share``
    times larger than typical is drawn larger than typical (an ``X`` larger than an ``x``,
    a ``|`` taller than a ``1``).

    Returns:
        None when off, else the share (True is 1.0).

    Raises:
        ValueError: for anything else (a number outside (0, 1], a string).

    Example:
    >>> context_fill(False), context_fill(True), context_fill(0.8)
    (None, 1.0, 0.8)
    """
    if isinstance(context_scale, (bool, np.bool_)):
        return 1.0 if context_scale else None
    if isinstance(context_scale, (int, float, np.number)) and 0 < float(context_scale) <= 1:
        return float(context_scale)
    raise ValueError(
        "`context_scale` must be False, True, or the share of the box the typical symbol "
        f"fills, a float in (0, 1]. Received: context_scale={context_scale!r}"
    )


def normalize_strokes(strokes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One symbol's strokes as float32 points centred on their box, largest extent 1.

    Args:
        strokes: sequence of ``(n, 2)`` arrays (X right, Y down), each with n >= 1.

    Returns:
        ``(points float32 (N, 2), points per stroke int32 (S,))``. A symbol of one point (a
        dot) keeps a zero extent.

    Example:
    >>> points, sizes = normalize_strokes([np.array([[10.0, 10.0], [30.0, 20.0]])])
    >>> points.tolist(), sizes.tolist()
    ([[-0.5, -0.25], [0.5, 0.25]], [2])
    """
    sizes = np.array([len(stroke) for stroke in strokes], np.int32)
    if len(sizes) == 0 or (sizes < 1).any():
        raise ValueError(
            f"Expected at least one stroke, each of at least one point. "
            f"Received: {len(sizes)} strokes of {sizes.tolist()} points"
        )
    points = np.concatenate([np.asarray(stroke, np.float64).reshape(-1, 2) for stroke in strokes])
    low, high = points.min(axis=0), points.max(axis=0)
    extent = float((high - low).max())
    points = (points - (low + high) / 2) / (extent if extent > 0 else 1.0)
    return points.astype(np.float32), sizes


def symbol_extent(strokes: Sequence[np.ndarray]) -> float:
    """A symbol's largest bounding-box side, in the units of its points.

    Example:
    >>> symbol_extent([np.array([[10.0, 10.0], [30.0, 20.0]])])
    20.0
    """
    return _box_extent(symbol_box(strokes))


def _box_extent(box: tuple[float, float, float, float]) -> float:
    """The largest side of a ``(left, top, right, bottom)`` box."""
    left, top, right, bottom = box
    return float(max(right - left, bottom - top))


def relative_sizes(extents: npt.ArrayLike, groups: npt.ArrayLike) -> np.ndarray:
    """Each symbol's extent divided by the median extent of its group's symbols: float32.

    The size a symbol had in its expression, which fitting it to the image box throws away:
    a comma is about 0.3 of its expression's typical symbol, a ``)`` about 1.3. A group
    whose symbols all have zero extent gives 1.0.

    Args:
        extents: float ``(N,)``. Each symbol's `symbol_extent`.
        groups: int ``(N,)``. Each symbol's group (expression).

    Example:
    >>> relative_sizes(np.array([1.0, 2.0, 4.0, 5.0]), np.array([0, 0, 0, 1])).tolist()
    [0.5, 1.0, 2.0, 1.0]
    """
    extent = np.asarray(extents, np.float64)
    typical = _typical_extents(extent, groups)
    known = typical > 0
    result = np.ones(len(extent), np.float32)
    result[known] = extent[known] / typical[known]
    return result


def _typical_extents(extents: np.ndarray, groups: npt.ArrayLike) -> np.ndarray:
    """Each symbol's group's median extent (float64 ``(N,)``): the expression's typical size."""
    typical = np.zeros(len(extents), np.float64)
    for members in group_members(groups):
        typical[members] = float(np.median(extents[members]))
    return typical


def group_members(groups: npt.ArrayLike) -> list[np.ndarray]:
    """The indices of each group's symbols, group by group in order of group number.

    Example:
    >>> [m.tolist() for m in group_members([1, 0, 1, 2])]
    [[1], [0, 2], [3]]
    """
    group = np.asarray(groups, np.int64)
    if len(group) == 0:
        return []
    order = np.argsort(group, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(group[order])) + 1)


def symbol_box(strokes: Sequence[np.ndarray]) -> tuple[float, float, float, float]:
    """A symbol's bounding box ``(left, top, right, bottom)`` in the units of its points.

    Example:
    >>> symbol_box([np.array([[10.0, 10.0], [30.0, 20.0]])])
    (10.0, 10.0, 30.0, 20.0)
    """
    points = np.concatenate([np.asarray(stroke, np.float64).reshape(-1, 2) for stroke in strokes])
    (left, top), (right, bottom) = points.min(axis=0), points.max(axis=0)
    return float(left), float(top), float(right), float(bottom)


def expression_boxes(
    boxes: npt.ArrayLike, extents: npt.ArrayLike, groups: npt.ArrayLike
) -> np.ndarray:
    """Symbol boxes divided by the median extent of their group's symbols: float32 ``(N, 4)``.

    The layout of an expression in units of its typical symbol (the divisor of
    `relative_sizes`), so one writer's large ink and another's small ink compare. A group
    whose symbols all have zero extent keeps its units.

    Example:
    >>> expression_boxes([(0, 0, 3, 3), (6, 3, 9, 6), (0, 0, 1, 1)], [3.0, 3.0, 1.0], [0, 0, 1])
    array([[0., 0., 1., 1.],
           [2., 1., 3., 2.],
           [0., 0., 1., 1.]], dtype=float32)
    """
    result = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    typical = _typical_extents(np.asarray(extents, np.float64), groups)
    known = typical > 0
    result[known] /= typical[known, None]
    return result.astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class InkDataset:
    """Labelled symbols as strokes, flattened into a few arrays (cheap to store and slice).

    Args:
        points: float32 ``(P, 2)``. Every symbol's points (normalised, `normalize_strokes`),
            symbol after symbol, stroke after stroke.
        stroke_sizes: int32 ``(S,)``. Points per stroke.
        symbol_strokes: int32 ``(N,)``. Strokes per symbol.
        labels: int32 ``(N,)``. Indices into `label_names`.
        groups: int32 ``(N,)``. Index into `group_names` of the expression (file) the symbol
            comes from; `split_by_group` keeps a group on one side.
        relative_sizes: float32 ``(N,)`` or None. Each symbol's size relative to the other
            symbols of its expression (`relative_sizes`); None: all 1.0. Rendering with
            ``context_scale=True`` draws a symbol smaller than its expression's typical one
            that much smaller, instead of filling the box.
        boxes: float32 ``(N, 4)`` or None. Each symbol's place in its expression,
            ``(left, top, right, bottom)`` (Y down) in units of the expression's typical symbol
            size (the median extent `relative_sizes` divides by), so layouts compare across
            writers; the origin is arbitrary, only differences mean something. NaN rows (and
            None: all NaN) are symbols whose place is unknown.
        label_names: tuple of str.
        group_names: tuple of str. One name per group (the file's path relative to its folder).
        settings: dict. JSON; what made the data (part of the cache's identity).
        source_hash: str. Hash of the source files (see `crohme_source_hash`).
        report: dict. JSON; the scan's skip report.

    Example:
    >>> ink = InkDataset.from_symbols([[np.zeros((1, 2))]], [0], ("x",))
    >>> len(ink), ink.strokes(0)[0].shape
    (1, (1, 2))
    """

    points: np.ndarray
    stroke_sizes: np.ndarray
    symbol_strokes: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    label_names: tuple
    group_names: tuple = ()
    # None is accepted and replaced by ones in __post_init__, so the attribute is never None.
    relative_sizes: np.ndarray = None  # type: ignore[assignment]
    boxes: np.ndarray = None  # type: ignore[assignment]
    settings: dict = dataclasses.field(default_factory=dict)
    source_hash: str = ""
    report: dict = dataclasses.field(default_factory=dict)
    # Derived in __post_init__: strokes of symbol i are _stroke_offsets[i]:_stroke_offsets[i + 1],
    # its points _point_offsets[i]:_point_offsets[i + 1].
    _stroke_offsets: np.ndarray = dataclasses.field(init=False, repr=False)
    _point_offsets: np.ndarray = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "label_names", tuple(self.label_names))
        object.__setattr__(self, "group_names", tuple(self.group_names))
        if self.relative_sizes is None:
            object.__setattr__(self, "relative_sizes", np.ones(len(self.labels), np.float32))
        if self.boxes is None:
            object.__setattr__(self, "boxes", np.full((len(self.labels), 4), np.nan, np.float32))
        problem = _validate_ink(self)
        if problem:
            raise ValueError(f"Invalid InkDataset: {problem}")
        stroke_ends = np.cumsum(self.stroke_sizes, dtype=np.int64)
        symbol_stroke_ends = np.cumsum(self.symbol_strokes, dtype=np.int64)
        stroke_offsets = np.concatenate([[0], symbol_stroke_ends])
        point_offsets = np.concatenate([[0], stroke_ends])[stroke_offsets]
        object.__setattr__(self, "_stroke_offsets", stroke_offsets)
        object.__setattr__(self, "_point_offsets", point_offsets)

    @classmethod
    def from_symbols(
        cls,
        symbols: Sequence[Sequence[np.ndarray]],
        labels: Sequence[int],
        label_names: Sequence[str],
        *,
        groups: Sequence[int] | None = None,
        group_names: Sequence[str] = (),
        settings: dict | None = None,
        source_hash: str = "",
        report: dict | None = None,
    ) -> InkDataset:
        """Build a dataset from a list of symbols, each a list of ``(n, 2)`` strokes.

        Example:
        >>> InkDataset.from_symbols([[np.array([[0., 0.], [1., 2.]])]], [0], ("1",)).points.shape
        (2, 2)
        """
        parts = [normalize_strokes(strokes) for strokes in symbols]
        points = np.concatenate([p for p, _ in parts]) if parts else np.zeros((0, 2), np.float32)
        sizes = np.concatenate([s for _, s in parts]) if parts else np.zeros(0, np.int32)
        group = np.arange(len(parts)) if groups is None else np.asarray(groups)
        symbol_boxes = [symbol_box(strokes) for strokes in symbols]
        extents = [_box_extent(box) for box in symbol_boxes]
        relative = relative_sizes(extents, group)
        boxes = expression_boxes(symbol_boxes, extents, group)
        return cls(
            points,
            sizes.astype(np.int32),
            np.array([len(s) for _, s in parts], np.int32),
            np.asarray(labels, np.int32),
            np.asarray(group, np.int32),
            tuple(label_names),
            tuple(group_names),
            relative,
            boxes,
            dict(settings or {}),
            source_hash,
            dict(report or {}),
        )

    def __len__(self) -> int:
        return int(len(self.labels))

    def strokes(self, index: int) -> list:
        """The strokes of symbol `index` (normalised float32 ``(n, 2)`` arrays).

        Example:
        >>> InkDataset.from_symbols([[np.zeros((3, 2))]], [0], ("x",)).strokes(0)[0].shape
        (3, 2)
        """
        first, last = self._stroke_offsets[index], self._stroke_offsets[index + 1]
        start = self._point_offsets[index]
        bounds = np.concatenate([[0], np.cumsum(self.stroke_sizes[first:last])]) + start
        return [self.points[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def gather(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The points of symbols `indices`, concatenated: ``(points, stroke sizes, strokes
        per symbol)``, in the layout `render_strokes_batch_uint8` takes.

        Example:
        >>> ink = InkDataset.from_symbols([[np.zeros((2, 2))], [np.zeros((3, 2))] * 2], [0, 0], ("x",))
        >>> [a.shape for a in ink.gather(np.array([1, 0]))]
        [(8, 2), (3,), (2,)]
        """
        indices = np.asarray(indices, np.int64)
        starts, ends = self._point_offsets[indices], self._point_offsets[indices + 1]
        point_index = _ranges(starts, ends)
        stroke_index = _ranges(self._stroke_offsets[indices], self._stroke_offsets[indices + 1])
        return (
            self.points[point_index],
            self.stroke_sizes[stroke_index],
            self.symbol_strokes[indices],
        )

    def subset(self, indices: np.ndarray) -> InkDataset:
        """A new dataset of symbols `indices` (same labels, groups and metadata).

        Example:
        >>> ink = InkDataset.from_symbols([[np.zeros((1, 2))]] * 3, [0, 1, 0], ("a", "b"))
        >>> ink.subset(np.array([1])).labels.tolist()
        [1]
        """
        indices = np.asarray(indices, np.int64)
        points, sizes, symbol_strokes = self.gather(indices)
        return dataclasses.replace(
            self,
            points=points,
            stroke_sizes=sizes,
            symbol_strokes=symbol_strokes,
            labels=self.labels[indices],
            groups=self.groups[indices],
            relative_sizes=self.relative_sizes[indices],
            boxes=self.boxes[indices],
        )

    def split_by_group(
        self, fraction: float, seed: int = 0, keys: Sequence[str | None] | None = None
    ) -> tuple[InkDataset, InkDataset]:
        """Split into ``(kept, held_out)`` by whole groups (expressions), or by a key of theirs.

        A group goes to `held_out` when a hash of its name and `seed` falls below `fraction`,
        so the split depends on neither the order of the files nor on which other files are
        present. Every symbol of an expression (same formula, same writer) lands on one side.
        With `keys` (one per group, e.g. its writer), the hash is of the key instead, so every
        group of a key lands on one side, and groups whose key is None are always kept.

        Args:
            fraction: float in [0, 1). Share of the groups (or of the keys) held out.
            seed: int. Another seed gives another split.
            keys: sequence of str or None, one per group (`group_names`), or None.

        Example:
        >>> ink = InkDataset.from_symbols([[np.zeros((1, 2))]] * 40, [0] * 40, ("x",),
        ...                               groups=np.arange(40) // 2,
        ...                               group_names=[f"f{i}" for i in range(20)])
        >>> kept, held = ink.split_by_group(0.25)
        >>> len(kept) + len(held), set(kept.groups) & set(held.groups)
        (40, set())
        >>> writers = [f"w{i % 4}" for i in range(20)]
        >>> kept, held = ink.split_by_group(0.5, keys=writers)
        >>> {writers[g] for g in kept.groups} & {writers[g] for g in held.groups}
        set()
        """
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"`fraction` must lie in [0, 1). Received: fraction={fraction!r}")
        names = self.group_names or tuple(
            str(i) for i in range(int(self.groups.max(initial=-1)) + 1)
        )
        if keys is not None and len(keys) != len(names):
            raise ValueError(
                f"`keys` must give one key per group: expected {len(names)}. "
                f"Received: {len(keys)} keys"
            )
        hashed = names if keys is None else keys  # a group's own name is its default key
        held_group = np.array(
            [key is not None and unit_hash(f"{seed}:{key}") < fraction for key in hashed], bool
        )
        held = held_group[self.groups] if len(self.groups) else np.zeros(0, bool)
        return self.subset(np.flatnonzero(~held)), self.subset(np.flatnonzero(held))

    def frames(self, indices: np.ndarray | None = None, fill: float = 1.0) -> np.ndarray:
        """The extent each symbol is fitted to when drawn at its size in context: float64.

        ``1 / (relative_size * fill)``: the expression's typical symbol size in the symbol's own
        normalised units (divided by `fill`, the share of the box the typical symbol fills; see
        `context_fill`), with the relative size clipped to at least `MIN_RELATIVE_SIZE`.

        Example:
        >>> ink = InkDataset.from_symbols([[np.array([[0., 0.], [1., 1.]])],
        ...                                [np.array([[0., 0.], [4., 4.]])]], [0, 0], ("x",),
        ...                               groups=[0, 0])
        >>> ink.frames().round(2).tolist()
        [2.5, 0.62]
        """
        sizes = self.relative_sizes if indices is None else self.relative_sizes[indices]
        return 1.0 / (np.maximum(sizes.astype(np.float64), MIN_RELATIVE_SIZE) * float(fill))

    def render(
        self,
        image_size: int | tuple[int, int],
        *,
        margin: float = 0.1,
        line_width: float = 0.04,
        batch_size: int = 1024,
        context_scale: bool | float = False,
    ) -> np.ndarray:
        """Every symbol drawn as `render_strokes_uint8` draws it (no augmentation): uint8.

        With ``context_scale=True`` a symbol smaller than the typical symbol of its expression
        is drawn that much smaller (a comma stays small, an ``x`` smaller than an ``X``);
        others fill the box as usual. A float in (0, 1] draws the typical symbol at that share
        of the box, leaving room for larger ones to be drawn larger (`context_fill`).

        Example:
        >>> InkDataset.from_symbols([[np.array([[0., 0.], [1., 1.]])]], [0], ("x",)).render(8).shape
        (1, 8, 8)
        """
        from im2latex_encoder.data.render import image_shape, render_strokes_batch_uint8

        shape = image_shape(image_size)
        fill = context_fill(context_scale)
        images = np.empty((len(self), *shape), np.uint8)
        for start in range(0, len(self), batch_size):
            indices = np.arange(start, min(start + batch_size, len(self)))
            points, sizes, counts = self.gather(indices)
            images[indices] = render_strokes_batch_uint8(
                points.astype(np.float64),
                _split_sizes(sizes, counts),
                shape,
                margin=margin,
                line_widths=[line_width] * len(indices),
                frames=None if fill is None else self.frames(indices, fill).tolist(),
            )
        return images


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start, end)`` for every pair, in one numpy pass."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    shifts = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(total, dtype=np.int64) + shifts


def _split_sizes(sizes: np.ndarray, counts: np.ndarray) -> list:
    bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
    flat = sizes.tolist()
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def unit_hash(text: str) -> float:
    """A stable number in [0, 1) for `text` (sha256), for splits that do not depend on order."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2.0**64


def _validate_ink(ink: InkDataset) -> str | None:
    checks = [
        ("points", ink.points, np.float32, 2),
        ("stroke_sizes", ink.stroke_sizes, np.int32, 1),
        ("symbol_strokes", ink.symbol_strokes, np.int32, 1),
        ("labels", ink.labels, np.int32, 1),
        ("groups", ink.groups, np.int32, 1),
    ]
    for name, array, dtype, ndim in checks:
        if not isinstance(array, np.ndarray) or array.dtype != dtype or array.ndim != ndim:
            return (
                f"`{name}` must be a {ndim}-d {np.dtype(dtype).name} array. Received: "
                f"{getattr(array, 'dtype', type(array).__name__)} of shape "
                f"{getattr(array, 'shape', None)}"
            )
    if ink.points.shape[1:] != (2,):
        return f"`points` must have shape (P, 2). Received: {ink.points.shape}"
    n = len(ink.labels)
    if len(ink.symbol_strokes) != n or len(ink.groups) != n:
        return (
            f"`labels`, `symbol_strokes` and `groups` must have one entry per symbol. "
            f"Received: {n}, {len(ink.symbol_strokes)}, {len(ink.groups)}"
        )
    if (ink.symbol_strokes < 1).any() or (ink.stroke_sizes < 1).any():
        return "every symbol needs at least one stroke and every stroke at least one point"
    if int(ink.symbol_strokes.sum()) != len(ink.stroke_sizes):
        return (
            f"`symbol_strokes` adds up to {int(ink.symbol_strokes.sum())} strokes. "
            f"Received: {len(ink.stroke_sizes)} stroke sizes"
        )
    if int(ink.stroke_sizes.sum(dtype=np.int64)) != len(ink.points):
        return (
            f"`stroke_sizes` adds up to {int(ink.stroke_sizes.sum())} points. "
            f"Received: {len(ink.points)} points"
        )
    if n and (ink.labels.min() < 0 or ink.labels.max() >= len(ink.label_names)):
        return f"labels must index into {len(ink.label_names)} label names"
    if n and ink.groups.min() < 0:
        return "groups must be >= 0"
    if n and ink.group_names and ink.groups.max() >= len(ink.group_names):
        return f"groups must index into {len(ink.group_names)} group names"
    if not np.isfinite(ink.points).all():
        return "points must be finite"
    sizes = ink.relative_sizes
    if (
        not isinstance(sizes, np.ndarray)
        or sizes.shape != (n,)
        or not np.issubdtype(sizes.dtype, np.floating)
    ):
        return (
            f"`relative_sizes` must be a float array of one entry per symbol ({n}). "
            f"Received: {getattr(sizes, 'dtype', type(sizes).__name__)} of shape "
            f"{getattr(sizes, 'shape', None)}"
        )
    if not (np.isfinite(sizes) & (sizes >= 0)).all():
        return "relative_sizes must be finite and >= 0"
    boxes = ink.boxes
    if (
        not isinstance(boxes, np.ndarray)
        or boxes.shape != (n, 4)
        or not np.issubdtype(boxes.dtype, np.floating)
    ):
        return (
            f"`boxes` must be a float array of shape ({n}, 4), one (left, top, right, bottom) "
            f"per symbol. Received: {getattr(boxes, 'dtype', type(boxes).__name__)} of shape "
            f"{getattr(boxes, 'shape', None)}"
        )
    known = np.isfinite(boxes).all(axis=1)
    if (np.isnan(boxes[~known]).sum(axis=1) != 4).any() if len(boxes) else False:
        return "each row of `boxes` must be four finite numbers or four NaN (place unknown)"
    if (boxes[known, 2] < boxes[known, 0]).any() or (boxes[known, 3] < boxes[known, 1]).any():
        return "each box must have right >= left and bottom >= top"
    return None


def save_ink(path: str | os.PathLike, ink: InkDataset) -> None:
    """Write an `InkDataset` to a compressed, pickle-free ``.npz``, atomically.

    Example:
    >>> import tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "ink.npz")
    >>> save_ink(out, InkDataset.from_symbols([[np.zeros((1, 2))]], [0], ("x",)))
    >>> len(load_ink(out))
    1
    """
    if not isinstance(ink, InkDataset):
        raise TypeError(f"`ink` must be an InkDataset. Received: {type(ink).__name__}")
    save_npz(
        path,
        {
            "points": ink.points,
            "stroke_sizes": ink.stroke_sizes,
            "symbol_strokes": ink.symbol_strokes,
            "labels": ink.labels,
            "groups": ink.groups,
            "relative_sizes": ink.relative_sizes.astype(np.float32),
            "boxes": ink.boxes.astype(np.float32),
            "source_hash": np.array(ink.source_hash, np.str_),
        },
        kind=INK_KIND,
        version=INK_FORMAT_VERSION,
        metadata={
            "label_names": list(ink.label_names),
            "group_names": list(ink.group_names),
            "settings": ink.settings,
            "report": ink.report,
        },
    )


def load_ink(path: str | os.PathLike) -> InkDataset:
    """Load and validate an ink cache written by `save_ink` (``allow_pickle=False``).

    Raises:
        FileNotFoundError: if `path` does not exist.
        CacheError: if the file is not an ink cache of this version, or is corrupt; the
            message names the file and the reason.

    Example:
    >>> load_ink("train-ink.npz")  # doctest: +SKIP
    """
    path = os.fspath(path)
    with open_npz(path) as archive:
        version = archive.check(
            kind=INK_KIND,
            versions=_INK_VERSIONS,
            arrays=[*_INK_ARRAYS, "source_hash"],
            metadata=_INK_METADATA,
        )
        fields = {key: archive.array(key) for key in _INK_ARRAYS}
        if version == INK_FORMAT_VERSION or "boxes" in archive.files:
            fields["boxes"] = archive.array("boxes")  # names the file when it is missing
        meta = {key: archive.json(key) for key in _INK_METADATA}
        source_hash = archive.text("source_hash")
    try:
        return InkDataset(
            **fields,
            label_names=tuple(meta["label_names"]),
            group_names=tuple(meta["group_names"]),
            settings=meta["settings"],
            source_hash=source_hash,
            report=meta["report"],
        )
    except ValueError as error:
        raise CacheError(path, str(error)) from None


def _symbol_ink(strokes: list) -> tuple[np.ndarray, np.ndarray, float, tuple]:
    """A symbol's normalized points, points per stroke, largest extent and box before scaling."""
    box = symbol_box(strokes)
    return (*normalize_strokes(strokes), _box_extent(box), box)


@renamed_arguments(source="folders")
def prepare_crohme_ink(
    folders,
    out: str | os.PathLike,
    *,
    include_junk: bool = False,
    strict: bool = False,
    progress: bool = True,
    workers: int | None = None,
    chunk_size: int = 256,
) -> InkDataset:
    """Read CROHME folder(s) into an `InkDataset` at `out`, reusing it while the source is unchanged.

    The same scan as `prepare_crohme` (same skip report, same parallel parsing) but each
    symbol keeps its strokes instead of becoming an image, so training can augment the ink.
    Each InkML file is one group (an expression, by one writer).

    Args:
        folders: str, PathLike or a sequence of them. CROHME folder(s); ``source=`` is its
            deprecated spelling (removed in 0.3.0).
        out: str or PathLike. The ``.npz`` to write (atomically).
        include_junk: bool. Keep CROHME's ``junk`` as an extra last class.
        strict: bool. The first malformed file is fatal.
        progress: bool. A tqdm progress bar.
        workers: int or None. Processes (None: every CPU).
        chunk_size: int. Files per task.

    Raises:
        FileNotFoundError / NotADirectoryError: if a folder is missing.
        DataError: if no symbol could be used.

    Example:
    >>> ink = prepare_crohme_ink("../shared/data/crohme/train", "train-ink.npz")  # doctest: +SKIP
    >>> len(ink)  # doctest: +SKIP
    85802
    """
    from im2latex_encoder.data.cache import crohme_source_hash, hash_json
    from im2latex_encoder.data.crohme import SCAN_VERSION, scan_crohme_folder
    from im2latex_encoder.data.crohme_preparer import run_chunks
    from im2latex_encoder.data.errors import DataError

    out = os.fspath(out)
    scan = scan_crohme_folder(folders, include_junk=include_junk, strict=strict)
    inkml_files, ground_truth_files = scan.files()
    source_hash = crohme_source_hash(inkml_files, ground_truth_files, scan.folders)
    settings = {
        "source": "crohme",
        "kind": "ink",
        "scan_version": SCAN_VERSION,
        "include_junk": bool(include_junk),
        "labels_hash": hash_json(scan.labels),
        "boxes": True,
    }
    if os.path.isfile(out):
        try:
            cached = load_ink(out)
        except (CacheError, OSError) as error:
            cached = None
            import logging

            logging.getLogger(__name__).info("Rebuilding %s: %s", out, error)
        if (
            cached is not None
            and cached.source_hash == source_hash
            and cached.settings == json.loads(json.dumps(settings, sort_keys=True))
        ):
            return cached

    ground_truth = scan.start(ground_truth_files)
    roots = [os.path.abspath(d) for d in scan.folders]
    points, sizes, counts, labels, groups, group_names = [], [], [], [], [], []
    extents, boxes = [], []

    def consume(records):
        for record in records:
            samples = scan.add(record)
            if not samples:
                continue
            absolute = os.path.abspath(record.path)
            root = next((r for r in roots if absolute.startswith(r + os.sep)), None)
            group_names.append(os.path.relpath(absolute, root) if root else absolute)
            for _, label, (symbol_points, stroke_sizes, extent, box) in samples:
                points.append(symbol_points)
                extents.append(extent)
                boxes.append(box)
                sizes.append(stroke_sizes)
                counts.append(len(stroke_sizes))
                labels.append(scan.label_index[label])
                groups.append(len(group_names) - 1)
                scan.report.use(label)

    run_chunks(
        inkml_files,
        consume,
        ground_truth=ground_truth,
        label_index=scan.label_index,
        convert=_symbol_ink,
        progress=progress,
        workers=workers,
        chunk_size=chunk_size,
        description="prepare crohme ink",
    )
    scan.finish(ground_truth)
    if not labels:
        raise DataError(scan.folders[0], "no usable symbol: " + scan.report.summary())
    group_array = np.array(groups, np.int32)
    ink = InkDataset(
        np.concatenate(points),
        np.concatenate(sizes).astype(np.int32),
        np.array(counts, np.int32),
        np.array(labels, np.int32),
        group_array,
        scan.labels,
        tuple(group_names),
        relative_sizes=relative_sizes(np.array(extents), group_array),
        boxes=expression_boxes(boxes, extents, group_array),
        settings=json.loads(json.dumps(settings, sort_keys=True)),
        source_hash=source_hash,
        report=dict(scan.report.to_dict(), sources=scan.folders),
    )
    save_ink(out, ink)
    return ink


@dataclasses.dataclass(frozen=True)
class InkAugment:
    """Random changes to a symbol's ink before it is drawn (each 0 = off).

    All are drawn per symbol, uniformly in ``[-value, value]`` unless said otherwise.

    Args:
        rotation: float. Rotation in degrees.
        slant: float. Horizontal shear (x += slant * y), as a slope.
        aspect: float. Log of the width/height stretch (0.2: up to 1.22× wider or taller).
        stroke_shift: float. Standard deviation of each stroke's own offset, times the
            symbol's size (strokes placed by hand separately: the bars of ``=``, a dot).
        jitter: float. Standard deviation of each point's noise, times the symbol's size.
        drop: float in [0, 1). Share of points dropped (a stroke's ends are kept).
        line_width: (low, high). Pen width, as a fraction of the image side, drawn per symbol.
        margin: (low, high). Empty border per side, drawn per symbol (a zoom).

    Example:
    >>> InkAugment(rotation=8, slant=0.2).to_dict()["rotation"]
    8.0
    """

    rotation: float = 0.0
    slant: float = 0.0
    aspect: float = 0.0
    stroke_shift: float = 0.0
    jitter: float = 0.0
    drop: float = 0.0
    line_width: tuple[float, float] = (0.04, 0.04)
    margin: tuple[float, float] = (0.1, 0.1)

    def __post_init__(self):
        for name in ("rotation", "slant", "aspect", "stroke_shift", "jitter", "drop"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"`{name}` must be a finite number >= 0. Received: {name}={value!r}"
                )
            object.__setattr__(self, name, value)
        if self.drop >= 1:
            raise ValueError(f"`drop` must lie in [0, 1). Received: drop={self.drop!r}")
        for name, (low, high), bounds in (
            ("line_width", self.line_width, (0.0, 1.0)),
            ("margin", self.margin, (0.0, 0.5)),
        ):
            low, high = float(low), float(high)
            if (
                not (bounds[0] <= low <= high <= bounds[1])
                or (name == "line_width" and low <= 0)
                or (name == "margin" and high >= 0.5)
            ):
                raise ValueError(
                    f"`{name}` must be a (low, high) pair with low <= high inside "
                    f"{bounds}. Received: {name}={(low, high)!r}"
                )
            object.__setattr__(self, name, (low, high))

    @classmethod
    def from_dict(cls, config: dict) -> InkAugment:
        """Build from a config's ``ink_augment`` dict, naming unknown keys.

        Example:
        >>> InkAugment.from_dict({"slant": 0.1}).slant
        0.1
        """
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"`ink_augment` takes {sorted(known)}. Received: unknown {unknown}")
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in config.items()
        }
        return cls(**values)

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (`from_dict` rebuilds it).

        Example:
        >>> InkAugment.from_dict(InkAugment(drop=0.1).to_dict()).drop
        0.1
        """
        return {
            field.name: (
                list(getattr(self, field.name))
                if isinstance(getattr(self, field.name), tuple)
                else getattr(self, field.name)
            )
            for field in dataclasses.fields(self)
        }


def render_augmented(
    ink: InkDataset,
    indices: np.ndarray,
    image_size: tuple[int, int],
    augment: InkAugment,
    rng: np.random.Generator,
    *,
    context_scale: bool | float = False,
) -> np.ndarray:
    """Draw symbols `indices` of `ink` with random `augment`ations: uint8 ``(B, H, W)``.

    ``context_scale=True`` (or a share of the box, `context_fill`) draws each symbol at its
    size in its expression (see `InkDataset.render`).

    The warps run on the whole batch's points in a few numpy calls (per-symbol numpy calls
    would cost more than their arithmetic), then `render_strokes_batch_uint8` draws them.

    Example:
    >>> ink = InkDataset.from_symbols([[np.array([[0., 0.], [1., 1.]])]], [0], ("x",))
    >>> render_augmented(ink, np.array([0, 0]), (16, 16), InkAugment(rotation=10),
    ...                  np.random.default_rng(0)).shape
    (2, 16, 16)
    """
    from im2latex_encoder.data.render import render_strokes_batch_uint8

    fill = context_fill(context_scale)
    indices = np.asarray(indices, np.int64)
    count = len(indices)
    points, stroke_sizes, symbol_strokes = ink.gather(indices)
    points = points.astype(np.float64)
    stroke_symbol = np.repeat(np.arange(count), symbol_strokes)
    point_stroke = np.repeat(np.arange(len(stroke_sizes)), stroke_sizes)
    point_symbol = stroke_symbol[point_stroke]

    angle = np.radians(rng.uniform(-1, 1, count) * augment.rotation)
    slant = rng.uniform(-1, 1, count) * augment.slant
    stretch = np.exp(rng.uniform(-1, 1, count) * augment.aspect)
    cos, sin = np.cos(angle), np.sin(angle)
    # matrix = rotation @ [[stretch, slant], [0, 1 / stretch]], per symbol.
    matrices = np.empty((count, 2, 2))
    matrices[:, 0, 0] = cos * stretch
    matrices[:, 0, 1] = cos * slant - sin / stretch
    matrices[:, 1, 0] = sin * stretch
    matrices[:, 1, 1] = sin * slant + cos / stretch
    points = np.einsum("nj,nij->ni", points, matrices[point_symbol])
    if augment.stroke_shift:
        points += rng.normal(0.0, augment.stroke_shift, (len(stroke_sizes), 2))[point_stroke]
    if augment.jitter:
        points += rng.normal(0.0, augment.jitter, points.shape)
    if augment.drop:
        keep = rng.random(len(points)) >= augment.drop
        ends = np.cumsum(stroke_sizes)
        keep[ends - stroke_sizes] = True
        keep[ends - 1] = True
        points = points[keep]
        stroke_sizes = np.add.reduceat(keep, ends - stroke_sizes).astype(np.int32)
    frames = np.zeros(count) if fill is None else ink.frames(indices, fill)
    widths = rng.uniform(*augment.line_width, count)
    margins = rng.uniform(*augment.margin, count)
    # One margin per batch call is all the renderer takes; symbols of a batch are drawn in
    # groups of equal (rounded) margin, so each still gets its own zoom.
    images = np.empty((count, *image_size), np.uint8)
    sizes = _split_sizes(stroke_sizes, symbol_strokes)
    point_bounds = np.concatenate([[0], np.cumsum([sum(s) for s in sizes])])
    rounded = np.round(margins, 2)
    for margin in np.unique(rounded):
        members = np.flatnonzero(rounded == margin)
        chosen = points[_ranges(point_bounds[members], point_bounds[members + 1])]
        images[members] = render_strokes_batch_uint8(
            chosen,
            [sizes[i] for i in members],
            image_size,
            margin=float(margin),
            line_widths=widths[members].tolist(),
            frames=frames[members].tolist(),
        )
    return images


class InkBatches:
    """Training batches drawn from an `InkDataset` with fresh ink augmentation every step.

    Each epoch visits the symbols in a new order (seeded by ``(seed, epoch)``), and each batch
    is augmented with a generator seeded by ``(seed, step)``: a batch is a pure function of its
    step, so a resumed run sees what an uninterrupted one would.

    Args:
        ink: InkDataset. The training symbols.
        batch_size: int.
        image_size: int or (height, width).
        augment: InkAugment. What to vary (default: nothing; plain fit-to-box rendering).
        steps_per_epoch: int or None. Steps that make an epoch (default: one pass).
        seed: int.
        label_map: int array or None. Maps the dataset's label indices to the model's.
        context_scale: bool or float. Draw each symbol at its size in its expression
            (`InkDataset.render`; a float is the typical symbol's share of the box,
            `context_fill`).

    Example:
    >>> ink = InkDataset.from_symbols([[np.zeros((1, 2))]] * 4, [0, 1, 0, 1], ("a", "b"))
    >>> images, labels = InkBatches(ink, batch_size=2, image_size=8).batch(0)
    >>> images.shape
    (2, 8, 8)
    """

    def __init__(
        self,
        ink: InkDataset,
        batch_size: int,
        image_size,
        augment: InkAugment | None = None,
        steps_per_epoch: int | None = None,
        seed: int = 0,
        label_map: np.ndarray | None = None,
        context_scale: bool | float = False,
    ):
        from im2latex_encoder.data.render import image_shape

        if len(ink) < batch_size:
            raise ValueError(
                f"Need at least one full batch. Received: {len(ink)} symbols for "
                f"batch_size={batch_size}"
            )
        self.ink = ink
        self.batch_size = int(batch_size)
        self.image_size = image_shape(image_size)
        self.augment = augment or InkAugment()
        self.steps_per_epoch = int(steps_per_epoch or len(ink) // batch_size)
        self.seed = int(seed)
        self.label_map = label_map
        context_fill(context_scale)  # raises for a bad value
        self.context_scale = context_scale
        self._epoch_order: tuple[int, np.ndarray] | None = None

    def _order(self, epoch: int) -> np.ndarray:
        from im2latex_encoder.data.pipeline import epoch_order

        cached = self._epoch_order
        if cached is None or cached[0] != epoch:
            cached = self._epoch_order = (
                epoch,
                epoch_order(
                    len(self.ink), self.steps_per_epoch * self.batch_size, self.seed, epoch
                ),
            )
        return cached[1]

    def batch(self, step: int):
        epoch, within = divmod(int(step), self.steps_per_epoch)
        indices = self._order(epoch)[within * self.batch_size : (within + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, 1, int(step)])
        images = render_augmented(
            self.ink, indices, self.image_size, self.augment, rng, context_scale=self.context_scale
        )
        labels = self.ink.labels[indices]
        if self.label_map is not None:
            labels = self.label_map[labels]
        return images.astype(np.float32) * np.float32(1 / 255), labels.astype(np.int32)
