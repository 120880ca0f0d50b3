"""`LatexGrammar`: decoding writes only token sequences a caption can be.

Beam search left alone ends formulas with a group still open, closes groups never opened
and writes ``x ^ 2`` where every training caption writes ``x ^ { 2 }``: on the CROHME 2016
test set, 183 of `crohme-formulas`' 1,147 beam-4 readings had unbalanced braces, which no
target has and a LaTeX renderer refuses. `LatexGrammar` is a `logits_processor`
(`greedy_decode`, `beam_search_decode`) that gives those continuations a log-probability of
-inf, so the beams spend their width on readings that can be right. Numpy only: the
exported runner applies the same rules.

The rules, each applied only where the vocabulary has the tokens it names:

- ``}`` only inside a group; ``<end>`` only with every group closed;
- after ``^``, ``_`` and ``\\frac``, only ``{``; after ``\\sqrt``, ``{`` or ``[``;
- after the ``}`` that closes a fraction's numerator, only ``{`` (its denominator);
- with `max_length`, only tokens after which the reading can still close every group and end
  within `max_length` tokens (a reading cut at the limit is never left unbalanced).

Example:
>>> import numpy as np
>>> tokens = ["<pad>", "<start>", "<end>", "<unk>", "x", "^", "{", "}", "2"]
>>> grammar = LatexGrammar(tokens, end_id=2)
>>> prefix = np.array([[1, 4, 5]])                       # <start> x ^
>>> allowed = np.isfinite(grammar(prefix, np.zeros((1, 9)), np.zeros(1, int)))
>>> [tokens[i] for i in np.flatnonzero(allowed[0])]
['{']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: Tokens that must be followed by a group, and the tokens that may open it.
_NEEDS_GROUP = {"^": ("{",), "_": ("{",), "\\frac": ("{",), "\\sqrt": ("{", "[")}


class LatexGrammar:
    """A `logits_processor` that forbids token sequences no caption has (see the module).

    Args:
        tokens: the vocabulary's tokens, by id.
        end_id: int. Id of ``<end>``.
        max_length: int or None. Most tokens a reading may have, ``<end>`` included (the
            decoder's `max_length`); None: no length rule.

    Example:
    >>> tokens = ["<pad>", "<start>", "<end>", "<unk>", "x", "{", "}"]
    >>> grammar = LatexGrammar(tokens, end_id=2)
    >>> out = grammar(np.array([[1, 5, 4], [1, 4, 4]]), np.zeros((2, 7)), np.arange(2))
    >>> bool(np.isinf(out[0, 2])), bool(np.isinf(out[1, 6]))   # open group: no <end>; none: no }
    (True, True)
    """

    def __init__(self, tokens: Sequence[str], end_id: int, max_length: int | None = None):
        tokens = list(tokens)
        if not 0 <= int(end_id) < len(tokens):
            raise ValueError(
                f"`end_id` must be an id of the {len(tokens)} tokens. Received: end_id={end_id!r}"
            )
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise ValueError(
                f"`max_length` must be a positive int or None. Received: max_length={max_length!r}"
            )
        self.max_length = max_length
        index = {token: i for i, token in enumerate(tokens)}
        self.vocabulary_size, self.end_id = len(tokens), int(end_id)
        self.open_id, self.close_id = index.get("{", -1), index.get("}", -1)
        self.frac_id = index.get("\\frac", -1)
        # For each token that needs a group after it, a mask of the tokens allowed next.
        self.next_allowed: dict[int, np.ndarray] = {}
        for token, openers in _NEEDS_GROUP.items():
            ids = [index[o] for o in openers if o in index]
            if token in index and ids:
                allowed = np.zeros(len(tokens), bool)
                allowed[ids] = True
                self.next_allowed[index[token]] = allowed
        # Tokens still to write after each token (beyond closing the groups open and <end>):
        # a group's { and } after ^ _ \sqrt, two groups after \frac, one for [ (its ] too).
        self.extra = np.zeros(len(tokens), np.int64)
        for token, extra in (("^", 2), ("_", 2), ("\\sqrt", 2), ("\\frac", 4), ("[", 3)):
            if token in index:
                self.extra[index[token]] = extra

    def __call__(self, prefix: np.ndarray, log_probs: np.ndarray, images: np.ndarray) -> np.ndarray:
        """`log_probs` with the forbidden next tokens at -inf (a copy)."""
        prefix, out = np.asarray(prefix), np.array(log_probs, dtype=np.float64)
        if out.shape != (len(prefix), self.vocabulary_size):
            raise ValueError(
                f"`log_probs` must be (rows, {self.vocabulary_size}) for {len(prefix)} "
                f"prefixes. Received: shape {out.shape}"
            )
        last = prefix[:, -1]
        if self.open_id < 0 or self.close_id < 0:
            depth = np.zeros(len(prefix), np.int64)
        else:
            depth = (prefix == self.open_id).sum(axis=1) - (prefix == self.close_id).sum(axis=1)
            out[depth <= 0, self.close_id] = -np.inf
            out[depth > 0, self.end_id] = -np.inf
            if self.frac_id >= 0:
                for row in np.flatnonzero(last == self.close_id):
                    if self._numerators(prefix[row])[1]:
                        out[row, np.arange(self.vocabulary_size) != self.open_id] = -np.inf
        for token, allowed in self.next_allowed.items():
            out[np.ix_(last == token, ~allowed)] = -np.inf
        if self.max_length is not None:
            # Tokens each candidate leaves to write (groups to close, <end>, what it needs),
            # against the tokens left after it; the prefix holds <start> and what was written.
            need = depth[:, None] + 1 + self.extra[None, :]
            if self.open_id >= 0 and self.close_id >= 0:
                need[:, self.open_id] += 1
                need[:, self.close_id] -= 1
                if self.frac_id >= 0:  # each open numerator: its denominator's { } to come
                    need[last == self.frac_id, self.open_id] += 2
                    for row in np.flatnonzero((depth > 0) & (prefix == self.frac_id).any(axis=1)):
                        need[row] += 2 * self._numerators(prefix[row])[0]
            need[:, self.end_id] = 0
            left = self.max_length - prefix.shape[1]
            out[need > left] = -np.inf
        return out

    def _numerators(self, ids: np.ndarray) -> tuple[int, bool]:
        """How many groups `ids` leaves open are fractions' numerators, and whether its last
        token is the ``}`` that closed one (so the denominator must follow)."""
        opened: list[bool] = []  # per open group: whether it is a numerator
        closed_numerator = False
        for position, token in enumerate(ids):
            closed_numerator = False
            if token == self.open_id:
                opened.append(position > 0 and ids[position - 1] == self.frac_id)
            elif token == self.close_id and opened:
                closed_numerator = opened.pop()
        return sum(opened), closed_numerator


def chain_processors(*processors: Callable | None) -> Callable | None:
    """One `logits_processor` that applies each given one in turn (None: skipped).

    Example:
    >>> double = lambda prefix, log_probs, images: log_probs * 2
    >>> chain_processors(None, double, double)(None, np.ones((1, 2)), None).tolist()
    [[4.0, 4.0]]
    >>> chain_processors(None) is None
    True
    """
    chosen = [p for p in processors if p is not None]
    if not chosen:
        return None
    if len(chosen) == 1:
        return chosen[0]

    def chained(prefix, log_probs, images):
        for processor in chosen:
            log_probs = processor(prefix, log_probs, images)
        return log_probs

    return chained
