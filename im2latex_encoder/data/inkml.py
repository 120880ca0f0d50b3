"""InkML files -> strokes, safely.

Reads the CROHME layouts: isolated-symbol files (one symbol, its id in
``<annotation type="UI">``) and expression-level files (each ``traceGroup`` with ``traceView``
children is one symbol, labelled by its ``truth`` annotation). Traces hold two or more channels
(``X Y`` or ``X Y T``); only X and Y are kept. Coordinates may be integers or decimals with signs
and exponents; points are separated by commas and values by whitespace. Tags are matched by local
name, so files with the ``http://www.w3.org/2003/InkML`` namespace, another namespace or none
all read the same.

Parsing goes through `defusedxml` with DTDs, entities and external references forbidden, and
every size is bounded by the limits below; anything outside them raises `InkMLError` naming the
file and the reason. Nothing is silently dropped: a non-finite or huge coordinate is an error.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import stat
from xml.etree.ElementTree import ParseError

import defusedxml
import defusedxml.ElementTree as safe_etree
import numpy as np

from im2latex_encoder.data.errors import InkMLError

#: Largest InkML file read, in bytes (CROHME files are a few kB; the largest expression ~100 kB).
MAX_FILE_BYTES = 10 * 1024 * 1024
#: Most points in one trace.
MAX_POINTS_PER_TRACE = 100_000
#: Most points in one file, over all traces.
MAX_TOTAL_POINTS = 200_000
#: Most traces in one file.
MAX_TRACES = 2_000
#: Largest absolute coordinate accepted; beyond it (or NaN/inf) the file is rejected.
MAX_ABS_COORDINATE = 1e9
#: Most values (channels) per point.
MAX_CHANNELS = 16

_VALUE = r"[^\s,]+"  # what float() is then asked to parse
_XML_ID = "{http://www.w3.org/XML/1998/namespace}id"

PathOrBytes = str | os.PathLike | bytes | bytearray | memoryview


@dataclasses.dataclass(frozen=True)
class InkSymbol:
    """One symbol of an InkML file: its label and strokes.

    Args:
        label: str. The ``truth`` annotation of the symbol's traceGroup ("" when absent).
        strokes: list of np.ndarray float64 of shape ``(n, 2)``, X and Y per point.
        trace_ids: tuple of str. The ids of the traces the strokes come from.

    Example:
    >>> doc = read_inkml(b'<ink><trace id="1">0 0, 1 1</trace><traceGroup>'
    ...                  b'<annotation type="truth">x</annotation>'
    ...                  b'<traceView traceDataRef="1"/></traceGroup></ink>')
    >>> doc.symbols[0].label, doc.symbols[0].trace_ids
    ('x', ('1',))
    """

    label: str
    strokes: list
    trace_ids: tuple


@dataclasses.dataclass(frozen=True)
class InkMLDocument:
    """The content of an InkML file.

    Args:
        path: str. The file read, or ``"<bytes>"`` (or the given name) for in-memory data.
        ui: str or None. The ``UI`` annotation of the file (CROHME's sample id).
        truth: str or None. The file's own ``truth`` annotation (an expression's LaTeX).
        traces: dict str -> np.ndarray float64 ``(n, 2)``, in file order. Traces without an id
            get the key ``"#<index>"``.
        symbols: list of `InkSymbol`, one per traceGroup with traceView children.
        unreadable_symbols: tuple of str. The labels of traceGroups that refer to a trace the
            file does not have (left out of `symbols`).

    Example:
    >>> doc = read_inkml(b'<ink><annotation type="UI">s_1</annotation>'
    ...                  b'<trace>1 2, 3 4</trace></ink>')
    >>> doc.ui, doc.traces["#0"].shape, len(doc.strokes())
    ('s_1', (2, 2), 1)
    """

    path: str
    ui: str | None
    truth: str | None
    traces: dict
    symbols: list
    unreadable_symbols: tuple = ()

    def strokes(self) -> list:
        """All traces of the file as a list of ``(n, 2)`` arrays, in file order.

        Example:
        >>> read_inkml(b"<ink><trace>0 0</trace><trace>1 1</trace></ink>").strokes()[1]
        array([[1., 1.]])
        """
        return list(self.traces.values())


@functools.lru_cache(maxsize=1024)
def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _read_bytes(source: PathOrBytes, name: str | None) -> tuple[str, bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = name or "<bytes>"
        if len(data) > MAX_FILE_BYTES:
            raise InkMLError(
                label,
                f"file too large: at most {MAX_FILE_BYTES} bytes. Received: {len(data)} bytes",
            )
        return label, data
    path = os.fspath(source)
    label = name or path
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"No InkML file at {path!r}") from None
    if stat.S_ISDIR(status.st_mode):
        raise InkMLError(label, "expected an InkML file. Received: a directory")
    if not stat.S_ISREG(status.st_mode):  # a FIFO or device would block or never end
        raise InkMLError(label, "expected a regular file. Received: a FIFO, socket or device")
    if status.st_size > MAX_FILE_BYTES:
        raise InkMLError(
            label,
            f"file too large: at most {MAX_FILE_BYTES} bytes. Received: {status.st_size} bytes",
        )
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)  # the file may have grown since the stat
    except OSError as error:
        raise InkMLError(label, f"cannot read the file ({error.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise InkMLError(label, f"file too large: more than {MAX_FILE_BYTES} bytes")
    return label, data


def _parse_trace(label: str, trace_id: str, text: str | None, budget: int) -> np.ndarray:
    """Parse ``"x y [t], x y [t], ..."`` into a float64 ``(n, 2)`` array."""
    text = (text or "").strip()
    if not text:
        raise InkMLError(label, f"trace {trace_id!r} is empty: expected at least one point")
    # Count before parsing so a huge trace costs a string scan, not a million floats.
    count = text.count(",") + 1
    if count > MAX_POINTS_PER_TRACE:
        raise InkMLError(
            label,
            f"trace {trace_id!r} has too many points: at most "
            f"{MAX_POINTS_PER_TRACE}. Received: {count}",
        )
    if count > budget:
        raise InkMLError(label, f"too many points in the file: at most {MAX_TOTAL_POINTS}")
    first = text.split(",", 1)[0].split()
    width = len(first)
    if not 2 <= width <= MAX_CHANNELS or not _points_pattern(width).fullmatch(text):
        widths = sorted({len(point.split()) for point in text.split(",") if point.strip()})
        raise InkMLError(
            label,
            f"trace {trace_id!r}: expected every point to have the same "
            f"2 to {MAX_CHANNELS} values (X Y [T ...]) separated by "
            f"commas. Received: points with {widths} values",
        )
    flat = text.replace(",", " ").split()
    try:
        values = np.array(flat, dtype=np.float64).reshape(-1, width)[:, :2]
    except ValueError:
        bad = next(value for value in flat if not _is_float(value))
        raise InkMLError(
            label, f"trace {trace_id!r}: expected numeric coordinates. Received: {bad[:40]!r}"
        ) from None
    # One reduction checks all three: NaN fails every comparison, inf exceeds the limit.
    if not np.abs(values).max() <= MAX_ABS_COORDINATE:
        raise InkMLError(
            label,
            f"trace {trace_id!r}: coordinates must be finite and at most "
            f"{MAX_ABS_COORDINATE:g} in magnitude. Received: NaN, inf or "
            f"a huge value",
        )
    return values


@functools.cache
def _points_pattern(width: int) -> re.Pattern:
    # Points of `width` whitespace-separated values, comma-separated, an optional trailing comma.
    point = rf"\s*{_VALUE}(?:\s+{_VALUE}){{{width - 1}}}\s*"
    return re.compile(rf"{point}(?:,{point})*,?\s*")


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _annotation(element, kind: str) -> str | None:
    for child in element:
        if _local(child.tag) == "annotation" and child.get("type") == kind:
            return (child.text or "").strip()
    return None


def _parse_xml(data: bytes):
    """Parse with defusedxml; undeclared non-UTF-8 bytes are read as Latin-1.

    XML without an encoding declaration is UTF-8 by definition, but some CROHME files
    (``MfrDB0104``: a Latin-1 middle dot in its MathML) were written in Latin-1; read so,
    their strokes are intact.
    """
    options = dict(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        return safe_etree.fromstring(data, **options)
    except ParseError:
        head = data[:200].lstrip()
        if b"encoding=" in head.split(b"?>", 1)[0] if head.startswith(b"<?xml") else False:
            raise
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
            if text.startswith("<?xml"):
                text = text.split("?>", 1)[1]
            return safe_etree.fromstring(text, **options)
        raise


def read_inkml(source: PathOrBytes, *, name: str | None = None) -> InkMLDocument:
    """Read an InkML file (CROHME isolated-symbol or expression-level) into strokes.

    The XML goes through `defusedxml` (no DTD, no entities, no external references) and every
    size is bounded (`MAX_FILE_BYTES`, `MAX_TRACES`, `MAX_POINTS_PER_TRACE`, `MAX_TOTAL_POINTS`,
    `MAX_ABS_COORDINATE`).

    Args:
        source: str, PathLike or bytes. A file path, or the file's content.
        name: str, optional. The name errors use for in-memory data (default ``"<bytes>"``).

    Returns:
        An `InkMLDocument`.

    Raises:
        FileNotFoundError: if `source` is a path that does not exist.
        InkMLError: if the file is empty, too large, not well-formed XML, hostile (DTD,
            entities), not an ``<ink>`` document, has no traces, an empty trace, a non-numeric,
            non-finite or huge coordinate or a duplicate trace id. The message names the file
            and the reason. A traceGroup that refers to a missing trace is left out of
            `symbols` and named in `unreadable_symbols`; undeclared Latin-1 text is accepted.

    Example:
    >>> doc = read_inkml(b'<ink xmlns="http://www.w3.org/2003/InkML">'
    ...                  b'<trace id="a">0 0 5, 10 0 6</trace></ink>')
    >>> doc.traces["a"].tolist()
    [[0.0, 0.0], [10.0, 0.0]]
    """
    label, data = _read_bytes(source, name)
    if not data.strip():
        raise InkMLError(label, "empty file: expected an <ink> XML document")
    try:
        root = _parse_xml(data)
    except defusedxml.DefusedXmlException as error:
        raise InkMLError(
            label,
            f"forbidden XML construct ({type(error).__name__}): DTDs, "
            f"entities and external references are not accepted",
        ) from None
    except ParseError as error:
        raise InkMLError(label, f"not well-formed XML ({error})") from None
    except (ValueError, UnicodeError, RecursionError) as error:
        raise InkMLError(label, f"unreadable XML ({type(error).__name__}: {error})") from None
    if _local(root.tag) != "ink":
        raise InkMLError(
            label, f"expected an <ink> root element. Received: <{_local(root.tag)[:40]}>"
        )

    traces: dict[str, np.ndarray] = {}
    groups = []
    budget = MAX_TOTAL_POINTS
    for element in root.iter():
        tag = _local(element.tag)
        if tag == "trace":
            if len(traces) >= MAX_TRACES:
                raise InkMLError(label, f"too many traces: at most {MAX_TRACES}")
            trace_id = element.get("id") or element.get(_XML_ID) or f"#{len(traces)}"
            if trace_id in traces:
                raise InkMLError(label, f"duplicate trace id {trace_id[:40]!r}")
            points = _parse_trace(label, trace_id, element.text, budget)
            budget -= len(points)
            traces[trace_id] = points
        elif tag == "traceGroup":
            groups.append(element)
    if not traces:
        raise InkMLError(label, "no <trace> element: expected at least one stroke")

    symbols, unreadable = [], []
    for group in groups:
        refs = [
            child.get("traceDataRef", "") for child in group if _local(child.tag) == "traceView"
        ]
        if not refs:
            continue  # a container of other groups, e.g. the expression's "Segmentation"
        ids = [ref.lstrip("#") for ref in refs]
        if not all(i in traces for i in ids):
            # A dangling reference spoils this symbol only; the file's other symbols stand.
            unreadable.append(_annotation(group, "truth") or "")
            continue
        symbols.append(
            InkSymbol(_annotation(group, "truth") or "", [traces[i] for i in ids], tuple(ids))
        )
    return InkMLDocument(
        label,
        _annotation(root, "UI"),
        _annotation(root, "truth"),
        traces,
        symbols,
        tuple(unreadable),
    )


def read_symbol_strokes(source: PathOrBytes) -> tuple[str | None, list]:
    """Read a CROHME isolated-symbol file: its UI and all its traces as strokes.

    Args:
        source: str, PathLike or bytes. The InkML file or its content.

    Returns:
        ``(ui, strokes)``: the ``UI`` annotation (None when absent) and a list of float64
        ``(n, 2)`` arrays in file order.

    Raises:
        InkMLError: as `read_inkml`.

    Example:
    >>> read_symbol_strokes(b'<ink><annotation type="UI">u_3</annotation>'
    ...                     b'<trace>0 0, 1 2</trace></ink>')[0]
    'u_3'
    """
    document = read_inkml(source)
    return document.ui, document.strokes()
