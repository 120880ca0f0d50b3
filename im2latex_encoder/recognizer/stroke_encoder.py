"""`StrokeTokenEncoder`: a small Transformer encoder over an expression's stroke tokens."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from im2latex_encoder.recognizer.stroke_tokens import GEOMETRY_COLUMNS

#: The geometry columns measured from the stroke written before (the pen's travel in the air):
#: an encoder that reads no writing order (``writing_order=False``) ignores them.
PEN_TRAVEL_COLUMNS = ("gap_x", "gap_y", "gap_distance")


def sinusoidal_positions(length, dim: int, dtype="float32"):
    """The Transformer's sinusoidal position table: ``(length, dim)`` (no length limit).

    Example:
    >>> tuple(sinusoidal_positions(5, 8).shape)
    (5, 8)
    """
    positions = ops.cast(ops.arange(length), dtype)[:, None]
    rates = ops.exp(
        ops.cast(ops.arange(0, dim, 2), dtype) * (-ops.log(ops.cast(10000.0, dtype)) / dim)
    )[None]
    angles = positions * rates
    return ops.reshape(ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1), (length, dim))


@keras.saving.register_keras_serializable(package="im2latex_encoder")
class StrokeEncoderBlock(keras.layers.Layer):
    """One pre-norm Transformer encoder block: self-attention over tokens, then a feed-forward.

    Example:
    >>> import numpy as np
    >>> block = StrokeEncoderBlock(32, 2, 64)
    >>> tuple(block(np.zeros((2, 5, 32), "float32")).shape)
    (2, 5, 32)
    """

    def __init__(self, hidden_dim: int, num_heads: int, intermediate_dim: int, dropout=0.1, **kw):
        super().__init__(**kw)
        # === Layers ===
        self.attention_norm = layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy)
        self.attention = layers.MultiHeadAttention(
            num_heads, hidden_dim // num_heads, dropout=dropout, dtype=self.dtype_policy
        )
        self.feedforward_norm = layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy)
        self.intermediate = layers.Dense(
            intermediate_dim, activation="gelu", dtype=self.dtype_policy
        )
        self.output_dense = layers.Dense(hidden_dim, dtype=self.dtype_policy)
        self.dropout_layer = layers.Dropout(dropout, dtype=self.dtype_policy)
        # === Config ===
        self.hidden_dim, self.num_heads = int(hidden_dim), int(num_heads)
        self.intermediate_dim, self.dropout = int(intermediate_dim), float(dropout)

    def build(self, shape):
        self.attention_norm.build(shape)
        self.attention.build(shape, shape)
        self.feedforward_norm.build(shape)
        self.intermediate.build(shape)
        self.output_dense.build((*shape[:-1], self.intermediate_dim))
        self.built = True

    def call(self, x, training=None, attention_mask=None):
        normed = self.attention_norm(x)
        attended = self.attention(normed, normed, attention_mask=attention_mask, training=training)
        x = x + self.dropout_layer(attended, training=training)
        hidden = self.intermediate(self.feedforward_norm(x))
        return x + self.dropout_layer(self.output_dense(hidden), training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            num_heads=self.num_heads,
            intermediate_dim=self.intermediate_dim,
            dropout=self.dropout,
            writing_order=self.writing_order,
        )
        return config


@keras.saving.register_keras_serializable(package="im2latex_encoder")
class StrokeTokenEncoder(keras.layers.Layer):
    """Stroke tokens (features + geometry) → contextual token vectors ``(batch, S, hidden)``.

    The features are normalised (LayerNorm), the geometry compressed (signed log), both
    projected to `hidden_dim`, given sinusoidal positions in writing order, and read by
    `num_layers` encoder blocks. With ``writing_order=False`` the tokens are read as a set:
    no positions, and the geometry's pen travel from the previous stroke
    (`PEN_TRAVEL_COLUMNS`) is ignored, so any order of the same tokens reads the same (an
    image has no pen order). Training
    batches group expressions of equal stroke count, so nothing is padded; a reading batch
    may pad shorter expressions at the end and pass `padding_mask` (True for real strokes):
    no stroke then attends to padding, so a real stroke's vector is the one it gets unpadded.

    Args:
        hidden_dim: int. Token width (the decoder's).
        num_layers: int. Encoder blocks.
        num_heads: int. Attention heads.
        intermediate_dim: int. Feed-forward width.
        dropout: float.
        writing_order: bool. Whether the token order and the pen's travel are read.

    Example:
    >>> import numpy as np
    >>> encoder = StrokeTokenEncoder(hidden_dim=32, num_layers=1, num_heads=2,
    ...                              intermediate_dim=64)
    >>> tuple(encoder(np.zeros((2, 7, 40), "float32"), np.zeros((2, 7, 12), "float32")).shape)
    (2, 7, 32)
    >>> features = np.random.default_rng(0).random((1, 7, 40)).astype("float32")
    >>> geometry = np.zeros((1, 7, 12), "float32")
    >>> alone = encoder(features[:, :4], geometry[:, :4])
    >>> padded = encoder(features, geometry, padding_mask=np.arange(7)[None] < 4)
    >>> bool(np.allclose(alone, padded[:, :4], atol=1e-5))
    True
    >>> as_set = StrokeTokenEncoder(hidden_dim=32, num_layers=1, num_heads=2,
    ...                             intermediate_dim=64, writing_order=False)
    >>> reversed_order = as_set(features[:, ::-1], geometry[:, ::-1])
    >>> bool(np.allclose(as_set(features, geometry)[:, ::-1], reversed_order, atol=1e-5))
    True
    """

    def __init__(
        self,
        hidden_dim: int = 128,
        num_layers: int = 3,
        num_heads: int = 4,
        intermediate_dim: int = 384,
        dropout: float = 0.1,
        writing_order: bool = True,
        **kwargs,
    ):
        for name, value in (("hidden_dim", hidden_dim), ("num_layers", num_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        super().__init__(**kwargs)
        # === Layers ===
        self.feature_norm = layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy)
        self.feature_projection = layers.Dense(hidden_dim, dtype=self.dtype_policy)
        self.geometry_projection = layers.Dense(hidden_dim, dtype=self.dtype_policy)
        self.input_dropout = layers.Dropout(dropout, dtype=self.dtype_policy)
        self.blocks = [
            StrokeEncoderBlock(
                hidden_dim,
                num_heads,
                intermediate_dim,
                dropout,
                dtype=self.dtype_policy,
                name=f"block{i}",
            )
            for i in range(num_layers)
        ]
        self.final_norm = layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy)
        # === Config ===
        self.hidden_dim, self.num_layers, self.num_heads = hidden_dim, num_layers, num_heads
        self.intermediate_dim, self.dropout = intermediate_dim, float(dropout)
        self.writing_order = bool(writing_order)

    def build(self, features_shape, geometry_shape=None):
        geometry_shape = geometry_shape or (*features_shape[:-1], 12)
        self.feature_norm.build(features_shape)
        self.feature_projection.build(features_shape)
        self.geometry_projection.build(geometry_shape)
        tokens = (*features_shape[:-1], self.hidden_dim)
        for block in self.blocks:
            block.build(tokens)
        self.final_norm.build(tokens)
        # the geometry columns a set reader keeps: all but the pen travel, made once here
        self._kept_geometry = np.ones(int(geometry_shape[-1]), "float32")
        self._kept_geometry[[GEOMETRY_COLUMNS.index(c) for c in PEN_TRAVEL_COLUMNS]] = 0.0
        self.built = True

    def call(self, features, geometry, training=None, padding_mask=None):
        features = ops.cast(features, self.compute_dtype)
        geometry = ops.cast(geometry, self.compute_dtype)
        x = self.feature_projection(self.feature_norm(features))
        # Lengths in typical symbols span 0.01 to 30: a signed log keeps them in one range.
        geometry = ops.sign(geometry) * ops.log1p(ops.abs(geometry))
        if not self.writing_order:  # the pen's travel from the previous stroke is an order
            geometry = geometry * ops.cast(self._kept_geometry, self.compute_dtype)
        x = x + self.geometry_projection(geometry)
        length = ops.shape(x)[1]
        if self.writing_order:
            x = x + sinusoidal_positions(length, self.hidden_dim, self.compute_dtype)[None]
        x = self.input_dropout(x, training=training)
        attention_mask = None
        if padding_mask is not None:  # (batch, S) -> every query sees the real keys only
            keys = ops.cast(padding_mask, "bool")[:, None, :]
            attention_mask = ops.broadcast_to(keys, (ops.shape(x)[0], length, length))
        for block in self.blocks:
            x = block(x, training=training, attention_mask=attention_mask)
        return self.final_norm(x)

    def compute_output_shape(self, features_shape, geometry_shape=None):
        return (*features_shape[:-1], self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            intermediate_dim=self.intermediate_dim,
            dropout=self.dropout,
        )
        return config
