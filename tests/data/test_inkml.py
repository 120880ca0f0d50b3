"""Tests for im2latex_encoder/data/inkml.py: CROHME layouts, formats, namespaces, errors."""

from __future__ import annotations

import numpy as np
import pytest

from im2latex_encoder.data import inkml
from im2latex_encoder.data.errors import InkMLError
from im2latex_encoder.data.inkml import read_inkml, read_symbol_strokes
from inkml_fixtures import build_inkml

SQUARE = [[(0, 0), (10, 0), (10, 10)], [(5, 5)]]


@pytest.mark.parametrize(
    "namespace", ["http://www.w3.org/2003/InkML", None, "http://example.org/other"]
)
def test_isolated_layout_any_namespace(tmp_path, namespace):
    path = tmp_path / "iso1.inkml"
    path.write_bytes(
        build_inkml(
            SQUARE, ui="101_alfonso_1", truth="", namespace=namespace, groups=[("", [0, 1])]
        )
    )
    ui, strokes = read_symbol_strokes(path)
    assert ui == "101_alfonso_1"
    assert [s.shape for s in strokes] == [(3, 2), (1, 2)]
    assert strokes[0].dtype == np.float64
    np.testing.assert_array_equal(strokes[0], [[0, 0], [10, 0], [10, 10]])
    document = read_inkml(path)
    assert document.path == str(path)
    assert document.symbols[0].trace_ids == ("0", "1")


def test_expression_layout_gives_one_symbol_per_group():
    traces = [[(0, 0), (1, 1)], [(2, 0), (3, 1)], [(4, 4), (5, 5)]]
    data = build_inkml(traces, ui="expr_7", truth="$x+1$", groups=[("x", [0]), ("+", [1, 2])])
    document = read_inkml(data)
    assert document.truth == "$x+1$" and document.ui == "expr_7"
    assert [s.label for s in document.symbols] == ["x", "+"]
    assert document.symbols[1].trace_ids == ("1", "2")
    np.testing.assert_array_equal(document.symbols[1].strokes[1], [[4, 4], [5, 5]])
    assert document.path == "<bytes>"


def test_three_channels_keep_x_and_y():
    document = read_inkml(build_inkml([[(1, 2, 100), (3, 4, 110)]]))
    np.testing.assert_array_equal(document.strokes()[0], [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1 2, 3 4", [[1, 2], [3, 4]]),
        ("1.5 -2.25,3e2 +4", [[1.5, -2.25], [300, 4]]),
        ("  1\t2 ,\n 3   4 ,", [[1, 2], [3, 4]]),  # odd whitespace, trailing comma
        ("-1E-1 2.0 0.5, 3 4 0.6", [[-0.1, 2], [3, 4]]),
        ("7 8", [[7, 8]]),
    ],
)
def test_coordinate_formats(text, expected):
    document = read_inkml(f'<ink><trace id="t">{text}</trace></ink>'.encode())
    np.testing.assert_allclose(document.traces["t"], expected)


def test_xml_id_and_hash_refs():
    data = (
        b'<ink><trace xml:id="a">0 0, 1 1</trace><traceGroup>'
        b'<annotation type="truth">y</annotation><traceView traceDataRef="#a"/>'
        b"</traceGroup></ink>"
    )
    document = read_inkml(data)
    assert list(document.traces) == ["a"] and document.symbols[0].label == "y"


def test_traces_without_ids_are_numbered():
    document = read_inkml(b"<ink><trace>0 0</trace><trace>1 1</trace></ink>")
    assert list(document.traces) == ["#0", "#1"]


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty file"),
        (b"   \n", "empty file"),
        (b"<ink></ink>", "no <trace>"),
        (b"<ink><trace id='a'>   </trace></ink>", "is empty"),
        (
            b"<ink><trace id='a'>0 0, 1 1</trace><trace id='a'>2 2</trace></ink>",
            "duplicate trace id",
        ),
        (b"<ink><trace>0 0, 1</trace></ink>", "same 2 to"),
        (b"<ink><trace>0 0 0, 1 1</trace></ink>", "same 2 to"),
        (b"<ink><trace>5</trace></ink>", "same 2 to"),
        (b"<ink><trace>a b</trace></ink>", "numeric coordinates. Received: 'a'"),
        (b"<ink><trace>0 nan</trace></ink>", "finite"),
        (b"<ink><trace>0 -inf</trace></ink>", "finite"),
        (b"<ink><trace>0 1e308</trace></ink>", "finite"),
        (b"<svg><trace>0 0</trace></svg>", "expected an <ink> root"),
        (b"<ink><trace>0 0</trace>", "not well-formed"),
    ],
)
def test_malformed_documents_raise_inkml_error(data, reason):
    with pytest.raises(InkMLError, match=reason) as info:
        read_inkml(data, name="case.inkml")
    assert info.value.path == "case.inkml"


def test_dangling_trace_view_spoils_only_its_symbol():
    document = read_inkml(
        b"<ink><trace id='a'>0 0, 1 1</trace><trace id='c'>2 2</trace>"
        b"<traceGroup><annotation type='truth'>x</annotation><traceView traceDataRef='a'/>"
        b"</traceGroup><traceGroup><annotation type='truth'>y</annotation>"
        b"<traceView traceDataRef='c'/><traceView traceDataRef='b'/></traceGroup></ink>"
    )
    assert [s.label for s in document.symbols] == ["x"]
    assert document.unreadable_symbols == ("y",)


def test_undeclared_latin1_is_read_and_declared_encodings_are_respected():
    # CROHME's MfrDB0104 has a Latin-1 middle dot (0xB7) in its MathML and no declaration.
    data = b"<ink><annotation type='UI'>m\xb7</annotation><trace>0 0, 1 1</trace></ink>"
    assert read_inkml(data).ui == "m\u00b7"
    declared = b"<?xml version='1.0' encoding='UTF-8'?>" + data
    with pytest.raises(InkMLError, match="not well-formed"):
        read_inkml(declared)


def test_limits_are_enforced(monkeypatch):
    monkeypatch.setattr(inkml, "MAX_TRACES", 3)
    with pytest.raises(InkMLError, match="too many traces: at most 3"):
        read_inkml(b"<ink>" + b"<trace>0 0</trace>" * 4 + b"</ink>")
    monkeypatch.setattr(inkml, "MAX_POINTS_PER_TRACE", 4)
    with pytest.raises(InkMLError, match="too many points: at most 4. Received: 5"):
        read_inkml(b"<ink><trace>0 0,1 1,2 2,3 3,4 4</trace></ink>")
    monkeypatch.setattr(inkml, "MAX_TOTAL_POINTS", 5)
    with pytest.raises(InkMLError, match="too many points in the file"):
        read_inkml(b"<ink><trace>0 0,1 1,2 2</trace><trace>0 0,1 1,2 2</trace></ink>")
    monkeypatch.setattr(inkml, "MAX_FILE_BYTES", 50)
    with pytest.raises(InkMLError, match="file too large"):
        read_inkml(b"<ink><trace>0 0</trace></ink>" + b" " * 60)


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No InkML file"):
        read_inkml(tmp_path / "missing.inkml")
    with pytest.raises(InkMLError, match="directory"):
        read_inkml(tmp_path)


def test_real_sample_files_parse(crohme_sample_dir):
    files = sorted(crohme_sample_dir.glob("*.inkml"))
    assert len(files) == 100
    for path in files:
        ui, strokes = read_symbol_strokes(path)
        assert ui and strokes and all(s.ndim == 2 and s.shape[1] == 2 for s in strokes)
