"""Single symbol files (InkML or images) → model-ready arrays, for `predict`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from im2latex_encoder.data.errors import DataError
from im2latex_encoder.data.image_files import (  # noqa: F401  (MAX_IMAGE_FILE_SIDE: its old home)
    MAX_IMAGE_FILE_SIDE,
    open_image,
)

#: Smallest image file side accepted: below it there is no symbol to see.
MIN_IMAGE_FILE_SIDE = 8
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def load_symbol_file(
    path: str | os.PathLike, image_size: int = 128, *, margin: float = 0.1
) -> np.ndarray:
    """Load one symbol as the encoder's input: float32 `(H, W)`, ink 1.0 on background 0.0.

    InkML files (`.inkml`) are parsed and rendered with `render_strokes`. Image files are read
    as grayscale, inverted when the background is light (dark ink on paper), cropped to the ink
    and scaled to fit with the same margin as rendered strokes, so that a photo or a scan looks
    like what the model was trained on.

    Args:
        path: str or PathLike. An `.inkml` file or an image (PNG, JPEG, ...).
        image_size: int. Output side.
        margin: float. Blank border as a fraction of the side.

    Raises:
        DataError: for a file that is neither, is unreadable, blank, too small or too large.

    Example:
    >>> image = load_symbol_file("x.inkml")  # doctest: +SKIP
    >>> image.shape, image.dtype  # doctest: +SKIP
    ((128, 128), dtype('float32'))
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such file")
    suffix = path.suffix.lower()
    if suffix == ".inkml":
        from im2latex_encoder.data.inkml import read_symbol_strokes

        _, strokes = read_symbol_strokes(path)
        return render_symbol_strokes(strokes, image_size, margin=margin)
    if suffix not in IMAGE_SUFFIXES:
        raise DataError(
            path,
            f"expected an .inkml file or an image ({', '.join(IMAGE_SUFFIXES)}). Received: {suffix or 'no suffix'}",
        )
    return fit_image(read_image_gray(path), image_size, margin=margin, name=str(path))


def render_symbol_strokes(strokes, image_size: int = 128, *, margin: float = 0.1) -> np.ndarray:
    """Draw one symbol's strokes as `load_symbol_file` draws an InkML file's: fitted, centred.

    The one drawing of a lone symbol that `predict` and the web server (`serve`) share.

    Args:
        strokes: sequence of ``(n, 2)`` arrays, any units, Y down.
        image_size: int. Output side.
        margin: float. Blank border as a fraction of the side.

    Example:
    >>> render_symbol_strokes([np.array([[0., 0.], [3., 9.]])], 32).shape
    (32, 32)
    """
    from im2latex_encoder.data.render import render_strokes

    return render_strokes(strokes, image_size, margin=margin)


def read_image_gray(source: str | os.PathLike | bytes, *, name: str | None = None) -> np.ndarray:
    """Read an image file (or its bytes) as float32 grayscale in [0, 1], with the size guards.

    Transparent images are composited on white. The size is read from the header and checked
    (`data.image_files.open_image`) before the pixels are decoded.

    Args:
        source: str, PathLike or bytes. The file, or its content (an upload).
        name: str or None. The name errors use for bytes (default ``"<bytes>"``).

    Raises:
        DataError: for data that is not a readable image, or too small or too large a one.

    Example:
    >>> read_image_gray(b"not an image", name="upload.png")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    im2latex_encoder.data.errors.DataError: upload.png: not a readable image (UnidentifiedImageError: ...)
    """
    from PIL import Image, UnidentifiedImageError

    path = (name or "<bytes>") if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        with open_image(source, name=name) as image:
            width, height = image.size
            if min(width, height) < MIN_IMAGE_FILE_SIDE:
                raise DataError(
                    path,
                    f"image is {width}×{height}; at least {MIN_IMAGE_FILE_SIDE} pixels a side are needed",
                )
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                # Transparent PNGs keep their ink in the alpha channel.
                rgba = image.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return (
                    np.asarray(Image.alpha_composite(background, rgba).convert("L"), np.float32)
                    / 255.0
                )
            return np.asarray(image.convert("L"), np.float32) / 255.0
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as error:
        raise DataError(path, f"not a readable image ({type(error).__name__}: {error})") from None


def fit_image(
    gray: np.ndarray, image_size: int = 128, *, margin: float = 0.1, name: str = "<array>"
) -> np.ndarray:
    """Turn a grayscale image of a symbol into the model's convention and framing.

    Args:
        gray: float array `(H, W)` in [0, 1], either polarity.
        image_size: int. Output side.
        margin: float. Blank border as a fraction of the side.
        name: str. Named in errors.

    Example:
    >>> paper = np.ones((40, 60), np.float32); paper[10:30, 28:32] = 0.0  # a dark bar
    >>> out = fit_image(paper, 32)
    >>> out.shape, float(out.max()), float(out[0, 0])
    ((32, 32), 1.0, 0.0)
    """
    from im2latex_encoder.data.framing import frame_ink

    gray = np.asarray(gray, np.float32)
    if gray.ndim != 2:
        raise DataError(name, f"expected a 2-D grayscale image. Received: shape {gray.shape}")
    # Ink is the minority: if most pixels are light, the ink is dark and the image is inverted.
    ink = 1.0 - gray if np.median(gray) > 0.5 else gray
    ink = np.clip((ink - ink.min()) / max(float(ink.max() - ink.min()), 1e-6), 0.0, 1.0)
    inner = max(1, int(round(image_size * (1 - 2 * margin))))
    framed = frame_ink(ink, (image_size, image_size), (inner, inner), threshold=0.25)
    if framed is None or float(ink.max() - ink.min()) < 1e-3:
        raise DataError(name, "blank image: no ink found")
    return framed
