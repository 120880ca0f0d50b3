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
