"""A crash between the two renames of a directory swap puts back the latest preset, even when
an earlier kill left an older retired copy behind; the next successful write of a target removes
the temporaries that killed writers left beside it, and keeps those of writers still at work."""

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from im2latex_encoder import SymbolEncoder, _atomic, presets


def _save(path, version):
    encoder = SymbolEncoder(filters=(4, 4))
    encoder(np.zeros((1, 16, 16, 1), "float32"))
    encoder.set_weights([np.full(w.shape, version, w.dtype) for w in encoder.get_weights()])
    encoder.save_to_preset(path, metadata={"version": version})


def test_recovery_after_a_crash_between_the_renames_restores_the_latest_version(
    tmp_path, monkeypatch
):
    path = tmp_path / "preset"
    _save(tmp_path / "version1", 1)
    _save(path, 2)
    # An earlier kill after its swap, before its clean-up, left version 1 retired beside the
    # complete version 2, under a name that sorts after any other retired copy.
    os.rename(tmp_path / "version1", tmp_path / ".preset.old-ffffffff")
    assert presets.preset_metadata(str(path))["version"] == 2

    rename = os.rename

    def crash_before_the_second_rename(source, destination):
        if os.fspath(destination) == os.fspath(path) and ".preset.tmp-" in os.fspath(source):
            raise KeyboardInterrupt("killed between the renames")
        rename(source, destination)

    monkeypatch.setattr(_atomic.os, "rename", crash_before_the_second_rename)
    with pytest.raises(KeyboardInterrupt):
        _save(path, 3)
    monkeypatch.undo()
    assert not path.exists()
    assert presets.preset_metadata(str(path))["version"] == 2  # recovered: not the stale version 1
    assert all(np.all(w == 2) for w in SymbolEncoder.from_preset(str(path)).get_weights())


def _leftover(folder, prefix, *, suffix="", directory=False, age=0.0):
    """A temporary exactly as a writer killed mid-write leaves it, last modified `age` s ago."""
    if directory:
        path = tempfile.mkdtemp(prefix=prefix, dir=folder)
        (Path(path) / "config.json").write_text("{")
    else:
        fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
        os.write(fd, b"half")
        os.close(fd)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return Path(path)


STALE = _atomic.STALE_TEMPORARY_SECONDS + 60


def test_a_successful_write_removes_its_targets_stale_temporaries_only(tmp_path):
    target = tmp_path / "c.json"
    stale = _leftover(tmp_path, ".c.json.tmp-", suffix=".json", age=STALE)
    stale_other_suffix = _leftover(tmp_path, ".c.json.tmp-", suffix=".jsonl", age=STALE)
    fresh = _leftover(tmp_path, ".c.json.tmp-", suffix=".json", age=60)  # a writer at work
    other_target = _leftover(tmp_path, ".c.tmp-", suffix=".json", age=STALE)
    longer_name = _leftover(tmp_path, ".c.json.tmp-x.tmp-", suffix=".json", age=STALE)
    not_a_temporary = tmp_path / ".c.json.tmp-notes.txt"
    not_a_temporary.write_text("mine")
    os.utime(not_a_temporary, (time.time() - STALE,) * 2)

    _atomic.atomic_write_text(target, "{}")

    assert target.read_text() == "{}"
    assert not stale.exists() and not stale_other_suffix.exists()
    assert fresh.read_bytes() == b"half"
    assert other_target.exists() and longer_name.exists() and not_a_temporary.exists()


def test_a_failed_write_leaves_stale_temporaries_alone(tmp_path):
    target = tmp_path / "c.json"
    stale = _leftover(tmp_path, ".c.json.tmp-", suffix=".json", age=STALE)
    with pytest.raises(RuntimeError):
        with _atomic.atomic_path(target) as temporary:
            temporary.write_text("{")
            raise RuntimeError("the writer failed")
    assert not target.exists() and stale.exists()
    assert sorted(tmp_path.iterdir()) == [stale]  # its own temporary is gone


def test_a_directory_swap_removes_stale_staging_and_keeps_recovery_working(tmp_path):
    target = tmp_path / "preset"
    target.mkdir()
    (target / "config.json").write_text("1")
    stale = _leftover(tmp_path, ".preset.tmp-", directory=True, age=STALE)
    fresh = _leftover(tmp_path, ".preset.tmp-", directory=True, age=60)

    with _atomic.atomic_directory(target) as staging:
        (staging / "config.json").write_text("2")

    assert (target / "config.json").read_text() == "2"
    assert not stale.exists() and fresh.is_dir()

    # A crash between the renames still finds the retired copy and puts it back.
    stale = _leftover(tmp_path, ".preset.tmp-", directory=True, age=STALE)
    os.rename(target, tmp_path / ".preset.old-00000000")
    _atomic.recover_interrupted_swap(target)
    assert (target / "config.json").read_text() == "2"
    with _atomic.atomic_directory(target) as staging:
        (staging / "config.json").write_text("3")
    assert (target / "config.json").read_text() == "3"
    assert not stale.exists() and fresh.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["preset", fresh.name])
