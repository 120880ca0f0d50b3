"""`train-formulas --design strokes` end to end on a fixture: a tiny model learns, its preset
loads back and reads as it was scored, `evaluate-formulas` and `recognize` agree with that
score, and running the command again resumes after the last completed epoch.

The fixture: eight InkML expressions of three one-stroke symbols (``1``, ``-``, ``0``), four
formulas in two hands, each stroke annotated with its symbol; the symbol classifier is a tiny
untrained preset (three 4-filter convs, an 8-unit hidden layer), saved by the test.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from im2latex_encoder.cli import main
from im2latex_encoder.data.inkml import read_inkml
from inkml_fixtures import build_inkml

_CIRCLE = np.linspace(0, 2 * np.pi, 16)
GLYPHS = {
    "1": np.stack([np.zeros(6), np.linspace(0, 10, 6)], axis=1),
    "-": np.stack([np.linspace(-4, 4, 6), np.full(6, 5.0)], axis=1),
    "0": np.stack([4 * np.cos(_CIRCLE), 5 + 5 * np.sin(_CIRCLE)], axis=1),
}
FORMULAS = ["1-0", "0-1", "1-1", "0-0"]


def _write_expressions(folder):
    folder.mkdir()
    for hand, (scale, slant) in enumerate(((1.0, 0.0), (1.7, 0.2))):
        for index, formula in enumerate(FORMULAS):
            traces = []
            for position, symbol in enumerate(formula):
                glyph = GLYPHS[symbol] @ np.array([[1.0, 0.0], [slant, 1.0]])
                traces.append(((glyph + [12.0 * position, 0.0]) * scale).round(2).tolist())
            groups = [(symbol, [position]) for position, symbol in enumerate(formula)]
            content = build_inkml(traces, truth=f"${formula}$", groups=groups)
            # Named so that the 5% validation split (by a hash of the name) holds none: every
            # training batch then has four expressions of three strokes (one traced shape).
            (folder / f"w{hand}_f{index}.inkml").write_bytes(content)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The fixture, a tiny classifier preset, and a run of two epochs (from the command)."""
    from im2latex_encoder import ClassificationHead, SymbolClassifier, SymbolEncoder

    root = tmp_path_factory.mktemp("strokes")
    data = _write_expressions(root / "data")
    preset = root / "classifier"
    SymbolClassifier(
        SymbolEncoder(filters=(4, 4, 4)),
        ClassificationHead(101, pooling="flatten", hidden_units=8),
        image_size=48,
    ).save_to_preset(str(preset))
    run = root / "run"
    argv = [
        "train-formulas",
        *("--data", f"crohme:{data}", "--out", str(run), "--preset", str(preset)),
        *("--draws", "2", "--epochs", "2", "--batch-size", "4", "--learning-rate", "0.01"),
        *("--hidden-dim", "16", "--encoder-layers", "1", "--decoder-layers", "1"),
        *("--views", "alone", "previous", "--attention-weight", "0.3", "--no-progress"),
    ]
    return {"data": data, "run": run, "argv": argv, "root": root}


def _history(run):
    with open(run / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_a_tiny_stroke_model_trains_saves_resumes_and_scores_as_it_reads(
    trained, capsys, monkeypatch
):
    from im2latex_encoder.data.inkml import read_inkml
    from im2latex_encoder.formulas.crohme_truth import normalize_crohme_truth
    from im2latex_encoder.recognizer.saving import load_formula_recognizer
    from im2latex_encoder.recognizer.stroke_recognizer import StrokeRecognizer

    monkeypatch.setenv("IM2LATEX_ENCODER_CACHE", str(trained["root"] / "cache"))
    data, run = trained["data"], trained["run"]
    assert main([*trained["argv"], "--eval", f"crohme:{data}"]) == 0
    printed = capsys.readouterr().out
    assert f"{data.name} (greedy): ExpRate " in printed and "(n=8, skipped 0)" in printed
    assert "s an epoch" in printed and f"wrote {run / 'recognizer'}" in printed
    assert (run / "cache" / "stroke-features-1.npz").is_file()  # the clean draw and one more
    history = _history(run)
    assert [int(row["epoch"]) for row in history] == [1, 2]
    assert float(history[1]["loss"]) < float(history[0]["loss"])  # it learns
    metrics = json.loads((run / "metrics.json").read_text())
    scored = metrics["metrics"][data.name]["greedy"]
    # by default the image draws' components carry their strokes' symbols
    assert metrics["component_draws"] == 2 and metrics["label_components"] is True
    assert metrics["split_junctions"] is False  # whole components, unless told
    assert metrics["seed"] == 0 and metrics["validation_seed"] == 0  # --seed's, by default

    # The preset loads back as a stroke recognizer with the settings the command gave.
    model = load_formula_recognizer(run / "recognizer")
    assert type(model) is StrokeRecognizer
    assert model.drawing.views == ("alone", "previous") and model.hidden_dim == 16
    assert model.split_junctions is False
    assert sorted(model.vocabulary.tokens[4:]) == ["-", "0", "1"]

    # `evaluate-formulas --beam 1` scores the preset as the run scored its own model (greedy)...
    out = trained["root"] / "evaluation.json"
    evaluate = ["evaluate-formulas", "--model", str(run / "recognizer"), "--data", f"crohme:{data}"]
    assert main([*evaluate, "--beam", "1", "--json", str(out), "--no-progress"]) == 0
    greedy = json.loads(out.read_text())
    for key in ("exprate", "exprate_1", "exprate_2", "n"):
        assert greedy[key] == pytest.approx(scored[key]), key
    # ... and by default its ExpRate is the share of files read exactly from their strokes
    # alone, as `recognize FILE.inkml` reads them (`recognize_strokes`, the model's default
    # beam; its printing is checked in test_stroke_recognizer): no scale from the files'
    # symbol annotations.
    assert main([*evaluate, "--json", str(out), "--no-progress"]) == 0
    evaluation = json.loads(out.read_text())
    assert evaluation["decoding"] == f"beam {model.default_beam_width}"
    files = sorted(data.glob("*.inkml"))
    strokes = [[s for s in read_inkml(path).strokes() if len(s)] for path in files]
    read = model.recognize_strokes(strokes)
    truths = {f"w{h}_f{i}": formula for h in (0, 1) for i, formula in enumerate(FORMULAS)}
    exact = [
        latex == " ".join(normalize_crohme_truth(f"${truths[path.stem]}$"))
        for latex, path in zip(read, files)
    ]
    assert len(read) == 8 and np.mean(exact) == pytest.approx(evaluation["exprate"])
    # The same readings, expression by expression: evaluate's errors are the files read wrong.
    errors = {example["name"]: example["predicted"] for example in evaluation["examples"]}
    assert errors == {path.stem: latex for path, latex, ok in zip(files, read, exact) if not ok}

    # Run again with more epochs: it resumes after the two done, and trains one more.
    weights = model.get_weights()
    argv = [*trained["argv"]]
    argv[argv.index("--epochs") + 1] = "3"
    assert main(argv) == 0
    capsys.readouterr()
    resumed = _history(run)
    assert [int(row["epoch"]) for row in resumed] == [1, 2, 3]
    assert resumed[:2] == history
    again = load_formula_recognizer(run / "recognizer")
    assert any(not np.array_equal(a, b) for a, b in zip(again.get_weights(), weights))


class _Stop(Exception):
    pass


@pytest.mark.parametrize(
    ("options", "expected"),
    [({"seed": 3}, 3), ({"seed": 3, "validation_seed": 0}, 0), ({"validation_seed": 5}, 5)],
)
def test_the_validation_split_has_its_own_seed(tmp_path, monkeypatch, options, expected):
    from im2latex_encoder.recognizer import stroke_training

    seeds = []

    def split(captions, fraction, seed):
        seeds.append(seed)
        raise _Stop  # the split is all this test needs of the run

    monkeypatch.setattr(stroke_training, "split_by_formula", split)
    data = _write_expressions(tmp_path / "data")
    with pytest.raises(_Stop):
        stroke_training.train_strokes([data], tmp_path / "run", preset=None, **options)
    assert seeds == [expected]
    with pytest.raises(ValueError, match="`validation_seed` must be an int or None. Received: "):
        stroke_training.train_strokes([data], tmp_path / "run", validation_seed="0")


@pytest.mark.slow
def test_members_train_one_after_another_and_read_as_one(trained, capsys, monkeypatch):
    from im2latex_encoder import presets
    from im2latex_encoder.recognizer.saving import load_formula_recognizer

    monkeypatch.setenv("IM2LATEX_ENCODER_CACHE", str(trained["root"] / "cache"))
    root, argv = trained["root"], [*trained["argv"]]
    argv[argv.index("--epochs") + 1] = "1"
    # One split for both runs, and one feature cache: the features are computed once. The
    # image draws cut at their junctions: the model records it, to read images as it trained.
    argv += ["--validation-seed", "0", "--cache-dir", str(root / "members-cache")]
    argv += ["--split-junctions"]
    single, joined = root / "single", root / "joined"
    argv_single = [*argv]
    argv_single[argv.index("--out") + 1] = str(single)
    argv_joined = [*argv, "--members", "2", "--seed", "3"]
    argv_joined[argv.index("--out") + 1] = str(joined)
    assert main([*argv_single, "--seed", "4"]) == 0
    assert main(argv_joined) == 0
    printed = capsys.readouterr().out
    assert "member 1 of 2 (seed 3)" in printed and "member 2 of 2 (seed 4)" in printed
    for member in (0, 1):  # each member checkpointed and plotted on its own
        assert (joined / f"checkpoint-{member}").is_dir()
        assert (joined / f"curves-{member}.png").is_file()
        assert [int(row["epoch"]) for row in _csv(joined / f"history-{member}.csv")] == [1]
    assert not (joined / "checkpoint").exists()
    metrics = json.loads((joined / "metrics.json").read_text())
    assert metrics["members"] == 2 and metrics["seed"] == 3 and metrics["split_junctions"]
    assert presets.preset_metadata(joined / "recognizer")["task_weights_dtype"] == "float16"
    model = load_formula_recognizer(joined / "recognizer")
    assert model.members == 2 and model.split_junctions and model.member(1).split_junctions
    # Member 1 trained as a one-member run of its seed (4) does, stored at float16.
    alone = load_formula_recognizer(single / "recognizer")
    for mine, theirs in zip(model.member(1).get_weights(), alone.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=2e-3, atol=1e-4)
    # Run again: every member is already trained; nothing trains, the preset reads the same.
    strokes = [
        [s for s in read_inkml(path).strokes() if len(s)]
        for path in sorted(trained["data"].glob("*.inkml"))
    ]
    read = model.recognize_strokes(strokes)
    assert main(argv_joined) == 0
    assert "member 1 of 2" not in capsys.readouterr().out
    assert load_formula_recognizer(joined / "recognizer").recognize_strokes(strokes) == read


def _csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_a_fine_tune_starts_from_a_trained_preset_and_records_the_image_order(trained, monkeypatch):
    from im2latex_encoder.recognizer.saving import load_formula_recognizer
    from im2latex_encoder.recognizer.stroke_training import train_strokes

    monkeypatch.setenv("IM2LATEX_ENCODER_CACHE", str(trained["root"] / "cache"))
    root, argv = trained["root"], [*trained["argv"]]
    argv[argv.index("--epochs") + 1] = "1"
    argv[argv.index("--out") + 1] = str(root / "start")
    argv += ["--cache-dir", str(root / "tune-cache")]
    assert main(argv) == 0
    start = root / "start" / "recognizer"
    tune = [*argv, "--init-from", str(start), "--component-order", "layout"]
    tune += ["--layout-draws", "1"]
    tune[tune.index("--out") + 1] = str(root / "tuned")
    tune[tune.index("--learning-rate") + 1] = "0.0001"
    assert main(tune) == 0
    metrics = json.loads((root / "tuned" / "metrics.json").read_text())
    assert metrics["init_from"] == str(start) and metrics["component_order"] == "layout"
    assert metrics["preset"] == str(start)  # its features come from the start's classifier
    # The layout draw is the ink in an image's order: every fixture formula is written left
    # to right, nothing stacked, so its clean draw is the clean ink draw, stroke for stroke.
    assert metrics["layout_draws"] == 1
    with np.load(root / "tune-cache" / "layout-features-1.npz") as drawn:
        with np.load(root / "tune-cache" / "stroke-features-0.npz") as ink:
            np.testing.assert_allclose(drawn["features"], ink["features"], atol=1e-6)
            np.testing.assert_allclose(drawn["geometry"], ink["geometry"], atol=1e-6)
    before, after = (
        load_formula_recognizer(start),
        load_formula_recognizer(root / "tuned" / "recognizer"),
    )
    assert after.image_order == "layout" and before.image_order == "left-to-right"
    assert after.vocabulary.tokens == before.vocabulary.tokens
    # it trained from the start's weights: a small step away, where a new model lies far
    fresh = type(before).from_config(before.get_config())
    moved = [np.abs(a - b).mean() for a, b in zip(after.get_weights(), before.get_weights())]
    apart = [np.abs(a - b).mean() for a, b in zip(fresh.get_weights(), before.get_weights())]
    assert 0 < max(moved) < 0.1 * max(apart)
    # The layout draws' cache is keyed by the order itself: another ordering rule (here, each
    # expression's strokes reversed) redraws it rather than reading the stale draw.
    from im2latex_encoder.recognizer import stroke_components

    monkeypatch.setattr(stroke_components, "stroke_layout_order", lambda s: [*range(len(s))][::-1])
    tune[tune.index("--out") + 1] = str(root / "retuned")
    assert main(tune) == 0
    with np.load(root / "tune-cache" / "layout-features-1.npz") as drawn:
        with np.load(root / "tune-cache" / "stroke-features-0.npz") as ink:
            alone = drawn["features"].shape[1] // 2  # the "alone" view's columns come first
            written = ink["features"][:, :alone].reshape(8, 3, alone)
            reversed_ink = written[:, ::-1].reshape(24, alone)
            np.testing.assert_allclose(drawn["features"][:, :alone], reversed_ink, atol=1e-6)
    with pytest.raises(ValueError, match="`layout_draws` must be an int >= 0. Received: "):
        train_strokes([trained["data"]], root / "refused", layout_draws=-1)
    with pytest.raises(ValueError, match="has 1 member"):
        train_strokes([trained["data"]], root / "refused", init_from=str(start), members=2)
