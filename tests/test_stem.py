"""`benchmarks.s2d_stem`: the space-to-depth first conv + ReLU + pool equals the plain path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from benchmarks.s2d_stem import s2d_conv_relu_pool, s2d_kernel, space_to_depth
from im2latex_encoder import SymbolEncoder


def _plain(images, kernel, bias, padding="valid", activation="relu"):
    conv = keras.layers.Conv2D(
        kernel.shape[-1], kernel.shape[0], padding=padding, activation=activation
    )
    conv.build(images.shape)
    conv.set_weights([kernel, bias])
    return np.asarray(keras.layers.MaxPooling2D(2)(conv(images)))


def _weights(size=3, channels=1, filters=32, seed=0):
    rng = np.random.default_rng(seed)
    kernel = rng.standard_normal((size, size, channels, filters)).astype("float32")
    bias = rng.standard_normal(filters).astype("float32")  # negative ones exercise the ReLU
    return kernel, bias


@pytest.mark.parametrize(
    "shape", [(48, 48), (49, 48), (48, 51), (21, 37), (18, 18), (19, 19), (64, 160)]
)
def test_s2d_stem_equals_conv_relu_pool_on_even_and_odd_sizes(shape):
    kernel, bias = _weights()
    images = np.random.default_rng(1).random((2, *shape, 1)).astype("float32")
    expected = _plain(images, kernel, bias)
    got = np.asarray(s2d_conv_relu_pool(images, kernel, bias))
    assert got.shape == expected.shape == (2, (shape[0] - 2) // 2, (shape[1] - 2) // 2, 32)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert (expected == 0).any() and (expected > 0).any()  # the ReLU was exercised


@pytest.mark.parametrize(
    "size, channels, padding, shape",
    [
        (3, 1, "same", (21, 30)),
        (5, 1, "valid", (23, 26)),
        (2, 1, "valid", (17, 20)),  # even kernel: the s2d conv reads one row past the image
        (4, 3, "same", (19, 22)),
        (3, 3, "valid", (20, 25)),
    ],
)
def test_s2d_stem_other_kernels_channels_and_padding(size, channels, padding, shape):
    kernel, bias = _weights(size, channels, filters=8, seed=size)
    images = np.random.default_rng(2).random((1, *shape, channels)).astype("float32")
    expected = _plain(images, kernel, bias, padding=padding)
    got = np.asarray(s2d_conv_relu_pool(images, kernel, bias, padding=padding))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_s2d_stem_with_a_prepacked_kernel_and_a_symbol_encoders_weights():
    keras.utils.set_random_seed(3)
    encoder = SymbolEncoder(output="grid")
    kernel, bias = (np.asarray(w) for w in encoder.convs[0].get_weights())
    images = np.random.default_rng(4).random((2, 41, 66, 1)).astype("float32")
    expected = np.asarray(encoder.pool(encoder.activation_layer(encoder.convs[0](images))))
    packed = s2d_kernel(kernel)
    assert tuple(packed.shape) == (2, 2, 4, 128)
    np.testing.assert_allclose(
        np.asarray(s2d_conv_relu_pool(images, packed, bias)), expected, rtol=1e-5, atol=1e-5
    )


def test_s2d_kernel_places_each_pool_offset_and_space_to_depth_orders_channels():
    kernel = np.arange(9, dtype="float32").reshape(3, 3, 1, 1) + 1
    packed = np.asarray(s2d_kernel(kernel))  # (2, 2, 4, 4)
    # Offset (0, 0): kernel pixel (a, b) sits at block (a // 2, b // 2), channel (a % 2, b % 2).
    for a in range(3):
        for b in range(3):
            assert packed[a // 2, b // 2, (a % 2) * 2 + b % 2, 0] == kernel[a, b, 0, 0]
            # Offset (1, 1): the same pixel, one down and one right.
            p, q = a + 1, b + 1
            assert packed[p // 2, q // 2, (p % 2) * 2 + q % 2, 3] == kernel[a, b, 0, 0]
    assert packed[:, :, :, 0].sum() == kernel.sum() == packed[:, :, :, 3].sum()
    x = np.arange(2 * 4 * 6 * 2, dtype="float32").reshape(2, 4, 6, 2)
    y = np.asarray(space_to_depth(x))
    assert y.shape == (2, 2, 3, 8)
    np.testing.assert_array_equal(y[1, 1, 2].reshape(2, 2, 2), x[1, 2:4, 4:6])


def test_s2d_stem_rejects_activations_that_do_not_commute_with_max():
    kernel, bias = _weights(filters=4)
    with pytest.raises(ValueError, match="commute with max"):
        s2d_conv_relu_pool(np.zeros((1, 20, 20, 1), "float32"), kernel, bias, activation="gelu")


def test_s2d_stem_gradients_reach_the_kernel():
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("a TensorFlow gradient check")
    kernel, bias = _weights(filters=4)
    images = tf.constant(np.random.default_rng(5).random((1, 20, 21, 1)).astype("float32"))
    variables = [tf.Variable(kernel), tf.Variable(bias)]
    gradients = []
    for stem in (s2d_conv_relu_pool, lambda x, k, b: _plain_tf(x, k, b)):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(stem(images, *variables) ** 2)
        gradients.append([g.numpy() for g in tape.gradient(loss, variables)])
    for got, expected in zip(*gradients):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def _plain_tf(images, kernel, bias):
    import tensorflow as tf

    y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(images, kernel, 1, "VALID"), bias))
    return tf.nn.max_pool2d(y, 2, 2, "VALID")


REPOSITORY = Path(__file__).resolve().parents[1]

_OTHER_BACKEND = """
import numpy as np, keras
from benchmarks.s2d_stem import s2d_conv_relu_pool
rng = np.random.default_rng(0)
kernel = rng.standard_normal((3, 3, 1, 16)).astype("float32")
bias = rng.standard_normal(16).astype("float32")
worst = 0.0
for shape in [(48, 48), (33, 70), (19, 20)]:
    x = rng.random((2, *shape, 1)).astype("float32")
    conv = keras.layers.Conv2D(16, 3, activation="relu")
    conv.build(x.shape)
    conv.set_weights([kernel, bias])
    expected = keras.ops.convert_to_numpy(keras.layers.MaxPooling2D(2)(conv(x)))
    got = keras.ops.convert_to_numpy(s2d_conv_relu_pool(x, kernel, bias))
    assert got.shape == expected.shape, (got.shape, expected.shape)
    worst = max(worst, float(np.abs(got - expected).max()))
print(keras.backend.backend(), worst)
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_s2d_stem_equals_the_plain_path_on_other_backends(backend):
    pytest.importorskip(backend)
    env = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="")
    done = subprocess.run(
        [sys.executable, "-c", _OTHER_BACKEND],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPOSITORY,  # `benchmarks` is a folder of the repository, not of the package
    )
    assert done.returncode == 0, done.stderr[-2000:]
    name, worst = done.stdout.split()[-2:]
    assert name == backend
    assert float(worst) < 1e-4
