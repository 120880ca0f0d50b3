"""The `im2latex-encoder` command line: prepare, show, pretrain, evaluate, predict, export."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# Each subcommand lives in its own module; importing lazily keeps `--help` fast (no TensorFlow).
_SUBCOMMANDS = ("prepare", "show", "pretrain", "evaluate", "predict", "export", "formulas")


class CLIError(Exception):
    """A user error on the command line: printed as one line, exit status 2.

    Example:
    >>> raise CLIError("expected an .npz file. Received: notes.txt")  # doctest: +SKIP
    """


def check_out_folder(out: str) -> str:
    """Refuse an `--out` whose folder does not exist; the commands never create one.

    Args:
        out: str. The `--out` value: a file, or a directory to be written (a SavedModel).

    Returns:
        `out`, unchanged.

    Raises:
        CLIError: naming the missing folder (absolute).

    Example:
    >>> check_out_folder("/no/such/folder/c.npz")
    Traceback (most recent call last):
    ...
    im2latex_encoder.cli.CLIError: --out's folder does not exist: '/no/such/folder'
    """
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise CLIError(f"--out's folder does not exist: {folder!r}")
    return out


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available subcommand.

    Example:
    >>> build_parser().prog
    'im2latex-encoder'
    """
    parser = argparse.ArgumentParser(
        prog="im2latex-encoder",
        description="Pretrain, evaluate and export the im2latex symbol encoder.",
    )
    from im2latex_encoder.version import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMANDS:
        try:
            module = importlib.import_module(f"im2latex_encoder.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"im2latex_encoder.cli.{name}":
                continue  # subcommand not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status.

    Args:
        argv: list of str. Arguments without the program name; `sys.argv[1:]` when None.

    Example:
    >>> main(["--version"])  # doctest: +SKIP
    """
    # TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notes) is noise on a command line.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("im2latex-encoder: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the command line's contract is: no traceback
        if _is_user_error(error):
            print(f"im2latex-encoder {args.command}: error: {_one_line(error)}", file=sys.stderr)
            return 2
        raise
    return int(result or 0)


def _one_line(error: Exception) -> str:
    """The error's message on one line, without Keras' call() report or terminal colours."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    # Keras wraps errors raised in a layer's call() in a multi-line report: keep the message.
    match = re.search(
        r"Exception encountered when calling \S+\.\s*\n\n(.*?)(?:\n\nArguments received|\Z)",
        text,
        re.S,
    )
    return " ".join((match.group(1) if match else text).split())


def _is_user_error(error: Exception) -> bool:
    from im2latex_encoder.data.errors import DataError

    return isinstance(
        error,
        (
            CLIError,
            ValueError,
            FileNotFoundError,
            NotADirectoryError,
            IsADirectoryError,
            PermissionError,
            DataError,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
