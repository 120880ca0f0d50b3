"""Transfer to formulas: does the pretrained encoder make an image-to-LaTeX decoder learn faster?

Measures validation token accuracy (teacher-forced, `<pad>` ignored) against training steps
for one `FormulaRecognizer` decoder on the same typeset formulas (`im2latex_encoder.formulas`),
the same budget and the same seeds, with three encoders: the preset's conv stack frozen, the
preset's conv stack fine-tuned, and the same architecture from scratch. Reports each run's
final token accuracy and greedy exact-match rate, the steps the fine-tuned pretrained run needs
to reach the scratch run's final token accuracy, and the speed-up ``scratch steps / pretrained
steps`` (target: >= 2, i.e. the pretrained run needs at most half the steps). Runs are
sequential (learning curves cannot interleave); the figure is steps, not seconds, so machine
load does not change it.

Environment: ``IM2LATEX_PRESET`` (default ``crohme101``) picks the preset;
``IM2LATEX_TRANSFER_FONTSIZE`` (default 14) the formula font size, to probe the scale
mismatch between 128x128 pretraining symbols and glyphs of a 64-px formula line.
"""

from __future__ import annotations

import json
import os

from benchmarks._harness import BenchmarkUnavailable, Figure, Options, Ratio, Result, require

RUNS = ("frozen", "fine-tuned", "scratch")


def _settings(quick: bool) -> dict:
    if quick:
        return {"train": 256, "validation": 64, "steps": 40, "eval_every": 10, "batch_size": 16}
    return {"train": 2000, "validation": 200, "steps": 300, "eval_every": 25, "batch_size": 32}


def _steps_to_reach(curve: dict, threshold: float) -> int | None:
    for step, accuracy in zip(curve["steps"], curve["token_accuracy"]):
        if accuracy >= threshold:
            return step
    return None


def measure(preset: str, *, quick: bool, fontsize: float = 14.0, hidden_dim: int = 128,
            seed: int = 0, progress: bool = False, verbose: int = 0) -> dict:
    """Train the three runs and return their curves and final figures as a JSON-ready dict.

    Example:
    >>> measure("/tmp/tr/preset", quick=True)["runs"]["scratch"]["steps"][-1]  # doctest: +SKIP
    40
    """
    import keras

    from im2latex_encoder import SymbolEncoder
    from im2latex_encoder.formulas import make_formula_dataset
    from im2latex_encoder.transfer import (
        FormulaRecognizer,
        compile_recognizer,
        evaluate_recognizer,
        fit_with_curve,
    )

    settings = _settings(quick)
    train = make_formula_dataset(settings["train"], seed=seed, fontsize=fontsize, dtype="uint8",
                                 progress=progress)
    validation = make_formula_dataset(settings["validation"], seed=seed + 1000,
                                      fontsize=fontsize, dtype="uint8", progress=progress)
    vocabulary_size = len(train.vocabulary)
    max_length = train.token_ids.shape[1] - 1
    decoder = dict(num_layers=2, num_heads=4, intermediate_dim=2 * hidden_dim,
                   max_length=max_length, dropout=0.1)
    runs = {}
    for run in RUNS:
        keras.utils.set_random_seed(seed)
        pretrained = SymbolEncoder.from_preset(preset, projection_dim=hidden_dim,
                                               positional_encoding=True)
        if run == "scratch":
            encoder = SymbolEncoder.from_config(pretrained.get_config())  # same stack, new weights
        else:
            encoder = pretrained
        keras.utils.set_random_seed(seed)  # the same decoder initialisation for every run
        model = FormulaRecognizer(encoder, vocabulary_size, **decoder)
        model.freeze_encoder(run == "frozen")
        compile_recognizer(model)
        curve = fit_with_curve(model, train, validation, steps=settings["steps"],
                               eval_every=settings["eval_every"],
                               batch_size=settings["batch_size"], seed=seed, verbose=verbose)
        final = evaluate_recognizer(model, validation, decode="greedy")
        # The curve's `token_accuracy` is a list per measurement: keep it, add the final figures.
        runs[run] = {**curve, "final_token_accuracy": final["token_accuracy"],
                     "exact_match": final["exact_match"]}
    target = runs["scratch"]["token_accuracy"][-1]
    reached = _steps_to_reach(runs["fine-tuned"], target)
    return {"preset": str(preset), "fontsize": fontsize, "settings": settings, "runs": runs,
            "scratch_final_token_accuracy": target,
            "fine_tuned_steps_to_scratch_final": reached,
            "frozen_steps_to_scratch_final": _steps_to_reach(runs["frozen"], target)}


def run(options: Options) -> Result:
    """Learning curves with the pretrained vs a scratch encoder (see the module docstring).

    Example:
    >>> run(Options(quick=True)).figures[0].unit  # doctest: +SKIP
    'token accuracy'
    """
    require("im2latex_encoder.transfer", "the seq2seq transfer model")
    from im2latex_encoder.presets import PresetError, resolve_preset

    preset = os.environ.get("IM2LATEX_PRESET", "crohme101")
    try:
        resolve_preset(preset)
    except (PresetError, FileNotFoundError) as error:
        raise BenchmarkUnavailable(f"preset {preset!r} not found ({error}); set IM2LATEX_PRESET")
    fontsize = float(os.environ.get("IM2LATEX_TRANSFER_FONTSIZE", "14"))
    data = measure(preset, quick=options.quick, fontsize=fontsize)
    figures = []
    for name in RUNS:
        values = data["runs"][name]
        for key, unit in (("token_accuracy", "token accuracy"), ("exact_match", "exact match")):
            value = values["final_token_accuracy" if key == "token_accuracy" else key]
            figures.append(Figure(f"{name}: final {unit}", unit, value, value, value, 1,
                                  f"after {data['settings']['steps']} steps"))
    total = data["settings"]["steps"]
    reached = data["fine_tuned_steps_to_scratch_final"]
    figures.append(Figure("fine-tuned: steps to scratch's final token accuracy", "steps",
                          float(reached) if reached else float("nan"),
                          float(reached or "nan"), float(reached or "nan"), 1,
                          "nan: never reached within the budget"))
    speedup = total / reached if reached else 0.0
    ratios = [Ratio("scratch steps / fine-tuned steps to the same token accuracy", speedup,
                    speedup, speedup, target=2.0,
                    note=f"scratch final token accuracy {data['scratch_final_token_accuracy']:.3f}")]
    notes = [f"preset: {preset}; fontsize {fontsize}; settings {json.dumps(data['settings'])}",
             "curves: " + json.dumps({name: {"steps": v["steps"],
                                             "token_accuracy": [round(a, 4) for a in v["token_accuracy"]]}
                                      for name, v in data["runs"].items()})]
    return Result("transfer", figures=figures, ratios=ratios, notes=notes)
