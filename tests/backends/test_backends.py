"""The same preset gives the same outputs on TensorFlow, JAX and PyTorch.

A classifier preset is made here (TensorFlow, the test process's backend), then
`_backend_probe.py` runs once per backend in a subprocess (`KERAS_BACKEND` must be set before
keras is imported) and writes every output to an `.npz`. JAX's and PyTorch's outputs are
compared with TensorFlow's; TensorFlow's with the in-process model. A backend whose framework
fails to import fails its test with a message naming it: `make test` installs the `jax` and
`torch` extras, so a missing one is a broken environment, not a reason to skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from im2latex_encoder import ClassificationHead, SymbolClassifier, SymbolEncoder

PROBE = Path(__file__).with_name("_backend_probe.py")
BACKENDS = ("tensorflow", "jax", "torch")
CROSS_BACKEND_ATOL = 1e-4
ROUND_TRIP_ATOL = 1e-6

pytestmark = [pytest.mark.backend, pytest.mark.slow]


def _strokes(rng, shape):
    """Sparse ink 1.0 with some anti-aliased 0.5 pixels on background 0.0."""
    images = np.zeros(shape, "float32")
    images[rng.random(shape) < 0.12] = 1.0
    images[rng.random(shape) < 0.04] = 0.5
    return images


@pytest.fixture(scope="module")
def made_on_tensorflow(tmp_path_factory):
    """A classifier preset, a `.keras` file and the probe inputs, all made on TensorFlow."""
    assert keras.backend.backend() == "tensorflow"
    root = tmp_path_factory.mktemp("backends")
    keras.utils.set_random_seed(3)
    classifier = SymbolClassifier(
        SymbolEncoder(normalization="batch"),
        ClassificationHead(5, pooling="avg", hidden_units=16),
        labels="abcde",
        image_size=None,
    )
    # Non-trivial moving statistics, so inference-mode batch norm is exercised too.
    for norm in classifier.encoder.norms:
        rng = np.random.default_rng(len(norm.name))
        mean, variance = norm.moving_mean, norm.moving_variance
        mean.assign(rng.normal(0, 0.1, mean.shape).astype("float32"))
        variance.assign(rng.uniform(0.5, 1.5, variance.shape).astype("float32"))
    classifier.save_to_preset(root / "preset")
    classifier.save(root / "classifier.keras")
    rng = np.random.default_rng(0)
    inputs = {
        "square": _strokes(rng, (2, 128, 128, 1)),
        "wide": _strokes(rng, (2, 64, 512, 1)),
        "small": _strokes(rng, (1, 40, 56, 1)),
        "train_x": _strokes(rng, (8, 48, 48, 1)),
        "train_y": np.arange(8, dtype="int32") % 5,
    }
    np.savez(root / "inputs.npz", **inputs)
    reference = {
        "classifier_128x128": keras.ops.convert_to_numpy(classifier(inputs["square"])),
        "classifier_64x512": keras.ops.convert_to_numpy(classifier(inputs["wide"])),
    }
    return root, reference


def run_probe(backend: str, root: Path) -> dict:
    work = root / backend
    work.mkdir(exist_ok=True)
    out = work / "outputs.npz"
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        [
            sys.executable,
            str(PROBE),
            "--backend",
            backend,
            "--preset",
            str(root / "preset"),
            "--keras-file",
            str(root / "classifier.keras"),
            "--inputs",
            str(root / "inputs.npz"),
            "--work",
            str(work),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if completed.returncode == 3:
        pytest.fail(completed.stderr.strip().splitlines()[-1], pytrace=False)
    assert completed.returncode == 0, (
        f"the {backend} probe failed (exit {completed.returncode}):\n{completed.stderr[-4000:]}"
    )
    with np.load(out, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def tensorflow_outputs(made_on_tensorflow):
    root, _ = made_on_tensorflow
    return run_probe("tensorflow", root)


def max_abs_differences(outputs: dict, reference: dict) -> dict:
    compared = {}
    for key, expected in reference.items():
        if key == "backend" or key.endswith("_diff"):
            continue
        actual = outputs[key]
        assert actual.shape == expected.shape, f"{key}: {actual.shape} != {expected.shape}"
        compared[key] = float(np.max(np.abs(actual.astype("float64") - expected)))
    return compared


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_matches_tensorflow(backend, made_on_tensorflow, tensorflow_outputs):
    root, in_process = made_on_tensorflow
    outputs = tensorflow_outputs if backend == "tensorflow" else run_probe(backend, root)
    assert str(outputs["backend"]) == backend

    # Shapes: the contract, on every backend.
    assert outputs["classifier_128x128"].shape == (2, 5)
    assert outputs["encoder_sequence_128x128"].shape == (2, 784, 64)
    assert outputs["encoder_sequence_64x512"].shape == (2, 12 * 124, 64)
    assert outputs["encoder_grid_pe_64x512"].shape == (2, 12, 124, 64)
    assert outputs["functional_grid_pe_40x56"].shape == (1, 6, 10, 64)
    np.testing.assert_allclose(outputs["classifier_128x128"].sum(axis=-1), 1.0, atol=1e-5)

    # Positional encoding adds a signal that depends on the position only.
    signal = (
        outputs["encoder_grid_pe_64x512"].reshape(2, -1, 64) - outputs["encoder_sequence_64x512"]
    )
    np.testing.assert_allclose(signal[0], signal[1], atol=1e-5)
    assert np.ptp(signal) > 1.0
    np.testing.assert_allclose(
        outputs["functional_grid_pe_64x512"], outputs["encoder_grid_pe_64x512"], atol=1e-6
    )
    np.testing.assert_allclose(
        outputs["positional_only_5x7"][0, 0, 0],
        np.array([0, 0, 1, 1, 0, 0, 1, 1], "float32"),
        atol=1e-6,
    )

    # The `.keras` file written on TensorFlow loads here and gives the preset's outputs.
    np.testing.assert_allclose(
        outputs["tf_keras_file_128x128"], outputs["classifier_128x128"], atol=1e-6
    )
    # Training changed the model, and the round trips on this backend keep it exactly.
    assert np.max(np.abs(outputs["trained_128x128"] - outputs["classifier_128x128"])) > 1e-4
    assert np.isfinite(outputs["train_loss"]).all()
    for key in (
        "keras_round_trip_diff",
        "preset_round_trip_diff",
        "preset_round_trip_encoder_diff",
    ):
        assert float(outputs[key]) <= ROUND_TRIP_ATOL, f"{backend} {key}={float(outputs[key])}"

    reference = in_process if backend == "tensorflow" else tensorflow_outputs
    differences = max_abs_differences(outputs, reference)
    worst = max(differences, key=differences.get)
    assert differences[worst] <= CROSS_BACKEND_ATOL, (
        f"{backend} differs from TensorFlow: max abs difference {differences[worst]:.3g} in "
        f"{worst!r} (allowed {CROSS_BACKEND_ATOL}). All: "
        + ", ".join(f"{k}={v:.2g}" for k, v in sorted(differences.items()))
    )
