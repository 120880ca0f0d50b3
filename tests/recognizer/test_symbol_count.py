"""`SymbolCountPrior`: the symbol counts the strokes' heads imply, as a beam-search prior."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from im2latex_encoder.recognizer.symbol_count import (
    COUNT_PROBABILITY_FLOOR,
    SymbolCountPrior,
    class_count_log_probs,
    symbol_count_log_probs,
)

# <pad> <start> <end> x y ^ : x is class 0, y class 1, the rest no symbol.
TOKEN_CLASSES = np.array([-1, -1, -1, 0, 1, -1])
END, X, Y, SUP = 2, 3, 4, 5


def test_the_count_distribution_is_the_poisson_binomial_of_the_strokes_starts():
    joins = np.array([0.9, 0.3, 0.6, 0.2])  # the first stroke always starts a symbol
    exact = np.zeros(5)
    for outcome in itertools.product([0, 1], repeat=3):  # enumerate who joins, strokes 2..4
        p = np.prod([joins[i + 1] if o else 1 - joins[i + 1] for i, o in enumerate(outcome)])
        exact[4 - sum(outcome)] += p
    got = np.exp(symbol_count_log_probs(joins))
    np.testing.assert_allclose(got[1:], exact[1:], rtol=1e-9)
    assert got[0] == pytest.approx(COUNT_PROBABILITY_FLOOR)  # floored, never impossible


def test_class_counts_group_strokes_by_their_joins_and_average_each_symbol_s_classes():
    joins = np.array([0.0, 0.8, 0.1])  # strokes 1-2 one symbol, stroke 3 another
    symbols = np.array([[0.6, 0.4], [1.0, 0.0], [0.5, 0.5]])
    table = np.exp(class_count_log_probs(joins, symbols))
    # Symbol 1 is class 0 with 0.8, symbol 2 with 0.5: P(two of class 0) = 0.4, none 0.1.
    np.testing.assert_allclose(table[0], [0.1, 0.5, 0.4], atol=1e-9)
    np.testing.assert_allclose(table[1], [0.4, 0.5, 0.1], atol=1e-9)
    with pytest.raises(ValueError, match="one row of symbol-class probabilities per stroke"):
        class_count_log_probs(joins, symbols[:2])


def test_ending_is_cheapest_at_the_likely_count_and_more_symbols_dearer_past_it():
    prior = SymbolCountPrior([np.array([0.0, 0.02, 0.98])], TOKEN_CLASSES, END)  # 2 symbols
    uniform = np.log(np.full((2, 6), 1 / 6))
    prefix = np.array([[1, X, SUP], [1, X, Y]])  # one symbol so far; two
    one, two = prior(prefix, uniform, np.zeros(2, int))
    assert one[END] < one[X]  # after one symbol: write another rather than end
    assert two[END] > two[X]  # after two: end rather than write a third
    assert one[SUP] == uniform[0, SUP]  # structure tokens are not counted
    assert two[END] > one[END]


def test_the_class_counts_favour_the_symbol_the_strokes_look_like():
    joins = [np.array([0.0, 0.0])]  # two symbols
    symbols = [np.array([[0.95, 0.05], [0.05, 0.95]])]  # an x and a y
    prior = SymbolCountPrior(joins, TOKEN_CLASSES, END, symbol_probabilities=symbols)
    alone = SymbolCountPrior(joins, TOKEN_CLASSES, END)
    uniform = np.log(np.full((1, 6), 1 / 6))
    after_x = np.array([[1, X]])
    with_classes, counted = prior(after_x, uniform, [0])[0], alone(after_x, uniform, [0])[0]
    assert counted[X] == counted[Y]  # the count in all cannot tell which symbol is next
    assert with_classes[Y] > with_classes[X]  # the strokes hold one x, already written
    np.testing.assert_array_equal(with_classes[[END, SUP]], counted[[END, SUP]])


def test_rows_read_their_own_expression_s_counts():
    prior = SymbolCountPrior([np.array([0.0]), np.zeros(4)], TOKEN_CLASSES, END)
    prefix = np.array([[1, X], [1, X]])
    adjusted = prior(prefix, np.zeros((2, 6)), np.array([0, 1]))
    assert adjusted[0, END] > adjusted[1, END]  # one symbol ends the first, not the second


def test_padded_rows_give_the_prior_of_their_own_strokes():
    rng = np.random.default_rng(0)
    joins, symbols = rng.normal(size=(2, 5)), rng.normal(size=(2, 5, 4))
    padded = SymbolCountPrior.from_logits(joins, symbols, TOKEN_CLASSES, END, lengths=[2, 5])
    short = SymbolCountPrior.from_logits(joins[:1, :2], symbols[:1, :2], TOKEN_CLASSES, END)
    prefix = np.array([[1, X, Y, X]])
    log_probs = np.log(np.full((1, 6), 1 / 6))
    np.testing.assert_allclose(padded(prefix, log_probs, [0]), short(prefix, log_probs, [0]))
    unpadded = SymbolCountPrior.from_logits(joins, symbols, TOKEN_CLASSES, END)
    assert not np.allclose(unpadded(prefix, log_probs, [0]), short(prefix, log_probs, [0]))
    for bad in ([2], [0, 5], [2, 6]):
        with pytest.raises(ValueError, match="`lengths` must give each of the 2 rows"):
            SymbolCountPrior.from_logits(joins, symbols, TOKEN_CLASSES, END, lengths=bad)


def test_weight_zero_changes_nothing_and_a_bad_weight_is_refused():
    joins = [np.array([0.0, 0.5])]
    log_probs = np.log(np.full((1, 6), 1 / 6))
    same = SymbolCountPrior(joins, TOKEN_CLASSES, END, weight=0.0)(np.array([[1]]), log_probs, [0])
    np.testing.assert_array_equal(same, log_probs)
    for bad in (-1.0, float("nan"), "1", True):
        with pytest.raises(ValueError, match="`weight` must be a finite number >= 0"):
            SymbolCountPrior(joins, TOKEN_CLASSES, END, weight=bad)
    with pytest.raises(ValueError, match="at least one stroke"):
        symbol_count_log_probs(np.array([]))


def test_docstring_examples_run():
    import doctest

    from im2latex_encoder.recognizer import symbol_count

    result = doctest.testmod(symbol_count)
    assert result.attempted > 0 and result.failed == 0
