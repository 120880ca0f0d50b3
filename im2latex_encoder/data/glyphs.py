"""Glyph shapes of the 101 CROHME symbols, taken once from matplotlib's math fonts.

A glyph is stored twice, both in em units with y pointing up and the baseline at y=0:

- its filled outline (the font's polygons, curves flattened by matplotlib), and
- its centre line: the skeleton of the filled glyph rasterised at `_SKELETON_PX_PER_EM`, traced
  into polylines and simplified. Drawing them with a round, constant-width pen gives a stroke
  like a pen trace, which is how real CROHME InkML symbols are rendered (constant-width
  polylines), instead of a font's thick/thin contrast.

Building every glyph of one font takes about 1-2 s (mathtext layout plus skeletonisation); the
tables are built lazily, once per process and font, and kept in memory (a few MB in all).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import warnings

import cv2
import matplotlib
import numpy as np
from matplotlib.font_manager import FontProperties, fontManager
from matplotlib.textpath import TextPath
from skimage.measure import label as label_components
from skimage.morphology import skeletonize

from im2latex_encoder.symbols import CROHME_SYMBOLS, symbol_to_latex

#: The math fontsets matplotlib ships with (always available).
BUILTIN_FONTSETS = ("cm", "stix", "stixsans", "dejavusans", "dejavuserif")

# OpenType math fonts matplotlib may find on the machine; each is used through mathtext's
# "custom" fontset, with STIX as the fallback for any glyph the font lacks.
_KNOWN_MATH_FAMILIES = (
    "DejaVu Math TeX Gyre",
    "Latin Modern Math",
    "STIX Two Math",
    "TeX Gyre Termes Math",
    "TeX Gyre Pagella Math",
    "TeX Gyre Schola Math",
    "TeX Gyre Bonum Math",
    "Libertinus Math",
    "Fira Math",
    "Noto Sans Math",
)

_FUNCTION_WORDS = ("\\sin", "\\cos", "\\tan", "\\log", "\\lim")
# Over an empty box cm's radical is tiny; a \vert gives it full height and is removed later.
_SQRT_MATHTEXT = "$\\sqrt{\\ \\vert\\ }$"
_SKELETON_PX_PER_EM = 96
_DOT_MAX_EM = 0.06  # a stroke this small is a dot (thinning leaves one to three pixels)
_SPUR_MAX_PX = 9  # 0.09 em: serifs and thinning artefacts, shorter than any real stroke part
# Densify outlines and strokes so elastic warps bend straight edges too.
_OUTLINE_MAX_STEP_EM = 0.03
_STROKE_MAX_STEP_EM = 0.08


@dataclasses.dataclass(frozen=True)
class Glyph:
    """One symbol in one font and style, in em units (y up, baseline at 0).

    Args:
        symbol: str. The CROHME class name.
        font: str. The font name (see `available_fonts`).
        outline: list of float32 arrays `(n, 2)`: closed polygons of the filled glyph.
        strokes: list of float32 arrays `(n, 2)`: the centre line as open polylines (a dot is
            a polyline of two equal points).
        components: tuple of int, one per stroke: strokes with the same number touch (one
            connected piece of ink, e.g. the two bars of "=" are two components).

    Example:
    >>> g = glyph_table("cm")["-"][0]
    >>> len(g.strokes), g.width > 3 * g.height
    (1, True)
    """

    symbol: str
    font: str
    outline: list = dataclasses.field(repr=False)
    strokes: list = dataclasses.field(repr=False)
    components: tuple = dataclasses.field(repr=False, default=())

    @functools.cached_property
    def points(self) -> np.ndarray:
        """All stroke points, `(n, 2)`, stroke after stroke.

        Example:
        >>> g = glyph_table("cm")["="][0]
        >>> len(g.points) == sum(len(s) for s in g.strokes)
        True
        """
        return np.concatenate(self.strokes)

    @functools.cached_property
    def dot_indices(self) -> tuple[int, ...]:
        """Indices of the strokes that are dots (smaller than `_DOT_MAX_EM` either way).

        Example:
        >>> len(glyph_table("stix")["\\ldots"][0].dot_indices)
        3
        """
        return tuple(i for i, s in enumerate(self.strokes) if np.ptp(s, axis=0).max() < _DOT_MAX_EM)

    @functools.cached_property
    def pen_geometry(self) -> tuple:
        """The centre line as hand-drawn samples start from it (computed once per glyph).

        Returns:
            ``(points, sizes, low, high)``: all stroke points as float64 `(n, 2)`, the point
            count of each stroke, and the lower and upper corners of their bounding box.

        Example:
        >>> points, sizes, low, high = glyph_table("cm")["="][0].pen_geometry
        >>> points.dtype, len(sizes), bool((low <= high).all())
        (dtype('float64'), 2, True)
        """
        points = self.points.astype(np.float64)
        return points, [len(s) for s in self.strokes], points.min(axis=0), points.max(axis=0)

    @functools.cached_property
    def width(self) -> float:
        return float(np.ptp(self.points[:, 0]))

    @functools.cached_property
    def height(self) -> float:
        return float(np.ptp(self.points[:, 1]))


def symbol_mathtext(symbol: str, style: str = "default") -> str:
    """Return the mathtext string that draws a CROHME symbol.

    Function names (``\\sin \\cos \\tan \\log \\lim``) are one symbol in CROHME and are drawn as
    the word (``"roman"`` or ``"italic"`` style). ``\\sqrt`` alone is tiny in mathtext, so it
    is drawn over a tall ``\\vert`` (`build_glyph` removes the bar again), which gives a
    full-height radical with its overbar in every fontset. Latin letters come in the
    fonts' math italic (``"default"``) and upright (``"roman"``).

    Args:
        symbol: str. A CROHME class name.
        style: str. ``"default"``, ``"roman"`` or ``"italic"`` (see `glyph_styles`).

    Example:
    >>> symbol_mathtext("COMMA"), symbol_mathtext("\\\\sin"), symbol_mathtext("x", "roman")
    ('$,$', '$\\\\mathrm{sin}$', '$\\\\mathrm{x}$')
    """
    if style not in glyph_styles(symbol):
        raise ValueError(
            f"`style` must be one of {glyph_styles(symbol)} for symbol={symbol!r}. "
            f"Received: style={style!r}"
        )
    latex = symbol_to_latex(symbol)
    if symbol in _FUNCTION_WORDS:
        word = symbol[1:]
        return f"$\\mathrm{{{word}}}$" if style in ("default", "roman") else f"$\\mathit{{{word}}}$"
    if symbol == "\\sqrt":
        return _SQRT_MATHTEXT
    if style == "roman":
        return f"$\\mathrm{{{latex}}}$"
    return f"${latex}$"


def glyph_styles(symbol: str) -> tuple[str, ...]:
    """Return the drawing styles a symbol has: letters and function words have two.

    Example:
    >>> glyph_styles("x"), glyph_styles("\\\\sin"), glyph_styles("+")
    (('default', 'roman'), ('default', 'italic'), ('default',))
    """
    if symbol in _FUNCTION_WORDS:
        return ("default", "italic")
    if len(symbol) == 1 and symbol.isascii() and symbol.isalpha():
        return ("default", "roman")
    return ("default",)


@functools.lru_cache(maxsize=1)
def discovered_math_fonts() -> dict[str, str]:
    """Return the OpenType math fonts matplotlib finds on this machine: ``{name: family}``.

    The name is the family in lower case without spaces (``"dejavumathtexgyre"``). Which fonts
    exist depends on the machine, so they only ever join the training split.

    Example:
    >>> all(name == family.lower().replace(" ", "") for name, family in
    ...     discovered_math_fonts().items())
    True
    """
    families = {entry.name for entry in fontManager.ttflist}
    return {
        family.lower().replace(" ", ""): family
        for family in _KNOWN_MATH_FAMILIES
        if family in families
    }


def available_fonts() -> tuple[str, ...]:
    """Return every font name glyphs can be drawn in: the built-in fontsets, then found ones.

    Example:
    >>> available_fonts()[:5]
    ('cm', 'stix', 'stixsans', 'dejavusans', 'dejavuserif')
    """
    return BUILTIN_FONTSETS + tuple(sorted(discovered_math_fonts()))


def _font_context(font: str) -> tuple[dict, str]:
    if font in BUILTIN_FONTSETS:
        return {}, font
    family = discovered_math_fonts().get(font)
    if family is None:
        raise ValueError(f"`font` must be one of {available_fonts()}. Received: font={font!r}")
    return (
        {
            "mathtext.fontset": "custom",
            "mathtext.rm": family,
            "mathtext.it": f"{family}:italic",
            "mathtext.bf": f"{family}:bold",
            "mathtext.sf": family,
            "mathtext.fallback": "stix",
        },
        "custom",
    )


def _densify(polygon: np.ndarray, max_step: float) -> np.ndarray:
    closed = np.concatenate([polygon, polygon[:1]])
    steps = np.maximum(1, np.ceil(np.linalg.norm(np.diff(closed, axis=0), axis=1) / max_step))
    pieces = [
        start + (end - start) * (np.arange(n)[:, None] / n)
        for start, end, n in zip(closed[:-1], closed[1:], steps.astype(int))
    ]
    return np.concatenate(pieces).astype(np.float32)


def _skeleton_pixels(outline: list, px_per_em: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterise the filled glyph and thin it to one-pixel lines: `(mask, low, high)`."""
    points = np.concatenate(outline)
    low = points.min(axis=0) - 0.1
    high = points.max(axis=0) + 0.1
    width, height = np.ceil((high - low) * px_per_em).astype(int) + 1
    mask = np.zeros((height, width), np.uint8)
    polygons = [
        np.round(((p - low) * [1, -1] + [0, high[1] - low[1]]) * px_per_em * 16).astype(np.int32)
        for p in outline
    ]
    cv2.fillPoly(mask, polygons, 1, lineType=cv2.LINE_8, shift=4)
    skeleton = skeletonize(mask.astype(bool))
    if not skeleton.any():  # thinner than a pixel at this resolution: keep its rasterised outline
        skeleton = mask.astype(bool)
    return skeleton, low, high


def _trace_strokes(skeleton: np.ndarray) -> list[np.ndarray]:
    """Walk the skeleton's 8-connected pixel graph into pixel polylines (x, y), one per stroke.

    Written by hand because skimage has no skeleton-to-polyline tracer: start at ends and
    junctions, follow unused links until none is left, then pick up the closed loops.
    """
    ys, xs = np.nonzero(skeleton)
    pixels = set(zip(xs.tolist(), ys.tolist()))
    neighbours = {}
    for x, y in pixels:
        around = [
            (x + dx, y + dy)
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))
            if (x + dx, y + dy) in pixels
        ]
        for dx, dy in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            # A diagonal link is redundant where an orthogonal path joins the same two pixels.
            corner_free = (x + dx, y) not in pixels and (x, y + dy) not in pixels
            if (x + dx, y + dy) in pixels and corner_free:
                around.append((x + dx, y + dy))
        neighbours[(x, y)] = around
    used = set()
    strokes = []
    starts = sorted(pixels, key=lambda p: (len(neighbours[p]) == 2, p[1], p[0]))
    for start in starts:
        if not neighbours[start]:
            strokes.append(np.array([start, start], np.float64))  # a lone pixel is a dot
            continue
        while True:
            path = [start]
            current = start
            while True:
                step = next(
                    (n for n in neighbours[current] if frozenset((current, n)) not in used), None
                )
                if step is None:
                    break
                used.add(frozenset((current, step)))
                path.append(step)
                current = step
            if len(path) == 1:
                break
            strokes.append(np.array(path, np.float64))
    return _prune_spurs(strokes, {p: len(n) for p, n in neighbours.items()})


def _prune_spurs(strokes: list[np.ndarray], degree: dict) -> list[np.ndarray]:
    """Drop short twigs from a free end to a junction: serifs and corner artefacts of thinning.

    Handwriting has no serifs, and the font's serifs would teach the model a cue real
    symbols lack (a cm "1" with a foot looks like "L" to it).
    """

    def is_spur(path):
        ends = sorted((degree[tuple(map(int, path[0]))], degree[tuple(map(int, path[-1]))]))
        return ends[0] == 1 and ends[1] >= 3 and len(path) <= _SPUR_MAX_PX

    kept = [path for path in strokes if not is_spur(path)]
    return kept or strokes


def _skeleton_strokes(outline: list, px_per_em: int) -> tuple[list, tuple[int, ...]]:
    skeleton, low, high = _skeleton_pixels(outline, px_per_em)
    components = label_components(skeleton, connectivity=2)
    strokes, stroke_components = [], []
    for pixels in _trace_strokes(skeleton):
        stroke_components.append(int(components[int(pixels[0, 1]), int(pixels[0, 0])]))
        if len(pixels) > 2:  # fewer vertices make drawing fast; 0.6 px keeps the curves
            simple = cv2.approxPolyDP(pixels.astype(np.float32)[:, None], 0.6, False)[:, 0]
            if len(simple) >= 2:
                pixels = simple.astype(np.float64)
        em = np.stack([pixels[:, 0] / px_per_em + low[0], high[1] - pixels[:, 1] / px_per_em], 1)
        strokes.append(_densify_open(em, _STROKE_MAX_STEP_EM))
    return strokes, tuple(stroke_components)


def _densify_open(polyline: np.ndarray, max_step: float) -> np.ndarray:
    steps = np.maximum(
        1, np.ceil(np.linalg.norm(np.diff(polyline, axis=0), axis=1) / max_step)
    ).astype(int)
    pieces = [
        start + (end - start) * (np.arange(n)[:, None] / n)
        for start, end, n in zip(polyline[:-1], polyline[1:], steps)
    ]
    return np.concatenate(pieces + [polyline[-1:]]).astype(np.float32)


def _drop_radicand(polygons: list) -> list:
    """Remove the ``\\vert`` under the radical: a narrow polygon in the right part."""
    right = max(float(p[:, 0].max()) for p in polygons)
    left = min(float(p[:, 0].min()) for p in polygons)
    return [
        p
        for p in polygons
        if not (np.ptp(p[:, 0]) < 0.15 and p[:, 0].min() > left + 0.4 * (right - left))
    ]


def build_glyph(symbol: str, font: str, style: str = "default") -> Glyph:
    """Lay out one symbol with mathtext and return its outline and centre line.

    Args:
        symbol: str. A CROHME class name.
        font: str. One of `available_fonts()`.
        style: str. One of `glyph_styles(symbol)`.

    Example:
    >>> g = build_glyph("=", "stix")
    >>> len(g.outline), g.width > g.height
    (2, True)
    """
    rc, fontset = _font_context(font)
    text = symbol_mathtext(symbol, style)
    with matplotlib.rc_context(rc), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prop = FontProperties(size=1, math_fontfamily=fontset)
        path = TextPath((0, 0), text, size=1.0, prop=prop)
        polygons = [np.asarray(p) for p in path.to_polygons(closed_only=True)]
        polygons = [p for p in polygons if len(p) >= 3]
    if symbol == "\\sqrt":
        polygons = _drop_radicand(polygons)
    if not polygons:
        raise ValueError(f"mathtext drew nothing for symbol={symbol!r} in font={font!r}")
    outline = [_densify(np.asarray(p[:-1], np.float64), _OUTLINE_MAX_STEP_EM) for p in polygons]
    strokes, components = _skeleton_strokes(outline, _SKELETON_PX_PER_EM)
    return Glyph(symbol=symbol, font=font, outline=outline, strokes=strokes, components=components)


@functools.cache
def glyph_table(font: str) -> dict[str, tuple[Glyph, ...]]:
    """Return every CROHME symbol's glyphs (one per style) in one font, built once per process.

    Example:
    >>> table = glyph_table("dejavusans")
    >>> len(table), len(table["x"])
    (101, 2)
    """
    if font not in available_fonts():
        raise ValueError(f"`font` must be one of {available_fonts()}. Received: font={font!r}")
    # Font fallbacks (e.g. no bold or italic face) are expected; keep matplotlib's log quiet.
    logger = logging.getLogger("matplotlib.font_manager")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return {
            symbol: tuple(build_glyph(symbol, font, style) for style in glyph_styles(symbol))
            for symbol in CROHME_SYMBOLS
        }
    finally:
        logger.setLevel(level)
