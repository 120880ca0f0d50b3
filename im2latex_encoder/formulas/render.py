"""Typeset a LaTeX formula into a fixed-height image with matplotlib's mathtext.

mathtext's Agg parser rasterizes straight into a numpy array (no figure per image: 150 to 250
64x512 images per second on one core), and it is the only LaTeX engine that ships with
matplotlib, so no TeX installation is needed. It parses ``\\frac``, ``\\sqrt[n]{}``, ``\\left( \\right)``,
``\\sum_{}^{}``, ``\\int``, accents and ``\\mathbf``, but not ``\\begin{...}``, ``\\\\``,
``\\big`` or ``\\displaystyle``.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.font_manager import FontProperties
from matplotlib.mathtext import MathTextParser

from im2latex_encoder.formulas.tokenizer import detokenize, tokenize_latex

#: Math font families mathtext ships (``"custom"`` needs rcParams, so it is left out).
FONTSETS = ("cm", "stix", "stixsans", "dejavusans", "dejavuserif")

_PARSER = MathTextParser("agg")


def render_formula(
    latex: str,
    *,
    height: int = 64,
    max_width: int = 512,
    width_bucket: int | None = None,
    fontset: str = "cm",
    fontsize: float = 14.0,
    dpi: int = 100,
    margin: int = 4,
) -> np.ndarray:
    """Typeset `latex` into a float32 image, ink 1.0 on background 0.0.

    The formula is first re-joined without spaces (``detokenize(tokenize_latex(latex))``):
    mathtext drops the limits of ``\\int _ { 0 }`` when a space separates the operator from its
    ``_``, so the space-separated normalized strings would otherwise typeset wrongly. It is then
    typeset at `fontsize` points and `dpi`, so glyphs have the same size from
    formula to formula; a formula that does not fit in ``height x max_width`` (less `margin` on
    each side) is typeset again at a smaller size, keeping its aspect ratio. It is centered
    vertically and left-aligned. The width is `max_width` when `width_bucket` is None, otherwise
    the formula's width rounded up to a multiple of `width_bucket` (at most `max_width`).

    Args:
        latex: str. Math-mode LaTeX without ``$`` delimiters, e.g. ``r"\\frac{a}{b}"``.
        height: int. Image height in pixels.
        max_width: int. Image width (or the widest image when `width_bucket` is set).
        width_bucket: int or None. Pad the width to a multiple of this instead of `max_width`.
        fontset: str. One of `FONTSETS`.
        fontsize: float. Font size in points before any shrinking.
        dpi: int. Dots per inch; pixels per point are ``dpi / 72``.
        margin: int. Blank pixels kept around the ink.

    Returns:
        A float32 array of shape ``(height, width)``, values in [0, 1].

    Raises:
        ValueError: if mathtext cannot parse `latex` (the message names the formula), or an
            argument is out of range.

    Example:
    >>> image = render_formula(r"\\frac{a}{b} + \\sqrt[3]{x}")
    >>> image.shape, image.dtype, float(image.max())
    ((64, 512), dtype('float32'), 1.0)
    >>> render_formula("x^2", width_bucket=32).shape
    (64, 32)
    """
    _check_arguments(height, max_width, width_bucket, fontset, fontsize, dpi, margin)
    if not isinstance(latex, str) or not latex.strip():
        raise ValueError(f"`latex` must be a non-empty LaTeX string. Received: latex={latex!r}")
    room_height, room_width = height - 2 * margin, max_width - 2 * margin
    latex = detokenize(tokenize_latex(latex))
    ink = _rasterize(latex, fontset, fontsize, dpi)
    scale = min(room_height / ink.shape[0], room_width / ink.shape[1])
    # Shrink by re-typesetting (crisper than resampling). Glyph hinting makes the size not
    # exactly proportional to the dpi, so aim 2% low and repeat until it fits.
    for _ in range(20):
        if scale >= 1.0:
            break
        dpi = dpi * scale * 0.98
        ink = _rasterize(latex, fontset, fontsize, dpi)
        scale = min(room_height / ink.shape[0], room_width / ink.shape[1])
    else:
        raise ValueError(
            f"The formula does not fit in {height}x{max_width} pixels with "
            f"margin={margin}, even shrunk. Received: latex={latex!r}"
        )
    width = max_width
    if width_bucket is not None:
        width = min(max_width, width_bucket * math.ceil((ink.shape[1] + 2 * margin) / width_bucket))
    image = np.zeros((height, width), np.float32)
    top = (height - ink.shape[0]) // 2
    image[top : top + ink.shape[0], margin : margin + ink.shape[1]] = ink * np.float32(1 / 255)
    return image


def _rasterize(latex: str, fontset: str, fontsize: float, dpi: float) -> np.ndarray:
    """The formula's ink as uint8 (0..255), cropped to its bounding box."""
    prop = FontProperties(size=fontsize, math_fontfamily=fontset)
    try:
        parsed = _PARSER.parse(f"${latex}$", dpi=dpi, prop=prop)
    except ValueError as error:  # pyparsing's ParseFatalException arrives as a ValueError
        reason = " ".join(str(error).split())
        raise ValueError(
            f"matplotlib mathtext cannot parse the formula. Expected LaTeX that mathtext "
            f"supports (no \\begin, \\\\, \\big, \\displaystyle). Received: latex={latex!r} "
            f"({reason})"
        ) from None
    image = np.asarray(parsed.image)
    rows, columns = np.nonzero(image)
    if rows.size == 0:
        raise ValueError(f"The formula typesets to a blank image. Received: latex={latex!r}")
    return image[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]


def _check_arguments(height, max_width, width_bucket, fontset, fontsize, dpi, margin) -> None:
    if fontset not in FONTSETS:
        raise ValueError(f"`fontset` must be one of {FONTSETS}. Received: fontset={fontset!r}")
    if not isinstance(margin, int) or margin < 0:
        raise ValueError(f"`margin` must be an int >= 0. Received: margin={margin!r}")
    for name, value in (("height", height), ("max_width", max_width)):
        if not isinstance(value, int) or value <= 2 * margin + 4:
            raise ValueError(
                f"`{name}` must be an int > 2 * margin + 4 = {2 * margin + 4}. "
                f"Received: {name}={value!r}"
            )
    if width_bucket is not None and (not isinstance(width_bucket, int) or width_bucket < 1):
        raise ValueError(
            f"`width_bucket` must be None or an int >= 1. Received: width_bucket={width_bucket!r}"
        )
    if not fontsize > 0 or not dpi > 0:
        raise ValueError(
            f"`fontsize` and `dpi` must be > 0. Received: fontsize={fontsize!r}, dpi={dpi!r}"
        )
