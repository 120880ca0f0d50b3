import random
from collections import Counter

import pytest

from im2latex_encoder.formulas.grammar import (
    STRUCTURE_TOKENS,
    FormulaGrammar,
    grammar_tokens,
    random_formulas,
)
from im2latex_encoder.formulas.tokenizer import normalize_latex, tokenize_latex
from im2latex_encoder.symbols import CROHME_SYMBOLS, symbol_to_latex


def test_same_seed_same_formulas_and_other_seed_other_formulas():
    first = random_formulas(100, seed=5)
    assert first == random_formulas(100, seed=5)
    assert first != random_formulas(100, seed=6)
    assert len(set(first)) > 80  # not one formula repeated


def test_sample_depends_only_on_the_rng_state():
    grammar = FormulaGrammar()
    rng_a, rng_b = random.Random(11), random.Random(11)
    assert [grammar.sample(rng_a) for _ in range(20)] == [grammar.sample(rng_b) for _ in range(20)]


@pytest.mark.parametrize("max_tokens", [5, 12, 30, 60])
def test_formulas_respect_the_token_bound(max_tokens):
    formulas = random_formulas(300, seed=max_tokens, max_tokens=max_tokens)
    lengths = [len(tokenize_latex(formula)) for formula in formulas]
    assert max(lengths) <= max_tokens
    if max_tokens >= 30:  # the bound is not reached by returning only atoms
        assert max(lengths) > max_tokens // 2


def test_depth_zero_has_no_nested_constructs():
    nested = {"\\frac", "\\sqrt", "\\sum", "\\int", "\\lim", "\\left("}
    for formula in random_formulas(300, seed=2, max_depth=0):
        assert not nested & set(formula.split()), formula


def test_every_grammar_token_is_emitted_and_nothing_else():
    counts = Counter(
        token for formula in random_formulas(4000, seed=0) for token in tokenize_latex(formula)
    )
    assert set(counts) == set(grammar_tokens())


def test_grammar_tokens_are_the_crohme_symbols_plus_structure():
    tokens = grammar_tokens()
    assert list(tokens) == sorted(set(tokens))
    assert {symbol_to_latex(symbol) for symbol in CROHME_SYMBOLS} <= set(tokens)
    assert set(tokens) - {symbol_to_latex(symbol) for symbol in CROHME_SYMBOLS} == set(
        STRUCTURE_TOKENS
    )


def test_formulas_are_already_normalized():
    for formula in random_formulas(500, seed=9):
        assert normalize_latex(formula) == formula
        assert formula.split() == tokenize_latex(formula)


def test_braces_are_balanced():
    for formula in random_formulas(500, seed=4):
        depth = 0
        for token in formula.split():
            depth += {"{": 1, "}": -1}.get(token, 0)
            assert depth >= 0, formula
        assert depth == 0, formula


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_tokens": 4}, "max_tokens"),
        ({"max_depth": -1}, "max_depth"),
        ({"max_tokens": 10.5}, "max_tokens"),
    ],
)
def test_invalid_bounds_say_what_was_received(kwargs, message):
    with pytest.raises(ValueError, match=f"{message}.*Received"):
        FormulaGrammar(**kwargs)


def test_negative_count_is_rejected():
    with pytest.raises(ValueError, match="Received: n=-1"):
        random_formulas(-1)
