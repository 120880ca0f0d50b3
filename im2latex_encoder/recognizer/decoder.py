"""`FormulaDecoder`: a small Transformer decoder that attends over the encoder's sequence."""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="im2latex_encoder")
class DecoderBlock(keras.layers.Layer):
    """One pre-norm Transformer decoder block: causal self-attention, cross-attention, MLP.

    The cross-attention weights (which image positions each token looked at) come back with
    ``return_attention=True``, averaged over heads. For decoding one token at a time,
    `precompute_memory` and `decode_step` compute the same thing with cached keys and values.

    Args:
        hidden_dim: int. Model width (the neck's `projection_dim`).
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

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int = 4,
        intermediate_dim: int = 256,
        dropout: float = 0.1,
        **kwargs,
    ):
        if hidden_dim % num_heads:
            raise ValueError(
                f"`num_heads` must divide `hidden_dim`. Received: "
                f"hidden_dim={hidden_dim}, num_heads={num_heads}"
            )
        super().__init__(**kwargs)
        # === Layers ===
        key_dim = hidden_dim // num_heads
        self.self_norm = layers.LayerNormalization(
            epsilon=1e-5, dtype=self.dtype_policy, name="self_attention_norm"
        )
        self.self_attention = layers.MultiHeadAttention(
            num_heads, key_dim, dropout=dropout, dtype=self.dtype_policy, name="self_attention"
        )
        self.cross_norm = layers.LayerNormalization(
            epsilon=1e-5, dtype=self.dtype_policy, name="cross_attention_norm"
        )
        self.cross_attention = layers.MultiHeadAttention(
            num_heads, key_dim, dropout=dropout, dtype=self.dtype_policy, name="cross_attention"
        )
        self.mlp_norm = layers.LayerNormalization(
            epsilon=1e-5, dtype=self.dtype_policy, name="mlp_norm"
        )
        self.mlp_in = layers.Dense(
            intermediate_dim, activation="gelu", dtype=self.dtype_policy, name="mlp_in"
        )
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

    def call(self, tokens, memory, training=None, return_attention=False, memory_mask=None):
        x = self.self_norm(tokens)
        x = self.self_attention(x, x, use_causal_mask=True, training=training)
        tokens = tokens + self.dropout_layer(x, training=training)
        x = self.cross_norm(tokens)
        cross_mask = None
        if memory_mask is not None:  # (batch, S) -> (batch, T, S): no token reads padding
            shape = (ops.shape(x)[0], ops.shape(x)[1], ops.shape(memory)[1])
            cross_mask = ops.broadcast_to(ops.cast(memory_mask, "bool")[:, None, :], shape)
        x, scores = self.cross_attention(
            x,
            memory,
            attention_mask=cross_mask,
            return_attention_scores=True,
            training=training,
        )
        tokens = tokens + self.dropout_layer(x, training=training)
        x = self.mlp_out(self.mlp_in(self.mlp_norm(tokens)))
        tokens = tokens + self.dropout_layer(x, training=training)
        if return_attention:
            return tokens, ops.mean(scores, axis=1)  # (batch, heads, T, S) -> (batch, T, S)
        return tokens

    def precompute_memory(self, memory, memory_mask=None):
        """Cross-attention keys and values of the encoder's sequence, for `decode_step`.

        Computed once per image: the memory is hundreds of grid cells, and every decoding
        step would otherwise project it again.

        Args:
            memory: float tensor `(batch, S, hidden_dim)`.
            memory_mask: None, or bool `(batch, S)`: False for padding that no token may read.

        Returns:
            ``(keys, values)``, each `(batch, num_heads, S, hidden_dim // num_heads)`; with a
            `memory_mask`, ``(keys, values, visible)`` where `visible` is the mask as
            `(batch, 1, 1, S)`.

        Example:
        >>> import numpy as np
        >>> block = DecoderBlock(32, num_heads=2, intermediate_dim=64)
        >>> block.build((None, None, 32))
        >>> keys, values = block.precompute_memory(np.zeros((2, 7, 32), "float32"))
        >>> tuple(keys.shape), tuple(values.shape)
        ((2, 2, 7, 16), (2, 2, 7, 16))
        """
        attention = self.cross_attention
        keys = _heads_first(attention._key_dense(memory))
        values = _heads_first(attention._value_dense(memory))
        if memory_mask is None:
            return keys, values
        return keys, values, ops.cast(memory_mask, "bool")[:, None, None, :]

    def decode_step(self, tokens, position, cache, cross):
        """Run the token at `position` through the block (inference), with a key/value cache.

        Gives what `call` gives at `position` for the whole prefix: the same layer norms,
        projections, 1/sqrt(key_dim) scaling and softmax, no dropout.

        Args:
            tokens: float tensor `(batch, 1, hidden_dim)`, the block's input at `position`.
            position: int or scalar int tensor. The token's index in the sequence.
            cache: ``(keys, values)`` of the self-attention, each
                `(batch, num_heads, L, key_dim)` with `L > position`; positions below
                `position` hold the earlier tokens', the rest is ignored (masked out).
            cross: `precompute_memory(memory)`.

        Returns:
            ``(tokens, cache)``: the block's output `(batch, 1, hidden_dim)` and the
            ``(keys, values)`` with this token's written at `position`.

        Example:
        >>> import numpy as np
        >>> block = DecoderBlock(32, num_heads=2, intermediate_dim=64)
        >>> block.build((None, None, 32))
        >>> cross = block.precompute_memory(np.zeros((2, 7, 32), "float32"))
        >>> cache = (np.zeros((2, 2, 8, 16), "float32"),) * 2  # room for 8 tokens
        >>> out, cache = block.decode_step(np.ones((2, 1, 32), "float32"), 0, cache, cross)
        >>> out, cache = block.decode_step(out, 1, cache, cross)
        >>> tuple(out.shape), tuple(cache[0].shape)
        ((2, 1, 32), (2, 2, 8, 16))
        """
        x = self.self_norm(tokens)
        attention = self.self_attention
        slots = ops.arange(ops.shape(cache[0])[2])
        # A select, not `ops.slice_update`: the same values, and it exports (ONNX has no
        # dynamic-update-slice, and tf2onnx cannot convert TensorFlow's XlaDynamicUpdateSlice).
        here = ops.reshape(slots == position, (1, 1, -1, 1))
        keys = ops.where(here, _heads_first(attention._key_dense(x)), cache[0])
        values = ops.where(here, _heads_first(attention._value_dense(x)), cache[1])
        visible = slots <= position  # causal: this token and before
        tokens = tokens + _attend(attention, x, keys, values, visible)
        tokens = tokens + _attend(self.cross_attention, self.cross_norm(tokens), *cross)
        tokens = tokens + self.mlp_out(self.mlp_in(self.mlp_norm(tokens)))
        return tokens, (keys, values)

    def compute_output_shape(self, tokens_shape, memory_shape=None):
        return tokens_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
            }
        )
        return config


def _heads_first(projected):
    """`(batch, T, heads, key_dim)` -> `(batch, heads, T, key_dim)`."""
    return ops.transpose(projected, (0, 2, 1, 3))


def _attend(attention, query, keys, values, visible=None):
    """What `attention(query, ...)` computes at inference, from projected keys and values.

    `keras.layers.MultiHeadAttention`'s computation (scores `(batch, heads, T, S)`, softmax
    over the keys) with keys and values stored heads first, `(batch, heads, S, key_dim)`:
    both products are then plain batched matmuls, with no per-step transpose of hundreds of
    memory positions. `visible` `(S,)` masks keys out.
    """
    query = attention._query_dense(query)
    query = ops.multiply(query, ops.cast(attention._inverse_sqrt_key_dim, query.dtype))
    scores = ops.einsum("bthd,bhsd->bhts", query, keys)
    if visible is not None:  # exp(-1e9 - max) is 0: masked keys add nothing to the sum
        scores = ops.where(visible, scores, ops.cast(-1e9, scores.dtype))
    weights = ops.softmax(scores, axis=-1)
    # A batched matmul, then heads back after tokens: as an einsum, tf2onnx would copy the
    # values transposed at every step only to multiply by their transpose.
    mixed = ops.transpose(ops.matmul(weights, values), (0, 2, 1, 3))
    return attention._output_dense(mixed)


@keras.saving.register_keras_serializable(package="im2latex_encoder")
class FormulaDecoder(keras.layers.Layer):
    """Token ids + encoder sequence → next-token logits, through a stack of `DecoderBlock`.

    Token embedding plus a learned position embedding, `num_layers` decoder blocks, a final
    layer norm and a Dense layer to `vocabulary_size` logits (no softmax).
    `empty_cache`, `precompute_memory` and `decode_step` decode one token at a time with a
    key/value cache.

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

    def __init__(
        self,
        vocabulary_size: int,
        hidden_dim: int = 128,
        num_layers: int = 2,
        num_heads: int = 4,
        intermediate_dim: int = 256,
        max_length: int = 64,
        dropout: float = 0.1,
        **kwargs,
    ):
        for name, value in (
            ("vocabulary_size", vocabulary_size),
            ("hidden_dim", hidden_dim),
            ("num_layers", num_layers),
            ("max_length", max_length),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        super().__init__(**kwargs)
        # === Layers ===
        self.token_embedding = layers.Embedding(
            vocabulary_size, hidden_dim, dtype=self.dtype_policy, name="token_embedding"
        )
        self.position_embedding = layers.Embedding(
            max_length, hidden_dim, dtype=self.dtype_policy, name="position_embedding"
        )
        self.embedding_dropout = layers.Dropout(dropout, dtype=self.dtype_policy)
        self.blocks = [
            DecoderBlock(
                hidden_dim,
                num_heads,
                intermediate_dim,
                dropout,
                dtype=self.dtype_policy,
                name=f"block{index}",
            )
            for index in range(num_layers)
        ]
        self.final_norm = layers.LayerNormalization(
            epsilon=1e-5, dtype=self.dtype_policy, name="final_norm"
        )
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

    def call(self, ids, memory, training=None, return_attention=False, memory_mask=None):
        length = ops.shape(ids)[1]
        if isinstance(length, int) and length > self.max_length:
            raise ValueError(
                f"Decoder inputs may be at most {self.max_length} tokens "
                f"(`max_length`). Received: {length} tokens"
            )
        positions = ops.arange(length)
        x = self.token_embedding(ids) + self.position_embedding(positions)[None]
        x = self.embedding_dropout(x, training=training)
        attention = None
        for block in self.blocks:
            x, attention = block(
                x, memory, training=training, return_attention=True, memory_mask=memory_mask
            )
        logits = self.logits(self.final_norm(x))
        return (logits, attention) if return_attention else logits

    def empty_cache(self, batch_size: int) -> list:
        """The self-attention cache before the first token, for `decode_step`: zeros.

        One ``(keys, values)`` pair per block, each
        `(batch_size, num_heads, max_length, hidden_dim // num_heads)`. Its size is fixed
        (written at each position, read under a causal mask) rather than grown by
        concatenation: every step then has the same shapes, so one compiled step serves every
        position.

        Example:
        >>> decoder = FormulaDecoder(vocabulary_size=20, hidden_dim=32, num_layers=2,
        ...                          num_heads=2, max_length=8)
        >>> cache = decoder.empty_cache(3)
        >>> len(cache), tuple(cache[0][0].shape)
        (2, (3, 2, 8, 16))
        """
        shape = (batch_size, self.num_heads, self.max_length, self.hidden_dim // self.num_heads)
        return [
            (ops.zeros(shape, self.compute_dtype), ops.zeros(shape, self.compute_dtype))
            for _ in self.blocks
        ]

    def precompute_memory(self, memory, memory_mask=None) -> list:
        """Every block's cross-attention keys and values of `memory`, once per image.

        Args:
            memory: float tensor `(batch, S, hidden_dim)`, the encoder's sequence.
            memory_mask: None, or bool `(batch, S)`: False where `memory` is padding (rows
                of different lengths decoded together); each block's entry then carries it.

        Returns:
            One ``(keys, values)`` pair per block, each
            `(batch, num_heads, S, hidden_dim // num_heads)`: `decode_step`'s `cross` (rows
            may be repeated, e.g. once per beam, with ``ops.repeat`` on axis 0). With a
            `memory_mask`, each entry is ``(keys, values, visible)``
            (`DecoderBlock.precompute_memory`).

        Example:
        >>> import numpy as np
        >>> decoder = FormulaDecoder(vocabulary_size=20, hidden_dim=32, num_layers=2,
        ...                          num_heads=2, intermediate_dim=64, max_length=8)
        >>> decoder.build((None, None), (None, None, 32))
        >>> cross = decoder.precompute_memory(np.zeros((3, 10, 32), "float32"))
        >>> len(cross), tuple(cross[0][0].shape)
        (2, (3, 2, 10, 16))
        """
        memory = ops.convert_to_tensor(memory, self.compute_dtype)
        return [block.precompute_memory(memory, memory_mask) for block in self.blocks]

    def decode_step(self, ids, position, cache, cross):
        """Next-token logits for one new token per row, with a key/value cache (inference).

        Equals ``self(prefix, memory)[:, -1]`` where `prefix` holds every id fed so far
        (positions ``0 ... position``), but runs one token through the blocks instead of the
        whole prefix, and the memory's keys and values come from `precompute_memory`.

        Args:
            ids: int array `(batch, 1)`, every row's token at `position`.
            position: int (or scalar int tensor, e.g. inside a compiled step) below
                `max_length`: 0 for `<start>`, then 1, 2, ...
            cache: `empty_cache(batch)` at position 0, else the cache the previous step
                returned (its tensors' rows may be reordered with ``ops.take`` on axis 0,
                e.g. to follow beams).
            cross: `precompute_memory(memory)`.

        Returns:
            ``(logits, cache)``: logits `(batch, vocabulary_size)` and the cache for the
            next position.

        Example:
        >>> import numpy as np
        >>> decoder = FormulaDecoder(vocabulary_size=20, hidden_dim=32, num_layers=1,
        ...                          num_heads=2, intermediate_dim=64, max_length=8)
        >>> memory = np.random.default_rng(0).random((2, 10, 32)).astype("float32")
        >>> decoder.build((None, None), (None, None, 32))
        >>> cross, cache = decoder.precompute_memory(memory), decoder.empty_cache(2)
        >>> logits, cache = decoder.decode_step(np.ones((2, 1), "int32"), 0, cache, cross)
        >>> logits, cache = decoder.decode_step(np.full((2, 1), 5, "int32"), 1, cache, cross)
        >>> full = decoder(np.array([[1, 5], [1, 5]], "int32"), memory)[:, -1]
        >>> tuple(logits.shape), bool(np.allclose(logits, full, atol=1e-5))
        ((2, 20), True)
        """
        if isinstance(position, int) and not 0 <= position < self.max_length:
            raise ValueError(
                f"`position` must be in [0, {self.max_length}) (the decoder's "
                f"`max_length`). Received: position={position}"
            )
        position = ops.convert_to_tensor(position, "int32")
        ids = ops.convert_to_tensor(ids, "int32")
        x = self.token_embedding(ids) + self.position_embedding(ops.reshape(position, (1,)))[None]
        new_cache = []
        for block, block_cache, block_cross in zip(self.blocks, cache, cross):
            x, block_cache = block.decode_step(x, position, block_cache, block_cross)
            new_cache.append(block_cache)
        return self.logits(self.final_norm(x))[:, 0], new_cache

    def compute_output_shape(self, ids_shape, memory_shape=None):
        return (*ids_shape, self.vocabulary_size)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "max_length": self.max_length,
                "dropout": self.dropout,
            }
        )
        return config
