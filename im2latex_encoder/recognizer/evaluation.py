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


def recognize_ink(
    model,
    vocabulary: Vocabulary,
    settings: DrawSettings,
    expressions: Sequence[Sequence[np.ndarray]],
    *,
    beam: int | None = None,
    batch_size: int = 32,
) -> list[str]:
    """Read handwritten expressions given as strokes: the LaTeX of each, tokens space-joined.

    The one path from ink to LaTeX: `im2latex-encoder recognize` reads an InkML file's
    strokes with it, `FormulaRecognizer.recognize_strokes` calls it, and so does the web
    server (`im2latex-encoder serve`), so a drawing reads exactly as the same strokes in a file.
    Each expression is scaled by its own strokes (its typical stroke, `reference_size`; no
    symbol labels are used, since a user's ink has none), drawn with `settings` as the model
    was trained, and decoded by `recognize_images`.

    Args:
        model: FormulaRecognizer.
        vocabulary: Vocabulary.
        settings: DrawSettings. How the model's training expressions were drawn.
        expressions: one list of strokes per expression; each stroke an ``(n, 2)`` array of
            X and Y (down), any units.
        beam: int or None. Beam width; None (or 1) decodes greedily.
        batch_size: int.

    Raises:
        ValueError: for an expression without a point.

    Example:
    >>> recognize_ink(model, vocabulary, settings, [[np.array([[0., 0.], [0., 9.]])]])  # doctest: +SKIP
    ['1']
    """
    expressions = [
        [stroke for stroke in map(_points, strokes) if len(stroke)] for strokes in expressions
    ]
    empty = [index for index, strokes in enumerate(expressions) if not strokes]
    if empty:
        raise ValueError(
            f"Each expression needs at least one stroke with a point. Received: none in "
            f"expression {empty[0]}"
        )
    data = InkExpressions.from_strokes(
        expressions, names=[str(i) for i in range(len(expressions))], truths=[""] * len(expressions)
    )
    images = [settings.render(data, index) for index in range(len(data))]
    decoded = recognize_images(model, vocabulary, images, beam=beam, batch_size=batch_size)
    return [" ".join(tokens) for tokens in decoded]


def _points(stroke) -> np.ndarray:
    points = np.asarray(stroke, np.float64)
    if points.ndim != 2 or points.shape[-1] != 2 or not np.isfinite(points).all():
        raise ValueError(
            "Each stroke must be an (n, 2) array of finite X, Y. Received: shape "
            f"{points.shape}" + ("" if np.isfinite(points).all() else " with non-finite values")
        )
    return points


def evaluate_expressions(
    model,
    vocabulary: Vocabulary,
    settings: DrawSettings | None,
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

    Both recognizers are scored as they read for `im2latex-encoder recognize`: an image
    `FormulaRecognizer` reads each expression drawn with `settings`; a model that reads stroke
    tokens itself (`recognize_stroke_tokens`, the `StrokeRecognizer`) is given each
    expression's strokes (`expressions.strokes(i)`) and estimates their scale from the ink
    alone, as it does for a file's strokes, so `settings` is not used (pass None).

    Args:
        model: FormulaRecognizer or StrokeRecognizer.
        vocabulary: Vocabulary. The model's.
        settings: DrawSettings or None. How the image model draws ink (None for a stroke model).
        expressions: InkExpressions.
        targets: one token list (or None) per expression.
        beam: int or None. Beam width; None (or 1) decodes greedily.
        batch_size: int.
        progress: bool. A progress bar.

    Returns:
        dict: `exprate`, `exprate_1`, `exprate_2`, `token_error_rate`, `n`, `skipped`,
        `skipped_reasons`, `formulas_per_second`, and `examples` (the first 20 errors).
        A stroke model's `formulas_per_second` includes drawing its stroke views and the
        classifier's pass over them; an image model's starts from the drawn images.

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
    reads_strokes = callable(getattr(model, "recognize_stroke_tokens", None))
    inputs: list
    if reads_strokes:
        inputs = [expressions.strokes(i) for i in keep]
    elif settings is None:
        raise ValueError(
            "An image recognizer is scored on its expressions drawn as it was trained: pass its "
            "`draw_settings`. Received: settings=None"
        )
    else:
        inputs = [settings.render(expressions, i) for i in keep]
    started = time.perf_counter()
    if not inputs:
        predicted = []
    elif reads_strokes:
        predicted = model.recognize_stroke_tokens(
            inputs, beam_width=int(beam or 1), batch_size=batch_size, progress=progress
        )
    else:
        predicted = recognize_images(
            model, vocabulary, inputs, beam=beam, batch_size=batch_size, progress=progress
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
