"""Stroke tokens: a handwritten expression as its strokes in writing order, one token each.

The stroke recognizer never sees a whole-expression image. Each stroke becomes one token: the
pretrained symbol classifier looks at it in a few small views drawn as ``crohme101`` was
trained (48×48, the expression's typical symbol filling 0.8 of the box, so a stroke keeps its
size relative to its neighbours), and its geometry is measured in typical-symbol units. The
typical symbol is estimated from the ink alone (`reference_size` without labels: the median
stroke extent times `STROKE_TO_SYMBOL`), so nothing from a file's annotation reaches a reading,
its scale included.

Views (`StrokeDrawing.views`):

- ``"alone"``: the stroke by itself.
- ``"previous"``: the stroke with the one written before it (the first stroke: alone).
- ``"next"``: the stroke with the one written after it (the last stroke: alone).
- ``"window"``: every stroke whose box meets a square of `window` typical symbols centred on
  the stroke, drawn at the same scale as ``"alone"`` (a symbol's other strokes written later).

Example:
>>> import numpy as np
>>> strokes = [np.array([[0., 0.], [10., 10.]]), np.array([[0., 10.], [10., 0.]]),
...            np.array([[20., 5.], [30., 5.]])]
>>> drawing = StrokeDrawing()
>>> images = draw_stroke_views(strokes, drawing)
>>> images.shape
(3, 3, 48, 48)
>>> stroke_geometry(strokes).shape
(3, 12)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence

import numpy as np

from im2latex_encoder.data.ink import MIN_RELATIVE_SIZE
from im2latex_encoder.data.render import render_strokes_batch_uint8
from im2latex_encoder.formulas.handwritten import reference_size

VIEWS = ("alone", "previous", "next", "window")
#: Columns of `stroke_geometry`.
GEOMETRY_COLUMNS = (
    "left",
    "top",
    "right",
    "bottom",
    "width",
    "height",
    "centre_y_from_baseline",
    "gap_x",
    "gap_y",
    "gap_distance",
    "points_log",
    "length_log",
)


@dataclasses.dataclass(frozen=True)
class StrokeDrawing:
    """How strokes are drawn for the symbol classifier: the stroke recognizer's preprocessing.

    Args:
        image_size: int. Side of each view, in pixels (the classifier's input).
        fill: float in (0, 1]. The share of the box the expression's typical symbol fills
            (``crohme101``'s ``context_scale``): strokes keep their size relative to it.
        line_width: float. Pen width as a share of the box.
        margin: float. Margin of the box, as `render_strokes` takes it.
        views: tuple of str. The views drawn for each stroke, in order (see the module).
        window: float. Side of the ``"window"`` view, in typical symbols.

    Example:
    >>> StrokeDrawing(views=("alone",)).views
    ('alone',)
    >>> StrokeDrawing(views=("sideways",))
    Traceback (most recent call last):
    ...
    ValueError: `views` must be a non-empty tuple of ('alone', 'previous', 'next', 'window'). Received: views=('sideways',)
    """

    image_size: int = 48
    fill: float = 0.8
    line_width: float = 0.04
    margin: float = 0.1
    views: tuple = ("alone", "previous", "next")
    window: float = 2.5

    def __post_init__(self):
        views = tuple(self.views)
        object.__setattr__(self, "views", views)
        if not views or any(view not in VIEWS for view in views):
            raise ValueError(
                f"`views` must be a non-empty tuple of {VIEWS}. Received: views={views!r}"
            )
        if not 0 < float(self.fill) <= 1:
            raise ValueError(f"`fill` must be in (0, 1]. Received: fill={self.fill!r}")
        if not isinstance(self.image_size, int) or self.image_size < 8:
            raise ValueError(
                f"`image_size` must be an int >= 8. Received: image_size={self.image_size!r}"
            )

    def to_json(self) -> dict:
        """The settings as JSON (what a preset stores).

        Example:
        >>> StrokeDrawing.from_json(StrokeDrawing().to_json()) == StrokeDrawing()
        True
        """
        data = dataclasses.asdict(self)
        data["views"] = list(self.views)
        return data

    @classmethod
    def from_json(cls, data: dict) -> StrokeDrawing:
        """Settings from `to_json`'s dict; unknown keys are refused.

        Example:
        >>> StrokeDrawing.from_json({"views": ["alone"]}).views
        ('alone',)
        """
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"Unknown stroke drawing settings {unknown}; expected some of {sorted(known)}"
            )
        data = dict(data)
        if "views" in data:
            data["views"] = tuple(data["views"])
        return cls(**data)

    def fingerprint(self) -> str:
        """A short hash of the settings (part of a feature cache's key).

        Example:
        >>> len(StrokeDrawing().fingerprint())
        16
        """
        text = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _as_parts(token) -> list[np.ndarray]:
    """A token's polylines: a stroke is one; an image component (`image_tokens`) several."""
    if isinstance(token, np.ndarray) and token.ndim == 2:
        return [token]
    if isinstance(token, (list, tuple)) and token and not np.isscalar(token[0]):
        first = np.asarray(token[0])
        if first.ndim == 2:
            return [np.asarray(part) for part in token]
    return [np.asarray(token)]


def check_views_need_no_order(views: Sequence[str]) -> None:
    """Refuse views that need the writer's order (``"previous"``, ``"next"``) for a
    recognizer that reads none (``writing_order=False``).

    Example:
    >>> check_views_need_no_order(("alone", "window"))
    >>> check_views_need_no_order(("alone", "previous"))
    Traceback (most recent call last):
    ...
    ValueError: A recognizer that reads no writing order (`writing_order=False`) takes views that need none, such as ('alone', 'window'). Received: views=('alone', 'previous')
    """
    if {"previous", "next"} & set(views):
        raise ValueError(
            "A recognizer that reads no writing order (`writing_order=False`) takes views "
            f"that need none, such as ('alone', 'window'). Received: views={tuple(views)!r}"
        )


def checked_views(views, tokens: Sequence[dict]) -> list:
    """`views` as a list of token lists, each parallel to `tokens`, or a ValueError.

    Each view holds the same expressions as `tokens`, with the same stroke counts (the ink
    slanted, say): `recognize_token_ids` and the exported runner read them together.

    Example:
    >>> import numpy as np
    >>> tokens = [{"features": np.ones((2, 3))}]
    >>> len(checked_views([tokens], tokens))
    1
    >>> checked_views([[{"features": np.ones((1, 3))}]], tokens)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Each of `views` must hold the same expressions ... stroke counts [1] for [2]
    """
    views = list(views)
    lengths = [len(token["features"]) for token in tokens]
    for number, view in enumerate(views):
        seen = [len(token["features"]) for token in view] if len(view) == len(tokens) else None
        if seen != lengths:
            raise ValueError(
                "Each of `views` must hold the same expressions as `tokens`, with the same "
                f"stroke counts. Received: view {number} of "
                f"{len(view)} expressions for {len(tokens)}"
                + ("" if seen is None else f", stroke counts {seen} for {lengths}")
            )
    return views


def slanted(expressions: Sequence[Sequence], slant: float) -> list[list]:
    """Each expression's ink sheared horizontally by `slant`: X becomes ``x + slant * y``.

    A view for test-time augmentation (`StrokeRecognizer.recognize_stroke_tokens`'
    `slants`): a writer's slant is what varies most between hands. Y (down) is kept, and
    each token keeps its form: a stroke stays an ``(n, 2)`` array, an image's component
    (`image_tokens`) a list of polylines.

    Example:
    >>> import numpy as np
    >>> slanted([[np.array([[0.0, 0.0], [0.0, 2.0]])]], 0.5)[0][0].tolist()
    [[0.0, 0.0], [1.0, 2.0]]
    >>> slanted([[[np.zeros((1, 2)), np.ones((2, 2))]]], -1.0)[0][0][1].tolist()
    [[0.0, 1.0], [0.0, 1.0]]
    """
    if not isinstance(slant, (int, float)) or isinstance(slant, bool) or not np.isfinite(slant):
        raise ValueError(f"`slant` must be a finite number. Received: slant={slant!r}")
    shear = np.array([[1.0, 0.0], [float(slant), 1.0]])  # [x, y] @ shear = [x + slant*y, y]
    out = []
    for strokes in expressions:
        tokens = []
        for token in strokes:
            parts = [np.asarray(part, np.float64) for part in _as_parts(token)]
            for part in parts:  # `normalize_expression`'s check, before the shear
                if part.ndim != 2 or part.shape[1] != 2:
                    raise ValueError(
                        f"Each stroke must be an (n, 2) array of X, Y. Received: shape {part.shape}"
                    )
            parts = [part @ shear for part in parts]
            single = isinstance(token, np.ndarray) and token.ndim == 2
            tokens.append(parts[0] if single else parts)
        out.append(tokens)
    return out


def normalize_expression(strokes: Sequence) -> list[list[np.ndarray]]:
    """An expression's tokens in typical-symbol units: the typical symbol is 1, Y down.

    Each token is a stroke (an ``(n, 2)`` array) or a list of polylines (an image's
    component, `image_tokens`); the result gives every token as a list of polylines. The
    scale comes from the ink alone (`reference_size` without labels, over the tokens'
    extents), the origin is the ink's top-left corner. Empty tokens are dropped; NaN or
    infinite coordinates and points that are not ``(n, 2)`` are refused.

    Example:
    >>> out = normalize_expression([np.array([[10., 10.], [10., 30.]])])
    >>> out[0][0].round(3).tolist()
    [[0.0, 0.0], [0.0, 0.694]]
    """
    kept = []
    for token in strokes:
        parts = []
        for part in _as_parts(token):
            points = np.asarray(part, np.float64)
            if points.size == 0:
                continue
            if points.ndim != 2 or points.shape[1] != 2:
                raise ValueError(
                    f"Each stroke must be an (n, 2) array of X, Y. Received: shape {points.shape}"
                )
            parts.append(points)
        if parts:
            kept.append(parts)
    if not kept:
        raise ValueError("An expression needs at least one stroke with a point. Received none")
    every = np.concatenate([p for parts in kept for p in parts])
    if not np.isfinite(every).all():
        raise ValueError("Stroke coordinates must be finite. Received NaN or infinity")
    scale = reference_size([np.concatenate(parts) for parts in kept])
    low = every.min(axis=0)
    return [[(part - low) / scale for part in parts] for parts in kept]


def _boxes(tokens: Sequence[list]) -> np.ndarray:
    boxes = []
    for parts in tokens:
        points = np.concatenate(parts)
        boxes.append([*points.min(axis=0), *points.max(axis=0)])
    return np.array(boxes, np.float64)


def stroke_geometry(strokes: Sequence, *, normalized: bool = False) -> np.ndarray:
    """Each stroke's place and shape in typical-symbol units: float32 ``(S, 12)``.

    Columns (`GEOMETRY_COLUMNS`): the box (left, top, right, bottom) from the expression's
    top-left, its width and height, the centre's height above the expression's baseline (the
    median of the strokes' bottoms, Y up), the gap from the previous stroke's end to this
    stroke's start (x, y and distance), and log(1 + points), log(1 + pen path length).

    Args:
        strokes: the expression's strokes, raw units (or `normalize_expression`'s, with
            ``normalized=True``).

    Example:
    >>> g = stroke_geometry([np.array([[0., 0.], [0., 10.]]), np.array([[5., 0.], [5., 10.]])])
    >>> g[1, [0, 7]].astype(float).round(3).tolist()
    [0.347, 0.347]
    """
    units = [_as_parts(t) for t in strokes] if normalized else normalize_expression(strokes)
    boxes = _boxes(units)
    baseline = float(np.median(boxes[:, 3]))
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
    starts = np.array([parts[0][0] for parts in units])
    ends = np.array([parts[-1][-1] for parts in units])
    gaps = np.zeros((len(units), 2))
    gaps[1:] = starts[1:] - ends[:-1]
    lengths = np.array(
        [sum(np.linalg.norm(np.diff(p, axis=0), axis=1).sum() for p in parts) for parts in units]
    )
    counts = np.array([sum(len(p) for p in parts) for parts in units], np.float64)
    columns = [
        boxes[:, 0],
        boxes[:, 1],
        boxes[:, 2],
        boxes[:, 3],
        boxes[:, 2] - boxes[:, 0],
        boxes[:, 3] - boxes[:, 1],
        baseline - centre_y,
        gaps[:, 0],
        gaps[:, 1],
        np.hypot(gaps[:, 0], gaps[:, 1]),
        np.log1p(counts),
        np.log1p(lengths),
    ]
    return np.stack(columns, axis=1).astype(np.float32)


def _view_members(index: int, count: int, view: str, boxes: np.ndarray, window: float) -> list:
    if view == "alone":
        return [index]
    if view == "previous":
        return [index - 1, index] if index > 0 else [index]
    if view == "next":
        return [index, index + 1] if index + 1 < count else [index]
    # "window": strokes whose box meets the square around this stroke's centre.
    centre = (boxes[index, :2] + boxes[index, 2:]) / 2
    low, high = centre - window / 2, centre + window / 2
    meets = (boxes[:, 2] >= low[0]) & (boxes[:, 0] <= high[0])
    meets &= (boxes[:, 3] >= low[1]) & (boxes[:, 1] <= high[1])
    return np.flatnonzero(meets).tolist()


def draw_stroke_views(
    strokes: Sequence, drawing: StrokeDrawing, *, normalized: bool = False
) -> np.ndarray:
    """Every stroke of an expression in `drawing.views`: uint8 ``(S, V, H, W)``, 255 = ink.

    Each view is fitted the way ``crohme101`` fits a symbol drawn in its expression: a box of
    ``1 / fill`` typical symbols around the view's ink, larger ink shrunk to fit (a stroke is
    never drawn smaller than `MIN_RELATIVE_SIZE` of the box). The ``"window"`` view is the
    square of `window` typical symbols centred on the stroke, cut from the whole expression.

    Example:
    >>> views = draw_stroke_views([np.array([[0., 0.], [3., 3.]])], StrokeDrawing(views=("alone",)))
    >>> views.shape, int(views.max())
    ((1, 1, 48, 48), 255)
    """
    units = [_as_parts(t) for t in strokes] if normalized else normalize_expression(strokes)
    count, size = len(units), drawing.image_size
    boxes = _boxes(units)
    points: list = []
    sizes: list = []
    frames: list = []
    box_side = 1.0 / drawing.fill
    window_images = []
    for index in range(count):
        for view in drawing.views:
            if view == "window":
                window_images.append((index, len(points)))
                points.append(None)
                sizes.append(None)
                frames.append(None)
                continue
            members = _view_members(index, count, view, boxes, drawing.window)
            chosen = [part for m in members for part in units[m]]
            ink = np.concatenate(chosen)
            extent = float((ink.max(axis=0) - ink.min(axis=0)).max())
            frame = box_side
            if extent > 0:
                frame = min(frame, extent / (MIN_RELATIVE_SIZE * drawing.fill))
            points.append(ink)
            sizes.append([len(c) for c in chosen])
            frames.append(frame)
    images = np.zeros((count * len(drawing.views), size, size), np.uint8)
    drawn = [i for i, p in enumerate(points) if p is not None]
    if drawn:
        images[drawn] = render_strokes_batch_uint8(
            np.concatenate([points[i] for i in drawn]),
            [sizes[i] for i in drawn],
            (size, size),
            margin=drawing.margin,
            line_widths=[drawing.line_width] * len(drawn),
            frames=[frames[i] for i in drawn],
        )
    for index, slot in window_images:
        images[slot] = _draw_window(units, boxes, index, drawing)
    return images.reshape(count, len(drawing.views), size, size)


def _draw_window(units, boxes, index, drawing: StrokeDrawing) -> np.ndarray:
    import cv2

    size = drawing.image_size
    members = _view_members(index, len(units), "window", boxes, drawing.window)
    centre = (boxes[index, :2] + boxes[index, 2:]) / 2
    scale = size / drawing.window
    thickness = max(1, int(round(drawing.line_width * size)))
    image = np.zeros((size, size), np.uint8)
    shift = 4
    polylines = [
        np.rint(((part - centre) * scale + size / 2) * (1 << shift)).astype(np.int32)
        for m in members
        for part in units[m]
    ]
    cv2.polylines(image, polylines, False, 255, thickness, cv2.LINE_AA, shift)
    return image
