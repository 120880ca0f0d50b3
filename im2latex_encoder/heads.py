"""`ClassificationHead`: pooled features of an encoder → class probabilities."""

from __future__ import annotations

import keras
from keras import layers, ops

_POOLINGS = ("flatten", "avg", "max")


@keras.saving.register_keras_serializable(package="im2latex_encoder")
class ClassificationHead(keras.layers.Layer):
    """Pool an encoder's output and classify it.

    Takes the encoder's sequence `(batch, positions, C)` (or grid `(batch, H', W', C)`), pools
    it (`"flatten"` as in the seed notebook, or `"avg"` / `"max"` over positions), optionally
    applies dropout and a hidden Dense layer (the seed's `Dense(25)`), then a Dense layer with
    `num_classes` outputs. `num_classes=0` means no classifier: the head returns the pooled
    (and hidden) features, as timm's `reset_classifier(0)` does.

    `"flatten"` ties the head to one image size; `"avg"` and `"max"` accept any size.

    Args:
        num_classes: int. Number of classes; 0 for a feature head.
        pooling: str. `"flatten"`, `"avg"` or `"max"`.
        hidden_units: int or None. Units of an optional hidden Dense layer (ReLU).
        dropout: float. Dropout rate before each Dense layer.
        activation: str or None. `"softmax"` for probabilities, None for logits.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    >>> import numpy as np
    >>> head = ClassificationHead(num_classes=101, pooling="avg")
    >>> tuple(head(np.zeros((2, 784, 64), "float32")).shape)
    (2, 101)

    The seed notebook's head:
    >>> seed_head = ClassificationHead(101, pooling="flatten", hidden_units=25)
    """

    def __init__(
        self,
        num_classes: int,
        pooling: str = "avg",
        hidden_units: int | None = None,
        dropout: float = 0.0,
        activation: str | None = "softmax",
        **kwargs,
    ):
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(
                f"`num_classes` must be a non-negative int (0 for no classifier). "
                f"Received: num_classes={num_classes!r}"
            )
        if pooling not in _POOLINGS:
            raise ValueError(
                f"`pooling` must be one of 'flatten', 'avg', 'max'. Received: pooling={pooling!r}"
            )
        if hidden_units is not None and (not isinstance(hidden_units, int) or hidden_units < 1):
            raise ValueError(
                f"`hidden_units` must be a positive int or None. Received: hidden_units={hidden_units!r}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
        super().__init__(**kwargs)

        # === Layers ===
        self.dropout_layer = layers.Dropout(dropout) if dropout else None
        self.hidden = (
            layers.Dense(hidden_units, activation="relu", dtype=self.dtype_policy, name="hidden")
            if hidden_units
            else None
        )
        # Probabilities in float32 even under mixed precision: bf16 softmax loses the tail.
        self.classifier = (
            layers.Dense(num_classes, activation=None, dtype=self.dtype_policy, name="logits")
            if num_classes
            else None
        )
        self.output_activation = (
            layers.Activation(activation, dtype="float32") if activation and num_classes else None
        )

        # === Config ===
        self.num_classes = num_classes
        self.pooling = pooling
        self.hidden_units = hidden_units
        self.dropout = float(dropout)
        self.activation = activation

    def build(self, input_shape):
        positions, channels = _positions_and_channels(input_shape)
        if channels is None:
            raise ValueError(
                f"ClassificationHead needs a known channel count. Received: input_shape={tuple(input_shape)}"
            )
        if self.pooling == "flatten":
            if positions is None:
                raise ValueError(
                    "ClassificationHead(pooling='flatten') needs a fixed number of positions, that "
                    "is a fixed image size; use pooling='avg' or 'max' for variable sizes. "
                    f"Received: input_shape={tuple(input_shape)}"
                )
            features = positions * channels
        else:
            features = channels
        if self.hidden is not None:
            self.hidden.build((None, features))
            features = self.hidden_units
        if self.classifier is not None:
            self.classifier.build((None, features))
        self._expected_positions = positions if self.pooling == "flatten" else None
        self.built = True

    def call(self, features, training=None):
        if len(features.shape) == 4:
            features = ops.reshape(features, (ops.shape(features)[0], -1, features.shape[-1]))
        if self.pooling == "flatten":
            positions = features.shape[1]
            expected = getattr(self, "_expected_positions", None)
            if expected is not None and positions is not None and positions != expected:
                raise ValueError(
                    f"This head flattens {expected} positions (the image size it was built for). "
                    f"Received: {positions} positions, shape={tuple(features.shape)}. Resize the "
                    "images, or use a head with pooling='avg'."
                )
            x = ops.reshape(features, (ops.shape(features)[0], -1))
        elif self.pooling == "avg":
            x = ops.mean(features, axis=1)
        else:
            x = ops.max(features, axis=1)
        if self.hidden is not None:
            if self.dropout_layer is not None:
                x = self.dropout_layer(x, training=training)
            x = self.hidden(x)
        if self.classifier is None:
            return x
        if self.dropout_layer is not None:
            x = self.dropout_layer(x, training=training)
        x = self.classifier(x)
        if self.output_activation is not None:
            x = self.output_activation(x)
        return x

    def compute_output_shape(self, input_shape):
        if self.num_classes:
            return (input_shape[0], self.num_classes)
        if self.hidden_units:
            return (input_shape[0], self.hidden_units)
        positions, channels = _positions_and_channels(input_shape)
        if self.pooling == "flatten":
            return (input_shape[0], None if positions is None else positions * channels)
        return (input_shape[0], channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "pooling": self.pooling,
                "hidden_units": self.hidden_units,
                "dropout": self.dropout,
                "activation": self.activation,
            }
        )
        return config


def _positions_and_channels(shape):
    shape = tuple(shape)
    if len(shape) == 3:
        return shape[1], shape[2]
    if len(shape) == 4:
        positions = None if shape[1] is None or shape[2] is None else shape[1] * shape[2]
        return positions, shape[3]
    raise ValueError(
        "ClassificationHead expects (batch, positions, channels) or (batch, H, W, channels). "
        f"Received: input_shape={shape}"
    )
