"""A small random grammar of LaTeX formulas over the 101 CROHME symbols.

The formulas feed the transfer examples: a formula image is typeset with matplotlib's mathtext
(see `render.py`) and its token sequence is the seq2seq target. Only constructs that mathtext
parses are generated (no ``\\begin{...}``, ``\\\\``, ``\\big`` or ``\\displaystyle``), and every
formula is emitted in normalized form: tokens separated by one space, script and fraction
arguments always in braces, so ``normalize_latex(formula) == formula``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from im2latex_encoder.symbols import CROHME_SYMBOLS, symbol_to_latex

# The CROHME symbols, grouped by the part they play in a formula.
DIGITS = tuple("0123456789")
LOWER_LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")
UPPER_LETTERS = (
    "A",
    "B",
    "C",
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
)
GREEK = (
    "\\alpha",
    "\\beta",
    "\\gamma",
    "\\lambda",
    "\\mu",
    "\\phi",
    "\\pi",
    "\\sigma",
    "\\theta",
    "\\Delta",
)
BINARY_OPERATORS = ("+", "-", "\\times", "\\div", "\\pm", "/")
RELATIONS = ("=", "\\neq", "\\leq", "\\geq", "<", ">", "\\in", "\\rightarrow")
FUNCTIONS = ("\\sin", "\\cos", "\\tan", "\\log")
_OTHER_CROHME = (
    "\\lim",
    "\\sum",
    "\\int",
    "\\sqrt",
    "(",
    ")",
    "[",
    "]",
    "\\{",
    "\\}",
    "|",
    "!",
    ",",
    ".",
    "\\ldots",
    "\\prime",
    "\\infty",
    "\\exists",
    "\\forall",
)

#: Tokens the grammar adds to the CROHME symbols: grouping, scripts, fractions and
#: ``\left``/``\right`` delimiter pairs (one token each, as in im2latex-100k's normalized files).
STRUCTURE_TOKENS = (
    "{",
    "}",
    "^",
    "_",
    "\\frac",
    "\\left(",
    "\\right)",
    "\\left[",
    "\\right]",
    "\\left|",
    "\\right|",
    "\\left\\{",
    "\\right\\}",
)

_CROHME_LATEX = tuple(symbol_to_latex(symbol) for symbol in CROHME_SYMBOLS)
_GROUPED = (
    DIGITS
    + LOWER_LETTERS
    + UPPER_LETTERS
    + GREEK
    + BINARY_OPERATORS
    + RELATIONS
    + FUNCTIONS
    + _OTHER_CROHME
)
assert sorted(_GROUPED) == sorted(_CROHME_LATEX), "every CROHME symbol belongs to one group"

_BRACKETS = (
    ("(", ")"),
    ("[", "]"),
    ("\\{", "\\}"),
    ("|", "|"),
    ("\\left(", "\\right)"),
    ("\\left[", "\\right]"),
    ("\\left|", "\\right|"),
    ("\\left\\{", "\\right\\}"),
)
_INDEX_LETTERS = ("i", "j", "k", "n", "m")
_VARIABLES = ("x", "y", "z", "t", "a", "b", "c", "n", "k", "u", "v", "w", "s", "p", "q", "r")


def grammar_tokens() -> tuple[str, ...]:
    """Return every token `FormulaGrammar` can emit, sorted, so vocabularies built from it are stable.

    The set is the LaTeX of the 101 CROHME symbols (``\\lt``/``\\gt`` spelt ``<``/``>``) plus
    `STRUCTURE_TOKENS`. It does not depend on the grammar's length or depth bounds.

    Returns:
        A sorted tuple of 114 distinct token strings.

    Example:
    >>> tokens = grammar_tokens()
    >>> len(tokens), "\\\\frac" in tokens, "<" in tokens
    (114, True, True)
    """
    return tuple(sorted(set(_CROHME_LATEX) | set(STRUCTURE_TOKENS)))


class FormulaGrammar:
    """Samples short random formulas over the CROHME symbols, deterministic for a seed.

    Productions: numbers, letters and Greek letters with sub- and superscripts; fractions;
    ``\\sqrt{}`` and ``\\sqrt[n]{}``; ``\\sin \\cos \\tan \\log``; ``\\lim``, ``\\sum`` and
    ``\\int`` with limits; brackets (plain and ``\\left( \\right)``), factorials, primes;
    relations, quantifiers (``\\forall x \\in X``) and ``\\ldots`` lists. Nesting of
    fractions, roots, brackets and big operators is bounded by `max_depth`; a formula with more
    than `max_tokens` tokens is rejected and drawn again (from the same random stream, so the
    output is still a function of the seed).

    Args:
        max_tokens: int. Longest formula, in tokens (see `tokenize_latex`). At least 5.
        max_depth: int. Deepest nesting of fractions, roots, brackets and big operators, >= 0.

    Example:
    >>> import random
    >>> grammar = FormulaGrammar(max_tokens=20, max_depth=1)
    >>> formula = grammar.sample(random.Random(0))
    >>> formula == grammar.sample(random.Random(0)), len(formula.split()) <= 20
    (True, True)
    """

    _MAX_ATTEMPTS = 10_000

    def __init__(self, max_tokens: int = 30, max_depth: int = 2):
        if not isinstance(max_tokens, int) or max_tokens < 5:
            raise ValueError(
                f"`max_tokens` must be an int >= 5. Received: max_tokens={max_tokens!r}"
            )
        if not isinstance(max_depth, int) or max_depth < 0:
            raise ValueError(f"`max_depth` must be an int >= 0. Received: max_depth={max_depth!r}")
        self.max_tokens = max_tokens
        self.max_depth = max_depth

    def __repr__(self) -> str:
        return f"FormulaGrammar(max_tokens={self.max_tokens}, max_depth={self.max_depth})"

    def sample(self, rng: random.Random) -> str:
        """Draw one formula, as space-separated normalized tokens.

        Args:
            rng: random.Random. The random stream; the result depends on nothing else.

        Returns:
            A LaTeX string of at most `max_tokens` tokens, without ``$`` delimiters.

        Example:
        >>> import random
        >>> FormulaGrammar().sample(random.Random(1)).count("$")
        0
        """
        for _ in range(self._MAX_ATTEMPTS):
            tokens = _Sampler(rng, self.max_tokens).formula(self.max_depth)
            if 0 < len(tokens) <= self.max_tokens:
                return " ".join(tokens)
        raise RuntimeError(  # only reachable if the productions change; max_tokens >= 5 fits atoms
            f"no formula of at most {self.max_tokens} tokens in {self._MAX_ATTEMPTS} attempts"
        )

    def tokens(self) -> tuple[str, ...]:
        """Return every token this grammar can emit (see `grammar_tokens`).

        Example:
        >>> FormulaGrammar().tokens() == grammar_tokens()
        True
        """
        return grammar_tokens()


def random_formulas(
    n: int, *, seed: int = 0, max_tokens: int = 30, max_depth: int = 2
) -> list[str]:
    """Draw `n` random formulas; the same arguments always give the same list.

    Args:
        n: int. How many formulas, >= 0.
        seed: int. Seed of the random stream.
        max_tokens: int. Longest formula, in tokens.
        max_depth: int. Deepest nesting of fractions, roots, brackets and big operators.

    Returns:
        A list of `n` normalized LaTeX strings (tokens separated by one space).

    Example:
    >>> formulas = random_formulas(3, seed=7, max_tokens=25)
    >>> formulas == random_formulas(3, seed=7, max_tokens=25), len(formulas)
    (True, 3)
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"`n` must be an int >= 0. Received: n={n!r}")
    grammar = FormulaGrammar(max_tokens=max_tokens, max_depth=max_depth)
    rng = random.Random(seed)
    return [grammar.sample(rng) for _ in range(n)]


class _Sampler:
    """One draw of the grammar; each method returns a list of tokens."""

    def __init__(self, rng: random.Random, max_tokens: int):
        self.rng = rng
        self.max_tokens = max_tokens

    def _pick(self, options: Sequence):
        return options[self.rng.randrange(len(options))]

    def _weighted(self, table: Sequence[tuple[float, object]]):
        weights = [weight for weight, _ in table]
        return self.rng.choices([item for _, item in table], weights=weights)[0]

    # --- formula level -----------------------------------------------------------------------
    def formula(self, depth: int) -> list[str]:
        kind = self._weighted(
            [
                (40, "expr"),
                (40, "relation"),
                (6, "function"),
                (5, "quantifier"),
                (5, "list"),
                (4, "chain"),
            ]
        )
        if kind == "expr":
            return self.expr(depth)
        if kind == "relation":
            return self.expr(depth) + [self._pick(RELATIONS)] + self.expr(depth)
        if kind == "function":  # f ( x ) = ...
            name = self._pick(("f", "g", "h", "F", "G"))
            var = self._pick(("x", "t", "y", "n"))
            return [name, "(", var, ")", "="] + self.expr(depth)
        if kind == "quantifier":  # \forall x \in X , x > 0
            var = self._pick(("x", "y", "n", "a", "z"))
            head = [self._pick(("\\forall", "\\exists")), var, "\\in", self._pick(UPPER_LETTERS)]
            if self.rng.random() < 0.6:
                head += [",", var, self._pick(RELATIONS[:6])] + self.expr(max(depth - 1, 0))
            return head
        if kind == "list":  # x _ { 1 } , \ldots , x _ { n }
            var = self._pick(LOWER_LETTERS[:-3] + ("x", "y"))
            first, last = self._pick(("0", "1")), self._pick(("n", "k", "m", "N"))
            sep = self._pick((",", "+", "\\times"))
            return [var, "_", "{", first, "}", sep, "\\ldots", sep, var, "_", "{", last, "}"]
        # chain: a < x < b
        low, high = self.atom(), self.atom()
        rel = self._pick(("<", "\\leq"))
        return low + [rel] + self.expr(0) + [rel] + high

    def expr(self, depth: int) -> list[str]:
        tokens = ["-"] if self.rng.random() < 0.08 else []
        tokens += self.term(depth)
        while self.rng.random() < 0.45 and len(tokens) < self.max_tokens:
            tokens += [self._pick(BINARY_OPERATORS)] + self.term(depth)
        return tokens

    # --- terms -------------------------------------------------------------------------------
    def term(self, depth: int) -> list[str]:
        if depth <= 0:
            kind = self._weighted(
                [(70, "scripted"), (12, "product"), (8, "function"), (5, "factorial"), (5, "prime")]
            )
        else:
            kind = self._weighted(
                [
                    (30, "scripted"),
                    (8, "product"),
                    (14, "frac"),
                    (9, "sqrt"),
                    (8, "function"),
                    (4, "lim"),
                    (5, "sum"),
                    (5, "int"),
                    (11, "brackets"),
                    (3, "factorial"),
                    (3, "prime"),
                ]
            )
        return getattr(self, "_" + kind)(depth)

    def _scripted(self, depth: int, letters_only: bool = False) -> list[str]:
        base = [self._pick(_VARIABLES + GREEK)] if letters_only else self.atom()
        roll = self.rng.random()
        if roll < 0.55 or base == ["\\infty"]:
            return base
        if roll < 0.8:
            return base + ["^", "{"] + self.script(depth) + ["}"]
        if roll < 0.93 or len(base) > 1:
            return base + ["_", "{"] + self.script(depth) + ["}"]
        return base + ["_", "{"] + self.script(0) + ["}", "^", "{"] + self.script(0) + ["}"]

    def _product(self, depth: int) -> list[str]:  # 2 x, a b ^ { 2 }
        factor = self._pick(DIGITS[2:]) if self.rng.random() < 0.6 else self._pick(_VARIABLES)
        return [factor] + self._scripted(0, letters_only=True)

    def _frac(self, depth: int) -> list[str]:
        return ["\\frac", "{"] + self.expr(depth - 1) + ["}", "{"] + self.expr(depth - 1) + ["}"]

    def _sqrt(self, depth: int) -> list[str]:
        index = ["[", self._pick(("3", "4", "n", "5")), "]"] if self.rng.random() < 0.3 else []
        return ["\\sqrt"] + index + ["{"] + self.expr(depth - 1) + ["}"]

    def _function(self, depth: int) -> list[str]:
        name = [self._pick(FUNCTIONS)]
        if self.rng.random() < 0.15:
            base = self._pick(("2", "b", "e"))
            name += ["^", "{", "2", "}"] if name[0] != "\\log" else ["_", "{", base, "}"]
        if depth > 0 and self.rng.random() < 0.5:
            return name + self._brackets(depth, plain_parens=True)
        arg = self._pick(("x", "y", "t", "\\theta", "\\alpha", "\\phi", "n", "z"))
        return name + ([self._pick(DIGITS[2:]), arg] if self.rng.random() < 0.15 else [arg])

    def _lim(self, depth: int) -> list[str]:
        var = self._pick(("x", "n", "h", "t"))
        target = self._pick((["0"], ["\\infty"], ["a"], ["1"], ["-", "\\infty"]))
        return ["\\lim", "_", "{", var, "\\rightarrow"] + target + ["}"] + self.term(depth - 1)

    def _sum(self, depth: int) -> list[str]:
        index = self._pick(_INDEX_LETTERS)
        low = self._pick(("0", "1"))
        high = self._pick(("n", "N", "\\infty", "k", "m"))
        if high == index:
            high = "\\infty"
        return ["\\sum", "_", "{", index, "=", low, "}", "^", "{", high, "}"] + self.term(depth - 1)

    def _int(self, depth: int) -> list[str]:
        var = self._pick(("x", "t", "u", "y"))
        limits = []
        if self.rng.random() < 0.7:
            low, high = self._pick(
                (
                    ("0", "1"),
                    ("a", "b"),
                    ("0", "\\infty"),
                    ("-", "\\infty"),
                    ("0", "\\pi"),
                    ("1", "e"),
                )
            )
            if (low, high) == ("-", "\\infty"):
                limits = ["_", "{", "-", "\\infty", "}", "^", "{", "\\infty", "}"]
            else:
                limits = ["_", "{", low, "}", "^", "{", high, "}"]
        return ["\\int"] + limits + self.term(depth - 1) + ["d", var]

    def _brackets(self, depth: int, plain_parens: bool = False) -> list[str]:
        left, right = (
            ("(", ")") if plain_parens and self.rng.random() < 0.7 else self._pick(_BRACKETS)
        )
        tokens = [left] + self.expr(depth - 1) + [right]
        if self.rng.random() < 0.2 and left not in ("|", "\\left|"):
            tokens += ["^", "{", self._pick(("2", "3", "n", "-")), "}"]
            if tokens[-2] == "-":
                tokens[-2:-1] = ["-", "1"]
        return tokens

    def _factorial(self, depth: int) -> list[str]:
        return [self._pick(("n", "k", "m", "3", "5"))] + ["!"]

    def _prime(self, depth: int) -> list[str]:  # f ^ { \prime } ( x )
        name = self._pick(("f", "g", "y", "u"))
        primes = ["\\prime"] * (1 if self.rng.random() < 0.8 else 2)
        return [name, "^", "{"] + primes + ["}", "(", self._pick(("x", "t")), ")"]

    # --- atoms -------------------------------------------------------------------------------
    def script(self, depth: int) -> list[str]:
        roll = self.rng.random()
        if roll < 0.45:
            return [self._pick(DIGITS)]
        if roll < 0.75:
            return [self._pick(("i", "j", "k", "n", "m", "x", "t", "a", "b", "p"))]
        if roll < 0.85:
            return ["-", self._pick(DIGITS[1:] + ("n", "x"))]
        if roll < 0.92:
            return [self._pick(("n", "i", "k")), self._pick(("+", "-")), "1"]
        if roll < 0.96:
            return ["\\infty"] if self.rng.random() < 0.3 else [self._pick(GREEK)]
        return self.expr(0) if depth > 0 else [self._pick(DIGITS)]

    def atom(self) -> list[str]:
        roll = self.rng.random()
        if roll < 0.28:
            return self.number()
        if roll < 0.72:
            return [self._pick(LOWER_LETTERS)]
        if roll < 0.84:
            return [self._pick(GREEK)]
        if roll < 0.97:
            return [self._pick(UPPER_LETTERS)]
        return ["\\infty"]

    def number(self) -> list[str]:
        roll = self.rng.random()
        if roll < 0.6:
            return [self._pick(DIGITS)]
        if roll < 0.88:
            return [self._pick(DIGITS[1:]), self._pick(DIGITS)]
        return [self._pick(DIGITS), ".", self._pick(DIGITS)] + (
            [self._pick(DIGITS)] if self.rng.random() < 0.5 else []
        )
