"""Formula images as stroke tokens: each connected component of ink becomes one token.

An image has no pen order, so `StrokeRecognizer.recognize_images` reads it by its connected
components instead of its strokes: each component is thinned to its one-pixel skeleton
(scikit-image's `skeletonize`), and the skeleton's neighbouring pixels, joined as short
segments, are the polylines the stroke drawing draws again at the model's own scale. The
typical symbol size is estimated from the components exactly as from strokes
(`reference_size`), so a formula photographed large or small reads the same. Components are
ordered left to right (by their left edge, then their top), the order most strokes of a
formula are written in. Where no two strokes touch, the components are the strokes and the
tokens are the ink's own.

Example:
>>> import numpy as np
>>> image = np.zeros((40, 80), np.uint8)
>>> image[10:30, 10:13] = 255   # a stroke
>>> image[18:21, 40:70] = 255   # another, to its right
>>> tokens = image_tokens(image)
>>> len(tokens)
2
>>> [round(float(np.concatenate(t)[:, 0].min())) for t in tokens]
[11, 40]
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Components with fewer ink pixels than this are taken for specks and dropped.
MIN_COMPONENT_PIXELS = 3
_NEIGHBOURS = ((1, 0), (0, 1), (1, 1), (-1, 1))  # (dx, dy): each pair of 8-neighbours once


def image_tokens(image: np.ndarray, *, threshold: int = 128) -> list[list[np.ndarray]]:
    """An expression image's ink as tokens, one per connected component, left to right.

    Args:
        image: uint8 ``(H, W)``, ink 255 on background 0 (`expression_ink`'s).
        threshold: int. Pixels at or above it are ink.

    Returns:
        One token per component: a list of polylines (float ``(n, 2)`` arrays of X, Y in
        pixels), the first a single point at the component's leftmost skeleton pixel and the
        last one at its rightmost (where a stroke would start and end).

    Raises:
        ValueError: for an image that is not 2-D uint8, or that has no ink.

    Example:
    >>> image = np.zeros((20, 20), np.uint8); image[5:15, 9:11] = 255
    >>> token = image_tokens(image)[0]
    >>> len(token) > 2, token[0].shape
    (True, (1, 2))
    """
    from skimage.morphology import skeletonize

    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(
            "An expression image must be uint8 (H, W), ink 255 on 0. Received: "
            f"{image.dtype} of shape {image.shape}"
        )
    binary = image >= threshold
    labels, kept = _components(binary)
    skeleton = skeletonize(binary)
    # Every component keeps at least one point, even where thinning leaves none.
    ys, xs = np.nonzero(skeleton)
    owner = labels[ys, xs]
    height, width = labels.shape
    segments: dict[int, list] = {}
    for dx, dy in _NEIGHBOURS:
        y2, x2 = ys + dy, xs + dx
        inside = (y2 >= 0) & (y2 < height) & (x2 >= 0) & (x2 < width)
        linked = np.zeros(len(ys), bool)
        linked[inside] = skeleton[y2[inside], x2[inside]]
        for index in np.flatnonzero(linked):
            segments.setdefault(int(owner[index]), []).append(
                np.array([[xs[index], ys[index]], [x2[index], y2[index]]], np.float64)
            )
    tokens = []
    for label in kept:
        mine = owner == label
        if mine.any():
            points = np.stack([xs[mine], ys[mine]], axis=1).astype(np.float64)
        else:
            cy, cx = np.argwhere(labels == label).mean(axis=0)
            points = np.array([[cx, cy]])
        left = points[np.lexsort((points[:, 1], points[:, 0]))[0]]
        right = points[np.lexsort((points[:, 1], -points[:, 0]))[0]]
        parts = segments.get(label) or [points]
        tokens.append([left[None], *parts, right[None]])
    if not tokens:
        raise ValueError("The image has no ink to read (no pixel at or above the threshold)")
    return tokens


def _components(binary: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """8-connected components: the label image and the labels kept in token
    order (specks of fewer than `MIN_COMPONENT_PIXELS` dropped; left edge, then top)."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        binary.astype(np.uint8), connectivity=8
    )
    kept = [
        label for label in range(1, count) if stats[label, cv2.CC_STAT_AREA] >= MIN_COMPONENT_PIXELS
    ]
    kept.sort(key=lambda label: (stats[label, cv2.CC_STAT_LEFT], stats[label, cv2.CC_STAT_TOP]))
    return labels, kept


def component_owners(
    image: np.ndarray, owner_image: np.ndarray, *, threshold: int = 128
) -> np.ndarray:
    """Which stroke drew each of the image's tokens (`image_tokens`' order), or -1.

    Training labels for tokens read from a drawn formula: each connected component takes
    the stroke that drew most of its pixels in `owner_image` (`draw_expression_image(...,
    owners=True)`), so a component carries that stroke's symbol, and two components of one
    symbol (the bars of ``=``) are known to belong together.

    Args:
        image: uint8 ``(H, W)``, ink 255 on 0, as `image_tokens` reads it.
        owner_image: int ``(H, W)``: 0 where no stroke drew, ``k + 1`` where stroke ``k`` did.
        threshold: int. As `image_tokens`.

    Returns:
        int64 ``(tokens,)``: a stroke index per token, -1 where no stroke's pixel lies in it.

    Raises:
        ValueError: for images of different shapes, or an image without ink.

    Example:
    >>> strokes = [np.array([[0., 0.], [0., 10.]]), np.array([[8., 0.], [8., 10.]])]
    >>> image, owners = draw_expression_image(strokes[::-1], 40, owners=True)
    >>> component_owners(image, owners).tolist()   # left to right: the second stroke first
    [1, 0]
    """
    image, owner_image = np.asarray(image), np.asarray(owner_image)
    if image.shape != owner_image.shape or image.ndim != 2:
        raise ValueError(
            "`image` and `owner_image` must be 2-D and of one shape. Received: "
            f"{image.shape} and {owner_image.shape}"
        )
    labels, kept = _components(image >= threshold)
    if not kept:
        raise ValueError("The image has no ink to read (no pixel at or above the threshold)")
    # One joint count of (component, stroke) over the pixels both mark, then each row's best.
    both = (labels > 0) & (owner_image > 0)
    strokes = int(owner_image.max()) + 1
    votes = np.bincount(
        labels[both].astype(np.int64) * strokes + owner_image[both].astype(np.int64),
        minlength=(int(labels.max()) + 1) * strokes,
    ).reshape(-1, strokes)[kept]
    return np.where(votes.max(axis=1) > 0, votes.argmax(axis=1) - 1, -1).astype(np.int64)


def draw_expression_image(
    strokes,
    symbol_size: float,
    *,
    line_width: float | None = None,
    padding: int = 8,
    owners: bool = False,
) -> Any:
    """Draw an expression's strokes as a formula image: uint8 ``(H, W)``, ink 255 on 0.

    The typical symbol (estimated from the strokes, `reference_size`) is `symbol_size` pixels
    and the pen `line_width` pixels (default: a twelfth of it): a formula written on paper and
    photographed at that scale, for reading images at several scales. With `owners`, also
    which stroke drew each pixel: uint16 ``(H, W)``, ``k + 1`` for stroke ``k`` (the later
    stroke where two cross), 0 for none; `component_owners` reads it.

    Example:
    >>> image = draw_expression_image([np.array([[0., 0.], [0., 10.]]),
    ...                                np.array([[8., 0.], [8., 10.]])], 40)
    >>> image.dtype, image.shape[0] > 40, int(image.max())
    (dtype('uint8'), True, 255)
    """
    import cv2

    from im2latex_encoder.recognizer.stroke_tokens import normalize_expression

    units = normalize_expression(strokes)
    width = max(1, int(round(line_width if line_width is not None else symbol_size / 12)))
    every = np.concatenate([part for parts in units for part in parts])
    high = every.max(axis=0) * symbol_size
    shape = (
        int(np.ceil(high[1])) + 2 * padding + width,
        int(np.ceil(high[0])) + 2 * padding + width,
    )
    image = np.zeros(shape, np.uint8)
    shift = 4
    offset = padding + width / 2
    polylines = [
        np.rint((part * symbol_size + offset) * (1 << shift)).astype(np.int32)
        for parts in units
        for part in parts
    ]
    cv2.polylines(image, polylines, False, 255, width, cv2.LINE_AA, shift)
    for line in polylines:  # a one-point stroke (a dot) is drawn as a filled circle
        if len(line) == 1:
            cv2.circle(
                image,
                tuple(int(v) for v in line[0]),
                max(1, width // 2) << shift,
                255,
                -1,
                cv2.LINE_AA,
                shift,
            )
    if not owners:
        return image
    # Drawn again without anti-aliasing, each stroke in its own value: pixel ownership.
    owner_image = np.zeros(shape, np.uint16)
    stroke_of_line = [k for k, parts in enumerate(units, start=1) for _ in parts]
    for index, line in zip(stroke_of_line, polylines):
        if len(line) == 1:
            cv2.circle(
                owner_image,
                tuple(int(v) for v in line[0]),
                max(1, width // 2) << shift,
                index,
                -1,
                cv2.LINE_8,
                shift,
            )
        else:
            cv2.polylines(owner_image, [line], False, index, width, cv2.LINE_8, shift)
    return image, owner_image
