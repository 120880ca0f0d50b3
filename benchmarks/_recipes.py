"""The training model `pretrain` builds, rebuilt for the training benchmarks.

`im2latex_encoder.training.pretrain` trains ``keras.Sequential([Input, augmentation_layers(...),
classifier])`` compiled with `CategoricalCrossentropy` (label smoothing from the config) and the
accuracy and top-5 metrics; `build_trainer` builds exactly that from a `PretrainConfig`, so the
benchmarks time and train the model a pretrain run trains, without its run directory,
checkpoints and TensorBoard logs.
"""

from __future__ import annotations

import numpy as np


def build_trainer(config, policy: str = "float32"):
    """Build and compile the model `pretrain` trains for `config`, under a dtype policy.

    Args:
        config: `PretrainConfig`. The recipe (image size, model, optimizer, augmentation).
        policy: str. Keras dtype policy to build under (``"float32"`` or ``"mixed_bfloat16"``);
            the global policy is restored afterwards.

    Returns:
        ``(trainer, classifier)``: the compiled `keras.Sequential` and its `SymbolClassifier`.

    Example:
    >>> from im2latex_encoder.training import load_config
    >>> trainer, classifier = build_trainer(load_config("seed"))  # doctest: +SKIP
    """
    import keras

    from im2latex_encoder.data.pipeline import augmentation_layers
    from im2latex_encoder.symbols import CROHME_SYMBOLS
    from im2latex_encoder.training import build_classifier, build_optimizer

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        size = config.image_size
        classifier = build_classifier(config, CROHME_SYMBOLS)
        # `pretrain` adds the augmentation block unconditionally; an empty `keras.Sequential`
        # cannot be built (Keras 3.15), so a recipe without augmentation (`seed`) leaves it out.
        augment = (
            [augmentation_layers(**config.augment, seed=config.seed)]
            if any(config.augment.values())
            else []
        )
        trainer = keras.Sequential(
            [keras.Input((size, size, 1)), *augment, classifier], name="trainer"
        )
        trainer.compile(
            optimizer=build_optimizer(config),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
            metrics=[
                keras.metrics.CategoricalAccuracy(name="accuracy"),
                keras.metrics.TopKCategoricalAccuracy(5, name="top5"),
            ],
        )
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return trainer, classifier


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
