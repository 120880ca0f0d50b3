"""CROHME expression ``truth`` strings -> the normalised tokens of handwritten-formula captions.

The raw ``truth`` annotation of a CROHME expression file is LaTeX in many spellings
(``$...$``, ``\\mbox{x}``, ``\\left( ... \\right)``, ``\\lt``, ``x^2``, ``{{x}}``). The captions
the handwritten-formula literature trains and scores on (``train_caption.txt``) are one
normalised token form of them: ``\\frac { 2 } { 4 }``, ``x ^ { 2 }``, ``( a + b )``.
`normalize_crohme_truth` turns the first into the second; `caption_agreement` measures how often
it reproduces a caption file exactly.

Run as a module to measure the agreement on a folder of InkML files::

    python -m im2latex_encoder.formulas.crohme_truth crohme/train crohme/train_caption.txt
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from im2latex_encoder.formulas.tokenizer import tokenize_latex

# One spelling per symbol, the captions' one.
_ALIASES = {
    "\\lt": "<",
    "\\gt": ">",
    "\\le": "\\leq",
    "\\ge": "\\geq",
    "\\ne": "\\neq",
    "\\leqslant": "\\leq",
    "\\geqslant": "\\geq",
    "\\to": "\\rightarrow",
    "\\dots": "\\ldots",
    "\\dotsc": "\\ldots",
    "\\dotsb": "\\cdots",
    "\\lbrace": "\\{",
    "\\rbrace": "\\}",
    "\\lbrack": "[",
    "\\rbrack": "]",
    "\\vert": "|",
    "\\mid": "|",
    "\\lvert": "|",
    "\\rvert": "|",
    "\\colon": ":",
    "\\dfrac": "\\frac",
    "\\tfrac": "\\frac",
}
# Tokens that only change spacing or size, dropped.
_DROPPED = {
    "\\,",
    "\\;",
    "\\:",
    "\\!",
    "\\ ",
    "~",
    "\\quad",
    "\\qquad",
    "\\displaystyle",
    "\\textstyle",
    "\\scriptstyle",
    "\\left",
    "\\right",
    "\\big",
    "\\Big",
    "\\bigg",
    "\\Bigg",
    "\\bigl",
    "\\bigr",
    "\\Bigl",
    "\\Bigr",
    "\\biggl",
    "\\biggr",
    "\\Biggl",
    "\\Biggr",
    "\\middle",
}
# Commands whose braced argument is plain content: the command goes, its argument stays a group.
_WRAPPERS = {"\\mbox", "\\text", "\\textrm", "\\mathrm", "\\mathit", "\\rm", "\\hbox"}
# Commands whose arguments the captions brace: name -> number of mandatory arguments.
_ARGUMENTS = {"^": 1, "_": 1, "\\frac": 2, "\\sqrt": 1}
# Deepest group nesting accepted (CROHME truths nest a few levels; this bounds the recursion).
MAX_NESTING = 100
_DELIMITER_RE = re.compile(r"\\(?:left|right)(\\[a-zA-Z]+|\\[{}|]|[()\[\]|./<>])")
# A truth that is only a number ("09.50") is written as its value ("9 . 5") in the captions.
_BARE_NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# Function names spelt as single letters ("l o g") that the captions write as the command.
_SPELT_FUNCTIONS = {("l", "o", "g"): "\\log", ("l", "i", "m"): "\\lim"}


class _Group(list):
    """A ``{ ... }`` group of the parse tree (a list of tokens and groups)."""


def _tokens(truth: str) -> list[str]:
    """Tokens of a raw truth: no ``$``, no spacing, one spelling per symbol."""
    tokens: list[str] = []
    for token in tokenize_latex(truth.replace("$", " ")):
        match = _DELIMITER_RE.fullmatch(token)
        if match:  # "\left(" -> "(", "\right." -> nothing
            token = match.group(1)
            if token == ".":
                continue
        token = _ALIASES.get(token, token)
        if token in _DROPPED or token in _WRAPPERS:
            continue
        tokens.append(token)
    return tokens


def _parse(tokens: Sequence[str]) -> _Group:
    """Nest the tokens into groups.

    A stray ``}`` stays a token; a ``{`` left open is closed at the end.
    """
    root = _Group()
    stack = [root]
    for token in tokens:
        if token == "{":
            group = _Group()
            stack[-1].append(group)
            stack.append(group)
        elif token == "}" and len(stack) > 1:
            stack.pop()
        else:
            stack[-1].append(token)
    return root


def _spell_functions(items: Sequence) -> list:
    """Replace single-letter spellings of function names (``l o g``) by their command."""
    items = list(items)
    for letters, command in _SPELT_FUNCTIONS.items():
        position = 0
        while position + len(letters) <= len(items):
            if tuple(items[position : position + len(letters)]) == letters:
                items[position : position + len(letters)] = [command]
            position += 1
    return items


def _flat(items: Sequence, *, subscript: bool = False, depth: int = 0) -> list[str]:
    """Emit a sequence: groups are inlined, arguments of ``^ _ \\frac \\sqrt`` braced once.

    Inside a subscript, letters stay letters (``a_{tan}`` is a label, not ``\\tan``).
    """
    if not subscript:
        items = _spell_functions(items)
    out: list[str] = []
    position = 0
    while position < len(items):
        tokens, position = _atom(items, position, subscript=subscript, depth=depth)
        out.extend(tokens)
    return out


def _atom(items: Sequence, position: int, *, subscript: bool, depth: int) -> tuple[list[str], int]:
    """The tokens of the item at `position` with its arguments, and the position after them."""
    if depth > MAX_NESTING:
        raise ValueError(f"`truth` nests groups and arguments more than {MAX_NESTING} deep")
    item = items[position]
    position += 1
    if isinstance(item, _Group):
        return _flat(item, subscript=subscript, depth=depth + 1), position
    out = [item]
    if item == "\\sqrt" and position < len(items) and items[position] == "[":
        end = position
        while end < len(items) and items[end] != "]":
            end += 1
        out.extend(_flat(items[position : end + 1], subscript=subscript, depth=depth + 1))
        position = end + 1
    for _ in range(_ARGUMENTS.get(item, 0)):
        if position >= len(items):
            break
        argument, position = _atom(
            items, position, subscript=subscript or item == "_", depth=depth + 1
        )
        out.extend(["{", *argument, "}"])
    return out, position


def normalize_crohme_truth(truth: str) -> list[str]:
    """Turn a raw CROHME ``truth`` string into the tokens of the normalised captions.

    ``$`` signs, spacing commands (``\\,``, ``\\;``, ``\\quad``), ``\\left``/``\\right`` and size
    commands (``\\Bigg``) and text wrappers (``\\mbox``, ``\\mathrm``) go; aliases take the
    captions' spelling (``\\lt`` -> ``<``, ``\\to`` -> ``\\rightarrow``, ``\\dots`` ->
    ``\\ldots``); numbers and words split into characters; the argument of ``^``, ``_``,
    ``\\sqrt`` and both of ``\\frac`` are braced exactly once, and every other group's braces
    are removed (``{x^{2}}`` -> ``x ^ { 2 }``). Two rules follow the captions rather than
    LaTeX: ``l o g`` and ``l i m`` spelt as letters become ``\\log`` and ``\\lim`` (not inside
    a subscript, where ``a_{log}`` is a label), and a truth that is only a number is written
    as its value (``09.50`` -> ``9 . 5``, ``2.0`` -> ``2``). Unknown commands are kept as
    tokens, so a caller can check the result against the caption dictionary.

    Args:
        truth: str. The expression's raw LaTeX, as in its InkML ``truth`` annotation.

    Returns:
        The list of tokens.

    Raises:
        TypeError: `truth` is not a str.
        ValueError: groups and arguments nest more than `MAX_NESTING` deep.

    Example:
    >>> " ".join(normalize_crohme_truth(r"$\\frac{1}{\\cos^2{x}} \\lt \\mbox{z}_{12}$"))
    '\\\\frac { 1 } { \\\\cos ^ { 2 } x } < z _ { 1 2 }'
    """
    if not isinstance(truth, str):
        raise TypeError(f"`truth` must be a str. Received: {type(truth).__name__}")
    stripped = truth.replace("$", "").strip()
    if _BARE_NUMBER_RE.fullmatch(stripped):  # "08.40" -> 8.4
        return list(format(Decimal(stripped).normalize(), "f"))
    return _flat(_parse(_tokens(truth)))


def read_crohme_captions(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read a CROHME caption file: one ``FILE_STEM<TAB>space-separated tokens`` line each.

    Blank lines are skipped; a line without a tab, with an empty stem or with a stem seen
    before raises `ValueError` naming the file and the line number.

    Args:
        path: str or os.PathLike. The caption file (e.g. ``train_caption.txt``).

    Returns:
        A dict file stem -> list of tokens, in file order.

    Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "caption.txt"
    >>> _ = path.write_text("expr_1\\t\\\\frac { 2 } { 4 }\\nexpr_2\\tx\\n")
    >>> read_crohme_captions(path)["expr_1"]
    ['\\\\frac', '{', '2', '}', '{', '4', '}']
    """
    captions: dict[str, list[str]] = {}
    name = os.fspath(path)
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            stem, tab, tokens = line.partition("\t")
            stem = stem.strip()
            if not tab:
                raise ValueError(
                    f"{name}:{number}: expected 'FILE_STEM<TAB>tokens'. "
                    f"Received a line without a tab: {line[:80]!r}"
                )
            if not stem:
                raise ValueError(
                    f"{name}:{number}: expected a file stem before the tab. Received: {line[:80]!r}"
                )
            if stem in captions:
                raise ValueError(f"{name}:{number}: the stem {stem!r} has a caption already")
            captions[stem] = tokens.split()
    return captions


def read_crohme_dictionary(path: str | os.PathLike) -> list[str]:
    """Read a CROHME dictionary file (``TOKEN<TAB>ID`` lines) into its tokens in id order.

    Args:
        path: str or os.PathLike. The dictionary file (e.g. ``dictionary.txt``).

    Returns:
        The list of tokens, sorted by id.

    Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "dictionary.txt"
    >>> _ = path.write_text("x\\t1\\n\\\\frac\\t0\\n")
    >>> read_crohme_dictionary(path)
    ['\\\\frac', 'x']
    """
    name = os.fspath(path)
    entries: dict[int, str] = {}
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            fields = line.split()
            if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
                raise ValueError(
                    f"{name}:{number}: expected 'TOKEN<TAB>ID'. Received: {line.rstrip()[:80]!r}"
                )
            token, index = fields[0], int(fields[1])
            if index in entries:
                raise ValueError(
                    f"{name}:{number}: the id {index} is given twice "
                    f"({entries[index]!r} and {token!r})"
                )
            entries[index] = token
    tokens = [entries[index] for index in sorted(entries)]
    if len(set(tokens)) != len(tokens):
        duplicates = sorted({token for token in tokens if tokens.count(token) > 1})
        raise ValueError(f"{name}: tokens listed twice: {duplicates}")
    return tokens


def caption_agreement(
    folder: str | os.PathLike, captions_path: str | os.PathLike, *, progress: bool = False
) -> dict:
    """Normalise the truth of every InkML file under `folder` and compare it with its caption.

    Files are found recursively (``**/*.inkml``) and taken in sorted path order; a file whose
    stem has no caption counts in ``missing_caption`` (it is not read), and a captioned file
    without a ``truth`` annotation (or one that cannot be read) in ``no_truth``.

    Args:
        folder: str or os.PathLike. A folder of CROHME expression InkML files.
        captions_path: str or os.PathLike. Their caption file (see `read_crohme_captions`).
        progress: bool. Print a progress line to stderr every 1,000 files.

    Returns:
        A dict with ``total`` (captioned files with a truth), ``matched`` (those whose
        normalised truth equals the caption), ``share`` (``matched / total``, 0.0 when
        empty), ``mismatches`` (the first 50 ``(stem, normalised, caption)`` triples, token
        strings joined by spaces), ``missing_caption`` and ``no_truth``.

    Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> ink = '<ink><annotation type="truth">$x^2$</annotation><trace>0 0</trace></ink>'
    >>> _ = (folder / "e1.inkml").write_text(ink)
    >>> _ = (folder / "caption.txt").write_text("e1\\tx ^ { 2 }\\n")
    >>> report = caption_agreement(folder, folder / "caption.txt")
    >>> report["total"], report["matched"], report["share"]
    (1, 1, 1.0)
    """
    from im2latex_encoder.data.errors import InkMLError
    from im2latex_encoder.data.inkml import read_inkml

    captions = read_crohme_captions(captions_path)
    total = matched = missing_caption = no_truth = 0
    mismatches: list[tuple[str, str, str]] = []
    paths = sorted(Path(folder).rglob("*.inkml"))
    for count, path in enumerate(paths, start=1):
        if progress and count % 1000 == 0:
            print(f"{count}/{len(paths)} files", file=sys.stderr, flush=True)
        caption = captions.get(path.stem)
        if caption is None:
            missing_caption += 1
            continue
        try:
            truth = read_inkml(path).truth
        except InkMLError:
            truth = None
        if truth is None:
            no_truth += 1
            continue
        total += 1
        tokens = normalize_crohme_truth(truth)
        if tokens == caption:
            matched += 1
        elif len(mismatches) < 50:
            mismatches.append((path.stem, " ".join(tokens), " ".join(caption)))
    return {
        "total": total,
        "matched": matched,
        "share": matched / total if total else 0.0,
        "mismatches": mismatches,
        "missing_caption": missing_caption,
        "no_truth": no_truth,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the agreement of `folder`'s normalised truths with a caption file.

    Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> ink = '<ink><annotation type="truth">$x^2$</annotation><trace>0 0</trace></ink>'
    >>> _ = (folder / "e1.inkml").write_text(ink)
    >>> _ = (folder / "caption.txt").write_text("e1\\tx ^ { 2 }\\n")
    >>> main([str(folder), str(folder / "caption.txt")])
    agreement: 1/1 = 100.00% (missing caption: 0, no truth: 0)
    0
    """
    parser = argparse.ArgumentParser(
        prog="python -m im2latex_encoder.formulas.crohme_truth",
        description="Compare the normalised truth of CROHME InkML files with their captions.",
    )
    parser.add_argument("folder", help="folder of expression InkML files (searched recursively)")
    parser.add_argument("captions", help="caption file: FILE_STEM<TAB>tokens per line")
    parser.add_argument("--show", type=int, default=20, help="mismatches to print (default 20)")
    parser.add_argument("--progress", action="store_true", help="report progress on stderr")
    args = parser.parse_args(argv)
    report = caption_agreement(args.folder, args.captions, progress=args.progress)
    print(
        f"agreement: {report['matched']}/{report['total']} = {100 * report['share']:.2f}% "
        f"(missing caption: {report['missing_caption']}, no truth: {report['no_truth']})"
    )
    for stem, normalised, caption in report["mismatches"][: max(args.show, 0)]:
        print(f"{stem}\n  normalised: {normalised}\n  caption:    {caption}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
