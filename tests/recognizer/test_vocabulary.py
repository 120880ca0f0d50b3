"""The recognizer's CROHME targets: each expression's tokens, from its caption or its truth."""

import numpy as np

from im2latex_encoder.formulas.handwritten import InkExpressions
from im2latex_encoder.recognizer.vocabulary import crohme_vocabulary, expression_targets


def test_expression_targets_from_captions_or_truth():
    data = InkExpressions.from_strokes(
        [[np.zeros((1, 2))]] * 3, names=["a", "b", "c"], truths=["$\\frac12$", "", "x"]
    )
    targets, skipped = expression_targets(data)
    assert targets[0] == ["\\frac", "{", "1", "}", "{", "2", "}"] and targets[1] is None
    assert skipped == {"b": "no truth"}
    targets, skipped = expression_targets(data, {"a": ["y"], "c": ["z"]})
    assert targets == [["y"], None, ["z"]] and skipped == {"b": "no caption"}


def test_crohme_vocabulary_is_the_dictionary_in_id_order_after_the_special_tokens(tmp_path):
    dictionary = tmp_path / "dictionary.txt"
    dictionary.write_text("x\t2\n\\frac\t0\n1\t1\n", encoding="utf-8")
    vocabulary = crohme_vocabulary(dictionary)
    assert len(vocabulary) == 4 + 3
    assert vocabulary.encode(["\\frac", "1", "x"]) == [1, 4, 5, 6, 2]
