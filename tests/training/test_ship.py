"""Tests for pretrain/ship.py: a run's preset copied into the package with a version."""

import json

import pytest

from im2latex_encoder import SymbolClassifier, SymbolEncoder, presets
from model_checks import tiny_recognizer
from pretrain.ship import ship


@pytest.fixture
def run_preset(tmp_path):
    path = tmp_path / "run" / "preset"
    SymbolClassifier(SymbolEncoder(filters=(4, 8, 8)), image_size=(24, 24)).save_to_preset(
        str(path),
        metadata={"metrics": {"x": 1}},
        extra_files={"model_card.md": "# Model card: `preset`\n\nbody\n"},
    )
    return path


def test_ship_records_name_and_version_and_stays_verifiable(run_preset, tmp_path):
    target = ship(run_preset, "mine", 7, target_root=tmp_path / "shipped")
    metadata = presets.preset_metadata(str(target))  # checksums verified
    assert metadata["name"] == "mine" and metadata["preset_version"] == 7
    assert metadata["metrics"] == {"x": 1}
    assert (target / "model_card.md").read_text().splitlines()[
        0
    ] == "# Model card: `mine` (version 7)"
    assert SymbolClassifier.from_preset(str(target)).image_size == (24, 24)
    assert (
        json.loads((run_preset / "metadata.json").read_text()).get("name") is None
    )  # source untouched


def test_ship_refuses_a_tampered_preset_and_a_bad_version(run_preset, tmp_path):
    with pytest.raises(ValueError, match="version"):
        ship(run_preset, "mine", 0, target_root=tmp_path / "shipped")
    (run_preset / "labels.json").write_text("[]")
    with pytest.raises(presets.PresetError, match="labels.json"):
        ship(run_preset, "mine", 1, target_root=tmp_path / "shipped")
    assert not (tmp_path / "shipped" / "mine").exists()


# --- A recognizer ------------------------------------------------------------------------------


@pytest.fixture
def recognizer_run(tmp_path):
    """A tiny recognizer saved both ways: ``(model, preset directory, older folder)``."""
    from im2latex_encoder.formulas.tokenizer import Vocabulary
    from im2latex_encoder.recognizer import DrawSettings, save_recognizer

    model, vocabulary, settings = (
        tiny_recognizer(7, seed=2),
        Vocabulary(["x", "y", "+"]),
        DrawSettings(9.0),
    )
    card = "# Model card: handwritten formula recognizer (run)\n\nbody\n"
    preset = save_recognizer(
        tmp_path / "run" / "recognizer",
        model,
        vocabulary,
        settings,
        extra_files={"model_card.md": card},
    )
    old = tmp_path / "old_run" / "recognizer"
    old.mkdir(parents=True)
    model.save(old / "model.keras")
    (old / "vocabulary.json").write_text(json.dumps(vocabulary.to_json()))
    (old / "recognizer.json").write_text(json.dumps(settings.to_dict()))
    (old / "model_card.md").write_text(card)
    (old / "metrics.json").write_text(json.dumps({"test2016": {"greedy": {"exprate": 0.5}}}))
    return model, preset, old


def _logits(model):
    import numpy as np

    images = np.random.default_rng(0).random((2, 20, 36, 1)).astype("float32")
    return np.asarray(model((images, np.array([[1, 4, 5], [1, 6, 2]], "int32"))))


@pytest.mark.parametrize("layout", ["preset", "older folder", "keras file"])
def test_ship_a_recognizer_preset_or_an_older_folder(recognizer_run, tmp_path, layout):
    import numpy as np

    from im2latex_encoder.recognizer import FormulaRecognizer, load_recognizer

    model, preset, old = recognizer_run
    source = {"preset": preset, "older folder": old, "keras file": old / "model.keras"}[layout]
    target = ship(source, "crohme-formulas", 2, target_root=tmp_path / "shipped")
    metadata = presets.preset_metadata(str(target))
    assert metadata["kind"] == "recognizer"
    assert metadata["name"] == "crohme-formulas" and metadata["preset_version"] == 2
    assert metadata["draw_settings"]["symbol_size"] == 9.0
    assert (target / "model_card.md").read_text().splitlines()[0] == (
        "# Model card: `crohme-formulas` (version 2)"
    )
    if layout != "preset":
        assert metadata["metrics"] == {"test2016": {"greedy": {"exprate": 0.5}}}
        assert "metrics.json" in metadata["files"] and not (target / "model.keras").exists()
    np.testing.assert_array_equal(
        _logits(FormulaRecognizer.from_preset(str(target))), _logits(model)
    )
    loaded, vocabulary, settings = load_recognizer(target)
    np.testing.assert_array_equal(_logits(loaded), _logits(model))
    assert len(vocabulary) == 7 and settings.symbol_size == 9.0
    assert sorted(p.name for p in (tmp_path / "shipped").iterdir()) == ["crohme-formulas"]


def test_ship_refuses_a_preset_over_the_size_limit_and_writes_nothing(
    recognizer_run, tmp_path, monkeypatch, capsys
):
    import pretrain.ship as ship_module

    _, preset, old = recognizer_run
    monkeypatch.setattr(ship_module, "MAX_SHIPPED_BYTES", 10_000)
    for source in (preset, old):
        with pytest.raises(ValueError, match=r"MB; a shipped preset must stay under 0.01 MB"):
            ship(source, "crohme-formulas", 1, target_root=tmp_path / "shipped")
    assert not (tmp_path / "shipped").exists() or not any((tmp_path / "shipped").iterdir())
    monkeypatch.setattr(presets, "SHIPPED_DIR", tmp_path / "package_presets")
    with pytest.raises(SystemExit) as exit_info:
        ship_module.main([str(preset), "crohme-formulas", "--version", "1"])
    assert exit_info.value.code == 2
    assert "must stay under" in capsys.readouterr().err
    assert not (tmp_path / "package_presets").exists()


def test_ship_says_what_it_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        FileNotFoundError, match=r"Nothing to ship.*Received: a folder holding nothing"
    ):
        ship(tmp_path / "empty", "crohme-formulas", 1, target_root=tmp_path / "shipped")
    assert not (tmp_path / "shipped").exists()


def test_ship_refuses_a_preset_carrying_examples_of_its_data(tmp_path):
    # Evaluation examples hold the dataset's own targets (CROHME's captions may not be
    # redistributed): shipping them would put training data into every install.
    path = tmp_path / "run" / "preset"
    metrics = {"test": {"greedy": {"exprate": 0.1, "examples": [{"target": "x ^ { 2 }"}]}}}
    SymbolClassifier(SymbolEncoder(filters=(4, 8, 8)), image_size=(24, 24)).save_to_preset(
        str(path),
        metadata={"metrics": metrics},
        extra_files={"metrics.json": json.dumps(metrics)},
    )
    with pytest.raises(
        ValueError, match=r"carries examples of its data \(metadata.json, metrics.json"
    ):
        ship(path, "mine", 1, target_root=tmp_path / "shipped")
    assert not (tmp_path / "shipped" / "mine").exists()


def test_ship_records_which_licence_covers_the_code_and_the_weights(run_preset, tmp_path):
    from pretrain.ship import CODE_LICENCE, WEIGHTS_LICENCES

    crohme = presets.preset_metadata(str(ship(run_preset, "a", 1, target_root=tmp_path / "s")))
    assert crohme["licence"] == {"code": CODE_LICENCE, "weights": WEIGHTS_LICENCES["crohme"]}
    assert "non-commercial" in crohme["licence"]["weights"]  # the default: CROHME's terms
    free = ship(run_preset, "b", 1, target_root=tmp_path / "s", weights_licence="apache-2.0")
    assert presets.preset_metadata(str(free))["licence"]["weights"].startswith("Apache-2.0")
    with pytest.raises(ValueError, match=r"weights_licence.*Received: weights_licence='mit'"):
        ship(run_preset, "c", 1, target_root=tmp_path / "s", weights_licence="mit")
    assert not (tmp_path / "s" / "c").exists()
