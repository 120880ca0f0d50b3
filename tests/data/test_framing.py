"""Tests for im2latex_encoder/data/framing.py: one crop/scale/pad for symbols and formulas.

Both callers are compared with the code they had before (kept here as references): the
symbol path (`fit_image`) gives the same pixels; the formula path (`load_im2latex_image`)
gives the same pixels unless it shrinks, where OpenCV's area averaging (exact pixel coverage)
replaces Pillow's box filter (pixel-centre sampling): the ink's place and amount stay the same,
its edge pixels shift by a few grey levels.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from im2latex_encoder.data.errors import DataError
from im2latex_encoder.data.framing import frame_ink
from im2latex_encoder.data.symbol_files import fit_image
from im2latex_encoder.formulas.im2latex100k import Im2LatexError, load_im2latex_image


def _fit_image_before(gray, image_size, margin=0.1):
    """`fit_image` as it was (cv2), without its checks."""
    ink = 1.0 - gray if np.median(gray) > 0.5 else gray
    ink = np.clip((ink - ink.min()) / max(float(ink.max() - ink.min()), 1e-6), 0.0, 1.0)
    rows, cols = np.nonzero(ink > 0.25)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    inner = max(1, int(round(image_size * (1 - 2 * margin))))
    scale = inner / max(crop.shape)
    height, width = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    resized = cv2.resize(
        crop, (width, height), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    out = np.zeros((image_size, image_size), np.float32)
    top, left = (image_size - height) // 2, (image_size - width) // 2
    out[top : top + height, left : left + width] = resized
    return np.clip(out, 0.0, 1.0)


def _load_im2latex_image_before(ink, height=64, max_width=512, margin=4):
    """`load_im2latex_image` as it was (Pillow), from the ink array."""
    rows, columns = np.nonzero(ink > 0.1)
    crop = ink[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
    scale = min(
        1.0, (height - 2 * margin) / crop.shape[0], (max_width - 2 * margin) / crop.shape[1]
    )
    if scale < 1.0:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        picture = Image.fromarray(np.ascontiguousarray(crop, np.float32))
        crop = np.asarray(picture.resize(size, Image.Resampling.BOX))
    image = np.zeros((height, max_width), np.float32)
    row = (height - crop.shape[0]) // 2
    image[row : row + crop.shape[0], margin : margin + crop.shape[1]] = np.clip(crop, 0.0, 1.0)
    return image


def _scribble(shape, seed, strokes=12, thickness=2):
    """Dark lines on light paper, float32 in [0, 1] (a page as a scanner gives it)."""
    rng = np.random.default_rng(seed)
    paper = np.ones(shape, np.float32)
    margin_y, margin_x = shape[0] // 6, shape[1] // 6
    for _ in range(strokes):
        points = [
            (
                int(rng.integers(margin_x, shape[1] - margin_x)),
                int(rng.integers(margin_y, shape[0] - margin_y)),
            )
            for _ in range(2)
        ]
        cv2.line(paper, points[0], points[1], 0.0, thickness, lineType=cv2.LINE_AA)
    return paper


@pytest.mark.parametrize("shape", [(20, 14), (40, 60), (90, 45), (300, 200), (33, 257)])
@pytest.mark.parametrize("image_size, margin", [(24, 0.1), (32, 0.1), (48, 0.05), (64, 0.2)])
def test_symbol_files_are_framed_exactly_as_before(shape, image_size, margin):
    gray = _scribble(shape, seed=sum(shape))
    expected = _fit_image_before(gray, image_size, margin)
    np.testing.assert_array_equal(fit_image(gray, image_size, margin=margin), expected)
    # Either polarity: light ink on a dark background gives the same image.
    np.testing.assert_array_equal(fit_image(1.0 - gray, image_size, margin=margin), expected)


def _save_png(path, ink):
    Image.fromarray(np.round((1.0 - ink) * 255).astype(np.uint8)).save(path)


@pytest.mark.parametrize("shape", [(20, 100), (50, 400), (56, 504)])
def test_formula_images_that_fit_are_framed_exactly_as_before(tmp_path, shape):
    ink = 1.0 - _scribble(shape, seed=shape[1])
    _save_png(tmp_path / "f.png", ink)
    ink = 1.0 - np.asarray(Image.open(tmp_path / "f.png").convert("L"), np.float32) / 255.0
    np.testing.assert_array_equal(
        load_im2latex_image(tmp_path / "f.png"), _load_im2latex_image_before(ink)
    )


@pytest.mark.parametrize("shape", [(57, 513), (100, 700), (150, 1200), (64, 2000)])
def test_formula_images_that_shrink_keep_their_ink_where_and_as_much_as_before(tmp_path, shape):
    ink = 1.0 - _scribble(shape, seed=shape[1], strokes=30)
    _save_png(tmp_path / "f.png", ink)
    ink = 1.0 - np.asarray(Image.open(tmp_path / "f.png").convert("L"), np.float32) / 255.0
    new, old = load_im2latex_image(tmp_path / "f.png"), _load_im2latex_image_before(ink)
    assert new.shape == old.shape == (64, 512) and new.dtype == np.float32

    def box(image):
        rows, columns = np.nonzero(image > 0.05)
        return rows.min(), rows.max(), columns.min(), columns.max()

    assert np.abs(np.subtract(box(new), box(old))).max() <= 1  # same place, within a pixel
    assert new.sum() == pytest.approx(old.sum(), rel=0.02)  # same amount of ink
    assert np.abs(new - old).mean() < 0.03  # only edge pixels differ


def test_frame_ink_scales_to_fit_the_box_and_places_the_crop():
    ink = np.zeros((30, 90), np.float32)
    ink[5:15, 10:70] = 1.0  # a 10×60 block
    centred = frame_ink(ink, (40, 40), (30, 30), threshold=0.5)
    rows, columns = np.nonzero(centred > 0.5)
    assert (columns.min(), columns.max() + 1) == (5, 35)  # 60 -> 30 wide, centred
    assert (rows.min(), rows.max() + 1) == (17, 22)  # 10 -> 5 tall, top (40 - 5) // 2
    left = frame_ink(ink, (40, 200), (30, 190), threshold=0.5, enlarge=False, left=3)
    rows, columns = np.nonzero(left > 0.5)
    assert (columns.min(), columns.max() + 1, rows.max() + 1 - rows.min()) == (3, 63, 10)
    enlarged = frame_ink(ink, (40, 200), (30, 190), threshold=0.5)
    assert np.count_nonzero(enlarged > 0.5) > 3 * np.count_nonzero(left > 0.5)


def test_frame_ink_blank_and_bad_box():
    assert frame_ink(np.full((8, 8), 0.2, np.float32), (8, 8), (6, 6), threshold=0.25) is None
    with pytest.raises(ValueError, match=r"fit in `shape` \(8, 8\). Received: box=\(9, 6\)"):
        frame_ink(np.ones((8, 8), np.float32), (8, 8), (9, 6), threshold=0.25)


def test_callers_report_blank_images_in_their_own_errors(tmp_path):
    with pytest.raises(DataError, match="blank image"):
        fit_image(np.ones((20, 20), np.float32), 32)
    _save_png(tmp_path / "blank.png", np.zeros((20, 40), np.float32))
    with pytest.raises(Im2LatexError, match="found a blank image"):
        load_im2latex_image(tmp_path / "blank.png")
