"""`SymbolEncoder`: the conv stack that turns an image into a feature grid or sequence."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from im2latex_encoder.positional import PositionalEncoding2D

_NORMALIZATIONS = (None, "batch", "group")
_PADDINGS = ("valid", "same")
_OUTPUTS = ("sequence", "grid")
_POOL_SIZE = 2


@keras.saving.register_keras_serializable(package="im2latex_encoder")
class SymbolEncoder(keras.Model):
    """A conv stack that encodes a math image into a flattened feature grid.

    The default configuration is the 2019 seed notebook's stack: Conv2D 32 → MaxPool 2 →
    Conv2D 64 → MaxPool 2 → Conv2D 64, 3×3 kernels, ReLU, valid padding, so a 128×128×1 image
    gives a 28×28×64 grid. By default the grid is flattened row-major into a sequence of
    `H'·W'` positions, `(batch, H'·W', C)`, which is what an attention decoder consumes;
    `output="grid"` keeps `(batch, H', W', C)`. Height and width may be static or unknown,
    since formula images are wide and vary in size.

    Input images are float, ink 1.0 on background 0.0, shape `(batch, H, W, 1)`.

    Args:
        filters: sequence of int. Filters of each conv stage; a 2×2 max pool sits between
            consecutive stages.
        kernel_size: int. Square kernel size of every conv.
        normalization: None, `"batch"` or `"group"`. Normalization after each conv, before the
            activation.
        groups: int. Groups for `normalization="group"`.
        padding: `"valid"` (the seed's) or `"same"`.
        activation: str. Activation after each conv.
        positional_encoding: bool. Add a 2D sinusoidal position signal to the grid (after the
            projection, if any).
        projection_dim: int or None. Project each grid position to this width with a Dense
            layer (a decoder's model width).
        output_norm: bool. Layer-normalize each position's channels, after the projection
            and before the positional encoding. A decoder on top of a pretrained stack wants
            it: the stack's features have whatever scale pretraining left (crohme101's are
            ~190x a fresh stack's), which would drown the unit-scale positional signal and
            the decoder's gradients.
        output: `"sequence"` for `(batch, H'·W', C)` or `"grid"` for `(batch, H', W', C)`.
        input_channels: int. Channels of the input images (1 for grayscale).
        max_image_side: int. Largest accepted height or width, a guard against inputs that
            would exhaust memory.
        **kwargs: standard `keras.Model` arguments (`name`, `dtype`, `trainable`).

    Example:
    >>> import numpy as np
    >>> encoder = SymbolEncoder()
    >>> tuple(encoder(np.zeros((2, 128, 128, 1), "float32")).shape)
    (2, 784, 64)
    >>> encoder.grid_shape((64, 512))
    (12, 124)

    Pretrained, as the front of a formula decoder of width 256:
    >>> encoder = SymbolEncoder.from_preset(
    ...     "crohme101", projection_dim=256, output_norm=True,
    ...     positional_encoding=True)  # doctest: +SKIP
    """

    def __init__(
        self,
        filters: Sequence[int] = (32, 64, 64),
        kernel_size: int = 3,
        normalization: str | None = None,
        groups: int = 8,
        padding: str = "valid",
        activation: str = "relu",
        positional_encoding: bool = False,
        projection_dim: int | None = None,
        output_norm: bool = False,
        output: str = "sequence",
        input_channels: int = 1,
        max_image_side: int = 8192,
        **kwargs,
    ):
        filters = tuple(int(f) for f in filters)
        _check_config(
            filters,
            kernel_size,
            normalization,
            groups,
            padding,
            projection_dim,
            output,
            input_channels,
            max_image_side,
        )
        super().__init__(**kwargs)

        # === Layers ===
        self.convs = []
        self.norms = []
        for index, count in enumerate(filters):
            self.convs.append(
                layers.Conv2D(
                    count,
                    kernel_size,
                    padding=padding,
                    activation=None,
                    use_bias=normalization is None,
                    dtype=self.dtype_policy,
                    name=f"stage{index}_conv",
                )
            )
            if normalization == "batch":
                self.norms.append(
                    layers.BatchNormalization(dtype=self.dtype_policy, name=f"stage{index}_bn")
                )
            elif normalization == "group":
                self.norms.append(
                    layers.GroupNormalization(
                        groups=min(groups, count), dtype=self.dtype_policy, name=f"stage{index}_gn"
                    )
                )
        self.activation_layer = layers.Activation(activation, dtype=self.dtype_policy)
        self.pool = layers.MaxPooling2D(_POOL_SIZE, dtype=self.dtype_policy, name="pool")
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
        self.filters = filters
        self.kernel_size = int(kernel_size)
        self.normalization = normalization
        self.groups = int(groups)
        self.padding = padding
        self.activation = activation
        self.positional_encoding = bool(positional_encoding)
        self.projection_dim = int(projection_dim) if projection_dim else None
        self.output_norm = bool(output_norm)
        self.output_mode = output
        self.input_channels = int(input_channels)
        self.max_image_side = int(max_image_side)

        # Every weight depends only on the channel count, so the encoder is built (and its
        # weights can be loaded) before any image size is known.
        self.build((None, None, None, self.input_channels))

    # --- Shapes -----------------------------------------------------------------------------

    @property
    def output_channels(self) -> int:
        """Channels `C` of each output position (`projection_dim` when set).

        Example:
        >>> SymbolEncoder().output_channels, SymbolEncoder(projection_dim=128).output_channels
        (64, 128)
        """
        return self.projection_dim or self.filters[-1]

    def grid_shape(self, image_size: int | Sequence[int]) -> tuple[int, int]:
        """Return the grid size `(H', W')` this encoder gives for an image size.

        Args:
            image_size: int or (height, width). A square side or the image's height and width.

        Raises:
            ValueError: if the image is smaller than `minimum_image_side()` in either axis.

        Example:
        >>> SymbolEncoder().grid_shape(128)
        (28, 28)
        """
        height, width = _as_pair(image_size, "image_size")
        minimum = self.minimum_image_side()
        if height < minimum or width < minimum:
            raise ValueError(
                f"Images must be at least {minimum}×{minimum} pixels for this encoder "
                f"(filters={self.filters}, kernel_size={self.kernel_size}, "
                f"padding={self.padding!r}). Received: image_size=({height}, {width})"
            )
        return self._side_out(height), self._side_out(width)

    def minimum_image_side(self) -> int:
        """Return the smallest height/width that leaves at least one grid cell.

        Example:
        >>> SymbolEncoder().minimum_image_side(), SymbolEncoder(padding="same").minimum_image_side()
        (18, 4)
        """
        side = 1
        while self._side_out(side) < 1:
            side += 1
        return side

    def _side_out(self, side: int) -> int:
        for index in range(len(self.filters)):
            if self.padding == "valid":
                side = side - self.kernel_size + 1
            if side < 1:
                return 0
            if index < len(self.filters) - 1:
                side //= _POOL_SIZE
        return max(side, 0)

    # --- Keras ------------------------------------------------------------------------------

    def build(self, input_shape):
        channels = input_shape[-1]
        shape = (None, None, None, channels)
        for index, conv in enumerate(self.convs):
            conv.build(shape)
            shape = (None, None, None, self.filters[index])
            if self.norms:
                self.norms[index].build(shape)
        if self.projection is not None:
            self.projection.build(shape)
        if self.output_norm_layer is not None:
            self.output_norm_layer.build((None, None, None, self.output_channels))
        if self.positional is not None:
            self.positional.build((None, None, None, self.output_channels))
        self.built = True

    def call(self, images, training=None):
        self._check_images(images)
        x = images
        for index, conv in enumerate(self.convs):
            x = conv(x)
            if self.norms:
                x = self.norms[index](x, training=training)
            x = self.activation_layer(x)
            if index < len(self.convs) - 1:
                x = self.pool(x)
        if self.projection is not None:
            x = self.projection(x)
        if self.output_norm_layer is not None:
            x = self.output_norm_layer(x)
        if self.positional is not None:
            x = self.positional(x)
        if self.output_mode == "grid":
            return x
        height, width = x.shape[1], x.shape[2]
        if height is not None and width is not None:
            return ops.reshape(x, (-1, height * width, self.output_channels))
        return ops.reshape(x, (ops.shape(x)[0], -1, self.output_channels))

    def compute_output_shape(self, input_shape):
        batch, height, width = input_shape[0], input_shape[1], input_shape[2]
        grid_h = self._side_out(height) if height is not None else None
        grid_w = self._side_out(width) if width is not None else None
        if self.output_mode == "grid":
            return (batch, grid_h, grid_w, self.output_channels)
        positions = grid_h * grid_w if grid_h is not None and grid_w is not None else None
        return (batch, positions, self.output_channels)

    def _check_images(self, images) -> None:
        shape = tuple(images.shape)
        if len(shape) != 4:
            hint = ""
            if len(shape) == 3:
                hint = (
                    " Add the channel axis (`images[..., None]`) for a batch of grayscale "
                    "images, or a batch axis (`image[None]`) for one image."
                )
            raise ValueError(
                "SymbolEncoder expects images of shape (batch, height, width, "
                f"{self.input_channels}). Received: images.shape={shape}.{hint}"
            )
        if shape[-1] != self.input_channels:
            raise ValueError(
                f"SymbolEncoder expects {self.input_channels} channel(s) (ink 1.0 on "
                f"background 0.0). Received: images.shape={shape} with {shape[-1]} channels."
            )
        dtype = keras.backend.standardize_dtype(images.dtype)
        if "float" not in dtype:
            raise ValueError(
                "SymbolEncoder expects float images with ink 1.0 on background 0.0. "
                f"Received: dtype={dtype}. Convert with `images.astype('float32') / 255` "
                "if ink is 255."
            )
        if shape[0] == 0:
            raise ValueError(
                f"SymbolEncoder received an empty batch. Received: images.shape={shape}"
            )
        minimum = self.minimum_image_side()
        for axis_name, side in (("height", shape[1]), ("width", shape[2])):
            if side is None:
                continue
            if side < minimum:
                raise ValueError(
                    f"Images must be at least {minimum}×{minimum} pixels for this encoder "
                    f"(filters={self.filters}, kernel_size={self.kernel_size}, "
                    f"padding={self.padding!r}). Received: {axis_name}={side} in "
                    f"images.shape={shape}"
                )
            if side > self.max_image_side:
                raise ValueError(
                    f"Images may be at most {self.max_image_side} pixels high or wide "
                    f"(`max_image_side`). Received: {axis_name}={side} in images.shape={shape}"
                )

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "filters": list(self.filters),
            "kernel_size": self.kernel_size,
            "normalization": self.normalization,
            "groups": self.groups,
            "padding": self.padding,
            "activation": self.activation,
            "positional_encoding": self.positional_encoding,
            "projection_dim": self.projection_dim,
            "output_norm": self.output_norm,
            "output": self.output_mode,
            "input_channels": self.input_channels,
            "max_image_side": self.max_image_side,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)

    # --- Presets ----------------------------------------------------------------------------

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> SymbolEncoder:
        """Load a pretrained encoder from a preset name or directory.

        Works with encoder presets and with classifier presets (their encoder part). Arguments
        that change no weight (`output`, `positional_encoding`) simply override the saved
        configuration; `projection_dim` and `output_norm` add new layers (a randomly initialised
        projection, a fresh layer normalization) on top of the pretrained stack.

        Args:
            preset: str. A shipped preset's name (see `im2latex_encoder.list_presets()`) or a
                preset directory.
            **overrides: constructor arguments to change.

        Raises:
            PresetError: if the preset is unknown, incomplete or fails its sha256 check.

        Example:
        >>> encoder = SymbolEncoder.from_preset("crohme101", output="grid")  # doctest: +SKIP
        """
        from im2latex_encoder import presets

        return presets.load_encoder(preset, **overrides)

    def save_to_preset(
        self,
        preset_dir: str,
        metadata: dict | None = None,
        extra_files: dict[str, str] | None = None,
    ) -> None:
        """Save this encoder as a preset directory (config, weights, sha256 metadata).

        Args:
            preset_dir: str. Directory to write; replaced atomically if it exists.
            metadata: dict or None. Extra JSON-serialisable facts (training data, metrics).
            extra_files: dict or None. Text files to add, e.g. ``{"model_card.md": text}``.

        Example:
        >>> SymbolEncoder().save_to_preset("/tmp/my_encoder")  # doctest: +SKIP
        """
        from im2latex_encoder import presets

        presets.save_preset(self, preset_dir, metadata=metadata, extra_files=extra_files)


def _as_pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    try:
        height, width = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be an int or a (height, width) pair. Received: {name}={value!r}"
        ) from None
    return height, width


def _check_config(
    filters,
    kernel_size,
    normalization,
    groups,
    padding,
    projection_dim,
    output,
    input_channels,
    max_image_side,
) -> None:
    if not filters or any(f < 1 for f in filters):
        raise ValueError(
            f"`filters` must be a non-empty sequence of positive ints. Received: filters={filters}"
        )
    if not isinstance(kernel_size, int) or kernel_size < 1:
        raise ValueError(
            f"`kernel_size` must be a positive int. Received: kernel_size={kernel_size!r}"
        )
    if normalization not in _NORMALIZATIONS:
        raise ValueError(
            f"`normalization` must be one of None, 'batch', 'group'. Received: normalization={normalization!r}"
        )
    if normalization == "group" and (groups < 1 or any(f % min(groups, f) for f in filters)):
        raise ValueError(
            f"`groups` must divide every stage's filters for group normalization. "
            f"Received: groups={groups}, filters={filters}"
        )
    if padding not in _PADDINGS:
        raise ValueError(f"`padding` must be one of 'valid', 'same'. Received: padding={padding!r}")
    if projection_dim is not None and (not isinstance(projection_dim, int) or projection_dim < 1):
        raise ValueError(
            f"`projection_dim` must be a positive int or None. Received: projection_dim={projection_dim!r}"
        )
    if output not in _OUTPUTS:
        raise ValueError(f"`output` must be one of 'sequence', 'grid'. Received: output={output!r}")
    if not isinstance(input_channels, int) or input_channels < 1:
        raise ValueError(
            f"`input_channels` must be a positive int. Received: input_channels={input_channels!r}"
        )
    if not isinstance(max_image_side, int) or max_image_side < 1:
        raise ValueError(
            f"`max_image_side` must be a positive int. Received: max_image_side={max_image_side!r}"
        )
