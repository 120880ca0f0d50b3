"""Strokes -> image: ink 1.0 on background 0.0, centred, aspect ratio kept, anti-aliased.

Drawing uses OpenCV's anti-aliased polylines on a sub-pixel (shifted integer) grid, which is
fast enough to render thousands of symbols per second in one process.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import cv2
import numpy as np

#: Largest image side `render_strokes` accepts.
MAX_IMAGE_SIDE = 4096

_SHIFT = 4  # OpenCV's fixed-point sub-pixel bits: coordinates in 1/16 pixel
_ONE = 1 << _SHIFT

ImageSize = int | Sequence[int]


def image_shape(image_size: ImageSize) -> tuple[int, int]:
    """`(height, width)` of an `image_size` (an int or a pair of ints), checked.

    Example:
    >>> image_shape(48), image_shape((32, 64))
    ((48, 48), (32, 64))
    """
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        shape = (int(image_size), int(image_size))
    elif (
        isinstance(image_size, (tuple, list))
        and len(image_size) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in image_size)
    ):
        shape = (int(image_size[0]), int(image_size[1]))
    else:
        raise ValueError(
            "`image_size` must be an int or a (height, width) pair of ints. "
            f"Received: image_size={image_size!r}"
        )
    if not all(1 <= side <= MAX_IMAGE_SIDE for side in shape):
        raise ValueError(
            f"`image_size` sides must lie in [1, {MAX_IMAGE_SIDE}]. "
            f"Received: image_size={image_size!r}"
        )
    return shape


@dataclasses.dataclass(frozen=True)
class RenderSettings:
    """How strokes become images; part of a prepared cache's identity.

    Args:
        image_size: int or (height, width). Output size in pixels (stored as a pair).
        margin: float in [0, 0.5). Empty border on each side, as a fraction of that side.
        line_width: float in (0, 1]. Stroke width as a fraction of the image's shorter side.
        antialias: bool. Anti-aliased (grey-level) edges.

    Example:
    >>> settings = RenderSettings(image_size=64)
    >>> settings.to_dict()
    {'image_size': [64, 64], 'margin': 0.1, 'line_width': 0.04, 'antialias': True}
    >>> settings.render([np.array([[0.0, 0.0], [1.0, 1.0]])]).shape
    (64, 64)
    """

    image_size: tuple = (128, 128)
    margin: float = 0.1
    line_width: float = 0.04
    antialias: bool = True

    def __post_init__(self):
        object.__setattr__(self, "image_size", image_shape(self.image_size))
        if not 0.0 <= float(self.margin) < 0.5:
            raise ValueError(f"`margin` must lie in [0, 0.5). Received: margin={self.margin!r}")
        if not 0.0 < float(self.line_width) <= 1.0:
            raise ValueError(
                f"`line_width` must lie in (0, 1]. Received: line_width={self.line_width!r}"
            )
        object.__setattr__(self, "margin", float(self.margin))
        object.__setattr__(self, "line_width", float(self.line_width))
        object.__setattr__(self, "antialias", bool(self.antialias))

    def to_dict(self) -> dict:
        """A JSON-serialisable dict; `RenderSettings(**d)` rebuilds the settings.

        Example:
        >>> RenderSettings(**RenderSettings((32, 48)).to_dict()).image_size
        (32, 48)
        """
        return {
            "image_size": list(self.image_size),
            "margin": self.margin,
            "line_width": self.line_width,
            "antialias": self.antialias,
        }

    def render(self, strokes) -> np.ndarray:
        """Render `strokes` with these settings (see `render_strokes`).

        Example:
        >>> float(RenderSettings(16).render([np.zeros((1, 2))]).max())
        1.0
        """
        return render_strokes(
            strokes,
            self.image_size,
            margin=self.margin,
            line_width=self.line_width,
            antialias=self.antialias,
        )


def render_strokes_uint8(
    strokes,
    image_size: ImageSize = 128,
    *,
    margin: float = 0.1,
    line_width: float = 0.04,
    antialias: bool = True,
) -> np.ndarray:
    """Like `render_strokes`, but returns uint8 with 255 = ink (the cache's format).

    Example:
    >>> int(render_strokes_uint8([np.array([[0.0, 0.0], [1.0, 0.0]])], 64).max())
    255
    """
    shape = image_shape(image_size)
    if not 0.0 <= margin < 0.5:
        raise ValueError(f"`margin` must lie in [0, 0.5). Received: margin={margin!r}")
    if not 0.0 < line_width <= 1.0:
        raise ValueError(f"`line_width` must lie in (0, 1]. Received: line_width={line_width!r}")
    arrays = []
    for index, stroke in enumerate(strokes):
        if not (isinstance(stroke, np.ndarray) and stroke.dtype == np.float64):
            stroke = np.asarray(stroke, dtype=np.float64)
        if stroke.ndim != 2 or stroke.shape[1] != 2 or stroke.shape[0] == 0:
            raise ValueError(
                f"Each stroke must be an (n, 2) array with n >= 1. Received: "
                f"stroke {index} with shape {stroke.shape}"
            )
        arrays.append(stroke)
    if not arrays:
        raise ValueError("`strokes` must hold at least one stroke. Received: no strokes")
    points = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
    return render_strokes_batch_uint8(
        points,
        [[len(a) for a in arrays]],
        shape,
        margin=margin,
        line_widths=[line_width],
        antialias=antialias,
    )[0]


def render_strokes_batch_uint8(
    points: np.ndarray,
    stroke_sizes: Sequence[Sequence[int]],
    image_size: tuple[int, int],
    *,
    margin: float = 0.1,
    line_widths: Sequence[float] = (0.04,),
    antialias: bool = True,
    frames: Sequence[float] | None = None,
) -> np.ndarray:
    """Render many symbols' strokes at once; uint8 `(B, H, W)`, 255 = ink.

    Each symbol is fitted and drawn exactly as `render_strokes_uint8` draws it alone; the fitting
    and the conversion to OpenCV's fixed point run once for the whole batch (per-symbol numpy
    calls would cost more than their arithmetic). For trusted input: the points are not checked.

    Args:
        points: float64 `(N, 2)`: every stroke's points, symbol after symbol, stroke after
            stroke; X rightwards, Y downwards.
        stroke_sizes: one sequence per symbol of its strokes' point counts (each >= 1).
        image_size: `(height, width)`.
        margin: float in [0, 0.5). As in `render_strokes`.
        line_widths: one line width per symbol, as in `render_strokes`.
        antialias: bool.
        frames: one float per symbol, or None. The smallest extent (in the points' units)
            the box is fitted to: a symbol smaller than its frame is drawn that much smaller,
            centred, instead of filling the box (see `InkDataset.render`'s `context_scale`).

    Example:
    >>> points = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    >>> images = render_strokes_batch_uint8(points, [[2], [2]], (16, 16), line_widths=[0.1, 0.1])
    >>> images.shape, bool((images[1] == render_strokes_uint8([points[2:]], 16,
    ...                                                       line_width=0.1)).all())
    ((2, 16, 16), True)
    """
    height, width = image_size
    counts = [sum(sizes) for sizes in stroke_sizes]
    starts = np.cumsum([0] + counts[:-1])
    lows = np.minimum.reduceat(points, starts, axis=0).tolist()
    highs = np.maximum.reduceat(points, starts, axis=0).tolist()
    factors, offsets, thicknesses = [], [], []
    frames = [0.0] * len(counts) if frames is None else list(frames)
    for (x_low, y_low), (x_high, y_high), line_width, frame in zip(
        lows, highs, line_widths, frames
    ):
        x_extent, y_extent = x_high - x_low, y_high - y_low
        if not math.isfinite(x_extent) or not math.isfinite(y_extent):  # also NaN, inf
            raise ValueError(
                "Stroke coordinates must be finite (and their extent too). "
                "Received: NaN, inf or values too large to subtract"
            )
        thickness = max(1, int(round(line_width * min(height, width))))
        # Fit the larger relative extent into the box inside the margins (keeping the pen's
        # width inside too); a zero extent along one axis (a "-" or a "1") does not count, and
        # a single dot just sits in the centre.
        box_x = max(width * (1 - 2 * margin) - thickness, 1.0)
        box_y = max(height * (1 - 2 * margin) - thickness, 1.0)
        ratios = [
            box / max(extent, frame)
            for box, extent in ((box_x, x_extent), (box_y, y_extent))
            if max(extent, frame) > 0
        ]
        scale = min(ratios) if ratios else 0.0
        # OpenCV's fixed point in one multiply-add per point: out = points * a + b.
        factors.append(scale * _ONE)
        offsets.append(
            (
                (width / 2.0 - (x_low + x_high) / 2.0 * scale) * _ONE,
                (height / 2.0 - (y_low + y_high) / 2.0 * scale) * _ONE,
            )
        )
        thicknesses.append(thickness)
    sample = np.repeat(np.arange(len(counts)), counts)
    fixed = np.rint(points * np.array(factors)[sample, None] + np.array(offsets)[sample]).astype(
        np.int32
    )

    # A stroke whose points all coincide (or of one point) is a dot.
    stroke_starts = np.cumsum([0] + [size for sizes in stroke_sizes for size in sizes])[:-1]
    is_dot = iter(
        (np.minimum.reduceat(fixed, stroke_starts) == np.maximum.reduceat(fixed, stroke_starts))
        .all(axis=1)
        .tolist()
    )

    canvases = np.zeros((len(counts), height, width), dtype=np.uint8)
    line_type = cv2.LINE_AA if antialias else cv2.LINE_8
    start = 0
    for canvas, sizes, thickness in zip(canvases, stroke_sizes, thicknesses):
        lines, dots = [], []
        for size in sizes:
            stroke = fixed[start : start + size]
            start += size
            if next(is_dot):
                dots.append(stroke[0])
            else:
                # Dropping points within half a pixel of the path halves the segments, and
                # thick anti-aliased segments are what rendering spends its time on.
                lines.append(cv2.approxPolyDP(stroke.reshape(-1, 1, 2), _ONE / 2, False))
        if lines:
            cv2.polylines(canvas, lines, False, 255, thickness, line_type, _SHIFT)
        for x, y in dots:
            # A dot as wide as a line: a filled disc of the pen's radius.
            radius = max(int(round(thickness * _ONE / 2.0)), _ONE // 2)
            cv2.circle(canvas, (int(x), int(y)), radius, 255, -1, line_type, _SHIFT)
    return canvases


def render_strokes(
    strokes,
    image_size: ImageSize = 128,
    *,
    margin: float = 0.1,
    line_width: float = 0.04,
    antialias: bool = True,
) -> np.ndarray:
    """Render pen strokes into a float32 image, ink 1.0 on background 0.0.

    The strokes' bounding box is scaled uniformly (aspect ratio kept) so that its larger
    extent fills the area inside the margins, and centred. A stroke of one point, or of
    identical points, is a dot as wide as the line. A symbol with zero width or height (``-``,
    ``1``) is scaled by its non-zero extent only; a lone dot stays a dot in the centre.

    Args:
        strokes: sequence of array-likes of shape ``(n, 2)``: X (rightwards) and Y (downwards,
            as in InkML) per point.
        image_size: int or (height, width). Output size in pixels.
        margin: float in [0, 0.5). Empty border on each side, as a fraction of that side.
        line_width: float in (0, 1]. Stroke width as a fraction of the shorter side.
        antialias: bool. Anti-aliased edges (grey levels) instead of hard pixels.

    Returns:
        np.ndarray float32 of shape ``(height, width)`` with values in [0, 1]. Where the pen
        is a single pixel wide (sides under about 38 px at the default `line_width`),
        anti-aliased strokes may peak a little below 1.0.

    Raises:
        ValueError: if there are no strokes, a stroke is not ``(n >= 1, 2)``, a coordinate
            is not finite or a setting is out of range.

    Example:
    >>> image = render_strokes([np.array([[0, 0], [10, 20]]), np.array([[5, 5]])], (64, 48))
    >>> image.shape, image.dtype, float(image.min()), float(image.max())
    ((64, 48), dtype('float32'), 0.0, 1.0)
    """
    canvas = render_strokes_uint8(
        strokes, image_size, margin=margin, line_width=line_width, antialias=antialias
    )
    return canvas.astype(np.float32) / np.float32(255.0)
