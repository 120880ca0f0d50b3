"""LaTeX tokenizer, detokenizer, normalizer and the token `Vocabulary` of the formula models.

Tokens follow im2latex-100k's normalized files: a command (``\\frac``), an escaped character
(``\\{``, ``\\,``), a ``\\left``/``\\right`` delimiter pair as one token (``\\left(``), or one
character (``x``, ``{``, ``^``). Whitespace separates tokens and is dropped.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence

from im2latex_encoder._atomic import atomic_write_text
from im2latex_encoder.formulas.grammar import grammar_tokens

_TOKEN_RE = re.compile(
    r"\\(?:left|right)\s*(?:\\[a-zA-Z]+|\\[{}|]|[()\[\]|./<>])"  # \left( \right\} \left.
    r"|\\[a-zA-Z]+"  # commands: \frac \alpha
    r"|\\[^a-zA-Z\s]"  # escaped characters: \{ \} \, \! \\
    r"|\\\s"  # a control space "\ " (kept as one token, normalized to "\ ")
    r"|\S"  # any other character
)
_COMMAND_RE = re.compile(r"\\[a-zA-Z]+")
# Commands whose arguments `normalize_latex` braces: name -> number of mandatory arguments.
_ARGUMENT_COUNTS = {
    "\\frac": 2,
    "\\sqrt": 1,
    "\\mathbf": 1,
    "\\mathrm": 1,
    "\\hat": 1,
    "\\bar": 1,
    "\\vec": 1,
    "\\tilde": 1,
    "\\dot": 1,
    "\\overline": 1,
}
_ALIASES = {
    "\\lt": "<",
    "\\gt": ">",
    "\\to": "\\rightarrow",
    "\\le": "\\leq",
    "\\ge": "\\geq",
    "\\ne": "\\neq",
    "\\dots": "\\ldots",
    "\\lbrace": "\\{",
    "\\rbrace": "\\}",
}
_SPACING = {"\\,", "\\;", "\\:", "\\!", "\\ ", "~", "\\quad", "\\qquad", "\\displaystyle"}


def tokenize_latex(latex: str) -> list[str]:
    """Split a LaTeX string into tokens; whitespace is dropped.

    A ``\\left``/``\\right`` and its delimiter become one token with the space removed
    (``\\left (`` -> ``\\left(``); ``$`` delimiters are kept as characters, so strip them first.

    Args:
        latex: str. LaTeX math source.

    Returns:
        The list of tokens.

    Example:
    >>> tokenize_latex(r"\\frac{a}{b} + \\left( x^2 \\right) \\{")
    ['\\\\frac', '{', 'a', '}', '{', 'b', '}', '+', '\\\\left(', 'x', '^', '2', '\\\\right)', '\\\\{']
    """
    if not isinstance(latex, str):
        raise TypeError(f"`latex` must be a str. Received: {type(latex).__name__}")
    tokens = []
    for token in _TOKEN_RE.findall(latex):
        if token.startswith(("\\left", "\\right")):
            token = re.sub(r"\s+", "", token)  # "\left (" -> "\left("
        elif token[:1] == "\\" and token[1:].isspace():
            token = "\\ "  # a control space followed by a newline or tab
        tokens.append(token)
    return tokens


def detokenize(tokens: Iterable[str]) -> str:
    """Join tokens into the shortest LaTeX string that typesets the same.

    A space goes only where it is needed: after a command that ends in a letter and before a
    token that starts with a letter (``\\alpha x``, not ``\\alphax``).

    Args:
        tokens: iterable of str. Tokens as `tokenize_latex` returns them.

    Returns:
        A LaTeX string; ``tokenize_latex(detokenize(tokens)) == list(tokens)``.

    Example:
    >>> detokenize(["\\\\sin", "x", "^", "{", "2", "}", "+", "\\\\frac", "{", "a", "}", "{", "b", "}"])
    '\\\\sin x^{2}+\\\\frac{a}{b}'
    """
    parts: list[str] = []
    previous = ""
    for token in tokens:
        if previous and _COMMAND_RE.fullmatch(previous) and token[:1].isalpha():
            parts.append(" ")
        parts.append(token)
        previous = token
    return "".join(parts)


def normalize_latex(latex: str) -> str:
    """Bring a LaTeX string to the canonical form used for exact-match scores.

    Tokens are separated by one space; spacing commands (``\\,``, ``\\quad``, ``\\displaystyle``)
    are dropped; aliases become one spelling (``\\lt`` -> ``<``, ``\\to`` -> ``\\rightarrow``,
    ``\\le`` -> ``\\leq``); and a one-token argument of ``^``, ``_``, ``\\frac``, ``\\sqrt`` or an
    accent gets braces (``x^2`` -> ``x ^ { 2 }``, ``\\frac12`` -> ``\\frac { 1 } { 2 }``).
    Formulas from `random_formulas` are already normalized.

    Args:
        latex: str. LaTeX math source.

    Returns:
        The normalized string.

    Example:
    >>> normalize_latex(r"x^2_i \\lt \\frac12")
    'x ^ { 2 } _ { i } < \\\\frac { 1 } { 2 }'
    """
    tokens = [
        _ALIASES.get(token, token) for token in tokenize_latex(latex) if token not in _SPACING
    ]
    return " ".join(_brace_arguments(tokens))


def _brace_arguments(tokens: Sequence[str]) -> list[str]:
    out: list[str] = []
    position = 0

    def take_argument(start: int) -> tuple[list[str], int]:
        """The argument starting at `start`, braced, and the position after it."""
        if start >= len(tokens):
            return [], start
        if tokens[start] != "{":
            inner = _brace_arguments(tokens[start : start + 1])
            return ["{"] + inner + ["}"], start + 1
        depth, end = 0, start
        while end < len(tokens):
            depth += {"{": 1, "}": -1}.get(tokens[end], 0)
            end += 1
            if depth == 0:
                break
        return ["{"] + _brace_arguments(tokens[start + 1 : end - 1]) + ["}"], end

    while position < len(tokens):
        token = tokens[position]
        position += 1
        out.append(token)
        count = 1 if token in ("^", "_") else _ARGUMENT_COUNTS.get(token, 0)
        if token == "\\sqrt" and position < len(tokens) and tokens[position] == "[":
            end = tokens.index("]", position) + 1 if "]" in tokens[position:] else len(tokens)
            out.extend(tokens[position:end])
            position = end
        for _ in range(count):
            argument, position = take_argument(position)
            out.extend(argument)
    return out


class Vocabulary:
    """Maps LaTeX tokens to integer ids and back; saved and loaded as JSON.

    The four special tokens come first: ``<pad>`` = 0, ``<start>`` = 1, ``<end>`` = 2,
    ``<unk>`` = 3. `Vocabulary.from_grammar()` builds the vocabulary of every token the formula
    grammar can emit, in sorted order, so its ids never depend on which formulas were sampled.

    Args:
        tokens: sequence of str. The ordinary tokens, in id order (ids start at 4); no
            duplicates, no special tokens.

    Example:
    >>> vocab = Vocabulary.from_grammar()
    >>> ids = vocab.encode(r"\\frac{a}{b}")
    >>> ids[0] == vocab.start_id, ids[-1] == vocab.end_id, vocab.decode(ids)
    (True, True, '\\\\frac{a}{b}')
    """

    PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
    SPECIAL_TOKENS = (PAD, START, END, UNK)
    _FORMAT = "im2latex_encoder.formulas.Vocabulary"

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        special = sorted(set(tokens) & set(self.SPECIAL_TOKENS))
        if special:
            raise ValueError(
                f"`tokens` must not contain the special tokens {self.SPECIAL_TOKENS}; "
                f"they are added first. Received: {special}"
            )
        duplicates = sorted({token for token in tokens if tokens.count(token) > 1})
        if duplicates:
            raise ValueError(f"`tokens` must be distinct. Received duplicates: {duplicates}")
        bad = [
            token
            for token in tokens
            if not isinstance(token, str)
            or not token
            or any(ch.isspace() for ch in token.replace("\\ ", "x"))
        ]
        if bad:
            raise ValueError(
                f"`tokens` must be non-empty strings without whitespace. Received: {bad[:5]}"
            )
        self._id_to_token = list(self.SPECIAL_TOKENS) + tokens
        self._token_to_id = {token: index for index, token in enumerate(self._id_to_token)}

    @classmethod
    def from_grammar(cls) -> Vocabulary:
        """Build the vocabulary of `grammar_tokens()` (114 tokens + 4 special = 118 ids).

        Example:
        >>> len(Vocabulary.from_grammar())
        118
        """
        return cls(grammar_tokens())

    @classmethod
    def from_formulas(cls, formulas: Iterable[str], *, min_count: int = 1) -> Vocabulary:
        """Build a vocabulary from a corpus (e.g. im2latex-100k), rarer tokens become ``<unk>``.

        Tokens are sorted, so the same corpus always gives the same ids.

        Args:
            formulas: iterable of str. LaTeX strings.
            min_count: int. Keep tokens seen at least this often.

        Example:
        >>> Vocabulary.from_formulas(["x^2", "x+y"]).tokens[4:]
        ('+', '2', '^', 'x', 'y')
        """
        counts: dict[str, int] = {}
        for formula in formulas:
            for token in tokenize_latex(formula):
                counts[token] = counts.get(token, 0) + 1
        return cls(
            sorted(
                token
                for token, count in counts.items()
                if count >= min_count and token not in cls.SPECIAL_TOKENS
            )
        )

    # --- lookups -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._id_to_token)

    def __contains__(self, token: object) -> bool:
        return token in self._token_to_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._id_to_token == other._id_to_token

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)})"

    @property
    def tokens(self) -> tuple[str, ...]:
        """All tokens in id order, special tokens first.

        Example:
        >>> Vocabulary(["x"]).tokens
        ('<pad>', '<start>', '<end>', '<unk>', 'x')
        """
        return tuple(self._id_to_token)

    pad_id, start_id, end_id, unk_id = 0, 1, 2, 3

    def token_to_id(self, token: str) -> int:
        """Return the id of `token`, or `unk_id` if it is not in the vocabulary.

        Example:
        >>> vocab = Vocabulary(["x"])
        >>> vocab.token_to_id("x"), vocab.token_to_id("\\\\zeta")
        (4, 3)
        """
        return self._token_to_id.get(token, self.unk_id)

    def id_to_token(self, index: int) -> str:
        """Return the token of id `index`.

        Example:
        >>> Vocabulary(["x"]).id_to_token(4)
        'x'
        """
        if not 0 <= int(index) < len(self):
            raise ValueError(f"`index` must be in [0, {len(self)}). Received: index={index}")
        return self._id_to_token[int(index)]

    # --- encode / decode ---------------------------------------------------------------------
    def encode(self, latex: str | Sequence[str], *, add_start_end: bool = True) -> list[int]:
        """Turn a LaTeX string (or a token list) into ids, unknown tokens as `unk_id`.

        Args:
            latex: str or sequence of str. LaTeX source, tokenized with `tokenize_latex`, or
                tokens already.
            add_start_end: bool. Wrap the ids in ``<start>`` ... ``<end>``.

        Example:
        >>> Vocabulary(["x", "^", "2", "{", "}"]).encode("x^2", add_start_end=False)
        [4, 5, 6]
        """
        tokens = tokenize_latex(latex) if isinstance(latex, str) else list(latex)
        ids = [self.token_to_id(token) for token in tokens]
        return [self.start_id] + ids + [self.end_id] if add_start_end else ids

    def decode_tokens(self, ids: Iterable[int]) -> list[str]:
        """Turn ids into tokens: stops at ``<end>``, skips ``<pad>`` and ``<start>``.

        Example:
        >>> Vocabulary(["x", "y"]).decode_tokens([1, 4, 5, 2, 4, 0])
        ['x', 'y']
        """
        tokens: list[str] = []
        for index in ids:
            index = int(index)
            if index == self.end_id:
                break
            if index in (self.pad_id, self.start_id):
                continue
            tokens.append(self.id_to_token(index))
        return tokens

    def decode(self, ids: Iterable[int]) -> str:
        """Turn ids into a LaTeX string (`detokenize` of `decode_tokens`).

        Example:
        >>> vocab = Vocabulary.from_grammar()
        >>> vocab.decode(vocab.encode(r"\\sqrt[3]{x}"))
        '\\\\sqrt[3]{x}'
        """
        return detokenize(self.decode_tokens(ids))

    # --- persistence -------------------------------------------------------------------------
    def to_json(self) -> dict:
        """Return the JSON-ready dict `save` writes.

        Example:
        >>> Vocabulary(["x"]).to_json()["tokens"]
        ['<pad>', '<start>', '<end>', '<unk>', 'x']
        """
        return {"format": self._FORMAT, "version": 1, "tokens": list(self._id_to_token)}

    @classmethod
    def from_json(cls, data: dict) -> Vocabulary:
        """Rebuild a vocabulary from `to_json`'s dict.

        Example:
        >>> vocab = Vocabulary.from_grammar()
        >>> Vocabulary.from_json(vocab.to_json()) == vocab
        True
        """
        if not isinstance(data, dict) or data.get("format") != cls._FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(
                f"Expected a vocabulary JSON with format={cls._FORMAT!r}. Received: {found!r}"
            )
        if data.get("version") != 1:
            raise ValueError(f"Expected vocabulary version 1. Received: {data.get('version')!r}")
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or tuple(tokens[:4]) != cls.SPECIAL_TOKENS:
            raise ValueError(
                f"Expected 'tokens' to start with {list(cls.SPECIAL_TOKENS)}. "
                f"Received: {tokens[:4] if isinstance(tokens, list) else tokens!r}"
            )
        return cls(tokens[4:])

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON, atomically (temporary file, then `os.replace`).

        Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "vocab.json")
        >>> Vocabulary.from_grammar().save(path)
        >>> Vocabulary.load(path) == Vocabulary.from_grammar()
        True
        """
        atomic_write_text(path, json.dumps(self.to_json(), ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Read a vocabulary written by `save`.

        Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "vocab.json")
        >>> Vocabulary(["x"]).save(path); len(Vocabulary.load(path))
        5
        """
        with open(path, encoding="utf-8") as file:
            try:
                data = json.load(file)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{os.fspath(path)}: expected a vocabulary JSON file. "
                    f"Received invalid JSON: {error}"
                ) from None
        try:
            return cls.from_json(data)
        except ValueError as error:
            raise ValueError(f"{os.fspath(path)}: {error}") from None
