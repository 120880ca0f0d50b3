"""The `encoder_latency` benchmark's candidates compute the encoder (no timings asserted)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture()
def weights(tmp_path):
    from benchmarks.encoder_latency import _save_weights

    return _save_weights(str(tmp_path), seed=7)


def test_s2d_forward_equals_the_encoder(weights):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the benchmark's TF side")
    from benchmarks.encoder_latency import _load_encoder, as_sequence, s2d_forward

    encoder = _load_encoder(weights)
    for shape in [(48, 48), (37, 61)]:
        images = np.random.default_rng(0).random((2, *shape, 1)).astype("float32")
        expected = np.asarray(as_sequence(encoder(images)))
        got = np.asarray(s2d_forward(encoder)(images))
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_tf_and_torch_workers_time_the_same_function(weights):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the benchmark's TF side")
    pytest.importorskip("torch")
    from benchmarks.encoder_latency import (
        STAGES,
        stage_keys,
        tf_latency_candidates,
        torch_latency_candidates,
    )

    shape = [40, 52]
    tf_side = tf_latency_candidates(
        weights, [shape], threads=1, paths=["tf", "tf s2d", "tflite s2d"], stages=True, base_calls=1
    )
    torch_side = torch_latency_candidates(weights, [shape], threads=1, base_calls=1)
    every = {**tf_side, **torch_side}
    assert set(stage_keys(shape)) <= set(every)
    assert {f"torch stage {s} 40x52" for s in STAGES} <= set(every)
    reference = tf_side["tf 40x52"].info["checksum"]
    for key in ("tf s2d 40x52", "tflite s2d 40x52"):
        np.testing.assert_allclose(tf_side[key].info["checksum"], reference, rtol=1e-5)
    for key in ("torch 40x52", "torch frozen 40x52"):
        np.testing.assert_allclose(torch_side[key].info["checksum"], reference, rtol=1e-5)
    assert every["stage conv1 40x52"]() >= 0.0  # a candidate runs and returns its seconds
