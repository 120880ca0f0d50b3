"""Hostile inputs (issue 6): every case ends in a typed error naming the file and the reason,
or in a documented, counted skip; a bulk scan over the whole corpus completes and counts each.

The corpus is generated here; no file is copied from anywhere. Time is bounded by the limits
the reader sets (`MAX_FILE_BYTES`, `MAX_TRACES`, `MAX_POINTS_PER_TRACE`, ...), not asserted:
`pytest.mark.timeout` is only a hang guard.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from im2latex_encoder.data.crohme import read_ground_truth, scan_crohme_folder
from im2latex_encoder.data.errors import GroundTruthError, InkMLError
from im2latex_encoder.data.inkml import MAX_FILE_BYTES, read_inkml
from im2latex_encoder.data.render import render_strokes
from inkml_fixtures import build_inkml

_VALID = build_inkml([[(0, 0), (10, 10), (20, 0)]], ui="ok", truth="", groups=[("", [0])])
_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE ink [<!ENTITY a "lol">'
    + b"".join(b'<!ENTITY %c "%s">' % (98 + i, (b"&%c;" % (97 + i)) * 10) for i in range(9))
    + b"]><ink><trace>&j;</trace></ink>"
)


def _trace_doc(text: str, ui: str) -> bytes:
    return (
        f'<ink><annotation type="UI">{ui}</annotation><trace id="t">{text}</trace></ink>'.encode()
    )


# name -> (file content, expected: a regex of the InkMLError reason, or "ok")
HOSTILE_INKML = {
    "billion_laughs": (_LAUGHS, "forbidden XML construct"),
    "quadratic_blowup": (
        b'<!DOCTYPE ink [<!ENTITY x "'
        + b"x" * 10_000
        + b'">]><ink><trace>'
        + b"&x;" * 1000
        + b"</trace></ink>",
        "forbidden XML construct",
    ),
    "external_entity": (
        b'<!DOCTYPE ink [<!ENTITY x SYSTEM "file:///etc/passwd">]><ink><trace>&x;</trace></ink>',
        "forbidden XML construct",
    ),
    "external_dtd": (
        b'<!DOCTYPE ink SYSTEM "http://example.invalid/ink.dtd"><ink><trace>0 0</trace></ink>',
        "forbidden XML construct",
    ),
    "parameter_entity": (
        b'<!DOCTYPE ink [<!ENTITY % p SYSTEM "http://example.invalid/p">%p;]><ink/>',
        "forbidden XML construct",
    ),
    "truncated_xml": (_VALID[: len(_VALID) // 2], "not well-formed"),
    "binary_garbage": (
        np.random.default_rng(6).integers(0, 256, 4096, np.uint8).tobytes(),
        "not well-formed",
    ),
    # Declared UTF-8 with a byte that is not (undeclared Latin-1 is read: see test_inkml).
    "non_utf8_bytes": (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<ink><annotation type="UI">caf\xe9</annotation>'
        b"<trace>0 0</trace></ink>",
        "not well-formed",
    ),
    "nul_bytes": (b"<ink>\x00\x00<trace>0 0</trace></ink>", "not well-formed"),
    "empty_file": (b"", "empty file"),
    "whitespace_only": (b" \n\t\n", "empty file"),
    "not_ink_root": (b"<svg><trace>0 0</trace></svg>", "expected an <ink> root"),
    "two_roots": (b"<ink><trace>0 0</trace></ink><ink/>", "not well-formed"),
    "unbound_prefix": (b"<x:ink><x:trace>0 0</x:trace></x:ink>", "not well-formed"),
    "no_traces": (b'<ink><annotation type="UI">h_none</annotation></ink>', "no <trace>"),
    "empty_trace": (_trace_doc("  ", "h_empty"), "is empty"),
    "nan": (_trace_doc("0 0, nan 1", "h_nan"), "finite"),
    "plus_inf": (_trace_doc("0 0, inf 1", "h_inf"), "finite"),
    "minus_inf": (_trace_doc("0 -Infinity", "h_minf"), "finite"),
    "huge_1e308": (_trace_doc("0 0, 1e308 1", "h_huge"), "finite"),
    "overflow_1e999": (_trace_doc("0 0, 1e999 1", "h_over"), "finite"),
    "non_numeric": (_trace_doc("0 0, x y", "h_text"), "numeric coordinates"),
    "ragged_points": (_trace_doc("0 0, 1 1 1, 2", "h_ragged"), "same 2 to 16 values"),
    "one_value_points": (_trace_doc("1, 2, 3", "h_one"), "same 2 to 16 values"),
    "million_points": (_trace_doc(", ".join(["1 2"] * 1_000_000), "h_million"), "too many points"),
    "ten_thousand_traces": (
        b"<ink>" + b"<trace>0 0</trace>" * 10_000 + b"</ink>",
        "too many traces",
    ),
    "too_large_file": (
        b"<ink><trace>0 0</trace>" + b" " * MAX_FILE_BYTES + b"</ink>",
        "file too large",
    ),
    "duplicate_trace_ids": (
        b'<ink><trace id="a">0 0</trace><trace id="a">1 1</trace></ink>',
        "duplicate trace id",
    ),
    "deep_nesting": (
        b"<ink>" + b"<traceGroup>" * 20_000 + b"</traceGroup>" * 20_000 + b"</ink>",
        "no <trace>",
    ),
    # Accepted: documented variants that are valid InkML.
    # A traceGroup pointing at a missing trace: its symbol is left out (`unreadable_symbols`),
    # the file's traces stand (CROHME 2016's UN_463_em_912 has one).
    "missing_trace_view": (
        b'<ink><trace id="a">0 0</trace><traceGroup>'
        b'<traceView traceDataRef="zz"/></traceGroup></ink>',
        "ok",
    ),
    "one_point": (_trace_doc("5 5", "h_dot"), "ok"),
    "prefixed_namespace": (
        b'<i:ink xmlns:i="http://www.w3.org/2003/InkML"><i:annotation '
        b'type="UI">h_prefixed</i:annotation><i:trace>0 0, 1 1</i:trace>'
        b"</i:ink>",
        "ok",
    ),
    "foreign_namespace": (
        build_inkml([[(0, 0), (1, 2)]], ui="h_foreign", namespace="urn:not-inkml"),
        "ok",
    ),
    "no_namespace": (build_inkml([[(0, 0, 1), (1, 2, 2)]], ui="h_nons", namespace=None), "ok"),
    "utf16_document": (
        '<?xml version="1.0" encoding="UTF-16"?><ink><annotation type="UI">'
        "h_utf16</annotation><trace>0 0, 3 4</trace></ink>".encode("utf-16"),
        "ok",
    ),
    "signed_exponents": (_trace_doc("+1.5e2 -3E-1, -2 +4.0", "h_exp"), "ok"),
}

# Ground-truth rows for the bulk scan: labels for the accepted files, an unknown label, junk,
# a duplicate UI with a conflicting label, blank lines, CRLF and a BOM.
GROUND_TRUTH = (
    "\ufeffh_dot,.\r\nh_prefixed,x\r\n\r\nh_foreign,\\heart\r\nh_nons,junk\r\n"
    "h_utf16,1\r\nh_exp,-\r\nh_dot,y\r\n   \r\nno comma\r\nh_gone,x\r\n"
)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(HOSTILE_INKML))
def test_each_hostile_file_is_a_typed_error_or_accepted(tmp_path, name):
    data, expected = HOSTILE_INKML[name]
    path = tmp_path / f"{name}.inkml"
    path.write_bytes(data)
    if expected == "ok":
        document = read_inkml(path)
        image = render_strokes(document.strokes(), 32)
        assert np.isfinite(image).all() and 0 <= image.min() and image.max() <= 1
        assert image.max() > 0
        return
    with pytest.raises(InkMLError, match=expected) as info:
        read_inkml(path)
    assert info.value.path == str(path)
    assert str(info.value).startswith(str(path))


@pytest.mark.timeout(60)
def test_bulk_scan_over_the_whole_corpus_counts_each_case(tmp_path):
    for name, (data, _) in HOSTILE_INKML.items():
        (tmp_path / f"{name}.inkml").write_bytes(data)
    (tmp_path / "iso_GT.txt").write_bytes(GROUND_TRUTH.encode("utf-8"))
    os.mkfifo(tmp_path / "fifo.inkml")  # would block a reader that opens it
    (tmp_path / "a_directory.inkml").mkdir()  # os.walk lists it as a folder, not a file
    scan = scan_crohme_folder(tmp_path)
    samples = list(scan)
    report = scan.report
    errors = sum(expected != "ok" for _, expected in HOSTILE_INKML.values())
    assert report.files == len(HOSTILE_INKML) + 1
    assert report.counts["malformed_file"] == errors + 1  # the FIFO too
    assert sorted(s.ui for s in samples) == ["h_dot", "h_exp", "h_prefixed", "h_utf16"]
    assert dict(zip([s.ui for s in samples], [s.label for s in samples]))["h_dot"] == "."
    assert report.counts["unknown_label"] == 1  # h_foreign is \heart
    assert report.counts["junk"] == 1  # h_nons
    assert report.counts["duplicate_ground_truth"] == 1  # second h_dot row
    assert report.counts["malformed_ground_truth_row"] == 1  # "no comma"
    assert report.counts["missing_file"] == 1  # h_gone
    assert report.counts["no_ground_truth"] == 1  # missing_trace_view: no UI, no readable label
    # every file is either used or counted under exactly one reason
    per_file = (
        report.counts["malformed_file"]
        + report.counts["unknown_label"]
        + report.counts["junk"]
        + report.counts["no_ground_truth"]
    )
    assert report.used + per_file == len(HOSTILE_INKML) + 1
    # strict: the ground truth (read first) has a conflicting duplicate; without it, the
    # first malformed InkML file is fatal
    with pytest.raises(GroundTruthError, match="repeated with another label"):
        list(scan_crohme_folder(tmp_path, strict=True))
    (tmp_path / "iso_GT.txt").write_text("h_dot,.\n")
    with pytest.raises(InkMLError):
        list(scan_crohme_folder(tmp_path, strict=True))


@pytest.mark.timeout(60)
def test_fifo_is_refused_without_opening(tmp_path):
    os.mkfifo(tmp_path / "fifo.inkml")
    with pytest.raises(InkMLError, match="expected a regular file"):
        read_inkml(tmp_path / "fifo.inkml")


@pytest.mark.parametrize(
    "data, match",
    [
        (b"a,x\n\xff\xfe\xfa,y\n", "expected UTF-8"),
        (b"\x00\x01\x02,x", "binary"),
    ],
)
def test_hostile_ground_truth_files_are_typed_errors(tmp_path, data, match):
    path = tmp_path / "iso_GT.txt"
    path.write_bytes(data)
    with pytest.raises(GroundTruthError, match=match) as info:
        read_ground_truth(path)
    assert info.value.path == str(path)


def test_ground_truth_hostile_rows_are_counted(tmp_path):
    path = tmp_path / "iso_GT.txt"
    path.write_bytes(GROUND_TRUTH.encode("utf-8"))
    truth = read_ground_truth(path)
    assert truth.labels == {
        "h_dot": ".",
        "h_prefixed": "x",
        "h_foreign": "\\heart",
        "h_nons": "junk",
        "h_utf16": "1",
        "h_exp": "-",
        "h_gone": "x",
    }
    assert truth.duplicates == [("h_dot", "y")] and len(truth.malformed) == 1


def _check_read_and_render(data: bytes) -> None:
    try:
        document = read_inkml(data)
    except InkMLError:
        return  # the only error allowed to escape
    strokes_sets = [document.strokes()] + [s.strokes for s in document.symbols]
    for strokes in strokes_sets:
        image = render_strokes(strokes, (24, 20))
        assert image.shape == (24, 20) and image.dtype == np.float32
        assert np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0


@pytest.mark.timeout(120)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_fuzz_random_bytes(data):
    _check_read_and_render(data)
    _check_read_and_render(b"<ink><trace>" + data + b"</trace></ink>")


_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(-(10**12), 10**12),
    st.sampled_from(["1e308", "-1e-320", "0", "-0", "+7", ".5", "5.", "1_0", "0x10", "", "--1"]),
)


@st.composite
def _documents(draw):
    n_traces = draw(st.integers(0, 5))
    width = draw(st.integers(1, 4))
    traces = []
    for _ in range(n_traces):
        n_points = draw(st.integers(0, 8))
        points = [
            " ".join(
                str(draw(_NUMBERS)) for _ in range(draw(st.sampled_from([width, width, width + 1])))
            )
            for _ in range(n_points)
        ]
        traces.append(draw(st.sampled_from([", ", ",", " , ", ",\n"])).join(points))
    ids = [draw(st.sampled_from(["a", "b", "c", "d"])) for _ in traces]
    namespace = draw(
        st.sampled_from(["", ' xmlns="http://www.w3.org/2003/InkML"', ' xmlns="urn:x"'])
    )
    body = "".join(f'<trace id="{i}">{t}</trace>' for i, t in zip(ids, traces))
    refs = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "#a", ""]), max_size=3))
    group = "".join(f'<traceView traceDataRef="{r}"/>' for r in refs)
    label = draw(st.sampled_from(["", "x", "\\alpha", "&lt;"]))
    return (
        f'<ink{namespace}><annotation type="UI">u</annotation>{body}<traceGroup>'
        f'<annotation type="truth">{label}</annotation>{group}</traceGroup></ink>'
    ).encode()


@pytest.mark.timeout(120)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents())
def test_fuzz_structured_documents(data):
    _check_read_and_render(data)


def test_hostile_corpus_size():
    # The count quoted in the closing note of issue 6: InkML cases here plus the ground-truth
    # cases (unknown label, junk, duplicate UI, blank lines, CRLF, BOM, missing row, malformed
    # row, non-UTF-8, binary).
    assert len(HOSTILE_INKML) == 36  # plus the FIFO case
