"""`im2latex-encoder train-formulas | recognize | evaluate-formulas`: handwritten formulas."""

from __future__ import annotations

import json
import os
import shlex
import sys

_MODEL_HELP = (
    "a saved recognizer: a shipped preset's name, a preset folder (train-formulas' "
    "RUN/recognizer), or an older folder with model.keras (or that .keras file)"
)
_BEAM_HELP = "beam width, at least 1 (default: greedy decoding)"


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
    from im2latex_encoder.cli import add_model_option, positive_int

    train = subparsers.add_parser(
        "train-formulas",
        help="train a formula recognizer on CROHME expressions",
        description="Train a FormulaRecognizer (pretrained symbol encoder + attention decoder) on "
        "handwritten CROHME expressions. Run the same command again after a crash to "
        "resume from the last completed epoch.",
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
        help="symbol encoder preset, or 'none' for a random encoder (default: crohme101)",
    )
    train.add_argument(
        "--freeze-encoder", action="store_true", help="keep the pretrained conv stages fixed"
    )
    train.add_argument(
        "--epochs", type=positive_int, default=20, help="passes over the training expressions"
    )
    train.add_argument(
        "--batch-size", type=positive_int, default=16, help="expressions per training step"
    )
    train.add_argument(
        "--learning-rate", type=float, default=1e-3, help="Adam's learning rate (default: 0.001)"
    )
    train.add_argument(
        "--hidden-dim",
        type=positive_int,
        default=128,
        help="width of the decoder and of the encoder's projection (default: 128)",
    )
    train.add_argument(
        "--num-layers", type=positive_int, default=2, help="decoder layers (default: 2)"
    )
    train.add_argument(
        "--symbol-size",
        type=float,
        default=None,
        help="pixels of a typical symbol (default: what the preset was trained on)",
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
    train.add_argument(
        "--strategy",
        default="default",
        choices=("default", "mirrored"),
        help="tf.distribute strategy, as for pretrain",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
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
    evaluate.add_argument("--json", default=None, metavar="OUT", help="write the scores as JSON")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")
    evaluate.set_defaults(func=run_evaluate)


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


def run_train(args) -> int:
    # The folders are checked before the training code (and TensorFlow) loads.
    train_folder = _crohme_folder(args.data)
    eval_folders = [_crohme_folder(d) for d in args.eval]
    from im2latex_encoder.recognizer.handwritten_training import train_handwritten

    command = "im2latex-encoder " + shlex.join(sys.argv[1:])
    result = train_handwritten(
        train_folder,
        args.out,
        captions=args.captions,
        dictionary=args.dictionary,
        preset=None if args.preset.lower() == "none" else args.preset,
        freeze_encoder=args.freeze_encoder,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        hidden_dim=args.hidden_dim,
        num_layers=args.num_layers,
        symbol_size=args.symbol_size,
        eval_folders=eval_folders,
        beam=args.beam,
        seed=args.seed,
        strategy=args.strategy,
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
    print(f"wrote {os.path.join(args.out, 'recognizer')}")
    return 0


def _read_image(path: str):
    """An image file as the recognizer reads it, through the library's guarded image reader."""
    from im2latex_encoder.data.symbol_files import read_image_gray
    from im2latex_encoder.recognizer.preprocessor import expression_ink

    return expression_ink(read_image_gray(path))


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
    from im2latex_encoder.cli import check_out_folder

    if args.json:
        check_out_folder(args.json)  # before the model loads: a typo costs no waiting
    from im2latex_encoder._atomic import atomic_write_text
    from im2latex_encoder.data.errors import DataError
    from im2latex_encoder.recognizer.saving import load_formula_recognizer

    model = load_formula_recognizer(args.model)
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
    beam_width = args.beam or 1
    answers = {
        "ink": iter(model.recognize_strokes(inks, beam_width=beam_width) if inks else []),
        "image": iter(model.recognize_images(images, beam_width=beam_width) if images else []),
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


def run_evaluate(args) -> int:
    from im2latex_encoder.cli import check_out_folder

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
    vocabulary, settings = model.vocabulary, model.draw_settings
    data = read_crohme_expressions(
        folder,
        progress=not args.no_progress,
        cache=cache_path("crohme-expressions", [folder], ".npz"),
    )
    targets, missing = expression_targets(
        data, read_crohme_captions(args.captions) if args.captions else None
    )
    result = evaluate_expressions(
        model,
        vocabulary,
        settings,
        data,
        targets,
        beam=args.beam,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    unreadable = data.report.get("skipped", {})
    result["skipped"] += len(unreadable)
    result["skipped_reasons"].update(
        {name: f"unreadable: {why}" for name, why in unreadable.items()}
    )
    print(
        f"{folder} ({result['decoding']}): ExpRate {100 * result['exprate']:.2f}%, ≤1 "
        f"{100 * result['exprate_1']:.2f}%, ≤2 {100 * result['exprate_2']:.2f}%, token error rate "
        f"{100 * result['token_error_rate']:.2f}% (n={result['n']}, skipped {result['skipped']}); "
        f"{result['formulas_per_second']:.1f} formulas/s"
    )
    if args.json:
        record = dict(
            result,
            data=args.data,
            model=args.model,
            targets="captions: " + args.captions if args.captions else "normalised truth",
        )
        atomic_write_text(args.json, json.dumps(record, indent=1))
        print(f"wrote {args.json}")
    return 0
