"""Turn one font glyph into one image that looks drawn by hand.

Each sample gets a random affine warp (size, aspect, rotation, slant), a smooth elastic warp made
of a few random sine waves, and a random pen width. The warps move the glyph's points, not its
pixels, so a sample costs one `cv2.polylines` (or `cv2.fillPoly`) call. `render_glyph_batch`
(what `SyntheticSymbols.sample_batch` uses) warps and fits a whole batch in a few numpy calls:
about 18,000 images/s at 32x32 and 11,000 at 128x128 on one core of this project's machine
(twice the per-image loop), against 100-700 images/s for a matplotlib call per image.

Two layouts:

- ``"fit"`` scales the glyph by its larger extent to fill the image less a margin and centres it,
  exactly as CROHME InkML strokes are rendered (`render_strokes`). Case pairs such as ``c``/``C``
  and ``o``/``0`` become the same shape, as they are in CROHME renders themselves.
- ``"baseline"`` draws at a fixed em size on a fixed baseline, centred horizontally only, so size
  and position keep case and ``.``/``o`` apart.

Two inks: ``"pen"`` draws the glyph's centre line with a round constant-width pen (like the InkML
renderer's polylines); ``"font"`` fills the font outline (thick/thin contrast).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import cv2
import numpy as np

from im2latex_encoder.data.glyphs import Glyph
from im2latex_encoder.data.render import render_strokes_batch_uint8

LAYOUTS = ("fit", "baseline")
INKS = ("pen", "font")

_SHIFT = 4  # sub-pixel bits for cv2's fixed-point coordinates
_SCALE = float(1 << _SHIFT)
_ELASTIC_WAVES_PER_EM = (1.5, 4.0)  # spatial frequency range of the elastic sine waves
_ELASTIC_AMPLITUDE = 0.025  # times the glyph size
_PIECE_JITTER = 0.03  # standard deviation of a separate piece's offset, times the glyph size
_MIN_EXTENT_EM = 0.3  # a dot is scaled like a 0.3 em scribble, not blown up to the full image
_BASELINE_EM = 0.42  # em size as a fraction of the image height in the baseline layout
_BASELINE_Y = 0.68  # baseline position from the top, as a fraction of the height
_BASELINE_MAX_HEIGHT_EM = 1.6  # cm draws \int and \sum display-size; cap them
_MATH_AXIS_EM = 0.25


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}. Received: {name}={value!r}")


def _draw_elastic(rng: np.random.Generator, amplitude: float):
    """Draw a smooth random displacement field: three sine waves of random direction.

    Returns None for no displacement (`amplitude` 0), else the raw draws ``(directions (3, 2),
    waves per em (3,), phases (3,), displacement directions (3, 2), amplitude)``; `_warp`
    normalises the directions and scales the frequencies for the whole batch at once.
    """
    if amplitude <= 0:
        return None
    directions = rng.normal(size=(3, 2))
    waves_per_em = rng.uniform(*_ELASTIC_WAVES_PER_EM, size=3)
    phases = rng.uniform(0, 2 * math.pi, size=3)
    displacement_dirs = rng.normal(size=(3, 2))
    return directions, waves_per_em, phases, displacement_dirs, amplitude


def _scribble(centre: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A hand-drawn dot: a tiny arc or loop, not a point (a pen never lands on one point)."""
    radius = 0.035 * rng.uniform(0.5, 1.5)
    start = rng.uniform(0, 2 * math.pi)
    angles = start + np.linspace(0, rng.uniform(0.5, 2.2) * math.pi, 6)
    arc = np.stack([np.cos(angles), np.sin(angles) * rng.uniform(0.4, 1.0)], 1)
    return (centre + radius * arc).astype(np.float32)


def _affine(rng: np.random.Generator, strength: float) -> np.ndarray:
    angle = math.radians(rng.uniform(-8, 8) * strength)
    slant = rng.uniform(-0.25, 0.25) * strength
    aspect = math.exp(rng.uniform(-0.15, 0.15) * strength)
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    shear = np.array([[aspect, slant], [0.0, 1.0 / aspect]])
    return rotation @ shear


class _HandWarp(NamedTuple):
    """The random draws that make one glyph look hand-drawn (see `_draw_hand_warp`)."""

    points: np.ndarray  # float64 (n, 2), em units, y up; dots already replaced by scribbles
    sizes: list  # points per stroke (pen) or per polygon (font)
    centre: np.ndarray  # (2,) centre of the points' bounding box
    matrix: np.ndarray  # (2, 2) affine warp
    shifts: np.ndarray | None  # (n, 2) offsets of separate pieces, or None
    elastic: tuple | None  # `_draw_elastic`'s field, or None


def _draw_hand_warp(
    glyph: Glyph, rng: np.random.Generator, ink: str, distortion: float
) -> _HandWarp:
    """Draw one sample's warps; consumes `rng` exactly as one `render_glyph` call does first."""
    if ink == "pen":
        points, sizes, low, high = glyph.pen_geometry
        if glyph.dot_indices and distortion > 0:
            strokes = list(glyph.strokes)
            for index in glyph.dot_indices:
                strokes[index] = _scribble(strokes[index][0], rng)
            sizes = [len(s) for s in strokes]
            points = np.concatenate(strokes).astype(np.float64)
            low, high = points.min(axis=0), points.max(axis=0)
    else:
        sizes = [len(p) for p in glyph.outline]
        points = np.concatenate(glyph.outline).astype(np.float64)
        low, high = points.min(axis=0), points.max(axis=0)
    # Warp in em units around the glyph's centre, so the warps do not move it off the baseline.
    centre = (low + high) / 2
    extent = float(max(high[0] - low[0], high[1] - low[1], _MIN_EXTENT_EM))
    matrix = _affine(rng, distortion)
    shifts = None
    if ink == "pen" and len(set(glyph.components)) > 1 and distortion > 0:
        # Separate pieces (the bars of "=", the dot of "i") are placed by hand independently.
        piece = np.repeat(np.asarray(glyph.components), sizes)
        shifts = rng.normal(0.0, _PIECE_JITTER * distortion * extent, size=(piece.max() + 1, 2))[
            piece
        ]
    elastic = _draw_elastic(rng, _ELASTIC_AMPLITUDE * distortion * extent)
    return _HandWarp(points, sizes, centre, matrix, shifts, elastic)


def _warp(warps: Sequence[_HandWarp]) -> np.ndarray:
    """Apply each sample's warps to its points, all samples in one go: float64 `(N, 2)`.

    Vectorised over the batch by hand (numpy has no batched small-matrix warp): per-sample
    numpy calls cost more than the arithmetic at these sizes.
    """
    counts = [len(w.points) for w in warps]
    sample = np.repeat(np.arange(len(warps)), counts)
    points = np.concatenate([w.points for w in warps]) - np.array([w.centre for w in warps])[sample]
    matrices = np.array([w.matrix for w in warps])[sample]
    points = np.einsum("nj,nij->ni", points, matrices)
    if any(w.shifts is not None for w in warps):
        points = points + np.concatenate(
            [np.zeros_like(w.points) if w.shifts is None else w.shifts for w in warps]
        )
    if any(w.elastic is not None for w in warps):
        none = (np.ones((3, 2)), np.zeros(3), np.zeros(3), np.zeros((3, 2)), 0.0)
        fields = [none if w.elastic is None else w.elastic for w in warps]
        directions, waves_per_em, phases, displacements = (
            np.array([f[k] for f in fields]) for k in range(4)
        )
        directions /= np.sqrt((directions * directions).sum(axis=2, keepdims=True))
        frequencies = waves_per_em * 2 * math.pi
        amplitudes = np.array([f[4] for f in fields])[sample][:, None]
        waves = np.sin(
            np.einsum("nj,nkj->nk", points, directions[sample]) * frequencies[sample]
            + phases[sample]
        )
        points = points + amplitudes * np.einsum(
            "nk,nkj->nj", waves, displacements[sample]
        ) / math.sqrt(3)
    return points


def render_glyph_batch(
    glyph_for: Callable[[int, np.random.Generator], Glyph],
    count: int,
    image_size: tuple[int, int],
    rng: np.random.Generator,
    *,
    distortion: float = 1.0,
    margin: float = 0.1,
    line_width: float = 0.04,
) -> np.ndarray:
    """Draw `count` glyphs in the ``"fit"`` layout with ``"pen"`` ink; uint8 `(count, H, W)`.

    The same images as `count` calls of `render_glyph` with the same `rng` (sample `i`'s glyph
    chosen by ``glyph_for(i, rng)`` just before its own draws), about twice as fast: the
    warps and the fitting run once for the whole batch, and only the drawing is per image.

    Args:
        glyph_for: callable ``(i, rng) -> Glyph``. Picks sample `i`'s glyph (it may draw from
            `rng`, e.g. a font and a style).
        count: int. Number of images.
        image_size: `(height, width)` in pixels.
        rng: `np.random.Generator`. The only source of randomness.
        distortion, margin, line_width: as in `render_glyph`.

    Example:
    >>> from im2latex_encoder.data.glyphs import glyph_table
    >>> glyphs = [glyph_table("cm")["x"][0], glyph_table("cm")["="][0]]
    >>> images = render_glyph_batch(lambda i, rng: glyphs[i], 2, (32, 32),
    ...                             np.random.default_rng(0))
    >>> images.shape, images.dtype
    ((2, 32, 32), dtype('uint8'))
    >>> again = [render_glyph(g, (32, 32), rng) for rng in [np.random.default_rng(0)]
    ...          for g in glyphs]
    >>> bool((images == np.stack(again)).all())
    True
    """
    height, width = image_size
    warps, pens = [], []
    for i in range(count):
        warps.append(_draw_hand_warp(glyph_for(i, rng), rng, "pen", distortion))
        pens.append(line_width * math.exp(rng.uniform(-0.3, 0.3) * distortion))
    points = _warp(warps) * [1.0, -1.0]  # InkML's y points down
    return render_strokes_batch_uint8(
        points, [w.sizes for w in warps], (height, width), margin=margin, line_widths=pens
    )


def render_glyph(
    glyph: Glyph,
    image_size: tuple[int, int],
    rng: np.random.Generator,
    *,
    layout: str = "fit",
    ink: str = "pen",
    distortion: float = 1.0,
    margin: float = 0.1,
    line_width: float = 0.04,
) -> np.ndarray:
    """Draw one glyph with random hand-like distortions; return uint8 `(H, W)`, 255 = ink.

    Args:
        glyph: `Glyph`. The symbol's outline and centre line (see `glyph_table`).
        image_size: `(height, width)` in pixels.
        rng: `np.random.Generator`. The only source of randomness (same state, same image).
        layout: str. ``"fit"`` (fill the image like the InkML renderer) or ``"baseline"``.
        ink: str. ``"pen"`` (constant-width centre line) or ``"font"`` (filled outline).
        distortion: float. Scales every random warp; 0 draws the plain glyph.
        margin: float. Blank border as a fraction of the image side (``"fit"`` layout).
        line_width: float. Mean pen width as a fraction of the smaller image side.

    Example:
    >>> from im2latex_encoder.data.glyphs import glyph_table
    >>> image = render_glyph(glyph_table("cm")["x"][0], (64, 64), np.random.default_rng(0))
    >>> image.shape, image.dtype, image.max()
    ((64, 64), dtype('uint8'), np.uint8(255))
    """
    _check_choice("layout", layout, LAYOUTS)
    _check_choice("ink", ink, INKS)
    height, width = image_size
    if layout == "fit" and ink == "pen":
        # Exactly the InkML renderer, so synthetic and real symbols share one drawing.
        return render_glyph_batch(
            lambda i, rng: glyph,
            1,
            (height, width),
            rng,
            distortion=distortion,
            margin=margin,
            line_width=line_width,
        )[0]
    warp = _draw_hand_warp(glyph, rng, ink, distortion)
    sizes, centre = warp.sizes, warp.centre
    points = _warp([warp])

    # em units (y up) -> pixels (y down)
    low, high = points.min(axis=0), points.max(axis=0)
    if layout == "fit":
        box = (1 - 2 * margin) * np.array([width, height], np.float64)
        scale = float(np.min(box / np.maximum(high - low, _MIN_EXTENT_EM)))
        jitter = rng.uniform(-0.02, 0.02, size=2) * distortion * [width, height]
        offset = np.array([width, height]) / 2 + jitter
        pixel_centre = (low + high) / 2
    else:
        em = _BASELINE_EM * height * math.exp(rng.uniform(-0.08, 0.08) * distortion)
        baseline = _BASELINE_Y * height + rng.uniform(-0.04, 0.04) * distortion * height
        shrink = min(1.0, _BASELINE_MAX_HEIGHT_EM / max(float(high[1] - low[1]), 1e-9))
        scale = em * shrink
        if shrink < 1.0:  # a display-size operator: shrink it and centre it on the math axis
            pixel_centre = (low + high) / 2
            offset = np.array([width / 2, baseline - _MATH_AXIS_EM * em])
        else:  # keep the glyph's own height above the baseline
            pixel_centre = np.array([(low[0] + high[0]) / 2, -centre[1]])
            offset = np.array([width / 2, baseline])
    xy = (points - pixel_centre) * [scale, -scale] + offset
    fixed = np.round(xy * _SCALE).astype(np.int32)

    image = np.zeros((height, width), np.uint8)
    if ink == "pen":
        # In the baseline layout glyphs are about half as tall as a fitted one: a thinner pen.
        pen = line_width * min(height, width) * (1.0 if layout == "fit" else 0.6)
        pen *= math.exp(rng.uniform(-0.3, 0.3) * distortion)
        thickness = max(1, int(round(pen)))
        strokes = np.split(fixed, np.cumsum(sizes)[:-1])
        cv2.polylines(image, strokes, False, 255, thickness, cv2.LINE_AA, _SHIFT)
    else:
        polygons = np.split(fixed, np.cumsum(sizes)[:-1])
        cv2.fillPoly(image, polygons, 255, cv2.LINE_AA, _SHIFT)
    return image
