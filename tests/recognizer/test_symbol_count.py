"""`SymbolCountPrior`: the symbol count the strokes' joins imply, as a decoding prior."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from im2latex_encoder.recognizer.symbol_count import (
    COUNT_PROBABILITY_FLOOR,
    SymbolCountPrior,
    symbol_count_log_probs,
)

SYMBOLS = np.array([False, False, False, True, True, False])  # <pad> <start> <end> x y ^
END = 2


def test_the_count_distribution_is_the_poisson_binomial_of_the_strokes_starts():
    joins = np.array([0.9, 0.3, 0.6, 0.2])  # the first stroke always starts a symbol
    exact = np.zeros(5)
    for outcome in itertools.product([0, 1], repeat=3):  # enumerate who joins, strokes 2..4
        p = np.prod([joins[i + 1] if o else 1 - joins[i + 1] for i, o in enumerate(outcome)])
        exact[4 - sum(outcome)] += p
    got = np.exp(symbol_count_log_probs(joins))
    np.testing.assert_allclose(got[1:], exact[1:], rtol=1e-9)
    assert got[0] == pytest.approx(COUNT_PROBABILITY_FLOOR)  # floored, never impossible


def test_ending_is_cheapest_at_the_likely_count_and_more_symbols_dearer_past_it():
    prior = SymbolCountPrior(
        [symbol_count_log_probs(np.array([0.0, 0.02, 0.98]))],  # two symbols, surely
        SYMBOLS,
        END,
        weight=1.0,
    )
    uniform = np.log(np.full((2, 6), 1 / 6))
    prefix = np.array([[1, 3, 5], [1, 3, 4]])  # "x ^": one symbol so far; "x y": two
    adjusted = prior(prefix, uniform, np.zeros(2, int))
    one, two = adjusted
    assert one[END] < one[3]  # after one symbol: write another rather than end
    assert two[END] > two[3]  # after two: end rather than write a third
    assert adjusted[0, 5] == uniform[0, 5]  # structure tokens are not counted
    assert two[END] > one[END]


def test_rows_read_their_own_expression_s_counts():
    tables = [symbol_count_log_probs(np.array([0.0])), symbol_count_log_probs(np.zeros(4))]
    prior = SymbolCountPrior(tables, SYMBOLS, END)
    prefix = np.array([[1, 3], [1, 3]])
    adjusted = prior(prefix, np.zeros((2, 6)), np.array([0, 1]))
    assert adjusted[0, END] > adjusted[1, END]  # one symbol ends the first, not the second


def test_weight_zero_changes_nothing_and_a_bad_weight_is_refused():
    table = [symbol_count_log_probs(np.array([0.0, 0.5]))]
    log_probs = np.log(np.full((1, 6), 1 / 6))
    same = SymbolCountPrior(table, SYMBOLS, END, weight=0.0)(np.array([[1]]), log_probs, [0])
    np.testing.assert_array_equal(same, log_probs)
    for bad in (-1.0, float("nan"), "1"):
        with pytest.raises(ValueError, match="`weight` must be a finite number >= 0"):
            SymbolCountPrior(table, SYMBOLS, END, weight=bad)
    with pytest.raises(ValueError, match="at least one stroke"):
        symbol_count_log_probs(np.array([]))


def test_docstring_examples_run():
    import doctest

    from im2latex_encoder.recognizer import symbol_count

    result = doctest.testmod(symbol_count)
    assert result.attempted > 0 and result.failed == 0
