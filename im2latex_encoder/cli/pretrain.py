"""`im2latex-encoder pretrain`: a resumable pretraining run."""

from __future__ import annotations

import shlex
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="pretrain the encoder on the 101-class symbol task",
        description="Pretrain a SymbolClassifier. Run the same command again after a crash to "
        "resume from the last completed epoch.",
    )
    parser.add_argument(
        "--config", default="quick", help="quick, full, seed, or a JSON file (default: quick)"
    )
    parser.add_argument(
        "--out", required=True, help="run directory (preset, plots, history, checkpoint)"
    )
    parser.add_argument(
        "--data",
        action="append",
        default=None,
        metavar="SOURCE",
        help="synthetic (default), crohme:DIR or FILE.npz; repeat to mix",
    )
    parser.add_argument(
        "--eval",
        action="append",
        default=[],
        metavar="SOURCE",
        help="extra evaluation data, e.g. crohme:DIR of real handwriting; repeatable",
    )
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    parser.add_argument(
        "--steps-per-epoch", type=int, default=None, help="override the config's steps per epoch"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="override the config's batch size"
    )
    parser.add_argument(
        "--validation-split",
        type=float,
        default=None,
        metavar="SHARE",
        help="override the share of CROHME training expressions held out for validation; 0 "
        "refits a chosen recipe on every expression (the shipped crohme101 is such a refit)",
    )
    parser.add_argument(
        "--validation-by",
        choices=("expression", "writer"),
        default=None,
        help="override what the validation split holds out whole: expressions, or every "
        "expression of some writers (by the files' writer annotation: new writers, like a test "
        "set's)",
    )
    parser.add_argument(
        "--teacher",
        action="append",
        default=[],
        metavar="PRESET",
        help="a trained preset whose predictions the run also learns (repeat for an ensemble: "
        "their average is matched on every training batch)",
    )
    parser.add_argument(
        "--distillation-weight",
        type=float,
        default=None,
        metavar="W",
        help="with --teacher: share of the loss on the teachers' predictions (default: 0.5)",
    )
    parser.add_argument(
        "--distillation-temperature",
        type=float,
        default=None,
        metavar="T",
        help="with --teacher: softmax temperature of the match (default: 1)",
    )
    parser.add_argument(
        "--initial-preset",
        default=None,
        metavar="PRESET",
        help="start from this preset's weights (same architecture as the config) instead of "
        "random ones",
    )
    parser.add_argument(
        "--strategy",
        default="default",
        choices=("default", "mirrored", "multiworker"),
        help="tf.distribute strategy; multiworker reads TF_CONFIG",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args) -> int:
    from im2latex_encoder.training import load_config, pretrain

    given = [
        flag
        for flag, value in (
            ("--distillation-weight", args.distillation_weight),
            ("--distillation-temperature", args.distillation_temperature),
        )
        if value is not None
    ]
    if given and not args.teacher:
        raise ValueError(
            f"{' and '.join(given)} tune distillation and need at least one --teacher PRESET. "
            "Received: no --teacher"
        )
    config = load_config(args.config)
    overrides = {
        key: value
        for key, value in (
            ("epochs", args.epochs),
            ("steps_per_epoch", args.steps_per_epoch),
            ("batch_size", args.batch_size),
            ("validation_split", args.validation_split),
            ("validation_by", args.validation_by),
        )
        if value is not None
    }
    if overrides:
        config = config.replace(**overrides)
    command = "im2latex-encoder pretrain " + shlex.join(
        sys.argv[1:] if sys.argv[1:2] != ["pretrain"] else sys.argv[2:]
    )
    pretrain(
        config,
        args.out,
        data=args.data or ["synthetic"],
        eval_data=args.eval,
        strategy=args.strategy,
        progress=not args.no_progress,
        command=command,
        teachers=args.teacher,
        distillation_weight=0.5 if args.distillation_weight is None else args.distillation_weight,
        distillation_temperature=(
            1.0 if args.distillation_temperature is None else args.distillation_temperature
        ),
        initial_preset=args.initial_preset,
    )
    return 0
