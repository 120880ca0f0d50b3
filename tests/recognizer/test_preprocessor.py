"""The recognizer's preprocessor: width buckets and padded batches of drawn expressions."""

import numpy as np

from im2latex_encoder.recognizer.preprocessor import bucket_batches, pad_batch


def test_bucket_batches_cover_every_item_once_and_group_widths():
    rng = np.random.default_rng(0)
    shapes = [(10, int(w)) for w in rng.integers(10, 500, 103)]
    batches = bucket_batches(shapes, 8, rng=np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(103))
    assert [len(b) for b in batches].count(8) == 12
    spread = [np.ptp([shapes[i][1] for i in b]) for b in batches]
    assert max(spread) < 100  # neighbours in width, not a random mix (~470 px apart)
    assert [b.tolist() for b in bucket_batches(shapes, 8)] == [
        b.tolist() for b in bucket_batches(shapes, 8)
    ]


def test_pad_batch_pads_top_left_to_a_multiple():
    batch = pad_batch(
        [np.full((5, 20), 255, np.uint8), np.full((17, 3), 255, np.uint8)], multiple=8, minimum=0
    )
    assert batch.shape == (2, 24, 24, 1) and batch.dtype == np.float32
    assert batch[0, :5, :20].min() == 1.0 and batch[0, 5:].max() == 0.0
    assert batch[1, :17, :3].min() == 1.0 and batch[1, :, 3:].max() == 0.0
    assert pad_batch([np.zeros((5, 5), np.uint8)]).shape == (1, 32, 32, 1)  # the default minimum


def test_draw_settings_predict_the_shape_they_draw_and_follow_the_encoder_size():
    from im2latex_encoder.formulas.handwritten import InkExpressions
    from im2latex_encoder.recognizer.preprocessor import DrawSettings, symbol_size_for

    strokes = [np.array([[0.0, 0.0], [30.0, 12.0]]), np.array([[40.0, 0.0], [44.0, 20.0]])]
    data = InkExpressions.from_strokes([strokes, strokes[:1]], names="ab", truths=["", ""])
    for settings in (DrawSettings(18.0), DrawSettings(36.4, line_width=3.0, max_shape=(32, 48))):
        for index in range(len(data)):
            assert settings.image_shape(data, index) == settings.render(data, index).shape
    assert DrawSettings(36.4, max_shape=(32, 48)).image_shape(data, 0)[1] <= 48  # scaled down
    assert DrawSettings.for_image_size(64).symbol_size == round(symbol_size_for(64), 1) == 48.2
    assert DrawSettings.for_image_size(48) == DrawSettings()  # crohme101's size: the default
