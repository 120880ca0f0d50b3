"""Models saved by 0.2.0 load and give 0.2.0's numbers (fixture: `tests/fixtures/release_0_2_0`).

0.2.0's encoder gave the grid `(batch, H', W', C)` and recorded no `output`; this version's
gives the flattened grid by default, so a 0.2.0 file must load as the grid it was saved as.
The fixture was written by `tests/fixtures/make_release_0_2_0.py` running 0.2.0's code; its
`expected.json` holds the inputs and what each model gave for them then.
"""

import json
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from im2latex_encoder import FeatureGridNeck, SymbolClassifier, SymbolEncoder, presets
from im2latex_encoder.recognizer import FormulaRecognizer

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "release_0_2_0"


@pytest.fixture(scope="module")
def expected():
    values = json.loads((FIXTURE / "expected.json").read_text(encoding="utf-8"))
    arrays = {name: np.asarray(value, "float32") for name, value in values.items()}
    arrays["ids"] = arrays["ids"].astype("int32")
    return arrays


def _numpy(value):
    return keras.ops.convert_to_numpy(value)


def test_the_fixture_is_0_2_0_s_format(expected):
    for name in ("classifier", "recognizer"):
        config = json.loads((FIXTURE / name / "config.json").read_text())["config"]
        assert "output" not in config and "projection_dim" not in config
        assert presets.preset_metadata(str(FIXTURE / name))["library_version"] == "0.2.0"
    # Outputs that a wrong load could not match by chance.
    assert expected["classifier_grid"].ndim == 4
    assert np.ptp(expected["classifier_probabilities"]) > 0.05
    assert np.ptp(expected["recognizer_logits"]) > 0.5
    assert np.ptp(expected["grid_model"]) > 0.5


def test_a_0_2_0_classifier_preset_predicts_as_it_did(expected):
    images = expected["images"][:, :12, :12]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # loads without any warning
        classifier = SymbolClassifier.from_preset(str(FIXTURE / "classifier"))
        encoder = SymbolEncoder.from_preset(str(FIXTURE / "classifier"))
    np.testing.assert_allclose(
        _numpy(classifier(images)), expected["classifier_probabilities"], atol=1e-5
    )
    assert classifier.labels == ("a", "b", "c") and classifier.image_size == (12, 12)
    # Its encoder, alone or in the classifier, gives the grid 0.2.0 gave.
    for features in (encoder(images), classifier.encoder(images)):
        np.testing.assert_allclose(_numpy(features), expected["classifier_grid"], atol=1e-5)
    # Asked for the flattened grid, the same numbers in 0.1.0's layout.
    flat = SymbolEncoder.from_preset(str(FIXTURE / "classifier"), output="sequence")
    grid = expected["classifier_grid"]
    np.testing.assert_allclose(
        _numpy(flat(images)), grid.reshape(grid.shape[0], -1, grid.shape[-1]), atol=1e-5
    )


def test_a_0_2_0_recognizer_preset_predicts_as_it_did(expected, tmp_path):
    inputs = (expected["images"], expected["ids"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = FormulaRecognizer.from_preset(str(FIXTURE / "recognizer"))
    assert model.encoder.output_mode == "grid" and model.neck.projection_dim == 8
    logits = _numpy(model(inputs))
    np.testing.assert_allclose(logits, expected["recognizer_logits"], atol=1e-5)
    # Saved again (as a .keras file and as a preset), it still gives the same numbers.
    model.save(tmp_path / "again.keras")
    again = keras.saving.load_model(tmp_path / "again.keras", safe_mode=True)
    np.testing.assert_allclose(_numpy(again(inputs)), logits, atol=1e-6)
    model.save_to_preset(str(tmp_path / "preset"))
    np.testing.assert_allclose(
        _numpy(FormulaRecognizer.from_preset(str(tmp_path / "preset"))(inputs)), logits, atol=1e-6
    )


def test_a_0_2_0_keras_file_feeding_the_grid_to_a_neck_loads_as_it_was(expected, tmp_path):
    model = keras.saving.load_model(FIXTURE / "grid_model.keras", safe_mode=True)
    encoder = next(layer for layer in model.layers if isinstance(layer, SymbolEncoder))
    assert encoder.output_mode == "grid"
    assert any(isinstance(layer, FeatureGridNeck) for layer in model.layers)
    outputs = _numpy(model(expected["images"]))
    np.testing.assert_allclose(outputs, expected["grid_model"], atol=1e-5)
    # Saved by this version, it records the grid and loads the same again.
    model.save(tmp_path / "again.keras")
    again = keras.saving.load_model(tmp_path / "again.keras", safe_mode=True)
    np.testing.assert_allclose(_numpy(again(expected["images"])), outputs, atol=1e-6)
