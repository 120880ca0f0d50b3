"""`im2latex-encoder export`: writes a checked export; bad input is one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from im2latex_encoder import SymbolEncoder
from im2latex_encoder.cli import build_parser, main

ERROR_PREFIX = "im2latex-encoder export: error: "


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli_export") / "preset"
    SymbolEncoder(filters=(8, 16)).save_to_preset(directory)
    return directory


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


def test_export_is_a_registered_subcommand():
    args = build_parser().parse_args(
        ["export", "--model", "p", "--format", "onnx", "--out", "x.onnx"]
    )
    assert args.command == "export" and args.part == "encoder" and args.quantize == "none"
    assert args.func.__module__ == "im2latex_encoder.cli.export"


@pytest.mark.slow
def test_export_writes_a_checked_onnx_file(preset, tmp_path, capsys):
    out = tmp_path / "encoder.onnx"
    assert main(["export", "--model", str(preset), "--format", "onnx", "--out", str(out)]) == 0
    message = capsys.readouterr().out
    assert f"wrote {out} (onnx, encoder, {out.stat().st_size:,} bytes)" in message
    assert "uint8 images any×any → 'features'" in message

    import onnxruntime

    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    images = np.zeros((1, 40, 60, 1), np.uint8)
    images[:, 10:30, 20:25] = 255
    expected = SymbolEncoder.from_preset(str(preset))(images.astype("float32") / 255.0)
    np.testing.assert_allclose(session.run(None, {"images": images})[0], expected, atol=1e-4)


@pytest.mark.parametrize(
    "argv,expected",
    [
        (
            ["--format", "pb"],
            "--format must be one of savedmodel, tflite, onnx. Received: --format pb",
        ),
        (
            ["--format", "onnx", "--part", "head"],
            "--part must be one of encoder, classifier. Received: --part head",
        ),
        (
            ["--format", "onnx", "--quantize", "dynamic"],
            "--quantize applies to --format tflite only",
        ),
        (
            ["--format", "tflite", "--quantize", "float16"],
            "--quantize must be one of none, dynamic",
        ),
    ],
)
def test_bad_options_are_one_line_and_exit_2(argv, expected, preset, tmp_path, capsys):
    status = main(["export", "--model", str(preset), "--out", str(tmp_path / "x"), *argv])
    assert status == 2
    assert expected in _one_error_line(capsys)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("format, name", [("onnx", "e.onnx"), ("savedmodel", "saved")])
def test_out_in_a_missing_folder_is_refused_and_nothing_is_written(
    format, name, preset, tmp_path, capsys
):
    missing = tmp_path / "no" / "such"
    status = main(
        ["export", "--model", str(preset), "--format", format, "--out", str(missing / name)]
    )
    assert status == 2
    assert f"--out's folder does not exist: {str(missing)!r}" in _one_error_line(capsys)
    assert not (tmp_path / "no").exists() and not any(tmp_path.iterdir())


def test_missing_preset_is_one_line_and_exit_2(tmp_path, capsys):
    missing = tmp_path / "no_such_preset"
    status = main(
        ["export", "--model", str(missing), "--format", "onnx", "--out", str(tmp_path / "x.onnx")]
    )
    assert status == 2
    line = _one_error_line(capsys)
    assert "not a preset directory and not a shipped preset" in line and str(missing) in line


def test_classifier_part_of_an_encoder_preset_is_one_line_and_exit_2(preset, tmp_path, capsys):
    status = main(
        [
            "export",
            "--model",
            str(preset),
            "--format",
            "onnx",
            "--part",
            "classifier",
            "--out",
            str(tmp_path / "x.onnx"),
        ]
    )
    assert status == 2
    assert "is an encoder preset: it has no head" in _one_error_line(capsys)


@pytest.mark.slow
def test_tampered_preset_is_refused_by_the_installed_command(preset, tmp_path):
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for path in preset.iterdir():
        (tampered / path.name).write_bytes(path.read_bytes())
    config = json.loads((tampered / "config.json").read_text())
    config["config"]["activation"] = "sigmoid"
    (tampered / "config.json").write_text(json.dumps(config))

    out = tmp_path / "x.onnx"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "im2latex_encoder.cli",
            "export",
            "--model",
            str(tampered),
            "--format",
            "onnx",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1 and "config.json has sha256" in errors[0] and "refused" in errors[0]
    assert not out.exists()
