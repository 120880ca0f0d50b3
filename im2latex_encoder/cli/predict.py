"""`im2latex-encoder predict`: top labels of InkML or image files, streamed in batches."""

from __future__ import annotations

import json
import sys

_CHUNK = 256  # files per inference batch: memory stays bounded however many files are given


def register(subparsers) -> None:
    """Add the `predict` subcommand to the CLI's subparsers.

    Args:
        subparsers: the object `argparse.ArgumentParser.add_subparsers()` returned.

    Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> register(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["predict", "x.inkml"]).model
    'crohme101'
    """
    from im2latex_encoder.cli import add_model_option, positive_int

    parser = subparsers.add_parser(
        "predict",
        help="classify single-symbol InkML or image files",
        description="Print the top labels with probabilities for each file (one line per file: "
        "the file, then each label's LaTeX, with the CROHME class name in brackets where it "
        "differs, and its probability). Each file is read as one symbol; for a whole "
        "expression use `recognize`. A file that cannot be read is reported on stderr and "
        "the others are still classified (exit status 2).",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help=".inkml files or images")
    add_model_option(parser, default="crohme101", help="a classifier preset's name or directory")
    parser.add_argument(
        "--top-k", type=positive_int, default=3, help="labels per file (default: 3)"
    )
    parser.add_argument(
        "--json", default=None, metavar="OUT", help="also write one JSON line per file here"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def label_text(label: str) -> str:
    """A class name as `predict` prints it: its LaTeX, and the CROHME name where that differs.

    Args:
        label: str. A class name of the classifier (a CROHME name or any other label).

    Example:
    >>> label_text("COMMA"), label_text("\\\\alpha"), label_text("junk"), label_text("Ω")
    (', (COMMA)', '\\\\alpha', '(junk)', 'Ω')
    """
    latex = _latex_or_label(label)
    return latex if latex == label else f"{latex} ({label})".lstrip()


def run(args) -> int:
    """Run `predict`: classify each file, print its top labels, report the files skipped.

    Args:
        args: argparse.Namespace with `files`, `model`, `top_k`, `json`, `no_progress`.

    Returns:
        0 when every file was classified, 2 when some were skipped (each named on stderr).

    Example:
    >>> from im2latex_encoder.cli import main
    >>> main(["predict", "symbol.inkml", "drawing.png"])  # doctest: +SKIP
    0
    """
    from im2latex_encoder.cli import check_out_folder

    if args.json:
        check_out_folder(args.json)  # before the model loads: a typo costs no waiting
    import numpy as np
    import tqdm

    from im2latex_encoder import SymbolClassifier
    from im2latex_encoder._atomic import atomic_path
    from im2latex_encoder.data.errors import DataError
    from im2latex_encoder.data.symbol_files import load_symbol_file

    classifier = SymbolClassifier.from_preset(args.model)
    size = classifier.image_size[0] if classifier.image_size else 128
    failures: list[str] = []
    json_handle = None
    with atomic_path(args.json, suffix=".jsonl") if args.json else _no_file() as json_path:
        if json_path is not None:
            json_handle = open(json_path, "w", encoding="utf-8")
        try:
            bar = tqdm.tqdm(
                total=len(args.files),
                unit="file",
                disable=args.no_progress or len(args.files) < _CHUNK,
                file=sys.stderr,
            )
            for start in range(0, len(args.files), _CHUNK):
                names, images = [], []
                for name in args.files[start : start + _CHUNK]:
                    try:
                        images.append(load_symbol_file(name, size))
                        names.append(name)
                    except DataError as error:
                        failures.append(str(error))
                        print(f"im2latex-encoder predict: skipped {error}", file=sys.stderr)
                        continue
                    _say_if_an_expression(name)
                if images:
                    top = classifier.predict_labels(np.stack(images), top_k=args.top_k)
                    for name, row in zip(names, top):
                        print(
                            name
                            + "\t"
                            + "\t".join(f"{label_text(label)} {p:.3f}" for label, p in row)
                        )
                        if json_handle:
                            record = {"file": name, "top": row}
                            record["latex"] = [_latex_or_label(label) for label, _ in row]
                            json_handle.write(json.dumps(record) + "\n")
                bar.update(min(_CHUNK, len(args.files) - start))
            bar.close()
        finally:
            if json_handle:
                json_handle.close()
    if failures:
        print(
            f"im2latex-encoder predict: {len(failures)} of {len(args.files)} files skipped",
            file=sys.stderr,
        )
        return 2
    return 0


def _latex_or_label(label: str) -> str:
    from im2latex_encoder.symbols import symbol_to_latex

    try:
        return symbol_to_latex(label)
    except ValueError:  # a label set of the user's own: printed as it is
        return label


def _say_if_an_expression(name: str) -> None:
    """Warn on stderr when an InkML file holds several annotated symbols: predict reads one."""
    if not name.lower().endswith(".inkml"):
        return
    from im2latex_encoder.data.errors import DataError
    from im2latex_encoder.data.inkml import read_inkml

    try:
        count = len(read_inkml(name).symbols)
    except DataError:
        return  # it was read as strokes a moment ago; an annotation problem is not ours to report
    if count > 1:
        print(
            f"im2latex-encoder predict: note: {name} is an expression of {count} symbols; "
            "predict reads each file as one symbol (all its strokes in one image). "
            "For formulas use `im2latex-encoder recognize`.",
            file=sys.stderr,
        )


class _no_file:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
