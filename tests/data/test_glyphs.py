"""Tests for im2latex_encoder/data/glyphs.py: glyph outlines and centre lines from mathtext."""

from __future__ import annotations

import numpy as np
import pytest

from im2latex_encoder.data.glyphs import (
    BUILTIN_FONTSETS,
    available_fonts,
    build_glyph,
    glyph_styles,
    glyph_table,
    symbol_mathtext,
)
from im2latex_encoder.symbols import CROHME_SYMBOLS


@pytest.mark.parametrize("font", available_fonts())
def test_every_symbol_has_an_outline_and_a_centre_line(font):
    table = glyph_table(font)
    assert tuple(table) == CROHME_SYMBOLS
    for symbol, glyphs in table.items():
        assert len(glyphs) == len(glyph_styles(symbol))
        for glyph in glyphs:
            assert glyph.outline and glyph.strokes, (font, symbol)
            assert all(s.ndim == 2 and s.shape[1] == 2 and len(s) >= 2 for s in glyph.strokes)
            assert np.isfinite(glyph.points).all()
            # a symbol is at most a few em wide or tall (display-size cm operators included)
            assert glyph.width < 3.0 and glyph.height < 3.0, (font, symbol)


def test_builtin_fontsets_come_first():
    assert available_fonts()[: len(BUILTIN_FONTSETS)] == BUILTIN_FONTSETS


@pytest.mark.parametrize("font", BUILTIN_FONTSETS)
def test_sqrt_is_a_full_radical_without_its_placeholder(font):
    glyph = build_glyph("\\sqrt", font)
    assert glyph.width > 1.0 and glyph.height > 0.8  # not the tiny radical over nothing
    narrow = [p for p in glyph.outline if np.ptp(p[:, 0]) < 0.15]
    assert narrow == []  # the \vert that gave the radical its height is gone


def test_function_words_are_words_and_dots_are_dots():
    sin = build_glyph("\\sin", "cm")
    assert sin.width > 1.5 * sin.height
    dots = build_glyph("\\ldots", "stix")
    assert len(dots.dot_indices) == 3 or len(dots.strokes) == 3
    assert build_glyph(".", "cm").height < 0.15


def test_symbol_mathtext_spells_crohme_names_and_checks_style():
    assert symbol_mathtext("\\lt") == "$<$"
    assert symbol_mathtext("\\{") == "$\\{$"
    assert symbol_mathtext("\\cos", "italic") == "$\\mathit{cos}$"
    with pytest.raises(ValueError, match="Received: style='roman'"):
        symbol_mathtext("+", "roman")


def test_unknown_font_is_rejected():
    with pytest.raises(ValueError, match="Received: font='comic'"):
        glyph_table("comic")
