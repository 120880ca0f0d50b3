"""`tf.data` pipelines for `model.fit`: deterministic, resumable batches.

Every batch is a pure function of its global step index (and the seed), so a run resumed at
epoch `e` sees exactly the batches an uninterrupted run would, and the batches can be built in
parallel. Two sources: a prepared cache (`ArrayBatches`, reshuffled each epoch) and the
synthetic generator (`SyntheticBatches`, fresh images every step); `MixedBatches` combines them.
Augmentation runs inside the model as Keras preprocessing layers (`augmentation_layers`), so its
random state is part of the checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class BatchSource(Protocol):
    """Anything with `batch_size` and `batch(step) -> (float32 (B, H, W), int32 (B,))`."""

    batch_size: int

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]: ...


def epoch_order(count: int, needed: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which one epoch visits `count` items: permutations seeded by ``(seed, epoch)``,
    as many as `needed` positions take.

    Example:
    >>> sorted(epoch_order(4, 4, seed=0, epoch=1).tolist())
    [0, 1, 2, 3]
    """
    rng = np.random.default_rng([seed, epoch])
    rounds = -(-needed // count)
    return np.concatenate([rng.permutation(count) for _ in range(rounds)])


class ArrayBatches:
    """Batches from in-memory arrays, reshuffled every epoch by `(seed, epoch)`.

    Args:
        images: uint8 `(N, H, W)` (255 = ink) or float32 in [0, 1].
        labels: int `(N,)`.
        batch_size: int.
        steps_per_epoch: int or None. Steps that make one epoch; `N // batch_size` when None.
        seed: int.

    Example:
    >>> source = ArrayBatches(np.zeros((10, 8, 8), np.uint8), np.arange(10), batch_size=4)
    >>> images, labels = source.batch(0)
    >>> images.shape, images.dtype, source.steps_per_epoch
    ((4, 8, 8), dtype('float32'), 2)
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        steps_per_epoch: int | None = None,
        seed: int = 0,
    ):
        if len(images) != len(labels):
            raise ValueError(
                f"`images` and `labels` must have the same length. Received: {len(images)} images, "
                f"{len(labels)} labels"
            )
        if len(images) < batch_size:
            raise ValueError(
                f"Need at least one full batch. Received: {len(images)} images for batch_size={batch_size}"
            )
        self.images = images
        self.labels = np.asarray(labels, np.int32)
        self.batch_size = int(batch_size)
        self.steps_per_epoch = int(steps_per_epoch or len(images) // batch_size)
        self.seed = int(seed)
        self._epoch_order: tuple[int, np.ndarray] | None = None

    def _order(self, epoch: int) -> np.ndarray:
        cached = self._epoch_order
        if cached is None or cached[0] != epoch:
            cached = self._epoch_order = (
                epoch,
                epoch_order(
                    len(self.images), self.steps_per_epoch * self.batch_size, self.seed, epoch
                ),
            )
        return cached[1]

    def batch(self, step: int):
        epoch, within = divmod(int(step), self.steps_per_epoch)
        indices = np.sort(
            self._order(epoch)[within * self.batch_size : (within + 1) * self.batch_size]
        )
        images = self.images[indices]
        if images.dtype == np.uint8:
            images = images.astype(np.float32) * np.float32(1 / 255)
        return images.astype(np.float32, copy=False), self.labels[indices]


class SyntheticBatches:
    """Fresh synthetic symbols for every step, drawn with a generator seeded by `(seed, step)`.

    Args:
        source: `SyntheticSymbols`. The generator of images.
        batch_size: int.
        seed: int.
        label_map: int array or None. Maps `CROHME_SYMBOLS` indices to the model's label indices.

    Example:
    >>> from im2latex_encoder.data.synthetic import SyntheticSymbols
    >>> batches = SyntheticBatches(SyntheticSymbols(image_size=32), batch_size=2)
    >>> batches.batch(5)[0].shape
    (2, 32, 32)
    """

    #: Batches `make_dataset` builds at once. Drawing is Python holding the GIL most of the time,
    #: so two at once only take turns: at 32×32 on 2 cores one builds 12,800 images/s and
    #: AUTOTUNE's several 10,100, and `quick` trains 2–3% faster fed by one.
    parallel_batches = 1

    def __init__(self, source, batch_size: int, seed: int = 0, label_map: np.ndarray | None = None):
        self.source = source
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.label_map = label_map
        # Build the glyph tables now, in one thread: batches are drawn from several tf.data
        # threads at once, and matplotlib's mathtext parser is not thread-safe.
        _ = source.tables

    def batch(self, step: int):
        images, labels = self.source.sample_batch(
            self.batch_size, np.random.default_rng([self.seed, int(step)])
        )
        if self.label_map is not None:
            labels = self.label_map[labels]
        return images, labels.astype(np.int32)


class MixedBatches:
    """Batches made of a fixed share of each source (e.g. half CROHME, half synthetic).

    Args:
        sources: sequence of `BatchSource`. Their `batch_size`s add up to the mixed batch size.

    Example:
    >>> a = ArrayBatches(np.zeros((8, 4, 4), np.uint8), np.zeros(8), batch_size=2)
    >>> b = ArrayBatches(np.ones((8, 4, 4), np.uint8), np.ones(8), batch_size=3)
    >>> MixedBatches([a, b]).batch(0)[1].tolist()
    [0, 0, 1, 1, 1]
    """

    def __init__(self, sources: Sequence[BatchSource]):
        if not sources:
            raise ValueError("MixedBatches needs at least one source. Received: none")
        self.sources = list(sources)
        self.batch_size = sum(source.batch_size for source in self.sources)
        hints = [getattr(source, "parallel_batches", None) for source in self.sources]
        #: The smallest of the sources' `parallel_batches` hints (None: no source has one).
        self.parallel_batches = min((h for h in hints if h), default=None)

    def batch(self, step: int):
        parts = [source.batch(step) for source in self.sources]
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def make_dataset(
    source: BatchSource,
    first_step: int,
    num_steps: int,
    image_size: Sequence[int],
    parallel_batches: int | None = None,
    one_hot: int | None = None,
):
    """A `tf.data.Dataset` of `num_steps` batches starting at global step `first_step`.

    Args:
        source: `BatchSource`.
        first_step: int. Global index of the first batch (epoch × steps per epoch on resume).
        num_steps: int. Batches to yield.
        image_size: (height, width).
        parallel_batches: int or None. Batches built at once. When None: the source's own
            `parallel_batches` if it has one (`SyntheticBatches`: 1), else `tf.data.AUTOTUNE`.
        one_hot: int or None. Give labels one-hot over this many classes (for label smoothing).

    Returns:
        A dataset of `(images (B, H, W, 1) float32, labels (B,) int32)` (or one-hot labels
        `(B, one_hot)`), prefetched.

    Example:
    >>> source = ArrayBatches(np.zeros((8, 16, 16), np.uint8), np.zeros(8), batch_size=4)
    >>> dataset = make_dataset(source, 0, 2, (16, 16))
    >>> [tuple(images.shape) for images, _ in dataset]
    [(4, 16, 16, 1), (4, 16, 16, 1)]
    """
    import tensorflow as tf

    height, width = image_size
    batch_size = source.batch_size

    def load(step):
        images, labels = tf.numpy_function(
            lambda s: source.batch(int(s)), [step], (tf.float32, tf.int32), stateful=False
        )
        images = tf.ensure_shape(images, (batch_size, height, width))[..., None]
        labels = tf.ensure_shape(labels, (batch_size,))
        return images, (tf.one_hot(labels, one_hot) if one_hot else labels)

    dataset = tf.data.Dataset.range(first_step, first_step + num_steps)
    parallel = parallel_batches or getattr(source, "parallel_batches", None) or tf.data.AUTOTUNE
    dataset = dataset.map(load, num_parallel_calls=parallel, deterministic=True)
    options = tf.data.Options()
    # Each batch is already a function of its step; sharding by data keeps that on every worker.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def augmentation_layers(
    rotation: float = 0.0, zoom: float = 0.0, translation: float = 0.0, seed: int = 0
):
    """Keras preprocessing layers for small hand-like geometric jitter (training only).

    Args:
        rotation: float. Maximum rotation as a fraction of a full turn (0.03 ≈ ±11°).
        zoom: float. Maximum zoom in or out, as a fraction.
        translation: float. Maximum shift as a fraction of the image size.
        seed: int.

    Returns:
        A `keras.Sequential`; with every amount 0 it has no layers, and should be left out of
        a model (Keras cannot build an empty Sequential). Background is 0, as the images'
        convention.

    Example:
    >>> augment = augmentation_layers(rotation=0.03, zoom=0.1, translation=0.05)
    >>> len(augment.layers)
    3
    """
    import keras

    layers = []
    if rotation:
        layers.append(
            keras.layers.RandomRotation(
                rotation, fill_mode="constant", fill_value=0.0, seed=seed, name="random_rotation"
            )
        )
    if zoom:
        layers.append(
            keras.layers.RandomZoom(
                zoom, fill_mode="constant", fill_value=0.0, seed=seed + 1, name="random_zoom"
            )
        )
    if translation:
        layers.append(
            keras.layers.RandomTranslation(
                translation,
                translation,
                fill_mode="constant",
                fill_value=0.0,
                seed=seed + 2,
                name="random_translation",
            )
        )
    return keras.Sequential(layers, name="augmentation")
