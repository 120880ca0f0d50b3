"""The cached stroke features: reused while nothing they depend on changes, rebuilt when the
classifier's weights, the drawing, the augmentation or the data change."""

from __future__ import annotations

import numpy as np
import pytest

from im2latex_encoder import SymbolEncoder
from im2latex_encoder.heads import ClassificationHead
from im2latex_encoder.recognizer import stroke_features
from im2latex_encoder.recognizer.stroke_features import (
    StrokeAugment,
    StrokeFeaturizer,
    cached_stroke_features,
)
from im2latex_encoder.recognizer.stroke_tokens import GEOMETRY_COLUMNS, StrokeDrawing

EXPRESSIONS = [
    [np.array([[0.0, 0.0], [10.0, 12.0]]), np.array([[10.0, 0.0], [0.0, 12.0]])],
    [np.array([[0.0, 0.0], [0.0, 12.0]]), np.array([[5.0, 6.0], [15.0, 6.0]])],
    [np.array([[3.0, 3.0], [3.0, 9.0], [6.0, 12.0]])],
]


def _featurizer(drawing=None, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    drawing = drawing or StrokeDrawing()
    encoder = SymbolEncoder(filters=(4, 4, 4))
    head = ClassificationHead(5, pooling="flatten", hidden_units=8)
    size = drawing.image_size
    head.build(encoder.compute_output_shape((None, size, size, 1)))
    return StrokeFeaturizer(encoder, head, drawing)


@pytest.fixture
def counted(monkeypatch):
    """Counts the feature computations `cached_stroke_features` makes."""
    calls = []
    compute = stroke_features.expression_tokens

    def counting(*args, **kwargs):
        calls.append(kwargs.get("augment"))
        return compute(*args, **kwargs)

    monkeypatch.setattr(stroke_features, "expression_tokens", counting)
    return calls


def test_features_are_reused_until_the_encoder_or_the_drawing_changes(tmp_path, counted):
    path = tmp_path / "features.npz"
    featurizer = _featurizer()
    features, geometry = cached_stroke_features(path, featurizer, EXPRESSIONS, data_hash="a")
    assert features.shape == (5, featurizer.feature_dim) and features.dtype == np.float16
    assert geometry.shape == (5, len(GEOMETRY_COLUMNS))
    assert len(counted) == 1 and path.is_file()

    # The same classifier, drawing and data: read back, not computed.
    again = cached_stroke_features(path, featurizer, EXPRESSIONS, data_hash="a")
    assert len(counted) == 1
    np.testing.assert_array_equal(again[0], features)
    np.testing.assert_array_equal(again[1], geometry)
    # A new featurizer with the same weights and settings has the same key.
    assert _featurizer().fingerprint() == featurizer.fingerprint()
    cached_stroke_features(path, _featurizer(), EXPRESSIONS, data_hash="a")
    assert len(counted) == 1

    # The encoder's weights change (a fine-tuned or another classifier): computed anew.
    before = featurizer.fingerprint()
    weights = featurizer.encoder.get_weights()
    featurizer.encoder.set_weights([w + 0.5 for w in weights])
    assert featurizer.fingerprint() != before
    changed, _ = cached_stroke_features(path, featurizer, EXPRESSIONS, data_hash="a")
    assert len(counted) == 2
    assert not np.allclose(changed.astype(np.float32), features.astype(np.float32))
    featurizer.encoder.set_weights(weights)
    cached_stroke_features(path, featurizer, EXPRESSIONS, data_hash="a")
    assert len(counted) == 3  # the file holds the changed weights' features now

    # The drawing changes (another view set, another pen): computed anew.
    wider = _featurizer(StrokeDrawing(line_width=0.08))
    assert wider.fingerprint() != featurizer.fingerprint()
    cached_stroke_features(path, wider, EXPRESSIONS, data_hash="a")
    assert len(counted) == 4
    alone = _featurizer(StrokeDrawing(views=("alone",)))
    alone_features, _ = cached_stroke_features(path, alone, EXPRESSIONS, data_hash="a")
    assert len(counted) == 5 and alone_features.shape == (5, alone.feature_dim)


def test_the_augmentation_the_draw_and_the_data_are_part_of_the_key(tmp_path, counted):
    path = tmp_path / "features.npz"
    featurizer = _featurizer()
    clean, _ = cached_stroke_features(path, featurizer, EXPRESSIONS, data_hash="a")
    warped, warped_geometry = cached_stroke_features(
        path, featurizer, EXPRESSIONS, data_hash="a", augment=StrokeAugment(), seed=1
    )
    assert len(counted) == 2 and counted[1] == StrokeAugment()
    assert not np.array_equal(warped, clean)
    # The same draw again is read back, identical (a draw is seeded).
    again, again_geometry = cached_stroke_features(
        path, featurizer, EXPRESSIONS, data_hash="a", augment=StrokeAugment(), seed=1
    )
    assert len(counted) == 2
    np.testing.assert_array_equal(again_geometry, warped_geometry)
    cached_stroke_features(
        path, featurizer, EXPRESSIONS, data_hash="a", augment=StrokeAugment(), seed=2
    )
    assert len(counted) == 3
    cached_stroke_features(path, featurizer, EXPRESSIONS[:2], data_hash="b")
    assert len(counted) == 4


def test_a_damaged_cache_file_is_rebuilt(tmp_path, counted):
    path = tmp_path / "features.npz"
    featurizer = _featurizer()
    features, _ = cached_stroke_features(path, featurizer, EXPRESSIONS, data_hash="a")
    path.write_bytes(b"not an npz file")
    rebuilt, _ = cached_stroke_features(path, featurizer, EXPRESSIONS, data_hash="a")
    assert len(counted) == 2
    np.testing.assert_array_equal(rebuilt, features)


def test_each_distinct_view_goes_through_the_classifier_once():
    from im2latex_encoder.recognizer.stroke_tokens import draw_stroke_views

    featurizer = _featurizer()
    seen = []
    compute = featurizer._views_to_features

    def counting(images):
        seen.append(len(images))
        return compute(images)

    featurizer._views_to_features = counting
    features = featurizer.many(EXPRESSIONS)
    views = np.concatenate(
        [draw_stroke_views(e, featurizer.drawing).reshape(-1, 48, 48) for e in EXPRESSIONS]
    )
    # 5 strokes x 3 views, but every pair view is also another stroke's, or the stroke alone.
    assert len(views) == 15 and seen == [len({v.tobytes() for v in views})] == [7]
    each = compute(views).reshape(5, featurizer.feature_dim)
    np.testing.assert_allclose(np.concatenate(features), each, atol=1e-5)
