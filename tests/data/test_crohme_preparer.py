"""Tests for im2latex_encoder/data/crohme_preparer.py: the scan's per-file step in workers."""

from __future__ import annotations

import numpy as np
import pytest

from im2latex_encoder.data.crohme import SkipReport, read_crohme_file, scan_crohme_folder
from im2latex_encoder.data.crohme_preparer import prepare_crohme
from im2latex_encoder.data.errors import InkMLError
from im2latex_encoder.data.render import render_strokes_uint8
from inkml_fixtures import build_inkml


def _crohme_folder(root, n=6):
    labels = ["x", "y", "\\alpha"]
    root.mkdir()
    rows = []
    for index in range(n):
        points = [(0, 0), (10 + index, 5), (20, index)]
        (root / f"iso{index}.inkml").write_bytes(
            build_inkml([points], ui=f"u_{index}", truth="", groups=[("", [0])])
        )
        rows.append(f"u_{index},{labels[index % 3]}")
    rows.append("u_missing,x")
    (root / "iso_GT.txt").write_text("\n".join(rows) + "\n")
    return root


def test_prepare_crohme_writes_and_reuses(tmp_path, caplog):
    from im2latex_encoder.symbols import CROHME_SYMBOLS

    source = _crohme_folder(tmp_path / "train")
    out = tmp_path / "crohme.npz"
    ds = prepare_crohme(source, out, image_size=32, progress=False, workers=1)
    assert ds.images.shape == (6, 32, 32) and ds.images.dtype == np.uint8
    assert ds.images.reshape(6, -1).max(axis=1).min() > 128  # every image has ink
    assert [ds.label_names[i] for i in ds.labels] == ["x", "y", "\\alpha"] * 2
    assert ds.label_names == CROHME_SYMBOLS
    assert ds.report["counts"] == {"missing_file": 1} and ds.report["used"] == 6
    assert ds.settings["render"]["image_size"] == [32, 32]
    stat = out.stat()

    with caplog.at_level("INFO", logger="im2latex_encoder.data.crohme_preparer"):
        again = prepare_crohme(source, out, image_size=32, progress=False, workers=1)
    assert "Reusing" in caplog.text
    assert out.stat().st_mtime_ns == stat.st_mtime_ns and out.stat().st_ino == stat.st_ino
    np.testing.assert_array_equal(again.images, ds.images)

    bigger = prepare_crohme(source, out, image_size=24, progress=False, workers=1)
    assert bigger.images.shape == (6, 24, 24)
    assert out.stat().st_ino != stat.st_ino  # rewritten (atomically: a new file)


def test_prepare_crohme_rebuilds_when_source_changes(tmp_path):
    source = _crohme_folder(tmp_path / "train")
    out = tmp_path / "crohme.npz"
    first = prepare_crohme(source, out, image_size=16, progress=False, workers=1)
    (source / "extra.inkml").write_bytes(build_inkml([[(0, 0), (1, 1)]], ui="u_missing"))
    second = prepare_crohme(source, out, image_size=16, progress=False, workers=1)
    assert second.source_hash != first.source_hash
    assert len(second) == 7 and "missing_file" not in second.report["counts"]


def test_prepare_crohme_process_pool_matches_serial(tmp_path):

    source = _crohme_folder(tmp_path / "train", n=9)
    (source / "broken.inkml").write_bytes(b"\x00\x01garbage")
    serial = prepare_crohme(source, tmp_path / "a.npz", image_size=16, progress=False, workers=1)
    pooled = prepare_crohme(
        source, tmp_path / "b.npz", image_size=16, progress=False, workers=2, chunk_size=2
    )
    np.testing.assert_array_equal(serial.images, pooled.images)
    np.testing.assert_array_equal(serial.labels, pooled.labels)
    assert serial.report == pooled.report
    assert pooled.report["counts"]["malformed_file"] == 1


def test_prepare_crohme_strict_and_empty(tmp_path):
    from im2latex_encoder.data.errors import DataError, InkMLError

    source = _crohme_folder(tmp_path / "train", n=2)
    (source / "broken.inkml").write_bytes(b"<ink>")
    with pytest.raises(InkMLError, match="broken.inkml: not well-formed"):
        prepare_crohme(source, tmp_path / "s.npz", strict=True, progress=False, workers=1)
    assert not (tmp_path / "s.npz").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no usable sample"):
        prepare_crohme(empty, tmp_path / "e.npz", progress=False, workers=1)
    with pytest.raises(FileNotFoundError):
        prepare_crohme(tmp_path / "nope", tmp_path / "e.npz", progress=False)


def test_prepare_crohme_real_sample(crohme_sample_dir, tmp_path):

    ds = prepare_crohme(
        crohme_sample_dir, tmp_path / "real.npz", image_size=32, progress=False, workers=1
    )
    assert len(ds) == 100 and ds.report["counts"] == {"missing_file": 85_702}
    assert len(set(ds.labels.tolist())) == 13


def _mixed_folder(root):
    """Isolated symbols, an expression file, junk, an unknown label, a duplicate UI, a broken
    file and a dangling traceView: every per-file outcome the scan reports."""
    root = _crohme_folder(root, n=5)
    (root / "expr.inkml").write_bytes(
        build_inkml(
            [[(0, 0), (5, 5)], [(0, 5), (5, 0)], [(9, 0), (9, 9)]],
            ui="expr_1",
            truth="x+1",
            groups=[("x", [0, 1]), ("junk", [2]), ("\\smiley", [2])],
        )
    )
    (root / "dup.inkml").write_bytes(build_inkml([[(0, 0), (3, 4)]], ui="u_1"))
    (root / "broken.inkml").write_bytes(b"<ink><trace>")
    (root / "zzz_dangling.inkml").write_bytes(  # the "1" group refers to a missing trace "7"
        build_inkml(
            [[(0, 0), (1, 1)]],
            ui="expr_2",
            truth="y",
            groups=[("y", [0]), ("1", [1])],
            trace_ids=["0", "7"],
        )
    )
    return root


@pytest.mark.parametrize("workers, chunk_size", [(1, 256), (2, 2)])
def test_prepared_samples_and_report_are_those_of_iterating_the_scan(tmp_path, workers, chunk_size):
    source = _mixed_folder(tmp_path / "train")
    scan = scan_crohme_folder(source)
    samples = list(scan)
    prepared = prepare_crohme(
        source,
        tmp_path / "p.npz",
        image_size=16,
        progress=False,
        workers=workers,
        chunk_size=chunk_size,
    )
    assert [prepared.label_names[i] for i in prepared.labels] == [s.label for s in samples]
    expected = np.stack([render_strokes_uint8(s.strokes, 16) for s in samples])
    np.testing.assert_array_equal(prepared.images, expected)
    report = {key: value for key, value in prepared.report.items() if key != "sources"}
    assert report == scan.report.to_dict()
    counts = report["counts"]
    assert counts["malformed_file"] == 1 and counts["duplicate_file"] == 1
    assert counts["junk"] == 1 and counts["unknown_label"] == 1
    assert counts["unreadable_symbol"] == 1 and counts["missing_file"] == 1


def test_strict_scan_raises_the_workers_error_with_its_file_and_reason(tmp_path):
    source = _crohme_folder(tmp_path / "train", n=4)
    (source / "broken.inkml").write_bytes(b"<ink>")
    with pytest.raises(InkMLError, match="broken.inkml: not well-formed") as raised:
        prepare_crohme(
            source, tmp_path / "s.npz", strict=True, progress=False, workers=2, chunk_size=1
        )
    assert raised.value.path.endswith("broken.inkml") and "not well-formed" in raised.value.reason


def test_read_crohme_file_turns_a_vanished_file_into_a_record(tmp_path):
    record = read_crohme_file(str(tmp_path / "gone.inkml"), {}, {})
    assert record.samples == [] and isinstance(record.skips, SkipReport)
    assert "cannot read the file" in record.error.reason
