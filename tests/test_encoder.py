import warnings

import keras
import numpy as np
import pytest

from im2latex_encoder import FeatureGridNeck, SymbolEncoder
from im2latex_encoder.encoder import NECK_ARGUMENTS
from model_checks import check_config_round_trip, check_keras_file_round_trip, check_output_shape


def test_seed_stack_gives_the_flattened_28x28x64_grid_for_128x128():
    encoder = SymbolEncoder()
    check_output_shape(encoder, (2, 128, 128, 1), (2, 28 * 28, 64))
    check_output_shape(SymbolEncoder(output="grid"), (2, 128, 128, 1), (2, 28, 28, 64))
    assert [layer.filters for layer in encoder.convs] == [32, 64, 64]
    assert encoder.count_params() == 320 + 18_496 + 36_928


def test_the_default_encoder_gives_a_rank_3_sequence():
    features = SymbolEncoder()(np.zeros((1, 32, 48, 1), "float32"))
    assert len(features.shape) == 3 and tuple(features.shape) == (1, 4 * 8, 64)


def test_the_backbone_is_the_conv_stack_only():
    encoder = SymbolEncoder(normalization="batch")
    assert encoder.projection is encoder.output_norm_layer is encoder.positional is None
    config = encoder.get_config()
    assert not set(NECK_ARGUMENTS) & set(config), "the neck's arguments are the task's"
    assert config["output"] == "sequence"
    assert {id(w) for w in encoder.weights} == {
        id(w) for layer in encoder.stack_layers for w in layer.weights
    }


def test_wide_formula_input():
    check_output_shape(SymbolEncoder(), (1, 64, 512, 1), (1, 12 * 124, 64))
    check_output_shape(SymbolEncoder(output="grid"), (1, 64, 512, 1), (1, 12, 124, 64))
    assert SymbolEncoder().grid_shape((64, 512)) == (12, 124)


def _snippet_model():
    # The snippet: the encoder's output as the memory of another model's attention.
    image = keras.Input((None, None, 1))
    tokens = keras.Input((None,), dtype="int32")
    features = SymbolEncoder(filters=(8, 16))(image)
    queries = keras.layers.Embedding(40, 64)(tokens)
    context = keras.layers.MultiHeadAttention(num_heads=2, key_dim=32)(queries, features)
    return keras.Model([image, tokens], context)


def test_the_encoder_feeds_another_model_s_attention_and_saves_as_keras(tmp_path):
    model = _snippet_model()
    images = np.random.default_rng(0).random((2, 32, 48, 1)).astype("float32")
    tokens = np.random.default_rng(1).integers(0, 40, (2, 5)).astype("int32")
    model.save(tmp_path / "snippet.keras")
    loaded = keras.saving.load_model(tmp_path / "snippet.keras", safe_mode=True)
    expected = keras.ops.convert_to_numpy(model([images, tokens]))
    assert expected.shape == (2, 5, 64) and np.ptp(expected) > 0
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded([images, tokens])), expected, atol=1e-6
    )
    encoder = next(layer for layer in loaded.layers if isinstance(layer, SymbolEncoder))
    assert encoder.output_mode == "sequence"


def test_the_sequence_is_the_row_major_flattening_of_the_grid():
    images = np.random.default_rng(0).random((2, 40, 56, 1)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # `output` is an option, not deprecated
        grid_encoder = SymbolEncoder(output="grid")
        sequence_encoder = SymbolEncoder(output="sequence")
    sequence_encoder.set_weights(grid_encoder.get_weights())
    grid = keras.ops.convert_to_numpy(grid_encoder(images))
    sequence = keras.ops.convert_to_numpy(sequence_encoder(images))
    np.testing.assert_allclose(sequence, grid.reshape(2, -1, grid.shape[-1]), atol=1e-6)
    # position k is grid cell (k // W', k % W')
    np.testing.assert_allclose(sequence[:, 1 * grid.shape[2] + 3], grid[:, 1, 3], atol=1e-6)
    # `feature_grid` gives the grid whatever `output` says.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(sequence_encoder.feature_grid(images)), grid, atol=1e-6
    )
    assert sequence_encoder.grid_output_shape((2, 40, 56, 1)) == grid.shape


def test_unknown_size_input_in_a_functional_model():
    inputs = keras.Input((None, None, 1))
    assert tuple(SymbolEncoder()(inputs).shape) == (None, None, 64)
    grid = SymbolEncoder(output="grid")(inputs)
    assert tuple(grid.shape) == (None, None, None, 64)
    outputs = FeatureGridNeck(32, positional_encoding=True)(grid)
    assert tuple(outputs.shape) == (None, None, 32)
    model = keras.Model(inputs, outputs)
    assert model.predict(np.zeros((1, 128, 128, 1), "float32"), verbose=0).shape == (1, 784, 32)
    assert model.predict(np.zeros((3, 64, 512, 1), "float32"), verbose=0).shape == (3, 1488, 32)


@pytest.mark.parametrize("normalization", [None, "batch", "group"])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_options_keep_the_shape_contract(normalization, padding):
    encoder = SymbolEncoder(filters=(16, 32, 32), normalization=normalization, padding=padding)
    height, width = encoder.grid_shape((64, 96))
    check_output_shape(encoder, (2, 64, 96, 1), (2, height * width, 32))
    assert encoder.grid_output_shape((2, 64, 96, 1)) == (2, height, width, 32)
    if padding == "same":
        assert (height, width) == (16, 24)


def test_config_round_trip():
    check_config_round_trip(SymbolEncoder())
    check_config_round_trip(
        SymbolEncoder(filters=(8, 16), normalization="group", groups=4, padding="same")
    )
    assert check_config_round_trip(SymbolEncoder(output="grid")).output_mode == "grid"


def test_keras_file_round_trip_inside_a_model(tmp_path):
    inputs = keras.Input((None, None, 1))
    features = FeatureGridNeck(output_norm=True, positional_encoding=True)(
        SymbolEncoder(normalization="batch", output="grid")(inputs)
    )
    outputs = keras.layers.Dense(7)(features)
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(1).random((2, 48, 80, 1)).astype("float32")
    loaded = check_keras_file_round_trip(model, images, tmp_path)
    assert any(isinstance(layer, SymbolEncoder) for layer in loaded.layers)
    assert any(isinstance(layer, FeatureGridNeck) for layer in loaded.layers)


# --- 0.1.0's neck arguments: deprecated, same outputs as the neck they now name --------------


@pytest.mark.parametrize(
    "arguments",
    [
        {"output": "grid", "positional_encoding": True},
        {"projection_dim": 16},
        {"projection_dim": 16, "output_norm": True, "positional_encoding": True},
    ],
)
def test_deprecated_neck_arguments_warn_and_give_the_neck_s_output(arguments):
    images = np.random.default_rng(0).random((2, 40, 56, 1)).astype("float32")
    backbone = SymbolEncoder(filters=(8, 16), output="grid")
    with pytest.warns(
        DeprecationWarning, match=r"FeatureGridNeck\(.*\) after a SymbolEncoder\(output='grid'\)"
    ):
        legacy = SymbolEncoder(filters=(8, 16), **arguments)
    neck = FeatureGridNeck(**arguments)
    neck.build(backbone.compute_output_shape((None, None, None, 1)))
    # The same weights in both: the stack's, then the projection's and the norm's.
    weights = [
        np.random.default_rng(index).normal(size=w.shape).astype("float32")
        for index, w in enumerate(legacy.weights)
    ]
    legacy.set_weights(weights)
    backbone.set_weights(weights[: len(backbone.weights)])
    neck.set_weights(weights[len(backbone.weights) :])
    expected = keras.ops.convert_to_numpy(neck(backbone(images)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(legacy(images)), expected, atol=1e-5)
    assert legacy.compute_output_shape((2, 40, 56, 1)) == tuple(expected.shape)
    check_config_round_trip(legacy)


def test_a_0_1_0_config_loads_as_saved():
    plain_0_1_0 = dict(
        SymbolEncoder(filters=(8, 16)).get_config(),
        positional_encoding=False,
        projection_dim=None,
        output_norm=False,
        output="sequence",
    )
    # The plain flattened stack every 0.1.0 preset records is the backbone, without a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backbone = SymbolEncoder.from_config(plain_0_1_0)
        grid = SymbolEncoder.from_config(dict(plain_0_1_0, output="grid"))
    assert backbone.output_mode == "sequence" and backbone._legacy_neck is None
    assert grid.output_mode == "grid" and grid._legacy_neck is None
    # Any other neck is rebuilt as 0.1.0 built it, so its saved weights have their layers.
    with_neck = SymbolEncoder.from_config(dict(plain_0_1_0, projection_dim=12, output_norm=True))
    assert with_neck.projection.units == 12 and with_neck.output_norm_layer is not None
    assert with_neck.output_mode == "sequence" and len(with_neck.weights) == 4 + 2 + 2


def test_a_0_2_0_config_loads_as_saved():
    # 0.2.0 recorded no `output`: its encoder gave the grid, or with a deprecated neck
    # argument (only those given were recorded) 0.1.0's sequence.
    config_0_2_0 = {
        k: v for k, v in SymbolEncoder(filters=(8, 16)).get_config().items() if k != "output"
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backbone = SymbolEncoder.from_config(config_0_2_0)
        projected = SymbolEncoder.from_config(dict(config_0_2_0, projection_dim=12))
        plain_sequence = SymbolEncoder.from_config(dict(config_0_2_0, positional_encoding=False))
    assert backbone.output_mode == "grid" and backbone._legacy_neck is None
    assert projected.output_mode == "sequence" and projected.projection.units == 12
    assert plain_sequence.output_mode == "sequence" and plain_sequence._legacy_neck is None
    images = np.zeros((1, 40, 56, 1), "float32")
    assert tuple(backbone(images).shape) == (1, 17, 25, 16)
    assert tuple(projected(images).shape) == (1, 17 * 25, 12)
    # Saved again, each records what it gives.
    assert check_config_round_trip(backbone).get_config()["output"] == "grid"
    assert check_config_round_trip(projected).get_config()["output"] == "sequence"


def test_output_norm_puts_any_feature_scale_on_unit_scale_before_the_positional_encoding():
    images = np.random.default_rng(0).random((2, 40, 72, 1)).astype("float32")
    encoder = SymbolEncoder(output="grid")
    # Scale the last conv by 300 (ReLU is positively homogeneous): the plain output grows,
    # the normalized one does not change.
    kernel, bias = encoder.convs[-1].get_weights()
    encoder.convs[-1].set_weights([300 * kernel, 300 * bias])
    grid = encoder(images)
    plain = FeatureGridNeck(16, output="grid")
    normed = FeatureGridNeck(16, output_norm=True, output="grid")
    plain(grid), normed(grid)
    normed.projection.set_weights(plain.projection.get_weights())
    features = keras.ops.convert_to_numpy(normed(grid))
    np.testing.assert_allclose(features.mean(axis=-1), 0.0, atol=1e-4)
    np.testing.assert_allclose(features.std(axis=-1), 1.0, atol=2e-2)
    assert np.abs(keras.ops.convert_to_numpy(plain(grid))).std() > 10 * features.std()
    # ... and comes before the positional signal, which keeps its unit amplitude.
    positional = FeatureGridNeck(16, output_norm=True, positional_encoding=True, output="grid")
    positional(grid)
    positional.set_weights(normed.get_weights())
    difference = keras.ops.convert_to_numpy(positional(grid)) - features
    assert 0.5 < np.abs(difference).max() <= 1.0 + 1e-5
    assert len(normed.weights) == len(plain.weights) + 2


def test_drops_into_a_subclassed_model():
    class Captioner(keras.Model):
        def __init__(self):
            super().__init__()
            self.encoder = SymbolEncoder()
            self.neck = FeatureGridNeck(positional_encoding=True)
            self.attention = keras.layers.MultiHeadAttention(2, 8)

        def call(self, inputs):
            images, queries = inputs
            plain = self.attention(queries, self.encoder(images))
            located = self.attention(queries, self.neck(self.encoder.feature_grid(images)))
            return plain + located

    model = Captioner()
    out = model((np.zeros((2, 64, 128, 1), "float32"), np.zeros((2, 5, 16), "float32")))
    assert tuple(out.shape) == (2, 5, 16)


def test_a_neck_given_the_sequence_says_how_to_get_the_grid():
    with pytest.raises(ValueError, match=r"output='grid'.*feature_grid"):
        FeatureGridNeck(16)(SymbolEncoder()(np.zeros((1, 32, 32, 1), "float32")))


def test_from_preset_gives_the_sequence_or_the_grid_when_asked():
    images = np.random.default_rng(0).random((1, 48, 48, 1)).astype("float32")
    sequence = SymbolEncoder.from_preset("crohme101")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # `output` is not a deprecated neck argument
        grid = SymbolEncoder.from_preset("crohme101", output="grid")
    assert sequence.output_mode == "sequence" and grid.output_mode == "grid"
    grid_values = keras.ops.convert_to_numpy(grid(images))
    assert grid_values.shape == (1, 8, 8, 64)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(sequence(images)), grid_values.reshape(1, 64, 64), atol=1e-5
    )


@pytest.mark.parametrize(
    "shape, dtype, message",
    [
        (
            (128, 128, 1),
            "float32",
            r"expects images of shape \(batch, height, width, 1\).*\(128, 128, 1\).*batch axis",
        ),
        ((2, 128, 128), "float32", r"Received: images.shape=\(2, 128, 128\).*channel axis"),
        ((2, 128, 128, 3), "float32", r"expects 1 channel.*with 3 channels"),
        ((2, 10, 128, 1), "float32", r"at least 18×18 pixels.*Received: height=10"),
        ((2, 1, 1, 1), "float32", r"at least 18×18 pixels.*Received: height=1"),
        ((1, 64, 100_000, 1), "float32", r"at most 8192.*Received: width=100000"),
        ((0, 128, 128, 1), "float32", r"empty batch"),
        ((2, 128, 128, 1), "uint8", r"expects float images.*Received: dtype=uint8"),
    ],
)
def test_bad_input_says_what_was_expected_and_received(shape, dtype, message):
    encoder = SymbolEncoder()
    if shape[2] == 100_000:
        images = keras.KerasTensor(shape, dtype=dtype)  # symbolic: no 25 MB allocation needed
        with pytest.raises(ValueError, match=message):
            encoder.call(images)
        return
    with pytest.raises(ValueError, match=message):
        encoder(np.zeros(shape, dtype))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"normalization": "layer"},
            r"`normalization` must be one of None, 'batch', 'group'. Received: normalization='layer'",
        ),
        ({"padding": "full"}, r"Received: padding='full'"),
        ({"output": "flat"}, r"Received: output='flat'"),
        ({"filters": ()}, r"Received: filters=\(\)"),
        ({"projection_dim": 0}, r"Received: projection_dim=0"),
        ({"projection_dim": 2.5}, r"Received: projection_dim=2.5"),
        ({"normalization": "group", "groups": 5}, r"`groups` must divide"),
    ],
)
def test_bad_configuration_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SymbolEncoder(**kwargs)


def test_grid_shape_and_minimum_size():
    encoder = SymbolEncoder()
    assert encoder.minimum_image_side() == 18
    assert encoder.grid_shape(18) == (1, 1)
    with pytest.raises(ValueError, match=r"at least 18×18.*Received: image_size=\(17, 40\)"):
        encoder.grid_shape((17, 40))
