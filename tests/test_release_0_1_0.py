"""Models saved by 0.1.0 load and give 0.1.0's numbers (fixture: `tests/fixtures/release_0_1_0`).

The fixture was written by `tests/fixtures/make_release_0_1_0.py` running 0.1.0's code; its
`expected.json` holds the inputs and what each model gave for them then.
"""

import json
import shutil
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from im2latex_encoder import FeatureGridNeck, SymbolClassifier, SymbolEncoder, presets
from im2latex_encoder.recognizer import FormulaRecognizer
from im2latex_encoder.recognizer.saving import load_recognizer

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "release_0_1_0"


@pytest.fixture(scope="module")
def expected():
    values = json.loads((FIXTURE / "expected.json").read_text(encoding="utf-8"))
    arrays = {name: np.asarray(value, "float32") for name, value in values.items()}
    arrays["ids"] = arrays["ids"].astype("int32")
    return arrays


def _numpy(value):
    return keras.ops.convert_to_numpy(value)


def test_the_fixture_is_0_1_0_s_format(expected):
    for name in ("classifier", "encoder_with_neck"):
        config = json.loads((FIXTURE / name / "config.json").read_text())["config"]
        assert {"projection_dim", "output_norm", "positional_encoding", "output"} <= set(config)
        assert presets.preset_metadata(str(FIXTURE / name))["library_version"] == "0.1.0"
    # Outputs that a wrong load could not match by chance.
    assert np.ptp(expected["classifier_probabilities"]) > 0.05
    assert np.ptp(expected["recognizer_logits"]) > 0.5


def test_a_0_1_0_classifier_preset_predicts_as_it_did(expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a shipped-style preset loads without any warning
        classifier = SymbolClassifier.from_preset(str(FIXTURE / "classifier"))
    images = expected["images"][:, :12, :12]
    np.testing.assert_allclose(
        _numpy(classifier(images)), expected["classifier_probabilities"], atol=1e-5
    )
    assert classifier.labels == ("a", "b", "c") and classifier.image_size == (12, 12)
    # Its encoder gives 0.1.0's flattened grid, the classifier's own encoder too.
    encoder = SymbolEncoder.from_preset(str(FIXTURE / "classifier"))
    for features in (encoder(images), classifier.encoder(images)):
        np.testing.assert_allclose(_numpy(features), expected["classifier_features"], atol=1e-5)
    # The grid, asked for, is the same numbers before the flattening.
    grid = _numpy(encoder.feature_grid(images))
    assert grid.ndim == 4
    np.testing.assert_allclose(
        _numpy(FeatureGridNeck()(grid)), expected["classifier_features"], atol=1e-5
    )


def test_a_0_1_0_encoder_preset_saved_with_a_neck_gives_the_same_sequence(expected):
    encoder = SymbolEncoder.from_preset(str(FIXTURE / "encoder_with_neck"))
    assert encoder.projection_dim == 8 and encoder.output_norm and encoder.positional_encoding
    np.testing.assert_allclose(
        _numpy(encoder(expected["images"])), expected["encoder_with_neck"], atol=1e-5
    )
    # A recognizer built on it keeps the pretrained stack and gets a neck of its own.
    with pytest.warns(UserWarning, match="start untrained"):
        model = FormulaRecognizer.from_preset(
            str(FIXTURE / "encoder_with_neck"), vocabulary_size=5, hidden_dim=8, num_layers=1
        )
    assert model.encoder._legacy_neck is None and model.neck.projection_dim == 8
    for ours, theirs in zip(model.encoder.stack_layers, encoder.stack_layers, strict=True):
        for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_0_1_0_recognizer_folder_loads_and_predicts_as_it_did(expected, tmp_path):
    model, vocabulary, settings = load_recognizer(FIXTURE / "recognizer")
    assert isinstance(model, FormulaRecognizer) and model.neck is None
    assert model.hidden_dim == 8 and settings.symbol_size == 9.0 and "+" in vocabulary
    logits = _numpy(model((expected["images"], expected["ids"])))
    np.testing.assert_allclose(logits, expected["recognizer_logits"], atol=1e-5)
    # Saved again (as a .keras file and as a preset), it still gives the same numbers.
    model.save(tmp_path / "again.keras")
    again = keras.saving.load_model(tmp_path / "again.keras", safe_mode=True)
    np.testing.assert_allclose(
        _numpy(again((expected["images"], expected["ids"]))), logits, atol=1e-6
    )
    model.save_to_preset(tmp_path / "preset")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_preset = FormulaRecognizer.from_preset(str(tmp_path / "preset"))
    np.testing.assert_allclose(
        _numpy(from_preset((expected["images"], expected["ids"]))), logits, atol=1e-6
    )


def test_a_tampered_0_1_0_preset_is_still_refused(tmp_path):
    preset = Path(shutil.copytree(FIXTURE / "classifier", tmp_path / "classifier"))
    weights = preset / "task.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(presets.PresetError, match="refused: task.weights.h5"):
        SymbolClassifier.from_preset(str(preset))
