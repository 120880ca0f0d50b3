"""Tests for pretrain/ship.py: a run's preset copied into the package with a version."""

import json

import pytest

from im2latex_encoder import SymbolClassifier, SymbolEncoder, presets
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
