"""`ExpressionContext`: pair counts in reading order, and exact forward-backward decoding."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from im2latex_encoder import SymbolClassifier, SymbolEncoder
from im2latex_encoder.context import (
    LAYOUT_BINS,
    ExpressionContext,
    layout_bins,
    reading_order,
)
from im2latex_encoder.data.ink import InkDataset
from im2latex_encoder.heads import ClassificationHead
from im2latex_encoder.training.evaluation import evaluate_classifier

LABELS = ("a", "b", "c")


def _box(x, y=0.0, size=1.0):
    return [x, y, x + size, y + size]


def _expressions(sequences):
    """Ink of expressions written left to right, one unit apart: ``["ab", "ca"]``."""
    symbols, labels, groups = [], [], []
    for group, text in enumerate(sequences):
        for position, label in enumerate(text):
            x = 2.0 * position
            symbols.append([np.array([[x, 0.0], [x + 1.0, 1.0]])])
            labels.append(LABELS.index(label))
            groups.append(group)
    return InkDataset.from_symbols(symbols, labels, LABELS, groups=groups)


def test_fit_counts_each_pair_in_reading_order_with_start_and_end():
    ink = _expressions(["ab"] * 3 + ["ca"])
    # Shuffle the symbols: reading order comes from the boxes, not from the file order.
    ink = ink.subset(np.array([1, 0, 3, 2, 5, 4, 7, 6]))
    counts = ExpressionContext.fit(ink).transitions
    start = end = len(LABELS)
    level = layout_bins(np.array([_box(0), _box(2)]))[1]
    assert counts[start, 0, 0] == 3 and counts[start, 0, 2] == 1
    assert counts[0, level, 1] == 3 and counts[2, level, 0] == 1
    assert counts[1, 0, end] == 3 and counts[0, 0, end] == 1
    assert counts.sum() == 4 * 3


def test_layout_bins_tell_raised_lowered_and_stacked_neighbours():
    base = _box(0)
    assert layout_bins(np.array([base, _box(1.2)]))[1] == 4  # level, beside
    assert layout_bins(np.array([base, _box(1.2, -0.5, 0.6)]))[1] == 2  # raised (an exponent)
    assert layout_bins(np.array([base, _box(1.2, -1.0, 0.6)]))[1] == 0  # raised high
    assert layout_bins(np.array([base, _box(1.2, 1.0, 0.3)]))[1] == 6  # lowered (a comma)
    assert layout_bins(np.array([base, _box(0.1, 1.5)]))[1] == 9  # stacked below (a fraction)
    assert reading_order(np.array([_box(3), _box(0), _box(0.0, 2.0)])).tolist() == [1, 2, 0]


def _brute_force(context, probabilities, boxes, weight, power):
    """Marginals by enumerating every labelling of one expression (the definition)."""
    order = reading_order(boxes)
    bins = layout_bins(boxes[order])
    k = len(context.labels)
    log_t = weight * context._log_transitions
    emission = np.log(probabilities[order]) - power * np.log(context.class_prior)
    marginal = np.zeros((len(order), k))
    for labelling in itertools.product(range(k), repeat=len(order)):
        score = log_t[k, 0, labelling[0]] + log_t[labelling[-1], 0, k]
        for i, label in enumerate(labelling):
            score += emission[i, label]
            if i:
                score += log_t[labelling[i - 1], bins[i], label]
        for i, label in enumerate(labelling):
            marginal[i, label] += np.exp(score)
    marginal /= marginal.sum(axis=1, keepdims=True)
    result = np.empty_like(marginal)
    result[order] = marginal
    return result


@pytest.mark.parametrize("weight, power", [(1.0, 1.0), (0.5, 0.5), (1.5, 0.0)])
def test_decode_gives_the_exact_marginals(weight, power):
    rng = np.random.default_rng(0)
    context = ExpressionContext(LABELS, rng.integers(0, 20, (4, LAYOUT_BINS, 4)), smoothing=3.0)
    probabilities = rng.dirichlet(np.ones(3), size=4)
    boxes = np.array([_box(4), _box(0), _box(2.2, -0.7, 0.5), _box(6, 1.0)])
    decoded = context.decode(probabilities, boxes, [0] * 4, weight=weight, prior_power=power)
    expected = _brute_force(context, probabilities, boxes, weight, power)
    np.testing.assert_allclose(decoded, expected, rtol=1e-9, atol=1e-12)


def test_neighbours_settle_what_the_image_cannot():
    # After an `a` always comes a `b`, never a `c`.
    context = ExpressionContext.fit(_expressions(["ab"] * 50 + ["cc"] * 50), weight=1.0)
    unsure = np.array([[0.98, 0.01, 0.01], [0.01, 0.44, 0.55]])  # the image leans to `c`
    boxes = np.array([_box(0), _box(2)])
    assert context.decode(unsure, boxes, [0, 0]).argmax(axis=1).tolist() == [0, 1]
    alone = context.decode(unsure, boxes, [0, 0], weight=0.0)
    np.testing.assert_allclose(alone, unsure / unsure.sum(axis=1, keepdims=True))
    # Expressions are read separately: the same symbol in its own expression stays a `c`.
    apart = context.decode(unsure, boxes, [0, 1])
    assert apart.argmax(axis=1).tolist() == [0, 2]


def test_bad_inputs_say_what_was_expected():
    context = ExpressionContext(LABELS, np.ones((4, LAYOUT_BINS, 4)))
    with pytest.raises(
        ValueError, match=r"shape \(N, 3\), one column per label. Received: \(2, 2\)"
    ):
        context.decode(np.ones((2, 2)), np.zeros((2, 4)), [0, 0])
    with pytest.raises(ValueError, match=r"`boxes` of shape \(2, 4\)"):
        context.decode(np.ones((2, 3)), np.zeros((3, 4)), [0, 0])
    with pytest.raises(ValueError, match="1 of 2 symbols with an unknown"):
        context.decode(np.ones((2, 3)), np.array([[0, 0, 1, 1], [np.nan] * 4]), [0, 0])
    with pytest.raises(ValueError, match=r"`transitions` must have shape \(4, 10, 4\)"):
        ExpressionContext(LABELS, np.ones((3, LAYOUT_BINS, 3)))
    with pytest.raises(ValueError, match="`weight` must be >= 0"):
        ExpressionContext(LABELS, np.ones((4, LAYOUT_BINS, 4)), weight=-1)
    with pytest.raises(ValueError, match=r"`prior_power` must lie in \[0, 1\]"):
        ExpressionContext(LABELS, np.ones((4, LAYOUT_BINS, 4)), prior_power=2)
    blank = InkDataset.from_symbols([[np.zeros((2, 2))]], [0], LABELS)
    from dataclasses import replace

    with pytest.raises(ValueError, match="unknown \\(NaN\\) box"):
        ExpressionContext.fit(replace(blank, boxes=np.full((1, 4), np.nan, np.float32)))


def test_config_round_trips_through_json_and_refuses_other_layouts():
    context = ExpressionContext.fit(_expressions(["ab", "ca", "bb"]), weight=0.7, prior_power=0.3)
    config = json.loads(json.dumps(context.get_config()))
    again = ExpressionContext.from_config(config)
    np.testing.assert_array_equal(again.transitions, context.transitions)
    assert (again.weight, again.prior_power, again.labels) == (0.7, 0.3, LABELS)
    with pytest.raises(ValueError, match="expected layout bins"):
        ExpressionContext.from_config({**config, "dy_edges": [0.0]})
    with pytest.raises(ValueError, match="not a valid expression context"):
        ExpressionContext.from_config({**config, "transitions": [[99, 0, 0, 1]]})


def _tiny_classifier(labels=LABELS):
    return SymbolClassifier(
        SymbolEncoder(filters=(4, 8)),
        ClassificationHead(len(labels), pooling="avg"),
        labels=labels,
        image_size=16,
    )


def test_a_classifier_carries_its_context_through_its_preset(tmp_path):
    classifier = _tiny_classifier()
    assert classifier.context is None
    classifier.context = ExpressionContext.fit(_expressions(["ab", "ca"]), weight=0.6)
    classifier.save_to_preset(str(tmp_path / "preset"))
    assert (tmp_path / "preset" / "context.json").is_file()
    loaded = SymbolClassifier.from_preset(str(tmp_path / "preset"))
    assert loaded.context.weight == 0.6
    np.testing.assert_array_equal(loaded.context.transitions, classifier.context.transitions)
    # A new head has other labels: the context does not come along.
    with pytest.warns(UserWarning, match="skipped its head"):
        relabelled = SymbolClassifier.from_preset(str(tmp_path / "preset"), labels=["p", "q"])
    assert relabelled.context is None
    with pytest.raises(ValueError, match="must count this classifier's labels"):
        relabelled.context = classifier.context
    with pytest.raises(ValueError, match="must be an ExpressionContext or None"):
        relabelled.context = {"weight": 1}


def test_evaluation_reads_symbols_alone_and_with_their_neighbours():
    classifier = _tiny_classifier()
    images = np.zeros((4, 16, 16), np.uint8)
    labels = np.array([0, 1, 0, 1])
    boxes = np.array([_box(0), _box(2), _box(0), _box(2)], np.float32)
    groups = np.array([0, 0, 1, 1])
    plain = evaluate_classifier(classifier, images, labels, boxes=boxes, groups=groups)
    assert "in_context" not in plain  # no context: nothing to read with
    classifier.context = ExpressionContext.fit(
        _expressions(["ab"] * 20 + ["c"]), weight=1.0, prior_power=1.0
    )
    both = evaluate_classifier(classifier, images, labels, boxes=boxes, groups=groups)
    assert both["top1"] == plain["top1"]  # the images alone are read as before
    # Blank images: the context alone decides, and two-symbol expressions are all `ab`.
    assert both["in_context"]["top1"] == 1.0 and both["in_context"]["n"] == 4
