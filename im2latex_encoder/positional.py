"""2D sinusoidal positional encoding for feature grids."""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="im2latex_encoder")
class PositionalEncoding2D(keras.layers.Layer):
    """Add a fixed 2D sinusoidal position signal to a `(batch, H, W, C)` grid.

    Half of the channels encode the row, the other half the column, each as sines and cosines
    at geometrically spaced wavelengths (Genthial's im2latex `add_timing_signal_nd`; Vaswani et
    al.'s encoding applied per axis). It has no weights and works for any, even unknown, `H`
    and `W`, so an attention decoder can tell where in a wide formula image each position lies.

    Args:
        min_timescale: float. Shortest wavelength, in grid cells.
        max_timescale: float. Longest wavelength, in grid cells.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> import numpy as np
    >>> layer = PositionalEncoding2D()
    >>> grid = np.zeros((2, 3, 5, 8), "float32")
    >>> tuple(layer(grid).shape)
    (2, 3, 5, 8)
    """

    def __init__(self, min_timescale: float = 1.0, max_timescale: float = 1.0e4, **kwargs):
        super().__init__(**kwargs)
        if not 0 < min_timescale < max_timescale:
            raise ValueError(
                "`min_timescale` must be positive and below `max_timescale`. "
                f"Received: min_timescale={min_timescale}, max_timescale={max_timescale}"
            )
        self.min_timescale = float(min_timescale)
        self.max_timescale = float(max_timescale)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "PositionalEncoding2D expects a grid of shape (batch, height, width, channels). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        channels = input_shape[-1]
        if channels is None or channels % 4:
            raise ValueError(
                "PositionalEncoding2D needs a channel count divisible by 4 (sin and cos for rows "
                f"and for columns). Received: channels={channels}"
            )
        self.built = True

    def call(self, grid):
        shape = ops.shape(grid)
        height, width, channels = shape[1], shape[2], grid.shape[-1]
        quarter = channels // 4
        log_increment = math.log(self.max_timescale / self.min_timescale) / max(quarter - 1, 1)
        inverse_timescales = self.min_timescale * ops.exp(
            ops.arange(quarter, dtype="float32") * -log_increment
        )
        rows = ops.cast(ops.arange(height), "float32")
        columns = ops.cast(ops.arange(width), "float32")
        # Broadcasting (H, 1) + (1, W) gives each cell's row and column without a dynamic tile.
        row_grid = rows[:, None] + ops.zeros_like(columns)[None, :]
        column_grid = columns[None, :] + ops.zeros_like(rows)[:, None]
        # expand_dims, not `[..., None]`: TFLite has no builtin for a new-axis strided slice.
        row_angles = ops.expand_dims(row_grid, -1) * inverse_timescales
        column_angles = ops.expand_dims(column_grid, -1) * inverse_timescales
        signal = ops.concatenate(
            [
                ops.sin(row_angles),
                ops.cos(row_angles),
                ops.sin(column_angles),
                ops.cos(column_angles),
            ],
            axis=-1,
        )
        return grid + ops.cast(signal[None], grid.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"min_timescale": self.min_timescale, "max_timescale": self.max_timescale})
        return config
