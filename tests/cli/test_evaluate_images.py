"""`evaluate-formulas --as-images PX[,PX...]`: the test expressions' ink drawn as images at each
scale and read by their components, one row (and one JSON entry) per scale beside the ink's.

The fixture: four InkML expressions of one-stroke symbols (``1``, ``-``, ``0``) and a tiny
stroke recognizer with random weights (`tiny_stroke_recognizer`), saved as a preset.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from im2latex_encoder.cli import main
from inkml_fixtures import build_inkml
from model_checks import tiny_recognizer, tiny_stroke_recognizer

_CIRCLE = np.linspace(0, 2 * np.pi, 16)
GLYPHS = {
    "1": np.stack([np.zeros(6), np.linspace(0, 10, 6)], axis=1),
    "-": np.stack([np.linspace(-4, 4, 6), np.full(6, 5.0)], axis=1),
    "0": np.stack([4 * np.cos(_CIRCLE), 5 + 5 * np.sin(_CIRCLE)], axis=1),
}
FORMULAS = {"a": "1-0", "b": "0-1", "c": "1-1", "d": "10"}


def _strokes(formula: str) -> list[np.ndarray]:
    return [GLYPHS[symbol] + [12.0 * position, 0.0] for position, symbol in enumerate(formula)]


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    root = tmp_path_factory.mktemp("as-images")
    data = root / "data"
    data.mkdir()
    for name, formula in FORMULAS.items():
        traces = [stroke.round(2).tolist() for stroke in _strokes(formula)]
        groups = [(symbol, [position]) for position, symbol in enumerate(formula)]
        (data / f"{name}.inkml").write_bytes(
            build_inkml(traces, truth=f"${formula}$", groups=groups)
        )
    model = tiny_stroke_recognizer(vocabulary=("1", "-", "0"), seed=2)
    model.save_to_preset(str(root / "strokes"))
    return {"root": root, "data": data, "model": model, "preset": root / "strokes"}


@pytest.fixture
def cache(fixture, monkeypatch):
    monkeypatch.setenv("IM2LATEX_ENCODER_CACHE", str(fixture["root"] / "cache"))


def test_as_images_prints_a_row_per_scale_read_as_recognize_images_reads(fixture, cache, capsys):
    from im2latex_encoder.recognizer.stroke_components import draw_expression_image

    data, out = fixture["data"], fixture["root"] / "scores.json"
    argv = ["evaluate-formulas", "--model", str(fixture["preset"]), "--data", f"crohme:{data}"]
    assert main([*argv, "--as-images", "40,16", "--json", str(out), "--no-progress"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    # No --beam: the model's own beam width (a stroke recognizer's is 4), as `recognize` reads.
    assert [row.split(": ExpRate ")[0] for row in rows[:3]] == [
        f"{data} (beam 4)",
        f"{data} (beam 4, images 40 px)",
        f"{data} (beam 4, images 16 px)",
    ]
    for row in rows[:3]:
        assert "≤1 " in row and "≤2 " in row and "token error rate " in row, row
        assert "(n=4, skipped 0)" in row and row.endswith("formulas/s"), row
    assert rows[3] == f"wrote {out}"
    record = json.loads(out.read_text())
    assert set(record["as_images"]) == {"40", "16"} and record["slants"] == []
    for pixels, scores in record["as_images"].items():
        assert scores["symbol_pixels"] == int(pixels) and scores["n"] == 4
        assert scores["skipped"] == 0 and scores["blank_images"] == 0
        # Read as `recognize_images` reads each file's strokes drawn at that scale: nothing
        # but the strokes reaches the image (the truth only scores the reading).
        model = fixture["model"]
        names = sorted(FORMULAS)
        images = [draw_expression_image(_strokes(FORMULAS[n]), int(pixels)) for n in names]
        read = dict(zip(names, model.recognize_images(images)))
        truth = {name: " ".join(FORMULAS[name]) for name in names}
        errors = {example["name"]: example["predicted"] for example in scores["examples"]}
        assert errors == {name: read[name] for name in names if read[name] != truth[name]}
        exact = np.mean([read[name] == truth[name] for name in names])
        assert scores["exprate"] == pytest.approx(exact)
    # Without --as-images: the ink's row alone, as before.
    assert main([*argv, "--no-progress"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 1 and rows[0].startswith(f"{data} (beam 4): ExpRate ")
    assert main([*argv, "--beam", "1", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith(f"{data} (greedy): ExpRate ")


def test_slants_choose_the_views_the_ink_is_read_in(fixture, cache, capsys):
    from im2latex_encoder.formulas.handwritten import InkExpressions
    from im2latex_encoder.recognizer.evaluation import evaluate_expressions

    data, out = fixture["data"], fixture["root"] / "slanted.json"
    argv = ["evaluate-formulas", "--model", str(fixture["preset"]), "--data", f"crohme:{data}"]
    assert main([*argv, "--slants", "none", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith(f"{data} (beam 4): ExpRate ")
    assert main([*argv, "--beam", "2", "--slants", "0.5,-1", "--json", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"{data} (beam 2, slants +0.5, -1): ExpRate ")
    record = json.loads(out.read_text())
    assert record["slants"] == [0.5, -1.0]
    # What `evaluate_expressions` scores with those slants, as the model reads them.
    model, names = fixture["model"], sorted(FORMULAS)
    expressions = InkExpressions.from_strokes(
        [_strokes(FORMULAS[n]) for n in names], names=names, truths=["$x$"] * len(names)
    )
    targets = [list(FORMULAS[n]) for n in names]
    scores = evaluate_expressions(
        model, model.vocabulary, None, expressions, targets, beam=2, slants=(0.5, -1.0)
    )
    assert record["exprate"] == pytest.approx(scores["exprate"])
    read = model.recognize_strokes([_strokes(FORMULAS[n]) for n in names], 2, slants=(0.5, -1.0))
    errors = {example["name"]: example["predicted"] for example in record["examples"]}
    assert errors == {n: r for n, r in zip(names, read) if r != " ".join(FORMULAS[n])}


@pytest.mark.parametrize("value", ["abc", "0.1,", "1.5", "nan"])
def test_a_bad_slant_is_refused_saying_what_was_expected(value, capsys):
    assert main(["evaluate-formulas", "--data", "crohme:x", "--slants", value]) == 2
    err = capsys.readouterr().err
    assert (
        "argument --slants: expected slants from -1 to 1 separated by commas (e.g. 0.12,-0.12), "
        f"or none. Received: {value}" in err
    )


@pytest.mark.parametrize("value", ["0", "abc", "64,-1", "64,", "1.5"])
def test_a_bad_size_is_refused_saying_what_was_expected(value, capsys):
    assert main(["evaluate-formulas", "--data", "crohme:x", "--as-images", value]) == 2
    err = capsys.readouterr().err
    assert (
        "argument --as-images: expected whole numbers of pixels from 1 to 512, separated by "
        f"commas (e.g. 64,24). Received: {value}" in err
    )


def test_sizes_are_parsed_in_order_once_each():
    from im2latex_encoder.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(
        ["evaluate-formulas", "--data", "crohme:x", "--as-images", "64, 24,64"]
    )
    assert args.as_images == (64, 24)
    assert parser.parse_args(["evaluate-formulas", "--data", "crohme:x"]).as_images == ()


def test_the_image_model_is_refused_with_as_images(fixture, cache, capsys):
    from im2latex_encoder.formulas.tokenizer import Vocabulary
    from im2latex_encoder.recognizer import DrawSettings

    vocabulary = Vocabulary(["1", "-", "0"])
    folder = fixture["root"] / "image"
    model = tiny_recognizer(len(vocabulary), seed=3, scale=0.3)
    model.attach_reading(vocabulary, DrawSettings(16.0)).save_to_preset(str(folder))
    argv = ["evaluate-formulas", "--model", str(folder), "--data", f"crohme:{fixture['data']}"]
    assert main([*argv, "--slants", "0.1", "--no-progress"]) == 2
    assert "--slants shears the ink a stroke recognizer reads" in capsys.readouterr().err
    assert main([*argv, "--as-images", "64", "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.out == ""
    assert (
        "--as-images reads images by their ink's connected components, as a stroke recognizer "
        "(--model crohme-formulas, a StrokeRecognizer) reads a photo; an image model is "
        f"already scored on the ink drawn as it was trained. Received: FormulaRecognizer from "
        f"--model {folder}"
    ) in captured.err
    from im2latex_encoder.recognizer.symbol_cutter import SymbolCutter, build_symbol_cutter_model

    cutter = SymbolCutter(build_symbol_cutter_model(seed=0)).save(fixture["root"] / "cutter0")
    png = fixture["root"] / "blank.png"
    png.write_bytes(b"")  # never read: the model is refused first
    assert (
        main(["recognize", "--model", str(folder), "--symbol-cutter", str(cutter), str(png)]) == 2
    )
    assert "--symbol-cutter cuts images into the tokens a stroke recognizer reads" in (
        capsys.readouterr().err
    )


def test_evaluate_expressions_refuses_images_for_an_image_model_and_bad_sizes(fixture):
    from im2latex_encoder.formulas.handwritten import InkExpressions
    from im2latex_encoder.recognizer.evaluation import evaluate_expressions

    model = fixture["model"]
    data = InkExpressions.from_strokes([_strokes("1-0")], names=["e"], truths=["$1-0$"])
    targets = [["1", "-", "0"]]
    scores = evaluate_expressions(model, model.vocabulary, None, data, targets, as_images=32)
    assert scores["n"] == 1 and scores["symbol_pixels"] == 32
    for bad in (0, -4, 2.5, True):
        with pytest.raises(ValueError, match="`as_images` must be a positive int"):
            evaluate_expressions(model, model.vocabulary, None, data, targets, as_images=bad)
    with pytest.raises(ValueError, match="Received: FormulaRecognizer with as_images=32"):
        evaluate_expressions(
            tiny_recognizer(7), model.vocabulary, None, data, targets, as_images=32
        )


def test_a_symbol_cutter_cuts_the_images_as_recognize_images_does(fixture, cache, capsys):
    from im2latex_encoder.recognizer.stroke_components import draw_expression_image, image_tokens
    from im2latex_encoder.recognizer.symbol_cutter import SymbolCutter, build_symbol_cutter_model

    # An untrained net, its threshold at its median over an image's ink so that it cuts
    # somewhere: the rows must read those cuts.
    cutter = SymbolCutter(build_symbol_cutter_model(seed=4))
    image = draw_expression_image(_strokes(FORMULAS["a"]), 40)
    cutter.threshold = float(np.median(cutter.boundaries(image)[image >= 128]))
    folder = cutter.save(fixture["root"] / "cutter")
    data, out = fixture["data"], fixture["root"] / "cut.json"
    argv = ["evaluate-formulas", "--model", str(fixture["preset"]), "--data", f"crohme:{data}"]
    assert main([*argv, "--as-images", "40", "--beam", "1", "--no-progress"]) == 0
    whole = capsys.readouterr().out.strip().splitlines()
    assert (
        main(
            [*argv, "--as-images", "40", "--beam", "1", "--no-progress"]
            + ["--symbol-cutter", str(folder), "--json", str(out)]
        )
        == 0
    )
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].split("; ")[0] == whole[0].split("; ")[0]  # the ink is not cut
    assert rows[1].startswith(f"{data} (greedy, images 40 px, symbols cut): ExpRate ")
    record = json.loads(out.read_text())
    assert record["symbol_cutter"] == str(folder)
    scores = record["as_images"]["40"]
    assert scores["symbol_cutter_threshold"] == cutter.threshold
    model, names = fixture["model"], sorted(FORMULAS)
    images = [draw_expression_image(_strokes(FORMULAS[n]), 40) for n in names]
    loaded = SymbolCutter.load(folder)
    assert [len(image_tokens(i, symbol_cutter=loaded)) for i in images] != [
        len(image_tokens(i)) for i in images
    ]
    read = dict(zip(names, model.recognize_images(images, 1, symbol_cutter=loaded)))
    errors = {example["name"]: example["predicted"] for example in scores["examples"]}
    assert errors == {n: read[n] for n in names if read[n] != " ".join(FORMULAS[n])}
    # `recognize` cuts image files the same way (their ink read as `recognize` reads a PNG).
    import cv2

    from im2latex_encoder.data.symbol_files import read_image_gray
    from im2latex_encoder.recognizer.preprocessor import expression_ink

    files = []
    for name, image in zip(names, images):
        files.append(str(fixture["root"] / f"{name}.png"))
        cv2.imwrite(files[-1], 255 - image)  # dark ink on white paper
    inks = [expression_ink(read_image_gray(f)) for f in files]
    expected = model.recognize_images(inks, symbol_cutter=loaded)
    assert expected != model.recognize_images(inks) or [
        len(image_tokens(i, symbol_cutter=loaded)) for i in inks
    ] != [len(image_tokens(i)) for i in inks]
    recognize = ["recognize", "--model", str(fixture["preset"]), *files]
    assert main([*recognize, "--symbol-cutter", str(folder)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == [f"{f}\t{latex}" for f, latex in zip(files, expected)]
    assert main([*recognize, "--symbol-cutter", str(data)]) == 2
    assert "Expected a symbol cutter" in capsys.readouterr().err
    # Without --as-images there is nothing to cut; a folder without a cutter is named.
    assert main([*argv, "--symbol-cutter", str(folder), "--no-progress"]) == 2
    assert "--symbol-cutter cuts the images --as-images draws" in capsys.readouterr().err
    assert main([*argv, "--as-images", "40", "--symbol-cutter", str(data)]) == 2
    assert "Expected a symbol cutter" in capsys.readouterr().err
