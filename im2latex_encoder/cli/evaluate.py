"""`im2latex-encoder evaluate`: top-1, top-5 and per-class accuracy of a preset."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    """Add the `evaluate` subcommand to the CLI's subparsers.

    Args:
        subparsers: the object `argparse.ArgumentParser.add_subparsers()` returned.

    Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> register(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["evaluate", "--data", "crohme:test2016"]).model
    'crohme101'
    """
    from im2latex_encoder.cli import add_model_option, positive_int

    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy of a classifier preset on CROHME or synthetic data",
        description="Print top-1, top-5 and per-class accuracy; optionally write them as JSON. "
        "For CROHME data and a preset with an expression context (crohme101), the figures of "
        "each symbol read alone come first, then those of the symbols read with their "
        "neighbours.",
    )
    add_model_option(parser, default="crohme101", help="a classifier preset's name or directory")
    parser.add_argument(
        "--data",
        default="synthetic",
        help="synthetic (held-out-font validation), crohme:DIR, or a prepared FILE.npz "
        "(rendered at the preset's input size)",
    )
    parser.add_argument(
        "--per-class",
        type=positive_int,
        default=30,
        help="synthetic images per class (default: 30)",
    )
    parser.add_argument("--seed", type=int, default=1, help="synthetic seed (default: 1)")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the results as JSON")
    parser.add_argument(
        "--no-context",
        action="store_true",
        help="report each symbol read alone only, even when the preset has an expression "
        "context (by default CROHME data is also read with each symbol's neighbours)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args) -> int:
    """Run `evaluate`: score the model on the data, print the figures, write `--json`.

    Args:
        args: argparse.Namespace from `register`'s parser.

    Returns:
        0 on success; user errors raise `CLIError`/`ValueError` (one line, exit status 2).

    Example:
    >>> from im2latex_encoder.cli import main
    >>> main(["evaluate", "--data", "crohme:../shared/data/crohme/test2016"])  # doctest: +SKIP
    0
    """
    from im2latex_encoder.cli import check_out_folder
    from im2latex_encoder.training.data_sources import parse_data_spec

    # The arguments are checked before the model loads (and TensorFlow with it).
    spec = parse_data_spec(args.data)
    if args.json:
        check_out_folder(args.json)
    from im2latex_encoder import SymbolClassifier
    from im2latex_encoder._atomic import atomic_write_text
    from im2latex_encoder.training.data_sources import load_labelled
    from im2latex_encoder.training.evaluation import evaluate_classifier, summarize

    classifier = SymbolClassifier.from_preset(args.model)
    size = classifier.image_size[0] if classifier.image_size else 128
    data = load_labelled(
        spec,
        labels=classifier.labels,
        image_size=size,
        split="validation",
        per_class=args.per_class,
        seed=args.seed,
        progress=not args.no_progress,
        context_scale=classifier.context_scale,
    )
    check_image_size(
        data.images.shape[1:3], classifier.image_size, data=args.data, preset=args.model
    )
    if len(data) == 0:
        raise ValueError(f"{spec}: no usable samples to evaluate (skipped {data.skipped}).")
    from im2latex_encoder.data.synthetic import FIT_AMBIGUOUS_PAIRS

    result = evaluate_classifier(
        classifier,
        data.images,
        data.labels,
        skipped=data.skipped,
        equivalent_pairs=FIT_AMBIGUOUS_PAIRS,
        boxes=None if args.no_context else data.boxes,
        groups=None if args.no_context else data.groups,
    )
    print(summarize(result, data.name + (" (each symbol alone)" if "in_context" in result else "")))
    in_context = result.get("in_context")
    if in_context is not None:
        print(
            summarize(
                in_context, data.name + " (each symbol with its neighbours, the preset's context)"
            )
        )
    print("per-class top-1 (worst first):")
    for name, row in sorted(
        result["per_class"].items(), key=lambda item: (item[1]["top1"], item[0])
    ):
        print(f"  {name:>12}  {100 * row['top1']:6.1f}%  (n={row['n']})")
    for record, how in ((result, ""), (in_context, " with neighbours")):
        if record and record["confused_pairs"]:
            print(
                f"most confused{how}: "
                + ", ".join(f"{t}→{p} ({c})" for t, p, c in record["confused_pairs"][:8])
            )
    if args.json:
        record = {
            k: result[k]
            for k in (
                "top1",
                "top5",
                "top1_merged",
                "n",
                "skipped",
                "per_class",
                "confused_pairs",
                "merged_pairs",
            )
            if k in result
        }
        record.update(
            {
                "data": str(spec),
                "preset": args.model,
                "skipped_by_reason": data.report.get("counts", {}),
            }
        )
        if in_context is not None:
            record["in_context"] = {
                k: in_context[k]
                for k in ("top1", "top5", "top1_merged", "per_class", "confused_pairs")
                if k in in_context
            }
        atomic_write_text(args.json, json.dumps(record, indent=2))
        print(f"wrote {args.json}")
    return 0


def check_image_size(received, expected, *, data: str, preset: str) -> None:
    """Refuse images whose size is not the model's input size.

    A prepared `.npz` keeps the size it was rendered at; a classifier with a pooling head would
    run on any size and report a meaningless accuracy, and one with a flatten head would fail
    inside Keras. `synthetic` and `crohme:DIR` are drawn at the model's size and always pass.

    Args:
        received: (height, width) of the data's images.
        expected: (height, width) the classifier takes (`classifier.image_size`), or None for a
            classifier that takes any size (nothing is checked then).
        data: str. The `--data` value, for the message.
        preset: str. The `--preset` value, for the message.

    Raises:
        CLIError: naming the expected and the received sizes, and how to prepare the data.

    Example:
    >>> check_image_size((48, 48), (48, 48), data="d.npz", preset="crohme101")
    >>> check_image_size((128, 128), (48, 48), data="d.npz", preset="crohme101")
    Traceback (most recent call last):
    ...
    im2latex_encoder.cli.CLIError: d.npz: expected 48×48 images, the input size of the preset 'crohme101' (classifier.image_size). Received: 128×128 images. Prepare the data again with `im2latex-encoder prepare ... --image-size 48`.
    """
    from im2latex_encoder.cli import CLIError

    if expected is None:
        return
    expected, received = tuple(int(n) for n in expected), tuple(int(n) for n in received)
    if received == expected:
        return
    shown = f"{expected[0]}×{expected[1]}"
    got = f"{received[0]}×{received[1]}"
    advice = (
        f" Prepare the data again with `im2latex-encoder prepare ... --image-size {expected[0]}`."
        if expected[0] == expected[1]
        else ""
    )
    raise CLIError(
        f"{data}: expected {shown} images, the input size of the preset {preset!r} "
        f"(classifier.image_size). Received: {got} images.{advice}"
    )
