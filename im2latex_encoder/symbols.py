"""The CROHME isolated-symbol vocabulary and its LaTeX rendering."""

from __future__ import annotations

# CROHME 2016 Task 2 (isolated symbols) class names, exactly as the dataset spells them.
_CROHME_CLASS_NAMES = (
    "!",
    "(",
    ")",
    "+",
    "-",
    ".",
    "/",
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "=",
    "A",
    "B",
    "C",
    "COMMA",
    "E",
    "F",
    "G",
    "H",
    "I",
    "L",
    "M",
    "N",
    "P",
    "R",
    "S",
    "T",
    "V",
    "X",
    "Y",
    "[",
    "\\Delta",
    "\\alpha",
    "\\beta",
    "\\cos",
    "\\div",
    "\\exists",
    "\\forall",
    "\\gamma",
    "\\geq",
    "\\gt",
    "\\in",
    "\\infty",
    "\\int",
    "\\lambda",
    "\\ldots",
    "\\leq",
    "\\lim",
    "\\log",
    "\\lt",
    "\\mu",
    "\\neq",
    "\\phi",
    "\\pi",
    "\\pm",
    "\\prime",
    "\\rightarrow",
    "\\sigma",
    "\\sin",
    "\\sqrt",
    "\\sum",
    "\\tan",
    "\\theta",
    "\\times",
    "\\{",
    "\\}",
    "]",
    "a",
    "b",
    "c",
    "d",
    "e",
    "f",
    "g",
    "h",
    "i",
    "j",
    "k",
    "l",
    "m",
    "n",
    "o",
    "p",
    "q",
    "r",
    "s",
    "t",
    "u",
    "v",
    "w",
    "x",
    "y",
    "z",
    "|",
)

#: The 101 classes of CROHME's isolated-symbol task, in Python ``sorted()`` order.
#:
#: Example:
#: >>> len(CROHME_SYMBOLS), CROHME_SYMBOLS[0], CROHME_SYMBOLS[-1]
#: (101, '!', '|')
CROHME_SYMBOLS: tuple[str, ...] = tuple(sorted(_CROHME_CLASS_NAMES))

#: CROHME's rejection class: strokes that are not a symbol. Optional, appended after the 101.
JUNK = "junk"

_LATEX_OVERRIDES = {"COMMA": ",", "\\lt": "<", "\\gt": ">"}


def symbol_to_latex(symbol: str) -> str:
    """Return the LaTeX source that typesets a CROHME class name.

    CROHME spells three symbols differently from LaTeX: ``COMMA`` is ``,``, ``\\lt`` is ``<``
    and ``\\gt`` is ``>``. Every other class name is already valid LaTeX.

    Args:
        symbol: str. A CROHME class name, one of `CROHME_SYMBOLS` (or ``"junk"``).

    Returns:
        The LaTeX string (``"junk"`` maps to the empty string).

    Raises:
        ValueError: if ``symbol`` is not a CROHME class name.

    Example:
    >>> symbol_to_latex("COMMA"), symbol_to_latex("\\\\lt"), symbol_to_latex("\\\\alpha")
    (',', '<', '\\\\alpha')
    """
    if symbol == JUNK:
        return ""
    if symbol not in _SYMBOL_INDEX:
        raise ValueError(
            f"`symbol` must be one of the {len(CROHME_SYMBOLS)} CROHME class names "
            f"(see `CROHME_SYMBOLS`) or {JUNK!r}. Received: symbol={symbol!r}"
        )
    return _LATEX_OVERRIDES.get(symbol, symbol)


def crohme_labels(include_junk: bool = False) -> tuple[str, ...]:
    """Return the label list a classifier is trained on.

    Args:
        include_junk: bool. Append CROHME's ``"junk"`` class after the 101 symbols.

    Example:
    >>> len(crohme_labels()), crohme_labels(include_junk=True)[-1]
    (101, 'junk')
    """
    return CROHME_SYMBOLS + ((JUNK,) if include_junk else ())


_SYMBOL_INDEX = {name: index for index, name in enumerate(CROHME_SYMBOLS)}
assert len(CROHME_SYMBOLS) == 101 and len(_SYMBOL_INDEX) == 101
