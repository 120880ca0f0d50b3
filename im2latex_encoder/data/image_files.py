"""Image files opened with their size checked from the header, before any pixel is decoded.

Every image file the library reads (`predict`'s symbols, `recognize`'s formulas, the web
server's uploads, im2latex-100k's PNGs) goes through `open_image`: Pillow reads only the
header on `Image.open`, so a 20000×20000 PNG of a few hundred bytes is refused at once,
instead of after seconds and gigabytes of decoding. The exported recognizer's standalone
`runner.py` (which cannot import the library) applies the same limits.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

from im2latex_encoder.data.errors import DataError

if TYPE_CHECKING:
    from PIL import Image as PILImage

#: Image files larger than this on either side are refused (a guard against decompression bombs).
MAX_IMAGE_FILE_SIDE = 10_000
#: Image files of more pixels than this are refused: 50 MP takes a 48-MP phone photo, and its
#: float32 grayscale is 200 MB.
MAX_IMAGE_FILE_PIXELS = 50_000_000


def check_image_size(width: int, height: int, path: str | os.PathLike) -> None:
    """Refuse an image of more than `MAX_IMAGE_FILE_PIXELS` pixels or `MAX_IMAGE_FILE_SIDE` a side.

    Args:
        width: int. Pixels across, as the file's header says.
        height: int. Pixels down.
        path: str or PathLike. The file the error names.

    Raises:
        DataError: naming the file, its size and the limits.

    Example:
    >>> check_image_size(640, 480, "photo.png")
    >>> check_image_size(20_000, 20_000, "huge.png")
    Traceback (most recent call last):
    ...
    im2latex_encoder.data.errors.DataError: huge.png: image is 20000×20000 (400,000,000 pixels); at most 50,000,000 pixels and 10,000 a side are accepted
    """
    if width * height > MAX_IMAGE_FILE_PIXELS or max(width, height) > MAX_IMAGE_FILE_SIDE:
        raise DataError(
            path,
            f"image is {width}×{height} ({width * height:,} pixels); at most "
            f"{MAX_IMAGE_FILE_PIXELS:,} pixels and {MAX_IMAGE_FILE_SIDE:,} a side are accepted",
        )


@contextlib.contextmanager
def open_image(
    source: str | os.PathLike | bytes, *, name: str | None = None
) -> Iterator[PILImage.Image]:
    """Open an image file (or its bytes) with Pillow, its size checked before decoding.

    Yields the opened, not yet decoded, image: convert it inside the block.

    Args:
        source: str, PathLike or bytes. The file, or its content (an upload).
        name: str or None. The name errors use for bytes (default ``"<bytes>"``).

    Raises:
        DataError: for data that is not a readable image, or too large a one
            (`check_image_size`).

    Example:
    >>> import io
    >>> from PIL import Image
    >>> buffer = io.BytesIO()
    >>> Image.new("L", (40, 30)).save(buffer, format="PNG")
    >>> with open_image(buffer.getvalue(), name="upload.png") as image:
    ...     image.size
    (40, 30)
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray, memoryview)):
        path: str | os.PathLike = name or "<bytes>"
        opened: str | os.PathLike | io.BytesIO = io.BytesIO(bytes(source))
    else:
        path = opened = source
    try:
        with warnings.catch_warnings():
            # Pillow warns from 89 MP: past our limit, which says it better just below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(opened)  # reads the header only
    except Image.DecompressionBombError as error:  # past Pillow's own limit, 179 MP
        raise DataError(
            path,
            f"image is too large ({error}); at most {MAX_IMAGE_FILE_PIXELS:,} pixels and "
            f"{MAX_IMAGE_FILE_SIDE:,} a side are accepted",
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(path, f"not a readable image ({type(error).__name__}: {error})") from None
    with image:
        check_image_size(*image.size, path)
        yield image
