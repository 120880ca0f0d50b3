"""Choose an expression context's settings: `python -m pretrain.choose_context RUN --data crohme:DIR`.

An `ExpressionContext` counts which symbol follows which in training expressions. Within a
CROHME collection (HAMEX, KAIST, MfrDB, expressmatch, MathBrush) many writers wrote the same
formulas, so a slice of held-out *writers* still shares formulas with the training writers,
and counts from the same collection make the context look far better than it is on a new
source of formulas, such as a test set (`pretrain/RECORD.md`, `crohme101` version 8: +2.6
points on the writer slice, −0.55 on the CROHME 2016 test set for the same settings).

This script scores the run's classifier on the writers the run held out, each symbol read
with its neighbours using counts from the kept expressions of the *other* collections only,
over a grid of `weight` × `prior_power` × `smoothing`. The decision figure is a cross-fit over
collections: for each held-out collection, the grid point best on the others is scored on
it. Differences from the classifier alone come with a 95% interval from resampling writers
(`pretrain.compare.writer_bootstrap`).

```bash
python -m pretrain.choose_context runs/base --data crohme:../shared/data/crohme/train
```

The run must have held out a slice (`validation_split` > 0) and the data must keep its
collections in sub-folders, as CROHME's training folder does.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pretrain.compare import (
    PairedDifference,
    held_out_configs,
    held_out_slice,
    writer_bootstrap,
    writer_keys,
)

#: The grid `crohme101` version 8's settings were chosen from (`pretrain/RECORD.md`).
WEIGHTS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
PRIOR_POWERS = (0.25, 0.5, 0.75)
SMOOTHINGS = (10.0,)


def collections(group_names: Sequence[str]) -> list[str]:
    """The collection of each expression: the first folder of its path.

    Raises:
        ValueError: if a path has no folder (the data keeps no collections apart).

    Example:
    >>> collections(["HAMEX/a.inkml", "KAIST/sub/b.inkml"])
    ['HAMEX', 'KAIST']
    >>> collections(["a.inkml"])
    Traceback (most recent call last):
    ...
    ValueError: expected CROHME files in collection sub-folders (HAMEX/, KAIST/, ...), so that counts from other collections can be tried on each. Received: 'a.inkml' at the top of its folder
    """
    found = []
    for name in group_names:
        parts = Path(name).parts
        if len(parts) < 2:
            raise ValueError(
                "expected CROHME files in collection sub-folders (HAMEX/, KAIST/, ...), so "
                "that counts from other collections can be tried on each. Received: "
                f"{name!r} at the top of its folder"
            )
        found.append(parts[0])
    return found


def choose_context(
    run: str,
    data: str,
    *,
    weights: Sequence[float] = WEIGHTS,
    prior_powers: Sequence[float] = PRIOR_POWERS,
    smoothings: Sequence[float] = SMOOTHINGS,
) -> dict:
    """Score every grid point on `run`'s held-out writers, with counts from other collections.

    Returns:
        ``{"note", "alone", "grid", "chosen", "cross_fit", "best", "best_difference"}``:
        the classifier's top-1 alone (%), each grid point's top-1 (``[{"weight",
        "prior_power", "smoothing", "top1"}]``), the point chosen without each held-out
        collection, the cross-fit's `PairedDifference` against the classifier alone, and
        the point best on every collection with its difference.

    Raises:
        ValueError: for a run that held nothing out, data that is not CROHME's or keeps no
            collections apart, a held-out slice from one collection only, or an empty grid.

    Example:
    >>> choose_context("runs/base", "crohme:../shared/data/crohme/train")  # doctest: +SKIP
    """
    from im2latex_encoder import SymbolClassifier
    from im2latex_encoder.context import ExpressionContext
    from im2latex_encoder.symbols import CROHME_SYMBOLS
    from im2latex_encoder.training.evaluation import predict_probabilities

    grid_points = list(itertools.product(smoothings, weights, prior_powers))
    if not grid_points:
        raise ValueError("expected at least one weight, prior power and smoothing. Received: none")
    (config,) = held_out_configs([run])
    folders, kept, held, note = held_out_slice(config, data)
    of_group = np.array(collections(kept.group_names))  # group names cover kept and held
    kept_from, held_from = of_group[kept.groups], of_group[held.groups]
    names = sorted(set(held_from.tolist()))
    if len(names) < 2:
        raise ValueError(
            "expected held-out writers from at least two collections, to choose on some and "
            f"score on another. Received: {names}"
        )
    counts = {}
    for name in names:
        others = np.flatnonzero(kept_from != name)
        if len(others) == 0:
            raise ValueError(f"no kept expression outside {name!r} to count the context on")
        counts[name] = ExpressionContext.fit(kept.subset(others)).transitions
    classifier = SymbolClassifier.from_preset(str(Path(run) / "preset"))
    images = held.render(config.image_size, context_scale=config.context_scale)
    probabilities = predict_probabilities(classifier, images, 256)
    labels = held.labels
    alone = probabilities.argmax(axis=1) == labels
    correct = {}
    for smoothing, weight, power in grid_points:
        predicted = np.empty(len(labels), np.int64)
        for name in names:
            members = np.flatnonzero(held_from == name)
            context = ExpressionContext(
                CROHME_SYMBOLS, counts[name], weight=weight, prior_power=power, smoothing=smoothing
            )
            decoded = context.decode(
                probabilities[members], held.boxes[members], held.groups[members]
            )
            predicted[members] = decoded.argmax(axis=1)
        correct[(smoothing, weight, power)] = predicted == labels
    writers = writer_keys(folders, held)
    cross = np.zeros_like(alone)
    chosen = {}
    for name in names:
        others = held_from != name
        point = max(grid_points, key=lambda p: correct[p][others].mean())
        chosen[name] = _settings(point)
        cross[held_from == name] = correct[point][held_from == name]
    best = max(grid_points, key=lambda p: correct[p].mean())
    return {
        "note": note,
        "alone": float(100 * alone.mean()),
        "grid": [{**_settings(p), "top1": float(100 * correct[p].mean())} for p in grid_points],
        "chosen": chosen,
        "cross_fit": writer_bootstrap(alone, cross, writers),
        "best": _settings(best),
        "best_difference": writer_bootstrap(alone, correct[best], writers),
    }


def _settings(point: tuple) -> dict:
    smoothing, weight, power = point
    return {"weight": weight, "prior_power": power, "smoothing": smoothing}


def _floats(text: str) -> list[float]:
    try:
        return [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, e.g. 0.1,0.3. Received: {text!r}"
        ) from None


def _interval(difference: PairedDifference) -> str:
    return f"{difference.points:+.2f} ({difference.low:+.2f} to {difference.high:+.2f})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pretrain.choose_context", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("run", help="a `pretrain` run folder that held out writers")
    parser.add_argument("--data", required=True, help="the training data the run held out from")
    parser.add_argument("--weights", type=_floats, default=list(WEIGHTS), help="comma-separated")
    parser.add_argument(
        "--prior-powers", type=_floats, default=list(PRIOR_POWERS), help="comma-separated"
    )
    parser.add_argument(
        "--smoothings", type=_floats, default=list(SMOOTHINGS), help="comma-separated"
    )
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    try:
        result = choose_context(
            args.run,
            args.data,
            weights=args.weights,
            prior_powers=args.prior_powers,
            smoothings=args.smoothings,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{result['note']}\n\nEach symbol alone: {result['alone']:.2f}%\n")
    print("| weight | prior power | smoothing | top-1, counts from other collections |")
    print("| --- | --- | --- | --- |")
    for row in result["grid"]:
        print(
            f"| {row['weight']:g} | {row['prior_power']:g} | {row['smoothing']:g} | {row['top1']:.2f}% |"
        )
    print()
    for name, settings in result["chosen"].items():
        print(f"chosen without {name}: {settings}")
    print(f"cross-fit over collections, − alone: {_interval(result['cross_fit'])} points")
    print(
        f"best on every collection: {result['best']}, − alone: {_interval(result['best_difference'])}"
    )
    if args.json:
        from im2latex_encoder._atomic import atomic_write_text

        payload = {
            **result,
            "cross_fit": vars(result["cross_fit"]),
            "best_difference": vars(result["best_difference"]),
        }
        atomic_write_text(args.json, json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
