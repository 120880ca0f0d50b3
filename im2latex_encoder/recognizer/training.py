"""Training chores for `FormulaRecognizer`: compile defaults, learning curves, evaluation."""

from __future__ import annotations

import keras
import numpy as np

from im2latex_encoder.recognizer.decoding import beam_search_decode, greedy_decode
from im2latex_encoder.recognizer.metrics import (
    MaskedTokenAccuracy,
    exact_match_rate,
    strip_special,
    token_accuracy,
)


def compile_recognizer(
    model,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-4,
    clipnorm: float | None = 1.0,
    jit_compile="auto",
    **compile_kwargs,
):
    """Compile with AdamW, cross-entropy over logits that ignores `<pad>`, token accuracy.

    Args:
        model: FormulaRecognizer.
        learning_rate: float.
        weight_decay: float. AdamW's decoupled weight decay.
        clipnorm: float or None. Gradient norm clipping.
        jit_compile: bool or `"auto"`. XLA compilation; it costs ~10 s up front on a CPU,
            which pays off over hundreds of steps but not over a handful.
        **compile_kwargs: more `keras.Model.compile` arguments, e.g. ``run_eagerly=True``
            (no tracing at all: the fastest way through a handful of steps).

    Returns:
        The model, compiled.

    Example:
    >>> from im2latex_encoder import SymbolEncoder
    >>> from im2latex_encoder.recognizer import FormulaRecognizer
    >>> model = compile_recognizer(FormulaRecognizer(SymbolEncoder(), 10, hidden_dim=16))
    >>> model.metrics_names[:1]
    ['loss']
    """
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate, weight_decay=weight_decay, clipnorm=clipnorm
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
        metrics=[MaskedTokenAccuracy()],
        jit_compile=jit_compile,
        **compile_kwargs,
    )
    return model


def _arrays(dataset):
    images = dataset.images.astype("float32")
    if dataset.images.dtype == np.uint8:
        images /= 255.0
    return images[..., None], dataset.token_ids.astype("int32")


def fit_with_curve(
    model,
    train,
    validation,
    *,
    steps: int,
    eval_every: int,
    batch_size: int = 32,
    seed: int = 0,
    verbose: int = 0,
) -> dict:
    """Train for `steps` batches and record validation token accuracy every `eval_every`.

    Training is teacher-forced on `train` (a `FormulaDataset`), reshuffled each pass; the
    validation accuracy is teacher-forced too (the standard "token accuracy" of im2latex
    papers), pad positions ignored. The model must be compiled (`compile_recognizer`).

    Args:
        model: FormulaRecognizer, compiled.
        train: FormulaDataset.
        validation: FormulaDataset.
        steps: int. Training batches in all; a multiple of `eval_every`.
        eval_every: int. Batches between two validation measurements.
        batch_size: int.
        seed: int. Shuffle seed.
        verbose: int. Keras `fit` verbosity.

    Returns:
        dict with `steps` (list of int), `token_accuracy` and `loss` (validation, one per
        measurement) and `train_loss`.

    Example:
    >>> curve = fit_with_curve(model, train, validation, steps=200, eval_every=50)  # doctest: +SKIP
    >>> curve["steps"]  # doctest: +SKIP
    [50, 100, 150, 200]
    """
    from im2latex_encoder.formulas import make_teacher_forcing_dataset

    if steps < 1 or eval_every < 1 or steps % eval_every:
        raise ValueError(
            f"`steps` must be a positive multiple of `eval_every`. Received: "
            f"steps={steps}, eval_every={eval_every}"
        )
    train_batches = make_teacher_forcing_dataset(
        train, batch_size=batch_size, seed=seed, drop_remainder=len(train) >= batch_size
    ).repeat()
    validation_batches = make_teacher_forcing_dataset(validation, batch_size=64, shuffle=False)
    history = model.fit(
        train_batches,
        steps_per_epoch=eval_every,
        epochs=steps // eval_every,
        validation_data=validation_batches,
        shuffle=False,
        verbose=verbose,
    )
    return {
        "steps": [eval_every * (index + 1) for index in range(steps // eval_every)],
        "token_accuracy": [float(v) for v in history.history["val_token_accuracy"]],
        "loss": [float(v) for v in history.history["val_loss"]],
        "train_loss": [float(v) for v in history.history["loss"]],
    }


def evaluate_recognizer(
    model, dataset, *, decode: str | None = "greedy", beam_width: int = 4, batch_size: int = 64
) -> dict:
    """Teacher-forced token accuracy and, with `decode`, the exact-match rate of decoding.

    Args:
        model: FormulaRecognizer.
        dataset: FormulaDataset.
        decode: `"greedy"`, `"beam"` or None (skip the exact-match rate, which decodes
            token by token and is the slow part).
        beam_width: int. For `decode="beam"`.
        batch_size: int.

    Returns:
        dict with `token_accuracy`, and `exact_match` when decoding.

    Example:
    >>> evaluate_recognizer(model, validation, decode="greedy")  # doctest: +SKIP
    {'token_accuracy': 0.91, 'exact_match': 0.42}
    """
    if decode not in ("greedy", "beam", None):
        raise ValueError(f"`decode` must be 'greedy', 'beam' or None. Received: decode={decode!r}")
    images, ids = _arrays(dataset)
    logits = model.predict((images, ids[:, :-1]), batch_size=batch_size, verbose=0)
    result = {"token_accuracy": token_accuracy(ids[:, 1:], logits)}
    if decode is not None:
        predicted = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            if decode == "greedy":
                predicted += greedy_decode(model, chunk)
            else:
                predicted += beam_search_decode(model, chunk, beam_width=beam_width)
        result["exact_match"] = exact_match_rate(strip_special(ids), predicted)
    return result
