"""Transfer to formulas: does the pretrained encoder make an image-to-LaTeX decoder learn faster?

Measures validation token accuracy (teacher-forced, `<pad>` ignored) against training steps
for one `FormulaRecognizer` decoder on the same typeset formulas (`im2latex_encoder.formulas`),
the same budget and the same seeds, with three encoders: the preset's conv stack frozen, the
preset's conv stack fine-tuned, and the same architecture from scratch. Every run repeats
over several seeds (data, decoder initialisation and shuffling all change with the seed) and
the curves are averaged: one seed's curve moves by several points between runs. Reports each
run's final token accuracy and greedy exact-match rate (mean and range over seeds), the steps
the mean fine-tuned (and frozen) curve needs to reach the mean scratch curve's final token
accuracy, and the speed-up ``scratch steps / pretrained steps`` (target: >= 2, i.e. the
pretrained run needs at most half the steps). Runs are sequential (learning curves cannot
interleave); the figure is steps, not seconds, so machine load does not change it.

Environment: ``IM2LATEX_PRESET`` (default ``crohme101``) picks the preset;
``IM2LATEX_TRANSFER_SEEDS`` (default ``0,1``; ``0`` with ``--quick``) the seeds;
``IM2LATEX_TRANSFER_FONTSIZE`` (default 14) the formula font size, to probe the scale
mismatch between pretraining symbols and the glyphs of a 64-px formula line;
``IM2LATEX_TRANSFER_OUTPUT_NORM=0`` drops the encoder's output layer normalization (the
library's default under a decoder), to reproduce the finding that made it the default.
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


def _steps_to_reach(steps: list, accuracy: list, threshold: float) -> int | None:
    for step, value in zip(steps, accuracy):
        if value >= threshold:
            return step
    return None


def _mean_curve(curves: list) -> list:
    return [sum(values) / len(values) for values in zip(*(c["token_accuracy"] for c in curves))]


def measure(preset: str, *, quick: bool, seeds=(0,), fontsize: float = 14.0,
            output_norm: bool = True, hidden_dim: int = 128, progress: bool = False,
            verbose: int = 0) -> dict:
    """Train the three runs for every seed; return their curves and summary as a JSON-ready dict.

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
    per_seed = {run: [] for run in RUNS}
    for seed in seeds:
        train = make_formula_dataset(settings["train"], seed=seed, fontsize=fontsize,
                                     dtype="uint8", progress=progress)
        validation = make_formula_dataset(settings["validation"], seed=seed + 1000,
                                          fontsize=fontsize, dtype="uint8", progress=progress)
        decoder = dict(num_layers=2, num_heads=4, intermediate_dim=2 * hidden_dim,
                       max_length=train.token_ids.shape[1] - 1, dropout=0.1)
        for run in RUNS:
            keras.utils.set_random_seed(seed)
            pretrained = SymbolEncoder.from_preset(preset, projection_dim=hidden_dim,
                                                   output_norm=output_norm,
                                                   positional_encoding=True)
            if run == "scratch":  # same stack, new weights
                encoder = SymbolEncoder.from_config(pretrained.get_config())
            else:
                encoder = pretrained
            keras.utils.set_random_seed(seed)  # the same decoder initialisation for every run
            model = FormulaRecognizer(encoder, len(train.vocabulary), **decoder)
            model.freeze_encoder(run == "frozen")
            compile_recognizer(model)
            curve = fit_with_curve(model, train, validation, steps=settings["steps"],
                                   eval_every=settings["eval_every"],
                                   batch_size=settings["batch_size"], seed=seed, verbose=verbose)
            final = evaluate_recognizer(model, validation, decode="greedy")
            per_seed[run].append({"seed": seed, **curve,
                                  "final_token_accuracy": final["token_accuracy"],
                                  "exact_match": final["exact_match"]})
    steps = per_seed["scratch"][0]["steps"]
    runs = {}
    for run, results in per_seed.items():
        runs[run] = {
            "steps": steps,
            "token_accuracy": _mean_curve(results),
            "final_token_accuracy": [r["final_token_accuracy"] for r in results],
            "exact_match": [r["exact_match"] for r in results],
            "per_seed": results,
        }
    target = runs["scratch"]["token_accuracy"][-1]
    return {"preset": str(preset), "fontsize": fontsize, "output_norm": output_norm,
            "seeds": list(seeds), "settings": settings, "runs": runs,
            "scratch_final_token_accuracy": target,
            "fine_tuned_steps_to_scratch_final": _steps_to_reach(
                steps, runs["fine-tuned"]["token_accuracy"], target),
            "frozen_steps_to_scratch_final": _steps_to_reach(
                steps, runs["frozen"]["token_accuracy"], target)}


def _spread(name: str, unit: str, values: list, note: str) -> Figure:
    ordered = sorted(values)
    middle = ordered[len(ordered) // 2] if len(ordered) % 2 else sum(ordered) / len(ordered)
    return Figure(name, unit, middle, ordered[0], ordered[-1], len(values), note)


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
    seeds_text = os.environ.get("IM2LATEX_TRANSFER_SEEDS", "0" if options.quick else "0,1")
    try:
        seeds = tuple(int(seed) for seed in seeds_text.split(","))
    except ValueError:
        raise ValueError("IM2LATEX_TRANSFER_SEEDS must be comma-separated integers, e.g. '0,1'. "
                         f"Received: {seeds_text!r}") from None
    output_norm = os.environ.get("IM2LATEX_TRANSFER_OUTPUT_NORM", "1") != "0"
    data = measure(preset, quick=options.quick, seeds=seeds, fontsize=fontsize,
                   output_norm=output_norm)
    total = data["settings"]["steps"]
    figures = []
    for name in RUNS:
        values = data["runs"][name]
        figures.append(_spread(f"{name}: final token accuracy", "token accuracy",
                               values["final_token_accuracy"],
                               f"after {total} steps; median over seeds {list(seeds)}"))
        figures.append(_spread(f"{name}: final exact match", "exact match", values["exact_match"],
                               "greedy decoding"))
    ratios = []
    for name, key in (("fine-tuned", "fine_tuned_steps_to_scratch_final"),
                      ("frozen", "frozen_steps_to_scratch_final")):
        reached = data[key]
        figures.append(Figure(f"{name}: steps to scratch's final token accuracy", "steps",
                              float(reached or "nan"), float(reached or "nan"),
                              float(reached or "nan"), len(seeds),
                              "mean curves over seeds; nan: never reached within the budget"))
        speedup = total / reached if reached else 0.0
        ratios.append(Ratio(f"scratch steps / {name} steps to the same token accuracy", speedup,
                            speedup, speedup, target=2.0 if name == "fine-tuned" else None,
                            note=f"scratch's mean final token accuracy "
                                 f"{data['scratch_final_token_accuracy']:.3f}"))
    notes = [f"preset: {preset}; fontsize {fontsize}; output_norm {output_norm}; seeds "
             f"{list(seeds)}; settings {json.dumps(data['settings'])}",
             "mean curves: " + json.dumps({name: [round(a, 4) for a in v["token_accuracy"]]
                                           for name, v in data["runs"].items()}),
             f"steps: {data['runs']['scratch']['steps']}"]
    return Result("transfer", figures=figures, ratios=ratios, notes=notes)
