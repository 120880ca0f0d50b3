"""`Task`: one `from_preset` / `save_to_preset` for every task, hooks with defaults, assets.

A new task written in a few lines (only its configuration and `preset_assets`) saves and loads
as a preset like `SymbolClassifier` and `FormulaRecognizer` do; the assets of the library's
tasks (a classifier's labels and context, a recognizer's vocabulary and drawing settings) are
the model's, in its configuration and, in a preset, in their own checksummed files.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

from im2latex_encoder import SymbolClassifier, SymbolEncoder, presets
from im2latex_encoder.formulas.tokenizer import Vocabulary
from im2latex_encoder.presets import PresetError
from im2latex_encoder.recognizer import DrawSettings, FormulaRecognizer
from im2latex_encoder.task import Task
from model_checks import tiny_recognizer


@keras.saving.register_keras_serializable(package="im2latex_encoder_tests")
class _Counter(Task):
    """A task written with the defaults only: its config and one asset."""

    preset_kind = "counter"
    preset_assets = {"words": "words.json"}

    def __init__(self, encoder, words=("yes", "no"), **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.dense = keras.layers.Dense(len(words))
        self.dense.build((None, encoder.output_channels))
        self.words = tuple(words)

    def call(self, images):
        features = self.encoder(images)
        return self.dense(keras.ops.mean(features, axis=tuple(range(1, len(features.shape) - 1))))

    def get_config(self):
        return {
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "words": list(self.words),
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(keras.saving.deserialize_keras_object(config.pop("encoder")), **config)


@pytest.fixture
def images():
    return np.random.default_rng(0).random((2, 20, 20, 1)).astype("float32")


@pytest.fixture
def counter(images):
    keras.utils.set_random_seed(1)
    model = _Counter(SymbolEncoder(filters=(4, 8)), words=["a", "b", "c"])
    model(images)
    return model


def test_a_new_task_needs_only_its_config_and_its_assets(counter, images, tmp_path):
    counter.save_to_preset(str(tmp_path / "counter"), metadata={"note": "tiny"})
    metadata = presets.preset_metadata(str(tmp_path / "counter"))
    assert metadata["kind"] == "counter" and metadata["note"] == "tiny"
    assert "words.json" in metadata["files"]
    # The asset is its own file, not a copy inside task.json.
    assert json.loads((tmp_path / "counter" / "words.json").read_text()) == ["a", "b", "c"]
    assert "words" not in json.loads((tmp_path / "counter" / "task.json").read_text())["config"]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # its own preset, as saved: no warning
        loaded = _Counter.from_preset(str(tmp_path / "counter"))
    assert loaded.words == ("a", "b", "c")
    np.testing.assert_allclose(np.asarray(loaded(images)), np.asarray(counter(images)), atol=1e-6)


def test_the_default_hooks_change_a_task_and_keep_its_backbone(counter, images, tmp_path):
    counter.save_to_preset(str(tmp_path / "counter"))
    with pytest.warns(UserWarning, match=r"words=\['a', 'b', 'c'\] in the preset, \['x', 'y'\]"):
        changed = _Counter.from_preset(str(tmp_path / "counter"), words=["x", "y"])
    assert changed.words == ("x", "y") and changed.dense.units == 2
    np.testing.assert_allclose(
        np.asarray(changed.encoder(images)), np.asarray(counter.encoder(images)), atol=1e-6
    )
    with pytest.raises(PresetError, match=r"_Counter.from_preset takes .*Received: \['colour'\]"):
        _Counter.from_preset(str(tmp_path / "counter"), colour="red")

    # Another task's preset: its backbone, and the task's own layers from its arguments.
    with pytest.warns(UserWarning, match=r"classifier preset\) into a new _Counter.*untrained"):
        fresh = _Counter.from_preset("crohme101-synthetic", words=["p", "q"])
    assert fresh.words == ("p", "q") and fresh.encoder.filters == (32, 64, 64)


def test_an_asset_file_outside_the_checksums_is_refused(counter, tmp_path):
    directory = tmp_path / "counter"
    counter.save_to_preset(str(directory))
    metadata = json.loads((directory / "metadata.json").read_text())
    del metadata["files"]["words.json"]
    (directory / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(PresetError, match="words.json is not checksummed"):
        _Counter.from_preset(str(directory))


def test_the_base_itself_and_other_classes_are_not_loaded_as_tasks():
    with pytest.raises(ValueError, match=r"Task has no `preset_kind`.*Received: Task.from_preset"):
        Task.from_preset("crohme101")
    with pytest.raises(
        ValueError, match="load_task loads a Task subclass. Received: .*SymbolEncoder"
    ):
        presets.load_task(SymbolEncoder, "crohme101")


def test_a_classifier_s_labels_and_context_are_its_own(tmp_path):
    classifier = SymbolClassifier.from_preset("crohme101")
    assert classifier.context is not None
    # In its configuration, so a .keras file carries them too, and reloads safely.
    classifier.save(tmp_path / "classifier.keras")
    reloaded = keras.saving.load_model(tmp_path / "classifier.keras", safe_mode=True)
    assert reloaded.labels == classifier.labels
    assert reloaded.context.get_config() == classifier.context.get_config()
    # In a preset: labels.json and context.json, as the shipped preset holds them.
    classifier.save_to_preset(str(tmp_path / "preset"))
    for name in ("labels.json", "context.json"):
        assert json.loads((tmp_path / "preset" / name).read_text()) == json.loads(
            (presets.resolve_preset("crohme101") / name).read_text()
        )


def test_a_recognizer_s_vocabulary_and_drawing_settings_are_its_own(tmp_path):
    vocabulary, settings = Vocabulary(["x", "y", "+", "2", "="]), DrawSettings(12.0)
    model = tiny_recognizer(len(vocabulary), seed=2)
    model.attach_reading(vocabulary, settings)
    model.save_to_preset(str(tmp_path / "recognizer"))
    task = json.loads((tmp_path / "recognizer" / "task.json").read_text())["config"]
    assert "vocabulary" not in task and "draw_settings" not in task
    assert presets.preset_metadata(str(tmp_path / "recognizer"))["draw_settings"] == {
        "line_width": 2.0,
        "max_shape": [256, 1024],
        "symbol_size": 12.0,
    }
    loaded = FormulaRecognizer.from_preset(str(tmp_path / "recognizer"))
    assert loaded.vocabulary == vocabulary and loaded.draw_settings == settings

    model.save(tmp_path / "recognizer.keras")
    reloaded = keras.saving.load_model(tmp_path / "recognizer.keras", safe_mode=True)
    assert reloaded.vocabulary == vocabulary and reloaded.draw_settings == settings

    # A new decoder keeps the drawing settings; the vocabulary only if the ids still fit it.
    with pytest.warns(UserWarning, match="skipped its head's weights"):
        bigger = FormulaRecognizer.from_preset(str(tmp_path / "recognizer"), vocabulary_size=12)
    assert bigger.vocabulary is None and bigger.draw_settings == settings
    with pytest.raises(ValueError, match="reads 7 token ids and the vocabulary has 9"):
        FormulaRecognizer(SymbolEncoder(filters=(8, 8)), 7, hidden_dim=16, vocabulary=vocabulary)


def test_every_shipped_recognizer_carries_its_vocabulary_and_drawing_settings():
    shipped = [
        name
        for name in presets.list_presets()
        if presets.preset_metadata(name)["kind"] == FormulaRecognizer.preset_kind
    ]
    assert shipped, "the package ships an image formula recognizer"
    for name in shipped:
        model = FormulaRecognizer.from_preset(name)
        directory = presets.resolve_preset(name)
        assert model.vocabulary == Vocabulary.from_json(
            json.loads((directory / "vocabulary.json").read_text())
        )
        assert model.draw_settings == DrawSettings(
            **json.loads((directory / "recognizer.json").read_text())
        )


@pytest.mark.slow
def test_a_fresh_process_loads_a_shipped_recognizer_from_its_module_alone():
    """Its saved compile configuration names the recognizer's metric, registered on import."""
    name = next(
        name
        for name in presets.list_presets()
        if presets.preset_metadata(name)["kind"] == FormulaRecognizer.preset_kind
    )
    code = (
        "from im2latex_encoder.recognizer.formula_recognizer import FormulaRecognizer\n"
        f"print(len(FormulaRecognizer.from_preset({name!r}).vocabulary))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 4
