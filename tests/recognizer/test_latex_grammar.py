"""`LatexGrammar` forbids what no caption has and nothing a caption has; beam search with it
writes only balanced, well-formed token sequences."""

from __future__ import annotations

import numpy as np
import pytest

from im2latex_encoder.recognizer.latex_grammar import LatexGrammar, chain_processors

TOKENS = ["<pad>", "<start>", "<end>", "<unk>", "x", "2", "^", "_", "{", "}", "\\frac"]
TOKENS += ["\\sqrt", "[", "]", "+"]
ID = {token: i for i, token in enumerate(TOKENS)}
SPECIAL = {"<pad>", "<start>", "<unk>"}  # left to the decoder (it never writes them)
CAPTIONS = [
    "x ^ { 2 }",
    "\\frac { x } { 2 }",
    "\\frac { \\frac { 2 } { x } } { x _ { 2 } }",
    "\\sqrt [ 2 ] { x } + \\sqrt { 2 }",
    "{ x } ^ { 2 } + 2",
]


def _allowed(grammar, prefix_tokens):
    prefix = np.array([[ID["<start>"], *(ID[t] for t in prefix_tokens)]])
    out = grammar(prefix, np.zeros((1, len(TOKENS))), np.zeros(1, int))
    return {TOKENS[i] for i in np.flatnonzero(np.isfinite(out[0]))} - SPECIAL


def test_every_step_of_a_caption_is_allowed():
    grammar = LatexGrammar(TOKENS, end_id=ID["<end>"])
    for caption in CAPTIONS:
        tokens = caption.split()
        for step, token in enumerate([*tokens, "<end>"]):
            assert token in _allowed(grammar, tokens[:step]), (caption, step)


def test_unbalanced_and_unfinished_readings_are_forbidden():
    grammar = LatexGrammar(TOKENS, end_id=ID["<end>"])
    everything = set(TOKENS) - SPECIAL
    assert "}" not in _allowed(grammar, ["x"])  # nothing open to close
    assert "<end>" not in _allowed(grammar, ["x", "^", "{", "2"])  # a group still open
    assert _allowed(grammar, ["x", "^", "{", "2"]) == everything - {"<end>"}
    assert _allowed(grammar, ["x", "^"]) == {"{"}  # x ^ 2: CROHME writes x ^ { 2 }
    assert _allowed(grammar, ["x", "_"]) == {"{"}
    assert _allowed(grammar, ["\\sqrt"]) == {"{", "["}
    assert _allowed(grammar, ["\\frac", "{", "x", "}"]) == {"{"}  # the denominator must follow
    # a numerator holding a group: its inner } is not the numerator's
    assert "+" in _allowed(grammar, ["\\frac", "{", "x", "^", "{", "2", "}"])
    # after the denominator, anything but } (nothing left open)
    assert _allowed(grammar, ["\\frac", "{", "x", "}", "{", "2", "}"]) == everything - {"}"}


def test_a_vocabulary_without_braces_is_left_alone_and_bad_input_is_refused():
    grammar = LatexGrammar(["<pad>", "<start>", "<end>", "<unk>", "x"], end_id=2)
    log_probs = np.log(np.full((2, 5), 0.2))
    out = grammar(np.array([[1, 4], [1, 1]]), log_probs, np.arange(2))
    np.testing.assert_array_equal(out, log_probs)
    with pytest.raises(ValueError, match=r"must be \(rows, 5\) for 2 prefixes. Received: shape"):
        grammar(np.array([[1, 4], [1, 1]]), np.zeros((2, 4)), np.arange(2))
    with pytest.raises(ValueError, match="`end_id` must be an id of the 5 tokens. Received"):
        LatexGrammar(["<pad>", "<start>", "<end>", "<unk>", "x"], end_id=7)


def test_chained_processors_apply_in_turn():
    grammar = LatexGrammar(TOKENS, end_id=ID["<end>"])

    def no_x(prefix, log_probs, images):
        log_probs = log_probs.copy()
        log_probs[:, ID["x"]] = -np.inf
        return log_probs

    both = chain_processors(no_x, None, grammar)
    out = both(np.array([[ID["<start>"], ID["x"], ID["^"]]]), np.zeros((1, len(TOKENS))), None)
    assert [TOKENS[i] for i in np.flatnonzero(np.isfinite(out[0]))] == ["{"]
    assert chain_processors(None, grammar) is grammar


def test_beam_search_with_the_grammar_writes_only_balanced_readings(monkeypatch):
    from model_checks import tiny_stroke_recognizer

    model = tiny_stroke_recognizer(("x", "2", "^", "{", "}", "\\frac"), seed=5)
    tokens, end = list(model.vocabulary.tokens), model.vocabulary.end_id
    grammar = LatexGrammar(tokens, end, model.max_length)
    rng = np.random.default_rng(0)
    inputs = [
        {
            "features": rng.normal(size=(count, model.feature_dim)).astype("float32"),
            "geometry": rng.normal(size=(count, 12)).astype("float32"),
        }
        for count in (2, 3, 3, 4, 5)
    ]

    def tempt(prefix, log_probs, images):  # in place of the prior: pull toward bad LaTeX
        log_probs = log_probs.copy()
        log_probs[:, tokens.index("}")] += 6.0  # close what was never opened
        log_probs[:, tokens.index("^")] += 4.0  # a superscript with no group
        log_probs[:, end] += 5.0  # and stop
        return log_probs

    monkeypatch.setattr(model, "symbol_count_prior", lambda batch, weight, views=1: tempt)

    def well_formed(ids):
        prefix = [model.vocabulary.start_id]
        for token in [*ids, end][: model.max_length]:
            out = grammar(np.array([prefix]), np.zeros((1, len(tokens))), np.zeros(1, int))
            if not np.isfinite(out[0, token]):
                return False
            prefix.append(token)
        return True

    free = model.recognize_token_ids(inputs, beam_width=3, latex_grammar=False)
    read = model.recognize_token_ids(inputs, beam_width=3)  # the grammar: on for beams
    assert not any(well_formed(ids) for ids in free)  # tempted, every reading went wrong
    assert all(well_formed(ids) and len(ids) < model.max_length for ids in read)


def test_near_the_length_limit_only_what_can_still_close_is_allowed():
    everything = set(TOKENS) - SPECIAL
    grammar = LatexGrammar(TOKENS, end_id=ID["<end>"], max_length=6)
    # <start> x ^ { : 3 written, 3 left; } and <end> need 2 of them
    assert _allowed(grammar, ["x", "^", "{"]) == {"x", "2", "}", "+", "]"}
    assert _allowed(grammar, ["x", "^", "{", "2"]) == {"}"}  # 2 left: } then <end>
    assert "\\frac" not in _allowed(grammar, ["x"])  # \frac { } { } <end>: 5, 4 left
    assert "\\frac" in _allowed(grammar, [])
    # inside a numerator, room is kept for its }, its denominator's { } and the <end>
    assert _allowed(grammar, ["\\frac", "{"]) == {"}"}  # 3 left after it: } { } <end> is 4
    # with one more: a symbol (} { } <end> after it), not a group ({ } } { } <end>: 6)
    assert _allowed(LatexGrammar(TOKENS, ID["<end>"], 7), ["\\frac", "{"]) == everything - {
        "{",
        "<end>",
        "\\frac",
        "\\sqrt",
        "^",
        "_",
        "[",
    }
    for caption in CAPTIONS:  # every caption that fits is still readable
        tokens = caption.split()
        fitting = LatexGrammar(TOKENS, end_id=ID["<end>"], max_length=len(tokens) + 1)
        for step, token in enumerate([*tokens, "<end>"]):
            assert token in _allowed(fitting, tokens[:step]), (caption, step)
