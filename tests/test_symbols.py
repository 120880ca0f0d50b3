import pytest

from im2latex_encoder import CROHME_SYMBOLS, crohme_labels, symbol_to_latex


def test_101_classes_in_sorted_order():
    assert len(CROHME_SYMBOLS) == 101
    assert list(CROHME_SYMBOLS) == sorted(CROHME_SYMBOLS)
    assert len(set(CROHME_SYMBOLS)) == 101
    for name in ("COMMA", "\\lt", "\\gt", "\\ldots", "\\{", "\\}", "|", "!", "\\prime"):
        assert name in CROHME_SYMBOLS
    assert "junk" not in CROHME_SYMBOLS


def test_latex_of_crohme_spellings():
    assert symbol_to_latex("COMMA") == ","
    assert symbol_to_latex("\\lt") == "<"
    assert symbol_to_latex("\\gt") == ">"
    assert symbol_to_latex("\\alpha") == "\\alpha"
    assert symbol_to_latex("junk") == ""


def test_unknown_symbol_is_refused_with_what_was_received():
    with pytest.raises(ValueError, match=r"Received: symbol='\\\\foo'"):
        symbol_to_latex("\\foo")


def test_junk_is_optional_and_last():
    assert crohme_labels() == CROHME_SYMBOLS
    assert crohme_labels(include_junk=True) == CROHME_SYMBOLS + ("junk",)
