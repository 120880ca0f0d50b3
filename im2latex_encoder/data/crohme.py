"""CROHME folders and ground-truth files -> labelled strokes, with a report of what was skipped.

A CROHME folder holds InkML files and ground-truth files (``iso_GT.txt``,
``testSymbols_2016_iso_GT.txt``: any ``*GT*.txt``) with ``UI,label`` rows. An isolated-symbol
file's label is looked up by the UI inside the file (not by its file name); an expression-level
file (traceGroups with ``truth`` annotations) yields one sample per labelled traceGroup.

Nothing is dropped silently: every ground-truth row without a file, file without a label,
label outside the class list, junk sample and malformed file is counted in a `SkipReport`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from im2latex_encoder._deprecation import deprecated_attribute, renamed_arguments
from im2latex_encoder.data.errors import GroundTruthError, InkMLError
from im2latex_encoder.data.inkml import InkMLDocument, read_inkml
from im2latex_encoder.symbols import CROHME_SYMBOLS, JUNK

#: Largest ground-truth file read, in bytes (CROHME 2016's training file is about 2 MB).
MAX_GROUND_TRUTH_BYTES = 64 * 1024 * 1024
#: Example file names or UIs kept per skip reason.
MAX_EXAMPLES = 5
#: Version of the rules that turn CROHME files into samples (part of a prepared cache's
#: settings, so a cache made under older rules is rebuilt). 2: a dangling traceView costs one
#: symbol, not the file; expressions sharing a UI are both kept; undeclared Latin-1 files are read.
SCAN_VERSION = 2

#: Label spellings mapped to CROHME's class names: the literal characters some files use
#: (CROHME 2016's test expressions write ``,``, ``<``, ``>``; a ground-truth row ``UI,,`` is a
#: comma) and LaTeX synonyms of a class that older files and other tools write.
LABEL_ALIASES = {
    ",": "COMMA",
    "<": "\\lt",
    ">": "\\gt",
    "\\lbrack": "[",
    "\\rbrack": "]",
    "\\lbrace": "\\{",
    "\\rbrace": "\\}",
    "\\ge": "\\geq",
    "\\le": "\\leq",
    "\\ne": "\\neq",
    "\\to": "\\rightarrow",
    "\\dots": "\\ldots",
    "\\vert": "|",
    "\\mid": "|",
}

#: The reasons a `SkipReport` counts, with their meaning.
SKIP_REASONS = {
    "missing_file": "ground-truth row whose InkML file is not in the folder",
    "no_ground_truth": "InkML file whose UI has no ground-truth row (and no truth annotations)",
    "unknown_label": "label outside the class list",
    "junk": "CROHME's junk class (kept as a class with include_junk=True)",
    "malformed_file": "InkML file that could not be read (see the examples for the reason)",
    "unreadable_symbol": "labelled traceGroup of a readable file that refers to a missing trace",
    "duplicate_file": "second InkML file with a UI already seen (the first one is used)",
    "duplicate_ground_truth": "repeated UI in the ground truth (the first row wins)",
    "malformed_ground_truth_row": "ground-truth line that is not 'UI,label'",
}

Paths = str | os.PathLike | Sequence[str | os.PathLike]


@dataclasses.dataclass
class SkipReport:
    """What a scan of CROHME folders used and what it skipped, by reason.

    Args:
        used: int. Samples used.
        files: int. InkML files seen.
        ground_truth_rows: int. Distinct UIs in the ground-truth files.
        counts: dict reason -> int. Skips by reason (see `SKIP_REASONS`).
        examples: dict reason -> list of str. Up to `MAX_EXAMPLES` file names, UIs or messages.
        per_label: dict label -> int. Samples used per label.

    Example:
    >>> report = SkipReport()
    >>> report.skip("missing_file", "101_alfonso_7")
    >>> report.to_dict()["counts"], report.total_skipped
    ({'missing_file': 1}, 1)
    """

    used: int = 0
    files: int = 0
    ground_truth_rows: int = 0
    counts: dict = dataclasses.field(default_factory=dict)
    examples: dict = dataclasses.field(default_factory=dict)
    per_label: dict = dataclasses.field(default_factory=dict)

    def skip(self, reason: str, example: str, count: int = 1) -> None:
        """Count `count` skips for `reason`, keeping `example` if there is room.

        Example:
        >>> r = SkipReport(); r.skip("junk", "a.inkml"); r.counts
        {'junk': 1}
        """
        if reason not in SKIP_REASONS:
            raise ValueError(
                f"`reason` must be one of {sorted(SKIP_REASONS)}. Received: reason={reason!r}"
            )
        self.counts[reason] = self.counts.get(reason, 0) + count
        examples = self.examples.setdefault(reason, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(example)

    def use(self, label: str) -> None:
        """Count one sample used for `label`.

        Example:
        >>> r = SkipReport(); r.use("x"); r.used, r.per_label
        (1, {'x': 1})
        """
        self.used += 1
        self.per_label[label] = self.per_label.get(label, 0) + 1

    def merge_skips(self, other: SkipReport) -> None:
        """Add `other`'s skip counts and examples (not its used samples) to this report.

        Example:
        >>> a, b = SkipReport(), SkipReport(); b.skip("junk", "j.inkml"); a.merge_skips(b)
        >>> a.counts
        {'junk': 1}
        """
        for reason, number in other.counts.items():
            self.counts[reason] = self.counts.get(reason, 0) + number
            examples = self.examples.setdefault(reason, [])
            room = MAX_EXAMPLES - len(examples)
            examples.extend(other.examples.get(reason, [])[: max(room, 0)])

    @property
    def total_skipped(self) -> int:
        """Skips over all reasons.

        Example:
        >>> SkipReport(counts={"junk": 2, "unknown_label": 1}).total_skipped
        3
        """
        return sum(self.counts.values())

    def to_dict(self) -> dict:
        """A JSON-serialisable copy.

        Example:
        >>> sorted(SkipReport().to_dict())
        ['counts', 'examples', 'files', 'ground_truth_rows', 'per_label', 'used']
        """
        return {
            "used": self.used,
            "files": self.files,
            "ground_truth_rows": self.ground_truth_rows,
            "counts": dict(self.counts),
            "examples": {k: list(v) for k, v in self.examples.items()},
            "per_label": dict(sorted(self.per_label.items())),
        }

    def summary(self) -> str:
        """A human-readable summary: counts by reason with a few examples.

        Example:
        >>> r = SkipReport(files=3); r.use("x"); r.skip("junk", "j.inkml")
        >>> print(r.summary())
        used 1 samples of 1 labels from 3 InkML files; skipped 1:
          junk: 1 (e.g. j.inkml)
        """
        skipped = f"skipped {self.total_skipped}:" if self.total_skipped else "skipped nothing"
        lines = [
            f"used {self.used} samples of {len(self.per_label)} labels from {self.files} "
            f"InkML files; {skipped}"
        ]
        for reason in SKIP_REASONS:
            if self.counts.get(reason):
                examples = ", ".join(self.examples.get(reason, [])[:3])
                lines.append(f"  {reason}: {self.counts[reason]} (e.g. {examples})")
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class GroundTruth:
    """Labels by UI from one or more ground-truth files.

    Args:
        labels: dict UI -> label (CROHME spelling, aliases resolved).
        duplicates: list of (UI, ignored label). Repeated UIs; the first row wins.
        malformed: list of str. ``"file:line: text"`` of lines that are not ``UI,label``.

    Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "iso_GT.txt")
    >>> _ = open(path, "w").write("a_1,x\\r\\na_2,,\\n\\na_1,y\\n")
    >>> gt = read_ground_truth(path)
    >>> gt.labels, gt.duplicates
    ({'a_1': 'x', 'a_2': 'COMMA'}, [('a_1', 'y')])
    """

    labels: dict
    duplicates: list
    malformed: list


def read_ground_truth(paths: Paths, *, strict: bool = False) -> GroundTruth:
    """Read CROHME ground-truth files: one ``UI,label`` row per line.

    Each line is split on its FIRST comma (so ``UI,,`` is the label ``,``). Blank lines,
    Windows line endings and a UTF-8 byte-order mark are accepted; labels are stripped and
    `LABEL_ALIASES` applied (``,`` -> ``COMMA``). A repeated UI keeps its first row (counted in
    `GroundTruth.duplicates`). A line without a comma, or with an empty UI or label, is
    counted in `GroundTruth.malformed`, or raises with ``strict=True``.

    Args:
        paths: str, PathLike or a sequence of them. The ground-truth file(s), read in order.
        strict: bool. Raise on the first malformed line or conflicting duplicate.

    Raises:
        FileNotFoundError: if a file does not exist.
        GroundTruthError: if a file is too large, not UTF-8, or (strict) malformed.

    Example:
    >>> read_ground_truth("train/iso_GT.txt").labels["101_alfonso_0"]  # doctest: +SKIP
    '('
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    labels: dict[str, str] = {}
    duplicates, malformed = [], []
    for path in paths:
        path = os.fspath(path)
        size = os.path.getsize(path)
        if size > MAX_GROUND_TRUTH_BYTES:
            raise GroundTruthError(
                path,
                f"file too large: at most {MAX_GROUND_TRUTH_BYTES} bytes. Received: {size} bytes",
            )
        with open(path, "rb") as handle:
            data = handle.read(MAX_GROUND_TRUTH_BYTES + 1)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise GroundTruthError(
                path, f"expected UTF-8 text. Received: an invalid byte at offset {error.start}"
            ) from None
        if "\x00" in text:
            raise GroundTruthError(
                path, "expected a text file of 'UI,label' lines. Received: binary data (NUL bytes)"
            )
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            ui, comma, label = line.partition(",")
            ui, label = ui.strip(), label.strip()
            label = LABEL_ALIASES.get(label, label)
            if not comma or not ui or not label:
                message = f"{os.path.basename(path)}:{number}: {line[:60]!r}"
                if strict:
                    raise GroundTruthError(
                        path, f"line {number}: expected 'UI,label'. Received: {line[:60]!r}"
                    )
                malformed.append(message)
                continue
            if ui in labels:
                if strict and labels[ui] != label:
                    raise GroundTruthError(
                        path,
                        f"line {number}: UI {ui!r} repeated with "
                        f"another label: expected {labels[ui]!r}. "
                        f"Received: {label!r}",
                    )
                duplicates.append((ui, label))
                continue
            labels[ui] = label
    return GroundTruth(labels, duplicates, malformed)


def _as_folders(folders: Paths) -> list[str]:
    if isinstance(folders, (str, os.PathLike)):
        folders = [folders]
    result = []
    for folder in folders:
        folder = os.fspath(folder)
        if not os.path.exists(folder):
            raise FileNotFoundError(f"No CROHME folder at {folder!r}")
        if not os.path.isdir(folder):
            raise NotADirectoryError(f"Expected a CROHME folder. Received a file: {folder!r}")
        result.append(folder)
    if not result:
        raise ValueError("Expected at least one CROHME folder. Received: none")
    return result


def is_ground_truth_file(name: str) -> bool:
    """Whether a file name is a CROHME ground-truth file (``*GT*.txt``).

    Example:
    >>> is_ground_truth_file("iso_GT.txt"), is_ground_truth_file("notes.txt")
    (True, False)
    """
    return name.endswith(".txt") and "GT" in name


@renamed_arguments(directories="folders")
def list_crohme_files(folders: Paths) -> tuple[list[str], list[str]]:
    """Walk folders recursively: return ``(inkml_files, ground_truth_files)``, sorted.

    Only names are listed (no file is opened), in a deterministic order.

    Args:
        folders: str, PathLike or a sequence of them (e.g. train and validation);
            ``directories=`` is its deprecated spelling (removed in 0.3.0).

    Raises:
        FileNotFoundError / NotADirectoryError: if a folder is missing or a file.

    Example:
    >>> list_crohme_files("crohme/train")  # doctest: +SKIP
    (['crohme/train/iso0.inkml', ...], ['crohme/train/iso_GT.txt'])
    """
    inkml, ground_truth = [], []
    for folder in _as_folders(folders):
        for root, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for name in sorted(filenames):
                if name.lower().endswith(".inkml"):
                    inkml.append(os.path.join(root, name))
                elif is_ground_truth_file(name):
                    ground_truth.append(os.path.join(root, name))
    return inkml, ground_truth


@dataclasses.dataclass(frozen=True)
class CrohmeSample:
    """One labelled symbol from a CROHME folder.

    Args:
        path: str. The InkML file.
        ui: str. The sample's UI (for expression files: ``"<UI>#<group index>"``).
        label: str. The CROHME class name.
        label_index: int. Index of `label` in the class list.
        strokes: list of float64 ``(n, 2)`` arrays.

    Example:
    >>> import numpy as np
    >>> CrohmeSample("a.inkml", "a_0", "x", 3, [np.zeros((1, 2))]).label_index
    3
    """

    path: str
    ui: str
    label: str
    label_index: int
    strokes: list


def label_list(labels: Sequence[str] = CROHME_SYMBOLS, include_junk: bool = False) -> tuple:
    """The class list a scan uses: `labels`, plus ``"junk"`` when `include_junk`.

    Example:
    >>> label_list(("a", "b"), include_junk=True)
    ('a', 'b', 'junk')
    """
    labels = tuple(labels)
    if include_junk and JUNK not in labels:
        labels += (JUNK,)
    return labels


def classify_document(
    document: InkMLDocument, ground_truth: dict, label_index: dict, report: SkipReport
) -> list[tuple[str, str, list]]:
    """Decide what a read InkML file contributes: a list of ``(ui, label, strokes)``.

    An isolated-symbol file whose UI is in the ground truth gives one sample with all its
    traces. Otherwise, traceGroups with a non-empty ``truth`` give one sample each (an
    expression-level file). Labels outside `label_index` are counted as ``unknown_label``
    (``junk`` as ``junk``) in `report`; a file that gives nothing is ``no_ground_truth``.

    Example:
    >>> from im2latex_encoder.data.inkml import read_inkml
    >>> doc = read_inkml(b'<ink><annotation type="UI">u</annotation><trace>0 0</trace></ink>')
    >>> classify_document(doc, {"u": "x"}, {"x": 0}, SkipReport())[0][:2]
    ('u', 'x')
    """
    name = os.path.basename(document.path)
    if document.ui is not None and document.ui in ground_truth:
        candidates = [(document.ui, ground_truth[document.ui], document.strokes())]
    else:
        candidates = [
            (f"{document.ui or name}#{index}", symbol.label, symbol.strokes)
            for index, symbol in enumerate(document.symbols)
            if symbol.label
        ]
        if not candidates:
            report.skip("no_ground_truth", f"{name} (UI {document.ui!r})")
            return []
        for label in document.unreadable_symbols:
            report.skip("unreadable_symbol", f"{name} ({label[:30]!r})")
    kept = []
    for ui, label, strokes in candidates:
        label = LABEL_ALIASES.get(label, label)
        if label in label_index:
            kept.append((ui, label, strokes))
        elif label == JUNK:
            report.skip("junk", name)
        else:
            report.skip("unknown_label", f"{name} ({label[:30]!r})")
    return kept


@dataclasses.dataclass(frozen=True)
class FileRecord:
    """What one InkML file of a scan gives, before the scan checks it for duplicates.

    Args:
        path: str. The InkML file.
        ui: str or None. The UI annotated in the file.
        samples: list of ``(ui, label, payload)``. The labelled symbols; the payload is the
            symbol's strokes (a preparer may replace it by an image, see `with_payloads`).
        skips: SkipReport. The file's own skips (junk, unknown labels, unreadable symbols).
        error: InkMLError or None. Why the file could not be read (then nothing else is set).

    Example:
    >>> FileRecord("a.inkml", None, [], SkipReport()).error is None
    True
    """

    path: str
    ui: str | None
    samples: list
    skips: SkipReport
    error: InkMLError | None = None

    def with_payloads(self, convert: Callable[[list], Any]) -> FileRecord:
        """A copy whose sample payloads are ``convert(strokes)`` (e.g. rendered images).

        Example:
        >>> import numpy as np
        >>> record = FileRecord("a.inkml", "u", [("u", "x", [np.zeros((1, 2))])], SkipReport())
        >>> record.with_payloads(len).samples
        [('u', 'x', 1)]
        """
        samples = [(ui, label, convert(strokes)) for ui, label, strokes in self.samples]
        return dataclasses.replace(self, samples=samples)


def read_crohme_file(path: str, ground_truth: dict, label_index: dict) -> FileRecord:
    """Read and classify one InkML file of a CROHME scan: the per-file step of `CrohmeScan`.

    Needs no state but its arguments, so worker processes run it on their share of the files
    (see `im2latex_encoder.data.crohme_preparer`) while the scan, in one process, checks the
    records for duplicates in file order (`CrohmeScan.add`). A file that cannot be parsed, or
    read at all (vanished since the listing), gives a record with its `InkMLError`.

    Args:
        path: str. The InkML file.
        ground_truth: dict UI -> label (`CrohmeScan.start`'s).
        label_index: dict label -> index. The scan's class list.

    Example:
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.inkml")
    >>> _ = open(path, "w").write('<ink><annotation type="UI">u</annotation>'
    ...                           '<trace>0 0, 1 1</trace></ink>')
    >>> record = read_crohme_file(path, {"u": "x"}, {"x": 0})
    >>> record.ui, [label for _, label, _ in record.samples]
    ('u', ['x'])
    """
    try:
        document = read_inkml(path)
    except InkMLError as error:
        return FileRecord(path, None, [], SkipReport(), error)
    except OSError as error:  # vanished or unreadable since the listing
        return FileRecord(
            path, None, [], SkipReport(), InkMLError(path, f"cannot read the file ({error})")
        )
    skips = SkipReport()
    samples = classify_document(document, ground_truth, label_index, skips)
    return FileRecord(path, document.ui, samples, skips)


class CrohmeScan:
    """An iterable over the labelled symbols of CROHME folders; see `scan_crohme_folder`.

    Iterating reads one file at a time and yields `CrohmeSample` objects; `report` is filled
    as it goes and complete (with ``missing_file``) when the iteration ends. Iterating again
    starts over with a fresh report. `folders` lists the folders scanned (``directories`` is
    its deprecated spelling, removed in 0.3.0).

    Example:
    >>> scan = scan_crohme_folder("crohme/train")  # doctest: +SKIP
    >>> samples = list(scan); print(scan.report.summary())  # doctest: +SKIP
    """

    directories = deprecated_attribute("directories", "folders", "CrohmeScan")

    @renamed_arguments(directories="folders")
    def __init__(
        self,
        folders: Paths,
        *,
        labels: Sequence[str] = CROHME_SYMBOLS,
        include_junk: bool = False,
        strict: bool = False,
    ):
        self.folders = _as_folders(folders)
        self.labels = label_list(labels, include_junk)
        self.label_index = {label: index for index, label in enumerate(self.labels)}
        self.strict = strict
        self.report = SkipReport()

    def files(self) -> tuple[list[str], list[str]]:
        """``(inkml_files, ground_truth_files)`` of the folders (names only).

        Example:
        >>> scan_crohme_folder("crohme/train").files()  # doctest: +SKIP
        """
        return list_crohme_files(self.folders)

    def start(self, ground_truth_files: Iterable[str]) -> dict:
        """Reset the report and read the ground truth; return its UI -> label dict.

        Example:
        >>> scan.start(["iso_GT.txt"])  # doctest: +SKIP
        """
        self.report = SkipReport()
        truth = read_ground_truth(list(ground_truth_files), strict=self.strict)
        self.report.ground_truth_rows = len(truth.labels)
        for ui, _ in truth.duplicates:
            self.report.skip("duplicate_ground_truth", ui)
        for line in truth.malformed:
            self.report.skip("malformed_ground_truth_row", line)
        self._seen: set[str] = set()
        self._ground_truth = truth.labels
        return truth.labels

    def accept(self, path: str, ui: str | None) -> bool:
        """Count a file; return False (and count a skip) if it was already seen.

        An isolated-symbol file (its UI in the ground truth) is a duplicate when its UI was
        seen; an expression file when its UI was seen in a file of the same name: two writers'
        expressions may share a UI (CROHME 2016's ``UN_127_em_600`` and ``UN_451_em_600``),
        and both are kept.

        Example:
        >>> scan.accept("iso0.inkml", "101_alfonso_0")  # doctest: +SKIP
        True
        """
        self.report.files += 1
        if ui is None:
            return True
        key = ui if ui in self._ground_truth else f"{ui}\0{os.path.basename(path)}"
        if key in self._seen:
            self.report.skip("duplicate_file", os.path.basename(path))
            return False
        self._seen.add(key)
        return True

    def malformed(self, error: InkMLError) -> None:
        """Count a malformed file (or raise it when strict).

        Example:
        >>> scan.malformed(InkMLError("x.inkml", "empty file"))  # doctest: +SKIP
        """
        self.report.files += 1
        if self.strict:
            raise error
        self.report.skip("malformed_file", f"{os.path.basename(error.path)}: {error.reason}"[:160])

    def finish(self, ground_truth: dict) -> None:
        """Count the ground-truth rows whose file never appeared as ``missing_file``.

        Example:
        >>> scan.finish(labels)  # doctest: +SKIP
        """
        missing = 0
        for ui in ground_truth:
            if ui not in self._seen:
                missing += 1
                if len(self.report.examples.get("missing_file", [])) < MAX_EXAMPLES:
                    self.report.examples.setdefault("missing_file", []).append(ui)
        if missing:
            self.report.counts["missing_file"] = missing

    def read_file(self, path: str) -> FileRecord:
        """Read one InkML file against the ground truth `start` returned (see `read_crohme_file`).

        Example:
        >>> scan.start(ground_truth_files); scan.read_file("iso0.inkml").ui  # doctest: +SKIP
        '101_alfonso_0'
        """
        return read_crohme_file(path, self._ground_truth, self.label_index)

    def add(self, record: FileRecord) -> list[tuple[str, str, Any]]:
        """Count a file's record in the report; return the samples to use, in order.

        A malformed file is counted (or raised, when strict), a duplicate file is counted
        and gives nothing, and a used file's own skips are merged into the report. The
        caller counts each sample it keeps with ``report.use(label)``.

        Example:
        >>> scan.add(scan.read_file("iso0.inkml"))  # doctest: +SKIP
        [('101_alfonso_0', 'x', [array(...)])]
        """
        if record.error is not None:
            self.malformed(record.error)
            return []
        if not self.accept(record.path, record.ui):
            return []
        self.report.merge_skips(record.skips)
        return record.samples

    def __iter__(self) -> Iterator[CrohmeSample]:
        inkml_files, ground_truth_files = self.files()
        ground_truth = self.start(ground_truth_files)
        for path in inkml_files:
            for ui, label, strokes in self.add(self.read_file(path)):
                self.report.use(label)
                yield CrohmeSample(path, ui, label, self.label_index[label], strokes)
        self.finish(ground_truth)


@renamed_arguments(directories="folders")
def scan_crohme_folder(
    folders: Paths,
    *,
    labels: Sequence[str] = CROHME_SYMBOLS,
    include_junk: bool = False,
    strict: bool = False,
) -> CrohmeScan:
    """Stream the labelled symbols of CROHME folders, reporting everything not used.

    Walks the folder(s) recursively (train and validation folders may be given together),
    reads every ``*GT*.txt`` ground-truth file, then reads the ``*.inkml`` files one at a time
    (memory stays bounded on a 100,000-file folder). Skips are counted by reason in
    ``scan.report`` (see `SKIP_REASONS`): ground-truth rows without a file are
    ``missing_file`` (normal for a partial download, not an error), files without a label
    ``no_ground_truth``, labels outside `labels` ``unknown_label``, CROHME's ``junk``
    ``junk`` (or a class of its own with ``include_junk=True``), unreadable files
    ``malformed_file``; a repeated UI keeps its first occurrence.

    Args:
        folders: str, PathLike or a sequence of them; ``directories=`` is its deprecated
            spelling (removed in 0.3.0).
        labels: sequence of str. The class list (default: the 101 `CROHME_SYMBOLS`).
        include_junk: bool. Keep ``junk`` samples as an extra last class.
        strict: bool. Raise the first `InkMLError` (and malformed ground-truth lines as
            `GroundTruthError`) instead of counting it. Missing files, unknown labels and
            junk are never errors.

    Returns:
        A `CrohmeScan`: iterate it for `CrohmeSample` objects; then read ``scan.report``.

    Raises:
        FileNotFoundError / NotADirectoryError: if a folder is missing or a file.

    Example:
    >>> scan = scan_crohme_folder("../shared/data/crohme-sample/train")  # doctest: +SKIP
    >>> samples = list(scan)  # doctest: +SKIP
    >>> scan.report.counts["missing_file"]  # doctest: +SKIP
    85702
    """
    return CrohmeScan(folders, labels=labels, include_junk=include_junk, strict=strict)
