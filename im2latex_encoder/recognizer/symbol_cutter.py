"""Cut touching symbols apart in a formula image: a small convolutional net finds where they meet.

An image has no pen, so `image_tokens` reads it by its connected components, and where two
symbols touch (a fraction bar running into a digit, a root's hook into its radicand) one
component holds both and no model can read it (test 2016 at 64 px: 22% of the expressions,
read 0%). `SymbolCutter` predicts, for each ink pixel, whether it lies where the ink of two
symbols meets; `image_tokens(image, symbol_cutter=cutter)` removes those pixels, takes the
connected parts that remain, and gives each removed pixel back to the nearest part, so each
part is one token. Where no two symbols touch the components come back whole.

It learns from the ink's own annotation: `boundary_targets` draws an expression with
`draw_expression_image(..., owners=True)` and marks the ink pixels within `BOUNDARY_RADIUS`
of another symbol's ink. The net sees the image at `SYMBOL_PIXELS` per typical symbol
(estimated from the components, as the recognizer estimates its scale: nothing from the
labels reaches it at reading time).

Example:
>>> cutter = SymbolCutter(build_symbol_cutter_model(seed=0))
>>> image = np.zeros((64, 96), np.uint8); image[20:44, 20:24] = 255
>>> cutter.boundaries(image).shape
(64, 96)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

#: The net sees images scaled so their typical symbol is this many pixels (as it was trained).
SYMBOL_PIXELS = 64
#: Ink pixels within this many pixels (chessboard) of another symbol's ink are where they meet.
BOUNDARY_RADIUS = 2
#: Ink pixels whose predicted probability is at or above this are cut (chosen on validation).
DEFAULT_THRESHOLD = 0.8
#: The longest side the net is shown; a larger scaled image is scaled down to it.
MAX_SIDE = 4096
CONFIG_FILE = "symbol_cutter.json"
WEIGHTS_FILE = "symbol_cutter.weights.h5"


def build_symbol_cutter_model(*, seed: int | None = None):
    """The cutter's net: per pixel, the probability that it lies where two symbols meet.

    A full-resolution convolution, a stride-2 stack with dilations 1-8 (a receptive field of
    about one symbol at `SYMBOL_PIXELS`), upsampled and joined with the first layer: 58k
    parameters, any image size with even sides.

    Example:
    >>> build_symbol_cutter_model(seed=0).count_params()
    57985
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)

    def conv(x, filters, dilation=1, strides=1):
        return keras.layers.Conv2D(
            filters,
            3,
            strides=strides,
            padding="same",
            dilation_rate=dilation,
            activation="relu",
        )(x)

    image = keras.Input((None, None, 1), name="image")
    full = conv(image, 16)
    x = conv(full, 32, strides=2)
    for dilation in (1, 2, 4, 8, 1):
        x = conv(x, 32, dilation)
    x = keras.layers.UpSampling2D(2)(x)
    x = conv(keras.layers.Concatenate()([x, full]), 16)
    boundary = keras.layers.Conv2D(1, 1, activation="sigmoid", name="boundary")(x)
    return keras.Model(image, boundary, name="symbol_cutter")


class SymbolCutter:
    """Where touching symbols meet in a formula image, and the image cut there into tokens.

    Args:
        model: keras.Model from `build_symbol_cutter_model` (trained: `train_symbol_cutter`).
        threshold: float in (0, 1). Ink pixels predicted at or above it are cut.
        record: dict. JSON; how the cutter was trained (saved with it).

    Example:
    >>> cutter = SymbolCutter(build_symbol_cutter_model(seed=0), threshold=0.9)
    >>> cutter.threshold
    0.9
    """

    def __init__(
        self, model: Any, *, threshold: float = DEFAULT_THRESHOLD, record: dict | None = None
    ):
        if isinstance(threshold, bool) or not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"`threshold` must be in (0, 1). Received: threshold={threshold!r}")
        self.model = model
        self.threshold = float(threshold)
        self.record = dict(record or {})

    def boundaries(self, image: np.ndarray, *, threshold: int = 128) -> np.ndarray:
        """Per pixel, the probability that it lies where two symbols meet: float32 ``(H, W)``.

        The image is scaled so its typical symbol (estimated from its components, as
        `image_tokens` does) is `SYMBOL_PIXELS`, read by the net, and scaled back.

        Args:
            image: uint8 ``(H, W)``, ink 255 on 0.
            threshold: int. Pixels at or above it are ink.

        Raises:
            ValueError: for an image that is not 2-D uint8, or that has no ink.

        Example:
        >>> cutter = SymbolCutter(build_symbol_cutter_model(seed=0))
        >>> cutter.boundaries(np.zeros((8, 8), np.uint8))
        Traceback (most recent call last):
        ...
        ValueError: The image has no ink to read (no pixel at or above the threshold)
        """
        import cv2

        from im2latex_encoder.formulas.handwritten import reference_size
        from im2latex_encoder.recognizer.stroke_components import image_tokens

        image = np.asarray(image)
        whole = image_tokens(image, threshold=threshold)  # checks the image
        scale = SYMBOL_PIXELS / reference_size([np.concatenate(token) for token in whole])
        height, width = image.shape
        # a typical symbol estimated absurdly small or large must not blow the image up
        scale = float(np.clip(scale, 0.125, MAX_SIDE / max(height, width, MAX_SIDE / 8)))
        seen = cv2.resize(
            image,
            (max(2, round(width * scale)), max(2, round(height * scale))),
            interpolation=cv2.INTER_LINEAR,
        )
        padded = np.zeros([side + side % 2 for side in seen.shape], np.float32)
        padded[: seen.shape[0], : seen.shape[1]] = seen / 255.0
        # Keras' compiled predict step (retracing relaxed to any size): about 1.5x the eager call
        probability = np.asarray(self.model.predict_on_batch(padded[None, ..., None]))
        probability = probability[0, : seen.shape[0], : seen.shape[1], 0]
        return cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR)

    def fingerprint(self) -> str:
        """A hash of the net's weights and the threshold (a feature cache's key).

        Example:
        >>> one = SymbolCutter(build_symbol_cutter_model(seed=0))
        >>> one.fingerprint() == SymbolCutter(build_symbol_cutter_model(seed=0)).fingerprint()
        True
        >>> one.fingerprint() == SymbolCutter(one.model, threshold=0.5).fingerprint()
        False
        """
        import hashlib

        digest = hashlib.sha256(repr(self.threshold).encode())
        for weight in self.model.weights:
            digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
        return digest.hexdigest()[:16]

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the cutter to `folder` (its config and weights; no pickle).

        Example:
        >>> SymbolCutter(build_symbol_cutter_model(seed=0)).save("cutter")  # doctest: +SKIP
        """
        from im2latex_encoder._atomic import atomic_write_text

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(folder / WEIGHTS_FILE)
        config = {
            "threshold": self.threshold,
            "symbol_pixels": SYMBOL_PIXELS,
            "record": self.record,
        }
        atomic_write_text(folder / CONFIG_FILE, json.dumps(config, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, *, threshold: float | None = None) -> SymbolCutter:
        """Read a cutter `save` wrote (`train-symbol-cutter --out`).

        Args:
            folder: str or path.
            threshold: float or None. None: the saved one.

        Raises:
            FileNotFoundError: when `folder` holds no cutter.

        Example:
        >>> SymbolCutter.load("no/such/folder")
        Traceback (most recent call last):
        ...
        FileNotFoundError: Expected a symbol cutter (symbol_cutter.json and symbol_cutter.weights.h5, as train-symbol-cutter --out writes) in 'no/such/folder'
        """
        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(
                f"Expected a symbol cutter ({CONFIG_FILE} and {WEIGHTS_FILE}, as "
                f"train-symbol-cutter --out writes) in {os.fspath(folder)!r}"
            )
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        model = build_symbol_cutter_model()
        model.load_weights(folder / WEIGHTS_FILE)
        return cls(
            model,
            threshold=config["threshold"] if threshold is None else threshold,
            record=config.get("record", {}),
        )


def boundary_targets(
    image: np.ndarray,
    owner_image: np.ndarray,
    stroke_symbols: Sequence[int],
    *,
    radius: int = BOUNDARY_RADIUS,
    threshold: int = 128,
) -> np.ndarray:
    """The cutter's training target: bool ``(H, W)``, True on ink within `radius` of another
    symbol's ink.

    Args:
        image: uint8 ``(H, W)`` from `draw_expression_image`.
        owner_image: its ``owners=True`` twin: ``k + 1`` where stroke ``k`` drew.
        stroke_symbols: int per stroke: its symbol in the expression (the file's trace
            groups), or -1 for a stroke of no symbol (then it counts as its own).
        radius: int. How far (chessboard pixels) from the other symbol's ink.
        threshold: int. Pixels at or above it are ink.

    Example:
    >>> from im2latex_encoder.recognizer.stroke_components import draw_expression_image
    >>> minus, one = np.array([[0., 5.], [6., 5.]]), np.array([[6., 0.], [6., 10.]])
    >>> image, owners = draw_expression_image([minus, one], 40, owners=True)
    >>> bool(boundary_targets(image, owners, [0, 1]).any())
    True
    >>> bool(boundary_targets(image, owners, [0, 0]).any())   # one symbol: nothing to cut
    False
    """
    import cv2

    from im2latex_encoder.recognizer.stroke_components import nearest_labels

    groups = np.asarray(stroke_symbols, np.int64)
    symbol_of_stroke = np.zeros(len(groups) + 1, np.int64)
    lone = int(groups.max()) + 2 if len(groups) else 1
    for k, group in enumerate(groups):
        symbol_of_stroke[k + 1] = group + 1 if group >= 0 else lone + k
    ink = np.asarray(image) >= threshold
    symbol = symbol_of_stroke[np.asarray(owner_image).astype(np.int64)]
    unowned = ink & (symbol == 0)
    if unowned.any():  # anti-aliased ink: the nearest owned pixel's symbol
        symbol = np.where(unowned, nearest_labels(symbol), symbol)
    symbol = np.where(ink, symbol, 0).astype(np.float32)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    highest = cv2.dilate(symbol, kernel)
    lowest = cv2.erode(np.where(symbol > 0, symbol, np.float32(2**24)), kernel)
    return ink & ((highest != symbol) | (lowest != symbol))


def symbol_cutter_crops(
    data,
    indices: Sequence[int],
    *,
    seed: int = 0,
    crop: tuple[int, int] = (96, 192),
    symbol_pixels: tuple[float, float] = (48.0, 80.0),
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Training crops for the cutter: uint8 images ``(N, H, W)`` and their `boundary_targets`.

    Each expression is drawn once, its typical symbol uniform in `symbol_pixels`, and gives
    two crops: one around a pixel where two symbols meet (or, where none do, any ink pixel)
    and one around any ink pixel, each shifted by up to a quarter of the crop.

    Args:
        data: `StrokeExpressions` (strokes with their trace groups).
        indices: expressions to draw.
        seed: int. The draws and crops.
        crop: (height, width), even.
        symbol_pixels: (low, high).
        progress: bool. A progress bar.

    Example:
    >>> from im2latex_encoder.recognizer.stroke_data import StrokeExpressions
    >>> data = StrokeExpressions.from_lists(
    ...     [[np.array([[0., 5.], [6., 5.]]), np.array([[6., 0.], [6., 10.]])]],
    ...     names=["a"], truths=[""], stroke_groups=[[0, 1]], stroke_labels=[[0, 1]])
    >>> images, targets = symbol_cutter_crops(data, [0])
    >>> images.shape, targets.dtype, bool(targets.any())
    ((2, 96, 192), dtype('bool'), True)
    """
    from im2latex_encoder.recognizer.stroke_components import draw_expression_image

    height, width = crop
    if height % 2 or width % 2 or height < 2 or width < 2:
        raise ValueError(f"`crop` must be two even sizes. Received: crop={crop!r}")
    offsets = np.concatenate([[0], np.cumsum(data.expression_strokes)])
    rng = np.random.default_rng(seed)
    images, targets = [], []
    iterator: Any = indices
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(indices, desc="cutter crops", unit="formula")
    for index in iterator:
        strokes = data.strokes(index)
        image, owners = draw_expression_image(strokes, rng.uniform(*symbol_pixels), owners=True)
        target = boundary_targets(
            image, owners, data.stroke_groups[offsets[index] : offsets[index + 1]]
        )
        for around_boundary in (True, False):
            ys, xs = np.nonzero(target if around_boundary and target.any() else image >= 128)
            if not len(ys):
                continue
            pick = rng.integers(len(ys))
            top = ys[pick] + rng.integers(-height // 4, height // 4) - height // 2
            left = xs[pick] + rng.integers(-width // 4, width // 4) - width // 2
            window = np.zeros((2, height, width), np.uint8)
            y0, x0 = max(0, top), max(0, left)
            y1, x1 = min(image.shape[0], top + height), min(image.shape[1], left + width)
            window[0, y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
            window[1, y0 - top : y1 - top, x0 - left : x1 - left] = target[y0:y1, x0:x1]
            images.append(window[0])
            targets.append(window[1].astype(bool))
    if not images:
        raise ValueError(f"No ink to crop in the {len(indices)} expressions given")
    return np.stack(images), np.stack(targets)


class _CutterBatches(keras.utils.PyDataset):
    """The crops in seeded, shuffled batches, made float one batch at a time.

    By hand rather than `fit(x, y, sample_weight=...)`: the crops stay uint8 in memory, where
    float32 copies of 16,798 crops, their targets and their weights held 3.7 GB, and Keras'
    tensors of them as much again (12.9 GB at the peak).
    """

    def __init__(self, images, targets, batch_size: int, boundary_weight: float, seed: int):
        super().__init__()
        self.images, self.targets = images, targets
        self.batch_size, self.boundary_weight, self.seed = batch_size, boundary_weight, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.images))

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __getitem__(self, index: int):
        rows = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        images, targets = self.images[rows], self.targets[rows]
        # over the ink only (the background is never cut), the meetings weighted
        weights = np.where(images >= 128, np.where(targets, self.boundary_weight, 1.0), 0.0)
        return (
            images[..., None].astype(np.float32) / 255.0,
            targets[..., None].astype(np.float32),
            weights.astype(np.float32),
        )


def train_symbol_cutter(
    images: np.ndarray,
    targets: np.ndarray,
    *,
    epochs: int = 5,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    boundary_weight: float = 10.0,
    seed: int = 0,
    progress: bool = True,
    threshold: float = DEFAULT_THRESHOLD,
) -> SymbolCutter:
    """Train a cutter on crops from `symbol_cutter_crops`.

    Binary cross-entropy over the ink pixels only (the background is never cut), the
    pixels where symbols meet weighted `boundary_weight` (they are about 0.6% of the ink).
    `progress` shows a progress bar; without it, one line per epoch, as `train-formulas`
    prints (a full run is about 40 minutes here: it is never silent that long).

    Example:
    >>> images = np.zeros((2, 8, 8), np.uint8); images[:, 2:6, 3] = 255
    >>> targets = np.zeros(images.shape, bool); targets[:, 3, 3] = True
    >>> train_symbol_cutter(images, targets, epochs=1, progress=False).record["epochs"]
    ... # doctest: +ELLIPSIS
    1/1 - ... - loss: ...
    1
    """
    images, targets = np.asarray(images), np.asarray(targets)
    if images.ndim != 3 or images.dtype != np.uint8 or targets.shape != images.shape:
        raise ValueError(
            "Expected uint8 crops (N, H, W) and bool targets of the same shape. Received: "
            f"{images.dtype} {images.shape} and {targets.dtype} {targets.shape}"
        )
    model = build_symbol_cutter_model(seed=seed)
    model.compile(keras.optimizers.Adam(learning_rate), "binary_crossentropy")
    batches = _CutterBatches(images, targets, batch_size, boundary_weight, seed)
    history = model.fit(batches, epochs=epochs, verbose=1 if progress else 2)
    record = {
        "crops": int(len(images)),
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "learning_rate": float(learning_rate),
        "boundary_weight": float(boundary_weight),
        "seed": int(seed),
        "loss": [float(v) for v in history.history["loss"]],
    }
    return SymbolCutter(model, threshold=threshold, record=record)
