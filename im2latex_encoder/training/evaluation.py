"""Top-1 / top-5 / per-class accuracy and the most-confused pairs of a classifier."""

from __future__ import annotations

import numpy as np


def evaluate_classifier(
    classifier,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int = 128,
    skipped: int = 0,
    max_pairs: int = 15,
    equivalent_pairs: tuple = (),
    boxes: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> dict:
    """Evaluate a `SymbolClassifier` on labelled images.

    Args:
        classifier: `SymbolClassifier`.
        images: uint8 `(N, H, W)` (255 = ink) or float `(N, H, W[, 1])` in [0, 1].
        labels: int `(N,)`, indices into `classifier.labels`.
        batch_size: int.
        skipped: int. Samples the caller could not use; reported as is.
        max_pairs: int. How many most-confused pairs to report.
        equivalent_pairs: pairs of label names that the images cannot tell apart (e.g. `c`/`C`
            once scaled to fit, `FIT_AMBIGUOUS_PAIRS`); when given, `top1_merged` counts a
            prediction of either member as right.
        boxes, groups: each symbol's box and expression (`LabelledImages.boxes`, `.groups`),
            or None. With both, and a classifier that has a `context`, the symbols are also
            read with their neighbours (`ExpressionContext.decode`).

    Returns:
        A JSON-serialisable dict: `top1`, `top5`, `n`, `skipped`, `per_class` (label →
        `{"n", "top1"}`), `confused_pairs` (`[true, predicted, count]`, most first),
        `top1_merged` (with `equivalent_pairs`), and
        `predictions` (top-1 index per sample) and `confidences`: each image read alone.
        With a context, `in_context` holds the same figures for the symbols read with their
        neighbours.

    Example:
    >>> from im2latex_encoder import SymbolClassifier
    >>> result = evaluate_classifier(SymbolClassifier(), np.zeros((2, 128, 128), np.uint8),
    ...                              np.array([0, 1]))
    >>> result["n"], 0.0 <= result["top1"] <= 1.0
    (2, True)
    """
    labels = np.asarray(labels, np.int64)
    if len(images) == 0:
        raise ValueError("Nothing to evaluate: received 0 images")
    if len(images) != len(labels):
        raise ValueError(f"Received {len(images)} images but {len(labels)} labels")
    probabilities = predict_probabilities(classifier, images, batch_size)
    result = _score(probabilities, labels, classifier.labels, max_pairs, equivalent_pairs)
    result["skipped"] = int(skipped)
    context = getattr(classifier, "context", None)
    if context is not None and boxes is not None and groups is not None:
        in_context = context.decode(probabilities, boxes, groups)
        result["in_context"] = _score(
            in_context, labels, classifier.labels, max_pairs, equivalent_pairs
        )
        result["in_context"]["skipped"] = int(skipped)
    return result


def _score(probabilities, labels, names, max_pairs, equivalent_pairs) -> dict:
    order = np.argsort(-probabilities, axis=-1)
    top1 = order[:, 0]
    in_top5 = (order[:, :5] == labels[:, None]).any(axis=1)
    per_class = {}
    for index in np.unique(labels):
        mask = labels == index
        per_class[names[index]] = {
            "n": int(mask.sum()),
            "top1": float((top1[mask] == index).mean()),
        }
    wrong = top1 != labels
    pairs: dict[tuple[int, int], int] = {}
    for truth, guess in zip(labels[wrong], top1[wrong]):
        pairs[(int(truth), int(guess))] = pairs.get((int(truth), int(guess)), 0) + 1
    confused = sorted(pairs.items(), key=lambda item: (-item[1], item[0]))[:max_pairs]
    merged = {}
    if equivalent_pairs:
        index = {name: i for i, name in enumerate(names)}
        group = np.arange(len(names))
        for a, b in equivalent_pairs:
            if a in index and b in index:
                group[index[b]] = group[index[a]]
        merged = {
            "top1_merged": float((group[top1] == group[labels]).mean()),
            "merged_pairs": [list(p) for p in equivalent_pairs],
        }
    return {
        **merged,
        "top1": float((top1 == labels).mean()),
        "top5": float(in_top5.mean()),
        "n": int(len(labels)),
        "per_class": per_class,
        "confused_pairs": [[names[t], names[g], c] for (t, g), c in confused],
        "predictions": top1.astype(int).tolist(),
        "confidences": probabilities[np.arange(len(top1)), top1].astype(float).tolist(),
    }


def predict_probabilities(classifier, images, batch_size):
    """Class probabilities for uint8 (0..255) or float images, in bounded-memory chunks."""
    import keras

    chunks = []
    for start in range(0, len(images), 4096):  # bounded memory for large sets
        block = np.asarray(images[start : start + 4096])
        if block.dtype == np.uint8:
            block = block.astype(np.float32) / 255.0
        if block.ndim == 3:
            block = block[..., None]
        chunks.append(
            classifier.predict(block.astype(np.float32), batch_size=batch_size, verbose=0)
        )
    probabilities = np.concatenate(chunks)
    if classifier.head.activation is None:
        probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(probabilities))
    return probabilities


def summarize(result: dict, name: str = "") -> str:
    """One human line for an evaluation result.

    Example:
    >>> summarize({"top1": 0.9, "top5": 0.99, "n": 100, "skipped": 2}, "val")
    'val: top-1 90.00%  top-5 99.00%  (n=100, skipped=2)'
    """
    prefix = f"{name}: " if name else ""
    merged = (
        f"  top-1 with look-alike case pairs merged {100 * result['top1_merged']:.2f}%"
        if "top1_merged" in result
        else ""
    )
    return (
        f"{prefix}top-1 {100 * result['top1']:.2f}%  top-5 {100 * result['top5']:.2f}%{merged}  "
        f"(n={result['n']}, skipped={result['skipped']})"
    )
