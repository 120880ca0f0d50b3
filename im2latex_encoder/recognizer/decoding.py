"""Greedy and beam-search decoding for a `FormulaRecognizer`.

Both encode the images once. With ``use_cache=True`` (the default) each step runs only the
newest token through the decoder (`FormulaDecoder.decode_step`): the cross-attention keys and
values of the image's hundreds of grid cells are computed once per image, each block keeps
the self-attention keys and values of the tokens so far, and the step is compiled once per
decoder (`tf.function` on TensorFlow, `jax.jit` on JAX). ``use_cache=False`` re-runs the
decoder on the whole prefix at every step (quadratic in the length): the reference the cached
path is tested against, and the path for a model that only offers ``encode`` and
``decode_logits``. Both compute the same logits (to float rounding), so the same tokens.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np
from keras import ops

START_ID, END_ID, PAD_ID = 1, 2, 0  # `im2latex_encoder.formulas.Vocabulary`'s special ids


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


class _NextTokenLogits:
    """Next-token logits of a growing prefix, by re-running it or from a key/value cache.

    Call it with the whole prefix `(rows, t)`; ``reorder(rows)`` makes the cache follow the
    prefix's rows when beam search keeps some beams and drops others.
    """

    def __init__(self, model, memory, use_cache: bool, repeats: int = 1, memory_mask=None):
        self.model, self.use_cache = model, use_cache
        if not use_cache:
            if repeats > 1:  # every image's memory once per beam: rows b*repeats + k
                memory = ops.convert_to_tensor(
                    np.repeat(ops.convert_to_numpy(memory), repeats, axis=0)
                )
                if memory_mask is not None:
                    memory_mask = np.repeat(np.asarray(memory_mask), repeats, axis=0)
            self.memory, self.memory_mask = memory, memory_mask
            return
        decoder = getattr(model, "decoder", None)
        if decoder is None or not hasattr(decoder, "decode_step"):
            raise ValueError(
                "`use_cache=True` needs a FormulaRecognizer (a `decoder` with "
                "`decode_step`); pass `use_cache=False` for a model with only "
                f"`decode_logits`. Received: {type(model).__name__}"
            )
        self.step = compiled_decode_step(decoder)
        # Compiled (eagerly ~12 ms a batch); with and without a mask, one function each: a
        # tf.function called with two argument counts fails to generalise its signature.
        if memory_mask is None:
            self.cross = _compiled_method(decoder, "precompute_memory")(memory)
        else:
            mask = ops.convert_to_tensor(memory_mask, "bool")
            self.cross = _compiled_method(decoder, "precompute_memory", "masked")(memory, mask)
        if repeats > 1:  # projected once per image, then copied to its beams
            self.cross = _map_cache(lambda t: ops.repeat(t, repeats, axis=0), self.cross)
        self.cache = decoder.empty_cache(int(memory.shape[0]) * repeats)
        self.rows: np.ndarray | None = None

    def __call__(self, prefix: np.ndarray) -> np.ndarray:
        if not self.use_cache:
            if self.memory_mask is None:
                logits = self.model.decode_logits(self.memory, prefix)
            else:
                logits = self.model.decode_logits(self.memory, prefix, memory_mask=self.memory_mask)
            return ops.convert_to_numpy(logits)[:, -1]
        if self.rows is not None:  # gathered when needed: not after the last step
            rows = ops.convert_to_tensor(self.rows, "int32")
            self.cache = _map_cache(lambda t: ops.take(t, rows, axis=0), self.cache)
            self.rows = None
        position = ops.convert_to_tensor(prefix.shape[1] - 1, "int32")
        logits, self.cache = self.step(
            ops.convert_to_tensor(prefix[:, -1:]), position, self.cache, self.cross
        )
        return ops.convert_to_numpy(logits)

    def reorder(self, rows: np.ndarray) -> None:
        self.rows = rows


class _ViewAveragedLogits:
    """Next-token log-probabilities averaged over several views of each input.

    The inputs come in groups of `views` rows (input `b`'s views are rows ``b * views`` to
    ``b * views + views - 1``); each prefix row is read against every view of its input and
    the views' log-probabilities are averaged (a product of experts: test-time augmentation
    as an ensemble). Rows of the prefix are ``b * repeats + k``, as for `_NextTokenLogits`.
    """

    def __init__(
        self, model, memory, use_cache: bool, views: int, repeats: int = 1, memory_mask=None
    ):
        self.views, self.repeats = views, repeats
        self.inputs = int(memory.shape[0]) // views
        # Underlying rows (b * views + v) * repeats + k read prefix row b * repeats + k.
        b, v, k = np.meshgrid(
            np.arange(self.inputs), np.arange(views), np.arange(repeats), indexing="ij"
        )
        self.expand = (b * repeats + k).reshape(-1)
        self.inner = _NextTokenLogits(model, memory, use_cache, repeats, memory_mask)

    def __call__(self, prefix: np.ndarray) -> np.ndarray:
        logits = self.inner(prefix[self.expand])
        log_probs = _log_softmax(logits.astype(np.float64))
        shape = (self.inputs, self.views, self.repeats, -1)
        return log_probs.reshape(shape).mean(axis=1).reshape(self.inputs * self.repeats, -1)

    def reorder(self, rows: np.ndarray) -> None:
        # Prefix row r = b * repeats + k now continues row rows[r]: every view follows it.
        source = np.asarray(rows).reshape(self.inputs, 1, self.repeats) % self.repeats
        b = np.arange(self.inputs)[:, None, None]
        v = np.arange(self.views)[None, :, None]
        self.inner.reorder(((b * self.views + v) * self.repeats + source).reshape(-1))


def _next_token_logits(
    model, memory, use_cache: bool, views: int, repeats: int = 1, memory_mask=None
):
    if views == 1:
        return _NextTokenLogits(model, memory, use_cache, repeats, memory_mask)
    return _ViewAveragedLogits(model, memory, use_cache, views, repeats, memory_mask)


def _checked_views(views, rows: int) -> int:
    if not isinstance(views, int) or isinstance(views, bool) or views < 1 or rows % views:
        raise ValueError(
            "`views` must be a positive int that divides the inputs' rows (each input's "
            f"views in consecutive rows). Received: views={views!r} for {rows} rows"
        )
    return views


def _map_cache(function, pairs: list) -> list:
    """`function` on every tensor of a per-block list of ``(keys, values[, visible])``."""
    return [tuple(function(tensor) for tensor in pair) for pair in pairs]


def _memory_mask(inputs):
    """The inputs' ``"padding_mask"`` (a stroke batch padded to its longest), else None."""
    if isinstance(inputs, dict):
        return inputs.get("padding_mask")
    return None


#: Per method name, one compiled method per layer, dropped with the layer.
_COMPILED: dict[str, weakref.WeakKeyDictionary] = {}


def _compiled_method(layer, method: str, variant: str = ""):
    """`layer.<method>` compiled once (`_compile`) and kept while the layer lives.

    `variant` names another compiled copy, for calls with another argument structure.
    """
    table = _COMPILED.setdefault(f"{method}:{variant}", weakref.WeakKeyDictionary())
    function = table.get(layer)
    if function is None:
        function = table[layer] = _compile(weakref.ref(layer), method)
    return function


def compiled_encode(model):
    """`model.encode` compiled for the backend, as `compiled_decode_step` compiles a step.

    Decoding encodes once per batch, but eagerly a small Transformer encoder is a few hundred
    op dispatches: reading one formula at a time, that overhead was a third of the stroke
    recognizer's time. A model that is not a Keras layer gets its own `encode` back.

    Example:
    >>> import numpy as np
    >>> from im2latex_encoder import SymbolEncoder
    >>> from im2latex_encoder.recognizer import FormulaRecognizer
    >>> model = FormulaRecognizer(SymbolEncoder(), 10, hidden_dim=16, max_length=6)
    >>> images = np.zeros((1, 32, 32, 1), "float32")
    >>> bool(np.allclose(compiled_encode(model)(images), model.encode(images), atol=1e-5))
    True
    """
    if not isinstance(model, keras.layers.Layer):
        return model.encode
    return _compiled_method(model, "encode")


def compiled_decode_step(decoder):
    """`decoder.decode_step` compiled for the backend: one call per step instead of ~100 ops.

    TensorFlow traces it once (`tf.function`, shapes generalised after a second one), JAX
    jits it with the weights as arguments (keras-hub's `CausalLM` pattern, so later weight
    changes are seen), PyTorch runs it eagerly without autograd. The fixed-size cache keeps the
    shapes equal at every position, so one trace serves a whole decode.
    """
    return _compiled_method(decoder, "decode_step")


def _compile(layer_ref, method: str):
    # The compiled function holds the layer weakly, so the cache entry can die with it.
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        # No autograph: neither method has Python control flow on tensors to convert.
        return tf.function(
            lambda *args: getattr(layer_ref(), method)(*args),
            reduce_retracing=True,
            autograph=False,
        )
    if backend == "jax":
        import jax

        @jax.jit
        def stateless_call(state, *args):
            layer = layer_ref()
            with keras.StatelessScope(state_mapping=zip(layer.variables, state)):
                return getattr(layer, method)(*args)

        return lambda *args: stateless_call([v.value for v in layer_ref().variables], *args)
    if backend == "torch":
        import torch

        def no_grad_call(*args):
            with torch.no_grad():
                return getattr(layer_ref(), method)(*args)

        return no_grad_call
    return lambda *args: getattr(layer_ref(), method)(*args)


def _max_steps(model, max_length: int | None) -> int:
    limit = model.max_length
    if max_length is None:
        return limit
    if not isinstance(max_length, int) or not 1 <= max_length <= limit:
        raise ValueError(
            f"`max_length` must be an int in [1, {limit}] (the model's "
            f"`max_length`). Received: max_length={max_length!r}"
        )
    return max_length


def greedy_decode(
    model,
    images,
    *,
    max_length: int | None = None,
    start_id: int = START_ID,
    end_id: int = END_ID,
    use_cache: bool = True,
    logits_processor=None,
    views: int = 1,
) -> list[list[int]]:
    """Decode each image by taking the most likely next token until `<end>`.

    A row that reached `<end>` continues with `<pad>` until every row has; decoding stops
    there or after `max_length` tokens.

    Args:
        model: FormulaRecognizer.
        images: float array `(batch, H, W, 1)`, ink 1.0 on background 0.0, or whatever the
            model's ``encode`` takes (a `StrokeRecognizer`'s dict of token arrays; with a
            ``"padding_mask"`` ``(batch, S)``, no token reads the memory's padding).
        max_length: int or None. Most tokens to generate (default: the model's `max_length`).
        start_id: int. Id of `<start>`.
        end_id: int. Id of `<end>`.
        use_cache: bool. Decode one token per step with a key/value cache (see the module
            docstring); False re-runs the whole prefix every step (same tokens, slower).
        logits_processor: callable or None. ``processor(prefix, log_probs, images)`` →
            adjusted log-probabilities, called at every step: `prefix` ``(rows, t)`` the ids
            so far (`<start>` first), `log_probs` ``(rows, vocabulary)`` the next token's,
            `images` ``(rows,)`` which input each row reads. A prior or a constraint on the
            sequence (`SymbolCountPrior`); None decodes the model alone.
        views: int. Each input comes as `views` consecutive rows of `images` (the same ink
            warped, say): every step averages the log-probabilities the decoder gives under
            each view (test-time augmentation). One result per input.

    Returns:
        One list of token ids per input, without `<start>` and `<end>` (feed it to
        `Vocabulary.decode`).

    Example:
    >>> import numpy as np
    >>> from im2latex_encoder import SymbolEncoder
    >>> from im2latex_encoder.recognizer import FormulaRecognizer
    >>> model = FormulaRecognizer(SymbolEncoder(), 10, hidden_dim=16, max_length=6)
    >>> images = np.random.default_rng(0).random((2, 32, 32, 1)).astype("float32")
    >>> ids = greedy_decode(model, images)
    >>> len(ids), all(len(sequence) <= 6 for sequence in ids)
    (2, True)
    >>> greedy_decode(model, images, use_cache=False) == ids
    True
    """
    steps = _max_steps(model, max_length)
    memory = compiled_encode(model)(images)
    batch = int(memory.shape[0]) // _checked_views(views, int(memory.shape[0]))
    next_token_logits = _next_token_logits(
        model, memory, use_cache, views, memory_mask=_memory_mask(images)
    )
    prefix = np.full((batch, 1), start_id, np.int32)
    done = np.zeros(batch, bool)
    for _ in range(steps):
        logits = next_token_logits(prefix)
        if logits_processor is not None:
            logits = logits_processor(
                prefix, _log_softmax(logits.astype(np.float64)), np.arange(batch)
            )
        next_ids = np.where(done, PAD_ID, logits.argmax(-1)).astype(np.int32)
        prefix = np.concatenate([prefix, next_ids[:, None]], axis=1)
        done |= next_ids == end_id
        if done.all():
            break
    return [_strip(row, end_id) for row in prefix[:, 1:]]


def beam_search_decode(
    model,
    images,
    *,
    beam_width: int = 4,
    max_length: int | None = None,
    length_penalty: float = 0.0,
    start_id: int = START_ID,
    end_id: int = END_ID,
    return_scores: bool = False,
    use_cache: bool = True,
    return_beams: bool = False,
    logits_processor=None,
    views: int = 1,
):
    """Decode each image with beam search: keep the `beam_width` best prefixes at each step.

    A prefix's score is the sum of its tokens' log-probabilities, divided by
    ``length ** length_penalty`` when ranking finished beams (0 = no normalisation; longer
    formulas are then penalised by every extra token). Finished beams stay in the beam with
    their score frozen. ``beam_width=1`` gives the same result as `greedy_decode`.

    Args:
        model: FormulaRecognizer.
        images: float array `(batch, H, W, 1)`, or a model's inputs as in `greedy_decode`.
        beam_width: int. Prefixes kept per image.
        max_length: int or None. Most tokens to generate (default: the model's `max_length`).
        length_penalty: float. Exponent of the length normalisation.
        start_id: int. Id of `<start>`.
        end_id: int. Id of `<end>`.
        return_scores: bool. Also return each result's (normalised) log-probability.
        use_cache: bool. Decode one token per step with a key/value cache whose rows follow
            the kept beams; False re-runs every beam's whole prefix every step (same result).
        return_beams: bool. Return every kept beam instead: per image, a list of
            ``(ids, normalised log-probability)``, best first (for rescoring).
        logits_processor: callable or None. Adjusts each step's log-probabilities, as in
            `greedy_decode`; its adjustments count in the beams' scores. Row
            ``b * beam_width + k`` is beam `k` of image `b`.
        views: int. Each input comes as `views` consecutive rows of `images`; each step
            averages the log-probabilities under every view, as in `greedy_decode`.

    Returns:
        One list of token ids per image (best beam, without `<start>`/`<end>`); with
        `return_scores`, a tuple ``(ids, scores)``.

    Example:
    >>> import numpy as np
    >>> from im2latex_encoder import SymbolEncoder
    >>> from im2latex_encoder.recognizer import FormulaRecognizer
    >>> model = FormulaRecognizer(SymbolEncoder(), 10, hidden_dim=16, max_length=6)
    >>> images = np.random.default_rng(0).random((2, 32, 32, 1)).astype("float32")
    >>> beam_search_decode(model, images, beam_width=1) == greedy_decode(model, images)
    True
    >>> (beam_search_decode(model, images, beam_width=3)
    ...  == beam_search_decode(model, images, beam_width=3, use_cache=False))
    True
    """
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(
            f"`beam_width` must be a positive int. Received: beam_width={beam_width!r}"
        )
    steps = _max_steps(model, max_length)
    memory = compiled_encode(model)(images)
    batch, width = int(memory.shape[0]) // _checked_views(views, int(memory.shape[0])), beam_width
    # Every image's rows repeated once per beam: rows b*width ... b*width + width - 1.
    next_token_logits = _next_token_logits(
        model, memory, use_cache, views, repeats=width, memory_mask=_memory_mask(images)
    )
    prefix = np.full((batch * width, 1), start_id, np.int32)
    scores = np.full((batch, width), -np.inf)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first one
    done = np.zeros((batch, width), bool)
    lengths = np.zeros((batch, width), np.int64)
    for _ in range(steps):
        logits = next_token_logits(prefix)
        log_probs = _log_softmax(logits.astype(np.float64))
        if logits_processor is not None:
            log_probs = logits_processor(prefix, log_probs, np.arange(batch * width) // width)
        log_probs = log_probs.reshape(batch, width, -1)
        vocabulary = log_probs.shape[-1]
        # A finished beam continues only with <pad>, at no cost.
        finished = np.full(vocabulary, -np.inf)
        finished[PAD_ID] = 0.0
        log_probs = np.where(done[..., None], finished, log_probs)
        candidates = (scores[..., None] + log_probs).reshape(batch, width * vocabulary)
        best = np.argsort(-candidates, axis=1, kind="stable")[:, :width]
        source_beam, token = best // vocabulary, best % vocabulary
        rows = (np.arange(batch)[:, None] * width + source_beam).reshape(-1)
        prefix = np.concatenate([prefix[rows], token.reshape(-1, 1).astype(np.int32)], axis=1)
        next_token_logits.reorder(rows)
        scores = np.take_along_axis(candidates, best, axis=1)
        was_done = np.take_along_axis(done, source_beam, axis=1)
        lengths = np.take_along_axis(lengths, source_beam, axis=1) + ~was_done
        done = was_done | (token == end_id)
        if done.all():
            break
    normalised = scores / np.maximum(lengths, 1) ** length_penalty
    if return_beams:
        order = np.argsort(-normalised, axis=1, kind="stable")
        return [
            [
                (_strip(prefix[b * width + k, 1:], end_id), float(normalised[b, k]))
                for k in order[b]
                if np.isfinite(normalised[b, k])
            ]
            for b in range(batch)
        ]
    winner = normalised.argmax(axis=1)
    rows = np.arange(batch) * width + winner
    ids = [_strip(row, end_id) for row in prefix[rows, 1:]]
    if return_scores:
        return ids, normalised[np.arange(batch), winner].tolist()
    return ids


def _strip(row: np.ndarray, end_id: int) -> list[int]:
    out = []
    for token in row.tolist():
        if token == end_id:
            break
        if token != PAD_ID:
            out.append(int(token))
    return out
