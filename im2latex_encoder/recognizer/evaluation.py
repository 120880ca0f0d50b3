"""Read images with a recognizer (`recognize_images`) and score expressions (ExpRate).

Example:
>>> tokens = recognize_images(model, vocabulary, [image])  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from im2latex_encoder.formulas.handwritten import InkExpressions
from im2latex_encoder.formulas.tokenizer import Vocabulary
from im2latex_encoder.recognizer.preprocessor import DrawSettings, bucket_batches, pad_batch


def recognize_images(
    model,
    vocabulary: Vocabulary,
    images: Sequence[np.ndarray],
    *,
    beam: int | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> list:
    """Decode uint8 expression images (255 = ink) into token lists, in input order.

    Images are bucketed by width and padded per batch, as in training.

    Args:
        model: FormulaRecognizer.
        vocabulary: Vocabulary.
        images: uint8 ``(H, W)`` arrays of any sizes.
        beam: int or None. Beam width; None (or 1) decodes greedily.
        batch_size: int.
        progress: bool. A tqdm progress bar.

    Example:
    >>> tokens = recognize_images(model, vocabulary, [image])  # doctest: +SKIP
    """
    from im2latex_encoder.recognizer.decoding import beam_search_decode, greedy_decode

    results: list = [None] * len(images)
    batches = bucket_batches([image.shape for image in images], batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="decode", unit="batch")
    for members in batches:
        batch = pad_batch([images[i] for i in members])
        if beam and beam > 1:
            decoded = beam_search_decode(model, batch, beam_width=int(beam))
        else:
            decoded = greedy_decode(model, batch)
        for i, ids in zip(members, decoded):
            results[int(i)] = vocabulary.decode_tokens(ids)
    return results


def evaluate_expressions(
    model,
    vocabulary: Vocabulary,
    settings: DrawSettings,
    expressions: InkExpressions,
    targets: Sequence,
    *,
    beam: int | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> dict:
    """ExpRate, ≤ 1 and ≤ 2 token errors and token error rate over expressions with a target.

    Expressions whose target is None, or holds a token outside the vocabulary, are counted in
    `skipped` (with reasons), never silently dropped.

    Returns:
        dict: `exprate`, `exprate_1`, `exprate_2`, `token_error_rate`, `n`, `skipped`,
        `skipped_reasons`, `formulas_per_second`, and `examples` (the first 20 errors).

    Example:
    >>> evaluate_expressions(model, vocabulary, settings, test, targets)["exprate"]  # doctest: +SKIP
    """
    from im2latex_encoder.recognizer.metrics import edit_distance, expression_rates

    keep, reasons = [], {}
    for index, target in enumerate(targets):
        if target is None:
            reasons[expressions.names[index]] = "no target"
        elif any(token not in vocabulary for token in target):
            unknown = sorted({t for t in target if t not in vocabulary})
            reasons[expressions.names[index]] = f"tokens outside the vocabulary: {unknown}"
        else:
            keep.append(index)
    images = [settings.render(expressions, i) for i in keep]
    started = time.perf_counter()
    predicted = recognize_images(
        model, vocabulary, images, beam=beam, batch_size=batch_size, progress=progress
    )
    seconds = time.perf_counter() - started
    wanted = [list(targets[i]) for i in keep]
    result = expression_rates(wanted, predicted)
    errors = [
        {
            "name": expressions.names[i],
            "target": " ".join(t),
            "predicted": " ".join(p),
            "edits": edit_distance(t, p),
        }
        for i, t, p in zip(keep, wanted, predicted)
        if t != p
    ]
    result.update(
        {
            "skipped": len(reasons),
            "skipped_reasons": reasons,
            "formulas_per_second": len(keep) / seconds if seconds > 0 else 0.0,
            "decoding": f"beam {beam}" if beam and beam > 1 else "greedy",
            "examples": errors[:20],
        }
    )
    return result
