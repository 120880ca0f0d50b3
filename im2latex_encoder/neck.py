"""`FeatureGridNeck`: what a task puts between the backbone's grid and its own layers."""

from __future__ import annotations

import keras
from keras import layers, ops

from im2latex_encoder.positional import PositionalEncoding2D

_OUTPUTS = ("sequence", "grid")


@keras.saving.register_keras_serializable(package="im2latex_encoder")
class FeatureGridNeck(keras.layers.Layer):
    """Adapt a backbone's feature grid to a decoder: project, normalize, locate, flatten.

    Takes the grid `(batch, H', W', C)` of a `SymbolEncoder(output="grid")` (or its
    `feature_grid(images)`) and applies, in this order and each only
    when asked: a Dense projection of every position to `projection_dim` (the decoder's width),
    a layer normalization of each position's channels, a 2D sinusoidal position signal
    (`PositionalEncoding2D`), and the row-major flattening to `(batch, H'·W', C')` an attention
    decoder consumes. A task owns its neck and saves it with its own weights, so the backbone
    stays the pretrained conv stack whatever task it serves.

    The layer normalization comes before the positional signal on purpose: a pretrained stack's
    features have whatever scale pretraining left (crohme101's are ~190x a fresh stack's), which
    would drown the unit-scale positional signal and the decoder's gradients.

    Args:
        projection_dim: int or None. Width to project each position to; None keeps the
            backbone's channels.
        output_norm: bool. Layer-normalize each position's channels (after the projection).
        positional_encoding: bool. Add the 2D sinusoidal position signal (last, before
            flattening); needs a width divisible by 4.
        output: `"sequence"` for `(batch, H'·W', C')` or `"grid"` for `(batch, H', W', C')`.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:
    >>> import numpy as np
    >>> neck = FeatureGridNeck(projection_dim=32, output_norm=True, positional_encoding=True)
    >>> tuple(neck(np.zeros((2, 28, 28, 64), "float32")).shape)
    (2, 784, 32)
    >>> neck.output_channels(64), FeatureGridNeck().output_channels(64)
    (32, 64)

    After a backbone that gives the grid, as the front of a decoder of width 128:
    >>> from im2latex_encoder import SymbolEncoder
    >>> encoder = SymbolEncoder(filters=(8, 16), output="grid")
    >>> neck = FeatureGridNeck(128, output_norm=True, positional_encoding=True)
    >>> tuple(neck(encoder(np.zeros((1, 32, 64, 1), "float32"))).shape)
    (1, 377, 128)
    """

    def __init__(
        self,
        projection_dim: int | None = None,
        output_norm: bool = False,
        positional_encoding: bool = False,
        output: str = "sequence",
        **kwargs,
    ):
        check_neck_arguments(projection_dim, output)
        super().__init__(**kwargs)

        # === Layers ===
        self.projection = (
            layers.Dense(projection_dim, dtype=self.dtype_policy, name="projection")
            if projection_dim
            else None
        )
        self.output_norm_layer = (
            layers.LayerNormalization(dtype=self.dtype_policy, name="output_norm")
            if output_norm
            else None
        )
        self.positional = (
            PositionalEncoding2D(dtype=self.dtype_policy, name="positional_encoding")
            if positional_encoding
            else None
        )

        # === Config ===
        self.projection_dim = int(projection_dim) if projection_dim else None
        self.output_norm = bool(output_norm)
        self.positional_encoding = bool(positional_encoding)
        self.output_mode = output

    def output_channels(self, input_channels: int) -> int:
        """Channels of each output position for a backbone of `input_channels` channels.

        Example:
        >>> FeatureGridNeck(projection_dim=48).output_channels(64)
        48
        """
        return self.projection_dim or int(input_channels)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            hint = (
                " A SymbolEncoder gives the flattened grid by default: build it with "
                "output='grid', or call `encoder.feature_grid(images)`."
                if len(input_shape) == 3
                else ""
            )
            raise ValueError(
                "FeatureGridNeck expects a grid of shape (batch, height, width, channels) with "
                f"known channels. Received: input_shape={tuple(input_shape)}.{hint}"
            )
        build_neck_layers(
            self.projection, self.output_norm_layer, self.positional, tuple(input_shape)
        )
        self.built = True

    def call(self, grid):
        return apply_neck(
            grid, self.projection, self.output_norm_layer, self.positional, self.output_mode
        )

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = tuple(input_shape)
        channels = self.output_channels(channels)
        if self.output_mode == "grid":
            return (batch, height, width, channels)
        positions = height * width if height is not None and width is not None else None
        return (batch, positions, channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "projection_dim": self.projection_dim,
                "output_norm": self.output_norm,
                "positional_encoding": self.positional_encoding,
                "output": self.output_mode,
            }
        )
        return config


# Shared with `SymbolEncoder`'s deprecated neck arguments, so both give the same numbers.


def check_neck_arguments(projection_dim, output) -> None:
    """Refuse a bad `projection_dim` or `output`, saying what was expected."""
    if projection_dim is not None and (
        isinstance(projection_dim, bool)
        or not isinstance(projection_dim, int)
        or projection_dim < 1
    ):
        raise ValueError(
            f"`projection_dim` must be a positive int or None. Received: projection_dim={projection_dim!r}"
        )
    if output not in _OUTPUTS:
        raise ValueError(f"`output` must be one of 'sequence', 'grid'. Received: output={output!r}")


def build_neck_layers(projection, norm, positional, grid_shape: tuple) -> None:
    """Build the neck's layers for a grid of `grid_shape` (batch, H', W', C)."""
    shape = (None, None, None, grid_shape[-1])
    if projection is not None:
        if not projection.built:
            projection.build(shape)
        shape = (None, None, None, projection.units)
    for layer in (norm, positional):
        if layer is not None and not layer.built:
            layer.build(shape)


def apply_neck(grid, projection, norm, positional, output: str):
    """Projection, layer norm, positional signal, then (for `"sequence"`) row-major flattening."""
    x = grid
    if projection is not None:
        x = projection(x)
    if norm is not None:
        x = norm(x)
    if positional is not None:
        x = positional(x)
    if output == "grid":
        return x
    return flatten_grid(x)


def flatten_grid(grid):
    """Row-major flattening `(batch, H', W', C)` → `(batch, H'·W', C)`: cell (i, j) is i·W' + j.

    Example:
    >>> import numpy as np
    >>> grid = np.arange(12, dtype="float32").reshape(1, 2, 3, 2)
    >>> flat = keras.ops.convert_to_numpy(flatten_grid(grid))
    >>> flat.shape, flat[0, 1 * 3 + 2].tolist() == grid[0, 1, 2].tolist()
    ((1, 6, 2), True)
    """
    channels = grid.shape[-1]
    height, width = grid.shape[1], grid.shape[2]
    if height is not None and width is not None:
        return ops.reshape(grid, (-1, height * width, channels))
    return ops.reshape(grid, (ops.shape(grid)[0], -1, channels))
