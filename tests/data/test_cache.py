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
        (
            {"format_version": np.array(99)},
            r"unknown prepared format version: expected one of \[1\]",
        ),
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


def test_cache_written_before_kinds_still_loads_and_another_kind_is_named(tmp_path):
    old = tmp_path / "old.npz"
    _write_raw(old)  # 0.1's layout: no `kind` array
    back = load_prepared(old)
    assert back.label_names == ("a", "b") and back.images.shape == (2, 4, 4)
    from im2latex_encoder.data.ink import InkDataset, save_ink

    save_ink(tmp_path / "ink.npz", InkDataset.from_symbols([[np.zeros((2, 2))]], [0], ("x",)))
    with pytest.raises(
        CacheError, match="expected a file of kind 'prepared'. Received: kind 'ink'"
    ):
        load_prepared(tmp_path / "ink.npz")
    assert load_if_current(tmp_path / "ink.npz", source_hash="", settings={}) is None


def test_preparer_moved_out_of_cache_warns_under_the_old_name():
    from im2latex_encoder.data import cache, crohme_preparer

    with pytest.warns(DeprecationWarning, match="moved to `im2latex_encoder.data.crohme_preparer"):
        assert cache.prepare_crohme is crohme_preparer.prepare_crohme
    with pytest.raises(AttributeError, match="no attribute 'accepted_records'"):
        cache.accepted_records  # noqa: B018
