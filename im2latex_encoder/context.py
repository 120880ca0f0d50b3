"""Read each symbol of a handwritten expression with its neighbours (`ExpressionContext`).

An image of one symbol cannot separate ``\\times`` from ``x``, a ``1`` from a ``|`` or a comma,
a ``C`` from a ``c``: its neighbours can (a ``\\times`` sits between two numbers, an ``x`` takes
an exponent, a comma sits low). `ExpressionContext` holds how often one symbol follows another
in the training expressions, read left to right, and where the next symbol sits (raised,
level, lowered; beside or stacked). `ExpressionContext.decode` combines a classifier's
probabilities for every symbol of an expression with those counts (a hidden Markov chain over
the symbols in reading order, solved exactly by forward-backward), and returns each symbol's
probabilities given the whole expression.

Counts and a chain rather than a learned sequence model: they fit in seconds from the labels
alone (no classifier output on the training ink, which a trained classifier reads too well to
learn its mistakes from), have two weights to choose on held-out writers, and cannot overfit
a classifier's quirks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from im2latex_encoder.data.ink import group_members

if TYPE_CHECKING:
    from im2latex_encoder.data.ink import InkDataset

#: Edges of the vertical-offset bins of the next symbol's centre, in typical symbol sizes
#: (Y down: negative is raised, as an exponent; positive is lowered, as a subscript or comma).
DY_EDGES = (-0.75, -0.25, 0.25, 0.75)
#: Share of the narrower symbol's width two symbols must share to count as stacked (a fraction,
#: a limit's subscript) rather than side by side.
STACKED_OVERLAP = 0.5

#: `ExpressionContext.get_config`'s format; `from_config` refuses others.
CONTEXT_FORMAT_VERSION = 1


def reading_order(boxes: np.ndarray) -> np.ndarray:
    """Indices of `boxes` (one expression's ``(left, top, right, bottom)``) left to right.

    By the centre of each box, then its top: the order the chain reads an expression in.

    Example:
    >>> reading_order(np.array([[4, 0, 5, 1], [0, 0, 1, 1], [2, 0, 3, 1]], float)).tolist()
    [1, 2, 0]
    """
    boxes = np.asarray(boxes, np.float64)
    centre = (boxes[:, 0] + boxes[:, 2]) / 2
    return np.lexsort((boxes[:, 1], centre))


def layout_bins(boxes: np.ndarray) -> np.ndarray:
    """The layout bin of each symbol relative to the one before it, for boxes in reading order.

    ``bin = 2 * dy_bin + stacked``: `dy_bin` is where the symbol's centre sits against the
    previous one's (`DY_EDGES`, 5 bins from raised to lowered), `stacked` whether the two
    share at least `STACKED_OVERLAP` of the narrower one's width. The first symbol gets 0
    (it has no previous one; the chain uses its own start counts there).

    Example:
    >>> boxes = np.array([[0, 0, 1, 1], [1.1, -0.5, 1.5, 0.1], [1.1, 1.0, 1.5, 1.6]], float)
    >>> layout_bins(boxes).tolist()
    [0, 2, 9]
    """
    boxes = np.asarray(boxes, np.float64)
    bins = np.zeros(len(boxes), np.int64)
    if len(boxes) < 2:
        return bins
    previous, current = boxes[:-1], boxes[1:]
    dy = (current[:, 1] + current[:, 3]) / 2 - (previous[:, 1] + previous[:, 3]) / 2
    dy_bin = np.searchsorted(np.asarray(DY_EDGES), dy, side="right")
    shared = np.minimum(previous[:, 2], current[:, 2]) - np.maximum(previous[:, 0], current[:, 0])
    narrower = np.maximum(
        np.minimum(previous[:, 2] - previous[:, 0], current[:, 2] - current[:, 0]), 1e-6
    )
    stacked = (shared / narrower >= STACKED_OVERLAP).astype(np.int64)
    bins[1:] = 2 * dy_bin + stacked
    return bins


#: How many layout bins `layout_bins` gives.
LAYOUT_BINS = 2 * (len(DY_EDGES) + 1)


class ExpressionContext:
    """Counts of which symbol follows which in handwritten expressions, and where it sits.

    Fit it on labelled ink (`fit`), then `decode` a classifier's probabilities for the symbols
    of whole expressions: each symbol's probabilities given its neighbours too. A classifier
    carries one as `SymbolClassifier.context`, saved in its preset as ``context.json``.

    Args:
        labels: sequence of str. The classes, in the classifier's order.
        transitions: int ``(K + 1, LAYOUT_BINS, K + 1)`` counts: ``[a, bin, b]`` is how often
            class `b` followed class `a` with layout `bin` (index K is the expression's start
            as `a` and its end as `b`).
        weight: float >= 0. How much the neighbours count against the image (0: not at all,
            `decode` returns the classifier's probabilities). The default, 0.3, and
            `prior_power`'s were chosen on 51 writers held out from training
            (`pretrain/RECORD.md`).
        prior_power: float in [0, 1]. How much of the training class frequencies to divide out
            of the classifier's probabilities before the chain adds its own (1: all of it, the
            textbook hybrid; 0: none).
        smoothing: float > 0. Pseudo-counts that pull rare pairs toward the layout's and the
            class's overall frequencies.

    Example:
    >>> from im2latex_encoder.data.ink import InkDataset
    >>> square = [np.array([[0.0, 0.0], [1.0, 1.0]])]
    >>> ink = InkDataset.from_symbols([square] * 4, [0, 1, 0, 1], ("a", "b"),
    ...                               groups=[0, 0, 1, 1])
    >>> context = ExpressionContext.fit(ink)
    >>> context.transitions.shape
    (3, 10, 3)
    """

    def __init__(
        self,
        labels: Sequence[str],
        transitions: np.ndarray,
        *,
        weight: float = 0.3,
        prior_power: float = 0.5,
        smoothing: float = 10.0,
    ):
        self.labels = tuple(str(label) for label in labels)
        k = len(self.labels)
        transitions = np.asarray(transitions)
        if transitions.shape != (k + 1, LAYOUT_BINS, k + 1):
            raise ValueError(
                f"`transitions` must have shape ({k + 1}, {LAYOUT_BINS}, {k + 1}) for "
                f"{k} labels. Received: {transitions.shape}"
            )
        if not np.isfinite(transitions).all() or (transitions < 0).any():
            raise ValueError("`transitions` must be finite counts >= 0")
        if not weight >= 0:
            raise ValueError(f"`weight` must be >= 0. Received: weight={weight!r}")
        if not 0 <= prior_power <= 1:
            raise ValueError(
                f"`prior_power` must lie in [0, 1]. Received: prior_power={prior_power!r}"
            )
        if not smoothing > 0:
            raise ValueError(f"`smoothing` must be > 0. Received: smoothing={smoothing!r}")
        self.transitions = transitions.astype(np.float64)
        self.weight = float(weight)
        self.prior_power = float(prior_power)
        self.smoothing = float(smoothing)
        self._log_transitions = self._estimate()

    @classmethod
    def fit(cls, ink: InkDataset, **options) -> ExpressionContext:
        """Count the symbol pairs of every expression of `ink` (an `InkDataset` with boxes).

        Args:
            ink: `InkDataset` whose `boxes` are known (read by `prepare_crohme_ink`).
            **options: `weight`, `prior_power`, `smoothing` (see the class).

        Raises:
            ValueError: if a symbol's box is unknown (NaN).

        Example:
        >>> ExpressionContext.fit(ink).labels  # doctest: +SKIP
        ('!', '(', ...)
        """
        _check_boxes(ink.boxes)
        k = len(ink.label_names)
        counts = np.zeros((k + 1, LAYOUT_BINS, k + 1), np.int64)
        for members in group_members(ink.groups):
            order = members[reading_order(ink.boxes[members])]
            labels = ink.labels[order]
            bins = layout_bins(ink.boxes[order])
            previous = np.concatenate([[k], labels])
            following = np.concatenate([labels, [k]])
            np.add.at(counts, (previous, np.concatenate([bins, [0]]), following), 1)
        return cls(ink.label_names, counts, **options)

    def _estimate(self) -> np.ndarray:
        """Log P(next | previous, layout), backed off to P(next | layout) and P(next)."""
        counts = self.transitions
        beta = self.smoothing
        unigram = counts.sum(axis=(0, 1)) + 1.0
        unigram /= unigram.sum()
        by_layout = counts.sum(axis=0)  # (bins, next)
        layout = (by_layout + beta * unigram) / (by_layout.sum(axis=1, keepdims=True) + beta)
        full = (counts + beta * layout[None]) / (counts.sum(axis=2, keepdims=True) + beta)
        return np.log(full)

    def get_config(self) -> dict:
        """A JSON-serialisable description (sparse counts, weights, layout bins).

        Saved as ``context.json`` in a classifier's preset (`SymbolClassifier.context`).

        Example:
        >>> context = ExpressionContext(("a",), np.ones((2, 10, 2)), weight=0.5)
        >>> ExpressionContext.from_config(context.get_config()).weight
        0.5
        """
        return {
            "format_version": CONTEXT_FORMAT_VERSION,
            "labels": list(self.labels),
            "weight": self.weight,
            "prior_power": self.prior_power,
            "smoothing": self.smoothing,
            "dy_edges": list(DY_EDGES),
            "stacked_overlap": STACKED_OVERLAP,
            "transitions": _sparse(self.transitions),
        }

    @classmethod
    def from_config(cls, config: dict) -> ExpressionContext:
        """Rebuild an `ExpressionContext` from `get_config`'s dict.

        Raises:
            ValueError: if the dict is of another format, has other layout bins, or is invalid.

        Example:
        >>> ExpressionContext.from_config({"format_version": 2})
        Traceback (most recent call last):
        ...
        ValueError: expected an expression context of format 1. Received: format 2
        """
        if not isinstance(config, dict) or config.get("format_version") != CONTEXT_FORMAT_VERSION:
            found = config.get("format_version") if isinstance(config, dict) else config
            raise ValueError(
                f"expected an expression context of format {CONTEXT_FORMAT_VERSION}. "
                f"Received: format {found}"
            )
        if (
            list(config.get("dy_edges", [])) != list(DY_EDGES)
            or config.get("stacked_overlap") != STACKED_OVERLAP
        ):
            raise ValueError(
                f"expected layout bins dy_edges={list(DY_EDGES)}, stacked_overlap="
                f"{STACKED_OVERLAP}. Received: dy_edges={config.get('dy_edges')}, "
                f"stacked_overlap={config.get('stacked_overlap')}; fit the context again"
            )
        try:
            labels = list(config["labels"])
            counts = np.zeros((len(labels) + 1, LAYOUT_BINS, len(labels) + 1), np.int64)
            for a, layout, b, count in config["transitions"]:
                counts[a, layout, b] = count
            return cls(
                labels,
                counts,
                weight=config["weight"],
                prior_power=config["prior_power"],
                smoothing=config["smoothing"],
            )
        except (KeyError, TypeError, IndexError) as error:
            raise ValueError(f"not a valid expression context: {error!r}") from None

    @property
    def class_prior(self) -> np.ndarray:
        """Each class's share of the symbols counted: float64 ``(K,)``.

        Example:
        >>> ExpressionContext(("a", "b"), np.ones((3, 10, 3))).class_prior.round(2).tolist()
        [0.5, 0.5]
        """
        counts = self.transitions[:, :, :-1].sum(axis=(0, 1)) + 1.0
        return counts / counts.sum()

    def decode(
        self,
        probabilities: np.ndarray,
        boxes: np.ndarray,
        groups: Sequence[int] | np.ndarray,
        *,
        weight: float | None = None,
        prior_power: float | None = None,
    ) -> np.ndarray:
        """Each symbol's class probabilities given its whole expression: float64 ``(N, K)``.

        Args:
            probabilities: float ``(N, K)``. A classifier's probabilities for N symbols.
            boxes: float ``(N, 4)``. Their boxes (`InkDataset.boxes`).
            groups: int ``(N,)``. Their expression; symbols of one expression are read together.
            weight, prior_power: override the context's own (see the class).

        Raises:
            ValueError: for shapes that do not match, or unknown (NaN) boxes.

        Example:
        >>> context = ExpressionContext(("a", "b"), np.ones((3, 10, 3)))
        >>> posterior = context.decode(np.array([[0.9, 0.1]]), np.array([[0, 0, 1, 1.]]), [0])
        >>> posterior.round(2).tolist()
        [[0.9, 0.1]]
        """
        probabilities = np.asarray(probabilities, np.float64)
        boxes = np.asarray(boxes, np.float64)
        groups = np.asarray(groups)
        k = len(self.labels)
        n = len(probabilities)
        if probabilities.ndim != 2 or probabilities.shape[1] != k:
            raise ValueError(
                f"`probabilities` must have shape (N, {k}), one column per label. "
                f"Received: {probabilities.shape}"
            )
        if boxes.shape != (n, 4) or groups.shape != (n,):
            raise ValueError(
                f"expected `boxes` of shape ({n}, 4) and `groups` of shape ({n},), one per "
                f"symbol. Received: {boxes.shape} and {groups.shape}"
            )
        _check_boxes(boxes)
        weight = self.weight if weight is None else float(weight)
        power = self.prior_power if prior_power is None else float(prior_power)
        if weight == 0:
            return probabilities / probabilities.sum(axis=1, keepdims=True)
        log_emission = np.log(np.clip(probabilities, 1e-12, None)) - power * np.log(
            self.class_prior
        )
        chain = weight * self._log_transitions
        result = np.empty_like(probabilities)
        for members in group_members(groups):
            order = members[reading_order(boxes[members])]
            bins = layout_bins(boxes[order])
            result[order] = _forward_backward(log_emission[order], chain, bins)
        return result


def _forward_backward(log_emission: np.ndarray, chain: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Marginals of a chain: start (row K of `chain`), emissions, transitions, end (column K)."""
    n, k = log_emission.shape
    alpha = np.empty((n, k))
    alpha[0] = chain[k, 0, :k] + log_emission[0]
    for i in range(1, n):
        step = chain[:k, bins[i], :k]
        alpha[i] = _logsumexp(alpha[i - 1][:, None] + step, axis=0) + log_emission[i]
    beta = np.empty((n, k))
    beta[n - 1] = chain[:k, 0, k]
    for i in range(n - 2, -1, -1):
        step = chain[:k, bins[i + 1], :k]
        beta[i] = _logsumexp(step + (log_emission[i + 1] + beta[i + 1])[None, :], axis=1)
    log_marginal = alpha + beta
    log_marginal -= log_marginal.max(axis=1, keepdims=True)
    marginal = np.exp(log_marginal)
    return marginal / marginal.sum(axis=1, keepdims=True)


def _logsumexp(values: np.ndarray, axis: int) -> np.ndarray:
    # By hand: scipy is not a dependency, and np.logaddexp.reduce takes a log per pair.
    top = values.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.exp(values - top).sum(axis=axis))


def _check_boxes(boxes: np.ndarray) -> None:
    known = np.isfinite(np.asarray(boxes, np.float64).reshape(-1, 4)).all(axis=1)
    unknown = np.logical_not(known)
    total = int(known.size)
    if unknown.any():
        raise ValueError(
            "expected every symbol's box in its expression (InkDataset.boxes, read by "
            f"prepare_crohme_ink). Received: {int(unknown.sum())} of {total} symbols "
            "with an unknown (NaN) box; read the ink again with this version of the package"
        )


def _sparse(counts: np.ndarray) -> list:
    """Nonzero counts as ``[a, bin, b, count]`` rows (the table is mostly zeros)."""
    index = np.argwhere(counts > 0)
    return [[*map(int, row), int(counts[tuple(row)])] for row in index]
