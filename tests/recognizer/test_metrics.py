"""Tests for `im2latex_encoder.recognizer.metrics`."""

import numpy as np
import pytest

from im2latex_encoder.recognizer import (
    MaskedTokenAccuracy,
    edit_distance,
    exact_match_rate,
    expression_rates,
    strip_special,
    token_accuracy,
)
from model_checks import check_config_round_trip


def test_token_accuracy_ignores_padding():
    target = np.array([[5, 6, 2, 0, 0], [7, 2, 0, 0, 0]])
    predicted = np.array([[5, 9, 2, 5, 5], [7, 2, 9, 9, 9]])
    assert token_accuracy(target, predicted) == pytest.approx(4 / 5)


def test_token_accuracy_accepts_logits_and_checks_shapes():
    target = np.array([[4, 2, 0]])
    logits = np.eye(6)[[[4, 3, 1]]]
    assert token_accuracy(target, logits) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="must match"):
        token_accuracy(target, np.array([[4, 2]]))
    assert np.isnan(token_accuracy(np.zeros((1, 3)), np.zeros((1, 3))))


def test_keras_metric_agrees_with_numpy_and_round_trips():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 6, (4, 7))
    logits = rng.normal(size=(4, 7, 6)).astype("float32")
    metric = MaskedTokenAccuracy()
    metric.update_state(target[:2], logits[:2])
    metric.update_state(target[2:], logits[2:])
    assert float(metric.result()) == pytest.approx(token_accuracy(target, logits), abs=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0
    check_config_round_trip(MaskedTokenAccuracy(pad_id=3))


def test_exact_match_and_strip_special():
    targets = strip_special([[1, 4, 5, 2, 0], [1, 6, 2, 0, 0], [1, 7, 2, 0, 0]])
    assert targets == [[4, 5], [6], [7]]
    assert exact_match_rate(targets, [[4, 5], [6, 6], [7]]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="one prediction per target"):
        exact_match_rate(targets, [[4, 5]])


@pytest.mark.parametrize(
    "first, second, distance",
    [
        ([], [], 0),
        (["a"], [], 1),
        (["a", "b"], ["b", "a"], 2),
        (list("kitten"), list("sitting"), 3),
    ],
)
def test_edit_distance(first, second, distance):
    assert edit_distance(first, second) == distance == edit_distance(second, first)


def test_expression_rates_count_exact_and_near_misses():
    targets = [["x"], ["x", "+", "1"], ["a", "b", "c"], ["y"]]
    predicted = [["x"], ["x", "-", "1"], ["a"], []]
    rates = expression_rates(targets, predicted)
    assert rates == {
        "exprate": 0.25,
        "exprate_1": 0.75,
        "exprate_2": 1.0,
        "token_error_rate": 4 / 8,
        "n": 4,
    }
    with pytest.raises(ValueError, match="one prediction per target"):
        expression_rates(targets, predicted[:2])
