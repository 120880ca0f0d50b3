"""`StrokeRecognizer`: handwritten formulas read stroke by stroke, the CPU-trainable design.

Each stroke of an expression becomes one token (`stroke_tokens`): the pretrained symbol
classifier's view of it (`stroke_features`) and its place in typical-symbol units. A small
Transformer encoder (`StrokeTokenEncoder`) reads the tokens in writing order, and the
package's `FormulaDecoder` writes the LaTeX tokens, with the same cached greedy and beam
decoding as the image `FormulaRecognizer`. Two auxiliary heads learn from the ink's own
annotation while training: each stroke's symbol class and whether it belongs to the same
symbol as the stroke before it. Their readings come back with `stroke_symbols`.

Example:
>>> import numpy as np
>>> from im2latex_encoder import SymbolEncoder
>>> model = StrokeRecognizer(SymbolEncoder(filters=(4, 4, 4)), vocabulary=["x", "+", "1"],
...                          symbol_hidden_units=8, hidden_dim=16, encoder_layers=1,
...                          decoder_layers=1, num_heads=2, intermediate_dim=32, max_length=8)
>>> strokes = [np.array([[0., 0.], [9., 9.]]), np.array([[0., 9.], [9., 0.]])]
>>> latex = model.recognize_strokes([strokes])
>>> len(latex), isinstance(latex[0], str)
(1, True)
>>> len(model.stroke_symbols(strokes))
2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import layers, ops

from im2latex_encoder.formulas.tokenizer import Vocabulary
from im2latex_encoder.heads import ClassificationHead
from im2latex_encoder.recognizer.decoder import FormulaDecoder
from im2latex_encoder.recognizer.decoding import compiled_encode
from im2latex_encoder.recognizer.latex_grammar import LatexGrammar, chain_processors
from im2latex_encoder.recognizer.stroke_encoder import StrokeTokenEncoder
from im2latex_encoder.recognizer.stroke_features import StrokeFeaturizer
from im2latex_encoder.recognizer.stroke_members import (
    MemberDecoders,
    MemberHeads,
    MemberTokenEncoders,
)
from im2latex_encoder.recognizer.stroke_tokens import (
    GEOMETRY_COLUMNS,
    StrokeDrawing,
    check_views_need_no_order,
    checked_views,
)
from im2latex_encoder.recognizer.symbol_count import SymbolCountPrior, checked_weight
from im2latex_encoder.symbols import CROHME_SYMBOLS
from im2latex_encoder.task import Task

if TYPE_CHECKING:
    from im2latex_encoder.recognizer.symbol_cutter import SymbolCutter

#: Weight of each auxiliary loss beside the caption's.
DEFAULT_AUXILIARY_WEIGHTS = {"symbols": 0.5, "joins": 0.5, "attention": 0.0}
#: Beam search's `SymbolCountPrior` weight, chosen on the validation slice held out by formula
#: (crohme-formulas, beam 4: 0 gives 36.0% ExpRate, 1 gives 41.3%, 2 gives 40.1%; the count
#: in all alone at 1, 38.5%). Greedy decoding has no other reading to turn to (the count in
#: all: 35.8% at 0, 35.1% at 1), so it decodes without the prior.
SYMBOL_COUNT_WEIGHT = 1.0
#: The beam width a stroke recognizer reads with unless told (`recognize`, `evaluate-formulas`,
#: the web page): beam search counts the symbols (crohme-formulas, two members, on the CROHME
#: 2016 test set: 40.98% ExpRate against 32.61% greedy, about three times the time a formula).
#: Beam 8 read 47.94% of the validation formulas against 47.48%, for twice beam 4's time (one
#: member: 48.17% against 45.18%, and 39.06% of the test set against 38.71%).
DEFAULT_BEAM_WIDTH = 4
#: The slants beam search also reads each expression at unless told (`slanted`; decoding then
#: averages the decoder over the ink and its shears: test-time augmentation). None by default:
#: on the validation formulas (beam 4) ±0.12 lifted the 45-epoch weights from 41.28% to 43.58%
#: but the shipped 60-epoch ones only from 45.18% to 45.41% (38.71% → 38.88% on the CROHME 2016
#: test set), for 2.5 times the reading time. `recognize_strokes(..., slants=(0.12, -0.12))`
#: or ``evaluate-formulas --slants 0.12,-0.12`` asks for them.
DEFAULT_SLANTS: tuple[float, ...] = ()


@keras.saving.register_keras_serializable(package="im2latex_encoder")
class StrokeRecognizer(Task):
    """Strokes → LaTeX: pretrained symbol features per stroke, a token encoder, a decoder.

    Build it around a pretrained symbol classifier with `from_symbol_classifier` (the
    classifier's backbone and head become the stroke featurizer, frozen); `from_preset` loads
    a saved one (the shipped ``crohme-formulas`` is one).

    Args:
        encoder: SymbolEncoder. The symbol classifier's backbone.
        symbol_head: ClassificationHead or None. The symbol classifier's head (with a hidden
            layer); None makes an untrained one (`symbol_hidden_units` wide, one class per
            label), the from-scratch baseline.
        vocabulary: Vocabulary or a sequence of LaTeX tokens. What the decoder writes.
        labels: sequence of str. The symbol classes (the head's and the stroke symbols').
        symbol_hidden_units: int. Hidden width of a new `symbol_head`.
        drawing: StrokeDrawing or its JSON dict. How strokes are drawn for the classifier.
        hidden_dim: int. Width of the token encoder and the decoder.
        encoder_layers: int. Token encoder blocks.
        decoder_layers: int. Decoder blocks.
        num_heads: int. Attention heads.
        intermediate_dim: int. Feed-forward width.
        max_length: int. Longest caption the decoder writes (tokens, with `<start>`).
        dropout: float.
        auxiliary_weights: dict. Weights of the ``"symbols"`` and ``"joins"`` losses, and of
            the guided attention (``"attention"``, default 0: off): the decoder's last
            cross-attention, while it writes a symbol's token, pulled toward that symbol's
            strokes (TAP's guided attention; the batches' ``"guide"``, `StrokeBatches`).
        members: int. Token encoders and decoders (with their heads) over the one shared
            featurizer: 1 trains; more read as an ensemble, each step averaging the members'
            log-probabilities and the prior their heads' logits (`stroke_members`). Build one
            from trained one-member recognizers with `from_members`.
        split_junctions: bool. How `recognize_images` cuts an image into tokens, as the
            model's image draws were cut in training (`train_strokes`' `split_junctions`):
            each component's skeleton cut where its lines meet (True), or each connected
            component whole (False; the models before this option).
        image_order: one of `TOKEN_ORDERS`. The order `recognize_images` puts an image's
            tokens in, as the model's image draws were ordered in training (`train_strokes`'
            `component_order`): ``"left-to-right"`` (the models before this option) or
            ``"layout"`` (`layout_order`: a fraction's bar before its numerator).
        writing_order: bool. Whether the token encoder reads the writer's order (True, the
            models before this option: positions by stroke index and the pen's travel from
            the previous stroke) or reads the tokens as a set (False: any order of the same
            tokens reads the same, as an image's tokens have no pen order; the views must
            need no order either, such as ``("alone", "window")``).
        **kwargs: standard `keras.Model` arguments.

    Example:
    >>> StrokeRecognizer.recognize_strokes.__doc__ is not None
    True
    """

    preset_kind = "stroke-recognizer"
    #: The beam width `recognize_strokes`, `recognize_images`, `recognize` and the web page
    #: read with unless told (`DEFAULT_BEAM_WIDTH`).
    default_beam_width = DEFAULT_BEAM_WIDTH
    #: The slants beam search reads each expression at as well unless told (`DEFAULT_SLANTS`).
    default_slants = DEFAULT_SLANTS
    preset_assets = {"vocabulary": "vocabulary.json", "drawing": "stroke_drawing.json"}
    task_layers = "the stroke featurizer's head, the token encoder and the decoder"

    def __init__(
        self,
        encoder: Any,
        symbol_head: Any = None,
        vocabulary: Vocabulary | Sequence[str] = (),
        *,
        labels: Sequence[str] = CROHME_SYMBOLS,
        symbol_hidden_units: int = 256,
        drawing: StrokeDrawing | dict | None = None,
        hidden_dim: int = 128,
        encoder_layers: int = 3,
        decoder_layers: int = 3,
        num_heads: int = 4,
        intermediate_dim: int = 384,
        max_length: int = 128,
        dropout: float = 0.1,
        auxiliary_weights: dict | None = None,
        members: int = 1,
        split_junctions: bool = False,
        image_order: str = "left-to-right",
        writing_order: bool = True,
        **kwargs,
    ):
        from im2latex_encoder.recognizer.stroke_components import checked_token_order

        if isinstance(encoder, dict):
            encoder = keras.saving.deserialize_keras_object(encoder)
        if isinstance(symbol_head, dict):
            symbol_head = keras.saving.deserialize_keras_object(symbol_head)
        labels = tuple(labels)
        if symbol_head is None:
            symbol_head = ClassificationHead(
                len(labels), pooling="flatten", hidden_units=symbol_hidden_units, dropout=0.3
            )
        if symbol_head.num_classes != len(labels):
            raise ValueError(
                f"The symbol head has {symbol_head.num_classes} classes but {len(labels)} "
                "labels were given. Pass one label per class."
            )
        vocabulary = vocabulary if isinstance(vocabulary, Vocabulary) else _vocabulary(vocabulary)
        if drawing is None:
            drawing = StrokeDrawing()
        elif isinstance(drawing, dict):
            drawing = StrokeDrawing.from_json(drawing)
        super().__init__(**kwargs)
        # === Layers ===
        self.encoder = encoder
        self.symbol_head = symbol_head
        size = drawing.image_size
        if not symbol_head.built:
            symbol_head.build(encoder.compute_output_shape((None, size, size, 1)))
        # Frozen: the stroke features are computed once and cached. Each variable is marked as
        # well: a classifier rebuilt from a configuration that records `trainable: false` (a
        # preset, a .keras file) leaves its sublayers' variables trainable, which
        # `layer.trainable = False` on it does not change.
        for frozen in (self.encoder, self.symbol_head):
            frozen.trainable = False
            for variable in frozen.variables:
                variable.trainable = False
        self.featurizer = StrokeFeaturizer(encoder, symbol_head, drawing)
        if not writing_order:
            check_views_need_no_order(drawing.views)
        if not isinstance(members, int) or isinstance(members, bool) or members < 1:
            raise ValueError(f"`members` must be a positive int. Received: members={members!r}")

        def token_encoder(name: str) -> StrokeTokenEncoder:
            return StrokeTokenEncoder(
                hidden_dim,
                encoder_layers,
                num_heads,
                intermediate_dim,
                dropout,
                writing_order=writing_order,
                name=name,
            )

        def decoder(name: str) -> FormulaDecoder:
            return FormulaDecoder(
                len(vocabulary),
                hidden_dim,
                decoder_layers,
                num_heads,
                intermediate_dim,
                max_length,
                dropout,
                name=name,
            )

        if members == 1:
            self.token_encoder = token_encoder("token_encoder")
            self.decoder = decoder("decoder")
            self.symbol_logits = layers.Dense(len(labels), name="symbol_logits")
            self.join_logits = layers.Dense(1, name="join_logits")
        else:  # the same places, each layer averaging its members (`stroke_members`)
            each = range(members)
            self.token_encoder = MemberTokenEncoders(
                [token_encoder(f"token_encoder_{m}") for m in each], name="token_encoder"
            )
            self.decoder = MemberDecoders([decoder(f"decoder_{m}") for m in each], name="decoder")
            self.symbol_logits = MemberHeads(
                [layers.Dense(len(labels), name=f"symbol_logits_{m}") for m in each],
                name="symbol_logits",
            )
            self.join_logits = MemberHeads(
                [layers.Dense(1, name=f"join_logits_{m}") for m in each], name="join_logits"
            )
        self.auxiliary_weights = {**DEFAULT_AUXILIARY_WEIGHTS, **(auxiliary_weights or {})}
        tracked = ["tokens", "symbols", "joins"]
        if self.auxiliary_weights["attention"] > 0:
            tracked.append("attention")
        self._trackers = {name: keras.metrics.Mean(name=f"{name}_loss") for name in tracked}
        # === Config ===
        self.labels = labels
        self.symbol_hidden_units = int(symbol_hidden_units)
        self.vocabulary = vocabulary
        self.drawing = drawing
        self.hidden_dim, self.encoder_layers, self.decoder_layers = (
            hidden_dim,
            encoder_layers,
            decoder_layers,
        )
        self.num_heads, self.intermediate_dim, self.max_length = (
            num_heads,
            intermediate_dim,
            max_length,
        )
        self.dropout = float(dropout)
        self.members = members
        self.split_junctions = bool(split_junctions)
        self.image_order = checked_token_order(image_order)
        self.writing_order = bool(writing_order)
        self.build()  # every variable exists from the start: save, load and count at once

    @property
    def feature_dim(self) -> int:
        """Numbers per stroke token from the classifier (views × (hidden + classes)).

        Example:
        >>> StrokeRecognizer.feature_dim.__doc__ is not None
        True
        """
        return self.featurizer.feature_dim

    def build(self, input_shape=None):
        if self.built:  # built in __init__; a second call (a caller's build()) is a no-op
            return
        features = (None, None, self.feature_dim)
        geometry = (None, None, len(GEOMETRY_COLUMNS))
        self.token_encoder.build(features, geometry)
        memory = (None, None, self.hidden_dim * self.members)
        self.decoder.build((None, None), memory)
        self.symbol_logits.build(memory)
        self.join_logits.build(memory)
        self.built = True

    def encode(self, inputs: dict, training: bool | None = None) -> Any:
        """Stroke tokens → the decoder's memory ``(batch, S, hidden_dim)``.

        Args:
            inputs: dict with ``"features"`` ``(batch, S, feature_dim)`` and ``"geometry"``
                ``(batch, S, 12)`` (`expression_tokens`), and optionally
                ``"padding_mask"`` ``(batch, S)`` bool, False for the padding after a
                shorter expression's strokes (`pad_tokens`).

        Example:
        >>> StrokeRecognizer.encode.__doc__ is not None
        True
        """
        return self.token_encoder(
            inputs["features"],
            inputs["geometry"],
            training=training,
            padding_mask=inputs.get("padding_mask"),
        )

    def decode_logits(
        self, memory: Any, ids: Any, training: bool | None = None, memory_mask: Any = None
    ) -> Any:
        """Next-token logits for every prefix position (`memory_mask`: as `encode`'s padding).

        Example:
        >>> StrokeRecognizer.decode_logits.__doc__ is not None
        True
        """
        return self.decoder(ids, memory, training=training, memory_mask=memory_mask)

    def call(self, inputs, training=None):
        memory = self.encode(inputs, training=training)
        logits, attention = self.decoder(
            inputs["ids"], memory, training=training, return_attention=True
        )
        outputs = {
            "tokens": logits,
            "symbols": self.symbol_logits(memory),
            "joins": self.join_logits(memory)[..., 0],
        }
        if self.auxiliary_weights["attention"] > 0:
            outputs["attention"] = attention  # (batch, T, strokes), heads averaged
        return outputs

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        """Caption cross-entropy plus the weighted auxiliary losses, each over its labels only.

        ``y`` holds ``"tokens"`` (next ids, 0 = pad), ``"symbols"`` (class per stroke, -1 =
        none) and ``"joins"`` (1 when a stroke continues the previous one's symbol, -1 = none),
        and, for the guided attention, ``"guide"`` ``(batch, T, strokes)``: 1 on the strokes
        of the symbol each next token writes (rows of zeros: no guidance). Its loss is the
        negative log of the attention those strokes get.

        Example:
        >>> StrokeRecognizer.compute_loss.__doc__ is not None
        True
        """
        if self.members > 1:
            raise ValueError(
                f"A StrokeRecognizer of {self.members} members reads; it does not train: its "
                "decoder averages the members' log-probabilities. Train each member as a "
                "one-member StrokeRecognizer (`train-formulas --members N` trains them one "
                "after another) and join them with `StrokeRecognizer.from_members`."
            )
        token_loss = _masked_cross_entropy(
            y["tokens"], y_pred["tokens"], ops.not_equal(y["tokens"], 0)
        )
        symbol_loss = _masked_cross_entropy(
            ops.maximum(y["symbols"], 0), y_pred["symbols"], ops.greater_equal(y["symbols"], 0)
        )
        joins = ops.cast(y["joins"], "float32")
        known = ops.cast(ops.greater_equal(joins, 0), "float32")
        per_stroke = ops.binary_crossentropy(
            ops.maximum(joins, 0.0), ops.cast(y_pred["joins"], "float32"), from_logits=True
        )
        join_loss = ops.sum(per_stroke * known) / ops.maximum(ops.sum(known), 1.0)
        parts = {"tokens": token_loss, "symbols": symbol_loss, "joins": join_loss}
        if "attention" in y_pred and isinstance(y, dict) and "guide" in y:
            guide = ops.cast(y["guide"], "float32")
            guided = ops.cast(ops.sum(guide, axis=-1) > 0, "float32")
            mass = ops.sum(ops.cast(y_pred["attention"], "float32") * guide, axis=-1)
            per_step = -ops.log(mass + 1e-6) * guided
            parts["attention"] = ops.sum(per_step) / ops.maximum(ops.sum(guided), 1.0)
        total = token_loss
        for name, value in parts.items():
            self._trackers[name].update_state(value)
            if name != "tokens":
                total = total + self.auxiliary_weights[name] * value
        losses = self.losses
        return total + ops.sum(losses) if losses else total

    @property
    def metrics(self) -> list:
        return [*super().metrics, *self._trackers.values()]

    # --- Reading ---------------------------------------------------------------------------

    def tokens_of(self, expressions: Sequence[Sequence], *, progress: bool = False) -> list[dict]:
        """Each expression's token inputs: ``{"features", "geometry"}`` arrays.

        Every expression's strokes are drawn and featurized in one pass per chunk (a batch of
        classifier calls), so reading many expressions costs little more than one.

        Example:
        >>> StrokeRecognizer.tokens_of.__doc__ is not None
        True
        """
        from im2latex_encoder.recognizer.stroke_features import expression_tokens
        from im2latex_encoder.recognizer.stroke_tokens import normalize_expression

        units = [normalize_expression(strokes) for strokes in expressions]
        features, geometry = expression_tokens(
            self.featurizer, units, normalized=True, progress=progress
        )
        bounds = np.cumsum([0, *[len(u) for u in units]])
        return [
            {"features": features[a:b].astype(np.float32), "geometry": geometry[a:b]}
            for a, b in zip(bounds[:-1], bounds[1:])
        ]

    def recognize_stroke_tokens(
        self,
        expressions: Sequence[Sequence],
        *,
        beam_width: int | None = None,
        batch_size: int = 32,
        progress: bool = False,
        symbol_count_weight: float | None = None,
        slants: Sequence[float] | None = None,
    ) -> list[list[str]]:
        """Read handwritten expressions: one list of LaTeX tokens per expression.

        `beam_width` None reads with `default_beam_width`; `symbol_count_weight` as in
        `recognize_token_ids` (0: the decoder alone). With `slants`, each expression is also
        read sheared by each slant (`slanted`), and decoding averages the decoder over the
        ink and those views (`recognize_token_ids`' `views`): test-time augmentation, each
        slant another pass of the features and the decoder. None: `default_slants` for beam
        search, none for greedy decoding; ``()`` reads the ink alone.

        Example:
        >>> StrokeRecognizer.recognize_stroke_tokens.__doc__ is not None
        True
        """
        from im2latex_encoder.recognizer.stroke_tokens import slanted

        beam_width = self.default_beam_width if beam_width is None else beam_width
        if slants is None:
            slants = self.default_slants if isinstance(beam_width, int) and beam_width > 1 else ()
        expressions = list(expressions)
        views = [self.tokens_of(slanted(expressions, slant)) for slant in slants]
        ids = self.recognize_token_ids(
            self.tokens_of(expressions, progress=progress),
            beam_width=beam_width,
            batch_size=batch_size,
            symbol_count_weight=symbol_count_weight,
            views=views,
        )
        return [self.vocabulary.decode_tokens(row) for row in ids]

    def recognize_strokes(
        self,
        expressions: Sequence[Sequence[np.ndarray]],
        beam_width: int | None = None,
        *,
        batch_size: int = 32,
        slants: Sequence[float] | None = None,
    ) -> list[str]:
        """Read handwritten expressions: one LaTeX string (tokens joined by spaces) each.

        The same answer `im2latex-encoder recognize` prints for the same strokes in an InkML
        file, and the web server's.

        Args:
            expressions: each a list of strokes, each an ``(n, 2)`` array of X, Y (Y down, any
                units: the scale is estimated from the strokes themselves).
            beam_width: int. 1 for greedy decoding, more for beam search (with the
                symbol-count prior); None: `default_beam_width` (4).
            batch_size: int. Expressions decoded together (padded to the longest, masked).
            slants: floats or None. Also read each expression sheared by each (test-time
                augmentation, `recognize_stroke_tokens`); None: `default_slants` for beam
                search, none for greedy decoding; ``()``: the ink alone.

        Raises:
            ValueError: for an expression without a point, a stroke that is not ``(n, 2)``,
                or coordinates that are not finite.

        Example:
        >>> StrokeRecognizer.recognize_strokes.__doc__ is not None
        True
        """
        tokens = self.recognize_stroke_tokens(
            expressions, beam_width=beam_width, batch_size=batch_size, slants=slants
        )
        return [" ".join(row) for row in tokens]

    def recognize_images(
        self,
        images: Sequence[np.ndarray],
        beam_width: int | None = None,
        *,
        batch_size: int = 32,
        slants: Sequence[float] | None = None,
        symbol_cutter: SymbolCutter | None = None,
    ) -> list[str]:
        """Read expression images (uint8 ``(H, W)``, ink 255 on 0) by their ink's components.

        Each connected component of ink is one token (`image_tokens`), drawn at the model's
        own scale, estimated from the components: an image reads the same at any size.
        `beam_width` and `slants` as for `recognize_strokes` (the components are sheared).
        With a `symbol_cutter` (`SymbolCutter`), components are first cut where it says two
        symbols touch.

        Example:
        >>> StrokeRecognizer.recognize_images.__doc__ is not None
        True
        """
        from im2latex_encoder.recognizer.stroke_components import image_tokens

        expressions = [
            image_tokens(
                np.asarray(image),
                split_junctions=self.split_junctions,
                symbol_cutter=symbol_cutter,
                order=self.image_order,
            )
            for image in images
        ]
        tokens = self.recognize_stroke_tokens(
            expressions, beam_width=beam_width, batch_size=batch_size, slants=slants
        )
        return [" ".join(row) for row in tokens]

    def recognize_token_ids(
        self,
        tokens: Sequence[dict],
        *,
        beam_width: int = 1,
        batch_size: int = 32,
        coverage_weight: float = 0.0,
        symbol_count_weight: float | None = None,
        latex_grammar: bool | None = None,
        views: Sequence[Sequence[dict]] = (),
    ) -> list[list[int]]:
        """Token ids read from precomputed token inputs (`tokens_of`), in input order.

        Expressions are decoded `batch_size` at a time, shortest first, each batch padded to
        its longest expression under a padding mask (`pad_tokens`): an expression reads as
        it reads alone.
        Decoding counts the symbols it writes, in all and of each class, against those the
        ``joins`` and ``symbols`` heads find in the strokes (`SymbolCountPrior`, weighted by
        `symbol_count_weight`: 0 decodes with the decoder alone, None means
        `SYMBOL_COUNT_WEIGHT` for beam search and 0 for greedy decoding), and writes only
        what a caption can be (`LatexGrammar`: braces balanced, a group after ``^``, ``_``,
        ``\\frac``; `latex_grammar` None means on for beam search, off for greedy). With
        ``beam_width > 1`` and a `coverage_weight`, the final beams are rescored by how fully the decoder's last cross-attention covered the
        strokes (GNMT's coverage penalty: ``weight * sum over strokes of log(min(attention
        received, 1))``), so a reading that skipped strokes loses to one that read them all.

        `views` are more readings of the same expressions, each a list parallel to `tokens`
        (`tokens_of` of the ink slanted, say: `slanted`); every decoding step then averages
        the decoder's log-probabilities over `tokens` and each view, and the prior reads the
        heads' logits averaged over them (test-time augmentation, `recognize_stroke_tokens`'
        `slants`).

        Example:
        >>> StrokeRecognizer.recognize_token_ids.__doc__ is not None
        True
        """
        from im2latex_encoder.recognizer.decoding import beam_search_decode, greedy_decode

        if not isinstance(beam_width, int) or beam_width < 1:
            raise ValueError(
                f"`beam_width` must be a positive int. Received: beam_width={beam_width!r}"
            )
        if symbol_count_weight is None:
            weight = SYMBOL_COUNT_WEIGHT if beam_width > 1 else 0.0
        else:
            weight = checked_weight(symbol_count_weight, "symbol_count_weight")
        grammar = None
        if beam_width > 1 if latex_grammar is None else latex_grammar:
            grammar = LatexGrammar(self.vocabulary.tokens, self.vocabulary.end_id, self.max_length)
        if not self.built:
            self.build()
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(
                f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}"
            )
        every = [tokens, *checked_views(views, tokens)]
        if len(every) > 1 and coverage_weight > 0:
            raise ValueError(
                "`coverage_weight` rescoring reads one view's attention; pass either `views` "
                f"or a `coverage_weight`. Received: {len(views)} views, "
                f"coverage_weight={coverage_weight!r}"
            )
        results: list = [None] * len(tokens)
        # Shortest first, so each batch pads its expressions to about the same length.
        order = np.argsort([len(t["features"]) for t in tokens], kind="stable")
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            # Each expression's views in consecutive rows (`greedy_decode`'s `views`).
            batch = pad_tokens([view[i] for i in chosen for view in every])
            prior = chain_processors(
                self.symbol_count_prior(batch, weight, views=len(every)), grammar
            )
            if beam_width == 1:
                ids = greedy_decode(self, batch, logits_processor=prior, views=len(every))
            elif len(every) > 1:
                ids = beam_search_decode(
                    self, batch, beam_width=beam_width, logits_processor=prior, views=len(every)
                )
            elif coverage_weight > 0:
                beams = beam_search_decode(
                    self,
                    batch,
                    beam_width=beam_width,
                    return_beams=True,
                    logits_processor=prior,
                )
                ids = self._rescore_by_coverage(batch, beams, coverage_weight)
            else:
                ids = beam_search_decode(self, batch, beam_width=beam_width, logits_processor=prior)
            for i, row in zip(chosen, ids):
                results[i] = row
        return results

    def symbol_count_prior(
        self, batch: dict, weight: float = SYMBOL_COUNT_WEIGHT, *, views: int = 1
    ) -> SymbolCountPrior | None:
        """The `SymbolCountPrior` of a batch of token inputs, or None for weight 0.

        Args:
            batch: dict of ``"features"`` and ``"geometry"``, ``(batch, S, ...)``.
            weight: float ≥ 0 (`recognize_token_ids`' `symbol_count_weight`).
            views: int. Each expression's rows come `views` at a time (its views, as
                `greedy_decode` takes them): the heads' logits are averaged over each
                expression's views, one prior row per expression.

        Example:
        >>> StrokeRecognizer.symbol_count_prior.__doc__ is not None
        True
        """
        if checked_weight(weight, "symbol_count_weight") == 0:
            return None
        memory = compiled_encode(self)(batch)
        lengths = None
        if batch.get("padding_mask") is not None:
            lengths = np.asarray(batch["padding_mask"]).sum(axis=1)[::views]
        return SymbolCountPrior.from_logits(
            ops.convert_to_numpy(self.join_logits(memory)[..., 0]),
            ops.convert_to_numpy(self.symbol_logits(memory)),
            self.token_classes,
            self.vocabulary.end_id,
            weight,
            lengths=lengths,
            views=views,
        )

    @property
    def token_classes(self) -> np.ndarray:
        """``(vocabulary,)`` int: each token's symbol class in `labels`, -1 if it has no ink.

        ``x`` is class ``x``, ``\\frac`` the class ``-`` (its bar), ``^`` and ``<end>`` -1.

        Example:
        >>> StrokeRecognizer.token_classes.__doc__ is not None
        True
        """
        from im2latex_encoder.recognizer.stroke_training import token_symbol_classes

        return token_symbol_classes(self.vocabulary.tokens, self.labels)

    def _rescore_by_coverage(self, batch: dict, beams: list, weight: float) -> list[list[int]]:
        """The beam of each expression whose score plus coverage penalty is highest."""
        memory = ops.convert_to_numpy(compiled_encode(self)(batch))
        rows, owners = [], []
        for index, candidates in enumerate(beams):
            for ids, score in candidates:
                rows.append((ids, score))
                owners.append(index)
        length = min(self.max_length, 1 + max(len(ids) + 1 for ids, _ in rows))
        prefix = np.zeros((len(rows), length), np.int32)
        for row, (ids, _) in enumerate(rows):
            sequence = [self.vocabulary.start_id, *ids, self.vocabulary.end_id][:length]
            prefix[row, : len(sequence)] = sequence
        mask = batch.get("padding_mask")
        counts = [memory.shape[1]] * len(beams) if mask is None else np.sum(mask, axis=1)
        _, attention = self.decoder(
            prefix,
            memory[owners],
            return_attention=True,
            memory_mask=None if mask is None else np.asarray(mask)[owners],
        )
        attention = ops.convert_to_numpy(attention)  # (rows, T, strokes); padding gets 0
        best: list = [None] * len(beams)
        for row, ((ids, score), owner) in enumerate(zip(rows, owners)):
            steps = min(len(ids) + 1, length)  # the tokens written, <end> included
            strokes = counts[owner]  # the padding after them got no attention
            received = attention[row, :steps, :strokes].sum(axis=0)
            total = score + weight * float(np.log(np.minimum(received, 1.0) + 1e-9).sum())
            if best[owner] is None or total > best[owner][0]:
                best[owner] = (total, ids)
        return [ids for _, ids in best]

    def stroke_symbols(self, strokes: Sequence[np.ndarray]) -> list[str]:
        """The symbol class the model reads for each stroke, in the context of all of them.

        Example:
        >>> StrokeRecognizer.stroke_symbols.__doc__ is not None
        True
        """
        if not self.built:
            self.build()
        token = self.tokens_of([strokes])[0]
        batch = {key: value[None] for key, value in token.items()}
        memory = compiled_encode(self)(batch)
        logits = ops.convert_to_numpy(self.symbol_logits(memory))[0]
        return [self.labels[i] for i in logits.argmax(-1)]

    @classmethod
    def from_symbol_classifier(
        cls, classifier: Any, vocabulary: Vocabulary | Sequence[str], **kwargs: Any
    ) -> StrokeRecognizer:
        """A new recognizer whose stroke features come from a trained `SymbolClassifier`.

        The classifier's backbone and head are shared (not copied) and frozen; the token
        encoder, the decoder and the auxiliary heads are new.

        Example:
        >>> from im2latex_encoder import SymbolClassifier
        >>> model = StrokeRecognizer.from_symbol_classifier(
        ...     SymbolClassifier.from_preset("crohme101"), ["x", "1"], hidden_dim=16,
        ...     encoder_layers=1, decoder_layers=1, num_heads=2, intermediate_dim=32)
        >>> model.feature_dim, model.labels == SymbolClassifier.from_preset("crohme101").labels
        (1071, True)
        """
        drawing = kwargs.pop("drawing", None) or StrokeDrawing(
            image_size=int(classifier.image_size[0]) if classifier.image_size else 48,
            fill=float(classifier.context_scale)
            if not isinstance(classifier.context_scale, bool)
            else 1.0,
        )
        return cls(
            classifier.encoder,
            classifier.head,
            vocabulary,
            labels=classifier.labels,
            drawing=drawing,
            **kwargs,
        )

    @classmethod
    def from_members(cls, models: Sequence[StrokeRecognizer]) -> StrokeRecognizer:
        """One recognizer reading as all of `models` together (an ensemble of `members`).

        The models must share their featurizer (the same symbol classifier's weights and
        drawing), vocabulary, labels and shape, as seeds of one `train-formulas` recipe do;
        each model's token encoder, decoder and heads become one member, weights copied.
        Decoding then averages the members' log-probabilities at every step, and the
        symbol-count prior reads their heads' logits averaged.

        Raises:
            ValueError: for fewer than two models, a model of several members, or models
                that differ in anything but their trained members (the message says what).

        Example:
        >>> from im2latex_encoder import SymbolEncoder
        >>> encoder = SymbolEncoder(filters=(4, 4, 4))
        >>> small = dict(vocabulary=["x", "1"], symbol_hidden_units=8, hidden_dim=16,
        ...              encoder_layers=1, decoder_layers=1, num_heads=2, intermediate_dim=32,
        ...              max_length=8)
        >>> one = StrokeRecognizer(encoder, **small)
        >>> two = StrokeRecognizer(encoder, one.symbol_head, **small)
        >>> both = StrokeRecognizer.from_members([one, two])
        >>> both.members, both.member(1).count_params() == two.count_params()
        (2, True)
        """
        models = list(models)
        if len(models) < 2 or any(
            not isinstance(model, StrokeRecognizer) or model.members != 1 for model in models
        ):
            received = [
                f"{type(model).__name__}(members={getattr(model, 'members', None)})"
                for model in models
            ]
            raise ValueError(
                f"`from_members` joins two or more one-member StrokeRecognizers. Received: {received}"
            )
        first = models[0]
        config = first.get_config()
        for index, model in enumerate(models[1:], start=1):
            other = model.get_config()
            differ = sorted(
                key
                for key in config
                # the featurizer is compared by its weights, below; the rest trains only
                if key
                not in (
                    "name",
                    "encoder",
                    "symbol_head",
                    "auxiliary_weights",
                    "dropout",
                    "trainable",
                )
                and config[key] != other.get(key)
            )
            if differ:
                raise ValueError(
                    f"Members must differ only in their trained weights; model {index} differs "
                    f"from model 0 in {differ}."
                )
            for part in ("encoder", "symbol_head"):
                mine, theirs = (
                    getattr(first, part).get_weights(),
                    getattr(model, part).get_weights(),
                )
                if len(mine) != len(theirs) or any(
                    not np.array_equal(a, b) for a, b in zip(mine, theirs)
                ):
                    raise ValueError(
                        f"Members must share their featurizer; model {index}'s {part} weights "
                        "differ from model 0's (train every member from one symbol classifier)."
                    )
        joined = first._with_members(len(models))
        for index, model in enumerate(models):
            for part in _MEMBER_PARTS:
                getattr(joined, part).members[index].set_weights(getattr(model, part).get_weights())
        return joined

    def member(self, index: int) -> StrokeRecognizer:
        """Member `index` of an ensemble as a one-member recognizer of its own (weights copied).

        Example:
        >>> StrokeRecognizer.member.__doc__ is not None
        True
        """
        if self.members == 1:
            if index != 0:
                raise ValueError(f"This recognizer has one member. Received: index={index!r}")
            return self
        if not isinstance(index, int) or not 0 <= index < self.members:
            raise ValueError(
                f"`index` must be an int in [0, {self.members}). Received: index={index!r}"
            )
        single = self._with_members(1)
        for part in _MEMBER_PARTS:
            getattr(single, part).set_weights(getattr(self, part).members[index].get_weights())
        return single

    def _with_members(self, members: int) -> StrokeRecognizer:
        """A new recognizer of this configuration with `members`, the featurizer's weights copied."""
        config = self.get_config()
        config.pop("name", None)
        new = type(self).from_config({**config, "members": members})
        new.encoder.set_weights(self.encoder.get_weights())
        new.symbol_head.set_weights(self.symbol_head.get_weights())
        return new

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "symbol_head": keras.saving.serialize_keras_object(self.symbol_head),
            "labels": list(self.labels),
            "symbol_hidden_units": self.symbol_hidden_units,
            "vocabulary": list(self.vocabulary.tokens),
            "drawing": self.drawing.to_json(),
            "hidden_dim": self.hidden_dim,
            "encoder_layers": self.encoder_layers,
            "decoder_layers": self.decoder_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "max_length": self.max_length,
            "dropout": self.dropout,
            "auxiliary_weights": dict(self.auxiliary_weights),
            "members": self.members,
            "split_junctions": self.split_junctions,
            "image_order": self.image_order,
            "writing_order": self.writing_order,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        head = keras.saving.deserialize_keras_object(config.pop("symbol_head"))
        return cls(encoder, head, **config)


#: The layers each member of a `StrokeRecognizer` has its own of (`from_members`, `member`).
_MEMBER_PARTS = ("token_encoder", "decoder", "symbol_logits", "join_logits")

#: The stroke recognizer presets the package can ship (`python -m pretrain.ship`): registered
#: once the folder exists in `shipped_presets/` holding a stroke recognizer's preset (kind
#: "stroke-recognizer"); the same name holding an image recognizer is `FormulaRecognizer`'s.
SHIPPABLE_PRESETS = ("crohme-formulas",)


def pad_tokens(tokens: Sequence[dict]) -> dict:
    """Token inputs of several expressions (`StrokeRecognizer.tokens_of`) as one batch.

    Expressions of different stroke counts are padded with zeros to the longest, and the
    batch gets a ``"padding_mask"`` ``(batch, S)``, True for real strokes, which the token
    encoder and the decoder's cross-attention read; a batch of equal stroke counts needs
    none and gets none.

    Example:
    >>> import numpy as np
    >>> tokens = [{"features": np.ones((n, 3)), "geometry": np.ones((n, 12))} for n in (2, 4)]
    >>> batch = pad_tokens(tokens)
    >>> batch["features"].shape, batch["padding_mask"].sum(axis=1).tolist()
    ((2, 4, 3), [2, 4])
    >>> sorted(pad_tokens(tokens[:1]))
    ['features', 'geometry']
    """
    if not tokens:
        raise ValueError("`tokens` must hold at least one expression's tokens. Received: []")
    lengths = [len(token["features"]) for token in tokens]
    if min(lengths) < 1:
        raise ValueError(
            f"Every expression needs at least one stroke token. Received lengths: {lengths}"
        )
    longest = max(lengths)
    batch = {}
    for key in ("features", "geometry"):
        width = np.shape(tokens[0][key])[-1]
        array = np.zeros((len(tokens), longest, width), np.float32)
        for row, token in enumerate(tokens):
            array[row, : lengths[row]] = token[key]
        batch[key] = array
    if min(lengths) < longest:
        batch["padding_mask"] = np.arange(longest)[None] < np.array(lengths)[:, None]
    return batch


def _register_shipped_presets() -> tuple[str, ...]:
    """Register the shipped stroke recognizer presets; return their names."""
    from im2latex_encoder.recognizer.saving import register_shipped_recognizers

    return register_shipped_recognizers(StrokeRecognizer, SHIPPABLE_PRESETS)


def _vocabulary(tokens: Sequence[str]) -> Vocabulary:
    special = {"<pad>", "<start>", "<end>", "<unk>"}
    return Vocabulary([t for t in tokens if t not in special])


def _masked_cross_entropy(labels, logits, mask):
    per_item = ops.sparse_categorical_crossentropy(
        ops.cast(labels, "int32"), ops.cast(logits, "float32"), from_logits=True
    )
    mask = ops.cast(mask, "float32")
    return ops.sum(per_item * mask) / ops.maximum(ops.sum(mask), 1.0)


_register_shipped_presets()
