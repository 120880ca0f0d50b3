"""Formula reading speed: the stroke recognizer against the image recognizer, same ink.

Times `recognize_strokes` of both recognizers on the same handwritten expressions, greedy, at
batch 1 (one expression per call, as the web server reads a drawing) and at batch 32 (a list
of 32 expressions per call, as `recognize` and `evaluate-formulas` read files), interleaved
round by round (`benchmarks._harness.interleave`). Each call does everything a user's call
does: the stroke recognizer draws every stroke's views and runs the symbol classifier on them,
then the token encoder and the decoder; the image recognizer draws the expression and runs its
conv encoder and decoder. Reports formulas/s of each and the ratios stroke / image at both
batch sizes (target >= 1: the design that learns on a CPU reads at least as fast).

The stroke recognizer pads a call's expressions to the longest under a padding mask
(`pad_tokens`), so a call of 32 expressions is one decoder batch, as the image recognizer's is.

Models: the shipped presets (``crohme-formulas`` when it holds a stroke recognizer, and
``crohme-formulas-image``), or the folders in ``IM2LATEX_BENCH_STROKES`` /
``IM2LATEX_BENCH_RECOGNIZER``; where one is missing, a randomly initialised model of the
default widths (a random decoder rarely stops early: slower than a trained one). Expressions:
the first 32 CROHME 2016 test files under ``IM2LATEX_CROHME`` (default
``../shared/data/crohme``), else 32 synthetic ones made of straight strokes.
"""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks._harness import Options, Result, interleave, rate_figure, rates, ratio, require

STROKES_ENV = "IM2LATEX_BENCH_STROKES"
IMAGE_ENV = "IM2LATEX_BENCH_RECOGNIZER"
CROHME_ENV = "IM2LATEX_CROHME"
EXPRESSIONS = 32
BATCH = 32
ROUNDS = 3
#: Load the trained models (presets or the folders named above); tiny runs use random ones.
USE_TRAINED = True
#: Random models' widths (`train_strokes`' and `train_handwritten`'s defaults).
RANDOM_WIDTHS = {"hidden_dim": 128, "layers": 3, "max_length": 64}
TINY = {
    "EXPRESSIONS": 2,
    "BATCH": 2,
    "RANDOM_WIDTHS": {"hidden_dim": 16, "layers": 1, "max_length": 4},
    "USE_TRAINED": False,
}


def _expressions(count: int) -> tuple[list, str]:
    root = os.environ.get(CROHME_ENV) or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "..",
        "shared",
        "data",
        "crohme",
    )
    folder = os.path.join(root, "test2016")
    if os.path.isdir(folder):
        from im2latex_encoder.data.inkml import read_inkml

        names = sorted(n for n in os.listdir(folder) if n.endswith(".inkml"))[:count]
        if names:
            expressions = [
                [s for s in read_inkml(os.path.join(folder, n)).strokes() if len(s)] for n in names
            ]
            return expressions, f"{len(names)} CROHME 2016 test expressions"
    rng = np.random.default_rng(0)
    expressions = []
    for _ in range(count):
        strokes = []
        for index in range(int(rng.integers(3, 12))):
            start = np.array([index * 12.0, 0.0]) + rng.uniform(0, 4, 2)
            strokes.append(np.stack([start, start + rng.uniform(-6, 6, 2) + [0, 10]]))
        expressions.append(strokes)
    return expressions, f"{count} synthetic expressions of straight strokes"


def _stroke_model():
    from im2latex_encoder import SymbolEncoder
    from im2latex_encoder.recognizer.saving import load_formula_recognizer
    from im2latex_encoder.recognizer.stroke_recognizer import StrokeRecognizer

    for source in (os.environ.get(STROKES_ENV), "crohme-formulas"):
        if not source or not USE_TRAINED:
            continue
        try:
            model = load_formula_recognizer(source)
        except (OSError, ValueError):
            continue
        if isinstance(model, StrokeRecognizer):
            return model, f"stroke recognizer {source}"
    widths = RANDOM_WIDTHS
    model = StrokeRecognizer(
        SymbolEncoder(),
        None,
        [f"t{i}" for i in range(100)],
        hidden_dim=widths["hidden_dim"],
        encoder_layers=widths["layers"],
        decoder_layers=widths["layers"],
        num_heads=2,
        intermediate_dim=2 * widths["hidden_dim"],
        max_length=widths["max_length"],
    )
    return model, "a random stroke recognizer"


def _image_model():
    from im2latex_encoder import SymbolEncoder
    from im2latex_encoder.formulas.tokenizer import Vocabulary
    from im2latex_encoder.recognizer import DrawSettings, FormulaRecognizer
    from im2latex_encoder.recognizer.saving import load_formula_recognizer

    for source in (os.environ.get(IMAGE_ENV), "crohme-formulas-image"):
        if not source or not USE_TRAINED:
            continue
        try:
            model = load_formula_recognizer(source)
        except (OSError, ValueError):
            continue
        if isinstance(model, FormulaRecognizer):
            return model, f"image recognizer {source}"
    widths = RANDOM_WIDTHS
    vocabulary = Vocabulary([f"t{i}" for i in range(100)])
    model = FormulaRecognizer(
        SymbolEncoder(),
        len(vocabulary),
        hidden_dim=widths["hidden_dim"],
        num_layers=widths["layers"],
        num_heads=2,
        max_length=widths["max_length"],
        vocabulary=vocabulary,
        draw_settings=DrawSettings(18.0),
    )
    return model, "a random image recognizer"


def run(options: Options) -> Result:
    """Formulas/s of both recognizers at batch 1 and batch 32, and their ratios.

    Example:
    >>> run(Options(tiny=True)).ratios[0].name  # doctest: +SKIP
    'stroke / image formulas/s, batch 1'
    """
    require("im2latex_encoder.recognizer.stroke_recognizer", "the stroke recognizer")
    strokes_model, strokes_note = _stroke_model()
    image_model, image_note = _image_model()
    expressions, data_note = _expressions(EXPRESSIONS)
    batch = expressions[:BATCH]

    def one_by_one(model):
        def once() -> float:
            started = time.perf_counter()
            for expression in batch:
                model.recognize_strokes([expression], beam_width=1)
            return time.perf_counter() - started

        return once

    def together(model):
        def once() -> float:
            started = time.perf_counter()
            model.recognize_strokes(batch, beam_width=1)
            return time.perf_counter() - started

        return once

    candidates = {
        "strokes b1": one_by_one(strokes_model),
        "image b1": one_by_one(image_model),
        f"strokes b{BATCH}": together(strokes_model),
        f"image b{BATCH}": together(image_model),
    }
    # Two untimed rounds: the decoders' compiled steps generalise their shapes on the second.
    seconds = interleave(candidates, options.rounds(ROUNDS), warmup=2)
    result = Result("formulas")
    for name, values in seconds.items():
        result.figures.append(rate_figure(name, values, len(batch), "formulas/s"))
    for size in ("b1", f"b{BATCH}"):
        result.ratios.append(
            ratio(
                f"stroke / image formulas/s, batch {size[1:]}",
                rates(seconds[f"strokes {size}"], len(batch)),
                rates(seconds[f"image {size}"], len(batch)),
                target=1.0,
            )
        )
    counts = [len(e) for e in batch]
    result.notes += [
        f"models: {strokes_note}; {image_note}",
        f"expressions: {data_note}; the batch of {len(batch)} holds {min(counts)} to "
        f"{max(counts)} strokes an expression (one padded decoder batch)",
        "greedy decoding; each call includes drawing (views or the expression image)",
    ]
    return result
