"""`kill -9` at seeded random moments, then the same command again, in real processes.

After every kill the artifact is absent, the previous complete version or the new complete
version (loaded and checked), no worker process outlives its killed parent, and the command
run again completes. Besides random moments, each loop has one kill aimed at the worst one:
while the output's temporary file is being written.
"""

import csv
import json
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from im2latex_encoder import SymbolClassifier, SymbolEncoder, presets
from im2latex_encoder.data.cache import load_prepared
from inkml_fixtures import build_inkml
from reliability_helpers import ENV, LABELS, cli, kill_9, wait_for, write_crohme_folder

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _start(argv):
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".") and ".tmp" in p.name]


def _kill_loop(argv, out: Path, check, delays) -> int:
    """Run `argv` and kill it after each delay (or, for None, once a temporary file appears);
    call `check()` after every kill; return the number of kills that landed."""
    kills = 0
    for delay in delays:
        process = _start(argv)
        if delay is None:
            landed = wait_for(lambda: bool(_temporaries(out.parent)), process, poll=0.002)
        else:
            try:
                process.wait(timeout=delay)
                landed = False
            except subprocess.TimeoutExpired:
                landed = True
        if not landed or process.poll() is not None:
            stdout, stderr = process.communicate()
            assert process.returncode == 0, stderr[-3000:]
            check()
            continue
        assert kill_9(process) == [], "a worker outlived its killed parent"
        process.stdout.close()
        process.stderr.close()
        kills += 1
        check()
    return kills


def _prepared_versions(out: Path, *expected):
    """A check: `out` is absent or loads as one of the expected complete (count, size) versions."""

    def check():
        if out.exists():
            dataset = load_prepared(out)
            assert (len(dataset), dataset.image_size[0]) in expected
            assert dataset.images.reshape(len(dataset), -1).max(axis=1).min() > 128  # no blank tail

    return check


def test_prepare_crohme_survives_kill_9_at_random_moments(tmp_path):
    count = 2000
    write_crohme_folder(tmp_path / "train", count, build_inkml)
    out = tmp_path / "crohme.npz"

    def command(size):
        return cli(
            "prepare",
            "crohme",
            tmp_path / "train",
            "--out",
            out,
            "--image-size",
            size,
            "--no-progress",
        )

    started = time.perf_counter()
    assert subprocess.run(command(18), capture_output=True, env=ENV).returncode == 0
    duration = time.perf_counter() - started
    rng = random.Random(6)
    # Moments inside a run as long as the first one, whatever this machine's speed.
    delays = [rng.uniform(0.3, 0.8) * duration for _ in range(2)] + [None]
    check = _prepared_versions(out, (count, 18), (count, 24))
    kills = _kill_loop(command(24), out, check, delays)
    # On a loaded machine the timed run can outlast the later ones, so every moment above may
    # fall after the run ended (seen once beside a training): then aim earlier, a few times.
    for _ in range(3):
        if kills:
            break
        kills += _kill_loop(command(24), out, check, [rng.uniform(0.05, 0.3) * duration])
    final = subprocess.run(command(24), capture_output=True, text=True, env=ENV)
    assert final.returncode == 0, final.stderr[-3000:]
    dataset = load_prepared(out)
    assert dataset.images.shape == (count, 24, 24)
    names = [dataset.label_names[i] for i in dataset.labels]
    assert {label: names.count(label) for label in LABELS} == {
        label: count // len(LABELS) for label in LABELS
    }
    # Temporaries left by kills are hidden files no reader opens; the one visible file is the artifact.
    assert sorted(p.name for p in tmp_path.glob("*.npz") if not p.name.startswith(".")) == [
        "crohme.npz"
    ]
    print(
        f"prepare crohme: {kills} kills survived, {len(_temporaries(tmp_path))} hidden temporaries left"
    )
    assert kills >= 1


def test_prepare_synthetic_survives_kill_9_at_random_moments(tmp_path):
    out = tmp_path / "synthetic.npz"

    def command(seed):
        return cli(
            "prepare",
            "synthetic",
            "--out",
            out,
            "--per-class",
            8,
            "--image-size",
            24,
            "--seed",
            seed,
            "--no-progress",
        )

    started = time.perf_counter()
    assert subprocess.run(command(0), capture_output=True, env=ENV).returncode == 0
    duration = time.perf_counter() - started
    first = load_prepared(out)
    rng = random.Random(7)

    def check():
        dataset = load_prepared(out)
        assert len(dataset) == 808 and dataset.settings["seed"] in (0, 1)
        if dataset.settings["seed"] == 0:
            np.testing.assert_array_equal(dataset.images, first.images)

    kills = _kill_loop(command(1), out, check, [rng.uniform(0.3, 0.8) * duration, None])
    final = subprocess.run(command(1), capture_output=True, text=True, env=ENV)
    assert final.returncode == 0, final.stderr[-3000:]
    assert load_prepared(out).settings["seed"] == 1
    print(f"prepare synthetic: {kills} kills survived")
    assert kills >= 1


TINY = {
    "name": "tiny",
    "description": "test-sized",
    "image_size": 32,
    "filters": [8, 16, 16],
    "normalization": "batch",
    "pooling": "avg",
    "batch_size": 16,
    "epochs": 2,
    "steps_per_epoch": 2,
    "learning_rate": 0.003,
    "augment": {"rotation": 0.02},
    "validation_per_class": 1,
}


def _check_run(out: Path) -> None:
    """Whatever a kill left is loadable: the committed checkpoint and, if any, the preset."""
    state_path = out / "checkpoint" / "state.json"
    if state_path.exists():
        state = json.loads(state_path.read_text())
        assert [row["epoch"] for row in state["history"]] == list(range(1, state["epoch"] + 1))
        with h5py.File(out / "checkpoint" / state["weights"], "r") as weights:
            assert len(weights.keys()) > 0
    if (out / "preset").exists() or list(out.glob(".preset.old-*")):
        classifier = SymbolClassifier.from_preset(str(out / "preset"))  # checksums, then weights
        assert len(classifier.labels) == 101


def test_pretrain_survives_kill_9_at_random_moments(tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    out = tmp_path / "run"
    command = cli("pretrain", "--config", config, "--out", out, "--no-progress")
    state = out / "checkpoint" / "state.json"
    rng = random.Random(8)
    kills = 0

    def epoch():
        try:
            return json.loads(state.read_text())["epoch"]
        except (FileNotFoundError, json.JSONDecodeError):
            return 0

    # 1: a random moment in the epoch after the first checkpoint. 2: a random moment after
    # the last epoch, while evaluating, plotting and saving the preset.
    for target in (1, TINY["epochs"]):
        process = _start(command)
        reached = wait_for(lambda target=target: epoch() >= target, process, poll=0.01)
        if reached:
            try:
                process.wait(timeout=rng.uniform(0.0, 2.0))
            except subprocess.TimeoutExpired:
                assert kill_9(process) == []
                kills += 1
        if process.poll() is not None and process.returncode not in (0, -9):
            pytest.fail(process.communicate()[1][-3000:])
        process.communicate()
        _check_run(out)
    final = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)
    assert final.returncode == 0, final.stderr[-3000:]
    assert "Resuming" in final.stdout
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(row["epoch"]) for row in rows] == list(range(1, TINY["epochs"] + 1))
    _check_run(out)
    assert presets.preset_metadata(str(out / "preset"))["training"]["config"]["name"] == "tiny"
    print(f"pretrain: {kills} kills survived")
    assert kills >= 1


_SAVE_LOOP = textwrap.dedent("""
    import sys
    import numpy as np
    from im2latex_encoder import SymbolEncoder

    encoder = SymbolEncoder(filters=(8, 16, 16))
    encoder(np.zeros((1, 32, 32, 1), "float32"))
    for version in range(int(sys.argv[2]), 10**6):
        encoder.set_weights([np.full(w.shape, version, w.dtype) for w in encoder.get_weights()])
        encoder.save_to_preset(sys.argv[1], metadata={"version": version})
        print(version, flush=True)
""")


def test_save_to_preset_killed_midway_keeps_a_complete_preset(tmp_path):
    path = tmp_path / "preset"
    rng = random.Random(9)
    kills, last = 0, 0
    for _ in range(3):
        process = subprocess.Popen(
            [sys.executable, "-c", _SAVE_LOOP, str(path), str(last + 1)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        line = process.stdout.readline()  # one save done: the loop is running
        assert line.strip().isdigit(), process.communicate()[1][-3000:]
        try:
            process.wait(timeout=rng.uniform(0.0, 1.0))
        except subprocess.TimeoutExpired:
            assert kill_9(process) == []
            kills += 1
        printed = [int(line) for line in [line, *process.stdout.read().split()]]
        process.stdout.close()
        process.stderr.close()
        # The preset holds the last version saved or the one being saved, complete and checked.
        version = presets.preset_metadata(str(path))["version"]
        assert version in (printed[-1], printed[-1] + 1) and version > last
        weights = SymbolEncoder.from_preset(str(path)).get_weights()
        assert all(np.all(w == version) for w in weights)
        assert len(list(tmp_path.glob(".preset.old-*"))) <= 1, (
            "at most one retired copy to recover from"
        )
        last = version
    print(f"save_to_preset: {kills} kills survived")
    assert kills == 3
