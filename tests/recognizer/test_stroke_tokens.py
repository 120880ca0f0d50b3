"""Stroke tokens of a small fixture expression: order, views, geometry, scale invariance.

The fixture is written left to right: an x (two strokes), a plus (two strokes), a 1 and a
short raised stroke, each a straight line, in file units where a symbol is about 12 tall.
"""

from __future__ import annotations

import numpy as np
import pytest

from im2latex_encoder.recognizer.stroke_tokens import (
    GEOMETRY_COLUMNS,
    StrokeDrawing,
    draw_stroke_views,
    normalize_expression,
    stroke_geometry,
)

COLUMN = {name: index for index, name in enumerate(GEOMETRY_COLUMNS)}


def _line(start, end, points=8):
    return np.linspace(start, end, points)


# x (two strokes), a plus (two strokes), a 1, and a short raised stroke: six strokes in order.
EXPRESSION = [
    _line([0, 0], [10, 12]),
    _line([10, 0], [0, 12]),
    _line([16, 6], [26, 6]),
    _line([21, 1], [21, 11]),
    _line([32, 0], [32, 12]),
    _line([38, -8], [42, -8]),
]


@pytest.fixture(scope="module")
def views():
    return draw_stroke_views(EXPRESSION, StrokeDrawing())


def test_one_token_per_stroke_in_writing_order(views):
    geometry = stroke_geometry(EXPRESSION)
    assert geometry.shape == (6, len(GEOMETRY_COLUMNS)) and geometry.dtype == np.float32
    assert views.shape == (6, 3, 48, 48) and views.dtype == np.uint8
    # Rows follow the strokes as written: the left edges of x, plus, 1 and the raised stroke.
    left = geometry[:, COLUMN["left"]]
    assert left[0] == left[1] == 0.0
    assert left[0] < left[2] < left[3] < left[4] < left[5]
    # Reversing the strokes reverses the rows of the boxes (the gaps are the pen's, so differ).
    reversed_geometry = stroke_geometry(EXPRESSION[::-1])
    np.testing.assert_allclose(
        reversed_geometry[::-1, : COLUMN["centre_y_from_baseline"] + 1],
        geometry[:, : COLUMN["centre_y_from_baseline"] + 1],
        atol=1e-6,
    )


def test_views_hold_the_strokes_they_name(views):
    alone, previous, following = 0, 1, 2
    # The first stroke has no stroke before it, the last none after it: alone in both.
    np.testing.assert_array_equal(views[0, previous], views[0, alone])
    np.testing.assert_array_equal(views[-1, following], views[-1, alone])
    # Stroke 1 with the one before it is stroke 0 with the one after it: the whole x.
    np.testing.assert_array_equal(views[1, previous], views[0, following])
    for index in range(1, 6):
        assert views[index, previous].sum() > views[index, alone].sum()
    # Each view has ink, 255 at its strongest.
    assert (views.reshape(-1, 48 * 48).max(axis=1) == 255).all()
    # The window view holds the neighbours the stroke alone does not.
    window = draw_stroke_views(EXPRESSION, StrokeDrawing(views=("alone", "window")))
    assert window.shape == (6, 2, 48, 48)
    assert window[2, 1].sum() > window[2, 0].sum()


def test_geometry_columns_say_where_each_stroke_is():
    geometry = stroke_geometry(EXPRESSION)
    row = {name: geometry[:, index] for name, index in COLUMN.items()}
    # The first stroke has no gap; the minus starts to the right of where the x ended.
    assert row["gap_x"][0] == row["gap_y"][0] == row["gap_distance"][0] == 0.0
    assert row["gap_x"][2] > 0
    # The plus's vertical starts left of and above the minus's end.
    assert row["gap_x"][3] < 0 and row["gap_y"][3] < 0
    np.testing.assert_allclose(row["gap_distance"], np.hypot(row["gap_x"], row["gap_y"]), rtol=1e-6)
    # A horizontal stroke has no height, a vertical one no width.
    assert row["height"][2] == 0.0 and row["width"][2] > 0
    assert row["width"][3] == 0.0 and row["height"][3] > 0
    # The raised stroke sits above the baseline the others share.
    assert row["centre_y_from_baseline"][5] > row["centre_y_from_baseline"][:5].max() + 0.5
    # Eight points each; the longer strokes have the longer pen paths.
    np.testing.assert_allclose(row["points_log"], np.log1p(8), rtol=1e-6)
    assert row["length_log"][0] > row["length_log"][2] > row["length_log"][5]
    # In typical-symbol units: the x's strokes are about one symbol tall.
    assert 0.5 < row["height"][0] < 1.5


def test_scaled_and_shifted_ink_gives_the_same_tokens(views):
    moved = [stroke * 10 + [100.0, -50.0] for stroke in EXPRESSION]
    np.testing.assert_allclose(stroke_geometry(moved), stroke_geometry(EXPRESSION), atol=1e-5)
    np.testing.assert_array_equal(draw_stroke_views(moved, StrokeDrawing()), views)
    small = [stroke * 0.01 for stroke in EXPRESSION]
    np.testing.assert_allclose(stroke_geometry(small), stroke_geometry(EXPRESSION), atol=1e-5)


def test_bad_expressions_are_refused_saying_why():
    nan = [EXPRESSION[0], np.array([[0.0, np.nan], [1.0, 1.0]])]
    with pytest.raises(ValueError, match="must be finite. Received NaN or infinity"):
        stroke_geometry(nan)
    with pytest.raises(ValueError, match="at least one stroke with a point. Received none"):
        normalize_expression([])
    with pytest.raises(ValueError, match="at least one stroke with a point"):
        draw_stroke_views([np.zeros((0, 2))], StrokeDrawing())
    with pytest.raises(ValueError, match=r"\(n, 2\) array of X, Y. Received: shape \(4, 3\)"):
        stroke_geometry([np.zeros((4, 3))])
    # Empty strokes are dropped, not counted as tokens.
    assert len(normalize_expression([np.zeros((0, 2)), EXPRESSION[0]])) == 1


def test_slanted_shears_each_token_keeping_its_form_and_refuses_bad_input():
    from im2latex_encoder.recognizer.stroke_tokens import slanted

    stroke = np.array([[1.0, 0.0], [1.0, 4.0]])
    component = [np.array([[0.0, 2.0]]), np.array([[0.0, 2.0], [2.0, 2.0]])]
    (out,) = slanted([[stroke, component]], -0.5)
    np.testing.assert_allclose(out[0], [[1.0, 0.0], [-1.0, 4.0]])
    assert isinstance(out[1], list) and len(out[1]) == 2
    np.testing.assert_allclose(out[1][1], [[-1.0, 2.0], [1.0, 2.0]])
    np.testing.assert_allclose(stroke, [[1.0, 0.0], [1.0, 4.0]])  # the input is not changed
    for bad in (float("nan"), True, "0.1"):
        with pytest.raises(ValueError, match="`slant` must be a finite number"):
            slanted([[stroke]], bad)
    with pytest.raises(ValueError, match=r"\(n, 2\) array of X, Y. Received: shape \(2, 3\)"):
        slanted([[np.zeros((2, 3))]], 0.1)
