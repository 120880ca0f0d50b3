"""The README's first screen: its code runs as written, its commands and extras exist, and it
says which licence covers the code and which the shipped weights."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
SHIPPED = REPO / "im2latex_encoder" / "shipped_presets"

# A block fenced ```python runs; one fenced ```python no-test is shown only (none today).
_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _first_screen() -> str:
    """Everything before the README's first `## ` section."""
    return README.split("\n## ", 1)[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "index", range(len(_PYTHON_BLOCK.findall(README))), ids=lambda i: f"block{i}"
)
def test_the_readmes_python_blocks_run_as_written(index, tmp_path, monkeypatch, capsys):
    block = _PYTHON_BLOCK.findall(README)[index]
    line = README[: README.index(block)].count("\n") + 1
    monkeypatch.chdir(tmp_path)  # whatever a block writes lands here
    exec(compile(block, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out.strip(), "each block shows what it computes"


def test_the_first_screen_installs_reads_a_symbol_and_a_formula_and_names_make():
    screen = _first_screen()
    blocks = _PYTHON_BLOCK.findall(screen)
    assert len(blocks) == 1, "one python block on the first screen"
    code = [line for line in blocks[0].splitlines() if line and not line.startswith(("#",))]
    reading = [line for line in code if not line.startswith(("import ", "from "))]
    assert len(reading) <= 4, reading  # strokes, then a symbol read and a formula read
    assert "predict_labels" in blocks[0] and "recognize_strokes" in blocks[0]
    # The make targets it names exist.
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    named = re.findall(r"^make (\w+)", screen, re.M)
    assert set(named) == {"test", "run"}, named
    assert all(re.search(rf"^{target}:", makefile, re.M) for target in named)
    # The extras it names exist.
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    installs = re.findall(r"^pip install (\S+)", screen, re.M)
    assert installs and installs[0] == "."
    named_extras = {extra for spec in installs for extra in re.findall(r"\[(\w+)\]", spec)} | set(
        re.findall(r"\[(\w+)\]: ", screen)
    )
    assert {"serve", "torch"} <= named_extras <= set(extras), named_extras


def test_version_history_lives_in_the_changelog_not_the_readme():
    assert not re.search(r"\bversions? [0-9]", README), "preset versions go to CHANGELOG.md"
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    card = (SHIPPED / "crohme101" / "model_card.md").read_text(encoding="utf-8")
    versions = card.split("## Versions", 1)[1].split("\n## ", 1)[0]
    for version in range(4, 9):
        assert f"`crohme101` version {version}" in changelog, version
        assert re.search(rf"^\| {version} \| .+% \|", versions, re.M), version


def test_the_licences_of_the_code_and_the_weights_are_stated():
    licence = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert licence.lstrip().startswith("Apache License") and "Version 2.0" in licence
    assert "END OF TERMS AND CONDITIONS" in licence
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0" and "LICENSE" in project["license-files"]
    assert "example.invalid" not in json.dumps(project)
    screen = _first_screen()
    assert "Apache-2.0" in screen and "non-commercial" in screen
    presets = sorted(path for path in SHIPPED.iterdir() if (path / "metadata.json").is_file())
    assert len(presets) >= 3
    for preset in presets:
        metadata = json.loads((preset / "metadata.json").read_text(encoding="utf-8"))
        assert metadata.get("licence", {}).get("code") == "Apache-2.0", preset.name
        weights = metadata["licence"]["weights"]
        # CROHME-trained weights carry CROHME's terms (the first screen says so); others are
        # the code's licence.
        crohme = "CROHME" in weights and "non-commercial" in weights
        assert crohme or weights.startswith("Apache-2.0"), (preset.name, weights)


def test_the_readme_reads_formulas_with_the_loader_recognize_uses():
    # So the example keeps working when the shipped formula model changes: whatever loads the
    # model for `im2latex-encoder recognize` loads it for the README.
    (loader,) = re.findall(r"^from im2latex_encoder\.recognizer import (\w+)$", README, re.M)
    command = (REPO / "im2latex_encoder" / "cli" / "formulas.py").read_text(encoding="utf-8")
    assert re.search(rf"\b{loader}\(args\.model\)", command), loader
