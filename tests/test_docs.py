"""Build the documentation with `mkdocs build --strict` (every warning is an error).

Strict mode catches broken links, missing pages in `nav`, API entries (`::: name`) that no
longer resolve, and docstring problems mkdocstrings reports. The generated files
(`docs/images/encoder_contract.png`, `docs/model-card.md`) are committed, so the build needs
neither a preset nor matplotlib.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    # Only the build needs the dev extra's tools; the checks below run without them.
    pytest.importorskip("mkdocs", reason="mkdocs is in the dev extra (pip install -e '.[dev]')")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings[python] is in the dev extra")
    pytest.importorskip("material", reason="mkdocs-material is in the dev extra")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    # mkdocstrings rendered the docstrings, and the doctests as code rather than block quotes.
    for anchor in (
        "SymbolEncoder.from_preset",
        "SymbolClassifier.replace_head",
        "recognizer.FormulaRecognizer.attention_weights",
        "recognizer.beam_search_decode",
        "formulas.make_formula_dataset",
    ):
        assert f'id="im2latex_encoder.{anchor}"' in api, anchor
    assert "&gt;&gt;&gt;" in api and "<blockquote>" not in api
    assert (site / "images" / "encoder_contract.png").is_file()


def test_every_page_is_in_the_nav_and_exists():
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with mkdocs, in the dev extra")

    config = yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    pages = [next(iter(entry.values())) for entry in config["nav"]]
    assert "index.md" in pages and "encoder.md" in pages and "quickstart.md" in pages, pages
    assert all((DOCS / page).is_file() for page in pages), pages
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.glob("*.md")}
    assert on_disk == set(pages), on_disk ^ set(pages)


def test_generated_model_card_page_matches_the_shipped_preset():
    """`docs/model-card.md` is the shipped preset's card (rerun the script when it changes)."""
    from im2latex_encoder import list_presets
    from im2latex_encoder.presets import resolve_preset

    page = (DOCS / "model-card.md").read_text(encoding="utf-8")
    # The preset and its card are part of the package: their absence is a failure, not a skip.
    assert "crohme101" in list_presets()
    card = resolve_preset("crohme101") / "model_card.md"
    assert card.is_file(), f"the shipped preset has no model card at {card}"
    assert page == card.read_text(encoding="utf-8"), (
        "docs/model-card.md is stale: run `python docs/scripts/make_figures.py`"
    )


def test_the_index_links_every_page():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([\w-]+\.md)(?:#[\w-]*)?\)", index))
    pages = {p.name for p in DOCS.glob("*.md")} - {"index.md"}
    assert pages - linked == set(), f"docs/index.md does not list {sorted(pages - linked)}"
    assert linked - pages == set(), f"docs/index.md links missing pages {sorted(linked - pages)}"


def test_every_notebook_is_listed_in_the_examples_readme_and_the_docs():
    notebooks = sorted(p.stem for p in (REPO / "examples").glob("*.ipynb"))
    assert len(notebooks) >= 4
    readme = (REPO / "examples" / "README.md").read_text(encoding="utf-8")
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    for notebook in notebooks:
        assert f"`{notebook}.ipynb`" in readme, notebook
        assert f"`{notebook}`" in index, notebook


def test_the_quickstart_shows_recognize():
    quickstart = (DOCS / "quickstart.md").read_text(encoding="utf-8")
    assert re.search(r"^im2latex-encoder recognize ", quickstart, re.M)


def test_the_changelogs_unreleased_section_has_one_heading_per_kind():
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    unreleased = changelog.split("## [Unreleased]", 1)[1].split("\n## [", 1)[0]
    kinds = re.findall(r"^### (\w+)", unreleased, re.M)
    assert kinds and len(kinds) == len(set(kinds)), kinds
    known = ["Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"]
    assert set(kinds) <= set(known) and kinds == sorted(kinds, key=known.index), kinds


def _layout_map() -> dict[str, set[str]]:
    """CONTRIBUTING's layout map: each folder named there -> the names listed under it."""
    text = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    listed: dict[str, set[str]] = {"": set()}
    parents: list[tuple[int, str]] = []  # (indent, folder path) of the enclosing folders
    for line in block.splitlines()[1:]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        while parents and parents[-1][0] >= indent:
            parents.pop()
        parent = parents[-1][1] if parents else ""
        names = []
        for token in line.split():
            if not re.fullmatch(r"[\w.-]+(/[\w.-]+)*/?", token) or not (
                token.endswith("/") or token.endswith(".py")
            ):
                break
            names.append(token)
        if not names and indent >= 12:
            continue  # a description carried over from the line above
        assert names, f"a map line that names no file or folder: {line!r}"
        for name in names:
            listed.setdefault(parent, set()).add(name.rstrip("/"))
            if name.endswith("/") and len(names) == 1:
                parents.append((indent, f"{parent}{name}"))
    return listed


def test_contributings_layout_map_matches_the_tree():
    listed = _layout_map()
    # Every name in the map exists where the map puts it.
    stale = sorted(
        f"{folder}{name}"
        for folder, names in listed.items()
        for name in names
        if not (REPO / folder / name).exists()
    )
    # Every module and folder of the package is named: at its top level, and in each of its
    # folders whose contents the map lists (a folder named alone is described as a whole).
    package = "im2latex_encoder/"
    unnamed = []
    for folder, names in listed.items():
        if folder.startswith(package):
            unnamed += [
                f"{folder}{path.name}"
                for path in sorted((REPO / folder).iterdir())
                if path.name != "__pycache__"
                and (path.is_dir() or path.suffix == ".py")
                and (folder == package or path.name != "__init__.py")
                and path.name not in names
            ]
    assert not stale and not unnamed, (
        f"CONTRIBUTING's layout map names what does not exist: {stale}; "
        f"and does not name: {unnamed}"
    )
    assert package.rstrip("/") in listed[""]
