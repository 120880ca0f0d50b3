"""Several stroke readers as one: the layers of a `StrokeRecognizer` of ``members > 1``.

A recognizer of several members shares the frozen stroke featurizer and gives each member
its own token encoder, decoder and auxiliary heads (each trained alone, then joined with
`StrokeRecognizer.from_members`). These layers stand where a one-member recognizer has its
`StrokeTokenEncoder`, `FormulaDecoder` and heads, with the same methods, so decoding, the
symbol-count prior and the export read an ensemble as they read one model:

- `MemberTokenEncoders` concatenates the members' memories on the last axis;
- `MemberDecoders` splits that memory back, and each step averages the members'
  log-probabilities (a product of experts, as `greedy_decode`'s `views` average views);
  its cache and cross lists are the members' lists one after another;
- `MemberHeads` averages the members' head logits.

Example:
>>> import numpy as np
>>> from im2latex_encoder.recognizer.decoder import FormulaDecoder
>>> decoders = MemberDecoders([FormulaDecoder(9, 16, 1, 2, 32, 6) for _ in range(2)])
>>> decoders.build((None, None), (None, None, 32))
>>> memory = np.random.default_rng(0).random((3, 5, 32)).astype("float32")
>>> log_probs = decoders(np.ones((3, 2), "int32"), memory)
>>> tuple(log_probs.shape), bool(np.all(np.asarray(log_probs) <= 0))
((3, 2, 9), True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops


def _split(memory: Any, parts: int) -> list:
    """`memory` ``(..., parts * width)`` as `parts` tensors ``(..., width)``, in order."""
    return ops.split(memory, parts, axis=-1)


def _mean(tensors: Sequence[Any]) -> Any:
    """The members' tensors of one shape, averaged."""
    return ops.mean(ops.stack(tensors), axis=0)


def _mean_log_softmax(logits: Sequence[Any]) -> Any:
    """The members' log-probabilities averaged: the product of experts' scores."""
    return _mean([ops.log_softmax(ops.cast(each, "float32"), axis=-1) for each in logits])


class MemberTokenEncoders(keras.layers.Layer):
    """Each member's `StrokeTokenEncoder` on the same tokens, memories concatenated.

    Args:
        members: sequence of `StrokeTokenEncoder`, of one `hidden_dim`.
        **kwargs: standard layer arguments.

    Example:
    >>> import numpy as np
    >>> from im2latex_encoder.recognizer.stroke_encoder import StrokeTokenEncoder
    >>> encoders = MemberTokenEncoders([StrokeTokenEncoder(16, 1, 2, 32) for _ in range(2)])
    >>> memory = encoders(np.zeros((1, 4, 10), "float32"), np.zeros((1, 4, 12), "float32"))
    >>> tuple(memory.shape)
    (1, 4, 32)
    """

    def __init__(self, members: Sequence[Any], **kwargs):
        super().__init__(**kwargs)
        self.members = list(members)
        self.hidden_dim = sum(member.hidden_dim for member in self.members)

    def build(self, features_shape, geometry_shape=None):
        for member in self.members:
            member.build(features_shape, geometry_shape)
        self.built = True

    def call(self, features, geometry, training=None, padding_mask=None):
        return ops.concatenate(
            [
                member(features, geometry, training=training, padding_mask=padding_mask)
                for member in self.members
            ],
            axis=-1,
        )

    def compute_output_shape(self, features_shape, geometry_shape=None):
        return (*features_shape[:-1], self.hidden_dim)


class MemberDecoders(keras.layers.Layer):
    """Each member's `FormulaDecoder` on its part of the memory, log-probabilities averaged.

    `hidden_dim`, `num_heads` and `max_length` are each member's (they must agree);
    `num_layers` counts every member's blocks, the length of the cache and cross lists
    (`empty_cache`, `precompute_memory`): member 0's blocks first. `call` and `decode_step`
    return the members' averaged log-softmax where a decoder returns logits.

    Args:
        members: sequence of `FormulaDecoder`, of one shape.
        **kwargs: standard layer arguments.

    Example:
    >>> from im2latex_encoder.recognizer.decoder import FormulaDecoder
    >>> decoders = MemberDecoders([FormulaDecoder(9, 16, 2, 2, 32, 6) for _ in range(3)])
    >>> decoders.num_layers, len(decoders.empty_cache(4))
    (6, 6)
    """

    def __init__(self, members: Sequence[Any], **kwargs):
        super().__init__(**kwargs)
        self.members = list(members)
        first = self.members[0]
        for name in ("vocabulary_size", "hidden_dim", "num_layers", "num_heads", "max_length"):
            values = [getattr(member, name) for member in self.members]
            if len(set(values)) != 1:
                raise ValueError(
                    f"Every member's decoder needs the same `{name}`. Received: {values}"
                )
        self.vocabulary_size, self.hidden_dim = first.vocabulary_size, first.hidden_dim
        self.num_heads, self.max_length = first.num_heads, first.max_length
        self.layers_each = first.num_layers
        self.num_layers = first.num_layers * len(self.members)

    def build(self, ids_shape, memory_shape=None):
        if memory_shape is not None:
            memory_shape = (*memory_shape[:-1], self.hidden_dim)
        for member in self.members:
            member.build(ids_shape, memory_shape)
        self.built = True

    def call(self, ids, memory, training=None, return_attention=False, memory_mask=None):
        outputs = [
            member(ids, part, training=training, return_attention=True, memory_mask=memory_mask)
            for member, part in zip(self.members, _split(memory, len(self.members)))
        ]
        log_probs = _mean_log_softmax([logits for logits, _ in outputs])
        if not return_attention:
            return log_probs
        return log_probs, _mean([attention for _, attention in outputs])

    def _per_member(self, pairs: list) -> list[list]:
        each = self.layers_each
        return [pairs[m * each : (m + 1) * each] for m in range(len(self.members))]

    def empty_cache(self, batch_size: int) -> list:
        return [pair for member in self.members for pair in member.empty_cache(batch_size)]

    def precompute_memory(self, memory, memory_mask=None) -> list:
        parts = _split(ops.convert_to_tensor(memory, self.compute_dtype), len(self.members))
        return [
            pair
            for member, part in zip(self.members, parts)
            for pair in member.precompute_memory(part, memory_mask)
        ]

    def decode_step(self, ids, position, cache, cross):
        logits, new_cache = [], []
        for member, member_cache, member_cross in zip(
            self.members, self._per_member(cache), self._per_member(cross)
        ):
            member_logits, member_cache = member.decode_step(
                ids, position, member_cache, member_cross
            )
            logits.append(member_logits)
            new_cache.extend(member_cache)
        return _mean_log_softmax(logits), new_cache

    def compute_output_shape(self, ids_shape, memory_shape=None):
        return (*ids_shape, self.vocabulary_size)


class MemberHeads(keras.layers.Layer):
    """Each member's head (a `Dense`) on its part of the memory, logits averaged.

    Args:
        members: sequence of `keras.layers.Dense`, of one width.
        **kwargs: standard layer arguments.

    Example:
    >>> import numpy as np
    >>> heads = MemberHeads([keras.layers.Dense(3) for _ in range(2)])
    >>> tuple(heads(np.zeros((1, 4, 10), "float32")).shape)
    (1, 4, 3)
    """

    def __init__(self, members: Sequence[Any], **kwargs):
        super().__init__(**kwargs)
        self.members = list(members)

    def build(self, memory_shape):
        part = (*memory_shape[:-1], memory_shape[-1] // len(self.members))
        for member in self.members:
            member.build(part)
        self.built = True

    def call(self, memory):
        parts = _split(memory, len(self.members))
        return _mean([member(part) for member, part in zip(self.members, parts)])

    def compute_output_shape(self, memory_shape):
        return (*memory_shape[:-1], self.members[0].units)
