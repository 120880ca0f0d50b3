"""Tests for im2latex_encoder/data/cache.py: atomic, validated, pickle-free caches."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from im2latex_encoder.data.cache import (
    CACHE_FORMAT_VERSION,
    PreparedDataset,
    hash_json,
    load_if_current,
    load_prepared,
    save_prepared,
)
from im2latex_encoder.data.errors import CacheError


def _dataset(n=5, size=(8, 6)):
    rng = np.random.default_rng(0)
    return PreparedDataset(
        images=rng.integers(0, 256, size=(n, *size), dtype=np.uint8),
        labels=(np.arange(n) % 3).astype(np.int32),
        label_names=("a", "b", "\\alpha"),
        settings={"image_size": list(size), "margin": 0.1},
        source_hash="deadbeef",
        report={"skipped": {"missing_file": 2}},
    )


def test_round_trip_keeps_everything(tmp_path):
    ds = _dataset()
    out = tmp_path / "ds.npz"
    save_prepared(out, ds)
    back = load_prepared(out)
    np.testing.assert_array_equal(back.images, ds.images)
    np.testing.assert_array_equal(back.labels, ds.labels)
    assert back.images.dtype == np.uint8 and back.labels.dtype == np.int32
    assert back.label_names == ds.label_names
    assert back.settings == ds.settings and back.report == ds.report
    assert back.source_hash == "deadbeef"
    assert os.listdir(tmp_path) == ["ds.npz"]  # no temporary file left behind


def test_file_has_no_object_arrays(tmp_path):
    save_prepared(tmp_path / "ds.npz", _dataset())
    with np.load(tmp_path / "ds.npz", allow_pickle=False) as npz:
        for key in npz.files:
            assert npz[key].dtype != object
        assert int(npz["format_version"]) == CACHE_FORMAT_VERSION


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    out = tmp_path / "ds.npz"
    save_prepared(out, _dataset(n=2))
    before = out.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError, match="disk full"):
        save_prepared(out, _dataset(n=4))
    assert out.read_bytes() == before
    assert os.listdir(tmp_path) == ["ds.npz"]


@pytest.mark.parametrize("cut", [0, 10, 200, -50])
def test_truncated_file_is_cache_error(tmp_path, cut):
    out = tmp_path / "ds.npz"
    save_prepared(out, _dataset())
    data = out.read_bytes()
    out.write_bytes(data[:cut] if cut >= 0 else data[:cut])
    with pytest.raises(CacheError, match="ds.npz"):
        load_prepared(out)


def test_garbage_file_is_cache_error(tmp_path):
    out = tmp_path / "ds.npz"
    out.write_bytes(b"not a zip at all" * 10)
    with pytest.raises(CacheError, match="not a readable"):
        load_prepared(out)


def test_corrupted_bytes_are_cache_error(tmp_path):
    out = tmp_path / "ds.npz"
    save_prepared(out, _dataset(n=50, size=(32, 32)))
    data = bytearray(out.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    out.write_bytes(bytes(data))
    with pytest.raises(CacheError):
        load_prepared(out)


def _write_raw(path, **overrides):
    arrays = {
        "format_version": np.array(CACHE_FORMAT_VERSION),
        "images": np.zeros((2, 4, 4), np.uint8),
        "labels": np.array([0, 1], np.int32),
        "label_names": np.array(json.dumps(["a", "b"])),
        "settings": np.array("{}"),
        "source_hash": np.array("h"),
        "report": np.array("{}"),
    }
    arrays.update(overrides)
    arrays = {key: value for key, value in arrays.items() if value is not None}
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"format_version": np.array(99)}, "unknown cache version"),
        ({"labels": np.array([0, 2], np.int32)}, r"must lie in \[0, 1\]"),
        ({"labels": np.array([0, 1], np.int64)}, "int32"),
        ({"labels": np.array([0], np.int32)}, "one entry per image"),
        ({"images": np.zeros((2, 4, 4), np.float32)}, "uint8"),
        ({"images": np.zeros((2, 16), np.uint8)}, "uint8"),
        ({"report": None}, "missing array"),
        ({"settings": np.array("{not json")}, "not valid JSON"),
        ({"label_names": np.array(json.dumps(["a", "a"]))}, "unique"),
        ({"label_names": np.array(["a", "b"])}, "0-d unicode"),
        ({"images": np.array([None, None], dtype=object)}, "not a readable|corrupt"),
    ],
)
def test_inconsistent_cache_is_cache_error(tmp_path, overrides, reason):
    out = tmp_path / "bad.npz"
    _write_raw(out, **overrides)
    with pytest.raises(CacheError, match=reason):
        load_prepared(out)


def test_missing_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_prepared(tmp_path / "nope.npz")
    with pytest.raises(CacheError, match="directory"):
        load_prepared(tmp_path)


def test_dataset_validation_names_expected_and_received():
    with pytest.raises(ValueError, match="Received: dtype=float64"):
        PreparedDataset(np.zeros((1, 2, 2)), np.zeros(1, np.int32), ("a",), {}, "")


def test_load_if_current(tmp_path):
    out = tmp_path / "ds.npz"
    ds = _dataset()
    save_prepared(out, ds)
    current = load_if_current(out, source_hash="deadbeef", settings=ds.settings)
    assert isinstance(current, PreparedDataset)
    np.testing.assert_array_equal(current.images, ds.images)
    np.testing.assert_array_equal(current.labels, ds.labels)
    assert (current.label_names, current.settings, current.source_hash) == (
        ds.label_names,
        ds.settings,
        "deadbeef",
    )
    assert load_if_current(out, source_hash="other", settings=ds.settings) is None
    assert load_if_current(out, source_hash="deadbeef", settings={"margin": 0.2}) is None
    out.write_bytes(b"junk")
    assert load_if_current(out, source_hash="deadbeef", settings=ds.settings) is None


def test_hash_json_is_order_independent_and_sensitive():
    assert hash_json({"a": 1, "b": [1, 2]}) == hash_json({"b": [1, 2], "a": 1})
    assert hash_json({"a": 1}) != hash_json({"a": 2})


# === prepare_crohme ===


def _crohme_folder(root, n=6):
    from inkml_fixtures import build_inkml

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
    from im2latex_encoder.data.cache import prepare_crohme
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

    with caplog.at_level("INFO", logger="im2latex_encoder.data.cache"):
        again = prepare_crohme(source, out, image_size=32, progress=False, workers=1)
    assert "Reusing" in caplog.text
    assert out.stat().st_mtime_ns == stat.st_mtime_ns and out.stat().st_ino == stat.st_ino
    np.testing.assert_array_equal(again.images, ds.images)

    bigger = prepare_crohme(source, out, image_size=24, progress=False, workers=1)
    assert bigger.images.shape == (6, 24, 24)
    assert out.stat().st_ino != stat.st_ino  # rewritten (atomically: a new file)


def test_prepare_crohme_rebuilds_when_source_changes(tmp_path):
    from im2latex_encoder.data.cache import prepare_crohme
    from inkml_fixtures import build_inkml

    source = _crohme_folder(tmp_path / "train")
    out = tmp_path / "crohme.npz"
    first = prepare_crohme(source, out, image_size=16, progress=False, workers=1)
    (source / "extra.inkml").write_bytes(build_inkml([[(0, 0), (1, 1)]], ui="u_missing"))
    second = prepare_crohme(source, out, image_size=16, progress=False, workers=1)
    assert second.source_hash != first.source_hash
    assert len(second) == 7 and "missing_file" not in second.report["counts"]


def test_prepare_crohme_process_pool_matches_serial(tmp_path):
    from im2latex_encoder.data.cache import prepare_crohme

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
    from im2latex_encoder.data.cache import prepare_crohme
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
    from im2latex_encoder.data.cache import prepare_crohme

    ds = prepare_crohme(
        crohme_sample_dir, tmp_path / "real.npz", image_size=32, progress=False, workers=1
    )
    assert len(ds) == 100 and ds.report["counts"] == {"missing_file": 85_702}
    assert len(set(ds.labels.tolist())) == 13
