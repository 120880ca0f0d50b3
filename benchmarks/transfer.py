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

Handwritten mode: ``IM2LATEX_TRANSFER_DATA=crohme:DIR`` (``crohme`` alone means
``../shared/data/crohme/train`` beside the repository; unset or ``typeset``: the typeset mode
above) runs the same comparison on the real CROHME expressions under ``DIR``, through the
library's own handwritten path (`im2latex_encoder.recognizer`): targets from the
``train_caption.txt`` and vocabulary from the ``dictionary.txt`` beside ``DIR`` (else each
file's normalised truth), expressions drawn at the preset's symbol size with the stroke
augmentation `train_handwritten` uses, width-bucketed `ExpressionBatches`, and the recognizer
built as `train_handwritten` builds it (`FormulaRecognizer.from_preset`, the same widths,
learning rate and ``max_length``; scratch re-initialises that model's encoder). The held-out
expressions are drawn from `train_handwritten`'s validation split (5% of the expressions, by a
hash of the name), the same for every seed; each seed trains on its own subset of the rest
(2,000 training and 300 held-out expressions, 900 steps of 16). Besides
the curves it reports each run's greedy ExpRate (≤ 1, ≤ 2 token errors too) on the held-out
expressions, the speed-up (target: >= 3.33, the fine-tuned run reaching scratch's final token
accuracy within 30% of the steps) and the ExpRate of fine-tuned minus scratch after the same
steps, per seed (target: >= 5 points). Seeds default to ``0,1,2`` (``0`` with ``--quick``).
The mean curves and ExpRates are plotted to ``bench-results/transfer_handwritten.png``.
At full size it is 8,100 training steps of about 2 s of CPU each (plus 81 validations and
nine greedy decodings of 300 expressions): hours on a 2-core machine; run it in the background.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

from benchmarks._harness import BenchmarkUnavailable, Figure, Options, Ratio, Result, require

RUNS = ("frozen", "fine-tuned", "scratch")


#: A smoke run's settings (typeset mode).
QUICK_SETTINGS = {"train": 256, "validation": 64, "steps": 40, "eval_every": 10, "batch_size": 16}
#: The decoder's width (typeset mode).
HIDDEN_DIM = 128
#: `compile_recognizer`'s XLA setting (typeset mode).
JIT_COMPILE: bool | str = "auto"
#: `Options(tiny=True)`'s sizes (see `benchmarks._harness.tiny_sizes`): two steps do not pay
#: for XLA's compilation of three models.
TINY = {
    "QUICK_SETTINGS": {"train": 6, "validation": 3, "steps": 2, "eval_every": 1, "batch_size": 3},
    "HIDDEN_DIM": 16,
    "JIT_COMPILE": False,
}


def _settings(quick: bool) -> dict:
    if quick:
        return dict(QUICK_SETTINGS)
    return {"train": 2000, "validation": 200, "steps": 300, "eval_every": 25, "batch_size": 32}


def _steps_to_reach(steps: list, accuracy: list, threshold: float) -> int | None:
    for step, value in zip(steps, accuracy):
        if value >= threshold:
            return step
    return None


def _mean_curve(curves: list) -> list:
    return [sum(values) / len(values) for values in zip(*(c["token_accuracy"] for c in curves))]


def measure(
    preset: str,
    *,
    quick: bool,
    seeds=(0,),
    fontsize: float = 14.0,
    output_norm: bool = True,
    hidden_dim: int | None = None,
    progress: bool = False,
    verbose: int = 0,
) -> dict:
    """Train the three runs for every seed; return their curves and summary as a JSON-ready dict.

    Example:
    >>> measure("/tmp/tr/preset", quick=True)["runs"]["scratch"]["steps"][-1]  # doctest: +SKIP
    40
    """
    import keras

    from im2latex_encoder import FeatureGridNeck, SymbolEncoder
    from im2latex_encoder.formulas import make_formula_dataset
    from im2latex_encoder.recognizer import (
        FormulaRecognizer,
        compile_recognizer,
        evaluate_recognizer,
        fit_with_curve,
    )

    hidden_dim = HIDDEN_DIM if hidden_dim is None else hidden_dim
    settings = _settings(quick)
    per_seed = {run: [] for run in RUNS}
    for seed in seeds:
        train = make_formula_dataset(
            settings["train"], seed=seed, fontsize=fontsize, dtype="uint8", progress=progress
        )
        validation = make_formula_dataset(
            settings["validation"],
            seed=seed + 1000,
            fontsize=fontsize,
            dtype="uint8",
            progress=progress,
        )
        decoder = dict(
            num_layers=2,
            num_heads=4,
            intermediate_dim=2 * hidden_dim,
            max_length=train.token_ids.shape[1] - 1,
            dropout=0.1,
        )
        for run in RUNS:
            keras.utils.set_random_seed(seed)
            pretrained = SymbolEncoder.from_preset(preset)
            if run == "scratch":  # same stack, new weights
                encoder = SymbolEncoder.from_config(pretrained.get_config())
            else:
                encoder = pretrained
            keras.utils.set_random_seed(seed)  # the same neck and decoder initialisation
            neck = FeatureGridNeck(
                hidden_dim, output_norm=output_norm, positional_encoding=True, name="neck"
            )
            model = FormulaRecognizer(encoder, len(train.vocabulary), neck=neck, **decoder)
            model.freeze_encoder(run == "frozen")
            compile_recognizer(model, jit_compile=JIT_COMPILE)
            curve = fit_with_curve(
                model,
                train,
                validation,
                steps=settings["steps"],
                eval_every=settings["eval_every"],
                batch_size=settings["batch_size"],
                seed=seed,
                verbose=verbose,
            )
            final = evaluate_recognizer(model, validation, decode="greedy")
            per_seed[run].append(
                {
                    "seed": seed,
                    **curve,
                    "final_token_accuracy": final["token_accuracy"],
                    "exact_match": final["exact_match"],
                }
            )
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
    return {
        "preset": str(preset),
        "fontsize": fontsize,
        "output_norm": output_norm,
        "seeds": list(seeds),
        "settings": settings,
        "runs": runs,
        "scratch_final_token_accuracy": target,
        "fine_tuned_steps_to_scratch_final": _steps_to_reach(
            steps, runs["fine-tuned"]["token_accuracy"], target
        ),
        "frozen_steps_to_scratch_final": _steps_to_reach(
            steps, runs["frozen"]["token_accuracy"], target
        ),
    }


# === Handwritten mode (IM2LATEX_TRANSFER_DATA=crohme[:DIR]) ===

DATA_ENV = "IM2LATEX_TRANSFER_DATA"
#: `train_handwritten`'s defaults, so the handwritten mode measures the shipped training path.
HANDWRITTEN_MODEL = {
    "hidden_dim": 128,
    "num_layers": 2,
    "num_heads": 4,
    "intermediate_dim": 256,
    "max_length": 100,
    "dropout": 0.1,
    "learning_rate": 1e-3,
}
VALIDATION_SPLIT = 0.05  # `train_handwritten`'s default, and its split (seed 0)
#: Pretrained reaches scratch's final token accuracy within 30% of scratch's steps.
SPEEDUP_TARGET = 1 / 0.3
EXPRATE_TARGET = 5.0  # ExpRate points, fine-tuned minus scratch after the same steps


def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def transfer_data() -> str | None:
    """The CROHME folder the handwritten mode trains on (``IM2LATEX_TRANSFER_DATA``), or None.

    Unset, empty or ``typeset``: None (the typeset mode). ``crohme``: the ``train/`` folder of
    ``../shared/data/crohme`` beside the repository. ``crohme:DIR``: ``DIR``.

    Raises:
        BenchmarkUnavailable: if the folder is absent.
        ValueError: if the variable holds anything else.

    Example:
    >>> os.environ[DATA_ENV] = "crohme:../shared/data/crohme/train"  # doctest: +SKIP
    >>> transfer_data()  # doctest: +SKIP
    '/work/shared/data/crohme/train'
    """
    value = os.environ.get(DATA_ENV, "").strip()
    if value in ("", "typeset"):
        return None
    if value == "crohme":
        folder = os.path.join(_repo_root(), "..", "shared", "data", "crohme", "train")
    elif value.startswith("crohme:") and value[len("crohme:") :]:
        folder = value[len("crohme:") :]
    else:
        raise ValueError(
            f"{DATA_ENV} must be 'typeset', 'crohme' or 'crohme:DIR'. Received: {value!r}"
        )
    if not os.path.isdir(folder):
        raise BenchmarkUnavailable(
            f"no CROHME expression folder at {os.path.abspath(folder)} "
            f"({DATA_ENV}={value!r}); point it at a folder of .inkml "
            "files, or unset it for the typeset mode"
        )
    return os.path.abspath(folder)


def _handwritten_settings(quick: bool) -> dict:
    if quick:
        return {"train": 64, "validation": 32, "steps": 20, "eval_every": 10, "batch_size": 16}
    return {"train": 2000, "validation": 300, "steps": 900, "eval_every": 100, "batch_size": 16}


def _beside(folder: str, name: str) -> str | None:
    """`name` inside `folder` or beside it (CROHME's caption and dictionary files)."""
    for candidate in (os.path.join(folder, name), os.path.join(os.path.dirname(folder), name)):
        if os.path.isfile(candidate):
            return candidate
    return None


def _preset_symbol_size(preset: str) -> float:
    """The symbol size `train_handwritten` draws expressions at for `preset`."""
    from im2latex_encoder import SymbolClassifier
    from im2latex_encoder.recognizer.preprocessor import symbol_size_for

    try:
        size = SymbolClassifier.from_preset(preset).image_size
    except Exception:  # an encoder-only preset has no image size (as in train_handwritten)
        return 36.4
    return round(symbol_size_for(size[0]), 1) if size else 36.4


def _handwritten_model(
    preset: str, run: str, vocabulary_size: int, seed: int, example, output_norm: bool
):
    """A compiled recognizer built as `train_handwritten` builds it; scratch's encoder re-drawn.

    Every run builds the same model from the same seed, so the decoder (and the new
    projection) start from the same weights; scratch then swaps in the weights of a fresh
    encoder of the same configuration.
    """
    import keras

    from im2latex_encoder import SymbolEncoder
    from im2latex_encoder.recognizer import FormulaRecognizer, compile_recognizer

    sizes = HANDWRITTEN_MODEL
    keras.utils.set_random_seed(seed)
    model = FormulaRecognizer.from_preset(
        preset,
        vocabulary_size=vocabulary_size,
        hidden_dim=sizes["hidden_dim"],
        output_norm=output_norm,
        freeze_encoder=run == "frozen",
        num_layers=sizes["num_layers"],
        num_heads=sizes["num_heads"],
        intermediate_dim=sizes["intermediate_dim"],
        max_length=sizes["max_length"],
        dropout=sizes["dropout"],
    )
    model(example)  # build every variable (as train_handwritten does before restoring)
    if run == "scratch":
        keras.utils.set_random_seed(seed + 1)
        fresh = SymbolEncoder.from_config(model.encoder.get_config())
        fresh(example[0])
        model.encoder.set_weights(fresh.get_weights())
    return compile_recognizer(model, learning_rate=sizes["learning_rate"], jit_compile=False)


def measure_handwritten(
    preset: str,
    folder: str,
    *,
    quick: bool,
    seeds=(0, 1, 2),
    output_norm: bool = True,
    settings: dict | None = None,
    progress: bool = False,
    verbose: int = 0,
) -> dict:
    """Train the three runs on real CROHME expressions for every seed; return a JSON-ready dict.

    Each seed trains on its own subset of the training expressions (the same batches, in the
    same order, for the three runs) and every run is scored on the same held-out expressions:
    teacher-forced token accuracy every ``eval_every`` steps, greedy ExpRate at the end.

    Args:
        preset: str. Symbol encoder preset (name or folder).
        folder: str. CROHME folder of training expressions (``.inkml``).
        quick: bool. The smoke-run sizes.
        seeds: ints.
        output_norm: bool. The encoder's output layer normalization (the library's default).
        settings: dict or None. Sizes (``train``, ``validation``, ``steps``, ``eval_every``,
            ``batch_size``) instead of the quick or full ones.
        progress: bool. One line per run on stderr.
        verbose: int. Keras `fit` verbosity.

    Example:
    >>> data = measure_handwritten("crohme101", "../shared/data/crohme/train",
    ...                            quick=True, seeds=(0,))  # doctest: +SKIP
    >>> data["runs"]["fine-tuned"]["exprate"], data["runs"]["fine-tuned"]["n"]  # doctest: +SKIP
    ([0.03125], [32])
    """
    import numpy as np

    from im2latex_encoder.formulas.crohme_truth import read_crohme_captions
    from im2latex_encoder.formulas.handwritten import ExpressionAugment, read_crohme_expressions
    from im2latex_encoder.formulas.tokenizer import Vocabulary
    from im2latex_encoder.recognizer import (
        DrawSettings,
        ExpressionBatches,
        crohme_vocabulary,
        evaluate_expressions,
        expression_targets,
    )
    from im2latex_encoder.recognizer.handwritten_training import DEFAULT_AUGMENT, held_out_mask
    from im2latex_encoder.training.data_sources import cache_path

    settings = dict(settings or _handwritten_settings(quick))
    if (
        settings["steps"] < 1
        or settings["eval_every"] < 1
        or settings["steps"] % settings["eval_every"]
    ):
        raise ValueError(
            f"`steps` must be a positive multiple of `eval_every`. Received: {settings}"
        )
    # The same cache file as `train_handwritten` (keyed by the absolute folder path).
    expressions = read_crohme_expressions(
        folder, progress=progress, cache=cache_path("crohme-expressions", [folder], ".npz")
    )
    captions, dictionary = _beside(folder, "train_caption.txt"), _beside(folder, "dictionary.txt")
    targets, _ = expression_targets(
        expressions, read_crohme_captions(captions) if captions else None
    )
    vocabulary = (
        crohme_vocabulary(dictionary)
        if dictionary
        else Vocabulary(sorted({t for target in targets if target for t in target}))
    )
    max_length = HANDWRITTEN_MODEL["max_length"]
    usable = [
        i
        for i, t in enumerate(targets)
        if t is not None
        and len(t) + 2 <= max_length + 1
        and all(token in vocabulary for token in t)
    ]
    held = held_out_mask([" ".join(targets[i]) for i in usable], VALIDATION_SPLIT, 0)  # by formula
    held_out = [i for i, h in zip(usable, held) if h]
    trainable = [i for i, h in zip(usable, held) if not h]
    if len(held_out) < settings["validation"] or len(trainable) < settings["train"]:
        raise ValueError(
            f"Need {settings['validation']} held-out and {settings['train']} "
            f"training expressions. Received: {len(held_out)} and {len(trainable)} "
            f"usable in {folder}"
        )
    validation_index = sorted(
        np.random.default_rng(0).choice(held_out, settings["validation"], replace=False).tolist()
    )
    ids = {i: vocabulary.encode(targets[i]) for i in usable}
    draw = DrawSettings(_preset_symbol_size(preset))
    augment_fields = dict(DEFAULT_AUGMENT)
    augment_fields["line_width"] = tuple(augment_fields["line_width"])
    augmentation = ExpressionAugment(**augment_fields)
    validation_data = expressions.subset(validation_index)
    validation_targets = [targets[i] for i in validation_index]
    validation_batches = ExpressionBatches(
        validation_data,
        [ids[i] for i in validation_index],
        settings["batch_size"],
        draw,
        shuffle=False,
    )
    (images, prefix), _ = validation_batches[0]
    example = (images[:1], prefix[:1])

    per_seed = {run: [] for run in RUNS}
    for seed in seeds:
        train_index = sorted(
            np.random.default_rng(seed).choice(trainable, settings["train"], replace=False).tolist()
        )
        train_data = expressions.subset(train_index)
        for run in RUNS:
            model = _handwritten_model(preset, run, len(vocabulary), seed, example, output_norm)
            # A fresh batch source per run: the same groups, draws and order for all three.
            batches = ExpressionBatches(
                train_data,
                [ids[i] for i in train_index],
                settings["batch_size"],
                draw,
                augment=augmentation,
                seed=seed,
            )
            started = time.perf_counter()
            history = model.fit(
                batches.as_tf_dataset().repeat(),
                steps_per_epoch=settings["eval_every"],
                epochs=settings["steps"] // settings["eval_every"],
                validation_data=validation_batches.as_tf_dataset(),
                verbose=verbose,
            ).history
            scores = evaluate_expressions(
                model, vocabulary, draw, validation_data, validation_targets
            )
            curve = [float(v) for v in history["val_token_accuracy"]]
            per_seed[run].append(
                {
                    "seed": seed,
                    "steps": [settings["eval_every"] * (k + 1) for k in range(len(curve))],
                    "token_accuracy": curve,
                    "loss": [float(v) for v in history["val_loss"]],
                    "train_loss": [float(v) for v in history["loss"]],
                    "final_token_accuracy": curve[-1],
                    **{
                        key: float(scores[key])
                        for key in ("exprate", "exprate_1", "exprate_2", "token_error_rate")
                    },
                    "n": int(scores["n"]),
                    "seconds": time.perf_counter() - started,
                }
            )
            if progress:
                print(
                    f"[transfer] seed {seed} {run}: token accuracy {curve[-1]:.3f}, ExpRate "
                    f"{scores['exprate']:.3f} ({time.perf_counter() - started:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    steps = per_seed["scratch"][0]["steps"]
    runs = {}
    for run, results in per_seed.items():
        runs[run] = {
            "steps": steps,
            "token_accuracy": _mean_curve(results),
            **{
                key: [r[key] for r in results]
                for key in (
                    "final_token_accuracy",
                    "exprate",
                    "exprate_1",
                    "exprate_2",
                    "token_error_rate",
                    "n",
                )
            },
            "per_seed": results,
        }
    target = runs["scratch"]["token_accuracy"][-1]
    return {
        "data": "crohme",
        "folder": folder,
        "captions": captions,
        "dictionary": dictionary,
        "preset": str(preset),
        "output_norm": output_norm,
        "seeds": list(seeds),
        "settings": settings,
        "model": dict(HANDWRITTEN_MODEL),
        "draw": draw.to_dict(),
        "augment": {k: list(v) if isinstance(v, tuple) else v for k, v in augment_fields.items()},
        "validation_split": VALIDATION_SPLIT,
        "vocabulary_size": len(vocabulary),
        "expressions": len(expressions),
        "usable": len(usable),
        "held_out": len(held_out),
        "runs": runs,
        "scratch_final_token_accuracy": target,
        "fine_tuned_steps_to_scratch_final": _steps_to_reach(
            steps, runs["fine-tuned"]["token_accuracy"], target
        ),
        "frozen_steps_to_scratch_final": _steps_to_reach(
            steps, runs["frozen"]["token_accuracy"], target
        ),
    }


def _speedup_rows(data: dict, total: int, seeds: int, target: float, figures: list) -> list:
    """Steps the fine-tuned and frozen mean curves need to reach scratch's final token accuracy.

    Appends one steps figure per run to `figures` and returns the ratios ``scratch steps /
    run steps`` (`target` on the fine-tuned one); both modes report them this way.
    """
    ratios = []
    for name, key in (
        ("fine-tuned", "fine_tuned_steps_to_scratch_final"),
        ("frozen", "frozen_steps_to_scratch_final"),
    ):
        reached = data[key]
        figures.append(
            Figure(
                f"{name}: steps to scratch's final token accuracy",
                "steps",
                float(reached or "nan"),
                float(reached or "nan"),
                float(reached or "nan"),
                seeds,
                "mean curves over seeds; nan: never reached within the budget",
            )
        )
        speedup = total / reached if reached else 0.0
        ratios.append(
            Ratio(
                f"scratch steps / {name} steps to the same token accuracy",
                speedup,
                speedup,
                speedup,
                target=target if name == "fine-tuned" else None,
                note=f"scratch's mean final token accuracy "
                f"{data['scratch_final_token_accuracy']:.3f}",
            )
        )
    return ratios


def _handwritten_result(data: dict) -> Result:
    """The handwritten mode's figures and ratios (see the module docstring)."""
    seeds, total = data["seeds"], data["settings"]["steps"]
    held_out = data["runs"]["scratch"]["n"][0]
    figures = []
    for name in RUNS:
        values = data["runs"][name]
        figures.append(
            _spread(
                f"{name}: final token accuracy",
                "token accuracy",
                values["final_token_accuracy"],
                f"after {total} steps; median over seeds {seeds}",
            )
        )
        for key, label in (
            ("exprate", "ExpRate"),
            ("exprate_1", "ExpRate ≤1"),
            ("exprate_2", "ExpRate ≤2"),
        ):
            figures.append(
                _spread(
                    f"{name}: {label}",
                    "ExpRate",
                    values[key],
                    f"greedy, {held_out} held-out expressions",
                )
            )
    ratios = _speedup_rows(data, total, len(seeds), SPEEDUP_TARGET, figures)
    for name in ("fine-tuned", "frozen"):
        differences = [
            100 * (a - b)
            for a, b in zip(data["runs"][name]["exprate"], data["runs"]["scratch"]["exprate"])
        ]
        ratios.append(
            Ratio(
                f"{name} minus scratch ExpRate after {total} steps (points)",
                statistics.median(differences),
                min(differences),
                max(differences),
                target=EXPRATE_TARGET if name == "fine-tuned" else None,
                note="per seed, same batches and decoder initialisation",
            )
        )
    notes = [
        f"real CROHME ink: {data['folder']} ({data['usable']} usable of "
        f"{data['expressions']} expressions; {held_out} of the {data['held_out']} held out "
        f"by train_handwritten's {data['validation_split']:.0%} split); preset "
        f"{data['preset']}; seeds {seeds}; settings {json.dumps(data['settings'])}",
        f"model {json.dumps(data['model'])}; drawn {json.dumps(data['draw'])}; augment "
        f"{json.dumps(data['augment'])}",
        "mean curves: "
        + json.dumps(
            {name: [round(a, 4) for a in v["token_accuracy"]] for name, v in data["runs"].items()}
        ),
        f"steps: {data['runs']['scratch']['steps']}",
        "ExpRate per seed: "
        + json.dumps(
            {name: [round(a, 4) for a in v["exprate"]] for name, v in data["runs"].items()}
        ),
    ]
    return Result("transfer", figures=figures, ratios=ratios, notes=notes)


def _plot_path() -> str:
    # The harness hands benchmarks no results folder; plots go where time_to_accuracy's go.
    return os.path.join(_repo_root(), "bench-results", "transfer_handwritten.png")


def plot_handwritten(data: dict, path: str) -> str:
    """Plot the mean token-accuracy curves and the ExpRates (mean, range over seeds) as a PNG.

    Example:
    >>> plot_handwritten(data, "bench-results/transfer_handwritten.png")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (curves, bars) = plt.subplots(
        1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]}
    )
    kinds = (("exprate", "ExpRate"), ("exprate_1", "≤1 error"), ("exprate_2", "≤2 errors"))
    width = 0.8 / len(RUNS)
    for index, name in enumerate(RUNS):
        values, color = data["runs"][name], f"C{index}"
        curves.plot(
            values["steps"],
            values["token_accuracy"],
            marker="o",
            markersize=3,
            color=color,
            label=name,
        )
        if len(values["per_seed"]) > 1:
            seed_curves = list(zip(*(r["token_accuracy"] for r in values["per_seed"])))
            curves.fill_between(
                values["steps"],
                [min(v) for v in seed_curves],
                [max(v) for v in seed_curves],
                color=color,
                alpha=0.15,
            )
        means = [100 * sum(values[key]) / len(values[key]) for key, _ in kinds]
        # max(0, ...): a mean of equal values may round a hair past them.
        spread = [
            [max(0.0, m - 100 * min(values[key])) for m, (key, _) in zip(means, kinds)],
            [max(0.0, 100 * max(values[key]) - m) for m, (key, _) in zip(means, kinds)],
        ]
        bars.bar(
            [k + (index - (len(RUNS) - 1) / 2) * width for k in range(len(kinds))],
            means,
            width,
            yerr=spread,
            capsize=3,
            color=color,
            label=name,
        )
    curves.axhline(data["scratch_final_token_accuracy"], color="grey", linestyle=":", linewidth=1)
    curves.set_xlabel("training steps")
    curves.set_ylabel("validation token accuracy (teacher-forced)")
    curves.grid(alpha=0.3)
    curves.legend()
    bars.set_xticks(range(len(kinds)), [label for _, label in kinds])
    bars.set_ylabel(f"% of {data['runs']['scratch']['n'][0]} held-out expressions (greedy)")
    bars.grid(alpha=0.3, axis="y")
    figure.suptitle(
        f"Transfer on real CROHME ink: preset {data['preset']}, "
        f"{data['settings']['train']} training expressions, seeds {data['seeds']}",
        fontsize=10,
    )
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


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
    require("im2latex_encoder.recognizer", "the seq2seq transfer model")
    from im2latex_encoder.presets import PresetError, resolve_preset

    preset = os.environ.get("IM2LATEX_PRESET", "crohme101")
    try:
        resolve_preset(preset)
    except (PresetError, FileNotFoundError) as error:
        raise BenchmarkUnavailable(
            f"preset {preset!r} not found ({error}); set IM2LATEX_PRESET"
        ) from error
    folder = transfer_data()
    fontsize = float(os.environ.get("IM2LATEX_TRANSFER_FONTSIZE", "14"))
    default_seeds = "0" if options.quick else ("0,1,2" if folder else "0,1")
    seeds_text = os.environ.get("IM2LATEX_TRANSFER_SEEDS", default_seeds)
    try:
        seeds = tuple(int(seed) for seed in seeds_text.split(","))
    except ValueError:
        raise ValueError(
            "IM2LATEX_TRANSFER_SEEDS must be comma-separated integers, e.g. '0,1'. "
            f"Received: {seeds_text!r}"
        ) from None
    output_norm = os.environ.get("IM2LATEX_TRANSFER_OUTPUT_NORM", "1") != "0"
    if folder:
        data = measure_handwritten(
            preset, folder, quick=options.quick, seeds=seeds, output_norm=output_norm, progress=True
        )
        result = _handwritten_result(data)
        try:
            path = plot_handwritten(data, _plot_path())
            result.notes.append(
                f"Mean curves and ExpRates plotted in {os.path.relpath(path, _repo_root())}."
            )
        except Exception as error:  # a plot is a convenience, never a failure
            result.notes.append(f"No plot ({error}).")
        return result
    data = measure(
        preset, quick=options.quick, seeds=seeds, fontsize=fontsize, output_norm=output_norm
    )
    total = data["settings"]["steps"]
    figures = []
    for name in RUNS:
        values = data["runs"][name]
        figures.append(
            _spread(
                f"{name}: final token accuracy",
                "token accuracy",
                values["final_token_accuracy"],
                f"after {total} steps; median over seeds {list(seeds)}",
            )
        )
        figures.append(
            _spread(
                f"{name}: final exact match",
                "exact match",
                values["exact_match"],
                "greedy decoding",
            )
        )
    ratios = _speedup_rows(data, total, len(seeds), 2.0, figures)
    notes = [
        f"preset: {preset}; fontsize {fontsize}; output_norm {output_norm}; seeds "
        f"{list(seeds)}; settings {json.dumps(data['settings'])}",
        "mean curves: "
        + json.dumps(
            {name: [round(a, 4) for a in v["token_accuracy"]] for name, v in data["runs"].items()}
        ),
        f"steps: {data['runs']['scratch']['steps']}",
    ]
    return Result("transfer", figures=figures, ratios=ratios, notes=notes)
