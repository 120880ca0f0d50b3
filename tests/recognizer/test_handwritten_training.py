"""Handwritten-formula training, saving, scoring and the three commands, on a tiny model."""

from __future__ import annotations

import json
import os

import pytest

from im2latex_encoder.recognizer import (
    DrawSettings,
    load_recognizer,
    recognize_images,
    train_handwritten,
)
from im2latex_encoder.recognizer.formula_recognizer import FormulaRecognizer
from inkml_fixtures import build_inkml

# Four tiny "expressions": a stroke shape per formula, so a model can tell them apart.
SHAPES = {
    "x": ([[(0, 0), (10, 10)], [(10, 0), (0, 10)]], "$x$"),
    "1": ([[(5, 0), (5, 10)]], "$1$"),
    "x1": ([[(0, 0), (10, 10)], [(10, 0), (0, 10)], [(15, 0), (15, 10)]], "$x1$"),
    "minus": ([[(0, 5), (10, 5)]], "$-1$"),
}


def _folder(root, copies=6):
    os.makedirs(root, exist_ok=True)
    for copy in range(copies):
        for name, (traces, truth) in SHAPES.items():
            jittered = [[(x + copy * 0.3, y) for x, y in trace] for trace in traces]
            with open(os.path.join(root, f"{name}_{copy}.inkml"), "wb") as handle:
                handle.write(build_inkml(jittered, ui=f"{name}_{copy}", truth=truth))
    return root


TINY = dict(
    preset=None,
    epochs=1,
    batch_size=8,
    hidden_dim=16,
    num_layers=1,
    num_heads=2,
    intermediate_dim=32,
    max_length=12,
    symbol_size=12.0,
    validation_split=0.25,
    augment={},
    progress=False,
)


@pytest.mark.slow
def test_train_save_load_recognize_and_resume(tmp_path, monkeypatch):
    from im2latex_encoder.cli import main

    monkeypatch.setenv("IM2LATEX_ENCODER_CACHE", str(tmp_path / "cache"))
    train = _folder(str(tmp_path / "train"))
    test = _folder(str(tmp_path / "test"), copies=1)
    out = tmp_path / "run"
    result = train_handwritten(train, out, eval_folders=[test], **TINY)
    for name in (
        "history.csv",
        "curves.png",
        "metrics.json",
        "model_card.md",
        "run.json",
        "recognizer/metadata.json",
        "recognizer/task.weights.h5",
        "recognizer/vocabulary.json",
        "recognizer/recognizer.json",
        "recognizer/model_card.md",
    ):
        assert (out / name).is_file(), name
    scores = result["metrics"]["test"]["greedy"]
    assert scores["n"] == 4 and scores["skipped"] == 0
    assert "CROHME data" in (out / "model_card.md").read_text()

    # A recognizer preset: its training record is in metadata.json.
    from im2latex_encoder import presets

    metadata = presets.preset_metadata(str(out / "recognizer"))
    assert metadata["kind"] == "recognizer" and metadata["metrics"]["test"]["greedy"]["n"] == 4
    assert (
        metadata["training"]["trained_on"]
        == json.loads((out / "metrics.json").read_text())["trained_on"]
    )

    # Saved and loaded: the same decodings.
    model, vocabulary, settings = load_recognizer(out / "recognizer")
    assert settings == DrawSettings(12.0)
    from im2latex_encoder.formulas.handwritten import read_crohme_expressions

    data = read_crohme_expressions(test, progress=False, workers=1)
    images = [settings.render(data, i) for i in range(len(data))]
    again = FormulaRecognizer.from_preset(str(out / "recognizer"))
    assert recognize_images(model, vocabulary, images) == recognize_images(
        again, vocabulary, images
    )

    # Same call again: resumes after epoch 1 and trains epoch 2 only.
    result = train_handwritten(train, out, eval_folders=[test], **dict(TINY, epochs=2))
    assert [row["epoch"] for row in result["history"]] == [1, 2]
    with pytest.raises(ValueError, match="other settings"):
        train_handwritten(train, out, **dict(TINY, epochs=2, hidden_dim=32))

    # The commands, end to end.
    files = sorted(os.path.join(test, name) for name in os.listdir(test))
    assert main(["recognize", "--model", str(out / "recognizer"), *files]) == 0
    report = tmp_path / "scores.json"
    assert (
        main(
            [
                "evaluate-formulas",
                "--model",
                str(out / "recognizer"),
                "--data",
                f"crohme:{test}",
                "--json",
                str(report),
                "--no-progress",
            ]
        )
        == 0
    )
    record = json.loads(report.read_text())
    for key in ("exprate", "exprate_1", "exprate_2", "n", "skipped"):
        assert key in record
    assert record["n"] == 4 and record["skipped"] == 0
    # With --captions: targets from the file, matched by stem; a missing one is counted.
    captions = tmp_path / "captions.txt"
    captions.write_text("x_0\tx\n1_0\t1\nx1_0\tx 1\n")
    assert (
        main(
            [
                "evaluate-formulas",
                "--model",
                str(out / "recognizer"),
                "--data",
                f"crohme:{test}",
                "--captions",
                str(captions),
                "--json",
                str(report),
                "--no-progress",
            ]
        )
        == 0
    )
    record = json.loads(report.read_text())
    assert record["n"] == 3 and record["skipped"] == 1 and "minus_0" in record["skipped_reasons"]
    # Bad input: one clear line, exit 2.
    assert main(["evaluate-formulas", "--model", str(out / "recognizer"), "--data", str(test)]) == 2
    assert main(["recognize", "--model", str(tmp_path), files[0]]) == 2


@pytest.mark.parametrize(
    "module_name",
    [
        "formulas.handwritten",
        "recognizer.batches",
        "recognizer.metrics",
        "recognizer.preprocessor",
        "recognizer.saving",
        "recognizer.vocabulary",
    ],
)
def test_docstring_examples_run(module_name):
    import doctest
    import importlib

    module = importlib.import_module(f"im2latex_encoder.{module_name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_the_validation_split_keeps_every_copy_of_a_formula_on_one_side():
    """Half of CROHME's training expressions share their formula with another writer's: the
    split is by formula, so no held-out formula was trained on, and both sides get one."""
    from im2latex_encoder.recognizer.handwritten_training import held_out_mask

    formulas = [f"x ^ {{ {i % 40} }}" for i in range(400)]  # 40 formulas, 10 writers each
    held = held_out_mask(formulas, 0.2, seed=0)
    held_formulas = {f for f, h in zip(formulas, held) if h}
    trained_formulas = {f for f, h in zip(formulas, held) if not h}
    assert held_formulas and trained_formulas and not held_formulas & trained_formulas
    assert 0.05 < held.mean() < 0.4
    # Two formulas only, a fraction that holds neither (or both): still one on each side.
    for fraction in (1e-9, 1.0):
        assert sorted(held_out_mask(["a", "b", "a"], fraction, seed=0).tolist()) in (
            [False, False, True],
            [False, True, True],
        )
        mask = held_out_mask(["a", "b", "a"], fraction, seed=0)
        assert mask[0] == mask[2] and mask[0] != mask[1]
