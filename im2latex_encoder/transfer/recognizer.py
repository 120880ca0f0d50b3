"""`FormulaRecognizer`: `SymbolEncoder` + `FormulaDecoder`, image and token prefix → logits."""

from __future__ import annotations

import warnings

import keras
import numpy as np
from keras import ops

from im2latex_encoder.encoder import SymbolEncoder
from im2latex_encoder.transfer.decoder import FormulaDecoder


@keras.saving.register_keras_serializable(package="im2latex_encoder")
class FormulaRecognizer(keras.Model):
    """An image-to-LaTeX model: the symbol encoder's sequence feeds an attention decoder.

    Takes ``(images, decoder_input_ids)``: float images ``(batch, H, W, 1)`` (ink 1.0 on 0.0)
    and token ids ``(batch, T)`` starting with ``<start>``, and returns next-token logits
    ``(batch, T, vocabulary_size)`` (teacher forcing). The encoder must give a sequence whose
    width is the decoder's: build it with ``projection_dim=hidden_dim`` (and, for a decoder
    that should know *where* a feature is, ``positional_encoding=True``).
    Use `greedy_decode` / `beam_search_decode` to read formulas, `attention_weights` for an
    attention map. Saves and loads as `.keras`.

    Args:
        encoder: SymbolEncoder with `output="sequence"` and `output_channels == hidden_dim`.
        vocabulary_size: int. Token ids, `<pad>` = 0 included.
        num_layers, num_heads, intermediate_dim, max_length, dropout: see `FormulaDecoder`.
        **kwargs: standard `keras.Model` arguments.

    Example:
    >>> import numpy as np
    >>> from im2latex_encoder import SymbolEncoder
    >>> encoder = SymbolEncoder(projection_dim=32, positional_encoding=True)
    >>> model = FormulaRecognizer(encoder, vocabulary_size=20, num_layers=1, num_heads=2,
    ...                           intermediate_dim=64, max_length=8)
    >>> logits = model((np.zeros((2, 32, 64, 1), "float32"), np.ones((2, 5), "int32")))
    >>> tuple(logits.shape)
    (2, 5, 20)

    From the pretrained preset (encoder frozen or not):
    >>> model = FormulaRecognizer.from_preset("crohme101", vocabulary_size=118)  # doctest: +SKIP
    """

    def __init__(
        self,
        encoder: SymbolEncoder,
        vocabulary_size: int,
        num_layers: int = 2,
        num_heads: int = 4,
        intermediate_dim: int = 256,
        max_length: int = 64,
        dropout: float = 0.1,
        **kwargs,
    ):
        if not isinstance(encoder, SymbolEncoder):
            raise ValueError(
                f"`encoder` must be a SymbolEncoder. Received: {type(encoder).__name__}"
            )
        if encoder.output_mode != "sequence":
            raise ValueError(
                "The encoder must output a sequence for the decoder to attend over. "
                f"Received: encoder with output={encoder.output_mode!r}"
            )
        super().__init__(**kwargs)
        # === Layers ===
        self.encoder = encoder
        self.decoder = FormulaDecoder(
            vocabulary_size,
            encoder.output_channels,
            num_layers,
            num_heads,
            intermediate_dim,
            max_length,
            dropout,
            dtype=self.dtype_policy,
            name="decoder",
        )
        # === Config ===
        self.vocabulary_size = int(vocabulary_size)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.max_length = int(max_length)
        self.dropout = float(dropout)
        self.decoder.build((None, None), (None, None, encoder.output_channels))
        self.built = True

    @property
    def hidden_dim(self) -> int:
        """Model width: the encoder's output channels.

        Example:
        >>> FormulaRecognizer(SymbolEncoder(projection_dim=48), 10).hidden_dim
        48
        """
        return self.encoder.output_channels

    def call(self, inputs, training=None):
        images, ids = inputs
        memory = self.encoder(images, training=training)
        return self.decoder(ids, memory, training=training)

    def compute_output_shape(self, input_shape):
        images_shape, ids_shape = input_shape
        return (*ids_shape, self.vocabulary_size)

    def encode(self, images):
        """Return the encoder's sequence `(batch, H'·W', hidden_dim)` for images (inference).

        Example:
        >>> model = FormulaRecognizer(SymbolEncoder(projection_dim=16), 10)
        >>> tuple(model.encode(np.zeros((1, 32, 32, 1), "float32")).shape)
        (1, 16, 16)
        """
        return self.encoder(ops.convert_to_tensor(images, "float32"), training=False)

    def decode_logits(self, memory, ids):
        """Next-token logits `(batch, T, vocabulary_size)` for an encoded batch (inference).

        Example:
        >>> model = FormulaRecognizer(SymbolEncoder(projection_dim=16), 10)
        >>> memory = model.encode(np.zeros((1, 32, 32, 1), "float32"))
        >>> tuple(model.decode_logits(memory, np.ones((1, 3), "int32")).shape)
        (1, 3, 10)
        """
        with warnings.catch_warnings():
            # A one-token prefix makes the causal self-attention a softmax over one key,
            # which is correct (weight 1) but Keras warns about it.
            warnings.filterwarnings("ignore", message="You are using a softmax over axis")
            return self.decoder(ops.convert_to_tensor(ids, "int32"), memory, training=False)

    def attention_weights(self, images, ids) -> np.ndarray:
        """Last block's cross-attention, head-averaged, as grids `(batch, T, H', W')`.

        Entry ``[b, t, i, j]`` is how much the prediction after token `t` of `ids` attended to
        grid cell `(i, j)` of image `b`; each ``[b, t]`` sums to 1. Upsample a grid to the
        image (e.g. ``skimage.transform.resize``) to overlay it.

        Args:
            images: float array `(batch, H, W, 1)`.
            ids: int array `(batch, T)`, e.g. `<start>` + a decoded formula.

        Example:
        >>> model = FormulaRecognizer(SymbolEncoder(projection_dim=16), 10)
        >>> model.attention_weights(np.zeros((1, 32, 48, 1), "float32"),
        ...                         np.ones((1, 3), "int32")).shape
        (1, 3, 4, 8)
        """
        images = np.asarray(images, "float32")
        grid = self.encoder.grid_shape(images.shape[1:3])
        memory = self.encode(images)
        _, attention = self.decoder(
            ops.convert_to_tensor(ids, "int32"), memory, training=False, return_attention=True
        )
        attention = ops.convert_to_numpy(attention)
        return attention.reshape(attention.shape[0], attention.shape[1], *grid)

    def freeze_encoder(self, frozen: bool = True) -> FormulaRecognizer:
        """Freeze (or unfreeze) the encoder's conv stages; call before `compile()`.

        Only the convolutions and their normalization (the pretrained part) are frozen; the
        projection to the decoder's width stays trainable, since it is new. Frozen batch
        normalization also runs in inference mode. The flags are not part of the saved
        config: freeze again after loading a `.keras` file to keep training frozen.

        Args:
            frozen: bool. True to freeze, False to make the stages trainable again.

        Returns:
            This model, for chaining.

        Example:
        >>> model = FormulaRecognizer(SymbolEncoder(projection_dim=16), 10).freeze_encoder()
        >>> [conv.trainable for conv in model.encoder.convs], model.encoder.projection.trainable
        ([False, False, False], True)
        """
        for layer in [*self.encoder.convs, *self.encoder.norms]:
            layer.trainable = not frozen
        return self

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "max_length": self.max_length,
            "dropout": self.dropout,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)

    @classmethod
    def from_preset(
        cls,
        preset: str,
        vocabulary_size: int,
        hidden_dim: int = 128,
        positional_encoding: bool = True,
        output_norm: bool = True,
        freeze_encoder: bool = False,
        **decoder_kwargs,
    ) -> FormulaRecognizer:
        """Build a recognizer around a pretrained encoder preset.

        The conv stack's weights come from the preset; the projection to `hidden_dim`, its
        layer normalization, the positional encoding and the decoder are new.

        Args:
            preset: str. Preset name or directory (an encoder or classifier preset).
            vocabulary_size: int. Token ids of the formula vocabulary.
            hidden_dim: int. Model width (the encoder's new `projection_dim`).
            positional_encoding: bool. Add the 2D sinusoidal encoding to the encoder's grid.
            output_norm: bool. Layer-normalize the projected features (see `SymbolEncoder`).
                Keep it: without it, `crohme101`'s large features drown the positional
                encoding and the pretrained encoder transfers worse than a fresh one.
            freeze_encoder: bool. Freeze the pretrained conv stages (see `freeze_encoder`).
            **decoder_kwargs: `num_layers`, `num_heads`, `intermediate_dim`, `max_length`,
                `dropout`.

        Example:
        >>> model = FormulaRecognizer.from_preset(
        ...     "crohme101", vocabulary_size=118, hidden_dim=128)  # doctest: +SKIP
        """
        encoder = SymbolEncoder.from_preset(
            preset,
            projection_dim=hidden_dim,
            output_norm=output_norm,
            positional_encoding=positional_encoding,
            output="sequence",
        )
        model = cls(encoder, vocabulary_size, **decoder_kwargs)
        return model.freeze_encoder(freeze_encoder)
