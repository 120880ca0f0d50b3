"""`im2latex-encoder export`: a preset or a formula recognizer → SavedModel, TFLite or ONNX,
checked against Keras."""

from __future__ import annotations

import argparse
import os
import sys

from im2latex_encoder._deprecation import REMOVED_IN
from im2latex_encoder.cli import CLIError, check_out_folder, positive_int

_FORMATS = ("savedmodel", "tflite", "onnx")
_PARTS = ("encoder", "classifier")
_QUANTIZATIONS = ("none", "dynamic")


def register(subparsers) -> None:
    """Add the `export` subcommand to the CLI's subparsers.

    Args:
        subparsers: the object `argparse.ArgumentParser.add_subparsers()` returned.

    Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> register(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["export", "--preset", "p", "--format", "onnx", "--out", "e.onnx"]).part
    'encoder'
    """
    parser = subparsers.add_parser(
        "export",
        help="export a preset or a formula recognizer for serving (SavedModel, TFLite, ONNX)",
        description=(
            "Export a symbol preset's encoder (or whole classifier) with a serving signature "
            "that takes uint8 images (batch, height, width, 1), ink 255 on 0, of any size (a "
            "classifier with a flatten head: the size it was built for). Or a handwritten-formula "
            "recognizer: a folder with an encoder graph, a decoder-step graph (key/value cache in "
            "and out) and runner.py, which decodes with onnxruntime or LiteRT alone. --model "
            "says which: a recognizer is exported as one, anything else as a symbol preset. The "
            "export is run on probe images and compared with the Keras model before it is "
            "written."
        ),
    )
    # Choices (and --model vs its old spelling) are checked in run(), not by argparse, so a
    # wrong value is one line on stderr.
    parser.add_argument(
        "--model",
        metavar="NAME_OR_PATH",
        help="a symbol preset (a shipped name such as crohme101, or a preset directory) or a "
        "formula recognizer (crohme-formulas, a preset folder such as train-formulas' "
        "RUN/recognizer, or a .keras file; --out is then a folder)",
    )
    parser.add_argument(
        "--preset",
        metavar="NAME_OR_PATH",
        help=f"deprecated spelling of --model (removed in {REMOVED_IN})",
    )
    parser.add_argument(
        "--format",
        required=True,
        metavar="{savedmodel,tflite,onnx}",
        help="savedmodel (a directory), tflite or onnx (a file)",
    )
    parser.add_argument(
        "--out", required=True, help="file or SavedModel directory to write (--model: a folder)"
    )
    parser.add_argument(
        "--part",
        default="encoder",
        metavar="{encoder,classifier}",
        help="the encoder alone (default) or encoder + head",
    )
    parser.add_argument(
        "--quantize",
        default="none",
        metavar="{none,dynamic}",
        help="tflite only: 'dynamic' stores weights as int8 (about 4x smaller)",
    )
    parser.add_argument(
        "--compare-inkml",
        metavar="DIR",
        help="a stroke recognizer only: after exporting, read every InkML file in DIR (e.g. "
        "CROHME's test2016) with the Keras model and with the exported runner, and print how "
        "many read the same LaTeX",
    )
    parser.add_argument(
        "--compare-beam",
        type=positive_int,
        default=1,
        metavar="N",
        help="with --compare-inkml: read with beam search of width N (default 1: greedy)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `export` with parsed arguments; print what was written and its parity figure.

    Args:
        args: argparse.Namespace with `preset` or `model`, `format`, `out`, `part`,
            `quantize`.

    Returns:
        0 on success. User errors raise `CLIError`/`ValueError`, which `main()` prints; an
        `--out` in a folder that does not exist is refused before anything is loaded or written.

    Example:
    >>> from im2latex_encoder.cli import main
    >>> main(["export", "--model", "crohme101", "--format", "onnx",
    ...       "--out", "encoder.onnx"])  # doctest: +SKIP
    0
    >>> main(["export", "--model", "runs/formulas/recognizer", "--format", "tflite",
    ...       "--out", "exported"])  # doctest: +SKIP
    0
    """
    if args.preset is not None and args.model is not None:
        raise CLIError("give the model once, with --model. Received: --model and --preset")
    if args.preset is not None:
        print(
            f"im2latex-encoder export: warning: --preset is deprecated and will be removed in "
            f"{REMOVED_IN}: use --model",
            file=sys.stderr,
        )
        args.model = args.preset
    if args.model is None:
        raise CLIError("expected --model NAME_OR_PATH (a preset or a recognizer). Received: none")
    for name, value, choices in (
        ("format", args.format, _FORMATS),
        ("part", args.part, _PARTS),
        ("quantize", args.quantize, _QUANTIZATIONS),
    ):
        if value not in choices:
            raise CLIError(
                f"--{name} must be one of {', '.join(choices)}. Received: --{name} {value}"
            )
    if args.quantize != "none" and args.format != "tflite":
        raise CLIError(
            f"--quantize applies to --format tflite only. Received: --format {args.format}"
        )
    check_out_folder(args.out)  # like prepare and show: a missing folder is a typo, not a request
    compare = getattr(args, "compare_inkml", None)
    if compare is not None and not os.path.isdir(compare):
        raise CLIError(
            f"--compare-inkml expects a folder of InkML files. Received: {compare!r}, not a folder"
        )
    # The exported graph is a TensorFlow graph; a preset from any backend exports the same way.
    backend = os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if backend != "tensorflow":
        raise CLIError(
            f"export needs KERAS_BACKEND=tensorflow (the exported graph is TensorFlow's). "
            f"Received: KERAS_BACKEND={backend}"
        )
    if compare is not None:
        from im2latex_encoder.export.recognizer import is_stroke_recognizer_preset

        if not is_stroke_recognizer_preset(args.model):
            raise CLIError(
                "--compare-inkml applies to a stroke recognizer's export (a stroke-recognizer "
                f"preset). Received: --model {args.model}"
            )
    if _is_recognizer(args.model):
        if args.part != "encoder" or args.quantize != "none":
            raise CLIError(
                "--part and --quantize apply to symbol presets. Received: the recognizer "
                f"{args.model!r} with --part {args.part} --quantize {args.quantize}"
            )
        return _export_recognizer(args)
    from im2latex_encoder.export.encoder import export_model

    result = export_model(
        args.model,
        args.out,
        format=args.format,
        part=args.part,
        quantize=None if args.quantize == "none" else args.quantize,
    )
    shape = "×".join("any" if side is None else str(side) for side in result.input_shape[1:3])
    print(
        f"wrote {result.path} ({result.format}, {result.part}, {result.size_bytes:,} bytes): "
        f"uint8 images {shape} → {result.output_name!r}; max abs difference from Keras "
        f"{result.max_abs_diff:.2g} (allowed {result.tolerance:.2g})"
    )
    return 0


def _export_recognizer(args: argparse.Namespace) -> int:
    from im2latex_encoder.export.recognizer import export_recognizer

    result = export_recognizer(args.model, args.out, format=args.format)
    # A stroke recognizer's probes are expressions of strokes and an image read by components.
    probes = "probe inputs" if "stroke_drawing.json" in result.files else "probe images"
    print(
        f"wrote {result.path} ({result.format}: {', '.join(result.files)}; "
        f"{result.size_bytes:,} bytes): runner.py's greedy tokens equal Keras' on "
        f"{result.probes} {probes}; max logit difference {result.max_logit_diff:.2g} "
        f"(allowed {result.tolerance:.2g})"
    )
    compare = getattr(args, "compare_inkml", None)
    if compare is not None:
        from pathlib import Path

        from im2latex_encoder.export.recognizer import stroke_export_agreement

        files = sorted(Path(compare).glob("*.inkml"))
        beam = getattr(args, "compare_beam", 1)
        report = stroke_export_agreement(args.model, args.out, files, beam_width=beam)
        for name, reason in report["unreadable"]:
            print(f"im2latex-encoder export: error: {name}: {reason}", file=sys.stderr)
        for name, keras_latex, runner_latex in report["differing"]:
            print(
                f"differs: {name}: Keras {keras_latex!r}, runner {runner_latex!r}", file=sys.stderr
            )
        print(
            f"same LaTeX as Keras on {report['same']} of {report['files']} InkML files in "
            f"{compare} ({100 * report['rate']:.2f}%" + (f", beam {beam})" if beam > 1 else ")")
        )
    return 0


def _is_recognizer(model: str) -> bool:
    """Whether `--model` names a formula recognizer (else it is taken for a symbol preset)."""
    from im2latex_encoder import presets

    path = os.path.abspath(model)
    if path.endswith(".keras") or os.path.isfile(os.path.join(path, "model.keras")):
        return True  # the recognizer's older formats: a .keras file or its folder
    try:
        # An image `FormulaRecognizer`'s or a `StrokeRecognizer`'s (crohme-formulas v2).
        return presets.preset_metadata(model).get("kind") in ("recognizer", "stroke-recognizer")
    except (presets.PresetError, OSError):
        return False  # the symbol-preset export says what is wrong with it
