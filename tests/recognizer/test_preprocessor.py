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
