"""`FormulaDecoder`: a small Transformer decoder that attends over the encoder's sequence."""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="im2latex_encoder")
class DecoderBlock(keras.layers.Layer):
    """One pre-norm Transformer decoder block: causal self-attention, cross-attention, MLP.

    The cross-attention weights (which image positions each token looked at) come back with
    ``return_attention=True``, averaged over heads.

    Args:
        hidden_dim: int. Model width (the encoder's `projection_dim`).
        num_heads: int. Attention heads; must divide `hidden_dim`.
        intermediate_dim: int. Width of the feed-forward layer.
        dropout: float. Dropout after attention and feed-forward.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    >>> import numpy as np
    >>> block = DecoderBlock(32, num_heads=2, intermediate_dim=64)
    >>> out, attention = block(np.zeros((2, 5, 32), "float32"), np.zeros((2, 7, 32), "float32"),
    ...                        return_attention=True)
    >>> tuple(out.shape), tuple(attention.shape)
    ((2, 5, 32), (2, 5, 7))
    """

    def __init__(self, hidden_dim: int, num_heads: int = 4, intermediate_dim: int = 256,
                 dropout: float = 0.1, **kwargs):
        if hidden_dim % num_heads:
            raise ValueError(f"`num_heads` must divide `hidden_dim`. Received: "
                             f"hidden_dim={hidden_dim}, num_heads={num_heads}")
        super().__init__(**kwargs)
        # === Layers ===
        key_dim = hidden_dim // num_heads
        self.self_norm = layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy,
                                                   name="self_attention_norm")
        self.self_attention = layers.MultiHeadAttention(num_heads, key_dim, dropout=dropout,
                                                        dtype=self.dtype_policy,
                                                        name="self_attention")
        self.cross_norm = layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy,
                                                    name="cross_attention_norm")
        self.cross_attention = layers.MultiHeadAttention(num_heads, key_dim, dropout=dropout,
                                                         dtype=self.dtype_policy,
                                                         name="cross_attention")
        self.mlp_norm = layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy,
                                                  name="mlp_norm")
        self.mlp_in = layers.Dense(intermediate_dim, activation="gelu", dtype=self.dtype_policy,
                                   name="mlp_in")
        self.mlp_out = layers.Dense(hidden_dim, dtype=self.dtype_policy, name="mlp_out")
        self.dropout_layer = layers.Dropout(dropout, dtype=self.dtype_policy)
        # === Config ===
        self.hidden_dim = int(hidden_dim)
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)

    def build(self, tokens_shape, memory_shape=None):
        memory_shape = memory_shape or (None, None, self.hidden_dim)
        self.self_norm.build(tokens_shape)
        self.self_attention.build(tokens_shape, tokens_shape)
        self.cross_norm.build(tokens_shape)
        self.cross_attention.build(tokens_shape, memory_shape)
        self.mlp_norm.build(tokens_shape)
        self.mlp_in.build(tokens_shape)
        self.mlp_out.build((*tokens_shape[:-1], self.intermediate_dim))
        self.built = True

    def call(self, tokens, memory, training=None, return_attention=False):
        x = self.self_norm(tokens)
        x = self.self_attention(x, x, use_causal_mask=True, training=training)
        tokens = tokens + self.dropout_layer(x, training=training)
        x = self.cross_norm(tokens)
        x, scores = self.cross_attention(x, memory, return_attention_scores=True,
                                         training=training)
        tokens = tokens + self.dropout_layer(x, training=training)
        x = self.mlp_out(self.mlp_in(self.mlp_norm(tokens)))
        tokens = tokens + self.dropout_layer(x, training=training)
        if return_attention:
            return tokens, ops.mean(scores, axis=1)  # (batch, heads, T, S) -> (batch, T, S)
        return tokens

    def compute_output_shape(self, tokens_shape, memory_shape=None):
        return tokens_shape

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
                       "intermediate_dim": self.intermediate_dim, "dropout": self.dropout})
        return config


@keras.saving.register_keras_serializable(package="im2latex_encoder")
class FormulaDecoder(keras.layers.Layer):
    """Token ids + encoder sequence → next-token logits, through a stack of `DecoderBlock`.

    Token embedding plus a learned position embedding, `num_layers` decoder blocks, a final
    layer norm and a Dense layer to `vocabulary_size` logits (no softmax).

    Args:
        vocabulary_size: int. Number of token ids (including `<pad>` = 0).
        hidden_dim: int. Model width; the encoder's sequence must have this many channels.
        num_layers: int. Decoder blocks.
        num_heads: int. Attention heads per block.
        intermediate_dim: int. Feed-forward width.
        max_length: int. Longest decoder input (the position embedding's size).
        dropout: float. Dropout inside the blocks and after the embeddings.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    >>> import numpy as np
    >>> decoder = FormulaDecoder(vocabulary_size=20, hidden_dim=32, num_layers=1, num_heads=2,
    ...                          intermediate_dim=64, max_length=8)
    >>> logits = decoder(np.ones((2, 6), "int32"), np.zeros((2, 10, 32), "float32"))
    >>> tuple(logits.shape)
    (2, 6, 20)
    """

    def __init__(self, vocabulary_size: int, hidden_dim: int = 128, num_layers: int = 2,
                 num_heads: int = 4, intermediate_dim: int = 256, max_length: int = 64,
                 dropout: float = 0.1, **kwargs):
        for name, value in (("vocabulary_size", vocabulary_size), ("hidden_dim", hidden_dim),
                            ("num_layers", num_layers), ("max_length", max_length)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        super().__init__(**kwargs)
        # === Layers ===
        self.token_embedding = layers.Embedding(vocabulary_size, hidden_dim,
                                                dtype=self.dtype_policy, name="token_embedding")
        self.position_embedding = layers.Embedding(max_length, hidden_dim,
                                                   dtype=self.dtype_policy,
                                                   name="position_embedding")
        self.embedding_dropout = layers.Dropout(dropout, dtype=self.dtype_policy)
        self.blocks = [DecoderBlock(hidden_dim, num_heads, intermediate_dim, dropout,
                                    dtype=self.dtype_policy, name=f"block{index}")
                       for index in range(num_layers)]
        self.final_norm = layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy,
                                                    name="final_norm")
        self.logits = layers.Dense(vocabulary_size, dtype=self.dtype_policy, name="logits")
        # === Config ===
        self.vocabulary_size = int(vocabulary_size)
        self.hidden_dim = int(hidden_dim)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.max_length = int(max_length)
        self.dropout = float(dropout)

    def build(self, ids_shape, memory_shape=None):
        tokens_shape = (*ids_shape, self.hidden_dim)
        self.token_embedding.build(ids_shape)
        self.position_embedding.build((None,))
        for block in self.blocks:
            block.build(tokens_shape, memory_shape)
        self.final_norm.build(tokens_shape)
        self.logits.build(tokens_shape)
        self.built = True

    def call(self, ids, memory, training=None, return_attention=False):
        length = ops.shape(ids)[1]
        if isinstance(length, int) and length > self.max_length:
            raise ValueError(f"Decoder inputs may be at most {self.max_length} tokens "
                             f"(`max_length`). Received: {length} tokens")
        positions = ops.arange(length)
        x = self.token_embedding(ids) + self.position_embedding(positions)[None]
        x = self.embedding_dropout(x, training=training)
        attention = None
        for block in self.blocks:
            x, attention = block(x, memory, training=training, return_attention=True)
        logits = self.logits(self.final_norm(x))
        return (logits, attention) if return_attention else logits

    def compute_output_shape(self, ids_shape, memory_shape=None):
        return (*ids_shape, self.vocabulary_size)

    def get_config(self):
        config = super().get_config()
        config.update({"vocabulary_size": self.vocabulary_size, "hidden_dim": self.hidden_dim,
                       "num_layers": self.num_layers, "num_heads": self.num_heads,
                       "intermediate_dim": self.intermediate_dim,
                       "max_length": self.max_length, "dropout": self.dropout})
        return config
