"""`im2latex-encoder train-formulas | recognize | evaluate-formulas`: handwritten formulas."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

_MODEL_HELP = (
    "a saved formula recognizer, stroke or image design: a shipped preset's name "
    "(crohme-formulas, the default formula model, read by the image model "
    "crohme-formulas-image until it is shipped; crohme-formulas-image), a preset folder "
    "(train-formulas' RUN/recognizer), a .keras file, or an older folder with model.keras"
)
_BEAM_HELP = (
    "beam width, at least 1 (default: the model's: 4 for a stroke recognizer, whose beam "
    "search counts the symbols the strokes hold; greedy for the image model)"
)
#: The stroke views `--views` offers (`recognizer.stroke_tokens.VIEWS`, kept here so that
#: `--help` and argument errors need no model code).
_VIEWS = ("alone", "previous", "next", "window")
#: Options of one design only (their dest), refused with the other; None = not given.
_STROKES_ONLY = (
    "draws",
    "renamed_draws",
    "component_draws",
    "layout_draws",
    "label_components",
    "split_junctions",
    "component_order",
    "writing_order",
    "symbol_cutter",
    "init_from",
    "validation_split",
    "validation_seed",
    "attention_weight",
    "encoder_layers",
    "decoder_layers",
    "views",
    "auxiliary_weight",
    "cache_dir",
    "members",
)
_IMAGE_ONLY = ("freeze_encoder", "num_layers", "symbol_size", "strategy")
#: Defaults that differ between the designs: (strokes, image).
_DESIGN_DEFAULTS = {"epochs": (60, 20), "batch_size": (32, 16)}


def register(subparsers) -> None:
    """Add `train-formulas`, `recognize` and `evaluate-formulas` to the CLI's subparsers.

    Args:
        subparsers: the object `argparse.ArgumentParser.add_subparsers()` returned.

    Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> register(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["recognize", "expression.inkml"]).model
    'crohme-formulas'
    """
    from im2latex_encoder.cli import add_model_option, non_negative_int, positive_int

    train = subparsers.add_parser(
        "train-formulas",
        help="train a formula recognizer on CROHME expressions",
        description="Train a formula recognizer on handwritten CROHME expressions. "
        "--design strokes (the default, the design that learns on a CPU): each stroke a token "
        "read by a frozen pretrained symbol classifier (features computed once per draw and "
        "cached), a small Transformer and a decoder (StrokeRecognizer). --design image: the "
        "whole expression drawn as an image under the symbol encoder and an attention decoder "
        "(FormulaRecognizer, for GPUs). Run the same command again after a crash to resume "
        "from the last completed epoch.",
    )
    train.add_argument(
        "--design",
        default="strokes",
        choices=("strokes", "image"),
        help="strokes: a StrokeRecognizer (stroke tokens; learns on a CPU); image: a "
        "FormulaRecognizer (whole-expression images) (default: strokes)",
    )
    train.add_argument("--data", required=True, metavar="crohme:DIR", help="training expressions")
    train.add_argument(
        "--out", required=True, help="run folder (checkpoint, curves, metrics, recognizer/)"
    )
    train.add_argument(
        "--captions",
        default=None,
        metavar="FILE",
        help="caption file (STEM<TAB>tokens) for the targets; default: each file's normalised truth",
    )
    train.add_argument(
        "--dictionary",
        default=None,
        metavar="FILE",
        help="CROHME dictionary.txt for the vocabulary (default: the targets' tokens)",
    )
    train.add_argument(
        "--eval",
        action="append",
        default=[],
        metavar="crohme:DIR",
        help="score these expressions at the end (e.g. the 2016 test set); repeatable",
    )
    train.add_argument(
        "--preset",
        default="crohme101",
        help="symbol classifier preset: the strokes design reads its features (frozen), the "
        "image design starts from its encoder; 'none' for an untrained one, the from-scratch "
        "baseline (default: crohme101)",
    )
    train.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="passes over the training expressions (default: 60 strokes, 20 image)",
    )
    train.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="expressions per training step (default: 32 strokes, 16 image)",
    )
    train.add_argument(
        "--learning-rate",
        type=float,
        default=1e-3,
        help="peak learning rate (default: 0.001; strokes: AdamW, warm-up then cosine decay)",
    )
    train.add_argument(
        "--hidden-dim",
        type=positive_int,
        default=128,
        help="width of the decoder (and of the strokes' token encoder, or the image encoder's "
        "projection) (default: 128)",
    )
    train.add_argument(
        "--beam",
        type=positive_int,
        default=None,
        help="also score with beam search of this width (at least 1)",
    )
    train.add_argument(
        "--max-train",
        type=positive_int,
        default=None,
        help="use only this many training expressions",
    )
    train.add_argument(
        "--seed", type=int, default=0, help="random seed of the split and the weights (default: 0)"
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    strokes = train.add_argument_group("--design strokes only")
    strokes.add_argument(
        "--draws",
        type=positive_int,
        default=None,
        help="draws of each expression's ink whose features are cached: a clean one and "
        "draws-1 augmented ones (default: 3)",
    )
    strokes.add_argument(
        "--renamed-draws",
        type=non_negative_int,
        default=None,
        help="augmented draws of the expressions with some digits and letters renamed, in "
        "caption and ink (another writer's symbol in its place): formulas the decoder has not "
        "seen (default: 3; 0: none)",
    )
    strokes.add_argument(
        "--component-draws",
        type=non_negative_int,
        default=None,
        help="draws of the expressions as formula images read back by their connected "
        "components, as `recognize` reads a picture, so images and ink train one model "
        "(default: 2; 0: none)",
    )
    strokes.add_argument(
        "--layout-draws",
        type=non_negative_int,
        default=None,
        help="draws of the training ink with its strokes in the order an image's tokens come "
        "in (--component-order layout's), the first clean, the others augmented; measured on "
        "CROHME 2016, it does not narrow the images' gap (default: 0)",
    )
    strokes.add_argument(
        "--label-components",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="give each component of the image draws the symbol annotation of the stroke that "
        "drew most of it, so the auxiliary losses and the symbol-count prior learn image tokens "
        "too (default: on; validation formulas, beam 4: images +4 points at 64 px, +3 at 24)",
    )
    strokes.add_argument(
        "--split-junctions",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="cut the image draws where their lines meet, so symbols that touch are separate "
        "tokens; the model records it and reads images cut the same way (default: off, one "
        "token per connected component, as crohme-formulas version 2 was trained)",
    )
    strokes.add_argument(
        "--component-order",
        choices=("left-to-right", "layout"),
        default=None,
        help="the order of the image draws' tokens: left to right, or as a caption reads the "
        "layout (a fraction's bar, then its numerator, then its denominator); the model records "
        "it and reads images in the same order (default: left-to-right)",
    )
    strokes.add_argument(
        "--writing-order",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read the strokes in the writer's order (positions by stroke index, the pen's "
        "travel from the previous stroke); --no-writing-order reads each expression's tokens "
        "as a set, as an image's come, and needs order-free --views such as 'alone window' "
        "(default: the writer's order)",
    )
    strokes.add_argument(
        "--symbol-cutter",
        default=None,
        metavar="DIR",
        help="cut the image draws where this cutter (train-symbol-cutter's --out) says two "
        "symbols touch, as `evaluate-formulas --symbol-cutter` reads images (default: none)",
    )
    strokes.add_argument(
        "--init-from",
        default=None,
        metavar="PRESET",
        help="start from this stroke recognizer's trained weights (crohme-formulas, or "
        "train-formulas' RUN/recognizer), member m from its member m, with its featurizer and "
        "vocabulary: a fine-tune (give a smaller --learning-rate) (default: a new model)",
    )
    strokes.add_argument(
        "--validation-split",
        choices=("formula", "expression"),
        default=None,
        help="hold out formulas (none of the validation formulas is trained on, as on a test "
        "set) or expressions (default: formula)",
    )
    strokes.add_argument(
        "--validation-seed",
        type=int,
        default=None,
        help="random seed of the validation split alone (default: --seed), so runs of "
        "several --seed values are scored on the same validation expressions",
    )
    strokes.add_argument(
        "--attention-weight",
        type=float,
        default=None,
        help="weight of the guided attention loss: while the decoder writes a symbol's token, "
        "its last cross-attention is pulled toward that symbol's strokes (TAP; from the ink's "
        "symbol annotation, training only; 0: off) (default: 0.5)",
    )
    strokes.add_argument(
        "--encoder-layers",
        type=positive_int,
        default=None,
        help="Transformer blocks reading the stroke tokens (default: 3)",
    )
    strokes.add_argument(
        "--decoder-layers", type=positive_int, default=None, help="decoder blocks (default: 3)"
    )
    strokes.add_argument(
        "--views",
        nargs="+",
        choices=_VIEWS,
        default=None,
        help="how the classifier sees each stroke: alone, with the previous stroke, with the "
        "next, in a window of symbols around it (default: alone previous next)",
    )
    strokes.add_argument(
        "--auxiliary-weight",
        type=_non_negative_float,
        default=None,
        help="weight of each auxiliary loss (each stroke's symbol; whether it continues the "
        "previous stroke's symbol), 0 for none (default: 0.5)",
    )
    strokes.add_argument(
        "--members",
        type=positive_int,
        default=None,
        help="train this many recognizers one after another (seeds --seed, --seed + 1, ...) on "
        "the same features and validation split and join them into one that averages them at "
        "every decoding step, stored as float16 (crohme-formulas is 2; default: 1)",
    )
    strokes.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="where the strokes and their features are cached (default: OUT/cache)",
    )
    image = train.add_argument_group("--design image only")
    image.add_argument(
        "--freeze-encoder",
        action="store_true",
        default=None,
        help="keep the pretrained conv stages fixed",
    )
    image.add_argument(
        "--num-layers", type=positive_int, default=None, help="decoder layers (default: 2)"
    )
    image.add_argument(
        "--symbol-size",
        type=float,
        default=None,
        help="pixels of a typical symbol (default: what the preset was trained on)",
    )
    image.add_argument(
        "--strategy",
        default=None,
        choices=("default", "mirrored"),
        help="tf.distribute strategy, as for pretrain (default: default)",
    )
    train.set_defaults(func=run_train)

    recognize = subparsers.add_parser(
        "recognize",
        help="print the LaTeX of handwritten formula files",
        description="Print one line per file: the file, a tab, its LaTeX tokens. InkML files are "
        "drawn as the model was trained; image files (PNG, JPEG) are read as dark ink on a light "
        "background. A file that cannot be read is reported on stderr and the others are still "
        "recognised (exit status 2).",
    )
    add_model_option(recognize, default="crohme-formulas", help=_MODEL_HELP)
    recognize.add_argument("files", nargs="+", metavar="FILE", help=".inkml or image files")
    recognize.add_argument("--beam", type=positive_int, default=None, help=_BEAM_HELP)
    recognize.add_argument(
        "--json", default=None, metavar="OUT", help="also write one JSON line per file here"
    )
    recognize.add_argument(
        "--symbol-cutter",
        default=None,
        metavar="DIR",
        help="cut image files where this symbol cutter (train-symbol-cutter --out) says two "
        "symbols touch before reading them (a stroke recognizer only)",
    )
    recognize.set_defaults(func=run_recognize)

    evaluate = subparsers.add_parser(
        "evaluate-formulas",
        help="ExpRate of a formula recognizer on CROHME expressions",
        description="Score a recognizer as CROHME does: ExpRate (exact), within 1 and 2 token "
        "errors, token error rate; n and skipped are always reported.",
    )
    add_model_option(evaluate, default="crohme-formulas", help=_MODEL_HELP)
    evaluate.add_argument(
        "--data", required=True, metavar="crohme:DIR", help="expressions to score"
    )
    evaluate.add_argument(
        "--captions",
        default=None,
        metavar="FILE",
        help="targets from this caption file (matched by file stem); default: normalised truth",
    )
    evaluate.add_argument("--beam", type=positive_int, default=None, help=_BEAM_HELP)
    evaluate.add_argument(
        "--batch-size", type=positive_int, default=32, help="expressions per batch (default: 32)"
    )
    evaluate.add_argument(
        "--as-images",
        type=_pixel_sizes,
        default=(),
        metavar="PX[,PX...]",
        help="also score each expression's ink drawn as an image whose typical symbol is PX "
        "pixels, read by its ink's connected components as a photo is (a stroke recognizer "
        "only); one row per size, e.g. 64,24",
    )
    evaluate.add_argument(
        "--symbol-count-weight",
        type=_non_negative_float,
        default=None,
        metavar="W",
        help="a stroke recognizer's symbol-count prior in decoding: how much the number of "
        "symbols its strokes hold counts (0: the decoder alone; default: the model's, 1)",
    )
    evaluate.add_argument(
        "--slants",
        type=_slants,
        default=None,
        metavar="S[,S...]|none",
        help="a stroke recognizer also reads each expression sheared by each slant (x + S*y) "
        "and averages its decoder over the views (test-time augmentation, e.g. 0.12,-0.12); "
        "none: the ink alone (default: the model's, none for crohme-formulas)",
    )
    evaluate.add_argument(
        "--symbol-cutter",
        default=None,
        metavar="DIR",
        help="with --as-images, cut each image where this symbol cutter (train-symbol-cutter "
        "--out) says two symbols touch before reading it",
    )
    evaluate.add_argument("--json", default=None, metavar="OUT", help="write the scores as JSON")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")
    evaluate.set_defaults(func=run_evaluate)

    cutter = subparsers.add_parser(
        "train-symbol-cutter",
        help="train the net that cuts touching symbols apart in formula images",
        description="Train a SymbolCutter: per ink pixel, whether two symbols meet there, "
        "learned from CROHME expressions drawn as images with their trace groups. The "
        "expressions of the validation formulas train-formulas holds out (same --captions, "
        "--validation-seed and --validation-fraction) are left out. Writes "
        "symbol_cutter.json and symbol_cutter.weights.h5 to --out.",
    )
    cutter.add_argument("--data", required=True, metavar="crohme:DIR", help="training expressions")
    cutter.add_argument(
        "--captions",
        default=None,
        metavar="FILE",
        help="the formulas, for the validation split by formula (default: normalised truth)",
    )
    cutter.add_argument("--out", required=True, metavar="DIR", help="folder to write (new)")
    cutter.add_argument("--epochs", type=positive_int, default=5, help="(default: 5)")
    cutter.add_argument("--seed", type=non_negative_int, default=0, help="(default: 0)")
    cutter.add_argument("--validation-seed", type=non_negative_int, default=0, help="(default: 0)")
    cutter.add_argument(
        "--validation-fraction",
        type=_non_negative_float,
        default=0.05,
        help="share of formulas held out (default: 0.05, as train-formulas)",
    )
    cutter.add_argument(
        "--threshold",
        type=_non_negative_float,
        default=None,
        help="cut ink predicted at or above this (default: 0.8, chosen on validation)",
    )
    cutter.add_argument("--no-progress", action="store_true", help="no progress bars")
    cutter.set_defaults(func=run_train_symbol_cutter)


def _crohme_folder(text: str) -> str:
    from im2latex_encoder.cli import CLIError

    if not text.startswith("crohme:"):
        raise CLIError(
            f"--data must be crohme:DIR, a folder of InkML expressions. Received: {text!r}"
        )
    folder = text[len("crohme:") :]
    if not os.path.isdir(folder):
        raise CLIError(f"--data: no such folder: {folder!r}")
    return folder


#: The largest typical symbol `--as-images` draws, in pixels (a 20-symbol formula at 512 px is
#: already 10,000 pixels wide).
_MAX_SYMBOL_PIXELS = 512


def _pixel_sizes(text: str) -> tuple[int, ...]:
    """An argparse `type`: comma-separated whole numbers of pixels, each 1 to 512, in order.

    Example:
    >>> _pixel_sizes("64,24")
    (64, 24)
    >>> _pixel_sizes("0")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected whole numbers of pixels from 1 to 512, ... Received: 0
    """
    import argparse

    sizes = []
    for part in text.split(","):
        try:
            size = int(part.strip())
        except ValueError:
            size = 0
        if not 1 <= size <= _MAX_SYMBOL_PIXELS:
            raise argparse.ArgumentTypeError(
                f"expected whole numbers of pixels from 1 to {_MAX_SYMBOL_PIXELS}, separated by "
                f"commas (e.g. 64,24). Received: {text}"
            )
        if size not in sizes:
            sizes.append(size)
    return tuple(sizes)


#: The largest slant `--slants` takes: a shear of 45 degrees.
_MAX_SLANT = 1.0


def _slants(text: str) -> tuple[float, ...]:
    """An argparse `type`: comma-separated slants in [-1, 1], or ``none`` for no slant view.

    Example:
    >>> _slants("0.12,-0.12"), _slants("none")
    ((0.12, -0.12), ())
    >>> _slants("0.1,x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected slants from -1 to 1 separated by commas ... Received: 0.1,x
    """
    import argparse
    import math

    if text.strip().lower() == "none":
        return ()
    slants = []
    for part in text.split(","):
        try:
            slant = float(part.strip())
        except ValueError:
            slant = math.nan
        if not -_MAX_SLANT <= slant <= _MAX_SLANT:
            raise argparse.ArgumentTypeError(
                f"expected slants from -{_MAX_SLANT:g} to {_MAX_SLANT:g} separated by commas "
                f"(e.g. 0.12,-0.12), or none. Received: {text}"
            )
        slants.append(slant)
    return tuple(slants)


def _score_line(label: str, result: dict) -> str:
    """One printed row of `evaluate-formulas`: ExpRate, ≤1, ≤2, token error rate, n, speed."""
    return (
        f"{label}: ExpRate {100 * result['exprate']:.2f}%, ≤1 "
        f"{100 * result['exprate_1']:.2f}%, ≤2 {100 * result['exprate_2']:.2f}%, token error rate "
        f"{100 * result['token_error_rate']:.2f}% (n={result['n']}, skipped {result['skipped']}); "
        f"{result['formulas_per_second']:.1f} formulas/s"
    )


def _non_negative_float(text: str) -> float:
    """An argparse `type`: a finite number of at least 0."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0. Received: {text}")
    return value


def _design_options(args) -> dict:
    """The options of `args.design`, defaults filled in; the other design's refused."""
    from im2latex_encoder.cli import CLIError

    strokes = args.design == "strokes"
    foreign = _IMAGE_ONLY if strokes else _STROKES_ONLY
    given = ["--" + name.replace("_", "-") for name in foreign if getattr(args, name) is not None]
    if given:
        raise CLIError(
            f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for --design "
            f"{'image' if strokes else 'strokes'}. Received: --design {args.design}"
        )
    options = {
        name: value if (value := getattr(args, name)) is not None else pair[0 if strokes else 1]
        for name, pair in _DESIGN_DEFAULTS.items()
    }
    # as `check_views_need_no_order` refuses, kept here so the refusal loads no model code
    views = args.views or ("alone", "previous", "next")
    if strokes and args.writing_order is False and {"previous", "next"} & set(views):
        raise CLIError(
            "--no-writing-order reads each expression's tokens as a set: give --views that "
            f"need no order, such as --views alone window. Received: --views {' '.join(views)}"
        )
    if strokes and args.cache_dir is not None and os.path.isfile(args.cache_dir):
        raise CLIError(f"--cache-dir must be a folder. Received: a file, {args.cache_dir!r}")
    return options


def run_train(args) -> int:
    """Run `train-formulas`: train the chosen design, print its scores and where it saved.

    Args:
        args: argparse.Namespace of `train-formulas`.

    Returns:
        0.

    Example:
    >>> from im2latex_encoder.cli import main
    >>> main(["train-formulas", "--data", "crohme:train", "--out", "runs/s"])  # doctest: +SKIP
    0
    """
    # The arguments and folders are checked before the training code (and TensorFlow) loads.
    options = _design_options(args)
    train_folder = _crohme_folder(args.data)
    eval_folders = [_crohme_folder(d) for d in args.eval]
    preset = None if args.preset.lower() == "none" else args.preset
    command = "im2latex-encoder " + shlex.join(sys.argv[1:])
    if args.design == "strokes":
        from im2latex_encoder.recognizer.stroke_training import train_strokes

        result = train_strokes(
            train_folder,
            args.out,
            captions=args.captions,
            dictionary=args.dictionary,
            preset=preset,
            draws=args.draws or 3,
            renamed_draws=3 if args.renamed_draws is None else args.renamed_draws,
            component_draws=2 if args.component_draws is None else args.component_draws,
            layout_draws=args.layout_draws or 0,
            label_components=args.label_components is not False,
            split_junctions=bool(args.split_junctions),
            component_order=args.component_order or "left-to-right",
            writing_order=args.writing_order is not False,
            symbol_cutter=None
            if args.symbol_cutter is None
            else _load_symbol_cutter(args.symbol_cutter),
            init_from=args.init_from,
            validation_split=args.validation_split or "formula",
            validation_seed=args.validation_seed,
            attention_weight=0.5 if args.attention_weight is None else args.attention_weight,
            epochs=options["epochs"],
            batch_size=options["batch_size"],
            learning_rate=args.learning_rate,
            hidden_dim=args.hidden_dim,
            encoder_layers=args.encoder_layers or 3,
            decoder_layers=args.decoder_layers or 3,
            auxiliary_weight=0.5 if args.auxiliary_weight is None else args.auxiliary_weight,
            views=tuple(args.views or ("alone", "previous", "next")),
            eval_folders=eval_folders,
            beam=args.beam,
            max_train=args.max_train,
            seed=args.seed,
            members=args.members or 1,
            cache_dir=args.cache_dir,
            progress=not args.no_progress,
            command=command,
        )
    else:
        from im2latex_encoder.recognizer.handwritten_training import train_handwritten

        result = train_handwritten(
            train_folder,
            args.out,
            captions=args.captions,
            dictionary=args.dictionary,
            preset=preset,
            freeze_encoder=bool(args.freeze_encoder),
            epochs=options["epochs"],
            batch_size=options["batch_size"],
            learning_rate=args.learning_rate,
            hidden_dim=args.hidden_dim,
            num_layers=args.num_layers or 2,
            symbol_size=args.symbol_size,
            eval_folders=eval_folders,
            beam=args.beam,
            seed=args.seed,
            strategy=args.strategy or "default",
            max_train=args.max_train,
            progress=not args.no_progress,
            command=command,
        )
    for name, scores in result["metrics"].items():
        for kind, score in scores.items():
            if isinstance(score, dict):
                print(
                    f"{name} ({kind}): ExpRate {100 * score['exprate']:.2f}%, ≤1 "
                    f"{100 * score['exprate_1']:.2f}%, ≤2 {100 * score['exprate_2']:.2f}% "
                    f"(n={score['n']}, skipped {score['skipped']})"
                )
    seconds = result.get("seconds")
    if isinstance(seconds, dict) and "training" in seconds:
        print(
            f"time: features {seconds['features']:.0f} s, training {seconds['training']:.0f} s "
            f"({seconds['per_epoch']:.1f} s an epoch), total {seconds['total']:.0f} s"
        )
    print(f"wrote {os.path.join(args.out, 'recognizer')}")
    return 0


def _read_image(path: str):
    """An image file as the recognizer reads it, through the library's guarded image reader."""
    from im2latex_encoder.data.symbol_files import read_image_gray
    from im2latex_encoder.recognizer.preprocessor import expression_ink

    return expression_ink(read_image_gray(path), name=path)


def run_recognize(args) -> int:
    """Run `recognize`: print each file's LaTeX; report the files that cannot be read.

    Args:
        args: argparse.Namespace with `model`, `files`, `beam`, `json`.

    Returns:
        0 when every file was recognised, 2 when some were skipped (each named on stderr).

    Example:
    >>> from im2latex_encoder.cli import main
    >>> main(["recognize", "expression.inkml", "photo.png"])  # doctest: +SKIP
    0
    """
    from im2latex_encoder.cli import CLIError, check_out_folder

    if args.json:
        check_out_folder(args.json)  # before the model loads: a typo costs no waiting
    from im2latex_encoder._atomic import atomic_write_text
    from im2latex_encoder.data.errors import DataError
    from im2latex_encoder.recognizer.saving import load_formula_recognizer

    cut: dict = {}
    if args.symbol_cutter is not None:
        cut["symbol_cutter"] = _load_symbol_cutter(args.symbol_cutter)
    model = load_formula_recognizer(args.model)
    if cut and not callable(getattr(model, "recognize_stroke_tokens", None)):
        raise CLIError(
            "--symbol-cutter cuts images into the tokens a stroke recognizer reads (--model "
            "crohme-formulas, a StrokeRecognizer); an image model reads the whole image. "
            f"Received: {type(model).__name__} from --model {args.model}"
        )
    # InkML files are read as strokes (`recognize_strokes`, the server's path too), images
    # as images; each answer is printed in the order the files were given.
    names: list[str] = []
    kinds: list[str] = []
    inks: list = []
    images: list = []
    failures = 0
    for path in args.files:
        try:
            kind, content = _formula_input(path)
        except (DataError, ValueError, OSError) as error:
            failures += 1
            print(f"im2latex-encoder recognize: skipped {error}", file=sys.stderr)
            continue
        names.append(path)
        kinds.append(kind)
        (inks if kind == "ink" else images).append(content)
    beam_width = args.beam or getattr(model, "default_beam_width", 1)
    answers = {
        "ink": iter(model.recognize_strokes(inks, beam_width=beam_width) if inks else []),
        "image": iter(
            model.recognize_images(images, beam_width=beam_width, **cut) if images else []
        ),
    }
    records = []
    for name, kind in zip(names, kinds):
        latex = next(answers[kind])
        print(f"{name}\t{latex}")
        records.append(json.dumps({"file": name, "latex": latex}) + "\n")
    if args.json:
        atomic_write_text(args.json, "".join(records))
    if failures:
        print(
            f"im2latex-encoder recognize: {failures} of {len(args.files)} files skipped",
            file=sys.stderr,
        )
        return 2
    return 0


def _formula_input(path: str) -> tuple:
    """``("ink", strokes)`` for an InkML file, ``("image", uint8 ink)`` for an image file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    if not path.lower().endswith(".inkml"):
        return "image", _read_image(path)
    from im2latex_encoder.data.inkml import read_inkml

    strokes = [s for s in read_inkml(path).strokes() if len(s)]
    if not strokes:
        raise ValueError(f"{path}: no strokes to recognise")
    return "ink", strokes


def _load_symbol_cutter(folder: str):
    """`SymbolCutter.load`, a folder without a cutter named as a command-line error."""
    from im2latex_encoder.cli import CLIError
    from im2latex_encoder.recognizer.symbol_cutter import SymbolCutter

    try:
        return SymbolCutter.load(folder)
    except FileNotFoundError as error:
        raise CLIError(str(error)) from None


def run_train_symbol_cutter(args) -> int:
    """Run `train-symbol-cutter`: crops from the training expressions, the net, the folder.

    Args:
        args: argparse.Namespace of `train-symbol-cutter`.

    Returns:
        0.

    Example:
    >>> from im2latex_encoder.cli import main
    >>> main(["train-symbol-cutter", "--data", "crohme:train", "--out", "cutter"])  # doctest: +SKIP
    0
    """
    import time

    from im2latex_encoder.cli import CLIError, check_out_folder

    folder = _crohme_folder(args.data)
    check_out_folder(args.out)
    if os.path.exists(args.out):
        raise CLIError(f"--out must be a new folder; it exists: {args.out!r}")
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise CLIError(f"--threshold must be in (0, 1). Received: {args.threshold}")
    from im2latex_encoder._atomic import atomic_directory
    from im2latex_encoder.formulas.crohme_truth import read_crohme_captions
    from im2latex_encoder.recognizer.stroke_data import read_stroke_expressions
    from im2latex_encoder.recognizer.stroke_training import expression_formulas, split_by_formula
    from im2latex_encoder.recognizer.symbol_cutter import (
        DEFAULT_THRESHOLD,
        symbol_cutter_crops,
        train_symbol_cutter,
    )

    started = time.perf_counter()
    data = read_stroke_expressions(folder, progress=not args.no_progress)
    caption_map = read_crohme_captions(args.captions) if args.captions else None
    # the validation formulas train-formulas holds out (the same helper, split and seed)
    formulas = expression_formulas(data, caption_map)
    held = split_by_formula(formulas, args.validation_fraction, args.validation_seed)
    train = [i for i in range(len(data)) if not held[i]]
    images, targets = symbol_cutter_crops(
        data, train, seed=args.seed, progress=not args.no_progress
    )
    print(
        f"{len(train)} expressions ({int(held.sum())} held out), {len(images)} crops, "
        f"{float(targets.sum() / max(1, (images >= 128).sum())):.2%} of the ink where symbols meet",
        flush=True,
    )
    cutter = train_symbol_cutter(
        images,
        targets,
        epochs=args.epochs,
        seed=args.seed,
        progress=not args.no_progress,
        threshold=DEFAULT_THRESHOLD if args.threshold is None else args.threshold,
    )
    cutter.record.update(
        data=args.data,
        expressions=len(train),
        held_out=int(held.sum()),
        validation_seed=args.validation_seed,
        validation_fraction=args.validation_fraction,
        seconds=round(time.perf_counter() - started, 1),
        licence="trained on CROHME handwriting: non-commercial research use only",
    )
    # Written beside --out and renamed into place: a crash leaves no half-written cutter.
    with atomic_directory(args.out) as staging:
        cutter.save(staging)
    print(f"wrote {args.out} ({cutter.record['seconds']:.0f} s)")
    return 0


def run_evaluate(args) -> int:
    """Run `evaluate-formulas`: print the scores on the ink, and on images at each --as-images.

    Args:
        args: argparse.Namespace of `evaluate-formulas`.

    Returns:
        0.

    Example:
    >>> from im2latex_encoder.cli import main
    >>> argv = ["evaluate-formulas", "--data", "crohme:test2016", "--as-images", "64,24"]
    >>> main(argv)  # doctest: +SKIP
    0
    """
    from im2latex_encoder.cli import CLIError, check_out_folder

    # The arguments are checked before the model (and TensorFlow) loads.
    folder = _crohme_folder(args.data)
    if args.json:
        check_out_folder(args.json)
    from im2latex_encoder._atomic import atomic_write_text
    from im2latex_encoder.formulas.crohme_truth import read_crohme_captions
    from im2latex_encoder.formulas.handwritten import read_crohme_expressions
    from im2latex_encoder.recognizer.evaluation import evaluate_expressions
    from im2latex_encoder.recognizer.saving import load_formula_recognizer
    from im2latex_encoder.recognizer.vocabulary import expression_targets
    from im2latex_encoder.training.data_sources import cache_path

    model = load_formula_recognizer(args.model)
    reads_strokes = callable(getattr(model, "recognize_stroke_tokens", None))
    if args.slants is not None and not reads_strokes:
        raise CLIError(
            "--slants shears the ink a stroke recognizer reads (--model crohme-formulas, a "
            "StrokeRecognizer); an image model reads the expression drawn once. Received: "
            f"{type(model).__name__} from --model {args.model}"
        )
    if args.as_images and not reads_strokes:
        raise CLIError(
            "--as-images reads images by their ink's connected components, as a stroke "
            "recognizer (--model crohme-formulas, a StrokeRecognizer) reads a photo; an image "
            "model is already scored on the ink drawn as it was trained. Received: "
            f"{type(model).__name__} from --model {args.model}"
        )
    symbol_cutter = None
    if args.symbol_cutter is not None:
        if not args.as_images:
            raise CLIError(
                "--symbol-cutter cuts the images --as-images draws; the ink needs no cutting. "
                f"Received: --symbol-cutter {args.symbol_cutter} without --as-images"
            )
        symbol_cutter = _load_symbol_cutter(args.symbol_cutter)
    # A stroke model reads the strokes itself, its scale estimated from the ink alone.
    vocabulary, settings = model.vocabulary, getattr(model, "draw_settings", None)
    data = read_crohme_expressions(
        folder,
        progress=not args.no_progress,
        cache=cache_path("crohme-expressions", [folder], ".npz"),
    )
    targets, missing = expression_targets(
        data, read_crohme_captions(args.captions) if args.captions else None
    )
    reading = {  # what `recognize` reads: the model's own beam width unless --beam says
        "beam": args.beam or getattr(model, "default_beam_width", 1),
        "batch_size": args.batch_size,
        "progress": not args.no_progress,
        "symbol_count_weight": args.symbol_count_weight,
    }
    slants: tuple = ()
    if reads_strokes:
        slants = tuple(model.default_slants) if reading["beam"] > 1 else ()
        slants = slants if args.slants is None else args.slants
        reading["slants"] = slants
    views = f", slants {', '.join(f'{s:+g}' for s in slants)}" if slants else ""
    result = evaluate_expressions(model, vocabulary, settings, data, targets, **reading)
    unreadable = data.report.get("skipped", {})

    def report(label: str, scores: dict) -> dict:
        scores["skipped"] += len(unreadable)
        scores["skipped_reasons"].update(
            {name: f"unreadable: {why}" for name, why in unreadable.items()}
        )
        print(_score_line(label, scores), flush=True)
        return scores

    report(f"{folder} ({result['decoding']}{views})", result)
    # The same expressions drawn as images at each size: only their strokes reach the image.
    images = {}
    for pixels in args.as_images:
        scored = evaluate_expressions(
            model,
            vocabulary,
            settings,
            data,
            targets,
            **reading,
            as_images=pixels,
            symbol_cutter=symbol_cutter,
        )
        cut = ", symbols cut" if symbol_cutter is not None else ""
        images[str(pixels)] = report(
            f"{folder} ({scored['decoding']}{views}, images {pixels} px{cut})", scored
        )
    if args.json:
        record = dict(
            result,
            data=args.data,
            model=args.model,
            targets="captions: " + args.captions if args.captions else "normalised truth",
            slants=list(slants),
        )
        if symbol_cutter is not None:
            record["symbol_cutter"] = args.symbol_cutter
        if images:
            record["as_images"] = images
        atomic_write_text(args.json, json.dumps(record, indent=1))
        print(f"wrote {args.json}")
    return 0
