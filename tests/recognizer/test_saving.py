"""A saved recognizer (`save_recognizer` / `load_recognizer`): every accepted form gives the model.

A tiny randomly initialised recognizer (no CROHME data) is saved as a preset and in the older
folder layout, then loaded as a preset directory, a folder, a `.keras` file and a registered
preset name (`crohme-formulas` shipped into a temporary package folder): the logits and the
decoded LaTeX are the saved model's. (The stroke recognizer's forms: test_stroke_saving.py.)
"""

from __future__ import annotations

import json
import warnings

import cv2
import keras
import numpy as np
import pytest

from im2latex_encoder import SymbolClassifier, SymbolEncoder, presets
from im2latex_encoder.cli import main
from im2latex_encoder.formulas.tokenizer import Vocabulary
from im2latex_encoder.recognizer import (
    DrawSettings,
    FormulaRecognizer,
    load_formula_recognizer,
    load_recognizer,
    recognize_images,
    save_recognizer,
)
from im2latex_encoder.recognizer import formula_recognizer as recognizer_module
from im2latex_encoder.recognizer.saving import MODEL_FILE, SETTINGS_FILE, VOCABULARY_FILE
from model_checks import tiny_recognizer
from pretrain.ship import ship

VOCABULARY = Vocabulary(["x", "y", "+", "2", "="])
SETTINGS = DrawSettings(16.0, line_width=2.5, max_shape=(64, 256))


@pytest.fixture(scope="module")
def recognizer():
    keras.utils.set_random_seed(7)
    model = tiny_recognizer(len(VOCABULARY), seed=3, scale=0.3)
    return model


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    images = (rng.random((2, 24, 40, 1)) < 0.2).astype("float32")
    return images, np.array([[1, 5, 6, 7], [1, 8, 4, 2]], "int32")


@pytest.fixture(scope="module")
def ink_images():
    rng = np.random.default_rng(1)
    return [
        np.where(rng.random(shape) < 0.15, 255, 0).astype(np.uint8)
        for shape in ((30, 50), (24, 90))
    ]


@pytest.fixture
def preset_dir(recognizer, tmp_path):
    return save_recognizer(
        tmp_path / "recognizer",
        recognizer,
        VOCABULARY,
        SETTINGS,
        extra_files={"model_card.md": "# Model card: tiny\n"},
        metadata={"metrics": {"exprate": 0.0}},
    )


@pytest.fixture
def old_folder(recognizer, tmp_path):
    """The layout `save_recognizer` wrote before recognizer presets."""
    folder = tmp_path / "old"
    folder.mkdir()
    recognizer.save(folder / MODEL_FILE)
    (folder / VOCABULARY_FILE).write_text(json.dumps(VOCABULARY.to_json()), encoding="utf-8")
    (folder / SETTINGS_FILE).write_text(json.dumps(SETTINGS.to_dict()), encoding="utf-8")
    return folder


@pytest.fixture
def shipped_root(tmp_path, monkeypatch):
    """A temporary `shipped_presets/` folder and registry without the formula models, restored
    after the test."""
    root = tmp_path / "shipped_presets"
    root.mkdir()
    shipped = ("crohme-formulas", "crohme-formulas-image")
    monkeypatch.setattr(presets, "SHIPPED_DIR", root)
    monkeypatch.setattr(
        presets, "_REGISTRY", {k: v for k, v in presets._REGISTRY.items() if k not in shipped}
    )
    monkeypatch.setattr(
        presets,
        "_REGISTERED_FOR",
        {
            name: set(owners)
            for name, owners in presets._REGISTERED_FOR.items()
            if name not in shipped
        },
    )
    return root


def _check_same(model, vocabulary, settings, recognizer, inputs, ink_images):
    assert isinstance(model, FormulaRecognizer)
    np.testing.assert_allclose(
        np.asarray(model(inputs)), np.asarray(recognizer(inputs)), rtol=1e-6, atol=1e-6
    )
    assert vocabulary == VOCABULARY and settings == SETTINGS
    assert recognize_images(model, vocabulary, ink_images) == recognize_images(
        recognizer, VOCABULARY, ink_images
    )


def test_save_recognizer_writes_a_checksummed_recognizer_preset(
    preset_dir, recognizer, inputs, ink_images
):
    metadata = presets.preset_metadata(str(preset_dir))
    assert metadata["kind"] == "recognizer"
    assert {VOCABULARY_FILE, SETTINGS_FILE, "model_card.md", "task.weights.h5"} <= set(
        metadata["files"]
    )
    assert metadata["draw_settings"] == SETTINGS.to_dict()
    assert metadata["metrics"] == {"exprate": 0.0}
    assert not (preset_dir / MODEL_FILE).exists()
    _check_same(*load_recognizer(preset_dir), recognizer, inputs, ink_images)
    _check_same(*load_recognizer(str(preset_dir)), recognizer, inputs, ink_images)
    # The task's own loader gives the trained model unchanged, with nothing to warn about.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = FormulaRecognizer.from_preset(str(preset_dir))
    np.testing.assert_array_equal(np.asarray(model(inputs)), np.asarray(recognizer(inputs)))


def test_the_older_folder_and_its_keras_file_still_load(old_folder, recognizer, inputs, ink_images):
    _check_same(*load_recognizer(old_folder), recognizer, inputs, ink_images)
    _check_same(*load_recognizer(old_folder / MODEL_FILE), recognizer, inputs, ink_images)
    renamed = old_folder / "best.keras"
    (old_folder / MODEL_FILE).rename(renamed)
    _check_same(*load_recognizer(renamed), recognizer, inputs, ink_images)


def test_a_shipped_recognizer_is_registered_only_once_its_folder_exists(
    preset_dir, shipped_root, recognizer, inputs, ink_images, tmp_path, capsys
):
    assert recognizer_module._register_shipped_presets() == ()
    # Until it is shipped, the default formula model's name reads as the image model's.
    with pytest.raises(
        FileNotFoundError, match=r"No recognizer at 'crohme-formulas-image'.*none shipped"
    ):
        load_recognizer("crohme-formulas")

    ship(preset_dir, "crohme-formulas", 1, target_root=shipped_root)
    assert recognizer_module._register_shipped_presets() == ("crohme-formulas",)
    _check_same(*load_recognizer("crohme-formulas"), recognizer, inputs, ink_images)
    model = FormulaRecognizer.from_preset("crohme-formulas")
    np.testing.assert_array_equal(np.asarray(model(inputs)), np.asarray(recognizer(inputs)))
    assert presets.preset_metadata("crohme-formulas")["preset_version"] == 1

    # Listed as a recognizer only; the classifiers' and the encoder's listings do not change.
    assert presets.list_presets(FormulaRecognizer, include_backbone=False) == ("crohme-formulas",)
    assert "crohme-formulas" in presets.list_presets(FormulaRecognizer)
    for cls in (SymbolEncoder, SymbolClassifier):
        assert presets.list_presets(cls) == ("crohme101", "crohme101-synthetic")

    # The command resolves the name as it does the directory.
    files = []
    for index, image in enumerate(ink_images):
        path = tmp_path / f"ink{index}.png"
        cv2.imwrite(str(path), image)
        files.append(str(path))
    assert main(["recognize", "--model", str(preset_dir), *files]) == 0
    by_directory = capsys.readouterr().out
    assert main(["recognize", "--model", "crohme-formulas", *files]) == 0
    assert capsys.readouterr().out == by_directory
    expected = [
        f"{name}\t{' '.join(row)}"
        for name, row in zip(files, recognize_images(recognizer, VOCABULARY, ink_images))
    ]
    assert by_directory.splitlines() == expected


def test_what_is_not_a_saved_recognizer_is_refused_clearly(
    tmp_path, recognizer, preset_dir, old_folder
):
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        FileNotFoundError,
        match=r"is not a recognizer folder\. Expected .*Received: a folder holding nothing",
    ):
        load_recognizer(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=r"No recognizer at .*Received: '.*missing'"):
        load_recognizer(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=r"No recognizer at"):
        load_recognizer(tmp_path / "missing.keras")
    # A classifier preset, by name or directory, is not a recognizer.
    with pytest.raises(
        presets.PresetError, match=r"expected a recognizer preset.*Received: kind 'classifier'"
    ):
        load_recognizer("crohme101")
    # A recognizer preset without its vocabulary cannot read formulas.
    recognizer.save_to_preset(str(tmp_path / "bare"))
    with pytest.raises(presets.PresetError, match=r"carries its vocabulary.*vocabulary.json"):
        load_recognizer(tmp_path / "bare")
    # Files are checked before they are read.
    (preset_dir / VOCABULARY_FILE).write_text(json.dumps(Vocabulary(list("abcde")).to_json()))
    with pytest.raises(presets.PresetError, match="vocabulary.json has sha256"):
        load_recognizer(preset_dir)
    # The older folder needs its JSON files beside the model.
    (old_folder / SETTINGS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r"missing \['recognizer.json'\]"):
        load_recognizer(old_folder / MODEL_FILE)
    with pytest.raises(ValueError, match="saves a FormulaRecognizer. Received: SymbolEncoder"):
        save_recognizer(tmp_path / "x", SymbolEncoder(), VOCABULARY, SETTINGS)
    with pytest.raises(ValueError, match="reads 9 token ids and the vocabulary has 5"):
        save_recognizer(tmp_path / "x", recognizer, Vocabulary(["x"]), SETTINGS)
    assert not (tmp_path / "x").exists()


def test_cli_errors_for_a_model_that_is_not_a_recognizer(tmp_path, capsys):
    image = tmp_path / "ink.png"
    cv2.imwrite(str(image), np.zeros((20, 20), np.uint8))
    assert main(["recognize", "--model", "crohme101", str(image)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "expected a recognizer preset" in err and "Traceback" not in err


@pytest.mark.slow
def test_the_tuple_api_is_deprecated_for_the_model_s_own_vocabulary_and_settings(
    recognizer, tmp_path, inputs, ink_images
):
    with pytest.warns(DeprecationWarning, match=r"save_recognizer.*model.save_to_preset"):
        save_recognizer(tmp_path / "old_api", recognizer, VOCABULARY, SETTINGS)
    assert recognizer.vocabulary is None  # the caller's model is left as it was
    with pytest.warns(DeprecationWarning, match=r"load_recognizer.*load_formula_recognizer"):
        model, vocabulary, settings = load_recognizer(tmp_path / "old_api")
    assert vocabulary is model.vocabulary and settings is model.draw_settings
    _check_same(model, vocabulary, settings, recognizer, inputs, ink_images)
    # What replaces them: the model carries both, in its preset and wherever it is loaded from.
    with warnings.catch_warnings():
        # The library's own deprecations (not NumPy's, which TensorFlow triggers).
        warnings.filterwarnings("error", "load_recognizer|save_recognizer", DeprecationWarning)
        recognizer.attach_reading(VOCABULARY, SETTINGS).save_to_preset(str(tmp_path / "new_api"))
        loaded = load_formula_recognizer(tmp_path / "new_api")
    recognizer.vocabulary = recognizer.draw_settings = None
    _check_same(loaded, loaded.vocabulary, loaded.draw_settings, recognizer, inputs, ink_images)
    assert (tmp_path / "new_api" / VOCABULARY_FILE).is_file()
    assert (tmp_path / "new_api" / SETTINGS_FILE).is_file()
