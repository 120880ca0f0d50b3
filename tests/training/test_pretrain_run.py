"""End-to-end pretraining with the real command line, in real processes."""

import csv
import json
import os
import signal
import socket
import subprocess
import time

import numpy as np
import pytest

from im2latex_encoder import SymbolClassifier, presets
from training_helpers import cli_command, run_cli

pytestmark = pytest.mark.slow


def _weights(preset_dir):
    return SymbolClassifier.from_preset(str(preset_dir)).get_weights()


def test_tiny_pretrain_leaves_every_artifact(tmp_path, tiny_config):
    out = tmp_path / "run"
    result = run_cli("pretrain", "--config", tiny_config(), "--out", out, "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    for name in (
        "run.json",
        "history.csv",
        "metrics.json",
        "model_card.md",
        "plots/history.png",
        "plots/predictions.png",
        "plots/confusions.png",
        "checkpoint/state.json",
        "preset/metadata.json",
        "preset/model_card.md",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert any((out / "tensorboard").rglob("events.out.tfevents.*"))
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert {"loss", "accuracy", "top5", "val_accuracy", "val_loss", "seconds"} <= set(rows[0])
    metadata = presets.preset_metadata(str(out / "preset"))
    assert metadata["metrics"]["synthetic_validation"]["n"] == 101
    assert metadata["training"]["config"]["name"] == "tiny"
    classifier = SymbolClassifier.from_preset(str(out / "preset"))
    assert classifier.image_size == (32, 32) and len(classifier.labels) == 101
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["metrics"]["synthetic_validation"]["top1"] <= 1.0
    assert "| synthetic_validation |" in (out / "model_card.md").read_text()
    assert "Preset:" in result.stdout

    # A finished run is not retrained: the same command only rewrites identical artifacts.
    again = run_cli("pretrain", "--config", tiny_config(), "--out", out, "--no-progress")
    assert again.returncode == 0 and "Resuming" in again.stdout and "Epoch" not in again.stdout
    saved = _weights(out / "preset")
    assert saved, "the preset has weights to compare"
    for a, b in zip(saved, classifier.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_kill_9_and_resume_gives_the_uninterrupted_weights(tmp_path, tiny_config):
    config = tiny_config(epochs=4)
    straight = tmp_path / "straight"
    assert (
        run_cli("pretrain", "--config", config, "--out", straight, "--no-progress").returncode == 0
    )

    resumed = tmp_path / "resumed"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    process = subprocess.Popen(
        cli_command("pretrain", "--config", config, "--out", resumed, "--no-progress"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    state = resumed / "checkpoint" / "state.json"
    while process.poll() is None and not state.exists():
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (resumed / "preset").exists(), "killed before the end, so no preset yet"
    completed = json.loads(state.read_text())["epoch"]
    assert 1 <= completed < 4

    result = run_cli("pretrain", "--config", config, "--out", resumed, "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Resuming {resumed} after epoch {completed} of 4" in result.stdout
    resumed_weights = _weights(resumed / "preset")
    assert resumed_weights, "the preset has weights to compare"
    for a, b in zip(resumed_weights, _weights(straight / "preset"), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)

    def history(run):
        with (run / "history.csv").open() as handle:
            return [row["val_accuracy"] for row in csv.DictReader(handle)]

    assert len(history(resumed)) == 4
    np.testing.assert_allclose(
        np.float64(history(resumed)), np.float64(history(straight)), atol=1e-4
    )
    assert not list(resumed.rglob(".*.tmp-*")), "no temporary files left behind"


def test_a_run_dir_with_other_settings_is_refused(tmp_path, tiny_config):
    out = tmp_path / "run"
    assert (
        run_cli(
            "pretrain", "--config", tiny_config(epochs=1), "--out", out, "--no-progress"
        ).returncode
        == 0
    )
    result = run_cli("pretrain", "--config", tiny_config(epochs=1, learning_rate=0.1), "--out", out)
    assert result.returncode == 2
    assert "holds a run with different settings (learning_rate)" in result.stderr
    assert "Traceback" not in result.stderr


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_workers_train_on_loopback(tmp_path, tiny_config):
    config = tiny_config()
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    out = tmp_path / "run"
    processes = []
    for index in range(2):
        tf_config = json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        )
        env = dict(
            os.environ, TF_CONFIG=tf_config, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""
        )
        processes.append(
            subprocess.Popen(
                cli_command(
                    "pretrain",
                    "--config",
                    config,
                    "--out",
                    out,
                    "--strategy",
                    "multiworker",
                    "--no-progress",
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    # Both workers took the same synchronous steps: their logged losses agree.
    losses = [
        [line.split("loss: ")[1].split()[0] for line in stdout.splitlines() if "val_loss" in line]
        for stdout, _ in outputs
    ]
    assert len(losses[0]) == 2 and losses[0] == losses[1]
    assert (out / "preset" / "metadata.json").is_file()  # written by the chief only
    assert "Preset:" in outputs[0][0] and "Preset:" not in outputs[1][0]


def test_mirrored_strategy_trains_as_the_default_one(tmp_path, tiny_config):
    # One machine's MirroredStrategy (here one CPU replica) keeps the steps' metrics scalar,
    # which the TensorBoard callback needs, and trains on the same batches as no strategy.
    config = tiny_config()
    runs = {}
    for strategy in ("mirrored", "default"):
        out = tmp_path / strategy
        result = run_cli(
            "pretrain", "--config", config, "--out", out, "--strategy", strategy, "--no-progress"
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert (out / "preset" / "metadata.json").is_file()
        assert any((out / "tensorboard").rglob("events.out.tfevents.*"))
        with (out / "history.csv").open() as handle:
            runs[strategy] = [
                (float(row["loss"]), float(row["val_loss"])) for row in csv.DictReader(handle)
            ]
    assert len(runs["mirrored"]) == 2
    np.testing.assert_allclose(runs["mirrored"], runs["default"], rtol=1e-4)


def test_multiworker_without_tf_config_is_a_clear_error(tmp_path, tiny_config):
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    result = subprocess.run(
        cli_command(
            "pretrain",
            "--config",
            tiny_config(),
            "--out",
            tmp_path / "r",
            "--strategy",
            "multiworker",
        ),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2 and "needs the TF_CONFIG environment variable" in result.stderr


def test_a_recipe_without_augmentation_trains(tmp_path, tiny_config):
    # The seed's recipe has no augmentation; Keras cannot build an empty Sequential.
    out = tmp_path / "run"
    result = run_cli(
        "pretrain",
        "--config",
        tiny_config(epochs=1, augment={}, pooling="flatten", hidden_units=4, normalization=None),
        "--out",
        out,
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert SymbolClassifier.from_preset(str(out / "preset")).head.pooling == "flatten"


def test_a_cache_of_another_image_size_is_a_clear_error(tmp_path, tiny_config):
    from im2latex_encoder.data.cache import PreparedDataset, save_prepared

    save_prepared(
        tmp_path / "big.npz",
        PreparedDataset(
            np.zeros((40, 48, 48), np.uint8),
            np.zeros(40, np.int32),
            ("x",),
            {"image_size": [48, 48]},
            "h",
            {},
        ),
    )
    result = run_cli(
        "pretrain",
        "--config",
        tiny_config(),
        "--out",
        tmp_path / "run",
        "--data",
        tmp_path / "big.npz",
    )
    assert result.returncode == 2
    assert (
        "has 48×48 images; the config trains on 32×32. Prepare it with --image-size 32"
        in result.stderr
    )


def _expression_folder(folder, files=24):
    """CROHME-style expression files: each holds an `x`, a `1` and a `-`, drawn a little apart."""
    from inkml_fixtures import build_inkml

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for index in range(files):
        wobble = rng.uniform(-2, 2, 6)
        traces = [
            [(0, 0), (10 + wobble[0], 10)],
            [(10, 0), (0, 10 + wobble[1])],
            [(20, 0), (20 + wobble[2], 12)],
            [(30, 5), (40 + wobble[3], 5)],
        ]
        (folder / f"expr_{index}.inkml").write_bytes(
            build_inkml(traces, ui=f"em_{index}", groups=[("x", [0, 1]), ("1", [2]), ("-", [3])])
        )
    return folder


def test_real_ink_recipe_validates_on_held_out_expressions(tmp_path, tiny_config, monkeypatch):
    monkeypatch.setenv("IM2LATEX_ENCODER_CACHE", str(tmp_path / "cache"))
    data = _expression_folder(tmp_path / "crohme")
    config = tiny_config(
        epochs=1,
        augment={},
        validation_split=0.25,
        context_scale=0.8,
        ink_augment={"rotation": 8, "slant": 0.2, "drop": 0.2, "line_width": [0.03, 0.06]},
    )
    out = tmp_path / "run"
    result = run_cli(
        "pretrain", "--config", config, "--out", out, "--data", f"crohme:{data}", "--no-progress"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    held = metrics["crohme_validation"]["n"]
    assert held % 3 == 0 and 0 < held < 72  # whole expressions of three symbols each
    assert "synthetic_validation" not in metrics
    card = (out / "model_card.md").read_text()
    assert "held out for validation" in card and "augmented before drawing" in card
    assert list((tmp_path / "cache").glob("crohme-ink-*.npz"))
    # The preset remembers that its symbols were drawn at their size in context, and how.
    from im2latex_encoder import SymbolClassifier

    trained = SymbolClassifier.from_preset(str(out / "preset"))
    assert trained.context_scale == 0.8
    assert "(`context_scale`)" in card and "fills 0.8 of the image" in card
    # Its expression context is counted on the training expressions only (x, 1, - each),
    # saved with the preset, and the held-out slice is also read with it.
    assert (out / "preset" / "context.json").is_file()
    counts = trained.context.transitions
    start, x, one, minus = len(trained.labels), *(trained.labels.index(s) for s in "x1-")
    trained_files = 24 - held // 3
    assert counts[start, 0, x] == trained_files and counts.sum() == 4 * trained_files
    assert counts[x, :, one].sum() == counts[one, :, minus].sum() == trained_files
    assert set(metrics["crohme_validation"]["in_context"]) == {"top1", "top5", "top1_merged"}
    assert ", with neighbours |" in card and "context.json" in card

    # Without a CROHME folder the recipe says what it needs.
    refused = run_cli("pretrain", "--config", config, "--out", tmp_path / "other", "--no-progress")
    assert (
        refused.returncode == 2 and "needs a CROHME folder: add --data crohme:DIR" in refused.stderr
    )


def test_ema_run_ends_with_the_averaged_weights_also_when_resumed(tmp_path, tiny_config):
    config = tiny_config(ema_momentum=0.5)
    plain, averaged = tmp_path / "plain", tmp_path / "ema"
    for out, path in ((plain, tiny_config()), (averaged, config)):
        result = run_cli("pretrain", "--config", path, "--out", out, "--no-progress")
        assert result.returncode == 0, result.stderr[-3000:]
    ema_weights = _weights(averaged / "preset")
    # Same seed, data and steps: only the averaging differs.
    assert any(
        not np.allclose(a, b) for a, b in zip(ema_weights, _weights(plain / "preset"), strict=True)
    )
    # A run killed after its last checkpoint, before its preset, resumes without training and
    # must still swap the averaged weights in rather than ship the raw last-step ones.
    import shutil

    shutil.rmtree(averaged / "preset")
    again = run_cli("pretrain", "--config", config, "--out", averaged, "--no-progress")
    assert again.returncode == 0 and "Resuming" in again.stdout and "Epoch" not in again.stdout
    for a, b in zip(_weights(averaged / "preset"), ema_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_run_distils_trained_teachers_from_their_weights(tmp_path, tiny_config):
    plain = tiny_config(epochs=1, augment={})
    teacher = tmp_path / "teacher"
    result = run_cli("pretrain", "--config", plain, "--out", teacher, "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    student = tmp_path / "student"
    distil = ["--teacher", teacher / "preset", "--teacher", teacher / "preset"]
    result = run_cli(
        "pretrain", "--config", plain, "--out", student, *distil,
        "--distillation-weight", "0.7", "--initial-preset", teacher / "preset", "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((student / "run.json").read_text())
    assert record["distillation"] == {
        "teachers": [str(teacher / "preset")] * 2,
        "weight": 0.7,
        "temperature": 1.0,
    }
    assert record["initial_preset"] == str(teacher / "preset")
    card = (student / "model_card.md").read_text()
    assert "Distilled: the loss puts 0.7 on matching the averaged predictions" in card
    assert "Started from the weights of the preset" in card
    # The student trained on from the teacher's weights: moved, but from there.
    moved = [
        float(np.abs(a - b).max())
        for a, b in zip(_weights(student / "preset"), _weights(teacher / "preset"), strict=True)
    ]
    assert 0 < max(moved) < 1.0

    # Image-space augmentation would show the teachers other images: refused before training.
    refused = run_cli(
        "pretrain", "--config", tiny_config(), "--out", tmp_path / "no", *distil, "--no-progress"
    )
    assert refused.returncode == 2
    assert "Distillation needs the images the student sees" in refused.stderr
    assert not (tmp_path / "no").exists()
    # A starting preset of another architecture is named, with what differs.
    other = run_cli(
        "pretrain", "--config", tiny_config(epochs=1, augment={}, filters=[4, 4, 4]),
        "--out", tmp_path / "other", "--initial-preset", teacher / "preset", "--no-progress",
    )  # fmt: skip
    assert other.returncode == 2
    assert f"--initial-preset {teacher / 'preset'}: expected a classifier" in other.stderr
    assert not (tmp_path / "other").exists()
    bad = run_cli(
        "pretrain", "--config", plain, "--out", tmp_path / "bad", *distil,
        "--distillation-weight", "1.5", "--no-progress",
    )  # fmt: skip
    assert bad.returncode == 2 and "`weight` must be in [0, 1]. Received: weight=1.5" in bad.stderr
    assert not (tmp_path / "bad").exists()
    # Distillation settings without a teacher would be silently unused: refused, by name.
    alone = run_cli(
        "pretrain", "--config", plain, "--out", tmp_path / "alone",
        "--distillation-temperature", "3", "--no-progress",
    )  # fmt: skip
    assert alone.returncode == 2
    assert "--distillation-temperature tune distillation and need at least one --teacher" in (
        alone.stderr
    )
    assert not (tmp_path / "alone").exists()


def test_runs_of_other_seeds_share_a_held_out_slice_through_split_seed(tmp_path, monkeypatch):
    from im2latex_encoder.symbols import CROHME_SYMBOLS
    from im2latex_encoder.training import PretrainConfig
    from im2latex_encoder.training.data_sources import parse_data_spec
    from im2latex_encoder.training.run import training_source

    monkeypatch.setenv("IM2LATEX_ENCODER_CACHE", str(tmp_path / "cache"))
    specs = [parse_data_spec(f"crohme:{_expression_folder(tmp_path / 'crohme')}")]
    config = PretrainConfig(image_size=16, batch_size=8, validation_split=0.25, ink_augment={})

    def held_out(**changes):
        validation = training_source(specs, config.replace(**changes), CROHME_SYMBOLS, False)[3]
        return validation.images

    # By default the seed picks the slice, so two seeds hold out other expressions...
    assert not np.array_equal(held_out(seed=0), held_out(seed=1))
    # ...and one split_seed gives every seed the same slice, the one that seed would pick.
    shared = held_out(seed=0, split_seed=1)
    np.testing.assert_array_equal(shared, held_out(seed=1))
    np.testing.assert_array_equal(shared, held_out(seed=5, split_seed=1))


def test_a_run_recorded_before_a_config_field_existed_resumes(tmp_path, tiny_config):
    from im2latex_encoder.training import load_config
    from im2latex_encoder.training.run import _claim_run_dir

    config = load_config(tiny_config())
    record = {"config": config.to_dict(), "data": ["synthetic"]}
    old = dict(record, config={k: v for k, v in record["config"].items() if k != "split_seed"})
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps(old))
    _claim_run_dir(tmp_path / "run", record, chief=True)  # the missing field holds its default
    with pytest.raises(ValueError, match=r"different settings \(split_seed\)"):
        _claim_run_dir(
            tmp_path / "run", dict(record, config=config.replace(split_seed=3).to_dict()), True
        )
