"""Token accuracy (padding ignored) and exact-match rate for formula recognition."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops


def token_accuracy(target_ids, predicted, *, pad_id: int = 0) -> float:
    """Fraction of non-pad target positions whose predicted token is right (teacher forcing).

    Args:
        target_ids: int array `(batch, T)`; positions equal to `pad_id` are ignored.
        predicted: int array `(batch, T)` of predicted ids, or logits `(batch, T, V)`.
        pad_id: int. The padding id.

    Returns:
        float in [0, 1]; NaN when every position is padding.

    Example:
    >>> token_accuracy([[5, 6, 2, 0]], [[5, 7, 2, 9]])
    0.6666666666666666
    """
    target = np.asarray(target_ids)
    predicted = np.asarray(predicted)
    if predicted.ndim == target.ndim + 1:
        predicted = predicted.argmax(-1)
    if predicted.shape != target.shape:
        raise ValueError(
            f"`predicted` must match `target_ids` (batch, T). Received: "
            f"{predicted.shape} vs {target.shape}"
        )
    keep = target != pad_id
    return float((predicted == target)[keep].mean()) if keep.any() else float("nan")


def exact_match_rate(
    target_sequences: Sequence[Sequence[int]], predicted_sequences: Sequence[Sequence[int]]
) -> float:
    """Fraction of formulas whose whole predicted token sequence equals the target's.

    Sequences are compared as given: pass both without `<start>`/`<end>`/`<pad>` (as
    `greedy_decode` returns them and `strip_special` makes them).

    Example:
    >>> exact_match_rate([[4, 5], [6]], [[4, 5], [6, 7]])
    0.5
    """
    if len(target_sequences) != len(predicted_sequences):
        raise ValueError(
            f"Need one prediction per target. Received: {len(predicted_sequences)} "
            f"predictions for {len(target_sequences)} targets"
        )
    if not target_sequences:
        return float("nan")
    hits = sum(
        list(map(int, t)) == list(map(int, p))
        for t, p in zip(target_sequences, predicted_sequences)
    )
    return hits / len(target_sequences)


def strip_special(
    token_ids, *, start_id: int = 1, end_id: int = 2, pad_id: int = 0
) -> list[list[int]]:
    """Turn padded id rows (`<start>` ... `<end>` `<pad>`...) into plain token lists.

    Example:
    >>> strip_special([[1, 5, 6, 2, 0, 0]])
    [[5, 6]]
    """
    rows = []
    for row in np.asarray(token_ids).tolist():
        out = []
        for token in row:
            if token == end_id:
                break
            if token not in (start_id, pad_id):
                out.append(int(token))
        rows.append(out)
    return rows


@keras.saving.register_keras_serializable(package="im2latex_encoder")
class MaskedTokenAccuracy(keras.metrics.Metric):
    """Keras metric: token accuracy over non-pad targets, for `model.compile(metrics=...)`.

    Args:
        pad_id: int. Target id to ignore.
        name: str. Metric name.
        **kwargs: standard `keras.metrics.Metric` arguments.

    Example:
    >>> import numpy as np
    >>> metric = MaskedTokenAccuracy()
    >>> metric.update_state(np.array([[5, 2, 0]]), np.eye(8)[[[5, 3, 1]]])
    >>> float(metric.result())
    0.5
    """

    def __init__(self, pad_id: int = 0, name: str = "token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pad_id = int(pad_id)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        keep = ops.cast(ops.not_equal(y_true, self.pad_id), self.dtype)
        if sample_weight is not None:
            keep = keep * ops.cast(sample_weight, self.dtype)
        hits = ops.cast(ops.equal(y_true, predicted), self.dtype) * keep
        self.correct.assign_add(ops.sum(hits))
        self.total.assign_add(ops.sum(keep))

    def result(self):
        return ops.divide_no_nan(self.correct, self.total)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "pad_id": self.pad_id}


def edit_distance(first: Sequence, second: Sequence) -> int:
    """Levenshtein distance between two token sequences (insert, delete, substitute: 1 each).

    Written here: formulas are under ~100 tokens, so a two-row dynamic programme is enough and
    spares a dependency.

    Example:
    >>> edit_distance(["x", "^", "{", "2", "}"], ["x", "^", "2"])
    2
    """
    previous = list(range(len(second) + 1))
    for i, item in enumerate(first, 1):
        current = [i]
        for j, other in enumerate(second, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (item != other))
            )
        previous = current
    return previous[-1]


def expression_rates(targets: Sequence[Sequence], predictions: Sequence[Sequence]) -> dict:
    """CROHME's expression-level scores: ExpRate and its ≤ 1 / ≤ 2 token-error variants.

    Args:
        targets: one token (or id) sequence per expression.
        predictions: one sequence per expression, same order.

    Returns:
        dict: `exprate` (share recognised exactly), `exprate_1`, `exprate_2` (share within one
        or two token edits), `token_error_rate` (edits over target tokens, all expressions)
        and `n`.

    Example:
    >>> expression_rates([["x"], ["x", "+", "1"]], [["x"], ["x", "-", "1"]])
    {'exprate': 0.5, 'exprate_1': 1.0, 'exprate_2': 1.0, 'token_error_rate': 0.25, 'n': 2}
    """
    if len(targets) != len(predictions):
        raise ValueError(
            f"Need one prediction per target. Received: {len(targets)} targets, "
            f"{len(predictions)} predictions"
        )
    distances = [edit_distance(list(t), list(p)) for t, p in zip(targets, predictions)]
    n = len(distances)
    total = sum(len(t) for t in targets)
    return {
        "exprate": sum(d == 0 for d in distances) / n if n else 0.0,
        "exprate_1": sum(d <= 1 for d in distances) / n if n else 0.0,
        "exprate_2": sum(d <= 2 for d in distances) / n if n else 0.0,
        "token_error_rate": sum(distances) / total if total else 0.0,
        "n": n,
    }
