"""`im2latex_encoder._atomic`: files written atomically get the permissions open() would give."""

import os
import stat

import pytest

from im2latex_encoder._atomic import atomic_directory, atomic_write_bytes, atomic_write_text


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_files_get_the_umasks_permissions(tmp_path, umask):
    plain = tmp_path / "plain.json"
    plain.write_text("{}")  # what an ordinary write gives, the reference
    atomic_write_text(tmp_path / "a.json", "{}")
    atomic_write_bytes(tmp_path / "b.bin", b"\0")
    assert _mode(plain) == 0o666 & ~umask
    assert _mode(tmp_path / "a.json") == _mode(plain)
    assert _mode(tmp_path / "b.bin") == _mode(plain)
    # Replacing a file keeps the rule (the old file's mode is not carried over or narrowed).
    os.chmod(tmp_path / "a.json", 0o600)
    atomic_write_text(tmp_path / "a.json", "[]")
    assert _mode(tmp_path / "a.json") == 0o666 & ~umask


def test_atomic_directories_get_the_umasks_permissions(tmp_path, umask):
    with atomic_directory(tmp_path / "preset") as staging:
        (staging / "config.json").write_text("{}")
    assert _mode(tmp_path / "preset") == 0o777 & ~umask
    assert _mode(tmp_path / "preset" / "config.json") == 0o666 & ~umask
