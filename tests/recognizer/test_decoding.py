"""Cached decoding (`FormulaDecoder.decode_step`) gives what re-running the prefix gives.

The uncached path (``use_cache=False``) is the reference: it runs the decoder as trained, on
the whole prefix. Every check compares the two on randomly initialised recognizers of a few
shapes (both MultiHeadAttention code paths: dropout > 0 takes the explicit einsum, dropout 0
`ops.dot_product_attention`), and on one whose rows stop at different steps.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from im2latex_encoder import FeatureGridNeck, SymbolEncoder
from im2latex_encoder.recognizer import FormulaRecognizer, beam_search_decode, greedy_decode
from im2latex_encoder.recognizer.decoding import END_ID

VOCAB = 12
MAX_LENGTH = 8
#: (num_layers, num_heads, dropout): dropout only changes which attention code path runs.
CONFIGS = {"1 layer, 2 heads": (1, 2, 0.1), "3 layers, 4 heads": (3, 4, 0.0)}
#: (batch, image width) pairs the greedy check decodes with every configuration.
GREEDY_CASES = ((1, 104), (5, 40))
#: (batch, beam width) pairs the beam-search check decodes with every configuration.
BEAM_CASES = ((1, 1), (5, 3))
END_SHIFT = 1.6


def make_recognizer(num_layers: int, num_heads: int, dropout: float, seed: int = 0):
    keras.utils.set_random_seed(seed)
    return FormulaRecognizer(
        SymbolEncoder(filters=(8, 8)),
        VOCAB,
        # No layer norm: the tuned END_SHIFT below relies on these random weights' scale.
        neck=FeatureGridNeck(16, positional_encoding=True),
        num_layers=num_layers,
        num_heads=num_heads,
        intermediate_dim=32,
        max_length=MAX_LENGTH,
        dropout=dropout,
    )


def random_images(batch: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, 24, width, 1)).astype("float32")


@pytest.fixture(scope="module", params=list(CONFIGS))
def recognizer(request):
    return make_recognizer(*CONFIGS[request.param])


@pytest.fixture
def ending_recognizer():
    """A recognizer and images on which rows stop at different steps once `<end>` is raised.

    Raising the `<end>` logit by `END_SHIFT` on images of different brightness makes greedy
    decoding end after 4, 5, 5, 6 and 8 (`MAX_LENGTH`) tokens; the test checks it still does.
    """
    brightness = np.array([0.0, 0.25, 0.5, 1.0, 2.0], "float32")[:, None, None, None]
    return make_recognizer(2, 2, 0.1, seed=1), random_images(5, 72, seed=1) * brightness


@pytest.mark.parametrize(("batch", "width"), GREEDY_CASES)
def test_cached_greedy_gives_the_uncached_tokens(recognizer, batch, width):
    images = random_images(batch, width, seed=width)
    cached = greedy_decode(recognizer, images)
    assert cached == greedy_decode(recognizer, images, use_cache=False)
    assert len(cached) == batch


@pytest.mark.parametrize(("batch", "beam_width"), BEAM_CASES)
def test_cached_beam_search_gives_the_uncached_beams(recognizer, batch, beam_width):
    images = random_images(batch, 72, seed=batch)
    ids, scores = beam_search_decode(recognizer, images, beam_width=beam_width, return_scores=True)
    reference, reference_scores = beam_search_decode(
        recognizer, images, beam_width=beam_width, return_scores=True, use_cache=False
    )
    assert ids == reference
    np.testing.assert_allclose(scores, reference_scores, atol=1e-4)


def test_rows_ending_at_different_steps_decode_alike(ending_recognizer):
    model, images = ending_recognizer
    greedy_decode(model, images)  # compiled with the weights before the change
    bias = model.decoder.logits.bias
    shifted = keras.ops.convert_to_numpy(bias).copy()
    shifted[END_ID] += END_SHIFT
    bias.assign(shifted)
    reference = greedy_decode(model, images, use_cache=False)
    lengths = [len(ids) for ids in reference]
    assert len(set(lengths)) >= 3 and min(lengths) < MAX_LENGTH, (
        f"rows should stop at different steps; END_SHIFT needs retuning: {lengths}"
    )
    assert greedy_decode(model, images) == reference
    for beam_width in (1, 3):
        assert beam_search_decode(model, images, beam_width=beam_width) == beam_search_decode(
            model, images, beam_width=beam_width, use_cache=False
        )


def test_decode_step_logits_equal_the_last_position_of_the_full_pass(recognizer):
    width = 40 + 32 * recognizer.num_layers  # a different image width per configuration
    images = random_images(5, width, seed=width)
    ids = np.random.default_rng(width).integers(1, VOCAB, (5, MAX_LENGTH)).astype("int32")
    memory = recognizer.encode(images)
    decoder = recognizer.decoder
    cross, cache = decoder.precompute_memory(memory), decoder.empty_cache(5)
    for position in range(MAX_LENGTH):
        logits, cache = decoder.decode_step(ids[:, position : position + 1], position, cache, cross)
        full = recognizer.decode_logits(memory, ids[:, : position + 1])[:, -1]
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(logits),
            keras.ops.convert_to_numpy(full),
            atol=1e-5,
            err_msg=f"position {position}",
        )


def test_decode_step_refuses_a_position_past_max_length():
    model = make_recognizer(1, 2, 0.0)
    decoder = model.decoder
    cross = decoder.precompute_memory(model.encode(random_images(2, 40)))
    with pytest.raises(ValueError, match=r"`position` must be in \[0, 8\)"):
        decoder.decode_step(np.ones((2, 1), "int32"), MAX_LENGTH, decoder.empty_cache(2), cross)


def test_the_cache_needs_a_recognizer():
    class LogitsOnly:
        max_length = 4

        def encode(self, images):
            return np.zeros((len(images), 1, 1), "float32")

    with pytest.raises(ValueError, match="pass `use_cache=False`"):
        greedy_decode(LogitsOnly(), np.zeros((1, 8, 8, 1), "float32"))


def test_the_compiled_encoder_gives_the_eager_memory_at_every_shape(recognizer):
    from im2latex_encoder.recognizer.decoding import compiled_encode

    encode = compiled_encode(recognizer)
    assert compiled_encode(recognizer) is encode  # compiled once per model
    for batch, width in ((1, 40), (3, 72), (2, 104)):  # new shapes: traced again, same values
        images = random_images(batch, width, seed=width)
        np.testing.assert_allclose(
            np.asarray(encode(images)), np.asarray(recognizer.encode(images)), atol=1e-5
        )

    class NotALayer:
        def encode(self, images):
            return images

    model = NotALayer()
    assert compiled_encode(model) == model.encode  # nothing to compile: its own method


@pytest.mark.parametrize("module_name", ["recognizer.decoder", "recognizer.decoding"])
def test_docstring_examples_run(module_name):
    import doctest
    import importlib

    module = importlib.import_module(f"im2latex_encoder.{module_name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


class _Forbid:
    """A `logits_processor` that makes one token impossible and records what it was given."""

    def __init__(self, token: int):
        self.token, self.calls = token, []

    def __call__(self, prefix, log_probs, images):
        self.calls.append((prefix.copy(), images.copy()))
        adjusted = log_probs.copy()
        adjusted[:, self.token] = -np.inf
        return adjusted


def test_a_logits_processor_steers_greedy_and_beam_decoding(recognizer):
    images = random_images(3, 40)
    plain = greedy_decode(recognizer, images)
    written = {token for row in plain for token in row}
    assert written, "the random recognizer writes something to forbid"
    forbidden = min(written)
    forbid = _Forbid(forbidden)
    steered = greedy_decode(recognizer, images, logits_processor=forbid)
    assert all(forbidden not in row for row in steered) and steered != plain
    prefix, images_of_rows = forbid.calls[0]
    assert prefix.shape == (3, 1) and images_of_rows.tolist() == [0, 1, 2]
    forbid = _Forbid(forbidden)
    beams = beam_search_decode(recognizer, images, beam_width=2, logits_processor=forbid)
    assert all(forbidden not in row for row in beams)
    assert forbid.calls[0][1].tolist() == [0, 0, 1, 1, 2, 2]  # row b*width + k reads image b


def test_a_processor_that_changes_nothing_changes_no_beam(recognizer):
    images = random_images(3, 40)
    unchanged = beam_search_decode(
        recognizer, images, beam_width=3, logits_processor=lambda p, lp, i: lp - 1.0
    )
    assert unchanged == beam_search_decode(recognizer, images, beam_width=3)


def _interleaved(*inputs: np.ndarray) -> np.ndarray:
    """Rows b * views + v: input b's views next to each other, as `views` reads them."""
    return np.stack(inputs, axis=1).reshape(-1, *inputs[0].shape[1:])


def _greedy_over_views(model, views: list) -> list:
    """Greedy decoding by hand: each step's log-softmax averaged over the views, uncached."""
    memories = [model.encode(images) for images in views]
    prefix = np.ones((len(views[0]), 1), np.int32)
    for _ in range(MAX_LENGTH):
        log_probs = []
        for memory in memories:
            logits = keras.ops.convert_to_numpy(model.decode_logits(memory, prefix))[:, -1]
            logits = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
            log_probs.append(logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True)))
        prefix = np.concatenate([prefix, np.mean(log_probs, axis=0).argmax(-1)[:, None]], 1)
    out = []
    for row in prefix[:, 1:].tolist():
        out.append(row[: row.index(END_ID)] if END_ID in row else row)
    return out


def test_each_input_s_views_are_averaged_at_every_step(recognizer):
    first, second = random_images(3, 40, seed=5), random_images(3, 40, seed=6)
    both = _interleaved(first, second)
    ids = greedy_decode(recognizer, both, views=2)
    assert len(ids) == 3
    assert ids == _greedy_over_views(recognizer, [first, second])
    assert ids == greedy_decode(recognizer, both, views=2, use_cache=False)
    beams = beam_search_decode(recognizer, both, beam_width=3, views=2)
    assert beams == beam_search_decode(recognizer, both, beam_width=3, views=2, use_cache=False)
    assert beam_search_decode(recognizer, both, beam_width=1, views=2) == ids


def test_identical_views_read_as_the_input_alone(recognizer):
    images = random_images(3, 40, seed=7)
    twice = _interleaved(images, images)
    assert greedy_decode(recognizer, twice, views=2) == greedy_decode(recognizer, images)
    alone, scores = beam_search_decode(recognizer, images, beam_width=3, return_scores=True)
    viewed, viewed_scores = beam_search_decode(
        recognizer, twice, beam_width=3, views=2, return_scores=True
    )
    assert viewed == alone
    np.testing.assert_allclose(viewed_scores, scores, atol=1e-4)


@pytest.mark.parametrize("views", [0, 2, 1.0, True])
def test_views_that_do_not_divide_the_rows_are_refused(recognizer, views):
    with pytest.raises(ValueError, match="`views` must be a positive int that divides"):
        greedy_decode(recognizer, random_images(3, 40), views=views)
