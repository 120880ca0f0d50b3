"""`SymbolEncoder`: the backbone, a conv stack that turns an image into a feature grid."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import keras
from keras import layers

from im2latex_encoder import presets
from im2latex_encoder.neck import (
    apply_neck,
    build_neck_layers,
    check_neck_arguments,
    flatten_grid,
)
from im2latex_encoder.positional import PositionalEncoding2D

_NORMALIZATIONS = (None, "batch", "group")
_PADDINGS = ("valid", "same")
_POOL_SIZE = 2
_OUTPUTS = ("sequence", "grid")
# 0.1.0's neck arguments, now `FeatureGridNeck`'s; accepted with a DeprecationWarning.
# (`output`, also 0.1.0's, is the encoder's own option again: the flattening is the backbone's.)
NECK_ARGUMENTS = ("positional_encoding", "projection_dim", "output_norm")
# Their 0.1.0 values that add no layer (what every plain 0.1.0 config.json records).
_PLAIN_NECK = {"positional_encoding": False, "projection_dim": None, "output_norm": False}
# Configuration changes `from_preset` applies to pretrained weights (none changes a weight).
_WEIGHTLESS = ("name", "trainable", "dtype", "max_image_side", "output")


@keras.saving.register_keras_serializable(package="im2latex_encoder")
class SymbolEncoder(keras.Model):
    """The backbone: a conv stack that encodes a math image into a flattened feature grid.

    The default configuration is the 2019 seed notebook's stack: Conv2D 32 → MaxPool 2 →
    Conv2D 64 → MaxPool 2 → Conv2D 64, 3×3 kernels, ReLU, valid padding, so a 128×128×1 image
    gives a 28×28×64 grid, emitted flattened row-major as the sequence `(batch, H'·W', C)`
    (here `(batch, 784, 64)`) that an attention decoder consumes: position `i·W' + j` is grid
    cell `(i, j)`. `output="grid"` gives the grid `(batch, H', W', C)` itself, for a task that
    needs the 2-D layout (a neck with 2-D positional encoding); `feature_grid(images)` gives
    it whatever `output` says. Height and width may be static or unknown, since formula
    images are wide and vary in size. The encoder is the stack and its flattening, as a
    keras-hub backbone: it is what a preset's `config.json` and `model.weights.h5` hold,
    whatever task it was trained under. What a task puts between the grid and its own layers
    (a projection to a decoder's width, layer normalization, 2D positional encoding) is a
    `FeatureGridNeck` the task owns.

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
        output: `"sequence"` (the default) for the flattened grid `(batch, H'·W', C)`, or
            `"grid"` for `(batch, H', W', C)`.
        positional_encoding, projection_dim, output_norm: deprecated since 0.2.0, kept for one
            release: `FeatureGridNeck` takes them. Given any of them, the encoder applies that
            neck itself before `output`'s flattening, as 0.1.0 did, with a
            `DeprecationWarning`.
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

    Inside another model, as the memory of an attention decoder:
    >>> image = keras.Input((None, None, 1))
    >>> tokens = keras.Input((None,), dtype="int32")
    >>> features = SymbolEncoder()(image)
    >>> queries = keras.layers.Embedding(40, 64)(tokens)
    >>> context = keras.layers.MultiHeadAttention(num_heads=2, key_dim=32)(queries, features)
    >>> tuple(context.shape)
    (None, None, 64)

    The grid, for a neck with 2-D positional encoding:
    >>> from im2latex_encoder import FeatureGridNeck
    >>> grid_encoder = SymbolEncoder(output="grid")
    >>> tuple(grid_encoder(np.zeros((2, 128, 128, 1), "float32")).shape)
    (2, 28, 28, 64)
    >>> neck = FeatureGridNeck(projection_dim=32, output_norm=True, positional_encoding=True)
    >>> tuple(neck(grid_encoder(np.zeros((2, 128, 128, 1), "float32"))).shape)
    (2, 784, 32)

    Pretrained (the backbone of the `crohme101` classifier preset):
    >>> encoder = SymbolEncoder.from_preset("crohme101")
    >>> encoder.filters
    (32, 64, 64)
    """

    def __init__(
        self,
        filters: Sequence[int] = (32, 64, 64),
        kernel_size: int = 3,
        normalization: str | None = None,
        groups: int = 8,
        padding: str = "valid",
        activation: str = "relu",
        positional_encoding: bool | None = None,
        projection_dim: int | None = None,
        output_norm: bool | None = None,
        output: str = "sequence",
        input_channels: int = 1,
        max_image_side: int = 8192,
        **kwargs,
    ):
        filters = tuple(int(f) for f in filters)
        given = {
            name: value
            for name, value in (
                ("positional_encoding", positional_encoding),
                ("projection_dim", projection_dim),
                ("output_norm", output_norm),
            )
            if value is not None
        }
        if output not in _OUTPUTS:
            raise ValueError(
                f"`output` must be one of 'sequence', 'grid'. Received: output={output!r}"
            )
        legacy_neck: dict[str, Any] | None = None
        if given:
            legacy_neck = {**_PLAIN_NECK, **given}
            arguments = ", ".join(f"{k}={v!r}" for k, v in given.items())
            warnings.warn(
                f"SymbolEncoder({arguments}) is deprecated and will be removed in 0.3.0: "
                "SymbolEncoder is the backbone (the conv stack and its flattening). Put a "
                f"FeatureGridNeck({arguments}) after a SymbolEncoder(output='grid'); "
                "FormulaRecognizer builds its own (hidden_dim=...).",
                DeprecationWarning,
                stacklevel=2,
            )
            check_neck_arguments(legacy_neck["projection_dim"], output)
        _check_config(
            filters, kernel_size, normalization, groups, padding, input_channels, max_image_side
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
        # The deprecated neck's layers keep 0.1.0's attribute and layer names, so the weights
        # of 0.1.0 `.keras` files and presets land where they were saved from.
        neck: dict[str, Any] = legacy_neck or {}
        self.projection = (
            layers.Dense(neck["projection_dim"], dtype=self.dtype_policy, name="projection")
            if neck.get("projection_dim")
            else None
        )
        self.output_norm_layer = (
            layers.LayerNormalization(dtype=self.dtype_policy, name="output_norm")
            if neck.get("output_norm")
            else None
        )
        self.positional = (
            PositionalEncoding2D(dtype=self.dtype_policy, name="positional_encoding")
            if neck.get("positional_encoding")
            else None
        )

        # === Config ===
        self.filters = filters
        self.kernel_size = int(kernel_size)
        self.normalization = normalization
        self.groups = int(groups)
        self.padding = padding
        self.activation = activation
        self.input_channels = int(input_channels)
        self.max_image_side = int(max_image_side)
        self._legacy_neck = legacy_neck
        self._legacy_arguments = given
        self.positional_encoding = bool(neck.get("positional_encoding"))
        self.projection_dim = int(neck["projection_dim"]) if neck.get("projection_dim") else None
        self.output_norm = bool(neck.get("output_norm"))
        self.output_mode = output

        # Every weight depends only on the channel count, so the encoder is built (and its
        # weights can be loaded) before any image size is known.
        self.build((None, None, None, self.input_channels))

    # --- Shapes -----------------------------------------------------------------------------

    @property
    def output_channels(self) -> int:
        """Channels `C` of each output position (the last stage's filters).

        Example:
        >>> SymbolEncoder().output_channels, SymbolEncoder(filters=(8, 16)).output_channels
        (64, 16)
        """
        return self.projection_dim or self.filters[-1]

    @property
    def stack_layers(self) -> list:
        """The conv stack's layers with weights: each stage's conv and normalization.

        Example:
        >>> [layer.name for layer in SymbolEncoder(filters=(8, 8)).stack_layers]
        ['stage0_conv', 'stage1_conv']
        """
        return [*self.convs, *self.norms]

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
        height, width = as_pair(image_size, "image_size")
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
        build_neck_layers(self.projection, self.output_norm_layer, self.positional, shape)
        self.built = True

    def call(self, images, training=None):
        grid = self.feature_grid(images, training=training)
        if self.output_mode == "grid":
            return grid
        return flatten_grid(grid)

    def feature_grid(self, images: Any, training: bool | None = None) -> Any:
        """Return the feature grid `(batch, H', W', C)`, unflattened whatever `output` says.

        What a task that needs the 2-D layout calls (`FormulaRecognizer`'s neck adds a 2-D
        positional signal), so it can be built around any encoder object, shared or not.
        Its row-major flattening is what `encoder(images)` gives with `output="sequence"`.

        Args:
            images: float tensor `(batch, H, W, input_channels)`, ink 1.0 on background 0.0.
            training: bool or None. Training mode (batch normalization's statistics).

        Example:
        >>> import numpy as np
        >>> encoder = SymbolEncoder()
        >>> images = np.zeros((2, 64, 96, 1), "float32")
        >>> tuple(encoder.feature_grid(images).shape), tuple(encoder(images).shape)
        ((2, 12, 20, 64), (2, 240, 64))
        """
        self._check_images(images)
        x = images
        for index, conv in enumerate(self.convs):
            x = conv(x)
            if self.norms:
                x = self.norms[index](x, training=training)
            x = self.activation_layer(x)
            if index < len(self.convs) - 1:
                x = self.pool(x)
        if self._legacy_neck is None:
            return x
        return apply_neck(x, self.projection, self.output_norm_layer, self.positional, "grid")

    def compute_output_shape(self, input_shape):
        batch, grid_h, grid_w, channels = self.grid_output_shape(input_shape)
        if self.output_mode == "grid":
            return (batch, grid_h, grid_w, channels)
        positions = grid_h * grid_w if grid_h is not None and grid_w is not None else None
        return (batch, positions, channels)

    def grid_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        """The shape `feature_grid` gives for images of `input_shape` (None: unknown).

        Example:
        >>> SymbolEncoder().grid_output_shape((None, 128, None, 1))
        (None, 28, None, 64)
        """
        batch, height, width = input_shape[0], input_shape[1], input_shape[2]
        grid_h = self._side_out(height) if height is not None else None
        grid_w = self._side_out(width) if width is not None else None
        return (batch, grid_h, grid_w, self.output_channels)

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
        check_float_images(images.dtype)
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
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "filters": list(self.filters),
            "kernel_size": self.kernel_size,
            "normalization": self.normalization,
            "groups": self.groups,
            "padding": self.padding,
            "activation": self.activation,
            "output": self.output_mode,
            "input_channels": self.input_channels,
            "max_image_side": self.max_image_side,
        }
        # Only the deprecated neck arguments given (0.1.0 wrote all three, `projection_dim`
        # even when None).
        config.update(dict(self._legacy_arguments))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        neck = {name: config.pop(name) for name in NECK_ARGUMENTS if name in config}
        if "output" not in config:
            # Written by 0.2.x, whose encoder gave the grid unless a deprecated neck argument
            # was given (0.1.0 and this version always record `output`).
            config["output"] = "sequence" if neck else "grid"
        # A neck argument at its plain value adds no layer (0.1.0 recorded all three, even
        # unused); any other is rebuilt as saved, so its weights load and its outputs are the
        # same. A file cannot change its code, so no warning.
        config.update(
            {name: value for name, value in neck.items() if value not in (None, _PLAIN_NECK[name])}
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return cls(**config)

    # --- Presets ----------------------------------------------------------------------------

    @classmethod
    def from_preset(cls, preset: str, **kwargs) -> SymbolEncoder:
        """Load a pretrained backbone from a preset name or directory.

        Works with every preset: a backbone's, or a task's (`SymbolClassifier`,
        `FormulaRecognizer`), whose backbone it loads, as keras-hub's `Backbone.from_preset`.
        `name`, `trainable`, `dtype`, `max_image_side` and `output` may be changed; the
        deprecated neck arguments (`projection_dim`, `output_norm`, `positional_encoding`)
        still add 0.1.0's layers on top of the pretrained stack, with a `DeprecationWarning`.

        Args:
            preset: str. A shipped preset's name (see `im2latex_encoder.list_presets()`) or a
                preset directory.
            **kwargs: configuration changes (see above).

        Raises:
            PresetError: if the preset is unknown, incomplete, fails its sha256 check, or a
                change would alter the pretrained stack's weights.

        Example:
        >>> encoder = SymbolEncoder.from_preset("crohme101", trainable=False)
        >>> encoder.trainable, encoder.output_channels, encoder.output_mode
        (False, 64, 'sequence')
        >>> SymbolEncoder.from_preset("crohme101", output="grid").output_mode
        'grid'
        """
        encoder = presets.load_backbone(cls, preset)
        if not kwargs:
            return encoder
        try:
            return encoder._apply_preset_kwargs(**kwargs)
        except ValueError as error:
            raise presets.PresetError(preset, str(error)) from error

    def save_to_preset(
        self,
        preset_dir: str,
        metadata: dict | None = None,
        extra_files: dict[str, str] | None = None,
    ) -> None:
        """Save this backbone as a preset directory (config, weights, sha256 metadata).

        Args:
            preset_dir: str. Directory to write; replaced atomically if it exists.
            metadata: dict or None. Extra JSON-serialisable facts (training data, metrics).
            extra_files: dict or None. Text files to add, e.g. ``{"model_card.md": text}``.

        Example:
        >>> import tempfile
        >>> directory = tempfile.mkdtemp() + "/my_encoder"
        >>> SymbolEncoder(filters=(4, 8)).save_to_preset(directory)
        >>> SymbolEncoder.from_preset(directory).filters
        (4, 8)
        """
        presets.save_preset(self, preset_dir, metadata=metadata, extra_files=extra_files)

    def _apply_preset_kwargs(self, **kwargs) -> SymbolEncoder:
        """This loaded encoder with `kwargs` applied, its pretrained weights kept (`from_preset`)."""
        config = self.get_config()
        refused = sorted(
            name
            for name, value in kwargs.items()
            if name not in _WEIGHTLESS
            and name not in NECK_ARGUMENTS
            and config.get(name) != (list(value) if isinstance(value, tuple) else value)
        )
        if refused:
            raise ValueError(
                f"cannot override {refused}: they change the pretrained stack's weights. "
                f"Overridable: {sorted(_WEIGHTLESS)}; for a projection, layer norm or positional "
                "encoding, put a FeatureGridNeck after SymbolEncoder(output='grid')"
            )
        if isinstance(kwargs.get("dtype"), dict):
            kwargs["dtype"] = keras.dtype_policies.deserialize(kwargs["dtype"])
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        neck_changes = {name: kwargs[name] for name in NECK_ARGUMENTS if name in kwargs}
        with warnings.catch_warnings():
            # The stacklevel of the constructor's warning would name this line, not the caller's.
            warnings.simplefilter("ignore", DeprecationWarning)
            rebuilt = SymbolEncoder(**dict(config, **kwargs))
        if neck_changes:
            warnings.warn(
                f"SymbolEncoder.from_preset(..., {', '.join(f'{k}={v!r}' for k, v in neck_changes.items())}) "
                "is deprecated and will be removed in 0.3.0: load the backbone and put a "
                f"FeatureGridNeck({', '.join(f'{k}={v!r}' for k, v in neck_changes.items())}) "
                "after it (FormulaRecognizer.from_preset builds its own).",
                DeprecationWarning,
                stacklevel=3,
            )
        for source, target in zip(self.stack_layers, rebuilt.stack_layers, strict=True):
            target.set_weights(source.get_weights())
        for name in ("projection", "output_norm_layer"):
            source, target = getattr(self, name), getattr(rebuilt, name)
            if source is not None and target is not None:
                if [w.shape for w in source.weights] == [w.shape for w in target.weights]:
                    target.set_weights(source.get_weights())
        return rebuilt


def check_float_images(dtype: Any, owner: str = "SymbolEncoder") -> None:
    """Refuse images that are not float, uint8 ones (0..255) above all, saying how to convert.

    The one rule for every entry point that takes images (`SymbolEncoder`,
    `SymbolClassifier.predict_labels`): a uint8 image read as float would be 255 times too
    bright and give confident wrong answers without a word.

    Args:
        dtype: the images' dtype (numpy, Keras or a backend's).
        owner: str. Who expects the images, for the message.

    Raises:
        ValueError: for a non-float dtype.

    Example:
    >>> check_float_images("float32")
    >>> check_float_images("uint8")
    Traceback (most recent call last):
    ...
    ValueError: SymbolEncoder expects float images with ink 1.0 on background 0.0. Received: dtype=uint8. Convert with `images.astype('float32') / 255` if ink is 255.
    """
    dtype = keras.backend.standardize_dtype(dtype)
    if "float" not in dtype:
        raise ValueError(
            f"{owner} expects float images with ink 1.0 on background 0.0. "
            f"Received: dtype={dtype}. Convert with `images.astype('float32') / 255` "
            "if ink is 255."
        )


def as_pair(value, name: str) -> tuple[int, int]:
    """`(height, width)` from an int or a pair; a clear error naming `name` otherwise.

    Example:
    >>> as_pair(48, "image_size"), as_pair([32, 64], "image_size")
    ((48, 48), (32, 64))
    """
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
    filters, kernel_size, normalization, groups, padding, input_channels, max_image_side
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
    if not isinstance(input_channels, int) or input_channels < 1:
        raise ValueError(
            f"`input_channels` must be a positive int. Received: input_channels={input_channels!r}"
        )
    if not isinstance(max_image_side, int) or max_image_side < 1:
        raise ValueError(
            f"`max_image_side` must be a positive int. Received: max_image_side={max_image_side!r}"
        )


presets.register_presets(
    SymbolEncoder,
    {name: presets.shipped_preset(name) for name in ("crohme101", "crohme101-synthetic")},
)
