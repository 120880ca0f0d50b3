"""Teacher-forcing batches of drawn expressions: bucketed by width, padded, reproducible."""

import numpy as np
import pytest

from im2latex_encoder.formulas.handwritten import InkExpressions
from im2latex_encoder.recognizer.batches import ExpressionBatches
from im2latex_encoder.recognizer.preprocessor import DrawSettings


def test_expression_batches_are_bucketed_padded_and_reproducible():
    widths = [1, 8, 2, 9, 3, 7]
    # Two unit strokes set the scale; a third, w units long, sets the width.
    unit = [np.array([[0.0, 0.0], [0.0, 10.0]]), np.array([[5.0, 0.0], [5.0, 10.0]])]
    data = InkExpressions.from_strokes(
        [unit + [np.array([[0.0, 5.0], [w * 10.0, 5.0]])] for w in widths],
        names=[str(i) for i in range(6)],
        truths=[""] * 6,
    )
    ids = [[1] + [4] * (i + 1) + [2] for i in range(6)]
    batches = ExpressionBatches(data, ids, 2, DrawSettings(8.0), seed=1)
    seen = []
    for index in range(len(batches)):
        (images, prefix), following = batches[index]
        assert images.shape[1] % 16 == 0 and images.shape[2] % 16 == 0 and images.shape[1] >= 32
        np.testing.assert_array_equal(prefix[:, 1:], following[:, :-1])
        seen.append(images.shape[2])
    assert sorted(seen) == [32, 48, 64]  # narrow with narrow, wide with wide: no 16-px batch
    first = batches[0][0][0]
    batches.on_epoch_end()
    batches.set_epoch(0)
    np.testing.assert_array_equal(batches[0][0][0], first)
    with pytest.raises(ValueError, match="one token sequence per expression"):
        ExpressionBatches(data, ids[:2], 2, DrawSettings(8.0))
