"""A `StrokeRecognizer` of several members: trained recognizers joined into one that averages
them at every decoding step, its prior over their heads' logits averaged, saved as float16.

Two tiny recognizers with random weights over one featurizer are joined; the references are
written out by hand from the members alone.
"""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from im2latex_encoder import presets
from im2latex_encoder.recognizer.decoding import (
    _log_softmax,
    _strip,
    beam_search_decode,
    greedy_decode,
)
from im2latex_encoder.recognizer.saving import load_formula_recognizer
from im2latex_encoder.recognizer.stroke_recognizer import StrokeRecognizer, pad_tokens
from im2latex_encoder.recognizer.symbol_count import SymbolCountPrior
from model_checks import tiny_stroke_recognizer


def _line(start, end, points=8):
    return np.linspace(start, end, points)


EXPRESSIONS = [
    [_line([0, 0], [10, 12]), _line([10, 0], [0, 12]), _line([16, 6], [26, 6])],
    [_line([0, 0], [0, 12]), _line([6, 0], [14, 0]), _line([14, 0], [8, 12])],
    [_line([0, 0], [0, 12])],
]


def _sharing_featurizer(model, seed):
    """Another tiny recognizer (`seed`'s weights) over `model`'s featurizer."""
    other = tiny_stroke_recognizer(seed=seed)
    other.encoder.set_weights(model.encoder.get_weights())
    other.symbol_head.set_weights(model.symbol_head.get_weights())
    return other


@pytest.fixture(scope="module")
def members():
    first = tiny_stroke_recognizer(seed=2)
    return first, _sharing_featurizer(first, 3)


@pytest.fixture(scope="module")
def joined(members):
    return StrokeRecognizer.from_members(members)


def test_each_member_keeps_its_weights(members, joined):
    assert joined.members == 2
    for index, member in enumerate(members):
        alone = joined.member(index)
        assert alone.members == 1
        for mine, theirs in zip(alone.get_weights(), member.get_weights()):
            np.testing.assert_array_equal(mine, theirs)
    # One featurizer: the joined model counts it once.
    head = joined.encoder.count_params() + joined.symbol_head.count_params()
    assert joined.count_params() == 2 * members[0].count_params() - head


def test_decoding_averages_the_members_log_probabilities(members, joined):
    tokens = members[0].tokens_of(EXPRESSIONS)
    batch = pad_tokens(tokens)
    # By hand: each member re-reads the whole prefix, the step's log-softmax averaged.
    memories = [member.encode(batch) for member in members]
    prefix = np.ones((len(tokens), 1), np.int32)
    done = np.zeros(len(tokens), bool)
    for _ in range(joined.max_length):
        log_probs = np.mean(
            [
                _log_softmax(
                    ops.convert_to_numpy(
                        member.decode_logits(memory, prefix, memory_mask=batch["padding_mask"])
                    )[:, -1].astype(np.float64)
                )
                for member, memory in zip(members, memories)
            ],
            axis=0,
        )
        next_ids = np.where(done, 0, log_probs.argmax(-1)).astype(np.int32)
        prefix = np.concatenate([prefix, next_ids[:, None]], axis=1)
        done |= next_ids == 2
        if done.all():
            break
    greedy = greedy_decode(joined, batch)
    assert greedy == [_strip(row, 2) for row in prefix[:, 1:]]
    assert greedy_decode(joined, batch, use_cache=False) == greedy
    beams = beam_search_decode(joined, batch, beam_width=3)
    assert beams == beam_search_decode(joined, batch, beam_width=3, use_cache=False)
    # Joined readings differ from each member's (the seeds read differently) ...
    each = [member.recognize_token_ids(tokens, beam_width=3) for member in members]
    assert each[0] != each[1]


def test_identical_members_read_as_one(members):
    first = members[0]
    twin = StrokeRecognizer.from_members([first, first])
    tokens = first.tokens_of(EXPRESSIONS)
    for width in (1, 3):  # beam 3 with the symbol-count prior and the grammar
        assert twin.recognize_token_ids(tokens, beam_width=width) == (
            first.recognize_token_ids(tokens, beam_width=width)
        )
    assert twin.stroke_symbols(EXPRESSIONS[0]) == first.stroke_symbols(EXPRESSIONS[0])


def test_the_prior_reads_the_members_heads_averaged(members, joined):
    batch = pad_tokens(members[0].tokens_of(EXPRESSIONS))
    heads = []
    for member in members:
        memory = member.encode(batch)
        heads.append(
            (
                ops.convert_to_numpy(member.join_logits(memory))[..., 0],
                ops.convert_to_numpy(member.symbol_logits(memory)),
            )
        )
    expected = SymbolCountPrior.from_logits(
        np.mean([joins for joins, _ in heads], axis=0),
        np.mean([symbols for _, symbols in heads], axis=0),
        joined.token_classes,
        joined.vocabulary.end_id,
        1.0,
        lengths=batch["padding_mask"].sum(axis=1),
    )
    prior = joined.symbol_count_prior(batch, 1.0)
    np.testing.assert_allclose(prior.end_scores, expected.end_scores, atol=1e-5)
    np.testing.assert_allclose(prior.class_more_scores, expected.class_more_scores, atol=1e-5)


def test_a_float16_preset_holds_every_member_and_loads_back(members, joined, tmp_path):
    wide, narrow = tmp_path / "wide", tmp_path / "narrow"
    joined.save_to_preset(str(wide))
    joined.save_to_preset(str(narrow), weights_dtype="float16")
    size = {p: (p / presets.TASK_WEIGHTS).stat().st_size for p in (wide, narrow)}
    trained = sum(int(np.prod(v.shape)) for v in joined.trainable_variables)
    assert size[wide] - size[narrow] >= 1.9 * trained  # 2 bytes a trained weight
    assert presets.preset_metadata(narrow)["task_weights_dtype"] == "float16"
    assert "task_weights_dtype" not in presets.preset_metadata(wide)
    loaded = load_formula_recognizer(narrow)
    assert type(loaded) is StrokeRecognizer and loaded.members == 2
    # The trained weights come back rounded to float16; the frozen featurizer's, bit for bit.
    for mine, saved in zip(loaded.trainable_variables, joined.trainable_variables):
        mine, saved = ops.convert_to_numpy(mine), ops.convert_to_numpy(saved)
        assert mine.dtype == np.float32
        np.testing.assert_array_equal(mine, saved.astype(np.float16).astype(np.float32))
    for part in ("encoder", "symbol_head"):
        saved = getattr(joined, part).get_weights()
        assert saved and not getattr(joined, part).trainable_weights
        for mine, theirs in zip(getattr(loaded, part).get_weights(), saved):
            np.testing.assert_array_equal(mine, theirs)
    exact = load_formula_recognizer(wide)
    tokens = joined.tokens_of(EXPRESSIONS)
    assert exact.recognize_token_ids(tokens, beam_width=3) == (
        joined.recognize_token_ids(tokens, beam_width=3)
    )


def test_what_cannot_be_joined_is_refused_saying_why(members, joined):
    first, second = members
    with pytest.raises(ValueError, match="two or more one-member StrokeRecognizers"):
        StrokeRecognizer.from_members([first])
    with pytest.raises(ValueError, match=r"Received: \['StrokeRecognizer\(members=2\)'"):
        StrokeRecognizer.from_members([joined, first])
    stranger = tiny_stroke_recognizer(seed=4)  # its own random featurizer
    with pytest.raises(ValueError, match="model 1's encoder weights differ from model 0's"):
        StrokeRecognizer.from_members([first, stranger])
    other_words = tiny_stroke_recognizer(("x", "y", "-", "1", "2"), seed=5)
    other_words.encoder.set_weights(first.encoder.get_weights())
    other_words.symbol_head.set_weights(first.symbol_head.get_weights())
    with pytest.raises(ValueError, match=r"model 1 differs from model 0 in \['vocabulary'\]"):
        StrokeRecognizer.from_members([first, other_words])
    with pytest.raises(ValueError, match="`members` must be a positive int. Received: members=0"):
        StrokeRecognizer(first.encoder, first.symbol_head, ["x"], members=0)
    with pytest.raises(ValueError, match=r"`index` must be an int in \[0, 2\). Received: index=2"):
        joined.member(2)
    # An ensemble reads; its members train alone.
    with pytest.raises(ValueError, match="Train each member as a one-member StrokeRecognizer"):
        joined.compute_loss(y={}, y_pred={})


def test_only_a_task_s_weights_are_stored_as_float16(tmp_path):
    from im2latex_encoder import SymbolEncoder

    with pytest.raises(ValueError, match=r"a backbone's weights stay float32\). Received: "):
        presets.save_preset(SymbolEncoder(filters=(4,)), tmp_path / "b", weights_dtype="float16")
    with pytest.raises(ValueError, match="Received: weights_dtype='int8'"):
        tiny_stroke_recognizer().save_to_preset(str(tmp_path / "t"), weights_dtype="int8")
    assert not (tmp_path / "b").exists() and not (tmp_path / "t").exists()
