"""How a recognizer sees ink: `DrawSettings` draws an expression, `pad_batch` batches images.

The one place a handwritten expression becomes the recognizer's input. `symbol_size_for`
relates the symbol encoder's training image size to the pixels of an expression's typical
symbol; `DrawSettings` (saved with a recognizer as ``recognizer.json``) draws
`InkExpressions` at that size; `bucket_batches` groups images of similar width and
`pad_batch` stacks them into the float ``(B, H, W, 1)`` batch the model reads.

Example:
>>> import numpy as np
>>> data = InkExpressions.from_strokes([[np.array([[0., 0.], [9., 9.]])]], names=["e"],
...                                    truths=[""])
>>> pad_batch([DrawSettings(10.0).render(data, 0)]).shape
(1, 32, 32, 1)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from im2latex_encoder.formulas.handwritten import InkExpressions


@dataclasses.dataclass(frozen=True)
class DrawSettings:
    """How expressions are drawn for a recognizer (saved with it as ``recognizer.json``).

    Args:
        symbol_size: float. Pixels of an expression's typical symbol (`symbol_size_for`).
        line_width: float. Pen width in pixels.
        max_shape: (height, width). Largest image; bigger expressions are scaled down.

    Example:
    >>> DrawSettings(18.0).to_dict()
    {'symbol_size': 18.0, 'line_width': 2.0, 'max_shape': [256, 1024]}
    """

    symbol_size: float = 36.4
    line_width: float = 2.0
    max_shape: tuple = (256, 1024)

    def to_dict(self) -> dict:
        """JSON form; `DrawSettings(**d)` rebuilds it.

        Example:
        >>> DrawSettings(**DrawSettings().to_dict()).max_shape
        (256, 1024)
        """
        return {
            "symbol_size": float(self.symbol_size),
            "line_width": float(self.line_width),
            "max_shape": [int(v) for v in self.max_shape],
        }

    def __post_init__(self):
        object.__setattr__(self, "max_shape", tuple(int(v) for v in self.max_shape))
        if self.symbol_size <= 0 or self.line_width <= 0 or min(self.max_shape) < 16:
            raise ValueError(
                f"Expected symbol_size > 0, line_width > 0 and max_shape sides >= 16. "
                f"Received: {self}"
            )

    def render(self, expressions: InkExpressions, index: int, *, augment=None, rng=None):
        """Draw expression `index` with these settings: uint8 ``(H, W)``.

        Example:
        >>> data = InkExpressions.from_strokes([[np.array([[0., 0.], [9., 9.]])]],
        ...                                    names=["e"], truths=[""])
        >>> DrawSettings(10.0).render(data, 0).shape
        (14, 14)
        """
        return expressions.render(
            index,
            self.symbol_size,
            line_width=self.line_width,
            max_shape=self.max_shape,
            augment=augment,
            rng=rng,
        )

    def image_shape(self, expressions: InkExpressions, index: int) -> tuple[int, int]:
        """The ``(height, width)`` `render` gives expression `index` (before any warp).

        Example:
        >>> data = InkExpressions.from_strokes([[np.array([[0., 0.], [9., 9.]])]],
        ...                                    names=["e"], truths=[""])
        >>> DrawSettings(10.0).image_shape(data, 0)
        (14, 14)
        """
        return expressions.image_shape(
            index, self.symbol_size, line_width=self.line_width, max_shape=self.max_shape
        )

    @classmethod
    def for_image_size(cls, image_size: int) -> DrawSettings:
        """The settings that draw an expression's typical symbol as a symbol encoder trained on
        `image_size` images saw its symbols (`symbol_size_for`, to 0.1 px).

        Example:
        >>> DrawSettings.for_image_size(48).symbol_size
        36.4
        """
        return cls(round(symbol_size_for(image_size), 1))


def symbol_size_for(image_size: int, margin: float = 0.1, line_width: float = 0.04) -> float:
    """The typical symbol's size in pixels that a symbol encoder trained on `image_size`
    images expects: a fitted symbol fills the box inside the margins, less the pen.

    Example:
    >>> round(symbol_size_for(48), 1)
    36.4
    """
    return image_size * (1 - 2 * margin) - max(1, round(line_width * image_size))


def bucket_batches(
    shapes: Sequence[tuple[int, int]], batch_size: int, *, rng: np.random.Generator | None = None
) -> list[np.ndarray]:
    """Group indices into batches of similar width (sorted by width, then batches shuffled).

    Args:
        shapes: ``(height, width)`` per item.
        batch_size: int.
        rng: numpy Generator or None. Shuffles within equal widths and the batch order.

    Example:
    >>> [b.tolist() for b in bucket_batches([(10, 50), (10, 10), (10, 40), (10, 12)], 2)]
    [[1, 3], [2, 0]]
    """
    widths = np.array([shape[1] for shape in shapes], np.float64)
    if rng is not None:
        widths = widths + rng.uniform(0, 0.5, len(widths))  # breaks ties at random
    order = np.argsort(widths, kind="stable")
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def pad_batch(images: Sequence[np.ndarray], *, multiple: int = 16, minimum: int = 32) -> np.ndarray:
    """Stack uint8 images top-left into float32 ``(B, H, W, 1)`` in [0, 1], padded with 0 to
    the batch's largest height and width rounded up to `multiple`, and at least `minimum`
    (what a conv stack needs: 18 px for the seed's).

    Example:
    >>> pad_batch([np.full((3, 5), 255, np.uint8), np.zeros((7, 40), np.uint8)]).shape
    (2, 32, 48, 1)
    """
    height = max(image.shape[0] for image in images)
    width = max(image.shape[1] for image in images)
    height = max(-(-height // multiple) * multiple, minimum)
    width = max(-(-width // multiple) * multiple, minimum)
    batch = np.zeros((len(images), height, width, 1), np.float32)
    for row, image in zip(batch, images):
        row[: image.shape[0], : image.shape[1], 0] = image * np.float32(1 / 255)
    return batch


def expression_ink(gray: np.ndarray, *, name: str | None = None) -> np.ndarray:
    """A grayscale expression image (a PNG's, a photo's) as the recognizer reads one.

    uint8, ink 255 on 0: an image whose pixels are mostly light is taken as dark ink on
    paper and inverted. `im2latex-encoder recognize` and the web server read images with it,
    after `data.symbol_files.read_image_gray`. An image with no ink (no pixel at half
    strength or more) is refused: there is no formula to read.

    Args:
        gray: float ``(H, W)`` in [0, 1], either polarity.
        name: str or None. The file the image came from, for the error.

    Raises:
        DataError: for a blank image.

    Example:
    >>> paper = np.ones((4, 4), "float32"); paper[1, 1] = 0.0
    >>> int(expression_ink(paper)[1, 1]), int(expression_ink(paper)[0, 0])
    (255, 0)
    >>> expression_ink(np.ones((4, 4), "float32"), name="blank.png")
    Traceback (most recent call last):
    ...
    im2latex_encoder.data.errors.DataError: blank.png: blank image: no ink found
    """
    image = np.rint(np.clip(np.asarray(gray, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    if image.mean() > 127:  # dark ink on light paper -> ink high
        image = 255 - image
    if not (image >= 128).any():
        from im2latex_encoder.data.errors import DataError

        raise DataError(name or "<image>", "blank image: no ink found")
    return np.ascontiguousarray(image)
