"""Tests for im2latex_encoder/data/crohme.py: ground truth, folder scans, the skip report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from im2latex_encoder.data.crohme import (
    LABEL_ALIASES,
    SkipReport,
    list_crohme_files,
    read_ground_truth,
    scan_crohme_folder,
)
from im2latex_encoder.data.errors import GroundTruthError, InkMLError
from im2latex_encoder.symbols import CROHME_SYMBOLS
from inkml_fixtures import build_inkml

STROKES = [[(0, 0), (10, 5), (20, 0)]]


def _iso(folder, name, ui, **kwargs):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(build_inkml(STROKES, ui=ui, truth="", groups=[("", [0])], **kwargs))


# === Ground truth ===


def test_ground_truth_first_comma_bom_crlf_blank_lines(tmp_path):
    path = tmp_path / "iso_GT.txt"
    path.write_bytes(
        "\ufeffa_1,x\r\na_2,,\r\n\r\n  \na_3,\\lt\r\na_4, y \r\na_5,a,b\r\n".encode("utf-8")
    )
    truth = read_ground_truth(path)
    assert truth.labels == {"a_1": "x", "a_2": "COMMA", "a_3": "\\lt", "a_4": "y", "a_5": "a,b"}
    assert truth.duplicates == [] and truth.malformed == []


def test_ground_truth_duplicates_first_wins(tmp_path):
    path = tmp_path / "GT.txt"
    path.write_text("u,x\nu,y\nu,x\n")
    truth = read_ground_truth(path)
    assert truth.labels == {"u": "x"}
    assert truth.duplicates == [("u", "y"), ("u", "x")]
    with pytest.raises(GroundTruthError, match="repeated with another label: expected 'x'"):
        read_ground_truth(path, strict=True)


def test_ground_truth_malformed_rows_counted_or_fatal(tmp_path):
    path = tmp_path / "GT.txt"
    path.write_text("u,x\nno comma here\n,x\nv,\n")
    truth = read_ground_truth(path)
    assert truth.labels == {"u": "x"} and len(truth.malformed) == 3
    assert truth.malformed[0].startswith("GT.txt:2:")
    with pytest.raises(GroundTruthError, match="line 2: expected 'UI,label'"):
        read_ground_truth(path, strict=True)


@pytest.mark.parametrize(
    "data, match", [(b"u,x\n\xff\xfe\n", "expected UTF-8"), (b"u,x\x00\x00\n", "binary")]
)
def test_ground_truth_binary_is_error(tmp_path, data, match):
    path = tmp_path / "GT.txt"
    path.write_bytes(data)
    with pytest.raises(GroundTruthError, match=match):
        read_ground_truth(path)


# === Folder scans ===


def test_scan_uses_ui_not_file_name_and_reports_every_skip(tmp_path):
    train = tmp_path / "train"
    _iso(train, "iso0.inkml", "s_0")
    _iso(train / "nested", "iso1.inkml", "s_1", namespace=None)
    _iso(train, "iso2.inkml", "s_2")  # label outside the class list
    _iso(train, "iso3.inkml", "s_3")  # junk
    _iso(train, "iso4.inkml", "s_none")  # no ground-truth row
    _iso(train, "iso5.inkml", "s_0")  # second file with the same UI
    (train / "iso6.inkml").write_bytes(b"<ink><trace>0 0,</ink>")  # malformed
    (train / "notes.txt").write_text("ignored")
    (train / "iso_GT.txt").write_text(
        "s_1,\\alpha\ns_0,x\ns_2,\\heart\ns_3,junk\ns_9,y\ns_9,y\nbroken\n"
    )
    scan = scan_crohme_folder(train)
    samples = list(scan)
    assert [(s.ui, s.label) for s in samples] == [("s_0", "x"), ("s_1", "\\alpha")]
    assert samples[0].label_index == CROHME_SYMBOLS.index("x")
    assert samples[1].path.endswith("nested/iso1.inkml")
    report = scan.report
    assert report.counts == {
        "missing_file": 1,
        "no_ground_truth": 1,
        "unknown_label": 1,
        "junk": 1,
        "malformed_file": 1,
        "duplicate_file": 1,
        "duplicate_ground_truth": 1,
        "malformed_ground_truth_row": 1,
    }
    assert report.examples["missing_file"] == ["s_9"]
    assert "iso6.inkml" in report.examples["malformed_file"][0]
    assert report.used == 2 and report.files == 7 and report.ground_truth_rows == 5
    assert json.loads(json.dumps(report.to_dict()))["counts"]["junk"] == 1
    summary = report.summary()
    assert "missing_file: 1" in summary and "used 2 samples" in summary


def test_scan_include_junk_and_strict(tmp_path):
    _iso(tmp_path, "a.inkml", "j_1")
    (tmp_path / "bad.inkml").write_bytes(b"")
    (tmp_path / "GT.txt").write_text("j_1,junk\n")
    samples = list(scan_crohme_folder(tmp_path, include_junk=True))
    assert [(s.label, s.label_index) for s in samples] == [("junk", 101)]
    with pytest.raises(InkMLError, match="bad.inkml: empty file"):
        list(scan_crohme_folder(tmp_path, strict=True))


def test_scan_expression_files_and_several_folders(tmp_path):
    traces = [[(0, 0), (1, 1)], [(2, 0)], [(3, 0), (4, 4)]]
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "expr.inkml").write_bytes(
        build_inkml(
            traces,
            ui="e_1",
            truth="$x . \\heart$",
            groups=[("x", [0]), (".", [1]), ("\\heart", [2])],
        )
    )
    _iso(tmp_path / "validation", "v.inkml", "v_1")
    (tmp_path / "validation" / "testSymbols_2016_iso_GT.txt").write_text("v_1,COMMA\n")
    scan = scan_crohme_folder([tmp_path / "train", tmp_path / "validation"])
    samples = list(scan)
    assert [(s.ui, s.label) for s in samples] == [("e_1#0", "x"), ("e_1#1", "."), ("v_1", "COMMA")]
    np.testing.assert_array_equal(samples[1].strokes[0], [[2, 0]])
    assert scan.report.counts == {"unknown_label": 1}


def test_scan_custom_labels(tmp_path):
    _iso(tmp_path, "a.inkml", "u")
    (tmp_path / "iso_GT.txt").write_text("u,x\n")
    assert list(scan_crohme_folder(tmp_path, labels=("y",))) == []
    assert [s.label_index for s in scan_crohme_folder(tmp_path, labels=("y", "x"))] == [1]


def test_scan_iterates_again_with_a_fresh_report(tmp_path):
    _iso(tmp_path, "a.inkml", "u")
    (tmp_path / "iso_GT.txt").write_text("u,x\nw,y\n")
    scan = scan_crohme_folder(tmp_path)
    assert len(list(scan)) == 1 and len(list(scan)) == 1
    assert scan.report.counts == {"missing_file": 1} and scan.report.files == 1


def test_bad_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="No CROHME folder"):
        scan_crohme_folder(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(NotADirectoryError):
        scan_crohme_folder(tmp_path / "file.txt")
    with pytest.raises(ValueError, match="at least one"):
        scan_crohme_folder([])


def test_skip_report_rejects_unknown_reason():
    with pytest.raises(ValueError, match="must be one of"):
        SkipReport().skip("because", "x")


def test_list_files_is_sorted_and_recursive(tmp_path):
    for name in ["b/2.inkml", "a/1.INKML", "c.inkml", "a/iso_GT.txt", "a/readme.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    inkml_files, truth_files = list_crohme_files(tmp_path)
    assert [p.removeprefix(str(tmp_path) + "/") for p in inkml_files] == [
        "c.inkml",
        "a/1.INKML",
        "b/2.inkml",
    ]
    assert [p.removeprefix(str(tmp_path) + "/") for p in truth_files] == ["a/iso_GT.txt"]


# === The real sample ===


def test_real_sample(crohme_sample_dir):
    from im2latex_encoder.data.render import render_strokes

    scan = scan_crohme_folder(crohme_sample_dir)
    samples = list(scan)
    assert len(samples) == 100
    assert scan.report.counts == {"missing_file": 85_702}
    assert scan.report.ground_truth_rows == 85_802 and scan.report.files == 100
    labels = {sample.label for sample in samples}
    assert labels == {"n", "i", "=", "2", "-", ")", "(", "r", "\\theta", "\\sum", "\\pi", "S", "1"}
    for sample in samples:
        image = render_strokes(sample.strokes, 64)
        assert image.max() == 1.0 and image.min() == 0.0


# === Label spellings ===

#: Every CROHME spelling the scan maps, and the class it must become: the table is the spec.
SPELLINGS = [
    (",", "COMMA"),
    ("<", "\\lt"),
    (">", "\\gt"),
    ("\\lbrack", "["),
    ("\\rbrack", "]"),
    ("\\lbrace", "\\{"),
    ("\\rbrace", "\\}"),
    ("\\ge", "\\geq"),
    ("\\le", "\\leq"),
    ("\\ne", "\\neq"),
    ("\\to", "\\rightarrow"),
    ("\\dots", "\\ldots"),
    ("\\vert", "|"),
    ("\\mid", "|"),
]


def test_label_alias_table_is_exactly_the_spec():
    assert LABEL_ALIASES == dict(SPELLINGS)
    assert set(LABEL_ALIASES.values()) <= set(CROHME_SYMBOLS)
    assert not set(LABEL_ALIASES) & set(CROHME_SYMBOLS)  # an alias never shadows a class


@pytest.mark.parametrize("spelling, label", SPELLINGS)
def test_each_spelling_maps_in_expression_files(tmp_path, spelling, label):
    (tmp_path / "e.inkml").write_bytes(build_inkml(STROKES, ui="e", groups=[(spelling, [0])]))
    assert [s.label for s in scan_crohme_folder(tmp_path)] == [label]


def test_expressions_sharing_a_ui_are_both_kept(tmp_path):
    for name in ("UN_127_em_600.inkml", "UN_451_em_600.inkml"):
        (tmp_path / name).write_bytes(build_inkml(STROKES, ui="UN_em_600", groups=[("x", [0])]))
    scan = scan_crohme_folder(tmp_path)
    assert len(list(scan)) == 2 and scan.report.counts == {}


# === The real CROHME data (skipped when ../shared/data/crohme is absent) ===


def test_real_training_expressions(crohme_dir, tmp_path):
    """A handful of real training expressions: every labelled traceGroup becomes a symbol."""
    import shutil

    from im2latex_encoder.data.inkml import read_inkml

    names = [
        "HAMEX/formulaire001-equation001.inkml",
        "MfrDB/MfrDB0104.inkml",
        "KAIST/KME1G3_0_sub_21.inkml",
        "MathBrush/2009210-947-0.inkml",
        "expressmatch/101_Frank.inkml",
        "extension/10_em_81.inkml",
    ]
    copied = []
    for name in names:
        path = crohme_dir / "train" / name
        if path.is_file():
            shutil.copy(path, tmp_path / path.name)
            copied.append(path)
    assert len(copied) >= 2, "expected some of the named training files"
    expected = sum(sum(1 for s in read_inkml(p).symbols if s.label) for p in copied)
    scan = scan_crohme_folder(tmp_path)
    samples = list(scan)
    assert len(samples) == expected and expected > 0
    assert {s.label for s in samples} <= set(CROHME_SYMBOLS)
    assert scan.report.counts == {} and scan.report.files == len(copied)


def test_real_test2016_oddities(crohme_dir):
    """A dangling traceView costs one symbol, not the expression; a shared UI costs nothing."""
    from im2latex_encoder.data.inkml import read_inkml

    folder = crohme_dir / "test2016"
    document = read_inkml(folder / "UN_463_em_912.inkml")
    assert len(document.unreadable_symbols) == 1 and len(document.symbols) > 3
    first, second = (read_inkml(folder / f"UN_{w}_em_600.inkml") for w in (127, 451))
    assert first.ui == second.ui
