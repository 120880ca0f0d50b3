"""Tests for im2latex_encoder/data/npz.py: the one pickle-free .npz format of the caches."""

from __future__ import annotations

import os

import numpy as np
import pytest

from im2latex_encoder.data.errors import CacheError
from im2latex_encoder.data.npz import open_npz, save_npz


def _save(path, **kwargs):
    arguments = {
        "arrays": {"x": np.arange(6, dtype=np.int32).reshape(2, 3)},
        "kind": "demo",
        "version": 3,
        "metadata": {"names": ["a", "é"], "settings": {"size": 4}},
    }
    arguments.update(kwargs)
    save_npz(path, **arguments)


@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_of_arrays_metadata_kind_and_version(tmp_path, compress):
    path = tmp_path / "d.npz"
    _save(path, compress=compress)
    with open_npz(path) as archive:
        assert archive.check(kind="demo", versions=[3], arrays=["x"], metadata=["names"]) == 3
        assert (archive.kind, archive.version) == ("demo", 3)
        np.testing.assert_array_equal(archive.array("x"), np.arange(6).reshape(2, 3))
        assert archive.array("x").dtype == np.int32
        assert archive.json("names") == ["a", "é"] and archive.json("settings") == {"size": 4}
    with np.load(path, allow_pickle=False) as npz:  # nothing in it needs pickle
        assert sorted(npz.files) == ["format_version", "kind", "names", "settings", "x"]
        assert all(npz[key].dtype != object for key in npz.files)
    assert os.listdir(tmp_path) == ["d.npz"]  # no temporary left behind


def test_writer_refuses_object_arrays_and_reserved_or_repeated_names(tmp_path):
    with pytest.raises(TypeError, match="'bad' must not hold Python objects.*dtype=object"):
        _save(tmp_path / "d.npz", arrays={"bad": np.array([None, 1], dtype=object)})
    with pytest.raises(ValueError, match=r"Received: \['kind'\]"):
        _save(tmp_path / "d.npz", arrays={"kind": np.zeros(1)})
    with pytest.raises(ValueError, match=r"Received: \['x'\]"):
        _save(tmp_path / "d.npz", metadata={"x": 1})
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "d.npz"
    _save(path)
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", full_disk)
    with pytest.raises(OSError, match="disk full"):
        _save(path, version=4)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["d.npz"]


@pytest.mark.parametrize(
    "check, message",
    [
        ({"kind": "ink", "versions": [3]}, "expected a file of kind 'ink'. Received: kind 'demo'"),
        ({"kind": "demo", "versions": [1, 2]}, r"expected one of \[1, 2\]. Received: version 3"),
        (
            {"kind": "demo", "versions": [3], "arrays": ["x", "y"], "metadata": ["z"]},
            r"missing array\(s\) \['y', 'z'\].*expected \['format_version', 'x', 'y', 'z'\]",
        ),
    ],
)
def test_check_says_what_was_expected_and_received(tmp_path, check, message):
    _save(tmp_path / "d.npz")
    with open_npz(tmp_path / "d.npz") as archive, pytest.raises(CacheError, match=message):
        archive.check(**check)


def test_file_without_kind_is_taken_for_the_kind_asked_and_without_version_refused(tmp_path):
    np.savez(tmp_path / "old.npz", format_version=np.array(3), x=np.zeros(2))
    with open_npz(tmp_path / "old.npz") as archive:
        assert archive.kind is None
        assert archive.check(kind="demo", versions=[3], arrays=["x"]) == 3
    np.savez(tmp_path / "other.npz", images=np.zeros(2))
    with open_npz(tmp_path / "other.npz") as archive:
        with pytest.raises(
            CacheError,
            match=r"\['format_version'\] in an .npz of kind 'demo'.*Received: \['images'\]",
        ):
            archive.check(kind="demo", versions=[3])


def test_unreadable_files_are_cache_errors_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        open_npz(tmp_path / "missing.npz")
    with pytest.raises(CacheError, match="Received: a directory"):
        open_npz(tmp_path)
    (tmp_path / "garbage.npz").write_bytes(b"not a zip" * 20)
    with pytest.raises(CacheError, match="garbage.npz: not a readable .npz"):
        open_npz(tmp_path / "garbage.npz")
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(CacheError, match="Received: a .npy array"):
        open_npz(tmp_path / "array.npy")
    _save(tmp_path / "d.npz", arrays={"x": np.random.default_rng(0).random((64, 64))})
    data = bytearray((tmp_path / "d.npz").read_bytes())
    data[len(data) // 3 : len(data) // 3 + 256] = bytes(256)  # inside the deflated array
    (tmp_path / "d.npz").write_bytes(bytes(data))
    with pytest.raises(CacheError, match="d.npz"):
        with open_npz(tmp_path / "d.npz") as archive:
            archive.array("x")


def test_json_and_text_refuse_arrays_of_the_wrong_shape(tmp_path):
    np.savez(tmp_path / "d.npz", names=np.array(["a", "b"]), bad=np.array("{oops"))
    with open_npz(tmp_path / "d.npz") as archive:
        with pytest.raises(CacheError, match="'names' must be a 0-d unicode"):
            archive.json("names")
        with pytest.raises(CacheError, match="'names' must be a 0-d unicode"):
            archive.text("names")
        with pytest.raises(CacheError, match="'bad' is not valid JSON"):
            archive.json("bad")
        with pytest.raises(CacheError, match="missing array 'nope'"):
            archive.array("nope")
