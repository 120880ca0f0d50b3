"""The recognizer's tokens for CROHME: its vocabulary and each expression's target.

Example:
>>> import numpy as np
>>> data = InkExpressions.from_strokes([[np.zeros((1, 2))]], names=["a"], truths=["$x$"])
>>> expression_targets(data)
([['x']], {})
"""

from __future__ import annotations

import os

from im2latex_encoder.formulas.handwritten import InkExpressions
from im2latex_encoder.formulas.tokenizer import Vocabulary


def crohme_vocabulary(dictionary: str | os.PathLike) -> Vocabulary:
    """The vocabulary of CROHME's caption dictionary (its tokens in id order, after the 4
    special tokens).

    Example:
    >>> len(crohme_vocabulary("../shared/data/crohme/dictionary.txt"))  # doctest: +SKIP
    115
    """
    from im2latex_encoder.formulas.crohme_truth import read_crohme_dictionary

    return Vocabulary(read_crohme_dictionary(dictionary))


def expression_targets(
    expressions: InkExpressions, captions: dict | None = None
) -> tuple[list, dict]:
    """The token target of every expression, and why some have none.

    With `captions` (stem → tokens, `read_crohme_captions`), an expression's target is its
    caption; without, its normalised ``truth`` (`normalize_crohme_truth`).

    Returns:
        ``(targets, skipped)``: one token list (or None) per expression, and
        ``{name: reason}`` for each None.

    Example:
    >>> import numpy as np
    >>> data = InkExpressions.from_strokes([[np.zeros((1, 2))]] * 2, names=["a", "b"],
    ...                                    truths=["$x^2$", ""])
    >>> expression_targets(data)
    ([['x', '^', '{', '2', '}'], None], {'b': 'no truth'})
    """
    from im2latex_encoder.formulas.crohme_truth import normalize_crohme_truth

    targets, skipped = [], {}
    for name, truth in zip(expressions.names, expressions.truths):
        if captions is not None:
            tokens = captions.get(name)
            reason = "no caption"
        else:
            tokens = normalize_crohme_truth(truth) if truth else None
            reason = "no truth"
        if not tokens:
            skipped[name] = reason
            tokens = None
        targets.append(tokens)
    return targets, skipped
