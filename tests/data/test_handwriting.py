"""Tests for im2latex_encoder/data/handwriting.py: one glyph -> one hand-drawn-looking image."""

from __future__ import annotations

import numpy as np
import pytest

from im2latex_encoder.data.glyphs import glyph_table
from im2latex_encoder.data.handwriting import render_glyph
from im2latex_encoder.data.render import render_strokes_uint8


def _clean(symbol, layout="baseline", ink="pen", size=(64, 64), font="cm"):
    glyph = glyph_table(font)[symbol][0]
    return render_glyph(
        glyph, size, np.random.default_rng(0), layout=layout, ink=ink, distortion=0.0
    )


def _ink_rows(image):
    rows = np.nonzero(image.max(axis=1) > 127)[0]
    return rows.min(), rows.max()


def test_fit_pen_is_the_inkml_renderer():
    glyph = glyph_table("stix")["\\theta"][0]
    image = render_glyph(glyph, (48, 48), np.random.default_rng(0), distortion=0.0)
    strokes = [s * [1.0, -1.0] for s in glyph.strokes]  # em y-up -> InkML y-down
    np.testing.assert_array_equal(image, render_strokes_uint8(strokes, 48))


@pytest.mark.parametrize(
    "lower,upper", [("c", "C"), ("s", "S"), ("v", "V"), ("o", "0"), ("x", "X")]
)
def test_baseline_layout_keeps_case(lower, upper):
    top_lower, bottom_lower = _ink_rows(_clean(lower))
    top_upper, bottom_upper = _ink_rows(_clean(upper))
    assert abs(bottom_lower - bottom_upper) <= 2  # same baseline
    assert top_upper < top_lower - 5  # the capital is taller


def test_baseline_layout_keeps_dot_small_and_low():
    dot, letter_o = _clean("."), _clean("o")
    assert (dot > 127).sum() * 4 < (letter_o > 127).sum()
    assert _ink_rows(dot)[0] > _ink_rows(letter_o)[0]


def test_baseline_layout_shrinks_display_size_operators_into_the_image():
    image = _clean("\\int")  # cm draws it display-size, over 2 em tall
    top, bottom = _ink_rows(image)
    assert top > 0 and bottom < image.shape[0] - 1


@pytest.mark.parametrize("layout", ["fit", "baseline"])
@pytest.mark.parametrize("ink", ["pen", "font"])
def test_non_square_sizes_and_ink_range(layout, ink):
    image = _clean("\\sum", layout=layout, ink=ink, size=(24, 40))
    assert image.shape == (24, 40) and image.dtype == np.uint8
    assert image.max() > 127 and (image > 0).mean() < 0.6


def test_pen_has_constant_width_unlike_font():
    # The filled cm glyph has thick/thin contrast; the pen trace of the same glyph does not
    # depend on the font's stem weight, so a bold-ish "-" and a thin "/" get one pen width.
    pen_dash = (_clean("-", layout="fit") > 127).sum(axis=0)
    pen_dash = pen_dash[pen_dash > 0]
    assert np.ptp(pen_dash[2:-2]) <= 1


def test_distortion_changes_the_image_and_bad_options_fail():
    glyph = glyph_table("cm")["a"][0]
    plain = render_glyph(glyph, (32, 32), np.random.default_rng(0), distortion=0.0)
    warped = render_glyph(glyph, (32, 32), np.random.default_rng(0), distortion=1.0)
    assert np.abs(plain.astype(int) - warped).mean() > 5
    with pytest.raises(ValueError, match="Received: layout='centre'"):
        render_glyph(glyph, (32, 32), np.random.default_rng(0), layout="centre")
    with pytest.raises(ValueError, match="Received: ink='ink'"):
        render_glyph(glyph, (32, 32), np.random.default_rng(0), ink="ink")
