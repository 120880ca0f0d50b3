"""`FormulaRecognizer`: backbone + neck + `FormulaDecoder`, image and token prefix → logits."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

# Registers MaskedTokenAccuracy, which a trained recognizer's saved compile configuration names:
# without it a fresh process cannot load a preset (`recognizer/__init__` imports lazily).
import im2latex_encoder.recognizer.metrics  # noqa: F401
from im2latex_encoder.encoder import NECK_ARGUMENTS, SymbolEncoder
from im2latex_encoder.neck import FeatureGridNeck
from im2latex_encoder.recognizer.decoder import FormulaDecoder
from im2latex_encoder.task import Task, describe_changes

if TYPE_CHECKING:
    from im2latex_encoder.formulas.tokenizer import Vocabulary
    from im2latex_encoder.recognizer.preprocessor import DrawSettings

# What `from_preset` gives a new recognizer's neck when not told otherwise.
_DEFAULT_HIDDEN_DIM = 128
_DECODER_ARGUMENTS = ("num_layers", "num_heads", "intermediate_dim", "max_length", "dropout")


@keras.saving.register_keras_serializable(package="im2latex_encoder")
class FormulaRecognizer(Task):
    """An image-to-LaTeX model: backbone, neck, and an attention decoder over the neck's sequence.

    Takes ``(images, decoder_input_ids)``: float images ``(batch, H, W, 1)`` (ink 1.0 on 0.0)
    and token ids ``(batch, T)`` starting with ``<start>``, and returns next-token logits
    ``(batch, T, vocabulary_size)`` (teacher forcing). The recognizer asks the backbone
    (`SymbolEncoder`) for its grid (`feature_grid`, whatever the encoder's `output`); the
    recognizer's own `FeatureGridNeck` projects it to the decoder's width
    `hidden_dim`, layer-normalizes it, adds the 2D positional signal (so the decoder knows
    *where* a feature is) and flattens it. Use `greedy_decode` / `beam_search_decode` to read
    formulas, `attention_weights` for an attention map. Saves and loads as `.keras` and as a
    preset (`save_to_preset` / `from_preset`).

    An encoder built with 0.1.0's deprecated neck arguments (`SymbolEncoder(projection_dim=...,
    positional_encoding=True)`) still works: it gives the sequence itself, and the recognizer
    then has no neck of its own (`neck` is None).

    Args:
        encoder: SymbolEncoder. The backbone.
        vocabulary_size: int. Token ids, `<pad>` = 0 included.
        num_layers, num_heads, intermediate_dim, max_length, dropout: see `FormulaDecoder`.
        hidden_dim: int or None. Model width: the default neck's projection (None: the
            backbone's channels). Must agree with `neck` when both are given.
        neck: FeatureGridNeck or None. The neck; None builds
            `FeatureGridNeck(hidden_dim, output_norm=True, positional_encoding=True)`.
        vocabulary: `Vocabulary` (or its `to_json()` dict) or None. The tokens the ids stand
            for; `len(vocabulary)` must be `vocabulary_size`.
        draw_settings: `DrawSettings` (or its `to_dict()`) or None. How expressions are drawn
            for the model, as it was trained.
        **kwargs: standard `keras.Model` arguments.

    The vocabulary and the drawing settings are the model's: in its configuration (so a
    `.keras` file carries them) and in its preset as ``vocabulary.json`` and
    ``recognizer.json``, checksummed with the rest (`preset_assets`). A model that has both
    reads formulas by itself (`recognize_strokes`, `recognize_images`).

    Example:
    >>> import numpy as np
    >>> from im2latex_encoder import SymbolEncoder
    >>> model = FormulaRecognizer(SymbolEncoder(filters=(8, 8)), vocabulary_size=20,
    ...                           num_layers=1, num_heads=2, intermediate_dim=64, max_length=8,
    ...                           hidden_dim=32)
    >>> logits = model((np.zeros((2, 32, 64, 1), "float32"), np.ones((2, 5), "int32")))
    >>> tuple(logits.shape), model.neck.projection_dim
    ((2, 5, 20), 32)

    From the pretrained preset (encoder frozen or not):
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # the neck and decoder start untrained, it says
    ...     model = FormulaRecognizer.from_preset("crohme101", vocabulary_size=118,
    ...                                           hidden_dim=64, num_layers=1)
    >>> model.hidden_dim
    64
    """

    preset_kind = "recognizer"
    #: The beam width `recognize` and the web page read with unless told: greedy (beam 4
    #: reads 0.4 points more of the CROHME 2016 test set at a quarter of the speed).
    default_beam_width = 1
    preset_assets = {"vocabulary": "vocabulary.json", "draw_settings": "recognizer.json"}
    task_layers = "the neck and the decoder"

    def __init__(
        self,
        encoder: SymbolEncoder,
        vocabulary_size: int,
        num_layers: int = 2,
        num_heads: int = 4,
        intermediate_dim: int = 256,
        max_length: int = 64,
        dropout: float = 0.1,
        *,
        hidden_dim: int | None = None,
        neck: FeatureGridNeck | None = None,
        vocabulary: Vocabulary | dict | None = None,
        draw_settings: DrawSettings | dict | None = None,
        **kwargs,
    ):
        vocabulary, draw_settings = _reading_assets(vocabulary, draw_settings, vocabulary_size)
        if not isinstance(encoder, SymbolEncoder):
            raise ValueError(
                f"`encoder` must be a SymbolEncoder. Received: {type(encoder).__name__}"
            )
        if hidden_dim is not None and (
            isinstance(hidden_dim, bool) or not isinstance(hidden_dim, int) or hidden_dim < 1
        ):
            raise ValueError(
                f"`hidden_dim` must be a positive int or None. Received: hidden_dim={hidden_dim!r}"
            )
        if encoder._legacy_neck is not None:
            # 0.1.0's layout: the encoder carries the neck (and its weights, where 0.1.0 saved them).
            if encoder.output_mode != "sequence":
                raise ValueError(
                    "The encoder must output a sequence for the decoder to attend over. "
                    f"Received: encoder with output={encoder.output_mode!r}"
                )
            if neck is not None:
                raise ValueError(
                    "The encoder already applies a neck (built with the deprecated "
                    "`projection_dim`/`output_norm`/`positional_encoding`). Pass a plain "
                    f"SymbolEncoder with `neck`, or no neck. Received: neck={neck.name!r}"
                )
            width = encoder.output_channels
        else:
            if neck is None:
                neck = FeatureGridNeck(
                    hidden_dim,
                    output_norm=True,
                    positional_encoding=True,
                    dtype=kwargs.get("dtype"),
                    name="neck",
                )
            if not isinstance(neck, FeatureGridNeck) or neck.output_mode != "sequence":
                raise ValueError(
                    "`neck` must be a FeatureGridNeck with output='sequence' (the decoder attends "
                    f"over a sequence). Received: {type(neck).__name__}"
                    + (
                        f" with output={neck.output_mode!r}"
                        if isinstance(neck, FeatureGridNeck)
                        else ""
                    )
                )
            width = neck.output_channels(encoder.output_channels)
        if hidden_dim is not None and hidden_dim != width:
            raise ValueError(
                f"`hidden_dim` and the neck disagree: the decoder's input is {width} wide. "
                f"Received: hidden_dim={hidden_dim}"
            )
        super().__init__(**kwargs)
        # === Layers ===
        self.encoder = encoder
        self.neck = neck
        self.decoder = FormulaDecoder(
            vocabulary_size,
            width,
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
        self.vocabulary: Vocabulary | None = vocabulary
        self.draw_settings: DrawSettings | None = draw_settings
        if self.neck is not None and not self.neck.built:
            self.neck.build((None, None, None, encoder.output_channels))
        self.decoder.build((None, None), (None, None, width))
        self.built = True

    @property
    def hidden_dim(self) -> int:
        """Model width: the width of the sequence the decoder attends over.

        Example:
        >>> FormulaRecognizer(SymbolEncoder(), 10, hidden_dim=48).hidden_dim
        48
        """
        return self.decoder.hidden_dim

    def _memory(self, images, training=None):
        if self.neck is None:  # 0.1.0's layout: the encoder's deprecated neck gives the sequence
            return self.encoder(images, training=training)
        # The neck's positional signal needs the 2-D grid, whatever the encoder's `output`.
        grid = self.encoder.feature_grid(images, training=training)
        return self.neck(grid, training=training)

    def call(self, inputs, training=None):
        images, ids = inputs
        return self.decoder(ids, self._memory(images, training=training), training=training)

    def compute_output_shape(self, input_shape):
        images_shape, ids_shape = input_shape
        return (*ids_shape, self.vocabulary_size)

    def encode(self, images: Any) -> Any:
        """Return the sequence `(batch, H'·W', hidden_dim)` the decoder attends over (inference).

        Example:
        >>> model = FormulaRecognizer(SymbolEncoder(), 10, hidden_dim=16)
        >>> tuple(model.encode(np.zeros((1, 32, 32, 1), "float32")).shape)
        (1, 16, 16)
        """
        return self._memory(ops.convert_to_tensor(images, "float32"), training=False)

    def decode_logits(self, memory: Any, ids: Any) -> Any:
        """Next-token logits `(batch, T, vocabulary_size)` for an encoded batch (inference).

        Example:
        >>> model = FormulaRecognizer(SymbolEncoder(), 10, hidden_dim=16)
        >>> memory = model.encode(np.zeros((1, 32, 32, 1), "float32"))
        >>> tuple(model.decode_logits(memory, np.ones((1, 3), "int32")).shape)
        (1, 3, 10)
        """
        with warnings.catch_warnings():
            # A one-token prefix makes the causal self-attention a softmax over one key,
            # which is correct (weight 1) but Keras warns about it.
            warnings.filterwarnings("ignore", message="You are using a softmax over axis")
            return self.decoder(ops.convert_to_tensor(ids, "int32"), memory, training=False)

    def attention_weights(self, images: Any, ids: Any) -> np.ndarray:
        """Last block's cross-attention, head-averaged, as grids `(batch, T, H', W')`.

        Entry ``[b, t, i, j]`` is how much the prediction after token `t` of `ids` attended to
        grid cell `(i, j)` of image `b`; each ``[b, t]`` sums to 1. Upsample a grid to the
        image (e.g. ``skimage.transform.resize``) to overlay it.

        Args:
            images: float array `(batch, H, W, 1)`.
            ids: int array `(batch, T)`, e.g. `<start>` + a decoded formula.

        Example:
        >>> model = FormulaRecognizer(SymbolEncoder(), 10, hidden_dim=16)
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

    def recognize_strokes(self, expressions: Sequence, beam_width: int = 1) -> list[str]:
        """Read handwritten expressions given as strokes: the LaTeX of each.

        Each expression is drawn with this model's own drawing settings and read as
        `im2latex-encoder recognize` reads an InkML file (`recognizer.evaluation.recognize_ink`,
        the one path for ink). Needs the model's vocabulary and drawing settings, which its
        preset holds (`from_preset`); a model built in code takes them as `vocabulary=` and
        `draw_settings=` (or `attach_reading`).

        Args:
            expressions: list of expressions, each a list of strokes, each an ``(n, 2)`` float
                array of X and Y (down), any units.
            beam_width: int. Beam width; 1 decodes greedily.

        Returns:
            list of str: one LaTeX string (tokens joined by spaces) per expression.

        Example:
        >>> model = FormulaRecognizer.from_preset("crohme-formulas-image")
        >>> latex = model.recognize_strokes([[np.array([[0., 0.], [0., 30.]])]])
        >>> isinstance(latex[0], str)
        True
        """
        from im2latex_encoder.recognizer.evaluation import recognize_ink

        vocabulary, settings = self._reading()
        return recognize_ink(self, vocabulary, settings, expressions, beam=beam_width)

    def recognize_images(self, images: Sequence, beam_width: int = 1) -> list[str]:
        """Read expression images: uint8 ``(H, W)``, ink 255 on 0, as `recognize` reads a PNG.

        Args:
            images: list of uint8 ``(H, W)`` arrays.
            beam_width: int. Beam width; 1 decodes greedily.

        Returns:
            list of str: one LaTeX string (tokens joined by spaces) per image.

        Example:
        >>> model = FormulaRecognizer.from_preset("crohme-formulas-image")
        >>> len(model.recognize_images([np.zeros((32, 64), "uint8")]))
        1
        """
        from im2latex_encoder.recognizer.evaluation import recognize_images

        vocabulary, _ = self._reading()
        decoded = recognize_images(self, vocabulary, list(images), beam=beam_width)
        return [" ".join(tokens) for tokens in decoded]

    def attach_reading(
        self, vocabulary: Vocabulary | dict, draw_settings: DrawSettings | dict
    ) -> FormulaRecognizer:
        """Give the model the vocabulary and drawing settings it reads with; returns it.

        A model loaded from its preset has them; one built or trained in code without
        `vocabulary=` and `draw_settings=` needs this before `recognize_strokes` /
        `recognize_images`. They are saved with the model (`save_to_preset`, `.keras`).

        Example:
        >>> from im2latex_encoder.formulas.tokenizer import Vocabulary
        >>> from im2latex_encoder.recognizer import DrawSettings
        >>> model = FormulaRecognizer(SymbolEncoder(filters=(8, 8)), 7, hidden_dim=16,
        ...                           num_layers=1, num_heads=2)
        >>> model.attach_reading(Vocabulary(["x", "y", "+"]), DrawSettings(18.0)).draw_settings
        DrawSettings(symbol_size=18.0, line_width=2.0, max_shape=(256, 1024))
        """
        self.vocabulary, self.draw_settings = _reading_assets(
            vocabulary, draw_settings, self.vocabulary_size
        )
        return self

    def _reading(self) -> tuple:
        vocabulary, settings = self.vocabulary, self.draw_settings
        if vocabulary is None or settings is None:
            raise ValueError(
                "Reading formulas needs the model's vocabulary and drawing settings. Load a "
                "preset that holds them (`from_preset`), or give them "
                "(`attach_reading(vocabulary, draw_settings)`). Received: a model without them"
            )
        return vocabulary, settings

    def freeze_encoder(self, frozen: bool = True) -> FormulaRecognizer:
        """Freeze (or unfreeze) the backbone's conv stages; call before `compile()`.

        Only the convolutions and their normalization (the pretrained part) are frozen; the
        neck (the projection to the decoder's width) stays trainable, since it is new. Frozen batch
        normalization also runs in inference mode. The flags are not part of the saved
        config: freeze again after loading a `.keras` file to keep training frozen.

        Args:
            frozen: bool. True to freeze, False to make the stages trainable again.

        Returns:
            This model, for chaining.

        Example:
        >>> model = FormulaRecognizer(SymbolEncoder(), 10, hidden_dim=16).freeze_encoder()
        >>> [conv.trainable for conv in model.encoder.convs], model.neck.projection.trainable
        ([False, False, False], True)
        """
        for layer in self.encoder.stack_layers:
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
            "hidden_dim": self.hidden_dim,
            "neck": None if self.neck is None else keras.saving.serialize_keras_object(self.neck),
            "vocabulary": None if self.vocabulary is None else self.vocabulary.to_json(),
            "draw_settings": None if self.draw_settings is None else self.draw_settings.to_dict(),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        if "neck" not in config:
            # 0.1.0's configuration: the encoder was the whole neck. A plain 0.1.0 encoder gets
            # a neck that only flattens its grid, as 0.1.0's encoder did itself.
            config["neck"] = (
                None if config["encoder"]._legacy_neck is not None else FeatureGridNeck(name="neck")
            )
        elif config["neck"] is not None:
            config["neck"] = keras.saving.deserialize_keras_object(config["neck"])
        return cls(**config)

    # --- Presets ----------------------------------------------------------------------------

    @classmethod
    def from_preset(
        cls,
        preset: str,
        vocabulary_size: int | None = None,
        hidden_dim: int | None = None,
        positional_encoding: bool | None = None,
        output_norm: bool | None = None,
        freeze_encoder: bool = False,
        **decoder_kwargs,
    ) -> FormulaRecognizer:
        """Load a recognizer preset, or build a recognizer around any preset's backbone.

        From a recognizer preset (`save_to_preset`, or the shipped `"crohme-formulas-image"`: see
        `presets.list_presets(FormulaRecognizer, include_backbone=False)`), the recognizer as
        saved, its vocabulary and drawing settings included, weights unchanged; a different
        `vocabulary_size` (or width, neck or decoder option) keeps the backbone's weights and
        makes the neck and decoder new, with a warning. From any other preset (a backbone's, a
        classifier's such as `crohme101`), the conv stack's weights come from the preset and
        the neck (projection to `hidden_dim`, layer norm, positional encoding) and the decoder
        are new, with a warning saying so.

        Args:
            preset: str. Preset name or directory.
            vocabulary_size: int or None. Token ids of the formula vocabulary (required for a
                preset without a recognizer).
            hidden_dim: int or None. Model width (the neck's projection); 128 for a new neck.
            positional_encoding: bool or None. The neck's 2D positional encoding (default on).
            output_norm: bool or None. The neck's layer normalization (default on). Keep it:
                without it, `crohme101`'s large features drown the positional encoding and the
                pretrained encoder transfers worse than a fresh one.
            freeze_encoder: bool. Freeze the pretrained conv stages (see `freeze_encoder`).
            **decoder_kwargs: `num_layers`, `num_heads`, `intermediate_dim`, `max_length`,
                `dropout`.

        Raises:
            PresetError: if the preset is unknown, incomplete or fails its sha256 check, or has
                no recognizer and no `vocabulary_size` is given.

        Example:
        >>> import tempfile, warnings
        >>> model = FormulaRecognizer(SymbolEncoder(filters=(8, 8)), 10, hidden_dim=16,
        ...                           num_layers=1, num_heads=2)
        >>> directory = tempfile.mkdtemp() + "/recognizer"
        >>> model.save_to_preset(directory)
        >>> FormulaRecognizer.from_preset(directory).vocabulary_size
        10
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     bigger = FormulaRecognizer.from_preset(directory, vocabulary_size=12)
        >>> bigger.vocabulary_size, "skipped its head's weights" in str(caught[0].message)
        (12, True)
        """
        given = {
            "vocabulary_size": vocabulary_size,
            "hidden_dim": hidden_dim,
            "positional_encoding": positional_encoding,
            "output_norm": output_norm,
            **decoder_kwargs,
        }
        model = super().from_preset(
            preset, **{name: value for name, value in given.items() if value is not None}
        )
        return model.freeze_encoder(freeze_encoder)

    # --- The preset loader's hooks (`Task`) -------------------------------------------------

    @classmethod
    def from_backbone(
        cls,
        backbone: SymbolEncoder,
        vocabulary_size: int | None = None,
        hidden_dim: int | None = None,
        positional_encoding: bool | None = None,
        output_norm: bool | None = None,
        **decoder_kwargs,
    ) -> FormulaRecognizer:
        """A recognizer with a new neck and decoder around a (pretrained) `backbone`.

        Args:
            backbone: SymbolEncoder. The conv stack; a 0.1.0 encoder's own neck is dropped.
            vocabulary_size: int. Token ids of the formula vocabulary (required).
            hidden_dim: int or None. The neck's projection; 128 when None.
            positional_encoding, output_norm: bool or None. The neck's (default on).
            **decoder_kwargs: `num_layers`, `num_heads`, `intermediate_dim`, `max_length`,
                `dropout`.

        Example:
        >>> model = FormulaRecognizer.from_backbone(SymbolEncoder(filters=(8, 8)), 10,
        ...                                         hidden_dim=16, num_layers=1)
        >>> model.hidden_dim, model.num_layers
        (16, 1)
        """
        if vocabulary_size is None:
            raise ValueError(
                "it has no decoder for a FormulaRecognizer. Pass `vocabulary_size` for a new one."
            )
        if backbone._legacy_neck is not None:
            # A 0.1.0 encoder preset saved with a neck: keep its stack, give it a new neck.
            backbone = _plain_backbone(backbone)
        neck = FeatureGridNeck(
            hidden_dim if hidden_dim is not None else _DEFAULT_HIDDEN_DIM,
            output_norm=True if output_norm is None else output_norm,
            positional_encoding=True if positional_encoding is None else positional_encoding,
            name="neck",
        )
        return cls(backbone, vocabulary_size, neck=neck, **decoder_kwargs)

    def preset_changes(self, **kwargs) -> str:
        """What `from_preset`'s arguments change in this recognizer; "" when nothing.

        Example:
        >>> model = FormulaRecognizer(SymbolEncoder(filters=(8, 8)), 10, hidden_dim=16)
        >>> model.preset_changes(vocabulary_size=12, hidden_dim=16)
        'vocabulary_size=10 in the preset, 12 asked'
        """
        return describe_changes(
            {name: (self._saved_value(name), value) for name, value in kwargs.items()}
        )

    def with_new_layers(self, **kwargs) -> FormulaRecognizer:
        """A new neck and decoder around this recognizer's backbone; options not given kept.

        Example:
        >>> model = FormulaRecognizer(SymbolEncoder(filters=(8, 8)), 10, hidden_dim=16)
        >>> bigger = model.with_new_layers(vocabulary_size=12)
        >>> bigger.vocabulary_size, bigger.hidden_dim, bigger.encoder is model.encoder
        (12, 16, True)
        """
        options = {name: self._saved_value(name) for name in _DECODER_ARGUMENTS}
        options.update({k: v for k, v in kwargs.items() if k in _DECODER_ARGUMENTS})
        vocabulary_size = kwargs.get("vocabulary_size", self.vocabulary_size)
        # The images are drawn as before; the vocabulary stays only if the ids still fit it.
        options["draw_settings"] = self.draw_settings
        if vocabulary_size == self.vocabulary_size:
            options["vocabulary"] = self.vocabulary
        return type(self).from_backbone(
            self.encoder,
            vocabulary_size=vocabulary_size,
            hidden_dim=kwargs.get("hidden_dim", self.hidden_dim),
            positional_encoding=kwargs.get(
                "positional_encoding", self._saved_value("positional_encoding")
            ),
            output_norm=kwargs.get("output_norm", self._saved_value("output_norm")),
            **options,
        )

    def _saved_value(self, name: str):
        if name in ("positional_encoding", "output_norm"):
            neck = self.neck if self.neck is not None else self.encoder
            return getattr(neck, name)
        if name == "hidden_dim":
            return self.hidden_dim
        if name == "vocabulary_size" or name in _DECODER_ARGUMENTS:
            return getattr(self, name)
        raise ValueError(
            f"FormulaRecognizer.from_preset takes vocabulary_size, hidden_dim, "
            f"positional_encoding, output_norm, freeze_encoder and {list(_DECODER_ARGUMENTS)}. "
            f"Received: {name}"
        )

    def preset_metadata(self) -> dict:
        """The vocabulary size, the model width and the drawing settings, for `metadata.json`.

        Example:
        >>> FormulaRecognizer(SymbolEncoder(filters=(8, 8)), 10, hidden_dim=16).preset_metadata()
        {'vocabulary_size': 10, 'hidden_dim': 16}
        """
        facts: dict = {"vocabulary_size": self.vocabulary_size, "hidden_dim": self.hidden_dim}
        if self.draw_settings is not None:
            facts["draw_settings"] = self.draw_settings.to_dict()
        return facts


def _reading_assets(
    vocabulary, draw_settings, vocabulary_size
) -> tuple[Vocabulary | None, DrawSettings | None]:
    """The vocabulary and drawing settings as objects (given as objects or their JSON), checked."""
    from im2latex_encoder.formulas.tokenizer import Vocabulary
    from im2latex_encoder.recognizer.preprocessor import DrawSettings

    if isinstance(vocabulary, dict):
        vocabulary = Vocabulary.from_json(vocabulary)
    if vocabulary is not None:
        if not isinstance(vocabulary, Vocabulary):
            raise ValueError(
                f"`vocabulary` must be a Vocabulary, its to_json() dict or None. Received: "
                f"{type(vocabulary).__name__}"
            )
        if len(vocabulary) != vocabulary_size:
            raise ValueError(
                f"The model reads {vocabulary_size} token ids and the vocabulary has "
                f"{len(vocabulary)}; give the vocabulary it was trained with. "
                f"Received: vocabulary of {len(vocabulary)} tokens"
            )
    if isinstance(draw_settings, dict):
        draw_settings = DrawSettings(**draw_settings)
    if draw_settings is not None and not isinstance(draw_settings, DrawSettings):
        raise ValueError(
            f"`draw_settings` must be DrawSettings, its to_dict() or None. Received: "
            f"{type(draw_settings).__name__}"
        )
    return vocabulary, draw_settings


def _plain_backbone(encoder: SymbolEncoder) -> SymbolEncoder:
    """A backbone with `encoder`'s stack and weights, without its deprecated neck."""
    config = {k: v for k, v in encoder.get_config().items() if k not in NECK_ARGUMENTS}
    plain = SymbolEncoder.from_config(config)
    for source, target in zip(encoder.stack_layers, plain.stack_layers, strict=True):
        target.set_weights(source.get_weights())
    return plain


#: The recognizer presets the package can ship (`python -m pretrain.ship`); each is registered
#: only once its folder exists in `shipped_presets/` holding an image recognizer's preset (kind
#: "recognizer"), so the package works before it is shipped. `crohme-formulas` is the default
#: formula model's name: registered here when it is an image recognizer, for `StrokeRecognizer`
#: when it is a stroke recognizer.
SHIPPABLE_PRESETS = ("crohme-formulas-image", "crohme-formulas")


def _register_shipped_presets() -> tuple[str, ...]:
    """Register the shipped image recognizer presets; return their names."""
    from im2latex_encoder.recognizer.saving import register_shipped_recognizers

    return register_shipped_recognizers(FormulaRecognizer, SHIPPABLE_PRESETS)


_register_shipped_presets()
