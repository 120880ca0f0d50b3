"""Write-then-rename helpers: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

# A temporary this old is taken for a killed writer's leftover: the writes here (a cache, a
# preset, a checkpoint, an export) finish well within it; a streaming one keeps its mtime fresh.
STALE_TEMPORARY_SECONDS = 10 * 60


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync it and rename it over `path`.

    After the rename, the hidden temporaries of `path` that killed writers left behind (older
    than `STALE_TEMPORARY_SECONDS`) are removed; a younger one may be another writer's, and stays.

    Args:
        path: str or PathLike. The file to replace; missing parent folders are created.
        suffix: str. The temporary's suffix (default: `path`'s), for writers that pick the
            format from the name.

    Example:
    >>> with atomic_path("/tmp/numbers.txt") as temporary:  # doctest: +SKIP
    ...     temporary.write_text("1 2 3")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{path.name}.tmp-", suffix=suffix or path.suffix, dir=path.parent
    )
    os.close(fd)
    temporary = Path(name)
    # mkstemp makes the file 0600; the final file gets what an ordinary open() would give it.
    os.chmod(temporary, 0o666 & ~_current_umask())
    try:
        yield temporary
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    remove_stale_temporaries(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a staging directory; on success swap it into `target` with two renames.

    A crash between the renames leaves only the retired copy, which
    `recover_interrupted_swap` (called here and by readers) puts back: a reader sees the
    previous complete directory or the new one, never a mix. After the swap, staging
    directories of `target` that killed writers left behind (older than
    `STALE_TEMPORARY_SECONDS`) are removed; retired copies are left to the recovery above.

    Example:
    >>> with atomic_directory("/tmp/preset") as staging:  # doctest: +SKIP
    ...     (staging / "config.json").write_text("{}")
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted_swap(target)
    if target.exists():
        # A kill after the swap but before the clean-up leaves a retired copy beside a complete
        # target: drop it, so that recovery never has an older copy to pick by mistake.
        for stale in target.parent.glob(f".{target.name}.old-*"):
            shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    # mkdtemp makes it private; a preset is meant to be shared
    os.chmod(staging, 0o777 & ~_current_umask())
    try:
        yield staging
        for path in staging.rglob("*"):
            if path.is_file():
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
        if target.exists():
            retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, retired)
            os.rename(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, target)
        _fsync_directory(target.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    remove_stale_temporaries(target)


def recover_interrupted_swap(target: Path) -> None:
    """If a crash fell between the two renames, put the previous directory back."""
    target = Path(target)
    if target.exists() or not target.parent.is_dir():
        return
    retired = sorted(target.parent.glob(f".{target.name}.old-*"))
    if retired:
        os.rename(retired[-1], target)


def remove_stale_temporaries(
    target: str | os.PathLike, max_age: float = STALE_TEMPORARY_SECONDS
) -> list[Path]:
    """Remove the hidden temporaries of `target` (files or folders) older than `max_age` seconds.

    Only names that `atomic_path` / `atomic_directory` give `target`'s temporaries are touched:
    `.{name}.tmp-` followed by tempfile's 8 random characters, in `target`'s folder. A younger
    one may belong to a writer still at work and is kept. Never raises: this is tidying.

    Args:
        target: str or PathLike. The file or directory whose leftovers to remove.
        max_age: float. Seconds since a leftover's last modification before it counts as stale.

    Returns:
        The paths removed.

    Example:
    >>> remove_stale_temporaries("/tmp/c.npz")  # doctest: +SKIP
    [PosixPath('/tmp/.c.npz.tmp-k2j4x9ab.npz')]
    """
    target = Path(target)
    # tempfile's names: the prefix, 8 characters of [a-z0-9_], then the suffix (a dot, or none).
    pattern = re.compile(re.escape(f".{target.name}.tmp-") + r"[a-z0-9_]{8}(?:\.|$)")
    cutoff = time.time() - max_age
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        if not pattern.match(entry.name):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue  # gone already (another writer tidied it), or not ours to remove
        removed.append(Path(entry.path))
    return removed


def _current_umask() -> int:
    # The umask can only be read by setting it; set it straight back.
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
