"""`im2latex-encoder prepare`: CROHME folders or synthetic symbols -> a prepared ``.npz`` cache."""

from __future__ import annotations

import argparse
import importlib
import os

from im2latex_encoder.cli import CLIError, check_out_folder

# SymbolEncoder().minimum_image_side(), kept here so that prepare starts without TensorFlow.
MINIMUM_IMAGE_SIDE = 18
# `prepare crohme`'s default: the image size of `pretrain`'s default config (`quick`), since
# `pretrain --data FILE.npz` refuses a cache whose images are not its config's size. Kept here
# so that prepare starts without the training package; tests/cli/test_prepare_show.py keeps
# the two equal.
DEFAULT_IMAGE_SIZE = 32


def register(subparsers) -> None:
    """Add the `prepare` subcommand (with `crohme` and `synthetic`) to the CLI's subparsers.

    Args:
        subparsers: the object `argparse.ArgumentParser.add_subparsers()` returned.

    Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> register(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["prepare", "crohme", "train", "--out", "c.npz"]).image_size
    32
    """
    parser = subparsers.add_parser(
        "prepare",
        help="render a dataset into a prepared .npz cache",
        description="Render CROHME InkML folders or synthetic symbols into a prepared, "
        "content-hashed .npz cache (uint8 images, 255 = ink).",
    )
    sources = parser.add_subparsers(dest="source", metavar="SOURCE")
    crohme = sources.add_parser(
        "crohme",
        help="CROHME isolated-symbol (or expression) InkML folders",
        description="Read every *.inkml file and *GT*.txt ground-truth file under DIR "
        "(recursively; several folders may be given), render the symbols and "
        "print what was skipped, by reason. An up-to-date --out is reused.",
    )
    crohme.add_argument("folders", nargs="+", metavar="DIR", help="CROHME folder(s)")
    crohme.add_argument("--out", required=True, help="the .npz file to write")
    crohme.add_argument(
        "--image-size",
        type=int,
        default=DEFAULT_IMAGE_SIZE,
        help=f"image side in pixels, at least {MINIMUM_IMAGE_SIDE} (default: "
        f"{DEFAULT_IMAGE_SIZE}, the size pretrain's default config 'quick' trains "
        "on; pretrain --data and evaluate --data need their model's size, e.g. "
        "48 for --config crohme and the crohme101 preset)",
    )
    crohme.add_argument(
        "--include-junk", action="store_true", help="keep CROHME's junk samples as an extra class"
    )
    crohme.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first malformed InkML or ground-truth line",
    )
    crohme.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: all CPUs; 1: no pool)"
    )
    crohme.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    crohme.set_defaults(func=run)

    synthetic = sources.add_parser(
        "synthetic",
        help="synthetic symbols from matplotlib's math fonts",
        description="Generate PER_CLASS synthetic images of each of the 101 CROHME symbols.",
    )
    synthetic.add_argument("--out", required=True, help="the .npz file to write")
    synthetic.add_argument("--per-class", type=int, default=100, help="images per class")
    synthetic.add_argument(
        "--image-size",
        type=int,
        default=128,
        help=f"image side in pixels (at least {MINIMUM_IMAGE_SIDE})",
    )
    synthetic.add_argument("--seed", type=int, default=0, help="random seed")
    synthetic.add_argument(
        "--split",
        default="train",
        metavar="{train,validation}",
        help="train or validation (different glyph variants)",
    )
    synthetic.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    synthetic.set_defaults(func=run)
    parser.set_defaults(func=_missing_source, prepare_parser=parser)


def _missing_source(args: argparse.Namespace) -> int:
    raise CLIError(
        "expected a source: 'prepare crohme DIR --out FILE.npz' or "
        "'prepare synthetic --out FILE.npz'. Received: none"
    )


def _check_out(out: str) -> str:
    if not out.endswith(".npz"):
        raise CLIError(f"--out must be an .npz file. Received: {out!r}")
    check_out_folder(out)
    if os.path.isdir(out):
        raise CLIError(f"--out must be a file. Received a directory: {out!r}")
    return out


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise CLIError(f"{name} must be at least 1. Received: {value}")


def _check_image_size(value: int) -> None:
    if value < MINIMUM_IMAGE_SIDE:
        raise CLIError(
            f"--image-size must be at least {MINIMUM_IMAGE_SIDE} (the smallest image "
            f"the default SymbolEncoder can encode). Received: {value}"
        )


def run(args: argparse.Namespace) -> int:
    """Run `prepare crohme` or `prepare synthetic`; print what was written and skipped.

    Args:
        args: argparse.Namespace from `register`'s parsers.

    Returns:
        0 on success. User errors raise `CLIError`/`DataError`, which `main()` prints as one
        line with exit status 2.

    Example:
    >>> from im2latex_encoder.cli import main
    >>> main(["prepare", "crohme", "no/such/dir", "--out", "x.npz"])  # doctest: +SKIP
    2
    """
    out = _check_out(args.out)
    _check_image_size(args.image_size)
    if args.source == "crohme":
        _check_positive("--workers", args.workers)
        for folder in args.folders:
            if not os.path.isdir(folder):
                raise CLIError(
                    f"expected a CROHME folder. Received: {folder!r} "
                    f"({'a file' if os.path.exists(folder) else 'not found'})"
                )
        from im2latex_encoder.data.crohme import SkipReport
        from im2latex_encoder.data.crohme_preparer import prepare_crohme

        dataset = prepare_crohme(
            args.folders,
            out,
            image_size=args.image_size,
            include_junk=args.include_junk,
            strict=args.strict,
            progress=not args.no_progress,
            workers=args.workers,
        )
        report = dataset.report
        skip = SkipReport(
            used=report["used"],
            files=report["files"],
            ground_truth_rows=report["ground_truth_rows"],
            counts=report["counts"],
            examples=report["examples"],
            per_label=report["per_label"],
        )
        print(skip.summary())
    else:
        _check_positive("--per-class", args.per_class)
        if args.split not in ("train", "validation"):
            raise CLIError(
                f"--split must be one of 'train', 'validation'. Received: {args.split!r}"
            )
        try:
            synthetic = importlib.import_module("im2latex_encoder.data.synthetic")
        except ModuleNotFoundError as error:
            if error.name != "im2latex_encoder.data.synthetic":
                raise
            raise CLIError("the synthetic generator is not available in this build") from None
        dataset = synthetic.prepare_synthetic(
            out,
            per_class=args.per_class,
            image_size=args.image_size,
            seed=args.seed,
            split=args.split,
            progress=not args.no_progress,
        )
    height, width = dataset.image_size
    print(
        f"wrote {out}: {len(dataset)} images {height}x{width}, "
        f"{len(set(dataset.labels.tolist()))} of {len(dataset.label_names)} classes"
    )
    return 0
