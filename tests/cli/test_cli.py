"""The command line as a whole: fast answers without TensorFlow, help on every option, one
spelling for the model, counts that refuse 0, and the outputs of `predict`."""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from im2latex_encoder.cli import build_parser, main

# Run in a fresh interpreter: each argv goes through `main`, and after each the script records
# whether a deep-learning framework was imported. The argument errors are typos a user makes
# before any model could load; every one must be answered at once.
_PROBE = r"""
import argparse, contextlib, io, json, sys
from im2latex_encoder.cli import build_parser, main

def subcommands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from subcommands(sub, (*prefix, name))

cases = [["--help"], ["--version"]]
cases += [[*names, "--help"] for names in subcommands(build_parser())]
cases += json.loads(sys.argv[1])
report = []
for argv in cases:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exit:
            status = exit.code
    loaded = sorted({m.split(".")[0] for m in sys.modules} & {"tensorflow", "keras", "jax", "torch"})
    report.append({"argv": argv, "status": status, "loaded": loaded, "out": out.getvalue(), "err": err.getvalue()})
print(json.dumps(report))
"""

MISSING = "/no/such/folder"
ARGUMENT_ERRORS = [
    ["no-such-command"],
    ["predict"],
    ["predict", "--top-k", "0", "a.png"],
    ["predict", "--json", f"{MISSING}/p.jsonl", "a.png"],
    ["predict", "--model", "a", "--preset", "b", "x.png"],
    ["evaluate", "--data", "mnist"],
    ["evaluate", "--per-class", "0"],
    ["evaluate", "--json", f"{MISSING}/r.json"],
    ["recognize", "--beam", "0", "a.png"],
    ["recognize", "--beam", "-3", "a.png"],
    ["recognize", "--json", f"{MISSING}/r.jsonl", "a.png"],
    ["evaluate-formulas", "--data", f"crohme:{MISSING}"],
    ["evaluate-formulas", "--beam", "0", "--data", "crohme:x"],
    ["evaluate-formulas", "--as-images", "0", "--data", "crohme:x"],
    ["evaluate-formulas", "--as-images", "abc", "--data", "crohme:x"],
    ["train-formulas", "--data", f"crohme:{MISSING}", "--out", "run"],
    ["train-formulas", "--data", "crohme:x", "--out", "run", "--epochs", "0"],
    ["train-formulas", "--design", "image", "--draws", "2", "--data", "crohme:.", "--out", "run"],
    ["train-formulas", "--freeze-encoder", "--data", "crohme:.", "--out", "run"],
    [
        "train-formulas",
        "--design",
        "image",
        "--validation-seed",
        "1",
        "--data",
        "crohme:.",
        "--out",
        "run",
    ],
    ["train-formulas", "--views", "sideways", "--data", "crohme:.", "--out", "run"],
    ["train-formulas", "--auxiliary-weight", "-1", "--data", "crohme:.", "--out", "run"],
    ["train-formulas", "--no-writing-order", "--data", "crohme:.", "--out", "run"],
    ["export", "--preset", "crohme101", "--format", "zip", "--out", "e.zip"],
    ["show", "c.npz", "--out", "sheet.txt"],
    ["prepare", "crohme", MISSING, "--out", "c.npz"],
    ["prepare", "synthetic", "--out", "c.npz", "--image-size", "4"],
    ["pretrain"],
]


@pytest.fixture(scope="module")
def probe():
    environment = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(ARGUMENT_ERRORS)],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    return {tuple(case["argv"]): case for case in json.loads(result.stdout)}


def test_help_version_and_argument_errors_answer_without_tensorflow(probe):
    helped = {argv[:-1] for argv in probe if argv[-1] == "--help"}
    assert {("predict",), ("recognize",), ("prepare", "crohme"), ("export",)} <= helped
    for argv, case in probe.items():
        assert case["loaded"] == [], f"{' '.join(argv)} imported {case['loaded']}"
        if argv[-1] in ("--help", "--version"):
            assert case["status"] == 0 and case["out"], argv
        else:
            assert case["status"] == 2, (argv, case["status"], case["err"])
            assert case["err"].strip() and "Traceback" not in case["err"], argv


def test_argument_errors_say_what_was_expected_and_received(probe):
    zero = probe[("recognize", "--beam", "0", "a.png")]["err"]
    assert "--beam: expected a whole number of at least 1. Received: 0" in zero
    assert "Received: -3" in probe[("recognize", "--beam", "-3", "a.png")]["err"]
    both = probe[("predict", "--model", "a", "--preset", "b", "x.png")]["err"]
    assert "give the model once, with --model. Received: --model and --preset" in both
    assert (
        f"--out's folder does not exist: '{MISSING}'"
        in (probe[("recognize", "--json", f"{MISSING}/r.jsonl", "a.png")]["err"])
    )
    assert "`--data` must be 'synthetic'" in probe[("evaluate", "--data", "mnist")]["err"]
    for size in ("0", "abc"):
        refused = probe[("evaluate-formulas", "--as-images", size, "--data", "crohme:x")]["err"]
        expected = "expected whole numbers of pixels from 1 to 512, separated by commas"
        assert f"--as-images: {expected} (e.g. 64,24). Received: {size}" in refused
    assert "im2latex-encoder" in probe[("--version",)]["out"]
    # train-formulas: an option of the other design is refused before anything loads.
    train = ("train-formulas", "--data", "crohme:.", "--out", "run")
    image_draws = ("train-formulas", "--design", "image", "--draws", "2", *train[1:])
    assert "--draws is for --design strokes. Received: --design image" in probe[image_draws]["err"]
    image_split = ("train-formulas", "--design", "image", "--validation-seed", "1", *train[1:])
    assert "--validation-seed is for --design strokes" in probe[image_split]["err"]
    frozen = probe[(*train[:1], "--freeze-encoder", *train[1:])]["err"]
    assert "--freeze-encoder is for --design image. Received: --design strokes" in frozen
    assert (
        "invalid choice: 'sideways'"
        in probe[(*train[:1], "--views", "sideways", *train[1:])]["err"]
    )
    negative = probe[(*train[:1], "--auxiliary-weight", "-1", *train[1:])]["err"]
    assert "expected a number of at least 0. Received: -1" in negative
    unordered = probe[(*train[:1], "--no-writing-order", *train[1:])]["err"]
    assert "give --views that need no order, such as --views alone window. " in unordered
    assert "Received: --views alone previous next" in unordered


def _options(parser: argparse.ArgumentParser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{prefix}{name} ")
            described = {choice.dest for choice in action._choices_actions if choice.help}
            yield f"{prefix}COMMAND", action, set(action.choices) - described
        elif not isinstance(action, argparse._HelpAction):
            yield f"{prefix}{'/'.join(action.option_strings) or action.dest}", action, None


def test_every_option_and_subcommand_has_help_text():
    seen = 0
    for name, action, undescribed in _options(build_parser()):
        seen += 1
        if undescribed is not None:
            assert not undescribed, f"subcommands without help: {sorted(undescribed)}"
        else:
            assert action.help and action.help != argparse.SUPPRESS, f"{name} has no help text"
    assert seen > 50


def test_model_is_the_one_spelling_with_defaults_and_a_deprecated_alias(capsys):
    parser = build_parser()
    defaults = {
        command: parser.parse_args([command, *extra]).model
        for command, extra in (
            ("predict", ["x.png"]),
            ("evaluate", []),
            ("recognize", ["x.png"]),
            ("evaluate-formulas", ["--data", "crohme:d"]),
        )
    }
    assert defaults == {
        "predict": "crohme101",
        "evaluate": "crohme101",
        "recognize": "crohme-formulas",
        "evaluate-formulas": "crohme-formulas",
    }
    assert capsys.readouterr().err == ""
    args = parser.parse_args(["predict", "--preset", "runs/a/preset", "x.png"])
    assert args.model == "runs/a/preset"
    assert (
        "warning: --preset is deprecated and will be removed in 0.3.0: use --model"
        in capsys.readouterr().err
    )
    assert parser.parse_args(["evaluate", "--model", "runs/a/preset"]).model == "runs/a/preset"
    assert capsys.readouterr().err == ""


@pytest.fixture(scope="module")
def preset_dir(tmp_path_factory):
    from im2latex_encoder import ClassificationHead, SymbolClassifier, SymbolEncoder

    path = tmp_path_factory.mktemp("preset") / "tiny"
    SymbolClassifier(
        SymbolEncoder(filters=(8, 16)), ClassificationHead(101), image_size=24
    ).save_to_preset(path)
    return path


def test_predict_prints_latex_with_the_crohme_name_and_says_an_expression_is_one_symbol(
    preset_dir, tmp_path, capsys, make_inkml
):
    symbol = tmp_path / "symbol.inkml"
    symbol.write_bytes(make_inkml([[(0, 0), (10, 10), (20, 0)]], ui="a_1"))
    expression = tmp_path / "expression.inkml"
    expression.write_bytes(
        make_inkml(
            [[(0, 0), (8, 10)], [(12, 0), (22, 10)], [(22, 0), (12, 10)]],
            groups=[("2", [0]), ("x", [1, 2])],
        )
    )
    out = tmp_path / "top.jsonl"
    argv = ["predict", "--model", str(preset_dir), "--top-k", "101", "--json", str(out)]
    assert main([*argv, str(symbol), str(expression)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(symbol), str(expression)]
    # Every label is in a top 101: LaTeX first, the CROHME name in brackets where it differs.
    entries = [entry.rsplit(" ", 1)[0] for entry in lines[0].split("\t")[1:]]
    assert len(entries) == 101
    assert {", (COMMA)", "< (\\lt)", "> (\\gt)", "\\alpha", "x"} <= set(entries)
    assert "COMMA" not in entries
    # The whole expression is read as one symbol, and the command says so.
    assert f"{expression} is an expression of 2 symbols" in captured.err
    assert "predict reads each file as one symbol" in captured.err
    assert str(symbol) + " is an expression" not in captured.err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    labels = [label for label, _ in records[0]["top"]]
    assert records[0]["latex"][labels.index("COMMA")] == ","
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~_umask()


def test_predict_keeps_going_past_a_bad_file(preset_dir, tmp_path, capsys):
    from PIL import Image

    paper = np.full((40, 30), 255, np.uint8)
    paper[5:35, 14:17] = 0
    Image.fromarray(paper).save(tmp_path / "one.png")
    status = main(
        ["predict", "--model", str(preset_dir), str(tmp_path / "one.png"), "missing.inkml"]
    )
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out.startswith(str(tmp_path / "one.png") + "\t")
    assert "missing.inkml: no such file" in captured.err
    assert "1 of 2 files skipped" in captured.err


def _umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


@pytest.mark.slow
def test_recognize_keeps_going_past_a_bad_file_and_writes_json(tmp_path, capsys, make_inkml):
    # The default model (crohme-formulas): an InkML expression, an image and a missing file.
    expression = tmp_path / "a.inkml"
    expression.write_bytes(
        make_inkml([[(0, 0), (20, 30)], [(20, 0), (0, 30)], [(28, 15), (44, 15)]], ui="e_1")
    )
    from PIL import Image

    paper = np.full((40, 90), 255, np.uint8)
    paper[8:32, 40:43] = 0  # dark ink on white paper
    Image.fromarray(paper).save(tmp_path / "b.png")
    out = tmp_path / "answers.jsonl"
    files = [str(expression), str(tmp_path / "missing.inkml"), str(tmp_path / "b.png")]
    assert main(["recognize", "--json", str(out), *files]) == 2
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == [files[0], files[2]]
    assert all(line.split("\t")[1].strip() for line in lines), lines  # some LaTeX for each
    errors = captured.err.strip().splitlines()
    assert any(f"{files[1]}: no such file" in line for line in errors), errors
    assert errors[-1] == "im2latex-encoder recognize: 1 of 3 files skipped"
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["file"] for r in records] == [files[0], files[2]]
    assert [r["latex"] for r in records] == [line.split("\t")[1] for line in lines]
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~_umask()
