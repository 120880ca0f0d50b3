"""Read handwritten formulas with an exported recognizer: numpy and ONNX Runtime or LiteRT alone.

`export_recognizer` (``im2latex-encoder export --model RUN/recognizer --format onnx --out DIR``)
copies this file into its folder as ``runner.py``, beside the graphs it drives:

- ``encoder.onnx`` / ``encoder.tflite``: float images ``images`` `(batch, H, W, 1)`, ink 1.0
  on 0.0 → every decoder block's cross-attention keys and values of the image,
  ``cross_keys_<i>`` and ``cross_values_<i>``, each `(batch, heads, S, key_dim)`;
- ``step.onnx`` / ``step.tflite``: one decoding step. ``ids`` `(batch, 1)` int32 (the latest
  token), ``position`` (int32 scalar, its index), the self-attention cache ``cache_keys_<i>``,
  ``cache_values_<i>`` `(batch, heads, max_length, key_dim)` and the cross keys and values →
  ``logits`` `(batch, vocabulary)` and the cache with this token's keys and values written
  at ``position``, ``next_cache_keys_<i>``, ``next_cache_values_<i>``;
- ``export.json`` (sizes, names, special ids, the parity figures), ``vocabulary.json``,
  ``recognizer.json`` (how expressions are drawn for this recognizer).

It imports numpy and the runtime it runs on, nothing else: no TensorFlow, no Keras, not
``im2latex_encoder``. (Two exceptions, where the runtime is TensorFlow's: a SavedModel export,
run with ``backend="tensorflow"``, and a TFLite export where LiteRT, ``ai-edge-litert``, is not
installed, run with ``tf.lite.Interpreter``.) Greedy decoding is `greedy_decode`'s, beam search
(``beam_width`` / ``--beam N``) is `beam_search_decode`'s, and images are grouped by width and
padded as `recognize_images` groups them, so it prints the LaTeX tokens
``im2latex-encoder recognize [--beam N]`` prints.

Example:
>>> import runner  # the exported folder on sys.path  # doctest: +SKIP
>>> runner.decode([image])  # uint8 (H, W), ink 255 on 0  # doctest: +SKIP
['x ^ { 2 }']

From a shell, on image files (dark ink on light paper; read with Pillow or OpenCV) or ``.npy``
arrays (one image `(H, W)` or several `(N, H, W)`, uint8 ink 255 or float ink 1.0):

    python DIR/runner.py expression.png drawing.npy --backend litert
    python DIR/runner.py expression.png --beam 4

A `StrokeRecognizer`'s export (``"kind": "stroke-recognizer"`` in ``export.json``) has a third
graph and reads strokes as well as images:

- ``featurizer.onnx``: each stroke's views ``views`` `(N, 48, 48, 1)`, float ink 1.0 on 0.0 →
  ``features`` `(N, view_dim)` (the frozen symbol classifier's hidden layer and
  log-probabilities);
- ``encoder.onnx``: an expression's stroke tokens, ``features`` `(batch, S, feature_dim)` and
  ``geometry`` `(batch, S, 12)` → the cross-attention keys and values, as above;
- ``step.onnx`` as above, and ``stroke_drawing.json`` (how strokes are drawn).

`ExportedRecognizer.recognize_strokes` draws each stroke's views and measures its geometry
with the package's numpy/OpenCV code (`im2latex_encoder.recognizer.stroke_tokens`; an image's
connected components with `stroke_components`), so a stroke export needs ``im2latex_encoder``
installed beside numpy and onnxruntime, but imports neither Keras nor TensorFlow.

    python DIR/runner.py expression.png           # a stroke export reads images by components
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST_FILE = "export.json"
SIGNATURE = "serve"
#: The runtime that runs each format's graphs.
BACKENDS = {"onnx": "onnxruntime", "tflite": "litert", "savedmodel": "tensorflow"}
HERE = Path(__file__).resolve().parent


class ExportedRecognizer:
    """An exported recognizer's graphs on one runtime, with greedy and beam decoding in numpy.

    Args:
        folder: str or PathLike. The export's folder (default: this file's).
        backend: str or None. ``"onnxruntime"`` (``.onnx`` graphs), ``"litert"``
            (``.tflite``) or ``"tensorflow"`` (SavedModel); None: the one for the export's
            format.
        num_threads: int or None. Threads the runtime may use (None: its default).

    Example:
    >>> recognizer = ExportedRecognizer("exported")  # doctest: +SKIP
    >>> recognizer.decode([image_a, image_b])  # doctest: +SKIP
    ['x ^ { 2 }', '\\\\frac { a } { b }']
    """

    #: ``"recognizer"`` (images) or ``"stroke-recognizer"`` (strokes and images).
    kind = "recognizer"
    #: A stroke export's featurizer graph and `StrokeDrawing` (None for an image export).
    featurizer: Any = None
    drawing: Any = None
    #: A stroke export's beam-search symbol-count prior: each token's symbol class (-1: none),
    #: and its weight (0: none, an image export or a stroke export made before the prior).
    token_classes: Any = None
    symbol_count_weight = 0.0
    #: Whether beam search applies `LatexGrammar` (exports made before it do not).
    latex_grammar = False
    #: The beam width `recognize_strokes` / `recognize_images` read with unless told: a
    #: stroke export's model's (4), else 1 (exports made before it: greedy).
    default_beam_width = 1
    #: The slants beam search also reads each expression at unless told (the Keras model's
    #: `default_slants`; exports made before them: none).
    default_slants: tuple = ()
    #: How `recognize_images` cuts an image into tokens (`image_tokens`' `split_junctions`,
    #: the Keras model's; exports made before it: whole components).
    split_junctions: bool = False
    #: The order `recognize_images` reads an image's tokens in (`image_tokens`' `order`, the
    #: Keras model's; exports made before it: left to right).
    image_order: str = "left-to-right"

    def __init__(
        self,
        folder: str | os.PathLike = HERE,
        backend: str | None = None,
        num_threads: int | None = None,
    ):
        self.folder = Path(folder)
        manifest_path = self.folder / MANIFEST_FILE
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"{os.fspath(self.folder)} is not an exported recognizer: no {MANIFEST_FILE}"
            )
        self.manifest = manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        expected = BACKENDS[manifest["format"]]
        self.backend = backend or expected
        if self.backend != expected:
            raise ValueError(
                f"This export is {manifest['format']}: it runs on backend={expected!r}. "
                f"Received: backend={self.backend!r}"
            )
        self.kind = manifest.get("kind", "recognizer")
        tokens = json.loads((self.folder / manifest["vocabulary"]).read_text(encoding="utf-8"))
        self.tokens = list(tokens["tokens"])
        self.max_length = int(manifest["max_length"])
        self.start_id = int(manifest["start_id"])
        self.end_id = int(manifest["end_id"])
        self.pad_id = int(manifest["pad_id"])
        self.cache_shape = (
            int(manifest["num_heads"]),
            self.max_length,
            int(manifest["key_dim"]),
        )
        self.cache_names = [name for name in manifest["step_inputs"] if name.startswith("cache_")]
        self.encoder = _graph(self.folder / manifest["encoder"], self.backend, num_threads)
        self.step = _graph(self.folder / manifest["step"], self.backend, num_threads)
        if self.kind == "stroke-recognizer":
            from im2latex_encoder.recognizer.stroke_tokens import StrokeDrawing

            drawing = (self.folder / manifest["drawing"]).read_text(encoding="utf-8")
            self.drawing = StrokeDrawing.from_json(json.loads(drawing))
            self.featurizer = _graph(
                self.folder / manifest["featurizer"], self.backend, num_threads
            )
            if "join_output" in manifest:  # exports before the symbol-count prior lack it
                self.token_classes = np.array(manifest["token_classes"], np.int64)
                self.symbol_count_weight = float(manifest["symbol_count_weight"])
            self.latex_grammar = bool(manifest.get("latex_grammar", False))
            self.default_beam_width = int(manifest.get("default_beam_width", 1))
            self.default_slants = tuple(float(s) for s in manifest.get("default_slants", ()))
            self.split_junctions = bool(manifest.get("split_junctions", False))
            self.image_order = str(manifest.get("image_order", "left-to-right"))

    def greedy_ids(
        self,
        images: np.ndarray | dict,
        max_length: int | None = None,
        logits: list | None = None,
    ) -> list[list[int]]:
        """Greedy token ids of a padded float batch `(batch, H, W, 1)`, as `greedy_decode`.

        A stroke export takes its token batch instead: ``{"features": (batch, S, F),
        "geometry": (batch, S, 12)}`` (`tokens_of`'s, of equal stroke count).

        Decoding stops when every row has reached ``<end>``, or after `max_length` tokens
        (default: the recognizer's). Rows that finished leave the batch once a quarter of it
        has (`greedy_decode` keeps them, fed ``<pad>``): the tokens are the same, and a batch of
        short and long formulas stops paying for the short ones (1.37× the formulas/s of the
        whole batch on 32 CROHME test expressions).

        Args:
            images: float32 array `(batch, H, W, 1)`, ink 1.0 on 0.0 (a stroke export: a
                token batch, a dict).
            max_length: int or None. Most tokens to generate.
            logits: list or None. If given, each step's logits `(batch, vocabulary)` are
                appended to it (the export's parity check reads them).

        Returns:
            One list of ids per image, without ``<start>``, ``<end>`` and ``<pad>``.

        Example:
        >>> ExportedRecognizer("exported").greedy_ids(np.zeros((1, 32, 64, 1), "float32"))  # doctest: +SKIP
        [[5, 9]]
        """
        feeds, steps = self._checked(images, max_length)
        cross = self._cross(self.encoder(feeds))
        batch = len(next(iter(cross.values())))
        cache = {
            name: np.zeros((batch, *self.cache_shape), np.float32) for name in self.cache_names
        }
        ids = np.full((batch, 1), self.start_id, np.int32)
        # `rows`: the images the graphs still decode. Once a quarter of them has finished, the
        # finished ones leave the batch (one gather of the caches), so a batch's short formulas
        # stop costing work while its longest is still being read; the tokens are the same.
        # With `logits` requested (the export's parity check), the batch stays whole.
        rows, done = np.arange(batch), np.zeros(batch, bool)
        chosen = np.full((batch, steps), self.pad_id, np.int32)
        for position in range(steps):
            out = self.step(
                {"ids": ids, "position": np.array(position, np.int32), **cache, **cross}
            )
            if logits is not None:
                logits.append(np.asarray(out["logits"]))
            next_ids = np.where(done, self.pad_id, out["logits"].argmax(-1)).astype(np.int32)
            chosen[rows, position] = next_ids
            done |= next_ids == self.end_id
            if done.all():
                break
            cache = {name: out[f"next_{name}"] for name in self.cache_names}
            if logits is None and done.sum() >= 0.25 * len(rows):
                keep = ~done
                rows, next_ids, done = rows[keep], next_ids[keep], done[keep]
                cache = {name: np.ascontiguousarray(value[keep]) for name, value in cache.items()}
                cross = {name: np.ascontiguousarray(value[keep]) for name, value in cross.items()}
            ids = next_ids[:, None]
        return [self._strip(row) for row in chosen]

    def beam_ids(
        self,
        images: np.ndarray | dict,
        beam_width: int = 4,
        *,
        max_length: int | None = None,
        length_penalty: float = 0.0,
        symbol_count_weight: float | None = None,
        views: int = 1,
    ) -> list[list[int]]:
        """Beam-search token ids of a padded float batch `(batch, H, W, 1)`, as Keras' search.

        Keras' beam search step for step: each image keeps its `beam_width` best prefixes,
        scored by the sum of their tokens' log-probabilities (float64); a beam that emitted
        ``<end>`` continues with ``<pad>`` at no cost; ties go to the lower beam, then the lower
        token id; the winner is the best score divided by ``length ** length_penalty``.
        Decoding stops when every beam of every image has finished, or after `max_length`
        tokens. Each step gathers the cache's rows along the kept beams (`beam_search_decode`'s
        reorder). Unlike Keras, the first step runs one row per image (its beams are still
        identical), and an image whose beams have all finished leaves the batch once a quarter
        of the images have (as in `greedy_ids`): its result can no longer change.

        Args:
            images: float32 array `(batch, H, W, 1)`, ink 1.0 on 0.0 (a stroke export: a
                token batch, as `greedy_ids` takes it).
            beam_width: int. Prefixes kept per image; 1 is greedy decoding.
            max_length: int or None. Most tokens to generate (default: the recognizer's).
            length_penalty: float. Exponent of the length normalisation of the finished
                beams' scores (0: none, `recognize_images`' and ``--beam``'s).
            symbol_count_weight: float or None. A stroke export's symbol-count prior
                (`SymbolCountPrior`, from the encoder graph's joins), as the Keras model's
                beam search adds it; None: the export's weight; 0: none. A stroke export
                made with it also applies `LatexGrammar` (braces balanced), as Keras' does.
            views: int. A stroke batch holds each expression's `views` (its ink and slanted
                copies, `StrokeRecognizer.recognize_stroke_tokens`' `slants`) in consecutive
                rows: each step averages their log-probabilities, as Keras'
                `beam_search_decode(..., views=)` does, and the prior reads their heads'
                logits averaged.

        Returns:
            One list of ids per image (its best beam; per expression with `views`), without
            ``<start>``, ``<end>`` and ``<pad>``.

        Example:
        >>> batch = np.zeros((2, 32, 64, 1), "float32")
        >>> ExportedRecognizer("exported").beam_ids(batch, beam_width=4)  # doctest: +SKIP
        [[5, 9], [5, 9]]
        """
        width = _checked_beam_width(beam_width)
        feeds, steps = self._checked(images, max_length)
        encoded = self.encoder(feeds)
        cross = self._cross(encoded)  # one row per image at the first step, then one per beam
        rows_in = len(next(iter(cross.values())))
        if not isinstance(views, int) or isinstance(views, bool) or views < 1 or rows_in % views:
            raise ValueError(
                "`views` must be a positive int that divides the batch's rows (each "
                f"expression's views in consecutive rows). Received: views={views!r} for "
                f"{rows_in} rows"
            )
        batch = rows_in // views  # the expressions: every graph row below comes `views` each
        prior = self._symbol_count_prior(encoded, symbol_count_weight, views)
        if self.latex_grammar:
            from im2latex_encoder.recognizer.latex_grammar import LatexGrammar, chain_processors

            grammar = LatexGrammar(self.tokens, self.end_id, self.max_length)
            prior = chain_processors(prior, grammar)
        images_of_rows = np.repeat(np.arange(batch), width)
        cache = {
            name: np.zeros((rows_in, *self.cache_shape), np.float32) for name in self.cache_names
        }
        # `active`: the images the graphs still decode, `views * width` rows each (row
        # (a * views + v) * width + k: view v of beam k; one row a view at the first step).
        active = np.arange(batch)
        ids = np.full((rows_in, 1), self.start_id, np.int32)
        scores = np.full((batch, width), -np.inf)
        scores[:, 0] = 0.0  # all beams start identical: expand only the first one
        done = np.zeros((batch, width), bool)
        lengths = np.zeros((batch, width), np.int64)
        chosen = np.full((batch, width, steps), self.pad_id, np.int32)
        for position in range(steps):
            out = self.step(
                {"ids": ids, "position": np.array(position, np.int32), **cache, **cross}
            )
            log_probs_rows = _log_softmax(np.asarray(out["logits"]).astype(np.float64))
            vocabulary = log_probs_rows.shape[-1]
            if views > 1:  # each beam: its views' log-probabilities averaged, renormalised
                log_probs_rows = log_probs_rows.reshape(len(active), views, -1, vocabulary)
                log_probs_rows = _log_softmax(log_probs_rows.mean(axis=1).reshape(-1, vocabulary))
            log_probs = np.zeros((batch, width, vocabulary))  # images out of the batch: done
            log_probs[active] = log_probs_rows.reshape(len(active), -1, vocabulary)
            if prior is not None:  # each beam's prefix so far: <start>, then its tokens
                prefix = np.concatenate(
                    [
                        np.full((batch * width, 1), self.start_id, np.int32),
                        chosen[:, :, :position].reshape(batch * width, position),
                    ],
                    axis=1,
                )
                log_probs = prior(
                    prefix, log_probs.reshape(batch * width, vocabulary), images_of_rows
                ).reshape(batch, width, vocabulary)
            # A finished beam continues only with <pad>, at no cost.
            finished = np.full(vocabulary, -np.inf)
            finished[self.pad_id] = 0.0
            log_probs = np.where(done[..., None], finished, log_probs)
            candidates = (scores[..., None] + log_probs).reshape(batch, width * vocabulary)
            best = np.argsort(-candidates, axis=1, kind="stable")[:, :width]
            source_beam, token = best // vocabulary, best % vocabulary
            chosen = np.take_along_axis(chosen, source_beam[..., None], axis=1)
            chosen[:, :, position] = token
            scores = np.take_along_axis(candidates, best, axis=1)
            was_done = np.take_along_axis(done, source_beam, axis=1)
            lengths = np.take_along_axis(lengths, source_beam, axis=1) + ~was_done
            done = was_done | (token == self.end_id)
            if done.all() or position + 1 == steps:
                break
            # The next step's rows: image i's beam k reads its source beam's cache row (at the
            # first step, the image's one row); images whose beams have all finished leave.
            if position == 0:
                rows = np.repeat(np.arange(len(active) * views), width)
            else:  # view v of beam k reads view v of its source beam
                view_rows = np.arange(len(active) * views).reshape(len(active), views, 1) * width
                rows = (view_rows + source_beam[active][:, None, :]).ravel()
            keep = ~done[active].all(axis=1)
            kept_rows = np.repeat(keep, views * width)
            if position == 0:  # every image's cross keys and values once per beam
                kept_views = np.repeat(keep, views)
                cross = {name: np.repeat(v[kept_views], width, axis=0) for name, v in cross.items()}
            elif keep.sum() <= 0.75 * len(active):
                cross = _compact_rows(cross, kept_rows)
            else:
                keep[:] = True
                kept_rows[:] = True
            active, rows = active[keep], rows[kept_rows]
            cache = {name: out[f"next_{name}"][rows] for name in self.cache_names}
            ids = np.repeat(token[active][:, None, :], views, axis=1).reshape(-1, 1)
            ids = ids.astype(np.int32)
        normalised = scores / np.maximum(lengths, 1) ** length_penalty
        winner = normalised.argmax(axis=1)
        return [self._strip(chosen[image, beam]) for image, beam in enumerate(winner)]

    def decode(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        *,
        batch_size: int = 32,
        beam_width: int = 1,
    ) -> list[str]:
        """LaTeX tokens (space-separated) of each image, decoded greedily or by beam search.

        Args:
            images: a padded float batch `(batch, H, W, 1)`, decoded as one batch; or images
                `(H, W)` of any sizes (uint8 ink 255 on 0, or float ink 1.0 on 0.0), grouped
                by width into batches of `batch_size` and padded as `recognize_images` does.
            batch_size: int. Images decoded together.
            beam_width: int. 1: `greedy_ids`; more: `beam_ids` with this width (what
                ``im2latex-encoder recognize --beam N`` reads).

        Returns:
            One string per image, in input order. A stroke export reads each image by its
            ink's connected components (`recognize_images`).

        Example:
        >>> ExportedRecognizer("exported").decode([image])  # doctest: +SKIP
        ['x ^ { 2 }']
        >>> ExportedRecognizer("exported").decode([image], beam_width=4)  # doctest: +SKIP
        ['x ^ { 2 }']
        """
        width = _checked_beam_width(beam_width)
        if self.kind == "stroke-recognizer":
            if isinstance(images, np.ndarray) and images.ndim == 4:
                images = list(images[..., 0])
            return self.recognize_images(
                [_as_uint8_image(image) for image in images],
                beam_width=width,
                batch_size=batch_size,
            )

        def ids_of(batch: np.ndarray) -> list[list[int]]:
            # `recognize_images`' rule: a width of 1 is greedy decoding itself.
            return self.greedy_ids(batch) if width == 1 else self.beam_ids(batch, width)

        if isinstance(images, np.ndarray) and images.ndim == 4:
            return [self.latex(ids) for ids in ids_of(images)]
        images = [_as_float_image(image) for image in images]
        results: list[str] = [""] * len(images)
        order = np.argsort([image.shape[1] for image in images], kind="stable")
        for start in range(0, len(order), batch_size):
            members = order[start : start + batch_size]
            batch = self.pad_batch([images[index] for index in members])
            for index, ids in zip(members, ids_of(batch)):
                results[int(index)] = self.latex(ids)
        return results

    def pad_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Float images `(H, W)` stacked top-left into `(batch, H, W, 1)`, zero-padded.

        The batch's largest height and width are rounded up to a multiple of 16, and to at
        least 32 (`im2latex_encoder.formulas.handwritten.pad_batch`'s rule).

        Example:
        >>> ExportedRecognizer("exported").pad_batch([np.ones((3, 40))]).shape  # doctest: +SKIP
        (1, 32, 48, 1)
        """
        multiple, minimum = int(self.manifest["pad_multiple"]), int(self.manifest["pad_minimum"])
        height = max(image.shape[0] for image in images)
        width = max(image.shape[1] for image in images)
        height = max(-(-height // multiple) * multiple, minimum)
        width = max(-(-width // multiple) * multiple, minimum)
        batch = np.zeros((len(images), height, width, 1), np.float32)
        for row, image in zip(batch, images):
            row[: image.shape[0], : image.shape[1], 0] = image
        return batch

    def latex(self, ids: Sequence[int]) -> str:
        """Token ids → their tokens joined by spaces (``<pad>`` and ``<start>`` skipped).

        Example:
        >>> ExportedRecognizer("exported").latex([4, 5])  # doctest: +SKIP
        'x ^'
        """
        skipped = (self.pad_id, self.start_id)
        return " ".join(self.tokens[index] for index in ids if index not in skipped)

    # --- Stroke exports -------------------------------------------------------------------

    def recognize_strokes(
        self,
        expressions: Sequence[Sequence],
        beam_width: int | None = None,
        *,
        batch_size: int = 32,
        slants: Sequence[float] | None = None,
    ) -> list[str]:
        """A stroke export's LaTeX of handwritten expressions, as `StrokeRecognizer`'s.

        Each expression's strokes are drawn and measured as the Keras model draws them
        (`tokens_of`), then expressions of equal stroke count are decoded together (greedy
        or beam search), as `StrokeRecognizer.recognize_strokes` groups them.

        Args:
            expressions: each a list of strokes, each an ``(n, 2)`` array of X, Y (Y down,
                any units).
            beam_width: int. 1 for greedy decoding, more for beam search; None: the
                export's `default_beam_width` (the Keras model's).
            batch_size: int. Expressions decoded together.
            slants: floats or None. Beam search also reads each expression sheared by each
                (`slanted`) and averages the decoder over the views, as the Keras model's
                `recognize_strokes`; None: the export's `default_slants` for beam search;
                ``()``: the ink alone. Greedy decoding reads the ink alone.

        Raises:
            ValueError: `slants` with greedy decoding (the runner averages views in its beam
                search only: read with ``beam_width=1`` as beam search of width 1 in Keras).

        Returns:
            One string of LaTeX tokens per expression, in input order.

        Example:
        >>> strokes = [np.array([[0., 0.], [9., 9.]]), np.array([[0., 9.], [9., 0.]])]
        >>> ExportedRecognizer("exported").recognize_strokes([strokes])  # doctest: +SKIP
        ['x']
        """
        from im2latex_encoder.recognizer.stroke_tokens import slanted

        width = _checked_beam_width(self.default_beam_width if beam_width is None else beam_width)
        if slants is None:
            slants = self.default_slants if width > 1 else ()
        slants = tuple(slants)
        if slants and width == 1:
            raise ValueError(
                "The runner reads slant views with beam search only. Received: "
                f"slants={slants} with beam_width=1; pass slants=() or a beam width above 1"
            )
        expressions = list(expressions)
        tokens = self.tokens_of(expressions)
        views = [self.tokens_of(slanted(expressions, slant)) for slant in slants]
        ids = self.token_ids(tokens, width, batch_size=batch_size, views=views)
        return [self.latex(row) for row in ids]

    def recognize_images(
        self,
        images: Sequence[np.ndarray],
        beam_width: int | None = None,
        *,
        batch_size: int = 32,
        slants: Sequence[float] | None = None,
    ) -> list[str]:
        """A stroke export's LaTeX of expression images (uint8 ``(H, W)``, ink 255 on 0).

        Each connected component of ink is one token (`image_tokens`), as
        `StrokeRecognizer.recognize_images` reads an image; `slants` as `recognize_strokes`'.

        Example:
        >>> ExportedRecognizer("exported").recognize_images([image])  # doctest: +SKIP
        ['x ^ { 2 }']
        """
        self._require_strokes("recognize_images")
        from im2latex_encoder.recognizer.stroke_components import image_tokens

        expressions = [
            image_tokens(
                np.asarray(image), split_junctions=self.split_junctions, order=self.image_order
            )
            for image in images
        ]
        return self.recognize_strokes(expressions, beam_width, batch_size=batch_size, slants=slants)

    def tokens_of(self, expressions: Sequence[Sequence]) -> list[dict]:
        """Each expression's stroke tokens, ``{"features", "geometry"}``, as the Keras model's.

        The strokes are put in typical-symbol units (`normalize_expression`), each drawn in
        the export's views (`draw_stroke_views`) and run through the featurizer graph; the
        features pass through float16, as `StrokeRecognizer.tokens_of`'s do.

        Example:
        >>> token = ExportedRecognizer("exported").tokens_of([strokes])[0]  # doctest: +SKIP
        >>> token["features"].shape, token["geometry"].shape  # doctest: +SKIP
        ((2, 1071), (2, 12))
        """
        self._require_strokes("tokens_of")
        from im2latex_encoder.recognizer.stroke_tokens import (
            draw_stroke_views,
            normalize_expression,
            stroke_geometry,
        )

        units = [normalize_expression(strokes) for strokes in expressions]
        if not units:
            return []
        size = self.drawing.image_size
        views = [draw_stroke_views(unit, self.drawing, normalized=True) for unit in units]
        counts = [len(view) for view in views]
        flat = np.concatenate([view.reshape(-1, size, size) for view in views])
        features = self.view_features(flat).reshape(sum(counts), -1)
        # `StrokeRecognizer.tokens_of` keeps its features in float16 (its caches' type).
        features = features.astype(np.float16).astype(np.float32)
        bounds = np.cumsum([0, *counts])
        return [
            {"features": features[a:b], "geometry": stroke_geometry(unit, normalized=True)}
            for unit, a, b in zip(units, bounds[:-1], bounds[1:])
        ]

    def view_features(self, views: np.ndarray, *, batch_size: int = 2048) -> np.ndarray:
        """The featurizer graph's float32 ``(N, view_dim)`` of uint8 views ``(N, H, W)``.

        Example:
        >>> views = np.zeros((3, 48, 48), np.uint8)
        >>> ExportedRecognizer("exported").view_features(views).shape  # doctest: +SKIP
        (3, 357)
        """
        self._require_strokes("view_features")
        assert self.featurizer is not None
        out = []
        for start in range(0, len(views), batch_size):
            batch = views[start : start + batch_size].astype(np.float32) / 255.0
            out.append(np.asarray(self.featurizer({"views": batch[..., None]})["features"]))
        if not out:
            return np.zeros((0, int(self.manifest["view_dim"])), np.float32)
        return np.concatenate(out)

    def token_ids(
        self,
        tokens: Sequence[dict],
        beam_width: int = 1,
        *,
        batch_size: int = 32,
        views: Sequence[Sequence[dict]] = (),
    ) -> list[list[int]]:
        """Token ids of `tokens_of`'s inputs, expressions of equal stroke count decoded together.

        `views`: more readings of the same expressions (lists parallel to `tokens`, of the
        same stroke counts), averaged in beam search (`beam_ids`' `views`), as the Keras
        model's `recognize_token_ids` takes them.

        Example:
        >>> runner = ExportedRecognizer("exported")  # doctest: +SKIP
        >>> runner.token_ids(runner.tokens_of([strokes]))  # doctest: +SKIP
        [[5]]
        """
        from im2latex_encoder.recognizer.stroke_tokens import checked_views

        width = _checked_beam_width(beam_width)
        every = [tokens, *checked_views(views, tokens)]
        if len(every) > 1 and width == 1:
            raise ValueError(
                f"The runner averages views in beam search only. Received: {len(views)} views "
                "with beam_width=1"
            )
        results: list[list[int]] = [[] for _ in tokens]
        counts = np.array([len(token["features"]) for token in tokens])
        for count in np.unique(counts):
            members = np.flatnonzero(counts == count)
            for start in range(0, len(members), batch_size):
                chosen = members[start : start + batch_size]
                batch = {  # each expression's views in consecutive rows
                    key: np.stack([view[i][key] for i in chosen for view in every])
                    for key in ("features", "geometry")
                }
                batch = {key: value.astype(np.float32) for key, value in batch.items()}
                if width == 1:
                    ids = self.greedy_ids(batch)
                else:
                    ids = self.beam_ids(batch, width, views=len(every))
                for index, row in zip(chosen, ids):
                    results[int(index)] = row
        return results

    def _symbol_count_prior(self, encoded: dict, weight: float | None, views: int = 1):
        """A stroke export's `SymbolCountPrior` of an encoded batch, or None; with `views`,
        of each expression's heads' logits averaged over its consecutive view rows."""
        weight = self.symbol_count_weight if weight is None else float(weight)
        if self.token_classes is None or weight == 0:
            return None
        from im2latex_encoder.recognizer.symbol_count import SymbolCountPrior

        return SymbolCountPrior.from_logits(
            encoded[self.manifest["join_output"]],
            encoded[self.manifest["symbol_output"]],
            self.token_classes,
            self.end_id,
            weight,
            views=views,
        )

    def _require_strokes(self, method: str) -> None:
        if self.kind != "stroke-recognizer":
            raise ValueError(
                f"`{method}` needs a StrokeRecognizer's export (kind 'stroke-recognizer'). "
                f"Received: an export of kind {self.kind!r}; use `decode` for its images"
            )

    def _checked(self, inputs, max_length: int | None) -> tuple[dict, int]:
        """The encoder graph's feeds (contiguous float32), and the steps `max_length` allows."""
        if self.kind == "stroke-recognizer":
            if not isinstance(inputs, dict):
                raise ValueError(
                    "A stroke export decodes token batches: a dict of 'features' (batch, S, F) "
                    f"and 'geometry' (batch, S, 12). Received: {type(inputs).__name__}"
                )
            feeds = {
                name: np.ascontiguousarray(inputs[name], np.float32)
                for name in self.manifest["encoder_inputs"]
            }
            shapes = {name: value.shape for name, value in feeds.items()}
            if (
                any(len(shape) != 3 for shape in shapes.values())
                or len({shape[:2] for shape in shapes.values()}) != 1
            ):
                raise ValueError(
                    "Expected token arrays (batch, S, n) of one batch and stroke count. "
                    f"Received: shapes {shapes}"
                )
        else:
            images = np.ascontiguousarray(inputs, np.float32)
            if images.ndim != 4 or images.shape[-1] != 1:
                raise ValueError(
                    f"Expected images (batch, H, W, 1). Received: shape {images.shape}"
                )
            feeds = {"images": images}
        steps = self.max_length if max_length is None else int(max_length)
        if not 1 <= steps <= self.max_length:
            raise ValueError(
                f"`max_length` must be in [1, {self.max_length}]. Received: {max_length!r}"
            )
        return feeds, steps

    def _cross(self, encoded: dict) -> dict:
        """Of the encoder graph's outputs, the cross-attention keys and values of each image
        (or expression); a stroke export's graph also gives its heads' logits."""
        return {name: encoded[name] for name in self.manifest["encoder_outputs"]}

    def _strip(self, row: np.ndarray) -> list[int]:
        out = []
        for token in row.tolist():
            if token == self.end_id:
                break
            if token != self.pad_id:
                out.append(int(token))
        return out


def _as_float_image(image: np.ndarray) -> np.ndarray:
    """An image `(H, W)` (or `(H, W, 1)`) as float32, ink 1.0: uint8 ink 255 is scaled."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim != 2:
        raise ValueError(f"Expected an image (H, W). Received: shape {image.shape}")
    if image.dtype == np.uint8:
        return image * np.float32(1 / 255)  # pad_batch's conversion, to the last bit
    return image.astype(np.float32)


def _as_uint8_image(image: np.ndarray) -> np.ndarray:
    """An image `(H, W)` (or `(H, W, 1)`) as uint8 ink 255 (a float image's ink is 1.0)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim != 2:
        raise ValueError(f"Expected an image (H, W). Received: shape {image.shape}")
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(image.astype(np.float64) * 255), 0, 255).astype(np.uint8)


def _checked_beam_width(beam_width) -> int:
    """`beam_width` as an int of at least 1 (a bool is refused, as is a float)."""
    if isinstance(beam_width, (bool, np.bool_)) or not isinstance(beam_width, (int, np.integer)):
        raise ValueError(
            f"`beam_width` must be a positive int. Received: beam_width={beam_width!r} "
            f"({type(beam_width).__name__})"
        )
    if beam_width < 1:
        raise ValueError(f"`beam_width` must be a positive int. Received: beam_width={beam_width}")
    return int(beam_width)


def _compact_rows(arrays: dict, keep: np.ndarray) -> dict:
    """The rows `keep` marks moved to the front of each array, in place, as leading views.

    Beam search's cross keys and values are hundreds of MB at batch 32: a copy
    (``value[keep]``) costs a fresh allocation each time, moving rows down costs none.
    """
    kept = np.flatnonzero(keep)
    for value in arrays.values():
        for target, source in enumerate(kept.tolist()):  # source >= target: safe in order
            if target != source:
                value[target] = value[source]
    return {name: value[: len(kept)] for name, value in arrays.items()}


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    """`beam_search_decode`'s log-softmax, operation for operation (so the same scores)."""
    logits = logits - logits.max(axis=-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


# --- Runtimes ------------------------------------------------------------------------------------


def _graph(path: Path, backend: str, num_threads: int | None):
    """A callable: dict of named numpy inputs → dict of named numpy outputs."""
    if backend == "onnxruntime":
        return _OnnxGraph(path, num_threads)
    if backend == "litert":
        return _LiteRTGraph(path, num_threads)
    if backend == "tensorflow":
        return _SavedModelGraph(path)
    raise ValueError(
        f"`backend` must be one of {', '.join(repr(b) for b in BACKENDS.values())}. "
        f"Received: backend={backend!r}"
    )


class _OnnxGraph:
    def __init__(self, path: Path, num_threads: int | None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            os.fspath(path), options, providers=["CPUExecutionProvider"]
        )
        self.outputs = [output.name for output in self.session.get_outputs()]

    def __call__(self, feeds: dict) -> dict:
        return dict(zip(self.outputs, self.session.run(self.outputs, feeds)))


class _LiteRTGraph:
    def __init__(self, path: Path, num_threads: int | None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # where LiteRT is not built (Windows): TensorFlow's, deprecated
            import warnings

            import tensorflow as tf

            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            Interpreter = tf.lite.Interpreter
        interpreter = Interpreter(model_path=os.fspath(path), num_threads=num_threads)
        # The signature runner resizes its inputs to each call's shapes (free batch, H, W, S).
        self.runner = interpreter.get_signature_runner(SIGNATURE)

    def __call__(self, feeds: dict) -> dict:
        return self.runner(**feeds)


class _SavedModelGraph:
    def __init__(self, path: Path):
        import tensorflow as tf  # a SavedModel's runtime is TensorFlow

        self.tf = tf
        self.function = tf.saved_model.load(os.fspath(path)).signatures[SIGNATURE]

    def __call__(self, feeds: dict) -> dict:
        outputs = self.function(**{name: self.tf.constant(value) for name, value in feeds.items()})
        return {name: value.numpy() for name, value in outputs.items()}


# --- Module-level shortcut and command line ------------------------------------------------------

_LOADED: dict = {}


def decode(
    images: np.ndarray | Sequence[np.ndarray],
    backend: str | None = None,
    *,
    folder: str | os.PathLike = HERE,
    batch_size: int = 32,
    num_threads: int | None = None,
    beam_width: int = 1,
) -> list[str]:
    """LaTeX tokens of each image with the export in `folder` (loaded once, then kept).

    Args:
        images: see `ExportedRecognizer.decode`.
        backend: str or None. ``"onnxruntime"``, ``"litert"`` (or ``"tensorflow"``, for a
            SavedModel export); None: the export's own.
        folder: str or PathLike. The export's folder (default: this file's).
        batch_size: int. Images decoded together.
        num_threads: int or None. The runtime's threads.
        beam_width: int. 1 (the default): greedy decoding; more: beam search of this width,
            as ``im2latex-encoder recognize --beam N``.

    Example:
    >>> decode([image], backend="onnxruntime")  # doctest: +SKIP
    ['x ^ { 2 }']
    >>> decode([image], beam_width=4)  # doctest: +SKIP
    ['x ^ { 2 }']
    """
    _checked_beam_width(beam_width)  # before the graphs are loaded
    key = (os.path.abspath(folder), backend, num_threads)
    if key not in _LOADED:
        _LOADED[key] = ExportedRecognizer(folder, backend, num_threads)
    return _LOADED[key].decode(images, batch_size=batch_size, beam_width=beam_width)


def read_images(path: str | os.PathLike) -> list[np.ndarray]:
    """The images in a file: `.npy` (`(H, W)` or `(N, H, W[, 1])`) or an image file.

    An image file (PNG, JPEG; read with Pillow, else OpenCV) is taken as dark ink on light
    paper when its mean is above 127, as ``im2latex-encoder recognize`` takes it, and inverted.

    Example:
    >>> [image.shape for image in read_images("expression.npy")]  # doctest: +SKIP
    [(96, 384)]
    """
    path = os.fspath(path)
    if path.lower().endswith(".npy"):
        array = np.load(path, allow_pickle=False)
        if array.ndim == 4 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim == 2:
            return [array]
        if array.ndim == 3:
            return list(array)
        raise ValueError(f"{path}: expected (H, W) or (N, H, W[, 1]). Received: {array.shape}")
    image = _read_image_file(path)
    if image.mean() > 127:  # dark ink on light paper -> ink high
        image = 255 - image
    return [np.ascontiguousarray(image, np.uint8)]


#: The library's limits on image files (`im2latex_encoder.data.image_files`), copied because
#: this file runs without the library; a test keeps the two equal.
MAX_IMAGE_FILE_SIDE = 10_000
MAX_IMAGE_FILE_PIXELS = 50_000_000


def check_image_size(width: int, height: int, path: str) -> None:
    """Refuse an image over the library's limits, read from its header before decoding.

    Example:
    >>> check_image_size(20_000, 20_000, "huge.png")
    Traceback (most recent call last):
    ...
    ValueError: huge.png: image is 20000×20000 (400,000,000 pixels); at most 50,000,000 pixels and 10,000 a side are accepted
    """
    if width * height > MAX_IMAGE_FILE_PIXELS or max(width, height) > MAX_IMAGE_FILE_SIDE:
        raise ValueError(
            f"{path}: image is {width}×{height} ({width * height:,} pixels); at most "
            f"{MAX_IMAGE_FILE_PIXELS:,} pixels and {MAX_IMAGE_FILE_SIDE:,} a side are accepted"
        )


def _read_image_file(path: str) -> np.ndarray:
    """A grayscale uint8 image, read with Pillow, else OpenCV; its size checked first."""
    try:
        from PIL import Image
    except ImportError:
        # OpenCV decodes as it reads: its own pixel limit (read when it is first imported)
        # is set to the library's.
        os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_FILE_PIXELS))
        try:
            import cv2
        except ImportError as error:
            raise ValueError(
                f"{path}: reading image files needs Pillow or OpenCV; pass a .npy array instead"
            ) from error
        image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(
                f"{path}: not a readable image (expected PNG, JPEG or .npy of at most "
                f"{MAX_IMAGE_FILE_PIXELS:,} pixels)"
            ) from None
        return np.asarray(image, np.uint8)
    try:
        opened = Image.open(path)  # the header only
    except Image.DecompressionBombError as error:  # past Pillow's own limit, 179 MP
        raise ValueError(
            f"{path}: image is too large ({error}); at most {MAX_IMAGE_FILE_PIXELS:,} pixels "
            f"and {MAX_IMAGE_FILE_SIDE:,} a side are accepted"
        ) from None
    with opened:
        check_image_size(*opened.size, path)
        return np.asarray(opened.convert("L"), np.uint8)


def main(argv: Sequence[str] | None = None) -> int:
    """Print one line of LaTeX tokens per image of the given files.

    Example:
    >>> main(["expression.png", "--backend", "litert"])  # doctest: +SKIP
    x ^ { 2 }
    0
    >>> main(["expression.png", "--beam", "4"])  # doctest: +SKIP
    x ^ { 2 }
    0
    """
    parser = argparse.ArgumentParser(
        description="LaTeX of handwritten-formula images with this exported recognizer."
    )
    parser.add_argument("files", nargs="+", help="image files (PNG, JPEG) or .npy arrays")
    parser.add_argument("--backend", choices=sorted(set(BACKENDS.values())), default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--beam", type=int, default=1, help="beam width (default: 1, greedy decoding)"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--folder", default=os.fspath(HERE), help="the export (default: here)")
    args = parser.parse_args(argv)
    try:
        images = [image for path in args.files for image in read_images(path)]
        lines = decode(
            images,
            args.backend,
            folder=args.folder,
            batch_size=args.batch_size,
            num_threads=args.threads,
            beam_width=args.beam,
        )
    except (ValueError, OSError) as error:
        print(f"runner: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
