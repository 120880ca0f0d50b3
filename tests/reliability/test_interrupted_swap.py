"""A crash between the two renames of a directory swap puts back the latest preset, even when
an earlier kill left an older retired copy behind."""

import os

import numpy as np
import pytest

from im2latex_encoder import SymbolEncoder, _atomic, presets


def _save(path, version):
    encoder = SymbolEncoder(filters=(4, 4))
    encoder(np.zeros((1, 16, 16, 1), "float32"))
    encoder.set_weights([np.full(w.shape, version, w.dtype) for w in encoder.get_weights()])
    encoder.save_to_preset(path, metadata={"version": version})


def test_recovery_after_a_crash_between_the_renames_restores_the_latest_version(tmp_path, monkeypatch):
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
