"""The `im2latex-encoder` command line: one module per subcommand, loaded without TensorFlow."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from im2latex_encoder._deprecation import REMOVED_IN

# Each subcommand lives in its own module; importing lazily keeps `--help` fast (no TensorFlow).
_SUBCOMMANDS = ("prepare", "show", "pretrain", "evaluate", "predict", "export", "formulas", "serve")


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


def positive_int(text: str) -> int:
    """An argparse `type` for counts and widths: a whole number of at least 1.

    Checked while the arguments are parsed, so a bad value is refused before any model loads.

    Args:
        text: str. The option's value as typed.

    Returns:
        The number.

    Raises:
        argparse.ArgumentTypeError: what was expected and what was received.

    Example:
    >>> positive_int("4")
    4
    >>> positive_int("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a whole number of at least 1. Received: 0
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1. Received: {text}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse `type` for counts that may be zero: a whole number of at least 0.

    Example:
    >>> non_negative_int("0")
    0
    >>> non_negative_int("-1")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a whole number of at least 0. Received: -1
    """
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 0. Received: {text}")
    return value


class _ModelOption(argparse.Action):
    """`--model` and its deprecated spellings: one value, the old spelling warns on stderr."""

    def __init__(self, option_strings, dest, deprecated: bool = False, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.deprecated = deprecated

    def __call__(self, parser, namespace, values, option_string=None):
        given = getattr(namespace, "_model_given_as", None)
        if given is not None and given != option_string:
            parser.error(
                f"give the model once, with --model. Received: {given} and {option_string}"
            )
        if self.deprecated:
            print(
                f"{parser.prog}: warning: {option_string} is deprecated and will be removed in "
                f"{REMOVED_IN}: use --model",
                file=sys.stderr,
            )
        namespace._model_given_as = option_string
        setattr(namespace, self.dest, values)


def add_model_option(
    parser: argparse.ArgumentParser,
    *,
    default: str | None,
    help: str,
    deprecated: Sequence[str] = ("--preset",),
) -> None:
    """Add `--model` (a preset's name or a path) and its deprecated spellings to `parser`.

    Every command that runs a model names it with `--model`; an older spelling (`--preset`)
    still works for one release and prints a warning on stderr. Giving both is an error.

    Args:
        parser: argparse.ArgumentParser. A subcommand's parser.
        default: str or None. The model used when none is given; None makes `--model` required.
        help: str. What the model is; the default is appended.
        deprecated: sequence of str. Older option strings for the same value.

    Example:
    >>> parser = argparse.ArgumentParser(prog="predict")
    >>> add_model_option(parser, default="crohme101", help="a classifier preset")
    >>> parser.parse_args([]).model, parser.parse_args(["--model", "runs/a/preset"]).model
    ('crohme101', 'runs/a/preset')
    """
    shown = f"{help} (default: {default})" if default is not None else help
    parser.add_argument(
        "--model",
        action=_ModelOption,
        default=default,
        required=default is None,
        metavar="NAME_OR_PATH",
        help=shown,
    )
    for option in deprecated:
        parser.add_argument(
            option,
            action=_ModelOption,
            dest="model",
            deprecated=True,
            metavar="NAME_OR_PATH",
            help=f"deprecated spelling of --model (removed in {REMOVED_IN})",
        )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available subcommand.

    Example:
    >>> build_parser().prog
    'im2latex-encoder'
    """
    parser = argparse.ArgumentParser(
        prog="im2latex-encoder",
        description="Read handwritten math symbols and formulas; prepare data, pretrain, "
        "evaluate and export the im2latex symbol encoder.",
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

    Returns:
        The exit status: 0 on success (and for `--help`, `--version`), 2 for a user error
        (printed as one line on stderr), 130 when interrupted.

    Example:
    >>> main(["--version"])  # doctest: +ELLIPSIS
    im2latex-encoder ...
    0
    """
    # TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notes) is noise on a command line.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help and --version (0), argument errors (2): argparse's exits
        return exit.code if isinstance(exit.code, int) else 2
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
