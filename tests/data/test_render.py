"""Tests for im2latex_encoder/data/render.py: ink range, centring, aspect, dots, sizes."""

from __future__ import annotations

import numpy as np
import pytest

from im2latex_encoder.data.render import RenderSettings, render_strokes, render_strokes_uint8


def _ink_box(image, threshold=0.5):
    rows, cols = np.nonzero(image > threshold)
    return rows.min(), rows.max(), cols.min(), cols.max()


def _centre_of_mass(image):
    rows, cols = np.indices(image.shape)
    total = image.sum()
    return (rows * image).sum() / total, (cols * image).sum() / total


BOX = [np.array([[0.0, 0.0], [40.0, 0.0], [40.0, 20.0], [0.0, 20.0], [0.0, 0.0]])]


def test_output_type_and_range():
    image = render_strokes(BOX, 64)
    assert image.shape == (64, 64) and image.dtype == np.float32
    assert image.min() == 0.0 and image.max() == 1.0
    assert np.isfinite(image).all()
    # anti-aliased: grey levels at the edges; without: only 0 and 1
    assert len(np.unique(image)) > 2
    assert set(np.unique(render_strokes(BOX, 64, antialias=False))) <= {0.0, 1.0}


def test_centred_and_aspect_kept():
    image = render_strokes(BOX, 100, margin=0.1)
    top, bottom, left, right = _ink_box(image)
    # the larger (x) extent fills the box inside the margins, the smaller keeps 2:1
    assert left >= 8 and right <= 91 and abs((left + right) / 2 - 49.5) <= 1
    assert abs((top + bottom) / 2 - 49.5) <= 1
    width, height = right - left, bottom - top
    assert width > 70
    assert abs(width / height - 2.0) < 0.25


def test_translation_and_scale_invariant():
    moved = [stroke * 3.0 + 1000.0 for stroke in BOX]
    np.testing.assert_array_equal(render_strokes_uint8(BOX, 48), render_strokes_uint8(moved, 48))


def test_non_square_size_keeps_aspect():
    image = render_strokes(BOX, (40, 120))
    assert image.shape == (40, 120)
    top, bottom, left, right = _ink_box(image)
    # height is the tight side here: a 2:1 box in a 3:1 image is limited by the height
    assert abs((right - left) / (bottom - top) - 2.0) < 0.3
    assert abs((left + right) / 2 - 59.5) <= 1


def test_single_point_is_a_centred_dot_of_line_width():
    image = render_strokes([np.array([[7.0, 3.0]])], 64, line_width=0.1)
    top, bottom, left, right = _ink_box(image)
    assert 4 <= bottom - top + 1 <= 8 and 4 <= right - left + 1 <= 8  # about 6.4 px wide
    row, col = _centre_of_mass(image)
    assert abs(row - 31.5) < 1 and abs(col - 31.5) < 1


def test_repeated_identical_points_are_a_dot():
    dot = render_strokes([np.array([[1.0, 1.0]])], 32)
    repeated = render_strokes([np.array([[1.0, 1.0]] * 5)], 32)
    np.testing.assert_array_equal(dot, repeated)


@pytest.mark.parametrize(
    "stroke, axis", [([[0, 5], [30, 5]], "horizontal"), ([[5, 0], [5, 30]], "vertical")]
)
def test_zero_width_or_height_stays_thin(stroke, axis):
    image = render_strokes([np.array(stroke, dtype=float)], 64, line_width=0.05)
    top, bottom, left, right = _ink_box(image)
    long_side, short_side = (
        (right - left, bottom - top) if axis == "horizontal" else (bottom - top, right - left)
    )
    assert long_side > 40  # scaled by its non-zero extent
    assert short_side <= 5  # not blown up: stays a line of the pen's width
    row, col = _centre_of_mass(image)
    assert abs(row - 31.5) < 1 and abs(col - 31.5) < 1


def test_line_width_is_relative_to_shorter_side():
    thin = render_strokes([np.array([[0.0, 0.0], [10.0, 0.0]])], 100, line_width=0.02)
    thick = render_strokes([np.array([[0.0, 0.0], [10.0, 0.0]])], 100, line_width=0.08)
    # pixels across the stroke in its middle column: about 2 and 8
    assert 1 <= (thin[:, 50] > 0.5).sum() <= 3
    assert 7 <= (thick[:, 50] > 0.5).sum() <= 9


def test_strokes_are_separate_pen_lifts():
    two = [np.array([[0.0, 0.0], [10.0, 0.0]]), np.array([[0.0, 10.0], [10.0, 10.0]])]
    image = render_strokes(two, 64)
    # the gap between the two strokes stays empty (no connecting segment)
    assert image[:, 31].max() > 0.5 and image[28:36, 31].max() == 0.0


def test_y_axis_points_down():
    # InkML's Y grows downwards, like image rows: the point with larger y is lower
    image = render_strokes([np.array([[0.0, 0.0], [0.0, 1.0]]), np.array([[10.0, 10.0]])], 64)
    row, col = _centre_of_mass(image[:, 40:])
    assert row > 32


@pytest.mark.parametrize(
    "strokes, kwargs, match",
    [
        ([], {}, "at least one stroke"),
        ([np.zeros((0, 2))], {}, "n >= 1"),
        ([np.zeros((3, 3))], {}, r"\(n, 2\)"),
        ([np.array([[0.0, np.nan]])], {}, "finite"),
        ([np.array([[0.0, 0.0], [np.inf, 1.0]])], {}, "finite"),
        ([np.array([[-1e308, 0.0], [1e308, 0.0]])], {}, "finite"),
        (BOX, {"image_size": 0}, "image_size"),
        (BOX, {"image_size": (32, 32, 3)}, "image_size"),
        (BOX, {"margin": 0.5}, "margin"),
        (BOX, {"line_width": 0.0}, "line_width"),
    ],
)
def test_invalid_input_raises_value_error(strokes, kwargs, match):
    with pytest.raises(ValueError, match=match):
        render_strokes(strokes, **kwargs)


def test_render_settings():
    settings = RenderSettings(image_size=(32, 48), margin=0.05, line_width=0.1)
    assert settings.to_dict() == {
        "image_size": [32, 48],
        "margin": 0.05,
        "line_width": 0.1,
        "antialias": True,
    }
    assert RenderSettings(**settings.to_dict()) == settings
    np.testing.assert_array_equal(
        settings.render(BOX), render_strokes(BOX, (32, 48), margin=0.05, line_width=0.1)
    )
    with pytest.raises(ValueError, match="margin"):
        RenderSettings(margin=-0.1)


def test_uint8_matches_float():
    as_uint8 = render_strokes_uint8(BOX, 64)
    assert as_uint8.dtype == np.uint8 and as_uint8.max() == 255
    np.testing.assert_allclose(render_strokes(BOX, 64), as_uint8 / 255.0, atol=1e-7)


def test_a_batch_renders_each_symbol_as_it_renders_alone():
    from im2latex_encoder.data.render import render_strokes_batch_uint8

    symbols = [
        [np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 0.0]])],  # a "^"
        [np.array([[0.0, 0.0], [3.0, 0.0]]), np.array([[1.5, 1.0], [1.5, 1.0]])],  # bar + dot
        [np.array([[5.0, 5.0]])],  # a lone dot
        [np.array([[0.0, 0.0], [0.0, 4.0]])],  # a "1": zero width
    ]
    widths = [0.05, 0.1, 0.04, 0.2]
    points = np.concatenate([np.concatenate(strokes) for strokes in symbols])
    sizes = [[len(stroke) for stroke in strokes] for strokes in symbols]
    batch = render_strokes_batch_uint8(points, sizes, (24, 32), margin=0.05, line_widths=widths)
    for image, strokes, width in zip(batch, symbols, widths):
        alone = render_strokes_uint8(strokes, (24, 32), margin=0.05, line_width=width)
        np.testing.assert_array_equal(image, alone)
        assert image.max() > 200  # ink in every image (a small anti-aliased dot stays below 255)


def test_frames_draw_a_symbol_inside_a_larger_box():
    from im2latex_encoder.data.render import render_strokes_batch_uint8

    points = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 1.0]])
    images = render_strokes_batch_uint8(
        points, [[2], [2]], (40, 40), margin=0.0, line_widths=[0.05, 0.05], frames=[0.0, 2.0]
    )
    heights = [int((image > 127).any(axis=1).sum()) for image in images]
    # Frame 2 for an extent of 1: half as tall, still centred.
    assert abs(heights[1] / heights[0] - 0.5) < 0.1
    rows = np.nonzero((images[1] > 127).any(axis=1))[0]
    assert abs((rows.min() + rows.max()) / 2 - 19.5) <= 1
    # A frame smaller than the symbol changes nothing.
    same = render_strokes_batch_uint8(
        points[:2], [[2]], (40, 40), margin=0.0, line_widths=[0.05], frames=[0.5]
    )
    np.testing.assert_array_equal(same[0], images[0])
