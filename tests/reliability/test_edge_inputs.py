"""Wrong inputs at the edges: the command line and `SymbolEncoder` say what was expected and
what was received; the command line answers with one stderr line and exit status 2."""

import numpy as np
import pytest
from PIL import Image

from im2latex_encoder import SymbolEncoder
from im2latex_encoder.cli import main
from im2latex_encoder.data.cache import PreparedDataset, save_prepared
from inkml_fixtures import build_inkml
from reliability_helpers import save_tiny_preset


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A preset and one of each hostile input, made once."""
    root = tmp_path_factory.mktemp("edge")
    save_tiny_preset(root / "preset")
    paper = np.full((40, 30), 255, np.uint8)
    paper[5:35, 14:17] = 0
    Image.fromarray(paper).save(root / "good.png")
    (root / "good.inkml").write_bytes(build_inkml([[(0, 0), (10, 10), (20, 0)]], ui="a_1"))
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(root / "one_pixel.png")
    wide = np.full((8, 100_000), 255, np.uint8)
    wide[2:6, 10:90_000] = 0
    Image.fromarray(wide).save(root / "wide.png")
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(root / "blank.png")
    (root / "text.png").write_text("not an image")
    (root / "notes.txt").write_text("hello")
    (root / "empty.inkml").write_bytes(b"")
    (root / "folder.png").mkdir()
    np.savez(root / "pickled.npz", images=np.array([{"a": 1}], dtype=object))
    np.savez(root / "foreign.npz", images=np.zeros((2, 32, 32), np.float64))
    ink = np.zeros((2, 32, 32), np.uint8)
    ink[:, 8:24, 15:17] = 255
    save_prepared(
        root / "one_pixel.npz",
        PreparedDataset(
            np.full((2, 1, 1), 255, np.uint8), np.array([0, 1], np.int32), ("x", "y"), {}, "h"
        ),
    )
    save_prepared(
        root / "empty.npz",
        PreparedDataset(np.zeros((0, 32, 32), np.uint8), np.zeros(0, np.int32), ("x",), {}, "h"),
    )
    (root / "no_inkml").mkdir()
    (root / "no_inkml" / "readme.txt").write_text("nothing here")
    return root


CLI_CASES = [
    # (argv, what the message must say) — {r} is the fixture folder
    (
        ["evaluate", "--preset", "{r}/preset", "--data", "{r}/one_pixel.npz"],
        # The preset's input size is checked first (nothing is run through the model).
        "Received: 1×1 images",
    ),
    (
        ["evaluate", "--preset", "{r}/preset", "--data", "{r}/empty.npz"],
        "no usable samples to evaluate",
    ),
    (["evaluate", "--preset", "{r}/preset", "--data", "{r}/pickled.npz"], "missing array(s)"),
    (["evaluate", "--preset", "{r}/preset", "--data", "{r}/good.png"], "Received: '{r}/good.png'"),
    (
        ["evaluate", "--preset", "{r}/preset", "--data", "crohme:{r}/no_inkml", "--no-progress"],
        "no usable sample",
    ),
    (["evaluate", "--preset", "{r}/notes.txt"], "not a preset directory"),
    (["show", "{r}/pickled.npz", "--out", "{r}/s.png"], "Received: ['images']"),
    (["show", "{r}/foreign.npz", "--out", "{r}/s.png"], "missing array(s)"),
    (["show", "{r}/good.png", "--out", "{r}/s.png"], "not a readable .npz file"),
    (["show", "{r}/empty.npz", "--out", "{r}/s.png"], "holds no images"),
    (["show", "{r}/empty.npz", "--out", "{r}/s.txt"], "Received: '{r}/s.txt'"),
    (["show", "{r}/missing.npz", "--out", "{r}/s.png"], "No prepared dataset at"),
    (
        ["prepare", "crohme", "{r}/no_inkml", "--out", "{r}/o.npz", "--no-progress"],
        "no usable sample",
    ),
    (
        ["prepare", "crohme", "{r}/good.png", "--out", "{r}/o.npz"],
        "Received: '{r}/good.png' (a file)",
    ),
    (
        ["prepare", "synthetic", "--out", "{r}/o.npz", "--image-size", "100000"],
        "Received: image_size=100000",
    ),
    (["prepare", "synthetic", "--out", "{r}/o.npz", "--per-class", "0"], "Received: 0"),
    (["prepare", "synthetic", "--out", "{r}/o.png"], "Received: '{r}/o.png'"),
    (["predict", "--preset", "{r}/preset", "--top-k", "0", "{r}/good.png"], "Received: 0"),
    (["predict", "--preset", "{r}/good.png", "{r}/good.png"], "not a preset directory"),
    (
        ["export", "--preset", "{r}/good.png", "--format", "onnx", "--out", "{r}/e.onnx"],
        "not a preset directory",
    ),
    (
        ["export", "--preset", "{r}/preset", "--format", "pickle", "--out", "{r}/e.pkl"],
        "Received: --format pickle",
    ),
]


@pytest.mark.parametrize(
    "argv, message", CLI_CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CLI_CASES]
)
def test_the_command_line_refuses_bad_input_in_one_line(files, capsys, argv, message):
    argv = [part.format(r=files) for part in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1:]  # a progress bar may come first
    assert len(err) == 1 and err[0].startswith(f"im2latex-encoder {argv[0]}: error: ")
    assert message.format(r=files) in err[0] and "Traceback" not in err[0]


def test_predict_prints_the_good_files_and_lists_the_bad_ones_with_reasons(files, capsys):
    bad = {
        "one_pixel.png": "image is 1×1; at least 8 pixels a side are needed",
        "wide.png": "image is 100000×8 (800,000 pixels); at most 50,000,000 pixels and 10,000 a side",
        "blank.png": "blank image: no ink found",
        "text.png": "not a readable image (UnidentifiedImageError",
        "notes.txt": "expected an .inkml file or an image (.png, .jpg",
        "empty.inkml": "empty file: expected an <ink> XML document",
        "folder.png": "no such file",
        "missing.inkml": "no such file",
    }
    good = ["good.png", "good.inkml"]
    names = [good[0], *list(bad)[:4], good[1], *list(bad)[4:]]
    status = main(
        [
            "predict",
            "--preset",
            str(files / "preset"),
            "--top-k",
            "2",
            *(str(files / n) for n in names),
        ]
    )
    captured = capsys.readouterr()
    assert status == 2
    printed = captured.out.splitlines()
    assert [line.split("\t")[0] for line in printed] == [str(files / n) for n in good]
    assert all(len(line.split("\t")) == 3 for line in printed)
    for name, reason in bad.items():
        line = next(line for line in captured.err.splitlines() if f"/{name}:" in line)
        assert line.startswith("im2latex-encoder predict: skipped ") and reason in line, line
    assert (
        f"{len(bad)} of {len(names)} files skipped" in captured.err
        and "Traceback" not in captured.err
    )


ENCODER_CASES = [
    (
        np.zeros((32, 32), np.float32),
        "expects images of shape (batch, height, width, 1). Received: images.shape=(32, 32)",
    ),
    (np.zeros((1, 32, 32), np.float32), "Add the channel axis"),
    (np.zeros((1, 1, 32, 32, 1), np.float32), "Received: images.shape=(1, 1, 32, 32, 1)"),
    (
        np.zeros((1, 32, 32, 3), np.float32),
        "expects 1 channel(s) (ink 1.0 on background 0.0). Received: images.shape=(1, 32, 32, 3)",
    ),
    (
        np.zeros((1, 32, 32, 1), np.uint8),
        "expects float images with ink 1.0 on background 0.0. Received: dtype=uint8",
    ),
    (np.zeros((1, 32, 32, 1), np.int32), "Received: dtype=int32"),
    (np.zeros((1, 32, 32, 1), bool), "Received: dtype=bool"),
    (np.zeros((0, 32, 32, 1), np.float32), "empty batch. Received: images.shape=(0, 32, 32, 1)"),
    (np.zeros((1, 1, 1, 1), np.float32), "at least 18×18 pixels for this encoder"),
    (
        np.zeros((1, 32, 100_000, 1), np.float32),
        "at most 8192 pixels high or wide (`max_image_side`). Received: width=100000",
    ),
]


@pytest.mark.parametrize(
    "images, message", ENCODER_CASES, ids=[f"{a.shape}-{a.dtype}" for a, _ in ENCODER_CASES]
)
def test_symbol_encoder_refuses_wrong_images(images, message):
    encoder = SymbolEncoder(filters=(8, 16, 16))
    with pytest.raises(ValueError) as error:
        encoder(images)
    assert message in str(error.value)
