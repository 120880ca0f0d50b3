"""Peak resident memory of a pretrain over an 85,802-image prepared dataset.

85,802 is the size of CROHME's isolated-symbol training set; synthetic symbols stand in for it.
`generate_synthetic_symbols` draws a base set (100 per class; 10 in ``--quick``), which is tiled
in a random order up to 85,802 images and written with `save_prepared` to a temporary `.npz`
(tiling changes nothing the process holds: the array is 85,802 × S × S uint8 either way). Then
``im2latex-encoder pretrain --data FILE.npz --config quick --epochs 1 --steps-per-epoch 20``
runs in a subprocess (`--config` is `quick`, or a JSON copy of it with another
`image_size`) and its peak RSS is read by a fresh, small interpreter that starts it and reads
its ``RUSAGE_CHILDREN`` ``ru_maxrss``. Not `os.wait4` from this process: Linux carries a
parent's resident size into a forked child's ``ru_maxrss`` across `exec`, so a child of a
benchmark process that already holds 2.5 GB (after `time_to_accuracy`) "peaks" at 2.5 GB
whatever it does.

Also measured, to say where memory goes: the same pretrain over a 2,020-image `.npz` (the fixed
cost of a pretrain: TensorFlow, the model, validation set, evaluation, plots), and (full run)
a bare ``import tensorflow, keras, im2latex_encoder.training``. `(peak - small-run peak) /
dataset bytes` is how many copies of the dataset the run held at its peak (1.0 is the floor
for an in-memory cache). Full run: 64×64 (≈ 351 MB of images) and 128×128 (≈ 1.4 GB).

Target: peak RSS ≤ 3 GB (reported as the ratio 3 GB / peak, target ≥ 1).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks._harness import Figure, Options, Ratio, Result, require

CROHME_TRAIN_IMAGES = 85_802
TARGET_BYTES = 3 * 10**9
SMALL_PER_CLASS = 20
#: A quick run's image sizes and distinct images per class; steps of each pretrain.
QUICK_SIZES, QUICK_BASE_PER_CLASS, STEPS_PER_EPOCH = (64,), 10, 20
#: `quick` config fields changed for the runs (none: the recipe as shipped).
CONFIG_OVERRIDES: dict = {}
#: `Options(tiny=True)`'s sizes (see `benchmarks._harness.tiny_sizes`).
TINY = {
    "CROHME_TRAIN_IMAGES": 202,
    "SMALL_PER_CLASS": 1,
    "QUICK_SIZES": (32,),
    "QUICK_BASE_PER_CLASS": 1,
    "STEPS_PER_EPOCH": 2,
    "CONFIG_OVERRIDES": {"validation_per_class": 1},
}


def write_dataset(
    path: str, count: int, image_size: int, base_per_class: int, seed: int = 0
) -> int:
    """Write `count` synthetic symbols (a tiled base set) as a prepared `.npz`; return its bytes.

    Args:
        path: str. The `.npz` to write.
        count: int. Images in the dataset.
        image_size: int. Square side.
        base_per_class: int. Distinct images per class drawn by `generate_synthetic_symbols`.
        seed: int.

    Returns:
        Bytes of the uint8 image array (what the pretrain holds in memory at least once).

    Example:
    >>> write_dataset("/tmp/x.npz", 300, 16, 1)  # doctest: +SKIP
    76800
    """
    from im2latex_encoder.data.cache import PreparedDataset, save_prepared
    from im2latex_encoder.data.synthetic import generate_synthetic_symbols
    from im2latex_encoder.symbols import CROHME_SYMBOLS

    images, labels = generate_synthetic_symbols(
        base_per_class, image_size=image_size, seed=seed, progress=False
    )
    order = np.random.default_rng(seed).permutation(np.resize(np.arange(len(images)), count))
    settings = {
        "source": "synthetic (tiled for the memory benchmark)",
        "image_size": [image_size] * 2,
        "base_per_class": base_per_class,
        "count": count,
        "seed": seed,
    }
    save_prepared(
        path,
        PreparedDataset(
            images[order],
            labels[order],
            CROHME_SYMBOLS,
            settings,
            f"memory-benchmark-{count}-{image_size}-{base_per_class}",
            {},
        ),
    )
    return count * image_size * image_size


# Started by a fresh interpreter (a few MiB), the command inherits no large resident size, and
# RUSAGE_CHILDREN of that interpreter is the command's own peak (and its children's).
_PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "with open(sys.argv[1], 'wb') as out, open(sys.argv[2], 'wb') as err:\n"
    "    code = subprocess.call(sys.argv[3:], stdout=out, stderr=err)\n"
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


@dataclasses.dataclass
class PeakRun:
    """What `run_with_peak_rss` measured: exit status, peak RSS in bytes, seconds, output.

    Example:
    >>> PeakRun(0, 2**20, 0.5, "", "").peak_bytes
    1048576
    """

    code: int
    peak_bytes: int
    seconds: float
    stdout: str
    stderr: str


def run_with_peak_rss(
    command: list, cwd, *, env: dict | None = None, timeout: float | None = None
) -> PeakRun:
    """Run `command` to completion; return its exit status, peak RSS, wall seconds and output.

    The command is started by a fresh, small interpreter, which reports the command's
    ``ru_maxrss`` (its process tree's largest resident set); so neither this process's own
    size nor its other children count. Not `os.wait4` from here: Linux carries a parent's
    resident size into a forked child's ``ru_maxrss`` across `exec`. The one implementation
    the memory benchmark and the reliability tests share.

    Example:
    >>> run = run_with_peak_rss([sys.executable, "-c", "print('hi')"], ".")
    >>> run.code, run.stdout.strip(), run.peak_bytes > 0
    (0, 'hi', True)
    """
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="peak-rss-") as scratch:
        out, err = os.path.join(scratch, "out"), os.path.join(scratch, "err")
        report = subprocess.run(
            [sys.executable, "-c", _PEAK_RSS, out, err, *map(str, command)],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
        try:
            code, kib = report.stdout.split()[-2:]
        except ValueError:
            raise RuntimeError(
                f"measuring {' '.join(map(str, command))} failed: {report.stderr[-2000:]}"
            ) from None
        with open(out, errors="replace") as handle:
            stdout = handle.read()
        with open(err, errors="replace") as handle:
            stderr = handle.read()
    # ru_maxrss is KiB on Linux.
    return PeakRun(int(code), int(kib) * 1024, time.perf_counter() - started, stdout, stderr)


def peak_rss(command: list, cwd: str) -> tuple[int, float]:
    """Run `command` to completion; return (its peak RSS in bytes, wall seconds).

    `run_with_peak_rss`, raising RuntimeError with the end of the command's output if it
    fails.

    Example:
    >>> peak_rss([sys.executable, "-c", "pass"], ".")[0] > 0
    True
    """
    run = run_with_peak_rss(command, cwd)
    if run.code != 0:
        output = (run.stdout + run.stderr)[-2000:]
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({run.code}): {output}")
    return run.peak_bytes, run.seconds


def _pretrain_command(data: str, out: str, config: str = "quick") -> list:
    return [
        sys.executable,
        "-m",
        "im2latex_encoder.cli",
        "pretrain",
        "--data",
        data,
        "--config",
        config,
        "--epochs",
        "1",
        "--steps-per-epoch",
        str(STEPS_PER_EPOCH),
        "--out",
        out,
        "--no-progress",
    ]


def _config_for(size: int, folder: str) -> str:
    """`quick`, or a JSON copy of it at another image size (the CLI has no size override)."""
    import json

    from im2latex_encoder.training import load_config

    if size == load_config("quick").image_size and not CONFIG_OVERRIDES:
        return "quick"
    path = os.path.join(folder, f"quick-{size}.json")
    config = load_config("quick").replace(image_size=size, name=f"quick-{size}", **CONFIG_OVERRIDES)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(config.to_dict(), handle)
    return path


def run(options: Options) -> Result:
    """Measure peak RSS of a pretrain over an 85,802-image cache (see the module docstring).

    Example:
    >>> run(Options(quick=True)).status  # doctest: +SKIP
    'ok'
    """
    require("im2latex_encoder.training", "peak RSS of a pretrain")
    result = Result("memory")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sizes = QUICK_SIZES if options.quick else (64, 128)
    base_per_class = QUICK_BASE_PER_CLASS if options.quick else 100
    mib = 2**20
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        if not options.quick:
            floor, _ = peak_rss(
                [sys.executable, "-c", "import tensorflow, keras, im2latex_encoder.training"], root
            )
            result.figures.append(
                Figure(
                    "import tensorflow, keras, im2latex_encoder.training",
                    "MiB",
                    floor / mib,
                    floor / mib,
                    floor / mib,
                    1,
                )
            )
        for size in sizes:
            small_path = os.path.join(folder, f"small-{size}.npz")
            write_dataset(small_path, SMALL_PER_CLASS * 101, size, SMALL_PER_CLASS)
            config = _config_for(size, folder)
            small, small_seconds = peak_rss(
                _pretrain_command(small_path, os.path.join(folder, f"run-small-{size}"), config),
                root,
            )
            os.remove(small_path)

            started = time.perf_counter()
            path = os.path.join(folder, f"crohme-sized-{size}.npz")
            data_bytes = write_dataset(path, CROHME_TRAIN_IMAGES, size, base_per_class)
            write_seconds = time.perf_counter() - started
            file_mib = os.path.getsize(path) / mib
            peak, seconds = peak_rss(
                _pretrain_command(path, os.path.join(folder, f"run-{size}"), config), root
            )
            os.remove(path)

            result.figures += [
                Figure(
                    f"pretrain peak RSS, {CROHME_TRAIN_IMAGES:,} images {size}×{size}",
                    "MiB",
                    peak / mib,
                    peak / mib,
                    peak / mib,
                    1,
                    f"dataset {data_bytes / mib:,.0f} MiB uint8 in memory, {file_mib:,.0f} MiB .npz; "
                    f"run {seconds:.0f} s",
                ),
                Figure(
                    f"pretrain peak RSS, {SMALL_PER_CLASS * 101:,} images {size}×{size}",
                    "MiB",
                    small / mib,
                    small / mib,
                    small / mib,
                    1,
                    f"the fixed cost of a pretrain; run {small_seconds:.0f} s",
                ),
                Figure(
                    f"dataset copies at peak, {size}×{size}",
                    "× dataset",
                    (peak - small) / data_bytes,
                    (peak - small) / data_bytes,
                    (peak - small) / data_bytes,
                    1,
                    "(peak - small-run peak) / uint8 dataset bytes",
                ),
            ]
            result.ratios += [
                Ratio(
                    f"3 GB / peak RSS at {size}×{size}",
                    TARGET_BYTES / peak,
                    TARGET_BYTES / peak,
                    TARGET_BYTES / peak,
                    target=1.0 if size == 64 else None,
                    note="target: peak ≤ 3 GB",
                ),
                Ratio(
                    f"float32 dataset bytes / peak RSS at {size}×{size}",
                    4 * data_bytes / peak,
                    4 * data_bytes / peak,
                    4 * data_bytes / peak,
                    note="the naive baseline: the whole dataset as float32 in memory",
                ),
            ]
            result.notes.append(
                f"{size}×{size}: generated and wrote the {CROHME_TRAIN_IMAGES:,}-image "
                f".npz in {write_seconds:.0f} s ({base_per_class} distinct per class, tiled)."
            )
    result.notes.append(
        "Command: `python -m im2latex_encoder.cli pretrain --data FILE.npz "
        "--config (a JSON copy of quick at the size) "
        f"--epochs 1 --steps-per-epoch {STEPS_PER_EPOCH} --no-progress`; peak RSS = that child's "
        "ru_maxrss, read by a fresh interpreter that starts it. One run each: memory, unlike time, is not noisy."
    )
    return result
