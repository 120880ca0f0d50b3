"""Real processes for the reliability tests: the installed command line, kills, peak memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from benchmarks.memory import run_with_peak_rss

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
LABELS = ("x", "y", "\\alpha", "2", "+")


def cli(*args) -> list[str]:
    """The installed command line, run with this interpreter."""
    return [sys.executable, "-m", "im2latex_encoder.cli", *map(str, args)]


def write_crohme_folder(
    root: Path, count: int, build_inkml, *, points: int = 12, padding: int = 0
) -> int:
    """Write `count` isolated-symbol InkML files and their ground truth; return the bytes written.

    Every file is one template with its own UI id, so thousands are written in a second.
    `padding` adds a comment annotation of that many bytes (the reader parses and drops it).
    """
    root.mkdir(parents=True)
    trace = [(float(i), float((i * 7) % 13)) for i in range(points)]
    template = build_inkml([trace], ui="@UI@", truth="", groups=[("", [0])])
    if padding:
        template = template.replace(
            b"</ink>", b'<annotation type="comment">' + b"p" * padding + b"</annotation>\n</ink>"
        )
    rows, total = [], 0
    for index in range(count):
        data = template.replace(b"@UI@", f"u_{index}".encode())
        (root / f"iso{index}.inkml").write_bytes(data)
        rows.append(f"u_{index},{LABELS[index % len(LABELS)]}")
        total += len(data)
    (root / "iso_GT.txt").write_text("\n".join(rows) + "\n")
    return total


def peak_rss(argv: list[str], workdir: Path) -> tuple[int, int, str, str]:
    """Run `argv`; return (exit status, peak RSS in bytes, stdout, stderr).

    The memory benchmark's `run_with_peak_rss` (one implementation for both).
    """
    run = run_with_peak_rss(argv, workdir, env=ENV, timeout=600)
    return run.code, run.peak_bytes, run.stdout, run.stderr


def kill_9(process: subprocess.Popen) -> list[int]:
    """SIGKILL `process` alone (as the OOM killer would); return descendants still alive 30 s on.

    Survivors are killed by pid before returning, so a failing test leaves nothing behind.
    """
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 30  # a hang guard, not a timing assertion
    alive = descendants
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _running(p)]
        time.sleep(0.1)
    for survivor in alive:
        survivor.kill()
    return [p.pid for p in alive]


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for(condition, process: subprocess.Popen, poll: float = 0.005) -> bool:
    """Poll until `condition()` or the process ends; True if the condition was met first."""
    while process.poll() is None:
        if condition():
            return True
        time.sleep(poll)
    return False


def save_tiny_preset(path: Path, image_size: int = 32, seed: int = 0):
    """A random-weight classifier preset (the shipped `crohme101` may not exist yet)."""
    import keras

    from im2latex_encoder import ClassificationHead, SymbolClassifier, SymbolEncoder

    keras.utils.set_random_seed(seed)
    classifier = SymbolClassifier(
        SymbolEncoder(filters=(8, 16, 16)), ClassificationHead(101), image_size=image_size
    )
    classifier.save_to_preset(path)
    return classifier
