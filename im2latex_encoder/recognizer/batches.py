"""Teacher-forcing batches of drawn handwritten expressions (`ExpressionBatches`).

Example:
>>> import numpy as np
>>> from im2latex_encoder.recognizer.preprocessor import DrawSettings
>>> data = InkExpressions.from_strokes([[np.array([[0., 0.], [9., 9.]])]] * 2,
...                                    names="ab", truths=["", ""])
>>> len(ExpressionBatches(data, [[1, 5, 2]] * 2, 2, DrawSettings(10.0)))
1
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from im2latex_encoder.formulas.handwritten import ExpressionAugment, InkExpressions
from im2latex_encoder.recognizer.preprocessor import DrawSettings, bucket_batches, pad_batch


class ExpressionBatches(keras.utils.PyDataset):
    """Teacher-forcing batches of drawn expressions, bucketed by width.

    Each epoch groups the expressions into batches of similar width (fresh groups every
    epoch when `shuffle`), draws them (with `augment`, seeded by epoch and batch, so a
    resumed run sees the same batches) and pads each batch to its own largest size.
    Yields ``((images (B, H, W, 1), ids (B, T)), next_ids (B, T))``.

    Args:
        expressions: InkExpressions.
        token_ids: one int sequence per expression: ``<start>`` … ``<end>``.
        batch_size: int.
        settings: DrawSettings.
        augment: ExpressionAugment or None.
        shuffle: bool.
        seed: int.
        **kwargs: `keras.utils.PyDataset` arguments (`workers`, `use_multiprocessing`).

    Example:
    >>> data = InkExpressions.from_strokes([[np.array([[0., 0.], [9., 9.]])]] * 3,
    ...                                    names="abc", truths=["", "", ""])
    >>> batches = ExpressionBatches(data, [[1, 5, 2]] * 3, 2, DrawSettings(10.0), shuffle=False)
    >>> (images, ids), next_ids = batches[0]
    >>> len(batches), images.shape, ids.tolist(), next_ids.tolist()
    (2, (2, 32, 32, 1), [[1, 5], [1, 5]], [[5, 2], [5, 2]])
    """

    def __init__(
        self,
        expressions: InkExpressions,
        token_ids: Sequence[Sequence[int]],
        batch_size: int,
        settings: DrawSettings,
        *,
        augment: ExpressionAugment | None = None,
        shuffle: bool = True,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if len(token_ids) != len(expressions):
            raise ValueError(
                f"Need one token sequence per expression. Received: "
                f"{len(token_ids)} for {len(expressions)} expressions"
            )
        self.expressions = expressions
        self.token_ids = [np.asarray(ids, np.int32) for ids in token_ids]
        self.batch_size = int(batch_size)
        self.settings = settings
        self.augment = augment
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.shapes = [settings.image_shape(expressions, i) for i in range(len(expressions))]
        self.epoch = 0
        self._batches = self._bucket()

    def _bucket(self):
        rng = np.random.default_rng([self.seed, self.epoch]) if self.shuffle else None
        return bucket_batches(self.shapes, self.batch_size, rng=rng)

    def set_epoch(self, epoch: int) -> None:
        """Regroup as for `epoch` (a resumed run starts at its epoch).

        Example:
        >>> batches.set_epoch(3)  # doctest: +SKIP
        """
        self.epoch = int(epoch)
        self._batches = self._bucket()

    def __len__(self) -> int:
        return len(self._batches)

    def __getitem__(self, index: int):
        members = self._batches[index]
        rng = np.random.default_rng([self.seed, self.epoch, int(index), 7])
        images = [
            self.settings.render(
                self.expressions, int(i), augment=self.augment if self.augment else None, rng=rng
            )
            for i in members
        ]
        length = max(len(self.token_ids[i]) for i in members)
        ids = np.zeros((len(members), length), np.int32)
        for row, i in zip(ids, members):
            row[: len(self.token_ids[i])] = self.token_ids[i]
        return (pad_batch(images), ids[:, :-1]), ids[:, 1:]

    def on_epoch_end(self):
        if self.shuffle:
            self.set_epoch(self.epoch + 1)

    def as_tf_dataset(self, prefetch: int = 2):
        """These batches as a `tf.data.Dataset` whose shapes are all free (None).

        Keras' own adapter fixes every dimension its first two batches agree on, and width
        buckets differ in width, height and formula length; one pass of the dataset is one
        epoch, and the next pass regroups (`on_epoch_end`). `fit` takes it on every backend.

        Example:
        >>> dataset = batches.as_tf_dataset()  # doctest: +SKIP
        >>> model.fit(dataset, epochs=10)  # doctest: +SKIP
        """
        import tensorflow as tf

        def generate():
            for index in range(len(self)):
                yield self[index]
            self.on_epoch_end()

        spec = (
            (
                tf.TensorSpec((None, None, None, 1), tf.float32),
                tf.TensorSpec((None, None), tf.int32),
            ),
            tf.TensorSpec((None, None), tf.int32),
        )
        return tf.data.Dataset.from_generator(generate, output_signature=spec).prefetch(prefetch)
