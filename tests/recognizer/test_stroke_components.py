"""Images read by their ink's components give the tokens of the ink itself.

A fixture expression whose strokes touch nowhere (a 1, a minus, a 0, a 7 and a slash, written
left to right) is drawn into an image with OpenCV's thick anti-aliased lines; its connected
components are then the strokes. The tokens read from the image must match the ink's: the
same count and order, the same boxes in typical-symbol units, and the pretrained classifier
reading each stroke alone as the same symbol.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from im2latex_encoder.recognizer.stroke_components import image_tokens
from im2latex_encoder.recognizer.stroke_tokens import GEOMETRY_COLUMNS, stroke_geometry

_CIRCLE = np.linspace(0, 2 * np.pi, 40)
INK = [
    np.stack([np.full(12, 20.0), np.linspace(20, 60, 12)], axis=1),  # 1
    np.stack([np.linspace(45, 85, 12), np.full(12, 40.0)], axis=1),  # -
    np.stack([115 + 15 * np.cos(_CIRCLE), 40 + 20 * np.sin(_CIRCLE)], axis=1),  # 0
    np.array([[150.0, 20.0], [180.0, 20.0], [160.0, 60.0]]),  # 7
    np.stack([np.linspace(200, 240, 12), np.linspace(60, 20, 12)], axis=1),  # /
]
# The box and the height above the baseline: what a component says of where its stroke is.
BOX = [GEOMETRY_COLUMNS.index(name) for name in GEOMETRY_COLUMNS[:7]]


def _drawn(strokes, shape=(80, 260), scale=1.0, thickness=3):
    image = np.zeros((int(shape[0] * scale), int(shape[1] * scale)), np.uint8)
    for stroke in strokes:
        points = np.rint(stroke * scale).astype(np.int32)
        cv2.polylines(image, [points], False, 255, thickness, cv2.LINE_AA)
    return image


def test_components_of_strokes_that_never_touch_are_the_strokes_in_order():
    tokens = image_tokens(_drawn(INK))
    assert len(tokens) == len(INK)
    lefts = [np.concatenate(token)[:, 0].min() for token in tokens]
    np.testing.assert_allclose(lefts, [stroke[:, 0].min() for stroke in INK], atol=2.0)
    np.testing.assert_allclose(
        stroke_geometry(tokens)[:, BOX], stroke_geometry(INK)[:, BOX], atol=0.15
    )


def test_an_image_reads_the_same_at_any_scale():
    small = stroke_geometry(image_tokens(_drawn(INK)))
    large = stroke_geometry(image_tokens(_drawn(INK, scale=2.5, thickness=6)))
    np.testing.assert_allclose(large[:, BOX], small[:, BOX], atol=0.1)


@pytest.mark.slow
def test_the_classifier_reads_each_component_as_the_stroke_it_is():
    from im2latex_encoder import SymbolClassifier
    from im2latex_encoder.recognizer.stroke_features import StrokeFeaturizer
    from im2latex_encoder.recognizer.stroke_tokens import StrokeDrawing

    classifier = SymbolClassifier.from_preset("crohme101")
    featurizer = StrokeFeaturizer(
        classifier.encoder, classifier.head, StrokeDrawing(views=("alone",))
    )
    hidden = classifier.head.hidden_units
    from_image = featurizer(image_tokens(_drawn(INK)))[:, hidden:].argmax(axis=1)
    from_ink = featurizer(INK)[:, hidden:].argmax(axis=1)
    read = [classifier.labels[i] for i in from_ink]
    assert [classifier.labels[i] for i in from_image] == read
    assert read[:4] == ["1", "-", "0", "7"]


def test_an_image_without_ink_is_refused():
    with pytest.raises(ValueError, match="no ink to read"):
        image_tokens(np.zeros((20, 30), np.uint8))
    with pytest.raises(ValueError, match=r"uint8 \(H, W\).*Received: float32 of shape \(4, 4\)"):
        image_tokens(np.zeros((4, 4), np.float32))


def test_each_component_is_owned_by_the_stroke_that_drew_most_of_it():
    from im2latex_encoder.recognizer.stroke_components import (
        component_owners,
        draw_expression_image,
    )

    # written right to left, so token order (left to right) is not stroke order; then a long
    # bar crossed by a short one: one component, owned by the long bar (most of its ink)
    crossing = [
        np.stack([np.linspace(300, 360, 30), np.full(30, 40.0)], axis=1),
        np.stack([np.full(6, 330.0), np.linspace(35, 45, 6)], axis=1),
    ]
    strokes = INK[::-1] + crossing
    image, owners = draw_expression_image(strokes, 40, owners=True)
    assert owners.shape == image.shape and owners.dtype == np.uint16
    assert set(np.unique(owners).tolist()) == set(range(len(strokes) + 1))
    assert ((owners > 0) <= (image > 0)).all()  # ownership only where there is ink
    found = component_owners(image, owners)
    assert len(found) == len(image_tokens(image)) == len(INK) + 1
    assert found.tolist() == [4, 3, 2, 1, 0, 5]
    # a component no stroke drew (ink added after drawing) has no owner
    image[2:6, 2:6] = 255
    assert component_owners(image, owners).tolist() == [-1, 4, 3, 2, 1, 0, 5]
    with pytest.raises(ValueError, match=r"of one shape. Received: \(80, 260\) and \(80, 259\)"):
        component_owners(np.zeros((80, 260), np.uint8), np.zeros((80, 259), np.uint16))


# A minus whose right end runs into the middle of a 1 (a T-junction: two symbols that touch),
# and a plus: two strokes crossing.
TOUCHING = [
    np.stack([np.linspace(20, 60, 12), np.full(12, 40.0)], axis=1),  # -
    np.stack([np.full(12, 60.0), np.linspace(20, 60, 12)], axis=1),  # 1, touched at its middle
]
PLUS = [
    np.stack([np.linspace(20, 60, 12), np.full(12, 40.0)], axis=1),
    np.stack([np.full(12, 40.0), np.linspace(20, 60, 12)], axis=1),
]


def test_symbols_that_touch_are_cut_apart_where_their_lines_meet():
    image = _drawn(TOUCHING, shape=(80, 100))
    assert len(image_tokens(image)) == 1
    tokens = image_tokens(image, split_junctions=True)
    assert len(tokens) == 2
    # each piece is one stroke, whole: its box is the stroke's
    np.testing.assert_allclose(
        stroke_geometry(tokens)[:, BOX], stroke_geometry(TOUCHING)[:, BOX], atol=0.15
    )


def test_a_line_runs_straight_through_a_crossing_and_a_loop_stays_whole():
    image = _drawn(PLUS, shape=(80, 100))
    tokens = image_tokens(image, split_junctions=True)
    assert len(tokens) == 2 and len(image_tokens(image)) == 1
    # each half of the plus keeps both arms: the whole bar, the whole stem
    boxes = stroke_geometry(tokens)[:, BOX]
    np.testing.assert_allclose(boxes, stroke_geometry(PLUS)[:, BOX], atol=0.15)
    # a bar through a circle crosses it twice: cutting either crossing alone separates
    # nothing (the other still holds them together), so it stays one token
    theta = [
        np.stack([50 + 15 * np.cos(_CIRCLE), 40 + 15 * np.sin(_CIRCLE)], axis=1),
        np.stack([np.linspace(25, 75, 12), np.full(12, 40.0)], axis=1),
    ]
    assert len(image_tokens(_drawn(theta, shape=(80, 100)), split_junctions=True)) == 1


def test_each_piece_is_owned_by_the_stroke_that_drew_it():
    from im2latex_encoder.recognizer.stroke_components import (
        component_owners,
        draw_expression_image,
    )

    image, owners = draw_expression_image(TOUCHING[::-1], 40, owners=True)
    pieces = component_owners(image, owners, split_junctions=True)
    assert pieces.tolist() == [1, 0]  # the minus first, then the 1
    assert len(component_owners(image, owners)) == 1  # whole, one component


# x + 1 over 2, then "= y": a fraction (numerator, bar, denominator written in that order)
# followed by strokes beside it, none touching.
FRACTION = [
    np.array([[30.0, 10.0], [40.0, 30.0]]),  # x, one stroke
    np.array([[40.0, 10.0], [30.0, 30.0]]),  # x, the other
    np.stack([np.full(8, 60.0), np.linspace(10, 30, 8)], axis=1),  # 1
    np.stack([np.linspace(20, 80, 12), np.full(12, 42.0)], axis=1),  # the bar
    np.array([[42.0, 55.0], [55.0, 55.0], [42.0, 75.0], [58.0, 75.0]]),  # 2 (a Z)
    np.stack([np.linspace(100, 120, 8), np.full(8, 36.0)], axis=1),  # = upper
    np.stack([np.linspace(100, 120, 8), np.full(8, 48.0)], axis=1),  # = lower
    np.stack([np.full(8, 150.0), np.linspace(30, 60, 8)], axis=1),  # y, as a line
]


def test_the_layout_order_puts_a_bar_before_its_numerator_and_denominator():
    from im2latex_encoder.recognizer.stroke_components import layout_order

    def box(stroke):
        return [*stroke.min(axis=0), *stroke.max(axis=0)]

    # the bar first, the numerator (its two tokens left to right), the denominator, then
    # what follows the fraction, left to right
    boxes = [box(stroke) for stroke in FRACTION]
    left_to_right = [3, 0, 1, 4, 2, 5, 6, 7]  # by left edge
    order = layout_order([boxes[i] for i in left_to_right])
    assert [left_to_right[i] for i in order] == [3, 0, 1, 2, 4, 5, 6, 7]
    # a sum's sign (not flat) takes what lies below it (its lower limit) before what lies above
    sigma, below, above, after = [0, 10, 20, 40], [2, 44, 18, 52], [4, -12, 16, -2], [30, 5, 36, 35]
    assert layout_order([sigma, below, above, after]) == [0, 1, 2, 3]
    assert layout_order([below, sigma, above, after]) == [1, 0, 2, 3]
    # a fraction inside a numerator orders the same way, recursively
    inner = [[0, 0, 6, 6], [0, 8, 6, 9], [0, 11, 6, 17]]  # a/b stacked: a, bar, b
    outer_bar, denominator = [-4, 20, 10, 21], [0, 24, 6, 30]
    assert layout_order([outer_bar, *inner, denominator]) == [0, 2, 1, 3, 4]
    assert layout_order([]) == [] and layout_order([[0, 0, 1, 1]]) == [0]


def test_ink_in_layout_order_comes_as_an_image_of_it_would():
    from im2latex_encoder.recognizer.stroke_components import (
        component_owners,
        draw_expression_image,
        stroke_layout_order,
    )

    # the bar, the numerator's x (both strokes) and 1, the denominator, then "= y"
    assert stroke_layout_order(FRACTION) == [3, 0, 1, 2, 4, 5, 6, 7]
    # an image of the same ink gives its tokens in that order (the x's strokes are one token)
    image, owners = draw_expression_image(FRACTION, 40, owners=True)
    assert component_owners(image, owners, order="layout").tolist() == [3, 1, 2, 4, 5, 6, 7]
    # side by side, or fewer than three strokes: left to right, then top to bottom
    equals = [FRACTION[6], FRACTION[5]]
    assert stroke_layout_order(equals) == [1, 0]
    # reversed: the same order, ties (the x's two strokes share a box) kept as given
    assert stroke_layout_order(FRACTION[::-1]) == [4, 6, 7, 5, 3, 2, 1, 0]
    assert stroke_layout_order([]) == []


def test_image_tokens_and_their_owners_follow_the_order_asked_for():
    from im2latex_encoder.recognizer.stroke_components import (
        component_owners,
        draw_expression_image,
    )

    image, owners = draw_expression_image(FRACTION, 40, owners=True)
    left_to_right = image_tokens(image)
    layout = image_tokens(image, order="layout")
    assert len(layout) == len(left_to_right) == len(FRACTION) - 1  # the x's strokes cross
    key = [sorted(np.concatenate(t)[:, 0].round(3)) for t in left_to_right]
    assert sorted(map(tuple, key)) == sorted(
        tuple(sorted(np.concatenate(t)[:, 0].round(3))) for t in layout
    )
    # ... in another order: the bar, the flattest token, first; on the left, the numerator's
    first = np.concatenate(layout[0])
    assert np.ptp(first[:, 0]) > 5 * np.ptp(first[:, 1])
    # the owners follow the same order, whole components or cut by a symbol cutter
    assert component_owners(image, owners).tolist() == [3, 1, 4, 2, 5, 6, 7]
    assert component_owners(image, owners, order="layout").tolist() == [3, 1, 2, 4, 5, 6, 7]
    from im2latex_encoder.recognizer.symbol_cutter import SymbolCutter, build_symbol_cutter_model

    untrained = SymbolCutter(build_symbol_cutter_model(seed=0), threshold=0.99)  # cuts nothing
    cut = image_tokens(image, symbol_cutter=untrained, order="layout")
    assert [len(token) for token in cut] == [len(token) for token in layout]
    cut_owners = component_owners(image, owners, symbol_cutter=untrained, order="layout")
    assert np.delete(cut_owners, 1).tolist() == [3, 2, 4, 5, 6, 7]  # the x: either stroke
    with pytest.raises(ValueError, match=r"`order` must be one of \('left-to-right', 'layout'\)"):
        image_tokens(image, order="reading")
