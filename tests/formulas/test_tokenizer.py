import json

import pytest

from im2latex_encoder.formulas.grammar import grammar_tokens, random_formulas
from im2latex_encoder.formulas.tokenizer import (
    Vocabulary,
    detokenize,
    normalize_latex,
    tokenize_latex,
)


@pytest.mark.parametrize(
    "latex, tokens",
    [
        (r"\frac{a}{b}", ["\\frac", "{", "a", "}", "{", "b", "}"]),
        (r"x^{2}_{i}", ["x", "^", "{", "2", "}", "_", "{", "i", "}"]),
        (r"\sqrt[3]{x}", ["\\sqrt", "[", "3", "]", "{", "x", "}"]),
        (r"\{ x \}", ["\\{", "x", "\\}"]),
        (r"\left( x \right)", ["\\left(", "x", "\\right)"]),
        (r"\left \{ a \right .", ["\\left\\{", "a", "\\right."]),
        (r"\leftarrow\rightarrow", ["\\leftarrow", "\\rightarrow"]),
        ("\\alpha\tx \n y", ["\\alpha", "x", "y"]),
        (r"a\,b\\c", ["a", "\\,", "b", "\\\\", "c"]),
        (r"\sin2x", ["\\sin", "2", "x"]),
    ],
)
def test_tokenize_tricky_strings(latex, tokens):
    assert tokenize_latex(latex) == tokens
    assert tokenize_latex(detokenize(tokens)) == tokens


def test_detokenize_spaces_only_between_a_command_and_a_letter():
    assert (
        detokenize(["\\alpha", "x", "+", "\\sin", "\\theta", "\\frac", "{", "a", "}"])
        == "\\alpha x+\\sin\\theta\\frac{a}"
    )


def test_grammar_formulas_round_trip_through_the_vocabulary():
    vocabulary = Vocabulary.from_grammar()
    for formula in random_formulas(300, seed=1):
        ids = vocabulary.encode(formula)
        assert vocabulary.unk_id not in ids
        assert normalize_latex(vocabulary.decode(ids)) == formula


@pytest.mark.parametrize(
    "a, b",
    [
        ("x^2", "x^{2}"),
        (r"\frac12", r"\frac{1}{2}"),
        (r"\sqrt x", r"\sqrt{x}"),
        (r"\sqrt[3]x", r"\sqrt[3]{x}"),
        (r"a \lt b", "a<b"),
        (r"x\to 0", r"x \rightarrow 0"),
        (r"a\,b", "a b"),
        (r"\displaystyle\sum_i", r"\sum_{i}"),
        (r"\left (x\right )", r"\left(x\right)"),
        (r"x_{i}^{2}", "x_i^2"),
        (r"\frac{x^2}{y}", r"\frac{x^{2}}y"),
    ],
)
def test_normalize_makes_equivalent_spellings_equal(a, b):
    assert normalize_latex(a) == normalize_latex(b)


@pytest.mark.parametrize(
    "a, b", [("x^2", "x_2"), (r"\frac{a}{b}", r"\frac{b}{a}"), ("x^{23}", "x^23")]
)
def test_normalize_keeps_different_formulas_different(a, b):
    assert normalize_latex(a) != normalize_latex(b)


def test_vocabulary_special_ids_and_unknown_tokens():
    vocabulary = Vocabulary.from_grammar()
    assert vocabulary.tokens[:4] == ("<pad>", "<start>", "<end>", "<unk>")
    assert (vocabulary.pad_id, vocabulary.start_id, vocabulary.end_id, vocabulary.unk_id) == (
        0,
        1,
        2,
        3,
    )
    assert len(vocabulary) == len(grammar_tokens()) + 4
    assert vocabulary.encode(r"\zeta", add_start_end=False) == [vocabulary.unk_id]
    assert vocabulary.decode_tokens(
        [1, vocabulary.token_to_id("x"), 2, vocabulary.token_to_id("y")]
    ) == ["x"]
    with pytest.raises(ValueError, match=r"\[0, 118\). Received: index=118"):
        vocabulary.id_to_token(118)


def test_vocabulary_ids_are_stable():
    # Regression guard: the ids of a trained model must not move when the code changes.
    vocabulary = Vocabulary.from_grammar()
    assert vocabulary.tokens[4:10] == ("!", "(", ")", "+", ",", "-")
    assert vocabulary == Vocabulary.from_grammar()


def test_vocabulary_json_round_trip(tmp_path):
    vocabulary = Vocabulary.from_grammar()
    path = tmp_path / "vocab.json"
    vocabulary.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["tokens"] == list(vocabulary.tokens)
    loaded = Vocabulary.load(path)
    assert loaded == vocabulary
    formula = random_formulas(1, seed=3)[0]
    assert loaded.encode(formula) == vocabulary.encode(formula)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_vocabulary_load_rejects_other_json(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something-else", "tokens": []}))
    with pytest.raises(ValueError, match="other.json.*format=.*Received: 'something-else'"):
        Vocabulary.load(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="invalid JSON"):
        Vocabulary.load(path)


@pytest.mark.parametrize(
    "tokens, message", [(["x", "x"], "duplicates"), (["<pad>"], "special"), (["a b"], "whitespace")]
)
def test_vocabulary_rejects_bad_token_lists(tokens, message):
    with pytest.raises(ValueError, match=message):
        Vocabulary(tokens)


def test_vocabulary_from_formulas_counts_and_sorts():
    vocabulary = Vocabulary.from_formulas([r"x^2 + \alpha", "x + y"], min_count=2)
    assert vocabulary.tokens[4:] == ("+", "x")
