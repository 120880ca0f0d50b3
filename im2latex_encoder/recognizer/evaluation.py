"""Read images with a recognizer (`recognize_images`) and score expressions (ExpRate).

Example:
>>> tokens = recognize_images(model, vocabulary, [image])  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from im2latex_encoder.formulas.handwritten import InkExpressions
from im2latex_encoder.formulas.tokenizer import Vocabulary
from im2latex_encoder.recognizer.preprocessor import DrawSettings, bucket_batches, pad_batch

if TYPE_CHECKING:
    from im2latex_encoder.recognizer.symbol_cutter import SymbolCutter


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
    as_images: int | None = None,
    symbol_count_weight: float | None = None,
    slants: Sequence[float] | None = None,
    symbol_cutter: SymbolCutter | None = None,
) -> dict:
    """ExpRate, ≤ 1 and ≤ 2 token errors and token error rate over expressions with a target.

    Expressions whose target is None, or holds a token outside the vocabulary, are counted in
    `skipped` (with reasons), never silently dropped.

    Both recognizers are scored as they read for `im2latex-encoder recognize`: an image
    `FormulaRecognizer` reads each expression drawn with `settings`; a model that reads stroke
    tokens itself (`recognize_stroke_tokens`, the `StrokeRecognizer`) is given each
    expression's strokes (`expressions.strokes(i)`) and estimates their scale from the ink
    alone, as it does for a file's strokes, so `settings` is not used (pass None).

    With `as_images`, a stroke model reads each expression as an image instead: its strokes
    drawn with the typical symbol `as_images` pixels (`draw_expression_image`), read as
    `recognize_images` reads a photo (each connected component one token, `image_tokens`,
    the scale estimated from the components). Only the strokes reach the image; the target
    is used for scoring alone. An image with no component to read is scored as read empty.

    Args:
        model: FormulaRecognizer or StrokeRecognizer.
        vocabulary: Vocabulary. The model's.
        settings: DrawSettings or None. How the image model draws ink (None for a stroke model).
        expressions: InkExpressions.
        targets: one token list (or None) per expression.
        beam: int or None. Beam width; None (or 1) decodes greedily.
        batch_size: int.
        progress: bool. A progress bar.
        as_images: int or None. The typical symbol's size in pixels of the drawn images a
            stroke model reads instead of the strokes; None reads the strokes.
        symbol_count_weight: float or None. A stroke model's `SymbolCountPrior` weight in
            decoding (0: the decoder alone); None for the model's default. Ignored for an
            image model.
        slants: floats or None. A stroke model also reads each expression sheared by each
            (`StrokeRecognizer.recognize_stroke_tokens`' test-time augmentation; ``()``: the
            ink alone); None for the model's default. Ignored for an image model.
        symbol_cutter: `SymbolCutter` or None. With `as_images`, cut each image where it
            says two symbols touch before reading it (`image_tokens`).

    Raises:
        ValueError: `as_images` for a model that does not read stroke tokens, or not a
            positive number; `settings` None for an image model.

    Returns:
        dict: `exprate`, `exprate_1`, `exprate_2`, `token_error_rate`, `n`, `skipped`,
        `skipped_reasons`, `formulas_per_second`, and `examples` (the first 20 errors);
        with `as_images`, also `symbol_pixels` and `blank_images` (images without a
        component to read). A stroke model's `formulas_per_second` includes drawing its
        stroke views and the classifier's pass over them; an image model's starts from the
        drawn images, and so does a stroke model's with `as_images` (finding the components
        is counted).

    Example:
    >>> evaluate_expressions(model, vocabulary, settings, test, targets)["exprate"]  # doctest: +SKIP
    """
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
    if as_images is not None:
        if not reads_strokes:
            raise ValueError(
                "Images at a scale are read by their ink's connected components, as a stroke "
                "recognizer (a StrokeRecognizer) reads a photo; an image model reads "
                "expressions drawn as it was trained. Received: "
                f"{type(model).__name__} with as_images={as_images!r}"
            )
        if isinstance(as_images, bool) or not isinstance(as_images, int) or as_images < 1:
            raise ValueError(
                f"`as_images` must be a positive int (pixels). Received: as_images={as_images!r}"
            )
        return _evaluate_images(
            model,
            expressions,
            targets,
            keep,
            reasons,
            int(as_images),
            beam=beam,
            batch_size=batch_size,
            progress=progress,
            symbol_count_weight=symbol_count_weight,
            slants=slants,
            symbol_cutter=symbol_cutter,
        )
    if symbol_cutter is not None:
        raise ValueError(
            "A symbol cutter cuts images (`as_images`); the ink's strokes need no cutting. "
            "Received: symbol_cutter with as_images=None"
        )
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
            inputs,
            beam_width=int(beam or 1),
            batch_size=batch_size,
            progress=progress,
            symbol_count_weight=symbol_count_weight,
            slants=slants,
        )
    else:
        predicted = recognize_images(
            model, vocabulary, inputs, beam=beam, batch_size=batch_size, progress=progress
        )
    seconds = time.perf_counter() - started
    return _scored(expressions, targets, keep, reasons, predicted, seconds, beam)


def _scored(expressions, targets, keep, reasons, predicted, seconds, beam) -> dict:
    """`evaluate_expressions`' result: the rates, the skipped, the speed and the examples."""
    from im2latex_encoder.recognizer.metrics import edit_distance, expression_rates

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


def _evaluate_images(
    model,
    expressions: InkExpressions,
    targets: Sequence,
    keep: list,
    reasons: dict,
    symbol_pixels: int,
    *,
    beam: int | None,
    batch_size: int,
    progress: bool,
    symbol_count_weight: float | None,
    slants: Sequence[float] | None,
    symbol_cutter: SymbolCutter | None = None,
) -> dict:
    """`evaluate_expressions(..., as_images=symbol_pixels)` for a stroke model."""
    from im2latex_encoder.recognizer.stroke_components import (
        draw_expression_image,
        image_tokens,
    )

    indices = keep
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(keep, desc=f"images {symbol_pixels} px", unit="formula")
    tokens: list = []
    seconds = 0.0
    cut = bool(getattr(model, "split_junctions", False))  # as the model was trained to read
    for index in indices:
        # Drawn from the strokes alone: the truth never reaches the image.
        image = draw_expression_image(expressions.strokes(index), symbol_pixels)
        started = time.perf_counter()
        try:
            tokens.append(
                image_tokens(
                    image,
                    split_junctions=cut,
                    symbol_cutter=symbol_cutter,
                    order=getattr(model, "image_order", "left-to-right"),
                )
            )
        except ValueError:  # no component of at least MIN_COMPONENT_PIXELS: nothing to read
            tokens.append(None)
        seconds += time.perf_counter() - started
    readable = [i for i, found in enumerate(tokens) if found is not None]
    predicted: list = [[] for _ in tokens]
    started = time.perf_counter()
    if readable:
        read = model.recognize_stroke_tokens(
            [tokens[i] for i in readable],
            beam_width=int(beam or 1),
            batch_size=batch_size,
            progress=progress,
            symbol_count_weight=symbol_count_weight,
            slants=slants,
        )
        for i, row in zip(readable, read):
            predicted[i] = row
    seconds += time.perf_counter() - started
    result = _scored(expressions, targets, keep, reasons, predicted, seconds, beam)
    result["symbol_pixels"] = symbol_pixels
    result["blank_images"] = len(tokens) - len(readable)
    if symbol_cutter is not None:
        result["symbol_cutter_threshold"] = symbol_cutter.threshold
    return result
