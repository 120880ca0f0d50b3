"""`FeatureGridNeck`: the task's part between the backbone's grid and its own layers."""

import keras
import numpy as np
import pytest

from im2latex_encoder import FeatureGridNeck, SymbolEncoder
from model_checks import check_config_round_trip, check_keras_file_round_trip, check_output_shape


@pytest.mark.parametrize(
    "arguments, expected",
    [
        ({}, (2, 12 * 20, 64)),
        ({"output": "grid"}, (2, 12, 20, 64)),
        ({"projection_dim": 32}, (2, 12 * 20, 32)),
        ({"projection_dim": 16, "output_norm": True, "positional_encoding": True}, (2, 240, 16)),
    ],
)
def test_output_shapes(arguments, expected):
    check_output_shape(FeatureGridNeck(**arguments), (2, 12, 20, 64), expected)


def test_only_the_projection_and_the_norm_have_weights():
    neck = FeatureGridNeck(8, output_norm=True, positional_encoding=True)
    neck.build((None, None, None, 64))
    assert [tuple(w.shape) for w in neck.weights] == [(64, 8), (8,), (8,), (8,)]
    plain = FeatureGridNeck(positional_encoding=True)
    plain.build((None, None, None, 64))
    assert not plain.weights


def test_flattening_is_row_major_and_the_signal_tells_positions_apart():
    grid = np.random.default_rng(0).random((2, 3, 5, 8)).astype("float32")
    flat = keras.ops.convert_to_numpy(FeatureGridNeck()(grid))
    np.testing.assert_array_equal(flat[:, 1 * 5 + 3], grid[:, 1, 3])
    located = keras.ops.convert_to_numpy(FeatureGridNeck(positional_encoding=True)(grid))
    signal = located - flat
    assert np.abs(signal).max() > 0.5 and not np.allclose(signal[:, 0], signal[:, 1])


def test_unknown_grid_size_and_config_round_trip(tmp_path):
    check_config_round_trip(FeatureGridNeck(12, output_norm=True, positional_encoding=True))
    inputs = keras.Input((None, None, 1))
    grid = SymbolEncoder(filters=(8, 8), output="grid")(inputs)
    outputs = FeatureGridNeck(16, output_norm=True)(grid)
    assert tuple(outputs.shape) == (None, None, 16)
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(1).random((2, 30, 44, 1)).astype("float32")
    check_keras_file_round_trip(model, images, tmp_path)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"projection_dim": 0}, r"positive int or None. Received: projection_dim=0"),
        ({"projection_dim": "8"}, r"Received: projection_dim='8'"),
        ({"output": "flat"}, r"one of 'sequence', 'grid'. Received: output='flat'"),
    ],
)
def test_bad_configuration_is_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        FeatureGridNeck(**arguments)


def test_bad_input_says_what_was_expected():
    with pytest.raises(ValueError, match=r"expects a grid .* Received: input_shape=\(2, 784, 64\)"):
        FeatureGridNeck()(np.zeros((2, 784, 64), "float32"))
    with pytest.raises(ValueError, match="divisible by 4"):
        FeatureGridNeck(positional_encoding=True)(np.zeros((1, 3, 3, 6), "float32"))
