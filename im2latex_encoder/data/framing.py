"""Crop an image's ink to its bounding box, scale it to fit a box, and pad it to a frame.

One function for every image read from a file: symbol photos and scans (`fit_image`) and
im2latex-100k formula PNGs (`load_im2latex_image`), so that both are framed as the package's
rendered strokes and formulas are.
"""

from __future__ import annotations

import numpy as np


def frame_ink(
    ink: np.ndarray,
    shape: tuple[int, int],
    box: tuple[int, int],
    *,
    threshold: float,
    enlarge: bool = True,
    left: int | None = None,
) -> np.ndarray | None:
    """Crop `ink` to the pixels above `threshold`, scale the crop to fit `box`, pad to `shape`.

    The crop keeps its aspect ratio and is scaled to the largest size that fits in `box`
    (``(height, width)``); with ``enlarge=False`` it is only ever shrunk. It is then placed
    centered in a zero frame of `shape`, or at column `left` (and centered vertically).
    Scaling uses OpenCV, the package's raster library (`render_strokes` draws with it): area
    averaging by exact pixel coverage when shrinking, bilinear when enlarging.

    Args:
        ink: float array ``(H, W)``, ink high (1.0) on background 0.0.
        shape: (int, int). The output's ``(height, width)``.
        box: (int, int). The ``(height, width)`` the crop is scaled to fit, at most `shape`.
        threshold: float. Pixels above it count as ink when cropping.
        enlarge: bool. Scale a crop smaller than `box` up to fit it.
        left: int or None. Column of the crop's left edge; None centers it.

    Returns:
        A float32 array of `shape` in [0, 1], or None if no pixel is above `threshold`.

    Example:
    >>> ink = np.zeros((40, 60), np.float32); ink[10:30, 28:32] = 1.0  # a 20×4 bar
    >>> framed = frame_ink(ink, (32, 32), (26, 26), threshold=0.25)
    >>> framed.shape, [int(n) for n in np.nonzero(framed > 0.5)[0][[0, -1]]]
    ((32, 32), [3, 28])
    """
    import cv2

    height, width = shape
    if not (0 < box[0] <= height and 0 < box[1] <= width):
        raise ValueError(
            f"`box` must be positive and fit in `shape` {tuple(shape)}. Received: box={tuple(box)}"
        )
    rows, columns = np.nonzero(ink > threshold)
    if rows.size == 0:
        return None
    crop = np.asarray(
        ink[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1], np.float32
    )
    scale = min(box[0] / crop.shape[0], box[1] / crop.shape[1])
    if not enlarge:
        scale = min(scale, 1.0)
    size = (max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale)))
    if size != crop.shape:
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        crop = np.asarray(
            cv2.resize(crop, (size[1], size[0]), interpolation=interpolation), np.float32
        )
    top = (height - size[0]) // 2
    left = (width - size[1]) // 2 if left is None else left
    out = np.zeros((height, width), np.float32)
    out[top : top + size[0], left : left + size[1]] = np.clip(crop, 0.0, 1.0)
    return out
