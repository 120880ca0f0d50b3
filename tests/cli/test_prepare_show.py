"""Tests for `im2latex-encoder prepare` and `show`: outputs, reports, exit status 2 on bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from im2latex_encoder.cli import main
from im2latex_encoder.cli.show import label_title
from im2latex_encoder.data.cache import PreparedDataset, load_prepared, save_prepared
from inkml_fixtures import build_inkml

#: What every in-process `prepare` here adds: no pool, no progress bar.
QUIET = ["--workers", "1", "--no-progress"]
TOO_SMALL = (
    "--image-size must be at least 18 (the smallest image the default SymbolEncoder can encode)"
)


def prepare_crohme_argv(folder, out, *options) -> list[str]:
    """``prepare crohme FOLDER --out OUT [OPTIONS]`` as a list of str (`main`'s argv)."""
    return ["prepare", "crohme", str(folder), "--out", str(out), *map(str, options)]


@pytest.fixture
def crohme_dir(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    for index, _label in enumerate(["x", "\\alpha", "COMMA", "junk"]):
        (folder / f"iso{index}.inkml").write_bytes(
            build_inkml(
                [[(0, 0), (5 + index, 9), (9, 0)]], ui=f"u_{index}", truth="", groups=[("", [0])]
            )
        )
    (folder / "broken.inkml").write_bytes(b"<ink><trace>")
    (folder / "iso_GT.txt").write_text("u_0,x\nu_1,\\alpha\nu_2,COMMA\nu_3,junk\nu_9,y\n")
    return folder


def test_prepare_crohme_writes_cache_and_prints_report(crohme_dir, tmp_path, capsys):
    out = tmp_path / "c.npz"
    status = main(prepare_crohme_argv(crohme_dir, out, "--image-size", 32, *QUIET))
    captured = capsys.readouterr()
    assert status == 0
    dataset = load_prepared(out)
    assert dataset.images.shape == (3, 32, 32)
    assert "used 3 samples" in captured.out
    assert "missing_file: 1 (e.g. u_9)" in captured.out
    assert "junk: 1" in captured.out and "malformed_file: 1 (e.g. broken.inkml" in captured.out
    assert f"wrote {out}: 3 images 32x32" in captured.out

    status = main(
        prepare_crohme_argv(crohme_dir, out, "--image-size", 32, "--include-junk", *QUIET)
    )
    assert status == 0 and load_prepared(out).label_names[-1] == "junk"
    assert len(load_prepared(out)) == 4


def test_prepare_crohme_defaults_to_the_size_pretrain_trains_on(crohme_dir, tmp_path, capsys):
    """`pretrain --data FILE.npz` takes only its config's image size: the default prepares it."""
    from im2latex_encoder.cli import build_parser
    from im2latex_encoder.cli.prepare import DEFAULT_IMAGE_SIZE
    from im2latex_encoder.training import load_config

    default_config = build_parser().parse_args(["pretrain", "--out", "run"]).config
    assert (
        default_config == "quick"
        and DEFAULT_IMAGE_SIZE == load_config(default_config).image_size == 32
    )
    out = tmp_path / "c.npz"
    assert main(prepare_crohme_argv(crohme_dir, out, *QUIET)) == 0
    assert load_prepared(out).images.shape == (3, 32, 32)
    assert f"wrote {out}: 3 images 32x32" in capsys.readouterr().out


@pytest.mark.slow
def test_pretrain_trains_on_what_prepare_crohme_writes_by_default(crohme_dir, tmp_path):
    out = tmp_path / "c.npz"
    assert main(prepare_crohme_argv(crohme_dir, out, *QUIET)) == 0
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "im2latex_encoder.cli",
            "pretrain",
            "--out",
            str(tmp_path / "run"),
            "--data",
            str(out),
            "--epochs",
            "1",
            "--steps-per-epoch",
            "1",
            "--batch-size",
            "2",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=dict(
            os.environ,
            TF_CPP_MIN_LOG_LEVEL="3",
            CUDA_VISIBLE_DEVICES="",
            IM2LATEX_ENCODER_CACHE=str(tmp_path / "cache"),
        ),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "preset" / "metadata.json").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (prepare_crohme_argv("{tmp}/nope", "{tmp}/c.npz"), "not found"),
        (prepare_crohme_argv("{dir}", "{tmp}/c.txt"), "must be an .npz"),
        (prepare_crohme_argv("{dir}", "{tmp}/no/c.npz"), "folder does not exist"),
        (
            prepare_crohme_argv("{dir}", "{tmp}/c.npz", "--image-size", 0),
            f"{TOO_SMALL}. Received: 0",
        ),
        (
            prepare_crohme_argv("{dir}", "{tmp}/c.npz", "--image-size", 1, *QUIET),
            f"{TOO_SMALL}. Received: 1",
        ),
        (prepare_crohme_argv("{dir}", "{tmp}/c.npz", "--image-size", 17, *QUIET), "Received: 17"),
        (
            ["prepare", "synthetic", "--out", "{tmp}/c.npz", "--image-size", "1", "--per-class"]
            + ["1", "--no-progress"],
            "--image-size must be at least 18",
        ),
        (
            prepare_crohme_argv("{dir}", "{tmp}/c.npz", "--workers", 0),
            "--workers must be at least 1",
        ),
        (
            prepare_crohme_argv("{dir}", "{tmp}/c.npz", "--strict", *QUIET),
            "broken.inkml: not well-formed",
        ),
        (
            prepare_crohme_argv("{tmp}/empty", "{tmp}/c.npz", "--no-progress"),
            "no usable sample",
        ),
        (
            ["prepare", "synthetic", "--out", "{tmp}/s.npz", "--split", "test"],
            "--split must be one of",
        ),
        (["prepare"], "expected a source"),
        (["show", "{tmp}/missing.npz", "--out", "{tmp}/s.png"], "No prepared dataset"),
        (["show", "{tmp}/garbage.npz", "--out", "{tmp}/s.png"], "not a readable .npz"),
        (["show", "{tmp}/garbage.npz", "--out", "{tmp}/s.txt"], "--out must end with"),
        (
            ["show", "{tmp}/garbage.npz", "--out", "{tmp}/s.png", "--rows", "0"],
            "--rows must lie in",
        ),
    ],
)
def test_bad_input_is_one_line_and_status_2(argv, message, crohme_dir, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "garbage.npz").write_bytes(b"garbage")
    argv = [a.format(tmp=tmp_path, dir=crohme_dir) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c.npz").exists()


def test_image_size_floor_is_the_default_encoders_minimum():
    # prepare keeps the number as a constant, so that it starts without TensorFlow.
    from im2latex_encoder import SymbolEncoder
    from im2latex_encoder.cli.prepare import MINIMUM_IMAGE_SIDE

    assert MINIMUM_IMAGE_SIDE == SymbolEncoder().minimum_image_side()


def test_smallest_accepted_image_size_is_encodable(crohme_dir, tmp_path, capsys):
    from im2latex_encoder import SymbolEncoder
    from im2latex_encoder.cli.prepare import MINIMUM_IMAGE_SIDE

    out = tmp_path / "c.npz"
    assert (
        main(prepare_crohme_argv(crohme_dir, out, "--image-size", MINIMUM_IMAGE_SIDE, *QUIET)) == 0
    )
    images = load_prepared(out).images
    assert images.shape[1:] == (MINIMUM_IMAGE_SIDE, MINIMUM_IMAGE_SIDE)
    features = SymbolEncoder()(images[..., None].astype("float32") / 255.0)
    assert features.shape[:2] == (len(images), 1)  # one grid cell


def _dataset(tmp_path, n=7):
    rng = np.random.default_rng(0)
    dataset = PreparedDataset(
        rng.integers(0, 256, (n, 16, 16), dtype=np.uint8),
        (np.arange(n) % 4).astype(np.int32),
        ("\\alpha", "COMMA", "junk", "\\notacommand{"),
        {},
        "h",
    )
    path = tmp_path / "d.npz"
    save_prepared(path, dataset)
    return path


def test_show_writes_grid_atomically(tmp_path, capsys):
    path = _dataset(tmp_path)
    out = tmp_path / "sheet.png"
    assert main(["show", str(path), "--out", str(out), "--rows", "3", "--cols", "3"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz", "sheet.png"]
    assert "7 samples" in capsys.readouterr().out  # fewer images than cells
    first = out.read_bytes()
    assert (
        main(["show", str(path), "--out", str(out), "--rows", "2", "--cols", "2", "--seed", "3"])
        == 0
    )
    assert out.read_bytes() != first


def test_label_titles():
    assert label_title("\\alpha") == "$\\alpha$"
    assert label_title("COMMA") == "$,$" and label_title("\\lt") == "$<$"
    assert label_title("junk") == "junk"
    assert label_title("\\notacommand{") == "\\notacommand{"  # mathtext cannot parse it


@pytest.mark.slow
def test_console_entry_point_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "im2latex_encoder.cli"]
        + prepare_crohme_argv(tmp_path / "nope", tmp_path / "c.npz"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "im2latex-encoder prepare: error: expected a CROHME folder" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_prepare_synthetic(tmp_path, capsys):
    out = tmp_path / "s.npz"
    argv = ["prepare", "synthetic", "--out", str(out), "--per-class", "1", "--image-size", "18"]
    assert main([*argv, "--no-progress"]) == 0
    dataset = load_prepared(out)
    assert dataset.images.shape == (101, 18, 18)
    assert "wrote" in capsys.readouterr().out


def test_pretrain_refuses_an_eval_cache_of_another_image_size(crohme_dir, tmp_path, capsys):
    """`pretrain --eval FILE.npz` names both sizes instead of scoring images the model cannot
    take (the prepared cache keeps the size it was drawn at)."""
    wrong = tmp_path / "c24.npz"
    assert main(prepare_crohme_argv(crohme_dir, wrong, "--image-size", 24, *QUIET)) == 0
    capsys.readouterr()
    argv = ["pretrain", "--out", str(tmp_path / "run"), "--data", "synthetic", "--eval", str(wrong)]
    assert main([*argv, "--epochs", "1", "--steps-per-epoch", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "expected 32×32 images" in err and "Received: 24×24 images" in err
    assert "--image-size 32" in err
    assert not (tmp_path / "run" / "preset").exists()


def test_pretrain_validation_split_overrides_the_config(monkeypatch, tmp_path):
    """`--validation-split 0` is how a chosen recipe is refit on every training expression."""
    import im2latex_encoder.training as training

    seen = {}
    monkeypatch.setattr(training, "pretrain", lambda config, out, **kwargs: seen.update(c=config))
    argv = ["pretrain", "--config", "crohme", "--out", str(tmp_path / "run")]
    assert main([*argv, "--validation-split", "0"]) == 0
    assert seen["c"].validation_split == 0.0 and seen["c"].name == "crohme"


def test_pretrain_refuses_a_validation_split_outside_0_1(tmp_path, capsys):
    argv = ["pretrain", "--config", "crohme", "--out", str(tmp_path / "run")]
    assert main([*argv, "--validation-split", "1.5", "--no-progress"]) == 2
    assert "`validation_split` must be in [0, 1). Received: validation_split=1.5" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "run").exists()
