import numpy as np
import pytest

from im2latex_encoder.formulas.grammar import random_formulas
from im2latex_encoder.formulas.render import FONTSETS, render_formula


def test_image_contract():
    image = render_formula(r"\frac{a}{b} + \sqrt[3]{x}")
    assert image.shape == (64, 512) and image.dtype == np.float32
    assert image.min() == 0.0 and image.max() == 1.0
    assert image[:, :4].max() == 0 and image[:4].max() == 0 and image[-4:].max() == 0  # margins


def test_200_random_formulas_all_render_in_every_fontset():
    formulas = random_formulas(200, seed=123)
    for index, formula in enumerate(formulas):
        image = render_formula(formula, fontset=FONTSETS[index % len(FONTSETS)])
        assert image.shape == (64, 512)
        assert image.sum() > 5, formula


def test_spaced_normalized_form_typesets_like_the_compact_form():
    # mathtext drops the limits of "\int _ { 0 }" if given the spaces; render_formula compacts.
    spaced = render_formula(r"\int _ { 0 } ^ { 1 } x d x")
    assert np.array_equal(spaced, render_formula(r"\int_{0}^{1}xdx"))
    assert not np.array_equal(spaced, render_formula(r"\int 0 1 x d x"))


def test_width_bucket_pads_to_a_multiple():
    narrow = render_formula("x", width_bucket=32)
    wide = render_formula("x+y+z+a+b+c+d", width_bucket=32)
    assert narrow.shape == (64, 32)
    assert wide.shape[1] % 32 == 0 and wide.shape[1] > 32


def test_too_large_formulas_are_shrunk_to_fit():
    tall = r"\frac{\frac{\frac{a}{b}}{\frac{c}{d}}}{\frac{\frac{e}{f}}{\frac{g}{h}}}"
    long = "+".join(f"x_{{{i % 10}}}" for i in range(80))
    for latex in (tall, long):
        image = render_formula(latex, height=32, max_width=256, margin=2)
        assert image.shape == (32, 256)
        assert image[:2].max() == 0 and image[-2:].max() == 0 and image[:, -2:].max() == 0
        assert image.sum() > 20


def test_unparseable_formula_raises_with_the_formula():
    with pytest.raises(ValueError, match=r"mathtext cannot parse.*begin\{matrix\}"):
        render_formula(r"\begin{matrix} a \end{matrix}")
    with pytest.raises(ValueError, match="non-empty"):
        render_formula("  ")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fontset": "comic"}, "fontset='comic'"),
        ({"height": 8}, "height=8"),
        ({"width_bucket": 0}, "width_bucket=0"),
        ({"fontsize": -1.0}, "fontsize=-1.0"),
    ],
)
def test_invalid_arguments_say_what_was_received(kwargs, message):
    with pytest.raises(ValueError, match=f"Received.*{message}"):
        render_formula("x", **kwargs)
