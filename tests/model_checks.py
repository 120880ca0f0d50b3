"""Shared checks for layers and models (keras-hub's run_layer_test / run_model_saving_test).

One helper per contract, so every layer is held to the same contract instead of copy-pasted
tests.
"""

from __future__ import annotations

import json

import keras
import numpy as np


def check_output_shape(layer, input_shape, expected_shape):
    """Call `layer` on zeros of `input_shape` and compare the concrete and symbolic shapes."""
    data = np.zeros(input_shape, "float32")
    output = layer(data)
    assert tuple(output.shape) == tuple(expected_shape)
    symbolic = layer.compute_output_shape(input_shape)
    assert tuple(symbolic) == tuple(expected_shape)
    return output


def check_config_round_trip(obj):
    """`from_config(get_config())` must rebuild an object with identical JSON config."""
    config = obj.get_config()
    rebuilt = obj.__class__.from_config(config)
    assert json.dumps(rebuilt.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    serialized = keras.saving.serialize_keras_object(obj)
    revived = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert type(revived) is type(obj)
    return rebuilt


def check_keras_file_round_trip(model, inputs, tmp_path, atol=1e-6):
    """Save as `.keras`, load with safe_mode on, and compare outputs."""
    path = tmp_path / "model.keras"
    expected = keras.ops.convert_to_numpy(model(inputs))
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    actual = keras.ops.convert_to_numpy(loaded(inputs))
    np.testing.assert_allclose(actual, expected, atol=atol)
    return loaded


def tiny_recognizer(vocabulary_size: int = 9, *, seed: int | None = None, scale: float = 1.0):
    """The smallest `FormulaRecognizer` the tests build (two 8-filter convs, one 16-wide layer).

    With `seed`, its weights are drawn from a normal distribution times `scale`, so its
    predictions depend on every weight (a freshly built one decodes mostly end tokens).
    """
    from im2latex_encoder import SymbolEncoder
    from im2latex_encoder.recognizer import FormulaRecognizer

    model = FormulaRecognizer(
        SymbolEncoder(filters=(8, 8)),
        vocabulary_size,
        num_layers=1,
        num_heads=2,
        intermediate_dim=16,
        max_length=6,
        dropout=0.0,
        hidden_dim=16,
    )
    if seed is not None:
        rng = np.random.default_rng(seed)
        model.set_weights(
            [rng.normal(size=w.shape).astype("float32") * scale for w in model.get_weights()]
        )
    return model


def tiny_stroke_recognizer(vocabulary=("x", "y", "+", "1", "2"), *, seed: int | None = None):
    """The smallest `StrokeRecognizer` the tests build: a three-conv 4-filter classifier with an
    8-unit hidden layer under a one-block, 16-wide token encoder and decoder.

    With `seed`, every weight is drawn from a normal distribution (times 0.5), so the readings
    depend on the strokes' features (a freshly built one decodes mostly end tokens).
    """
    from im2latex_encoder import SymbolEncoder
    from im2latex_encoder.recognizer.stroke_recognizer import StrokeRecognizer

    model = StrokeRecognizer(
        SymbolEncoder(filters=(4, 4, 4)),
        vocabulary=list(vocabulary),
        symbol_hidden_units=8,
        hidden_dim=16,
        encoder_layers=1,
        decoder_layers=1,
        num_heads=2,
        intermediate_dim=32,
        max_length=8,
        dropout=0.0,
    )
    model.build()
    if seed is not None:
        rng = np.random.default_rng(seed)
        model.set_weights(
            [rng.normal(size=w.shape).astype("float32") * 0.5 for w in model.get_weights()]
        )
    return model
