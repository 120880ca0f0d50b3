"""`SymbolClassifier`: a `SymbolEncoder` with a swappable `ClassificationHead`."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import keras
import numpy as np
import numpy.typing  # noqa: F401  (for the annotation of predict_labels)

from im2latex_encoder import presets
from im2latex_encoder.encoder import SymbolEncoder, as_pair, check_float_images
from im2latex_encoder.heads import ClassificationHead
from im2latex_encoder.symbols import CROHME_SYMBOLS
from im2latex_encoder.task import Task

if TYPE_CHECKING:
    from im2latex_encoder.context import ExpressionContext


class _Unset(enum.Enum):
    """The type of `_UNSET`, "not given", for options where None means "none" (no layer)."""

    TOKEN = "unset"

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Final = _Unset.TOKEN
#: The file of a classifier preset that holds its `ExpressionContext`.
CONTEXT_FILE: Final = "context.json"
#: The file of a classifier preset that holds its class names, in output order.
LABELS_FILE: Final = "labels.json"


@keras.saving.register_keras_serializable(package="im2latex_encoder")
class SymbolClassifier(Task):
    """An encoder plus a classification head, built around an existing encoder object.

    The classifier holds a reference to the encoder rather than a copy, so `replace_head`
    returns a new classifier around the *same* encoder: its weights are shared, never copied
    or reinitialised. That is how pretrained weights move into a new task or a formula
    decoder.

    Args:
        encoder: `SymbolEncoder` or None. The feature extractor (a default one when None).
        head: `ClassificationHead` or None. The head (an `"avg"`-pooling head over
            `len(labels)` classes when None).
        labels: sequence of str or None. Class names, in output order; None:
            `CROHME_SYMBOLS`, or ``"0"`` … ``"N-1"`` with `num_classes`.
        image_size: (height, width), int or None. Image size the classifier is built for;
            required by `pooling="flatten"` heads, None lets `"avg"`/`"max"` heads take any size.
        context_scale: bool or float. How the classifier's training symbols were drawn, which
            is how its input should be drawn: False, each symbol fitted to the image; True, each
            symbol at its size within its expression (`InkDataset.render(context_scale=True)`:
            a comma small, an ``x`` smaller than an ``X``); a float in (0, 1], the same with
            the expression's typical symbol filling that share of the image
            (`data.ink.context_fill`). `evaluate` draws CROHME data this
            way; a symbol without an expression around it is drawn fitted either way.
        num_classes: int or None. Classes of the default head, as keras-hub's and timm's
            classifiers take it; must equal `len(labels)` when both are given.
        context: `ExpressionContext`, its `get_config()` dict, or None. Reads the symbols of
            an expression with their neighbours (see `context`).
        **kwargs: standard `keras.Model` arguments.

    `from_preset` (a `Task`'s) takes `num_classes`, `labels` and the options of a new head
    (`pooling`, `hidden_units`, `dropout`, `activation`). From a classifier preset without
    them, the classifier as saved, its context included. With a `num_classes` or `labels`
    that differs from the preset's (or head options), the encoder's weights are loaded and
    the head is new: its weights are skipped, with a warning. From a preset without a
    classifier head (a backbone's, a recognizer's), pass `num_classes` or `labels`: the
    backbone is loaded and the head is new, with a warning saying so. `save_to_preset`
    writes the labels and the context as `labels.json` and `context.json`.

    Example:
    >>> import numpy as np
    >>> SymbolClassifier(num_classes=10).labels[:3]
    ('0', '1', '2')
    >>> classifier = SymbolClassifier()
    >>> probabilities = classifier.predict(np.zeros((1, 128, 128, 1), "float32"), verbose=0)
    >>> probabilities.shape
    (1, 101)

    The seed notebook's model, then a binary "is it a `-`?" head on the same encoder:
    >>> seed = SymbolClassifier(head=ClassificationHead(101, pooling="flatten", hidden_units=25))
    >>> is_minus = seed.replace_head(labels=["other", "-"])
    >>> is_minus.encoder is seed.encoder
    True

    Pretrained, and with one more class (the head's weights skipped, with a warning):
    >>> classifier = SymbolClassifier.from_preset("crohme101")
    >>> classifier.head.num_classes, classifier.image_size
    (101, (48, 48))
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     with_junk = SymbolClassifier.from_preset(
    ...         "crohme101", labels=list(CROHME_SYMBOLS) + ["junk"])
    >>> with_junk.head.num_classes, "skipped its head's weights" in str(caught[0].message)
    (102, True)
    """

    preset_kind = "classifier"
    preset_assets = {"labels": LABELS_FILE, "context": CONTEXT_FILE}
    task_layers = "the head"

    def __init__(
        self,
        encoder: SymbolEncoder | None = None,
        head: ClassificationHead | None = None,
        labels: Sequence[str] | None = None,
        image_size: int | Sequence[int] | None = (128, 128),
        context_scale: bool | float = False,
        *,
        num_classes: int | None = None,
        context: ExpressionContext | dict | None = None,
        **kwargs,
    ):
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
            raise ValueError(
                f"`num_classes` must be a positive int. Received: num_classes={num_classes!r}"
            )
        if labels is None:
            labels = (
                CROHME_SYMBOLS
                if num_classes is None
                else tuple(str(index) for index in range(num_classes))
            )
        labels = tuple(str(label) for label in labels)
        if num_classes is not None and num_classes != len(labels):
            raise ValueError(
                f"`num_classes` and `labels` disagree. Received: num_classes={num_classes}, "
                f"{len(labels)} labels"
            )
        if len(set(labels)) != len(labels):
            duplicates = sorted({label for label in labels if labels.count(label) > 1})
            raise ValueError(f"`labels` must be unique. Received duplicates: {duplicates}")
        encoder = encoder if encoder is not None else SymbolEncoder()
        if not isinstance(encoder, SymbolEncoder):
            raise ValueError(
                f"`encoder` must be a SymbolEncoder. Received: {type(encoder).__name__}"
            )
        head = head if head is not None else ClassificationHead(len(labels))
        if head.num_classes and head.num_classes != len(labels):
            raise ValueError(
                f"The head has {head.num_classes} classes but {len(labels)} labels were given. "
                "Pass one label per class."
            )
        if image_size is not None:
            image_size = as_pair(image_size, "image_size")
            encoder.grid_shape(image_size)  # refuses sizes too small for the stack
        elif head.pooling == "flatten":
            raise ValueError(
                "A head with pooling='flatten' needs a fixed `image_size`. Received: image_size=None"
            )
        super().__init__(**kwargs)

        # === Layers ===
        self.encoder = encoder
        self.head = head

        # === Config ===
        self.labels = labels
        self.image_size = image_size
        self.context_scale = _checked_context_scale(context_scale)
        self._context: ExpressionContext | None = None
        if isinstance(context, dict):
            from im2latex_encoder.context import ExpressionContext

            context = ExpressionContext.from_config(context)
        self.context = context

        height, width = image_size if image_size is not None else (None, None)
        self.build((None, height, width, encoder.input_channels))

    def build(self, input_shape):
        if not self.encoder.built:
            self.encoder.build(input_shape)
        features_shape = self.encoder.compute_output_shape(tuple(input_shape))
        if not self.head.built:
            self.head.build(features_shape)
        self.built = True

    def call(self, images, training=None):
        if self.image_size is not None and self.head.pooling == "flatten":
            received = tuple(images.shape[1:3])
            if None not in received and received != tuple(self.image_size):
                raise ValueError(
                    f"This classifier's flatten head was built for {self.image_size[0]}×"
                    f"{self.image_size[1]} images. Received: images.shape={tuple(images.shape)}"
                )
        return self.head(self.encoder(images, training=training), training=training)

    def compute_output_shape(self, input_shape):
        return self.head.compute_output_shape(self.encoder.compute_output_shape(input_shape))

    # --- Head management --------------------------------------------------------------------

    def replace_head(
        self,
        num_classes: int | None = None,
        labels: Sequence[str] | None = None,
        *,
        pooling: str | None = None,
        hidden_units: int | None | _Unset = _UNSET,
        dropout: float | None = None,
        activation: str | None | _Unset = _UNSET,
    ) -> SymbolClassifier:
        """Return a new classifier with a fresh head around this classifier's encoder.

        The encoder object is shared, not copied: its weights stay bit-for-bit the same, and
        training either classifier's encoder trains both. Head options not given are taken
        from the current head.

        Args:
            num_classes: int or None. Classes of the new head; `len(labels)` when None;
                0 gives a feature head (no classifier).
            labels: sequence of str or None. Names of the new classes; `"0"`, `"1"`, ... when
                None.
            pooling: str or None. `"flatten"`, `"avg"` or `"max"`.
            hidden_units: int or None. Hidden layer of the new head.
            dropout: float or None. Dropout of the new head.
            activation: str or None. Output activation of the new head.

        Example:
        >>> classifier = SymbolClassifier()
        >>> binary = classifier.replace_head(labels=["other", "-"])
        >>> binary.head.num_classes, binary.encoder is classifier.encoder
        (2, True)
        """
        if num_classes is None and labels is None:
            raise ValueError("Pass `num_classes`, `labels` or both. Received neither.")
        if labels is None:
            assert num_classes is not None
            labels = tuple(str(index) for index in range(num_classes))
        labels = tuple(labels)
        if num_classes is None:
            num_classes = len(labels)
        if num_classes and num_classes != len(labels):
            raise ValueError(
                f"`num_classes` and `labels` disagree. Received: num_classes={num_classes}, "
                f"{len(labels)} labels"
            )
        old = self.head
        head = ClassificationHead(
            num_classes,
            pooling=pooling or old.pooling,
            hidden_units=old.hidden_units if hidden_units is _UNSET else hidden_units,
            dropout=old.dropout if dropout is None else dropout,
            activation=old.activation if activation is _UNSET else activation,
            dtype=old.dtype_policy,
        )
        image_size = self.image_size
        return SymbolClassifier(
            self.encoder,
            head,
            labels=labels if num_classes else (),
            image_size=image_size,
            context_scale=self.context_scale,
        )

    def freeze_encoder(self, frozen: bool = True) -> SymbolClassifier:
        """Freeze (or unfreeze) the encoder's weights; the head stays trainable.

        The encoder is shared with every classifier made by `replace_head`, so freezing it
        here freezes it there too. Call before `compile()`.

        Args:
            frozen: bool. True to freeze, False to make the encoder trainable again.

        Returns:
            This classifier, for chaining.

        Example:
        >>> classifier = SymbolClassifier().freeze_encoder()
        >>> classifier.encoder.trainable
        False
        """
        self.encoder.trainable = not frozen
        return self

    # --- Training defaults ------------------------------------------------------------------

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """Configure training, with defaults for symbol classification.

        `"auto"` picks `AdamW(1e-3)`, sparse categorical cross-entropy (from probabilities or
        logits, as the head gives) and top-1 / top-5 accuracy.

        Example:
        >>> classifier = SymbolClassifier()
        >>> classifier.compile()
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(1e-3)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(
                from_logits=self.head.activation is None
            )
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
            if self.head.num_classes > 5:
                metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5"))
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        # Keras skips custom compile() methods when loading a .keras file; ours only fills in
        # defaults, so the saved compile arguments can go straight through it.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def context(self) -> ExpressionContext | None:
        """The `ExpressionContext` that reads this classifier's symbols with their neighbours.

        None when the classifier has none. A preset trained on CROHME expressions carries one
        (``context.json``): `ExpressionContext.decode` turns the classifier's probabilities for
        the symbols of whole expressions into probabilities given their neighbours, and
        `im2latex-encoder evaluate` reports both. Setting it checks its labels are the
        classifier's.

        Example:
        >>> SymbolClassifier.from_preset("crohme101").context.labels[:3]
        ('!', '(', ')')
        """
        return self._context

    @context.setter
    def context(self, context: ExpressionContext | None) -> None:
        from im2latex_encoder.context import ExpressionContext

        if context is not None:
            if not isinstance(context, ExpressionContext):
                raise ValueError(
                    "`context` must be an ExpressionContext or None. Received: "
                    f"{type(context).__name__}"
                )
            if tuple(context.labels) != tuple(self.labels):
                raise ValueError(
                    "`context` must count this classifier's labels, in its order. Received: a "
                    f"context of {len(context.labels)} labels ({list(context.labels[:3])}...) for "
                    f"a classifier of {len(self.labels)} ({list(self.labels[:3])}...)"
                )
        self._context = context

    # --- Inference --------------------------------------------------------------------------

    def predict_labels(
        self, images: np.typing.ArrayLike, top_k: int = 5, batch_size: int = 64
    ) -> list[list[tuple[str, float]]]:
        """Return the `top_k` labels with their probabilities for each image.

        Args:
            images: array of shape `(H, W)`, `(batch, H, W)` or `(batch, H, W, 1)`, float with
                ink 1.0 on background 0.0.
            top_k: int. How many labels per image.
            batch_size: int. Inference batch size.

        Raises:
            ValueError: for images that are not float (uint8 0..255 ones say how to convert),
                as the encoder refuses them.

        Returns:
            A list with one list per image of `(label, probability)` pairs, best first.

        Example:
        >>> import numpy as np
        >>> classifier = SymbolClassifier()
        >>> top = classifier.predict_labels(np.zeros((128, 128), "float32"), top_k=2)
        >>> len(top), len(top[0])
        (1, 2)
        """
        if not self.head.num_classes:
            raise ValueError("This classifier has no classes (num_classes=0): use predict().")
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"`top_k` must be a positive int. Received: top_k={top_k!r}")
        images = np.asarray(images)
        check_float_images(images.dtype, "SymbolClassifier.predict_labels")  # the encoder's rule
        if images.ndim == 2:
            images = images[None, ..., None]
        elif images.ndim == 3 and images.shape[-1] != self.encoder.input_channels:
            images = images[..., None]
        images = images.astype(np.float32, copy=False)
        # predict_on_batch per batch: `predict` sets up a whole epoch loop for each call, which
        # costs 1.6x at batch 64 and ~20x at batch 1 (benchmarks/encoder_tuning).
        probabilities = (
            np.concatenate(
                [
                    keras.ops.convert_to_numpy(
                        self.predict_on_batch(images[start : start + batch_size])
                    )
                    for start in range(0, len(images), batch_size)
                ]
            )
            if len(images)
            else np.zeros((0, self.head.num_classes), np.float32)
        )
        if self.head.activation is None:
            probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(probabilities))
        top_k = min(top_k, probabilities.shape[-1])
        order = np.argsort(-probabilities, axis=-1)[:, :top_k]
        return [
            [(self.labels[index], float(row[index])) for index in indices]
            for row, indices in zip(probabilities, order)
        ]

    # --- Serialization ----------------------------------------------------------------------

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "head": keras.saving.serialize_keras_object(self.head),
            "labels": list(self.labels),
            "image_size": list(self.image_size) if self.image_size is not None else None,
            "context_scale": self.context_scale,
            "context": None if self.context is None else self.context.get_config(),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["head"] = keras.saving.deserialize_keras_object(config["head"])
        return cls(**config)

    # --- The preset loader's hooks (`Task`) -------------------------------------------------

    @classmethod
    def from_backbone(
        cls,
        backbone: SymbolEncoder,
        num_classes: int | None = None,
        labels: Sequence[str] | None = None,
        **head_kwargs,
    ) -> SymbolClassifier:
        """A classifier with a new head around `backbone`: `num_classes` or `labels` needed.

        Args:
            backbone: SymbolEncoder. The (pretrained) encoder.
            num_classes: int or None. Classes of the head; `len(labels)` when None.
            labels: sequence of str or None. Class names; `"0"`, `"1"`, ... when None.
            **head_kwargs: options of the head (`pooling`, `hidden_units`, ...).

        Example:
        >>> SymbolClassifier.from_backbone(SymbolEncoder(), num_classes=3).labels
        ('0', '1', '2')
        """
        if num_classes is None and labels is None:
            raise ValueError(
                "it has no head for a SymbolClassifier. Pass `num_classes` or `labels` for a "
                "new head."
            )
        labels = (
            tuple(labels) if labels is not None else tuple(str(i) for i in range(num_classes or 0))
        )
        count = num_classes if num_classes is not None else len(labels)
        return cls(backbone, ClassificationHead(count, **head_kwargs), labels=labels)

    def preset_changes(
        self, num_classes: int | None = None, labels: Sequence[str] | None = None, **head_kwargs
    ) -> str:
        """What a new head asked of `from_preset` changes; "" keeps the preset's head.

        Example:
        >>> SymbolClassifier(num_classes=3).preset_changes(num_classes=4, dropout=0.5)
        'the preset has 3 classes, the new head has 4 and other options (dropout=0.5)'
        """
        if (
            not head_kwargs
            and (num_classes is None or num_classes == len(self.labels))
            and (labels is None or tuple(labels) == tuple(self.labels))
        ):
            return ""
        count = (
            num_classes
            if num_classes is not None
            else len(labels)
            if labels is not None
            else len(self.labels)
        )
        difference = f"the preset has {len(self.labels)} classes, the new head has {count}"
        if head_kwargs:
            difference += (
                f" and other options ({', '.join(f'{k}={v!r}' for k, v in head_kwargs.items())})"
            )
        return difference

    def with_new_layers(
        self, num_classes: int | None = None, labels: Sequence[str] | None = None, **head_kwargs
    ) -> SymbolClassifier:
        """`replace_head` with `from_preset`'s arguments: head options not given are kept.

        Example:
        >>> classifier = SymbolClassifier(num_classes=3)
        >>> classifier.with_new_layers(dropout=0.5).head.num_classes
        3
        """
        if num_classes is None and labels is None:
            labels = self.labels  # only the head's options change
        return self.replace_head(
            num_classes, tuple(labels) if labels is not None else None, **head_kwargs
        )

    def preset_metadata(self) -> dict:
        """The number of classes and the image size, for `metadata.json`.

        Example:
        >>> SymbolClassifier(num_classes=3, image_size=32).preset_metadata()
        {'num_classes': 3, 'image_size': [32, 32]}
        """
        return {
            "num_classes": self.head.num_classes,
            "image_size": list(self.image_size) if self.image_size else None,
        }


presets.register_presets(
    SymbolClassifier,
    {name: presets.shipped_preset(name) for name in ("crohme101", "crohme101-synthetic")},
)


def _checked_context_scale(context_scale) -> bool | float:
    """`context_scale` as given (a bool stays a bool, so old configs round-trip), once valid."""
    from im2latex_encoder.data.ink import context_fill

    context_fill(context_scale)  # raises, saying what it takes
    if isinstance(context_scale, (bool, np.bool_)):
        return bool(context_scale)
    return float(context_scale)
