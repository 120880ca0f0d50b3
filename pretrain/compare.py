"""Compare trained runs on new writers: `python -m pretrain.compare RUN_A RUN_B [RUN ...]`.

Two recipes a few tenths of a point apart on a validation slice may differ by nothing but the
slice: a writer-held-out slice is a sample of *writers*, and on CROHME three of them can hold
half its symbols. This script scores every run's preset on the slice the runs held out (rebuilt
from their `run.json`, as `pretrain` built it) and, with `--test`, on test symbols, then gives
each run's top-1 difference from the first run with a 95% interval from resampling writers
(paired: the same resampled writers for both runs). Files that name no writer count as a
writer each.

```bash
python -m pretrain.compare runs/base runs/candidate \\
    --data crohme:../shared/data/crohme/train --test crohme:../shared/data/crohme/test2016
```

Every run must have held out the same slice (`validation_split`, `validation_by`, split
seed): figures on different slices are not paired, and the command refuses them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Resamples of the writers for each interval.
RESAMPLES = 10_000


@dataclass(frozen=True)
class PairedDifference:
    """Top-1 of run B minus run A on the same symbols, in points, with a writer-bootstrap interval.

    Example:
    >>> PairedDifference(0.5, -0.1, 1.2, writers=20, symbols=4000).resolved
    False
    """

    points: float
    low: float
    high: float
    writers: int
    symbols: int

    @property
    def resolved(self) -> bool:
        """Whether the 95% interval leaves out zero."""
        return self.low > 0 or self.high < 0


def writer_bootstrap(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    writers: Sequence,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> PairedDifference:
    """Paired difference of two runs' top-1 over the same symbols, resampling writers.

    Each resample draws as many writers as there are, with replacement, and takes the
    difference of the two runs' accuracy over all the symbols of the drawn writers; the
    interval is the 2.5th and 97.5th percentile of those differences.

    Args:
        correct_a, correct_b: bool arrays, one entry per symbol: whether each run read it.
        writers: one key per symbol (any hashable): whose hand it is.
        resamples: int. Bootstrap resamples.
        seed: int. Seed of the resampling.

    Returns:
        `PairedDifference` in points (100 × the accuracy difference, B minus A).

    Example:
    >>> a = np.array([True, False, True, True])
    >>> b = np.array([True, True, True, True])
    >>> writer_bootstrap(a, b, ["w1", "w1", "w2", "w2"]).points
    25.0
    """
    correct_a = np.asarray(correct_a, dtype=bool)
    correct_b = np.asarray(correct_b, dtype=bool)
    keys = list(writers)
    if not (len(correct_a) == len(correct_b) == len(keys)) or not keys:
        raise ValueError(
            "expected one result of each run and one writer per symbol, and at least one "
            f"symbol. Received: {len(correct_a)} and {len(correct_b)} results, {len(keys)} writers"
        )
    if resamples < 1:
        raise ValueError(f"`resamples` must be at least 1. Received: {resamples}")
    names = {key: index for index, key in enumerate(dict.fromkeys(keys))}
    index = np.array([names[key] for key in keys])
    counts = np.bincount(index, minlength=len(names))
    gains = np.bincount(index, weights=correct_b.astype(float) - correct_a, minlength=len(names))
    draws = np.random.default_rng(seed).integers(0, len(names), size=(resamples, len(names)))
    boot = 100 * gains[draws].sum(axis=1) / counts[draws].sum(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return PairedDifference(
        points=float(100 * gains.sum() / counts.sum()),
        low=float(low),
        high=float(high),
        writers=len(names),
        symbols=len(keys),
    )


def held_out_configs(runs: Sequence[str | Path]) -> list:
    """Each run's `PretrainConfig`, checked to hold out the same slice.

    Raises:
        ValueError: if a run has no `run.json`, or two runs held out different slices.

    Example:
    >>> held_out_configs(["runs/base", "runs/candidate"])  # doctest: +SKIP
    """
    from im2latex_encoder.training.config import PretrainConfig

    configs = []
    for run in runs:
        record = Path(run) / "run.json"
        if not record.is_file():
            raise ValueError(
                f"{run}: expected a `pretrain` run folder with run.json. Received none"
            )
        configs.append(PretrainConfig(**json.loads(record.read_text(encoding="utf-8"))["config"]))
    slices = [_slice(config) for config in configs]
    if any(s != slices[0] for s in slices):
        listed = "; ".join(f"{run}: {s}" for run, s in zip(runs, slices))
        raise ValueError(
            "expected runs that held out the same slice (validation_split, validation_by, split "
            f"seed), so their figures pair symbol for symbol. Received: {listed}"
        )
    if not slices[0]["validation_split"]:
        raise ValueError(
            f"{runs[0]} held nothing out (validation_split 0): there is no slice to compare on"
        )
    return configs


def held_out_slice(config, data: str) -> tuple:
    """``(folders, kept, held_out, note)``: `data` split as `pretrain` split it for `config`.

    Raises:
        ValueError: if `data` is not a CROHME folder (``crohme:DIR``).

    Example:
    >>> folders, kept, held, note = held_out_slice(config, "crohme:train")  # doctest: +SKIP
    """
    from im2latex_encoder.symbols import CROHME_SYMBOLS
    from im2latex_encoder.training.data_sources import (
        load_ink_labelled,
        parse_data_spec,
        spec_path,
        split_crohme_folders,
    )
    from im2latex_encoder.training.run import hold_out

    spec = parse_data_spec(data)
    if spec.kind != "crohme":
        raise ValueError(
            f"--data must be the runs' CROHME training data, crohme:DIR. Received: {data}"
        )
    folders, _ = split_crohme_folders(spec_path(spec))  # as `pretrain` reads it
    ink, _, _ = load_ink_labelled(spec, labels=CROHME_SYMBOLS, progress=False, folders=folders)
    kept, held, note = hold_out(ink, spec, folders, config)
    return folders, kept, held, note


def _slice(config) -> dict:
    from im2latex_encoder.training.run import held_out_seed  # the one rule `pretrain` splits by

    return {
        "validation_split": config.validation_split,
        "validation_by": config.validation_by,
        "split_seed": held_out_seed(config),
    }


def writer_keys(folders: Sequence, ink) -> list:
    """Each symbol's writer (CROHME's, else its file), to hold writers out together."""
    from im2latex_encoder.training.data_sources import crohme_writers

    named = crohme_writers(folders, ink.group_names)
    groups = ink.groups.tolist()
    return [named[g] if named[g] is not None else f"file:{ink.group_names[g]}" for g in groups]


def _correct(model, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    from im2latex_encoder.training.evaluation import evaluate_classifier

    result = evaluate_classifier(model, images, labels, batch_size=256)
    return np.asarray(result["predictions"]) == labels


def compare(runs: Sequence[str], data: str, test: str | None = None) -> dict:
    """Score `runs` on their held-out slice of `data` (and on `test`) and pair them.

    Returns:
        ``{set name: {"top1": {run: %}, "differences": {run: PairedDifference}, "note": str}}``,
        differences against ``runs[0]``.

    Example:
    >>> compare(["runs/base", "runs/candidate"], "crohme:../shared/data/crohme/train")  # doctest: +SKIP
    """
    from im2latex_encoder.symbols import CROHME_SYMBOLS
    from im2latex_encoder.training.data_sources import (
        load_ink_labelled,
        parse_data_spec,
        spec_path,
    )

    if len(runs) < 2:
        raise ValueError(f"expected at least two runs to compare. Received: {len(runs)}")
    configs = held_out_configs(runs)
    folders, _, held, note = held_out_slice(configs[0], data)
    sets = {"held-out slice": (held, writer_keys(folders, held), note)}
    if test is not None:
        test_spec = parse_data_spec(test)
        test_ink, skipped, _ = load_ink_labelled(test_spec, labels=CROHME_SYMBOLS, progress=False)
        sets[str(test_spec)] = (
            test_ink,
            writer_keys([spec_path(test_spec)], test_ink),
            f"{test_spec}: {len(test_ink)} symbols ({skipped} not usable).",
        )
    from im2latex_encoder import SymbolClassifier

    models = [SymbolClassifier.from_preset(str(Path(run) / "preset")) for run in runs]
    results = {}
    for name, (symbols, writers, about) in sets.items():
        drawings: dict = {}  # runs that draw alike share one drawing of the symbols
        correct = {}
        for run, config, model in zip(runs, configs, models):
            drawing = (config.image_size, config.context_scale)
            if drawing not in drawings:
                drawings[drawing] = symbols.render(drawing[0], context_scale=drawing[1])
            correct[str(run)] = _correct(model, drawings[drawing], symbols.labels)
        base = correct[str(runs[0])]
        results[name] = {
            "note": about,
            "top1": {run: float(100 * hits.mean()) for run, hits in correct.items()},
            "differences": {
                run: writer_bootstrap(base, hits, writers)
                for run, hits in list(correct.items())[1:]
            },
        }
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pretrain.compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("runs", nargs="+", help="`pretrain` run folders; the first is the base")
    parser.add_argument("--data", required=True, help="the training data the runs held out from")
    parser.add_argument("--test", help="test symbols to compare on too (crohme:DIR)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    try:
        results = compare(args.runs, args.data, args.test)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, result in results.items():
        print(f"## {name}\n{result['note']}\n")
        print("| run | top-1 | − base, points | 95% interval (writers resampled) |")
        print("| --- | --- | --- | --- |")
        for run, top1 in result["top1"].items():
            d = result["differences"].get(run)
            diff = "base" if d is None else f"{d.points:+.2f}"
            interval = "" if d is None else f"{d.low:+.2f} to {d.high:+.2f}"
            print(f"| {run} | {top1:.2f}% | {diff} | {interval} |")
        print()
    if args.json:
        from im2latex_encoder._atomic import atomic_write_text

        payload = {
            name: {
                "note": r["note"],
                "top1": r["top1"],
                "differences": {k: vars(v) for k, v in r["differences"].items()},
            }
            for name, r in results.items()
        }
        atomic_write_text(args.json, json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
