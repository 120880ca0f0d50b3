import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest

from im2latex_encoder.formulas.im2latex100k import (
    Im2LatexError,
    Im2LatexReport,
    find_im2latex_layout,
    load_im2latex_image,
    read_im2latex100k,
    read_im2latex_formulas,
)
from im2latex_encoder.formulas.render import render_formula

# Stray line breaks inside formulas 1 and 3, as in the original release: splitting on them
# (str.splitlines, universal newlines) would shift every later index.
FORMULAS = ["x^{2}", "\\frac{a}\r{b}", "\\sqrt{y}", "a\u2028+b", "\\alpha", "   "]


def _write_png(path, latex):
    plt.imsave(path, render_formula(latex, height=32, max_width=128, margin=2), cmap="gray_r")


def _original_fixture(root):
    (root / "im2latex_formulas.lst").write_bytes("\n".join(FORMULAS).encode() + b"\n")
    (root / "formula_images").mkdir()
    for name, index in (("img0", 0), ("img1", 1), ("img3", 3), ("img4", 4), ("img5", 5)):
        _write_png(
            root / "formula_images" / f"{name}.png",
            FORMULAS[index].replace("\r", "").replace("\u2028", "").strip() or "x",
        )
    rows = [
        "0 img0 basic",
        "1 img1 basic",
        "2 img2 basic",  # img2.png does not exist
        "3 img3 basic",
        "99 img4 basic",
        "five img4 basic",
        "",
        "4 img4 basic",
        "5 img5 basic",
    ]  # formula 5 is blank
    (root / "im2latex_train.lst").write_text("\n".join(rows) + "\n")
    (root / "im2latex_test.lst").write_text("4 img4 basic\n")
    return root


def _harvard_fixture(root):
    (root / "formulas.norm.lst").write_bytes("\n".join(FORMULAS[:5]).encode())  # no final \n
    (root / "images_processed").mkdir()
    for index in (0, 2, 4):
        _write_png(root / "images_processed" / f"h{index}.png", FORMULAS[index])
    (root / "train_filter.lst").write_text("h0.png 0\nh2.png 2\nh4.png 4\nh9.png 1\nh0.png 5\n")
    (root / "validate_filter.lst").write_text("h2.png 2\n")
    return root


def test_formulas_file_is_split_on_newline_only(tmp_path):
    _original_fixture(tmp_path)
    assert read_im2latex_formulas(tmp_path / "im2latex_formulas.lst") == [
        "x^{2}",
        "\\frac{a}\r{b}",
        "\\sqrt{y}",
        "a\u2028+b",
        "\\alpha",
        "",
    ]


def test_original_layout_pairs_and_skip_report(tmp_path):
    _original_fixture(tmp_path)
    report = Im2LatexReport()
    with pytest.warns(
        UserWarning,
        match="4 of 8 rows read; skipped 1 missing image, 1 formula "
        "index out of range, 1 empty formula, 1 malformed row",
    ):
        pairs = list(read_im2latex100k(tmp_path, "train", report=report))
    assert [(path.name, latex) for path, latex in pairs] == [
        ("img0.png", "x^{2}"),
        ("img1.png", "\\frac{a}\r{b}"),
        ("img3.png", "a\u2028+b"),
        ("img4.png", "\\alpha"),
    ]
    assert (
        report.rows,
        report.yielded,
        report.missing_images,
        report.bad_indices,
        report.empty_formulas,
        report.malformed_rows,
    ) == (8, 4, 1, 1, 1, 1)
    assert "img2.png" in report.examples["missing_images"][0]
    assert "99" in report.examples["bad_indices"][0]
    image = plt.imread(pairs[0][0])
    assert image.shape[:2] == (32, 128)


def test_original_layout_with_no_skips_warns_nothing(tmp_path):
    _original_fixture(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pairs = list(read_im2latex100k(tmp_path, "test"))
    assert [(path.name, latex) for path, latex in pairs] == [("img4.png", "\\alpha")]


def test_harvard_layout(tmp_path):
    _harvard_fixture(tmp_path)
    assert find_im2latex_layout(tmp_path)["layout"] == "harvard"
    report = Im2LatexReport()
    with pytest.warns(UserWarning, match="1 missing image, 1 formula index out of range"):
        pairs = list(read_im2latex100k(tmp_path, "train", report=report))
    assert [(path.name, latex) for path, latex in pairs] == [
        ("h0.png", "x^{2}"),
        ("h2.png", "\\sqrt{y}"),
        ("h4.png", "\\alpha"),
    ]
    assert (report.rows, report.yielded, report.skipped) == (5, 3, 2)
    assert [latex for _, latex in read_im2latex100k(tmp_path, "val")] == ["\\sqrt{y}"]


def test_strict_raises_on_the_first_unusable_row(tmp_path):
    _original_fixture(tmp_path)
    with pytest.raises(Im2LatexError, match="img2.png.*does not exist"):
        list(read_im2latex100k(tmp_path, "train", strict=True))


def test_missing_files_are_named(tmp_path):
    with pytest.raises(Im2LatexError, match="does not exist"):
        find_im2latex_layout(tmp_path / "nowhere")
    with pytest.raises(Im2LatexError, match="split file for split='train'.*im2latex_train.lst"):
        find_im2latex_layout(tmp_path)
    (tmp_path / "train_filter.lst").write_text("")
    with pytest.raises(Im2LatexError, match="formulas file.*formulas.norm.lst"):
        find_im2latex_layout(tmp_path)
    (tmp_path / "formulas.norm.lst").write_text("")
    with pytest.raises(Im2LatexError, match="image folder"):
        find_im2latex_layout(tmp_path)
    with pytest.raises(ValueError, match="Received: split='dev'"):
        find_im2latex_layout(tmp_path, "dev")


def test_load_image_inverts_crops_and_shrinks(tmp_path):
    path = tmp_path / "wide.png"
    paper = np.ones((100, 1200), np.float32)  # white paper, black ink, like the real images
    paper[30:70, 100:1100] = 0.0
    plt.imsave(path, paper, cmap="gray", vmin=0, vmax=1)
    image = load_im2latex_image(path, height=64, max_width=512, margin=4)
    assert image.shape == (64, 512) and image.dtype == np.float32
    rows, columns = np.nonzero(image > 0.5)
    assert columns.min() == 4 and columns.max() == 507  # 1000 px wide ink shrunk to 504
    assert 14 <= rows.max() - rows.min() + 1 <= 22  # 40 px tall ink shrunk by the same 0.504
    assert image[:, :4].max() == 0 and image[0].max() == 0


def test_load_image_rejects_blank_and_broken_files(tmp_path):
    blank = tmp_path / "blank.png"
    plt.imsave(blank, np.ones((10, 10)), cmap="gray", vmin=0, vmax=1)
    with pytest.raises(Im2LatexError, match="blank.png.*blank image"):
        load_im2latex_image(blank)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(Im2LatexError, match="broken.png.*readable PNG"):
        load_im2latex_image(broken)
