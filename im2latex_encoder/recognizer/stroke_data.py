"""CROHME expressions read as strokes in writing order, with each stroke's symbol annotation.

The annotation (which symbol each stroke belongs to, and its class) is a training signal only:
the stroke recognizer's auxiliary losses learn from it, and no reading ever sees it.

Example:
>>> import numpy as np
>>> data = StrokeExpressions.from_lists(
...     [[np.array([[0., 0.], [1., 1.]]), np.array([[0., 1.], [1., 0.]])]],
...     names=["e"], truths=["$x$"], stroke_labels=[[97, 97]], stroke_groups=[[0, 0]])
>>> len(data), data.stroke_count(0), data.labels(0).tolist()
(1, 2, [97, 97])
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from im2latex_encoder.symbols import CROHME_SYMBOLS

#: Version of the stroke expressions' ``.npz`` layout.
STROKE_DATA_FORMAT = 1
_KIND = "stroke-expressions"
UNLABELLED = -1


@dataclasses.dataclass(frozen=True, eq=False)
class StrokeExpressions:
    """Expressions as raw strokes (file units, Y down) in a few flat arrays.

    Args:
        points: float32 ``(P, 2)``. Every stroke's points.
        stroke_sizes: int32 ``(S,)``. Points per stroke.
        expression_strokes: int32 ``(N,)``. Strokes per expression.
        stroke_labels: int16 ``(S,)``. Each stroke's symbol class (an index into
            `CROHME_SYMBOLS`), or -1 when its symbol is unlabelled or outside the 101.
        stroke_groups: int32 ``(S,)``. Each stroke's symbol within its expression (0, 1, ...
            in order of first stroke), or -1 when it belongs to no symbol.
        names: tuple of str. File stems.
        truths: tuple of str. Each file's raw ``truth`` ("" when absent).
        report: dict. JSON; files skipped and why.

    Example:
    >>> data = StrokeExpressions.from_lists([[np.zeros((1, 2))]], names=["a"], truths=[""])
    >>> data.strokes(0)[0].shape
    (1, 2)
    """

    points: np.ndarray
    stroke_sizes: np.ndarray
    expression_strokes: np.ndarray
    stroke_labels: np.ndarray
    stroke_groups: np.ndarray
    names: tuple
    truths: tuple
    report: dict = dataclasses.field(default_factory=dict)
    _stroke_offsets: np.ndarray = dataclasses.field(init=False, repr=False)
    _point_offsets: np.ndarray = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "truths", tuple(self.truths))
        n = len(self.expression_strokes)
        if len(self.names) != n or len(self.truths) != n:
            raise ValueError(
                f"Need one name and one truth per expression ({n}). Received: "
                f"{len(self.names)} names, {len(self.truths)} truths"
            )
        strokes = int(self.expression_strokes.sum())
        if not strokes == len(self.stroke_sizes) == len(self.stroke_labels) == len(
            self.stroke_groups
        ) or int(self.stroke_sizes.sum()) != len(self.points):
            raise ValueError(
                "`expression_strokes` must add up to the strokes (and their labels and "
                "groups), `stroke_sizes` to the points. Received: "
                f"{strokes} vs {len(self.stroke_sizes)} strokes, "
                f"{len(self.stroke_labels)} labels, {len(self.stroke_groups)} groups, "
                f"{int(self.stroke_sizes.sum())} vs {len(self.points)} points"
            )
        stroke_offsets = np.concatenate([[0], np.cumsum(self.expression_strokes, dtype=np.int64)])
        point_ends = np.concatenate([[0], np.cumsum(self.stroke_sizes, dtype=np.int64)])
        object.__setattr__(self, "_stroke_offsets", stroke_offsets)
        object.__setattr__(self, "_point_offsets", point_ends)

    @classmethod
    def from_lists(
        cls,
        expressions: Sequence[Sequence[np.ndarray]],
        *,
        names: Sequence[str],
        truths: Sequence[str],
        stroke_labels: Sequence[Sequence[int]] | None = None,
        stroke_groups: Sequence[Sequence[int]] | None = None,
        report: dict | None = None,
    ) -> StrokeExpressions:
        """Build from one list of ``(n, 2)`` strokes per expression.

        Example:
        >>> StrokeExpressions.from_lists([[np.zeros((2, 2))] * 3], names=["a"],
        ...                              truths=[""]).stroke_count(0)
        3
        """
        strokes = [np.asarray(s, np.float32).reshape(-1, 2) for e in expressions for s in e]
        total = len(strokes)

        def flat(values, fill):
            if values is None:
                return np.full(total, fill)
            out = [v for e in values for v in e]
            if len(out) != total:
                raise ValueError(f"Need one value per stroke ({total}). Received: {len(out)}")
            return np.asarray(out)

        return cls(
            points=np.concatenate(strokes) if strokes else np.zeros((0, 2), np.float32),
            stroke_sizes=np.array([len(s) for s in strokes], np.int32),
            expression_strokes=np.array([len(e) for e in expressions], np.int32),
            stroke_labels=flat(stroke_labels, UNLABELLED).astype(np.int16),
            stroke_groups=flat(stroke_groups, -1).astype(np.int32),
            names=tuple(names),
            truths=tuple(truths),
            report=dict(report or {}),
        )

    def __len__(self) -> int:
        return len(self.expression_strokes)

    def stroke_count(self, index: int) -> int:
        """Strokes of expression `index`.

        Example:
        >>> StrokeExpressions.from_lists([[np.zeros((1, 2))]], names=["a"],
        ...                              truths=[""]).stroke_count(0)
        1
        """
        return int(self.expression_strokes[index])

    def _stroke_range(self, index: int) -> tuple[int, int]:
        return int(self._stroke_offsets[index]), int(self._stroke_offsets[index + 1])

    def strokes(self, index: int) -> list[np.ndarray]:
        """Expression `index`'s strokes, float64 ``(n, 2)`` each, in writing order.

        Example:
        >>> data = StrokeExpressions.from_lists([[np.ones((2, 2))]], names=["a"], truths=[""])
        >>> data.strokes(0)[0].tolist()
        [[1.0, 1.0], [1.0, 1.0]]
        """
        first, last = self._stroke_range(index)
        bounds = self._point_offsets[first : last + 1]
        return [self.points[a:b].astype(np.float64) for a, b in zip(bounds[:-1], bounds[1:])]

    def labels(self, index: int) -> np.ndarray:
        """Expression `index`'s stroke labels (-1: unlabelled).

        Example:
        >>> StrokeExpressions.from_lists([[np.ones((1, 2))]], names=["a"], truths=[""],
        ...                              stroke_labels=[[3]]).labels(0).tolist()
        [3]
        """
        first, last = self._stroke_range(index)
        return self.stroke_labels[first:last]

    def groups(self, index: int) -> np.ndarray:
        """Expression `index`'s stroke groups (-1: in no symbol).

        Example:
        >>> StrokeExpressions.from_lists([[np.ones((1, 2))]], names=["a"], truths=[""],
        ...                              stroke_groups=[[0]]).groups(0).tolist()
        [0]
        """
        first, last = self._stroke_range(index)
        return self.stroke_groups[first:last]

    def subset(self, indices: Sequence[int]) -> StrokeExpressions:
        """The expressions at `indices`, in that order.

        Example:
        >>> data = StrokeExpressions.from_lists([[np.ones((1, 2))], [np.zeros((1, 2))]] ,
        ...                                     names=["a", "b"], truths=["", ""])
        >>> data.subset([1]).names
        ('b',)
        """
        indices = [int(i) for i in indices]
        return StrokeExpressions.from_lists(
            [self.strokes(i) for i in indices],
            names=[self.names[i] for i in indices],
            truths=[self.truths[i] for i in indices],
            stroke_labels=[self.labels(i).tolist() for i in indices],
            stroke_groups=[self.groups(i).tolist() for i in indices],
            report=self.report,
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write to a pickle-free ``.npz``, atomically.

        Example:
        >>> import tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "s.npz")
        >>> StrokeExpressions.from_lists([[np.ones((1, 2))]], names=["a"], truths=["x"]).save(path)
        >>> StrokeExpressions.load(path).truths
        ('x',)
        """
        from im2latex_encoder.data.npz import save_npz

        save_npz(
            path,
            {
                "points": self.points.astype(np.float32),
                "stroke_sizes": self.stroke_sizes,
                "expression_strokes": self.expression_strokes,
                "stroke_labels": self.stroke_labels,
                "stroke_groups": self.stroke_groups,
            },
            kind=_KIND,
            version=STROKE_DATA_FORMAT,
            metadata={
                "names": list(self.names),
                "truths": list(self.truths),
                "report": self.report,
            },
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> StrokeExpressions:
        """Read `save`'s file (no pickle).

        Example:
        >>> StrokeExpressions.load("missing.npz")  # doctest: +SKIP
        """
        from im2latex_encoder.data.npz import open_npz

        arrays = ("points", "stroke_sizes", "expression_strokes", "stroke_labels", "stroke_groups")
        with open_npz(path) as archive:
            archive.check(
                kind=_KIND,
                versions=(STROKE_DATA_FORMAT,),
                arrays=arrays,
                metadata=("names", "truths", "report"),
            )
            values = {key: archive.array(key) for key in arrays}
            return cls(
                **values,
                names=tuple(archive.json("names")),
                truths=tuple(archive.json("truths")),
                report=archive.json("report"),
            )


def read_stroke_document(source) -> tuple[list, list, list, str]:
    """One InkML file's strokes in file order with each stroke's label and group.

    Returns ``(strokes, labels, groups, truth)``; a stroke outside every labelled symbol of the
    101 classes gets label -1 (its group is still its traceGroup's).

    Example:
    >>> strokes, labels, groups, truth = read_stroke_document(
    ...     b'<ink><annotation type="truth">$x$</annotation><trace id="1">0 0, 1 1</trace>'
    ...     b'<trace id="2">0 1, 1 0</trace><traceGroup><traceGroup>'
    ...     b'<annotation type="truth">x</annotation><traceView traceDataRef="1"/>'
    ...     b'<traceView traceDataRef="2"/></traceGroup></traceGroup></ink>')
    >>> len(strokes), labels, groups, truth
    (2, [97, 97], [0, 0], '$x$')
    """
    from im2latex_encoder.data.crohme import LABEL_ALIASES
    from im2latex_encoder.data.inkml import read_inkml

    document = read_inkml(source)
    index = {label: i for i, label in enumerate(CROHME_SYMBOLS)}
    keys = [key for key, trace in document.traces.items() if len(trace)]
    position = {key: i for i, key in enumerate(keys)}
    labels = [UNLABELLED] * len(keys)
    groups = [-1] * len(keys)
    symbols = sorted(
        (
            min(position[t] for t in symbol.trace_ids if t in position),
            symbol,
        )
        for symbol in document.symbols
        if any(t in position for t in symbol.trace_ids)
    )
    for group, (_, symbol) in enumerate(symbols):
        label = index.get(LABEL_ALIASES.get(symbol.label, symbol.label), UNLABELLED)
        for trace_id in symbol.trace_ids:
            if trace_id in position:
                labels[position[trace_id]] = label
                groups[position[trace_id]] = group
    strokes = [document.traces[key] for key in keys]
    return strokes, labels, groups, document.truth or ""


def _read_file(path: str):
    from im2latex_encoder.data.errors import InkMLError

    try:
        strokes, labels, groups, truth = read_stroke_document(path)
    except InkMLError as error:
        return path, None, f"malformed: {error.reason}"
    except OSError as error:
        return path, None, f"cannot read the file ({error})"
    if not strokes:
        return path, None, "no strokes"
    return path, (strokes, labels, groups, truth), None


def read_stroke_expressions(
    folders, *, progress: bool = True, workers: int | None = None
) -> StrokeExpressions:
    """Read every ``*.inkml`` under `folders` as strokes with their symbol annotation.

    Files that cannot be read are counted in ``report["skipped"]`` with their reason. From
    64 files on, `workers` processes (default: one per core) read them, started with
    ``spawn``: a script that calls this must do so under ``if __name__ == "__main__":``, or
    each worker runs the script again and the pool never finishes.

    Example:
    >>> read_stroke_expressions("../shared/data/crohme/test2016")  # doctest: +SKIP
    """
    folders = [os.fspath(folders)] if isinstance(folders, (str, os.PathLike)) else list(folders)
    files = []
    for folder in folders:
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"Expected a folder of .inkml files. Received: {folder!r}")
        for root, _, names in os.walk(folder):
            files += [os.path.join(root, n) for n in names if n.lower().endswith(".inkml")]
    files.sort()
    iterator: Iterator[Any]
    pool = None
    if workers == 1 or len(files) < 64:
        iterator = map(_read_file, files)
    else:
        import multiprocessing

        pool = multiprocessing.get_context("spawn").Pool(workers or os.cpu_count())
        iterator = pool.imap(_read_file, files, chunksize=64)
    try:
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, total=len(files), desc="read strokes", unit="file")
        results = list(iterator)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    kept = [(path, content) for path, content, _ in results if content is not None]
    skipped = {os.path.basename(path): problem for path, _, problem in results if problem}
    if not kept:
        raise ValueError(f"No readable InkML expression under {folders}; skipped: {skipped}")
    return StrokeExpressions.from_lists(
        [c[0] for _, c in kept],
        names=[os.path.splitext(os.path.basename(p))[0] for p, _ in kept],
        truths=[c[3] for _, c in kept],
        stroke_labels=[c[1] for _, c in kept],
        stroke_groups=[c[2] for _, c in kept],
        report={"files": len(files), "read": len(kept), "skipped": skipped},
    )
