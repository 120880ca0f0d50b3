"""Handwritten expressions (CROHME InkML) as ink: read, stored, drawn.

An expression keeps all of its strokes, scaled so that its typical symbol (the median
largest side of its labelled symbols) is 1 unit, which is what makes images of different
writers and tablets comparable: `InkExpressions.render` draws an expression with that typical
symbol `symbol_size` pixels tall, the size a symbol encoder pretrained on fitted symbols
expects (`im2latex_encoder.recognizer.preprocessor.symbol_size_for`).

Example:
>>> import numpy as np
>>> expressions = InkExpressions.from_strokes([[np.array([[0., 0.], [10., 10.]]),
...                                             np.array([[20., 0.], [30., 10.]])]],
...                                           names=["a"], truths=["$x$"])
>>> expressions.render(0, symbol_size=16).shape
(19, 41)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from im2latex_encoder._deprecation import moved_names, renamed_arguments

#: Version of the expressions ``.npz`` layout.
EXPRESSIONS_FORMAT_VERSION = 1
#: Median symbol extent over median stroke extent: 1.44 on every 10th CROHME training file (884)
#: (`stroke_to_symbol_ratio`); scales files whose symbols are not labelled.
STROKE_TO_SYMBOL = 1.44
_KIND = "expressions"  # the `kind` of their npz files (`im2latex_encoder.data.npz`)


def _extent(points: np.ndarray) -> float:
    return float((points.max(axis=0) - points.min(axis=0)).max()) if len(points) else 0.0


def reference_size(
    strokes: Sequence[np.ndarray], symbols: Sequence[Sequence[np.ndarray]] = ()
) -> float:
    """An expression's typical symbol size in its own units (what `render` scales to 1).

    The median largest side of its labelled symbols; without labels, the median largest side
    of its strokes times `STROKE_TO_SYMBOL`. Never 0 (a lone dot gives 1.0).

    Example:
    >>> reference_size([np.array([[0., 0.], [0., 8.]])])
    11.52
    """
    if symbols:
        sizes = [_extent(np.concatenate(symbol)) for symbol in symbols if len(symbol)]
    else:
        sizes = [_extent(np.asarray(stroke)) * STROKE_TO_SYMBOL for stroke in strokes]
    sizes = [size for size in sizes if size > 0]
    return float(np.median(sizes)) if sizes else 1.0


@dataclasses.dataclass(frozen=True, eq=False)
class InkExpressions:
    """Handwritten expressions as strokes, in a few flat arrays (cheap to store and slice).

    Args:
        points: float32 ``(P, 2)``. Every expression's points, X right and Y down, shifted to
            start at (0, 0) and scaled so its typical symbol is 1 (`reference_size`).
        stroke_sizes: int32 ``(S,)``. Points per stroke.
        expression_strokes: int32 ``(N,)``. Strokes per expression.
        names: tuple of str. The file stem of each expression.
        truths: tuple of str. Each file's raw ``truth`` annotation ("" when it has none).
        settings: dict. JSON; what made the data.
        source_hash: str. Hash of the source files.
        report: dict. JSON; files skipped and why.

    Example:
    >>> data = InkExpressions.from_strokes([[np.zeros((2, 2))]], names=["e"], truths=[""])
    >>> len(data), data.size(0)
    (1, (0.0, 0.0))
    """

    points: np.ndarray
    stroke_sizes: np.ndarray
    expression_strokes: np.ndarray
    names: tuple
    truths: tuple
    settings: dict = dataclasses.field(default_factory=dict)
    source_hash: str = ""
    report: dict = dataclasses.field(default_factory=dict)
    # Derived in __post_init__: expression i's strokes, its points, its ink's (width, height).
    _stroke_offsets: np.ndarray = dataclasses.field(init=False, repr=False)
    _point_offsets: np.ndarray = dataclasses.field(init=False, repr=False)
    _sizes: np.ndarray = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "truths", tuple(self.truths))
        n = len(self.expression_strokes)
        if len(self.names) != n or len(self.truths) != n:
            raise ValueError(
                f"Need one name and one truth per expression ({n}). Received: "
                f"{len(self.names)} names, {len(self.truths)} truths"
            )
        if int(self.expression_strokes.sum()) != len(self.stroke_sizes) or int(
            self.stroke_sizes.sum()
        ) != len(self.points):
            raise ValueError(
                "`expression_strokes` must add up to the strokes and `stroke_sizes` "
                f"to the points. Received: {int(self.expression_strokes.sum())} vs "
                f"{len(self.stroke_sizes)} strokes, {int(self.stroke_sizes.sum())} vs "
                f"{len(self.points)} points"
            )
        stroke_ends = np.concatenate([[0], np.cumsum(self.stroke_sizes, dtype=np.int64)])
        stroke_offsets = np.concatenate([[0], np.cumsum(self.expression_strokes, dtype=np.int64)])
        object.__setattr__(self, "_stroke_offsets", stroke_offsets)
        object.__setattr__(self, "_point_offsets", stroke_ends[stroke_offsets])
        highs = [
            self.points[a:b].max(axis=0) if b > a else np.zeros(2)
            for a, b in zip(self._point_offsets[:-1], self._point_offsets[1:])
        ]
        object.__setattr__(self, "_sizes", np.array(highs, np.float64).reshape(-1, 2))

    @classmethod
    def from_strokes(
        cls,
        expressions: Sequence[Sequence[np.ndarray]],
        *,
        names: Sequence[str],
        truths: Sequence[str],
        symbols: Sequence[Sequence] | None = None,
        **fields,
    ) -> InkExpressions:
        """Build from raw strokes (any units); each expression is shifted and scaled.

        Args:
            expressions: one list of ``(n, 2)`` strokes per expression.
            names, truths: one str per expression.
            symbols: per expression, its labelled symbols' strokes (for `reference_size`), or
                None.

        Example:
        >>> InkExpressions.from_strokes([[np.array([[5., 5.], [5., 13.]])]], names=["e"],
        ...                             truths=[""]).size(0)
        (0.0, 0.694444)
        """
        points, sizes, counts = [], [], []
        for index, strokes in enumerate(expressions):
            strokes = [np.asarray(stroke, np.float64).reshape(-1, 2) for stroke in strokes]
            strokes = [stroke for stroke in strokes if len(stroke)]
            scale = reference_size(strokes, symbols[index] if symbols else ())
            joined = np.concatenate(strokes) if strokes else np.zeros((0, 2))
            low = joined.min(axis=0) if len(joined) else np.zeros(2)
            points.append(((joined - low) / scale).astype(np.float32))
            sizes += [len(stroke) for stroke in strokes]
            counts.append(len(strokes))
        return cls(
            np.concatenate(points) if points else np.zeros((0, 2), np.float32),
            np.array(sizes, np.int32),
            np.array(counts, np.int32),
            tuple(names),
            tuple(truths),
            **fields,
        )

    def __len__(self) -> int:
        return int(len(self.expression_strokes))

    def size(self, index: int) -> tuple[float, float]:
        """``(width, height)`` of expression `index`, in typical-symbol units.

        Example:
        >>> InkExpressions.from_strokes([[np.array([[0., 0.], [30., 10.]])]], names=["e"],
        ...                             truths=[""]).size(0)
        (0.694444, 0.231481)
        """
        width, height = self._sizes[index]
        return round(float(width), 6), round(float(height), 6)

    def strokes(self, index: int) -> list:
        """The strokes of expression `index` (float32 ``(n, 2)`` arrays).

        Example:
        >>> len(InkExpressions.from_strokes([[np.zeros((1, 2))] * 3], names=["e"],
        ...                                 truths=[""]).strokes(0))
        3
        """
        first, last = self._stroke_offsets[index], self._stroke_offsets[index + 1]
        bounds = (
            np.concatenate([[0], np.cumsum(self.stroke_sizes[first:last])])
            + self._point_offsets[index]
        )
        return [self.points[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def subset(self, indices) -> InkExpressions:
        """The expressions `indices`, in that order.

        Example:
        >>> data = InkExpressions.from_strokes([[np.zeros((1, 2))]] * 3, names="abc",
        ...                                    truths=["", "", ""])
        >>> data.subset([2, 0]).names
        ('c', 'a')
        """
        indices = [int(i) for i in indices]
        strokes = [self.strokes(i) for i in indices]
        sizes = [len(stroke) for group in strokes for stroke in group]
        points = [stroke for group in strokes for stroke in group]
        return dataclasses.replace(
            self,
            points=np.concatenate(points) if points else np.zeros((0, 2), np.float32),
            stroke_sizes=np.array(sizes, np.int32),
            expression_strokes=np.array([len(group) for group in strokes], np.int32),
            names=tuple(self.names[i] for i in indices),
            truths=tuple(self.truths[i] for i in indices),
        )

    def image_shape(
        self,
        index: int,
        symbol_size: float,
        *,
        padding: int = 2,
        line_width: float = 2.0,
        max_shape: tuple[int, int] = (256, 1024),
    ) -> tuple[int, int]:
        """The ``(height, width)`` `render` gives expression `index` (before any warp).

        Example:
        >>> InkExpressions.from_strokes([[np.array([[0., 0.], [20., 10.]])]], names=["e"],
        ...                             truths=[""]).image_shape(0, 10)
        (11, 14)
        """
        width, height = self._sizes[index]
        scale = _fit_scale(width, height, symbol_size, line_width, padding, max_shape)
        return _canvas(width * scale, height * scale, line_width, padding)

    def render(
        self,
        index: int,
        symbol_size: float = 36.0,
        *,
        line_width: float = 2.0,
        padding: int = 2,
        max_shape: tuple[int, int] = (256, 1024),
        augment: ExpressionAugment | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Draw expression `index`: uint8 ``(H, W)``, 255 = ink, its typical symbol
        `symbol_size` px (smaller if the expression would exceed `max_shape`).

        Args:
            index: int.
            symbol_size: float. Pixels of the typical symbol (see `symbol_size_for`).
            line_width: float. Pen width in pixels.
            padding: int. Empty pixels on each side.
            max_shape: (height, width). Largest image; bigger expressions are scaled down.
            augment: ExpressionAugment or None. Random warps of the strokes (needs `rng`).
            rng: numpy Generator.

        Example:
        >>> data = InkExpressions.from_strokes([[np.array([[0., 0.], [20., 10.]])]],
        ...                                    names=["e"], truths=[""])
        >>> image = data.render(0, symbol_size=10)
        >>> image.shape, int(image.max())
        ((11, 14), 255)
        """
        import cv2

        strokes = [stroke.astype(np.float64) for stroke in self.strokes(index)]
        if augment is not None:
            if rng is None:
                raise ValueError("`augment` needs an `rng` (numpy Generator). Received: rng=None")
            strokes, symbol_size, line_width = augment.apply(strokes, symbol_size, line_width, rng)
        joined = np.concatenate(strokes)
        low = joined.min(axis=0)
        width, height = joined.max(axis=0) - low
        scale = _fit_scale(width, height, symbol_size, line_width, padding, max_shape)
        shape = _canvas(width * scale, height * scale, line_width, padding)
        canvas = np.zeros(shape, np.uint8)
        thickness = max(1, int(round(line_width)))
        offset = padding + line_width / 2.0
        one = 16  # OpenCV fixed point: 4 fractional bits
        lines, dots = [], []
        for stroke in strokes:
            fixed = np.rint(((stroke - low) * scale + offset) * one).astype(np.int32)
            if (fixed == fixed[0]).all():
                dots.append(fixed[0])
            else:
                lines.append(fixed.reshape(-1, 1, 2))
        if lines:
            cv2.polylines(canvas, lines, False, 255, thickness, cv2.LINE_AA, 4)
        for x, y in dots:
            cv2.circle(
                canvas,
                (int(x), int(y)),
                max(int(round(thickness * one / 2)), one // 2),
                255,
                -1,
                cv2.LINE_AA,
                4,
            )
        return canvas


def _fit_scale(width, height, symbol_size, line_width, padding, max_shape) -> float:
    room_h = max_shape[0] - 2 * padding - line_width - 1
    room_w = max_shape[1] - 2 * padding - line_width - 1
    scale = float(symbol_size)
    if height * scale > room_h:
        scale = room_h / height
    if width * scale > room_w:
        scale = room_w / width
    return max(scale, 1e-6)


def _canvas(width: float, height: float, line_width: float, padding: int) -> tuple[int, int]:
    extra = 2 * padding + int(np.ceil(line_width)) + 1
    return int(np.ceil(height)) + extra, int(np.ceil(width)) + extra


@dataclasses.dataclass(frozen=True)
class ExpressionAugment:
    """Random warps of a whole expression's strokes before drawing.

    Args:
        rotation: float. Degrees, uniform in ``[-rotation, rotation]``.
        slant: float. Horizontal shear, uniform in ``[-slant, slant]``.
        aspect: float. Log-stretch of width over height, uniform in ``[-aspect, aspect]``.
        scale: float. Log-scale of the symbol size, uniform in ``[-scale, scale]``.
        stroke_shift: float. Standard deviation of a per-stroke shift, in symbol units.
        line_width: (low, high). Pen width in pixels, uniform.

    Example:
    >>> ExpressionAugment(rotation=3).apply([np.zeros((2, 2))], 36.0, 2.0,
    ...                                     np.random.default_rng(0))[1]
    36.0
    """

    rotation: float = 0.0
    slant: float = 0.0
    aspect: float = 0.0
    scale: float = 0.0
    stroke_shift: float = 0.0
    line_width: tuple = (2.0, 2.0)

    def apply(self, strokes, symbol_size: float, line_width: float, rng: np.random.Generator):
        """Return warped ``(strokes, symbol_size, line_width)``.

        Example:
        >>> strokes, size, width = ExpressionAugment(scale=0.1).apply(
        ...     [np.ones((3, 2))], 30.0, 2.0, np.random.default_rng(1))
        >>> 27 < size < 34
        True
        """
        angle = np.radians(rng.uniform(-1, 1) * self.rotation)
        shear = rng.uniform(-1, 1) * self.slant
        stretch = np.exp(rng.uniform(-1, 1) * self.aspect)
        cos, sin = np.cos(angle), np.sin(angle)
        matrix = np.array([[cos, -sin], [sin, cos]]) @ np.array(
            [[stretch, shear], [0, 1 / stretch]]
        )
        warped = []
        for stroke in strokes:
            moved = stroke @ matrix.T
            if self.stroke_shift:
                moved = moved + rng.normal(0, self.stroke_shift, 2)
            warped.append(moved)
        size = symbol_size * float(np.exp(rng.uniform(-1, 1) * self.scale))
        low, high = self.line_width
        width = float(rng.uniform(low, high)) if high > low else float(low) if low else line_width
        return warped, size, width


def _read_expression(path: str):
    from im2latex_encoder.data.errors import InkMLError
    from im2latex_encoder.data.inkml import read_inkml

    try:
        document = read_inkml(path)
    except InkMLError as error:
        return path, None, f"malformed: {error.reason}"
    except OSError as error:
        return path, None, f"cannot read the file ({error})"
    strokes = [stroke for stroke in document.strokes() if len(stroke)]
    if not strokes:
        return path, None, "no strokes"
    symbols = [symbol.strokes for symbol in document.symbols]
    return path, (strokes, symbols, document.truth or ""), None


@renamed_arguments(source="folders")
def read_crohme_expressions(
    folders,
    *,
    progress: bool = True,
    workers: int | None = None,
    cache: str | os.PathLike | None = None,
) -> InkExpressions:
    """Read every ``*.inkml`` under folder(s) `folders` as one expression each.

    Files that cannot be read are counted in ``report["skipped"]`` with their reason, never
    silently dropped; files without a ``truth`` keep ``""`` (fine for `recognize`, left out
    of scoring). With `cache`, the result is stored as a pickle-free ``.npz`` and reused while
    the files are unchanged.

    Args:
        folders: str, PathLike or a sequence of them. CROHME folder(s); ``source=`` is its
            deprecated spelling (removed in 0.3.0).
        progress: bool. A tqdm progress bar.
        workers: int or None. Processes (None: every CPU; 1: in this process).
        cache: path or None. The ``.npz`` to reuse or write (atomically).

    Raises:
        FileNotFoundError / NotADirectoryError: if a folder is missing.
        ValueError: if no file could be read.

    Example:
    >>> data = read_crohme_expressions("../shared/data/crohme/test2016")  # doctest: +SKIP
    >>> len(data)  # doctest: +SKIP
    1147
    """
    from im2latex_encoder.data.cache import crohme_source_hash

    folders = (
        [os.fspath(folders)]
        if isinstance(folders, (str, os.PathLike))
        else [os.fspath(folder) for folder in folders]
    )
    files = []
    for folder in folders:
        if not os.path.exists(folder):
            raise FileNotFoundError(f"No such CROHME folder: {folder!r}")
        if not os.path.isdir(folder):
            raise NotADirectoryError(
                f"Expected a folder of .inkml files. Received a file: {folder!r}"
            )
        for root, _, names in os.walk(folder):
            files += [os.path.join(root, name) for name in names if name.lower().endswith(".inkml")]
    files.sort()
    source_hash = crohme_source_hash(files, [], folders)
    settings = {"format_version": EXPRESSIONS_FORMAT_VERSION, "stroke_to_symbol": STROKE_TO_SYMBOL}
    if cache is not None and os.path.isfile(cache):
        try:
            cached = load_expressions(cache)
            if cached.source_hash == source_hash and cached.settings == settings:
                return cached
        except (ValueError, OSError):
            pass
    results = []
    iterator: Iterator[Any]
    if workers == 1 or len(files) < 64:
        iterator = map(_read_expression, files)
        pool = None
    else:
        import multiprocessing

        pool = multiprocessing.get_context("spawn").Pool(workers or os.cpu_count())
        iterator = pool.imap(_read_expression, files, chunksize=64)
    try:
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, total=len(files), desc="read expressions", unit="file")
        results = list(iterator)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    kept = [(path, content) for path, content, problem in results if content is not None]
    skipped = {os.path.basename(path): problem for path, _, problem in results if problem}
    if not kept:
        raise ValueError(
            f"No readable InkML expression under {folders}. Received {len(files)} "
            f"files; skipped: {dict(list(skipped.items())[:5])}"
        )
    names = [os.path.splitext(os.path.basename(path))[0] for path, _ in kept]
    report = {
        "files": len(files),
        "read": len(kept),
        "skipped": skipped,
        "without_truth": sum(1 for _, (_, _, truth) in kept if not truth),
        "sources": folders,
    }
    data = InkExpressions.from_strokes(
        [c[0] for _, c in kept],
        names=names,
        truths=[c[2] for _, c in kept],
        symbols=[c[1] for _, c in kept],
        settings=settings,
        source_hash=source_hash,
        report=report,
    )
    if cache is not None:
        save_expressions(cache, data)
    return data


def save_expressions(path: str | os.PathLike, data: InkExpressions) -> None:
    """Write `InkExpressions` to a compressed, pickle-free ``.npz``, atomically.

    Example:
    >>> import tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "e.npz")
    >>> save_expressions(out, InkExpressions.from_strokes([[np.zeros((1, 2))]], names=["e"],
    ...                                                    truths=["$x$"]))
    >>> load_expressions(out).truths
    ('$x$',)
    """
    from im2latex_encoder.data.npz import save_npz

    save_npz(
        path,
        {
            "points": data.points,
            "stroke_sizes": data.stroke_sizes,
            "expression_strokes": data.expression_strokes,
            "source_hash": np.array(data.source_hash),
        },
        kind=_KIND,
        version=EXPRESSIONS_FORMAT_VERSION,
        metadata={
            "names": list(data.names),
            "truths": list(data.truths),
            "settings": data.settings,
            "report": data.report,
        },
    )


def load_expressions(path: str | os.PathLike) -> InkExpressions:
    """Read a file written by `save_expressions` (``allow_pickle=False``).

    Raises:
        CacheError (a ValueError): if the file is not an expressions ``.npz`` of this version,
            or is damaged.

    Example:
    >>> load_expressions("test2016-expressions.npz")  # doctest: +SKIP
    """
    from im2latex_encoder.data.npz import open_npz

    with open_npz(path) as archive:
        archive.check(
            kind=_KIND,
            versions=[EXPRESSIONS_FORMAT_VERSION],
            arrays=["points", "stroke_sizes", "expression_strokes", "source_hash"],
            metadata=["names", "truths", "settings", "report"],
        )
        return InkExpressions(
            archive.array("points"),
            archive.array("stroke_sizes"),
            archive.array("expression_strokes"),
            tuple(archive.json("names")),
            tuple(archive.json("truths")),
            archive.json("settings"),
            archive.text("source_hash"),
            archive.json("report"),
        )


# Moved to the recognizer's preprocessor in 0.2.x; importable from here until 0.3.0.
__getattr__ = moved_names(
    __name__,
    {
        name: "im2latex_encoder.recognizer.preprocessor"
        for name in ("bucket_batches", "pad_batch", "symbol_size_for")
    },
)
