"""Run the example notebooks top to bottom, in small mode, with nbclient.

The notebooks read the preset from `IM2LATEX_PRESET`, set here to the shipped `crohme101`:
it is part of the package, so its absence fails the tests rather than being replaced by a
random-weight stand-in. Committed notebooks must carry no outputs, so the repository's diffs
stay readable.
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the dev extra")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in the dev extra")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_the_four_examples_exist():
    assert [p.name for p in NOTEBOOKS] == [
        "01_symbol_classification.ipynb",
        "02_formula_transfer.ipynb",
        "03_new_label_set.ipynb",
        "04_handwritten_formulas.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    source = "\n".join(cell.source for cell in notebook.cells)
    assert 'os.environ.get("IM2LATEX_PRESET", "crohme101")' in source
    assert 'os.environ.get("IM2LATEX_EXAMPLES_SMALL") == "1"' in source


@pytest.fixture(scope="module")
def preset_for_examples():
    from im2latex_encoder import list_presets

    assert "crohme101" in list_presets(), "the shipped preset is part of the package"
    return "crohme101"


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_small_mode(path, preset_for_examples, monkeypatch):
    # The kernel is a child process: it inherits these.
    monkeypatch.setenv("IM2LATEX_EXAMPLES_SMALL", "1")
    monkeypatch.setenv("IM2LATEX_PRESET", preset_for_examples)
    monkeypatch.setenv("MPLBACKEND", "Agg")  # headless: figures are drawn, not displayed
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    if path.stem.startswith("02"):
        assert "same logits: True" in text and "same greedy decoding: True" in text
    if path.stem.startswith("01"):
        assert "101-class predictions unchanged: True" in text
    if path.stem.startswith("03"):
        assert "junk True" in text
    if path.stem.startswith("04"):
        assert "'exprate':" in text and "validation token accuracy" in text
