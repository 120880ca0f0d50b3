"""Training data held in memory for the training benchmarks.

The model they train is `pretrain`'s own, from `im2latex_encoder.training.build_trainer`
(without a run directory, checkpoints or TensorBoard logs); this module only draws the batches
they feed it.
"""

from __future__ import annotations

import numpy as np


def synthetic_batches_in_memory(image_size: int, batch_size: int, count: int, seed: int = 0):
    """Draw `count` batches of synthetic training symbols once and keep them as tensors.

    Args:
        image_size: int. Square side.
        batch_size: int.
        count: int. Distinct batches (cycled by the caller).
        seed: int.

    Returns:
        list of ``(images (B, S, S, 1) float32, one-hot labels (B, 101) float32)`` tensors.

    Example:
    >>> batches = synthetic_batches_in_memory(32, 4, 2)  # doctest: +SKIP
    >>> tuple(batches[0][0].shape)
    (4, 32, 32, 1)
    """
    import tensorflow as tf

    from im2latex_encoder.data.synthetic import SyntheticSymbols
    from im2latex_encoder.symbols import CROHME_SYMBOLS

    source = SyntheticSymbols("train", image_size, seed)
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(count):
        images, labels = source.sample_batch(batch_size, rng)
        one_hot = np.eye(len(CROHME_SYMBOLS), dtype=np.float32)[labels]
        batches.append((tf.constant(images[..., None]), tf.constant(one_hot)))
    return batches
