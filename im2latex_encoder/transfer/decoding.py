"""Greedy and beam-search decoding for a `FormulaRecognizer`.

Both encode the images once and re-run the decoder on the whole prefix at every step (no
key/value cache): formulas here are at most a few dozen tokens, so the quadratic cost is small
next to the encoder's, and the decoder stays one plain Keras layer that saves as `.keras`.
"""

from __future__ import annotations

import numpy as np
from keras import ops

START_ID, END_ID, PAD_ID = 1, 2, 0  # `im2latex_encoder.formulas.Vocabulary`'s special ids


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


def _max_steps(model, max_length: int | None) -> int:
    limit = model.max_length
    if max_length is None:
        return limit
    if not isinstance(max_length, int) or not 1 <= max_length <= limit:
        raise ValueError(f"`max_length` must be an int in [1, {limit}] (the model's "
                         f"`max_length`). Received: max_length={max_length!r}")
    return max_length


def greedy_decode(model, images, *, max_length: int | None = None, start_id: int = START_ID,
                  end_id: int = END_ID) -> list[list[int]]:
    """Decode each image by taking the most likely next token until `<end>`.

    Args:
        model: FormulaRecognizer.
        images: float array `(batch, H, W, 1)`, ink 1.0 on background 0.0.
        max_length: int or None. Most tokens to generate (default: the model's `max_length`).
        start_id: int. Id of `<start>`.
        end_id: int. Id of `<end>`.

    Returns:
        One list of token ids per image, without `<start>` and `<end>` (feed it to
        `Vocabulary.decode`).

    Example:
    >>> import numpy as np
    >>> from im2latex_encoder import SymbolEncoder
    >>> from im2latex_encoder.transfer import FormulaRecognizer
    >>> model = FormulaRecognizer(SymbolEncoder(projection_dim=16), 10, max_length=6)
    >>> ids = greedy_decode(model, np.zeros((2, 32, 32, 1), "float32"))
    >>> len(ids), all(len(sequence) <= 6 for sequence in ids)
    (2, True)
    """
    steps = _max_steps(model, max_length)
    memory = model.encode(images)
    batch = int(memory.shape[0])
    prefix = np.full((batch, 1), start_id, np.int32)
    done = np.zeros(batch, bool)
    for _ in range(steps):
        logits = ops.convert_to_numpy(model.decode_logits(memory, prefix))[:, -1]
        next_ids = np.where(done, PAD_ID, logits.argmax(-1)).astype(np.int32)
        prefix = np.concatenate([prefix, next_ids[:, None]], axis=1)
        done |= next_ids == end_id
        if done.all():
            break
    return [_strip(row, end_id) for row in prefix[:, 1:]]


def beam_search_decode(model, images, *, beam_width: int = 4, max_length: int | None = None,
                       length_penalty: float = 0.0, start_id: int = START_ID,
                       end_id: int = END_ID, return_scores: bool = False):
    """Decode each image with beam search: keep the `beam_width` best prefixes at each step.

    A prefix's score is the sum of its tokens' log-probabilities, divided by
    ``length ** length_penalty`` when ranking finished beams (0 = no normalisation; longer
    formulas are then penalised by every extra token). Finished beams stay in the beam with
    their score frozen. ``beam_width=1`` gives the same result as `greedy_decode`.

    Args:
        model: FormulaRecognizer.
        images: float array `(batch, H, W, 1)`.
        beam_width: int. Prefixes kept per image.
        max_length: int or None. Most tokens to generate (default: the model's `max_length`).
        length_penalty: float. Exponent of the length normalisation.
        start_id: int. Id of `<start>`.
        end_id: int. Id of `<end>`.
        return_scores: bool. Also return each result's (normalised) log-probability.

    Returns:
        One list of token ids per image (best beam, without `<start>`/`<end>`); with
        `return_scores`, a tuple ``(ids, scores)``.

    Example:
    >>> import numpy as np
    >>> from im2latex_encoder import SymbolEncoder
    >>> from im2latex_encoder.transfer import FormulaRecognizer
    >>> model = FormulaRecognizer(SymbolEncoder(projection_dim=16), 10, max_length=6)
    >>> images = np.random.default_rng(0).random((2, 32, 32, 1)).astype("float32")
    >>> beam_search_decode(model, images, beam_width=1) == greedy_decode(model, images)
    True
    """
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"`beam_width` must be a positive int. Received: beam_width={beam_width!r}")
    steps = _max_steps(model, max_length)
    memory = ops.convert_to_numpy(model.encode(images))
    batch, width = memory.shape[0], beam_width
    # Every image's memory repeated once per beam: rows b*width ... b*width + width - 1.
    memory = ops.convert_to_tensor(np.repeat(memory, width, axis=0))
    prefix = np.full((batch * width, 1), start_id, np.int32)
    scores = np.full((batch, width), -np.inf)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first one
    done = np.zeros((batch, width), bool)
    lengths = np.zeros((batch, width), np.int64)
    for _ in range(steps):
        logits = ops.convert_to_numpy(model.decode_logits(memory, prefix))[:, -1]
        log_probs = _log_softmax(logits.astype(np.float64)).reshape(batch, width, -1)
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
        scores = np.take_along_axis(candidates, best, axis=1)
        was_done = np.take_along_axis(done, source_beam, axis=1)
        lengths = np.take_along_axis(lengths, source_beam, axis=1) + ~was_done
        done = was_done | (token == end_id)
        if done.all():
            break
    normalised = scores / np.maximum(lengths, 1) ** length_penalty
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
