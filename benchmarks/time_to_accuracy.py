"""Wall time to 90% and 95% held-out-font top-1, the default recipe (`quick`) vs the seed's.

Both recipes train the model `pretrain` trains (`im2latex_encoder.training.build_trainer`) on the
data `pretrain` feeds it (`make_dataset` over `SyntheticBatches` of the training fonts, fresh
images every step) and are scored on `pretrain`'s validation set (held-out fonts,
`validation_per_class` per class, seed + 1), each at its own image size. They run in one worker
subprocess, *interleaved in chunks* of the same number of training images (time to accuracy
cannot interleave step by step, but chunks put both recipes under the same background load),
each until its own wall budget of training time is spent, its schedule ends (`quick`'s
cosine schedule is the shipped 8 × 250 steps) or it reaches 95%. Evaluation time is not
counted, and a threshold is timed at the first evaluation that meets it, so times are upper
bounds at the evaluation interval's resolution.

Top-1 is reported exact and with the look-alike pairs of `FIT_AMBIGUOUS_PAIRS` merged (``c/C``,
``s/S``, ...: identical after fit-to-box scaling, which caps exact held-out top-1 near 92–96%).
Times to 50% and 80% exact top-1 are reported too, for budgets that reach neither target.
Target: `quick` reaches 95% exact top-1 at least 5× sooner than `seed`, or `seed` never does
within the budget.

**Real mode.** When the CROHME data is there (``$IM2LATEX_CROHME``, default
``../shared/data/crohme`` beside the repository), every recipe trains on the real training
symbols (`pretrain --data crohme:DIR/train`'s own batches: `quick` and `seed` on rendered images,
`crohme` on ink augmented per batch) and is scored on a fixed sample of the CROHME 2016 test
symbols (never trained on). Thresholds 80% and 90% top-1; target: `crohme` reaches 90% at
least 5× sooner than `seed`, or `seed` never does within the budget.

Run alone: ``python -m benchmarks.time_to_accuracy --budget 60 --json out.json`` (add
``--real DIR`` for the real mode).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

from benchmarks._harness import (
    TINY_ENV,
    Figure,
    Options,
    Ratio,
    Result,
    require,
    tiny_sizes,
)

RECIPES = ("quick", "seed")
#: The recipes of the real mode: the seed's last, as the baseline of every ratio.
REAL_RECIPES = ("quick", "crohme", "seed")
THRESHOLDS = (0.90, 0.95)
REAL_THRESHOLDS = (0.80, 0.90)
#: Lower thresholds, exact top-1 only: a comparison where a short budget reaches neither target.
EXTRA_THRESHOLDS = (0.50, 0.80)


_SCORES = (
    ("top1", "top-1", EXTRA_THRESHOLDS + THRESHOLDS),
    ("top1_merged", "merged top-1", THRESHOLDS),
)


def crohme_folder() -> str | None:
    """The CROHME data folder for the real mode (with train/ and test2016/), or None.

    Example:
    >>> crohme_folder() is None or os.path.isdir(crohme_folder())
    True
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folder = os.environ.get("IM2LATEX_CROHME", os.path.join(root, "..", "shared", "data", "crohme"))
    ok = all(os.path.isdir(os.path.join(folder, part)) for part in ("train", "test2016"))
    return os.path.abspath(folder) if ok else None


#: A smoke run's settings: quick's schedule shortened to fit the budget.
QUICK_SETTINGS = {
    "budget": 30.0,
    "eval_images": 1024,
    "quick_overrides": {"epochs": 2, "steps_per_epoch": 40},
    "validation_per_class": 5,
}
#: Whether the real CROHME mode runs when the data is there.
REAL_MODE = True
#: `Options(tiny=True)`'s sizes (see `benchmarks._harness.tiny_sizes`): a chunk of two steps
#: per recipe, one validation image per class, and no real mode (the whole CROHME set).
TINY = {
    "QUICK_SETTINGS": {
        "budget": 0.5,
        "eval_images": 64,
        "quick_overrides": {"epochs": 1, "steps_per_epoch": 2},
        "validation_per_class": 1,
    },
    "REAL_MODE": False,
}


def _settings(quick: bool) -> dict:
    if quick:
        return dict(QUICK_SETTINGS)
    return {
        "budget": 420.0,
        "eval_images": 4096,
        "quick_overrides": {},
        "validation_per_class": None,
    }


def measure(
    budget: float,
    eval_images: int,
    quick_overrides: dict | None = None,
    validation_per_class: int | None = None,
    threads: int | None = None,
    log=None,
    real: str | None = None,
    test_symbols: int = 4000,
) -> dict:
    """Train both recipes interleaved in chunks until each spends `budget` s; return the curves.

    Args:
        budget: float. Seconds of training time (evaluation excluded) allowed to each recipe.
        eval_images: int. Training images between evaluations (the chunk size).
        quick_overrides: dict or None. `PretrainConfig` fields to change in `quick`.
        validation_per_class: int or None. Validation images per class (config's when None).
        threads: int or None. TensorFlow intra- and inter-op threads.
        log: callable or None. Called with a progress line after each evaluation.
        real: str or None. A CROHME folder (train/, test2016/): the real mode (module docstring).
        test_symbols: int. Real mode: CROHME 2016 test symbols scored at each evaluation
            (a fixed random sample; 0 = all).

    Returns:
        JSON-ready dict: per recipe, its config and a curve of ``seconds``, ``images``,
        ``steps``, ``top1``, ``top1_merged`` at each evaluation, and why it stopped.

    Example:
    >>> measure(20.0, 512, {"epochs": 1, "steps_per_epoch": 16}, 2)["quick"]["stopped"]  # doctest: +SKIP
    'schedule ended'
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from im2latex_encoder.data.pipeline import SyntheticBatches, make_dataset
    from im2latex_encoder.data.synthetic import FIT_AMBIGUOUS_PAIRS, SyntheticSymbols
    from im2latex_encoder.symbols import CROHME_SYMBOLS
    from im2latex_encoder.training import build_trainer, load_config
    from im2latex_encoder.training.data_sources import DataSpec, load_labelled

    if threads:
        from benchmarks.encoder import set_tf_threads

        set_tf_threads(threads)
    tf.config.experimental.enable_op_determinism()  # as `pretrain` does
    canonical = np.arange(len(CROHME_SYMBOLS))
    index = {name: i for i, name in enumerate(CROHME_SYMBOLS)}
    for a, b in FIT_AMBIGUOUS_PAIRS:
        canonical[index[b]] = index[a]

    runs = {}
    recipes = REAL_RECIPES if real else RECIPES
    stop_at = max(REAL_THRESHOLDS if real else THRESHOLDS)
    for name in recipes:
        config = load_config(name)
        if name == "quick" and quick_overrides:
            config = config.replace(**quick_overrides)
        keras.utils.set_random_seed(config.seed)
        size = config.image_size
        trainer, classifier = build_trainer(config)
        if real:
            from im2latex_encoder.training.run import training_source

            # `pretrain --data crohme:DIR/train`'s own batches (images, or augmented ink).
            source = training_source(
                [DataSpec("crohme", os.path.join(real, "train"))],
                config.replace(validation_split=0.0),
                CROHME_SYMBOLS,
                False,
            )[0]
            validation = load_labelled(
                DataSpec("crohme", os.path.join(real, "test2016")),
                labels=CROHME_SYMBOLS,
                image_size=size,
                progress=False,
                # Scored as the recipe draws (and as `evaluate` scores its preset).
                context_scale=config.context_scale,
            )
            if test_symbols and len(validation) > test_symbols:
                pick = np.sort(
                    np.random.default_rng(0).choice(len(validation), test_symbols, replace=False)
                )
                validation.images, validation.labels = (
                    validation.images[pick],
                    validation.labels[pick],
                )
        else:
            validation = load_labelled(
                DataSpec("synthetic"),
                labels=CROHME_SYMBOLS,
                image_size=size,
                split="validation",
                per_class=validation_per_class or config.validation_per_class,
                seed=config.seed + 1,
                synthetic_options=config.synthetic,
                progress=False,
            )
            source = SyntheticBatches(
                SyntheticSymbols("train", size, config.seed, **config.synthetic),
                config.batch_size,
                seed=config.seed,
            )
        dataset = make_dataset(
            source, 0, config.total_steps, (size, size), one_hot=len(CROHME_SYMBOLS)
        )
        runs[name] = {
            "config": config,
            "trainer": trainer,
            "classifier": classifier,
            "iterator": iter(dataset),
            "val_x": validation.images.astype(np.float32)[..., None] / 255.0,
            "val_y": np.asarray(validation.labels),
            "chunk": max(1, eval_images // config.batch_size),
            "curve": [],
            "seconds": 0.0,
            "steps": 0,
            "stopped": None,
        }

    def evaluate(run):
        logits = run["classifier"].predict(run["val_x"], batch_size=256, verbose=0)
        predicted = np.argmax(np.asarray(logits), axis=-1)
        return (
            float(np.mean(predicted == run["val_y"])),
            float(np.mean(canonical[predicted] == canonical[run["val_y"]])),
        )

    while any(run["stopped"] is None for run in runs.values()):
        for name, run in runs.items():
            if run["stopped"] is not None:
                continue
            config = run["config"]
            steps = min(run["chunk"], config.total_steps - run["steps"])
            started = time.perf_counter()
            for _ in range(steps):
                x, y = next(run["iterator"])
                run["trainer"].train_on_batch(x, y)
            run["seconds"] += time.perf_counter() - started
            run["steps"] += steps
            top1, merged = evaluate(run)
            run["curve"].append(
                {
                    "seconds": round(run["seconds"], 2),
                    "steps": run["steps"],
                    "images": run["steps"] * config.batch_size,
                    "top1": round(top1, 4),
                    "top1_merged": round(merged, 4),
                }
            )
            if log:
                log(
                    f"{name}: {run['seconds']:.0f} s, {run['steps']} steps, top-1 {top1:.3f} "
                    f"(merged {merged:.3f})"
                )
            if top1 >= stop_at:
                run["stopped"] = f"reached {stop_at:.0%} top-1"
            elif run["steps"] >= config.total_steps:
                run["stopped"] = "schedule ended"
            elif run["seconds"] >= budget:
                run["stopped"] = "budget spent"
    return {
        name: {
            "config": run["config"].to_dict(),
            "curve": run["curve"],
            "stopped": run["stopped"],
            "validation_images": int(len(run["val_y"])),
            "eval_every_steps": run["chunk"],
        }
        for name, run in runs.items()
    } | {"budget": budget, "real": real, "recipes": list(recipes)}


def time_to(curve: list, threshold: float, key: str = "top1") -> float | None:
    """Training seconds at the first evaluation whose `key` reaches `threshold`, or None.

    Example:
    >>> time_to([{"seconds": 5, "top1": 0.5}, {"seconds": 9, "top1": 0.92}], 0.9)
    9
    """
    for point in curve:
        if point[key] >= threshold:
            return point["seconds"]
    return None


def run(options: Options) -> Result:
    """Measure time to accuracy (real CROHME mode when the data is there; see the module docstring).

    Example:
    >>> run(Options(quick=True)).status  # doctest: +SKIP
    'ok'
    """
    require("im2latex_encoder.training", "time to a target accuracy")
    settings = _settings(options.quick)
    real = crohme_folder() if REAL_MODE else None
    if real:
        settings = dict(
            settings,
            budget=60.0 if options.quick else 400.0,
            eval_images=2048 if options.quick else 8192,
        )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory(prefix="bench-tta-") as folder:
        out = os.path.join(folder, "tta.json")
        command = [
            sys.executable,
            "-m",
            "benchmarks.time_to_accuracy",
            "--budget",
            str(settings["budget"]),
            "--eval-images",
            str(settings["eval_images"]),
            "--threads",
            str(options.threads),
            "--json",
            out,
        ]
        if options.quick:
            command.append("--quick")
        if real:
            command += ["--real", real]
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(
                [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            ),
        )
        completed = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"time_to_accuracy worker failed: {completed.stderr[-2000:]}")
        measured = json.loads(open(out, encoding="utf-8").read())
    result = _result(measured, settings, options)
    try:
        figure = plot_curves(measured, os.path.join(root, "bench-results", "time_to_accuracy.png"))
        result.notes.append(f"Curves plotted in {os.path.relpath(figure, root)}.")
    except (ImportError, OSError) as error:  # a plot is a convenience, never a failure
        result.notes.append(f"No curve plot ({error}).")
    return result


def plot_curves(measured: dict, path: str) -> str:
    """Plot each recipe's top-1 against training seconds, with the thresholds, as a PNG.

    Example:
    >>> plot_curves(measured, "bench-results/time_to_accuracy.png")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real = measured.get("real")
    recipes = measured.get("recipes", list(RECIPES))
    figure, ax = plt.subplots(figsize=(7, 4))
    for name in recipes:
        curve = measured[name]["curve"]
        config = measured[name]["config"]
        ax.plot(
            [p["seconds"] for p in curve],
            [p["top1"] for p in curve],
            marker=".",
            label=f"{name} ({config['image_size']}×{config['image_size']})",
        )
    for threshold in REAL_THRESHOLDS if real else THRESHOLDS:
        ax.axhline(threshold, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("training seconds (log scale)")
    ax.set_ylabel("top-1, CROHME 2016 test symbols" if real else "top-1, held-out-font validation")
    ax.set_title("Time to accuracy" + (" on real CROHME ink" if real else " (synthetic)"))
    ax.legend()
    figure.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _result(measured: dict, settings: dict, options: Options) -> Result:
    result = Result("time_to_accuracy")
    budget = measured["budget"]
    real = measured.get("real")
    recipes = measured.get("recipes", list(RECIPES))
    if real:
        scores = (
            ("top1", "top-1", REAL_THRESHOLDS),
            ("top1_merged", "merged top-1", REAL_THRESHOLDS),
        )
        target = ("crohme", "top1", max(REAL_THRESHOLDS))
    else:
        scores = _SCORES
        target = ("quick", "top1", 0.95)
    times = {}
    for name in recipes:
        run = measured[name]
        curve = run["curve"]
        last = curve[-1]
        config = run["config"]
        for key, label, thresholds in scores:
            for threshold in thresholds:
                seconds = time_to(curve, threshold, key)
                times[name, key, threshold] = seconds
                if seconds is not None:
                    images = next(p["images"] for p in curve if p[key] >= threshold)
                    result.figures.append(
                        Figure(
                            f"{name}: seconds to {threshold:.0%} {label}",
                            "s",
                            seconds,
                            seconds,
                            seconds,
                            1,
                            f"{images:,} training images",
                        )
                    )
                else:
                    result.notes.append(
                        f"{name}: {threshold:.0%} {label} not reached within the "
                        f"budget ({last['seconds']:.0f} s trained, stopped: "
                        f"{run['stopped']}; best {max(p[key] for p in curve):.3f})."
                    )
        best = max(p["top1"] for p in curve)
        best_merged = max(p["top1_merged"] for p in curve)
        result.figures += [
            Figure(
                f"{name}: best top-1 (exact)",
                "fraction",
                best,
                best,
                best,
                1,
                f"{len(curve)} evaluations",
            ),
            Figure(
                f"{name}: best top-1 (look-alike pairs merged)",
                "fraction",
                best_merged,
                best_merged,
                best_merged,
                1,
            ),
            Figure(
                f"{name}: training seconds used",
                "s",
                last["seconds"],
                last["seconds"],
                last["seconds"],
                1,
                f"{last['steps']} steps × batch {config['batch_size']}, "
                f"{config['image_size']}×{config['image_size']}; stopped: {run['stopped']}",
            ),
        ]
    for name in recipes:
        if name == "seed":
            continue
        for key, label, thresholds in scores:
            for threshold in thresholds:
                result.ratios.append(
                    _speedup(
                        times["seed", key, threshold],
                        times[name, key, threshold],
                        budget,
                        f"seed / {name} seconds to {threshold:.0%} {label}",
                        target=5.0 if (name, key, threshold) == target else None,
                        recipe=name,
                    )
                )
    scored_on = (
        f"{measured[recipes[0]]['validation_images']} CROHME 2016 test symbols (a fixed "
        "sample; never trained on), every recipe trained on the real CROHME training "
        "symbols"
        if real
        else f"{measured['quick']['validation_images']} held-out-font validation images per recipe"
    )
    result.notes += [
        f"Budget {budget:.0f} s of training time per recipe (evaluation excluded); one evaluation "
        f"every {settings['eval_images']} training images on {scored_on}; the recipes interleaved "
        "chunk by chunk in one worker subprocess; op determinism on, as in `pretrain`.",
        f"A recipe stops at {max(REAL_THRESHOLDS if real else THRESHOLDS):.0%} exact top-1, at the "
        "end of its schedule or when its budget is spent.",
        "A ratio of `inf` means seed never reached it within the budget while the other recipe "
        "did; its range's low end is the lower bound budget / that recipe's time.",
        "Curves: "
        + "; ".join(
            f"{name} "
            + ", ".join(
                f"{p['seconds']:.0f}s:{p['top1']:.2f}/{p['top1_merged']:.2f}"
                for p in measured[name]["curve"]
            )
            for name in recipes
        )
        + " (seconds: exact/merged top-1).",
    ]
    if options.quick:
        result.notes.append(
            "--quick: short schedules and budgets: a smoke run, not figures to quote."
        )
    return result


def _speedup(
    seed_seconds, recipe_seconds, budget: float, name: str, target=None, recipe: str = "quick"
) -> Ratio:
    if recipe_seconds is None:
        note = f"{recipe} did not reach it within the budget"
        return Ratio(name, math.nan, math.nan, math.nan, target, note)
    if seed_seconds is None:
        bound = budget / recipe_seconds
        return Ratio(
            name,
            math.inf,
            bound,
            math.inf,
            target,
            f"seed not reached within {budget:.0f} s; ≥ {bound:.2f}",
        )
    value = seed_seconds / recipe_seconds
    return Ratio(name, value, value, value, target)


def main(argv=None) -> None:
    """Worker entry point: measure and write the curves as JSON (see `measure`)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.time_to_accuracy")
    parser.add_argument("--budget", type=float, default=420.0, help="training seconds per recipe")
    parser.add_argument(
        "--eval-images", type=int, default=4096, help="training images per evaluation"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="shorten quick's schedule (smoke run)")
    parser.add_argument("--json", required=True, help="write the curves here")
    parser.add_argument(
        "--real", default=None, help="a CROHME folder (train/, test2016/): real mode"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ.get(TINY_ENV) == "1":  # the parent runs in tiny mode: the same sizes here
        tiny_sizes(sys.modules[__name__]).__enter__()
    settings = _settings(args.quick)
    measured = measure(
        args.budget,
        args.eval_images,
        settings["quick_overrides"],
        settings["validation_per_class"],
        args.threads,
        log=lambda line: print(line, file=sys.stderr, flush=True),
        real=args.real,
    )
    with open(args.json, "w", encoding="utf-8") as handle:
        json.dump(measured, handle, indent=2)


if __name__ == "__main__":
    main()
