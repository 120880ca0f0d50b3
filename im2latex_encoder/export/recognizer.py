"""Export a handwritten-formula recognizer: an encoder graph, a decoder-step graph and a runner.

A saved recognizer (a recognizer preset's directory or name, or an
older ``model.keras`` + ``vocabulary.json`` + ``recognizer.json`` folder) becomes a folder
that reads formulas without Keras or TensorFlow:

| file | what it is |
| --- | --- |
| ``encoder.<ext>`` | float images `(batch, H, W, 1)`, ink 1.0 on 0.0, any batch, height and width → each decoder block's cross-attention keys and values (`FormulaDecoder.precompute_memory`, folded into the encoder: computed once per image) |
| ``step.<ext>`` | `FormulaDecoder.decode_step`: the latest token ``ids`` `(batch, 1)`, its ``position`` (scalar), the self-attention cache and the cross keys/values → ``logits`` and the updated cache |
| ``runner.py`` | greedy and beam-search decoding in numpy on ONNX Runtime or LiteRT (`im2latex_encoder.export.runner`, copied) |
| ``export.json`` | tensor names, cache sizes, special ids, padding rule, the parity figures |
| ``vocabulary.json``, ``recognizer.json`` | the recognizer's vocabulary and draw settings |

``<ext>`` is ``.onnx`` (tf2onnx), ``.tflite`` (`tf.lite.TFLiteConverter`, fp32) or, for
``format="savedmodel"``, a SavedModel directory (``encoder/``, ``step/``). Every shape is free
except the cache's length (the decoder's ``max_length``): the step's shapes are the same at
every position, so the graph is compiled once. LiteRT resizes the inputs to each call's shapes,
so the TFLite graphs take any image size too.

The cache is fixed-size (`FormulaDecoder.empty_cache`), written at ``position`` and read
under a causal mask, exactly as the Keras step does; the runner starts it at zeros.

Before the folder is moved into place, the runner decodes probe images (three widths, as one
batch and one alone) with the exported graphs, and its greedy tokens must equal Keras'
`greedy_decode`'s, with every step's logits within `LOGIT_RELATIVE_TOLERANCE` of the largest
Keras logit (max abs difference, along the runner's tokens); otherwise `ExportError` and
nothing is written. The folder is built beside its target and swapped in whole.

A `StrokeRecognizer` (a ``stroke-recognizer`` preset, such as ``crohme-formulas`` v2) exports
to the same layout with a third graph, ``featurizer.<ext>``: each stroke's views
`(N, 48, 48, 1)` → the frozen symbol classifier's hidden layer and log-probabilities
`(N, view_dim)`; ``encoder.<ext>`` then takes an expression's stroke tokens (``features``
`(batch, S, feature_dim)`, ``geometry`` `(batch, S, 12)`) instead of an image, and
``stroke_drawing.json`` replaces ``recognizer.json``. Its parity check draws probe expressions
(`probe_strokes`, or `PROBE_STROKE_COUNTS` random pen strokes) and a probe image read by its
components: the featurizer graph's features must be within `FEATURE_RELATIVE_TOLERANCE` of
Keras', the tokens and step logits decoded from Keras' own token inputs as above, and the
runner's `recognize_strokes` / `recognize_images` LaTeX equal to the Keras model's.

Exporting needs the TensorFlow backend (the graphs are TensorFlow graphs); running them needs
numpy and onnxruntime or ai-edge-litert only (a stroke export also the package's numpy/OpenCV
drawing code, `im2latex_encoder.recognizer.stroke_tokens`, which imports no TensorFlow).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from im2latex_encoder._atomic import atomic_directory
from im2latex_encoder.export.encoder import (
    ONNX_OPSET,
    ExportError,
    check_choice,
    disk_size_bytes,
    require_tensorflow_backend,
    tflite_bytes,
    write_bytes,
    write_saved_model,
)

FORMATS = ("onnx", "tflite", "savedmodel")
#: Graph file (or SavedModel directory) names per format: (encoder, step).
GRAPH_FILES = {
    "onnx": ("encoder.onnx", "step.onnx"),
    "tflite": ("encoder.tflite", "step.tflite"),
    "savedmodel": ("encoder", "step"),
}
MANIFEST_FILE = "export.json"
RUNNER_FILE = "runner.py"
#: Allowed max abs logit difference, relative to the largest Keras logit (at least 1e-4).
LOGIT_RELATIVE_TOLERANCE = 1e-4
#: Probe images' (height, width), uint8 stroke-like noise: three widths, as one padded batch.
PROBE_SHAPES = ((40, 64), (56, 150), (48, 230))
#: A stroke export's featurizer graph vs Keras: max abs difference relative to the largest feature.
FEATURE_RELATIVE_TOLERANCE = 1e-4
#: A stroke export's probe expressions: their stroke counts (two of 5, decoded as one batch).
PROBE_STROKE_COUNTS = (1, 3, 5, 5, 9)
#: The beam width a stroke export's parity check also reads its probe expressions with.
PROBE_BEAM_WIDTH = 3
#: A stroke export's encoder output: each stroke's logit of joining the previous one's symbol.
JOIN_OUTPUT = "join_logits"
#: A stroke export's encoder output: each stroke's symbol-class logits.
SYMBOL_OUTPUT = "symbol_logits"
#: A stroke export's featurizer graph file per format.
FEATURIZER_FILES = {
    "onnx": "featurizer.onnx",
    "tflite": "featurizer.tflite",
    "savedmodel": "featurizer",
}


@dataclasses.dataclass(frozen=True)
class RecognizerExportResult:
    """What `export_recognizer` wrote and how closely its runner matches Keras.

    Attributes:
        path: Path. The export folder.
        format: str. `"onnx"`, `"tflite"` or `"savedmodel"`.
        files: tuple of str. The folder's entries.
        size_bytes: int. The folder's size on disk.
        max_logit_diff: float. Largest logit difference from the Keras step on the probes.
        tolerance: float. The bound `max_logit_diff` was held to.
        probes: int. Probe images decoded (each once in a batch and the first once alone).
        latex: tuple of str. The probes' LaTeX tokens (the runner's, equal to Keras').

    Example:
    >>> result = export_recognizer("runs/formulas/recognizer", "exported")  # doctest: +SKIP
    >>> result.max_logit_diff < result.tolerance  # doctest: +SKIP
    True
    """

    path: Path
    format: str
    files: tuple
    size_bytes: int
    max_logit_diff: float
    tolerance: float
    probes: int
    latex: tuple


def export_recognizer(
    model_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    format: str = "onnx",
    probe_images: Sequence[np.ndarray] | None = None,
    probe_strokes: Sequence[Sequence[np.ndarray]] | None = None,
) -> RecognizerExportResult:
    """Export a saved recognizer as encoder and decoder-step graphs with a standalone runner.

    See the module docstring for the files. The runner's greedy decoding of probe images is
    checked against Keras' before the folder is swapped into `out_dir` (replacing what was
    there).

    Args:
        model_path: str or PathLike. A saved recognizer, as `load_formula_recognizer` takes
            it: a preset directory (`FormulaRecognizer.save_to_preset`), a recognizer
            preset's name, or an older folder (or its ``model.keras``); or a
            `StrokeRecognizer` preset (its directory or name).
        out_dir: str or PathLike. The folder to write.
        format: str. `"onnx"`, `"tflite"` or `"savedmodel"`.
        probe_images: sequence of uint8 images `(H, W)` (ink 255 on 0) for the parity check,
            or None for `PROBE_SHAPES`' stroke-like noise (a stroke recognizer: one image of
            pen strokes, read by its components).
        probe_strokes: a stroke recognizer's probe expressions (each a list of ``(n, 2)``
            strokes), or None for random pen strokes (`PROBE_STROKE_COUNTS`). Ignored for an
            image recognizer.

    Returns:
        A `RecognizerExportResult`.

    Raises:
        ValueError: for an unknown `format`.
        FileNotFoundError: if `model_path` is not a recognizer folder.
        ExportError: if the runner's tokens or logits disagree with Keras', or the backend is
            not TensorFlow.

    Example:
    >>> result = export_recognizer("runs/formulas/recognizer", "exported", format="onnx")  # doctest: +SKIP
    >>> sorted(result.files)  # doctest: +SKIP
    ['encoder.onnx', 'export.json', 'recognizer.json', 'runner.py', 'step.onnx', 'vocabulary.json']

    Then, with only numpy and onnxruntime:
    >>> import sys; sys.path.insert(0, "exported"); import runner  # doctest: +SKIP
    >>> runner.decode([image])  # doctest: +SKIP
    ['x ^ { 2 }']
    """
    check_choice("format", format, FORMATS)
    require_tensorflow_backend()
    from im2latex_encoder.presets import write_json
    from im2latex_encoder.recognizer.saving import (
        SETTINGS_FILE,
        VOCABULARY_FILE,
        load_formula_recognizer,
    )

    if is_stroke_recognizer_preset(model_path):
        from im2latex_encoder.recognizer.stroke_recognizer import StrokeRecognizer

        stroke_model = StrokeRecognizer.from_preset(os.fspath(model_path))
        _check_float32(stroke_model)
        return _export_stroke_recognizer(stroke_model, out_dir, format, probe_strokes, probe_images)
    model = load_formula_recognizer(model_path)
    if model.__class__.__name__ == "StrokeRecognizer":  # a loader that also reads strokes' presets
        _check_float32(model)
        return _export_stroke_recognizer(model, out_dir, format, probe_strokes, probe_images)
    vocabulary, settings = model.vocabulary, model.draw_settings
    _check_float32(model)
    probes = _probe_images() if probe_images is None else [np.asarray(p) for p in probe_images]
    if not probes:
        raise ValueError("`probe_images` must hold at least one image. Received: none")
    encoder_names, step_names = _tensor_names(model.decoder.num_layers)
    manifest = {
        "format": format,
        "encoder": GRAPH_FILES[format][0],
        "step": GRAPH_FILES[format][1],
        "vocabulary": VOCABULARY_FILE,
        "settings": SETTINGS_FILE,
        "num_layers": model.decoder.num_layers,
        "num_heads": model.decoder.num_heads,
        "key_dim": model.decoder.hidden_dim // model.decoder.num_heads,
        "max_length": model.decoder.max_length,
        "vocabulary_size": model.decoder.vocabulary_size,
        "pad_id": vocabulary.pad_id,
        "start_id": vocabulary.start_id,
        "end_id": vocabulary.end_id,
        # How `recognize_images` pads a batch (`pad_batch`'s defaults), for the runner to copy.
        "pad_multiple": _pad_batch_default("multiple"),
        "pad_minimum": _pad_batch_default("minimum"),
        "signature": "serve",
        "encoder_inputs": ["images"],
        "encoder_outputs": encoder_names,
        "step_inputs": step_names[0],
        "step_outputs": step_names[1],
    }
    graphs = {
        manifest["encoder"]: _encoder_function(model, encoder_names),
        manifest["step"]: _step_function(model.decoder),
    }

    target = Path(out_dir)
    with atomic_directory(target) as staged:
        _write_graphs(format, graphs, staged)
        # The files a recognizer preset holds, written as the preset writes them.
        write_json(staged / VOCABULARY_FILE, vocabulary.to_json())
        write_json(staged / SETTINGS_FILE, settings.to_dict())
        from im2latex_encoder.export import runner

        shutil.copyfile(runner.__file__, staged / RUNNER_FILE)
        _write_json(staged / MANIFEST_FILE, manifest)
        difference, tolerance, latex = _check_parity(model, vocabulary, staged, probes)
        manifest["parity"] = {
            "max_logit_diff": difference,
            "tolerance": tolerance,
            "probe_shapes": [list(p.shape) for p in probes],
            "latex": latex,
        }
        _write_json(staged / MANIFEST_FILE, manifest)
        files = tuple(sorted(path.name for path in staged.iterdir()))
        size = disk_size_bytes(staged)
    return RecognizerExportResult(
        path=target,
        format=format,
        files=files,
        size_bytes=size,
        max_logit_diff=difference,
        tolerance=tolerance,
        probes=len(probes),
        latex=tuple(latex),
    )


def is_stroke_recognizer_preset(model: str | os.PathLike) -> bool:
    """Whether `model` names a `StrokeRecognizer` preset (a directory or a registered name).

    Example:
    >>> is_stroke_recognizer_preset("crohme101")
    False
    """
    from im2latex_encoder import presets

    try:
        return presets.preset_metadata(model).get("kind") == "stroke-recognizer"
    except (presets.PresetError, OSError, ValueError):
        return False  # the recognizer loader says what is wrong with it


def _check_float32(model) -> None:
    if model.compute_dtype != "float32":
        raise ExportError(
            "export_recognizer exports float32 recognizers. Received: a recognizer computing "
            f"in {model.compute_dtype!r}"
        )


def _manifest(model, format: str) -> dict:
    """What the runner reads of any recognizer's export: sizes, special ids, the step's names."""
    from im2latex_encoder.recognizer.saving import VOCABULARY_FILE

    vocabulary, decoder = model.vocabulary, model.decoder
    encoder_names, step_names = _tensor_names(decoder.num_layers)
    return {
        "format": format,
        "encoder": GRAPH_FILES[format][0],
        "step": GRAPH_FILES[format][1],
        "vocabulary": VOCABULARY_FILE,
        "num_layers": decoder.num_layers,
        "num_heads": decoder.num_heads,
        "key_dim": decoder.hidden_dim // decoder.num_heads,
        "max_length": decoder.max_length,
        "vocabulary_size": decoder.vocabulary_size,
        "pad_id": vocabulary.pad_id,
        "start_id": vocabulary.start_id,
        "end_id": vocabulary.end_id,
        "signature": "serve",
        "encoder_outputs": encoder_names,
        "step_inputs": step_names[0],
        "step_outputs": step_names[1],
    }


def _export_stroke_recognizer(
    model, out_dir, format: str, probe_strokes, probe_images
) -> RecognizerExportResult:
    """`export_recognizer` for a `StrokeRecognizer`: featurizer, token encoder and step graphs."""
    from im2latex_encoder.presets import write_json
    from im2latex_encoder.recognizer.stroke_recognizer import SYMBOL_COUNT_WEIGHT
    from im2latex_encoder.recognizer.stroke_tokens import GEOMETRY_COLUMNS

    expressions = _probe_strokes() if probe_strokes is None else [list(e) for e in probe_strokes]
    images = [_probe_stroke_image()] if probe_images is None else list(probe_images)
    if not expressions:
        raise ValueError("`probe_strokes` must hold at least one expression. Received: none")
    drawing_file = model.preset_assets["drawing"]
    manifest = {
        "kind": "stroke-recognizer",
        **_manifest(model, format),
        "featurizer": FEATURIZER_FILES[format],
        "drawing": drawing_file,
        "featurizer_inputs": ["views"],
        "featurizer_outputs": ["features"],
        "view_dim": model.featurizer.view_dim,
        "feature_dim": model.feature_dim,
        "image_size": model.drawing.image_size,
        "encoder_inputs": ["features", "geometry"],
        "geometry_columns": list(GEOMETRY_COLUMNS),
        # Beam search's symbol-count prior (`SymbolCountPrior`): the encoder graph's joins and
        # symbol logits, each token's symbol class, and the weight Keras' beam search uses.
        "join_output": JOIN_OUTPUT,
        "symbol_output": SYMBOL_OUTPUT,
        "token_classes": model.token_classes.tolist(),
        "symbol_count_weight": SYMBOL_COUNT_WEIGHT,
        # ... and its `LatexGrammar` (balanced braces, a group where LaTeX needs one).
        "latex_grammar": True,
        # The beam width `recognize_strokes` / `recognize_images` read with unless told.
        "default_beam_width": int(model.default_beam_width),
        # ... and the slants beam search also reads each expression at (test-time views).
        "default_slants": [float(slant) for slant in model.default_slants],
        # ... and how an image is cut into tokens (`image_tokens`' `split_junctions`).
        "split_junctions": bool(model.split_junctions),
        # ... and the order its tokens are read in (`image_tokens`' `order`).
        "image_order": str(model.image_order),
    }
    graphs = {
        manifest["featurizer"]: _featurizer_function(model),
        manifest["encoder"]: _token_encoder_function(model, manifest["encoder_outputs"]),
        manifest["step"]: _step_function(model.decoder),
    }
    target = Path(out_dir)
    with atomic_directory(target) as staged:
        _write_graphs(format, graphs, staged)
        write_json(staged / manifest["vocabulary"], model.vocabulary.to_json())
        write_json(staged / drawing_file, model.drawing.to_json())
        from im2latex_encoder.export import runner

        shutil.copyfile(runner.__file__, staged / RUNNER_FILE)
        _write_json(staged / MANIFEST_FILE, manifest)
        parity = _check_stroke_parity(model, staged, expressions, images)
        manifest["parity"] = parity
        _write_json(staged / MANIFEST_FILE, manifest)
        files = tuple(sorted(path.name for path in staged.iterdir()))
        size = disk_size_bytes(staged)
    return RecognizerExportResult(
        path=target,
        format=format,
        files=files,
        size_bytes=size,
        max_logit_diff=parity["max_logit_diff"],
        tolerance=parity["tolerance"],
        probes=len(expressions) + len(images),
        latex=tuple(parity["latex"]),
    )


def stroke_export_agreement(
    model_path: str | os.PathLike,
    folder: str | os.PathLike,
    files: Sequence[str | os.PathLike],
    *,
    batch_size: int = 32,
    beam_width: int = 1,
) -> dict:
    """How often a stroke export's runner reads an InkML file as the Keras model does.

    Each file's strokes (`read_inkml`, the traces alone, as ``recognize`` reads a file) are
    read by the `StrokeRecognizer` at `model_path` and by `ExportedRecognizer` on the export
    in `folder`, greedily or with beam search of `beam_width` (its symbol-count prior
    included, and with beam search their default slant views,
    `StrokeRecognizer.recognize_strokes`' `slants`); the LaTeX strings are compared.

    Args:
        model_path: str or PathLike. The stroke recognizer preset (directory or name).
        folder: str or PathLike. Its export (`export_recognizer`).
        files: InkML files.
        batch_size: int. Expressions decoded together.
        beam_width: int. 1 for greedy decoding (``recognize``'s default), more for beam search.

    Returns:
        A dict: ``"files"`` (read), ``"same"`` (identical LaTeX), ``"rate"`` (same / files),
        ``"unreadable"`` (``[file, reason]`` of the files that could not be read) and
        ``"differing"`` (``[file, keras, runner]``).

    Raises:
        ValueError: if `model_path` is not a stroke recognizer or `files` holds no readable file.

    Example:
    >>> stroke_export_agreement("crohme-formulas", "exported", ["a.inkml"])  # doctest: +SKIP
    {'files': 1, 'same': 1, 'rate': 1.0, 'unreadable': [], 'differing': []}
    """
    from im2latex_encoder.data.errors import DataError
    from im2latex_encoder.data.inkml import read_inkml
    from im2latex_encoder.export.runner import ExportedRecognizer
    from im2latex_encoder.recognizer.stroke_recognizer import StrokeRecognizer

    if not is_stroke_recognizer_preset(model_path):
        raise ValueError(
            "The agreement check compares a StrokeRecognizer with its export. Received: "
            f"{os.fspath(model_path)!r}, not a stroke-recognizer preset"
        )
    names, expressions, unreadable = [], [], []
    for path in files:
        try:
            strokes = read_inkml(path).strokes()
            if not any(np.size(stroke) for stroke in strokes):
                raise ValueError("no stroke with a point")
        except (DataError, OSError, ValueError) as error:
            unreadable.append([os.fspath(path), " ".join(str(error).split())])
            continue
        names.append(os.fspath(path))
        expressions.append(strokes)
    if not expressions:
        raise ValueError(
            f"Expected readable InkML files. Received: {len(files)} files, none readable"
        )
    model = StrokeRecognizer.from_preset(os.fspath(model_path))
    keras_latex = model.recognize_strokes(expressions, beam_width, batch_size=batch_size)
    runner_latex = ExportedRecognizer(folder).recognize_strokes(
        expressions, beam_width, batch_size=batch_size
    )
    differing = [
        [name, expected, actual]
        for name, expected, actual in zip(names, keras_latex, runner_latex)
        if expected != actual
    ]
    same = len(names) - len(differing)
    return {
        "files": len(names),
        "same": same,
        "rate": same / len(names),
        "unreadable": unreadable,
        "differing": differing,
    }


# --- The graphs ----------------------------------------------------------------------------------


def _tensor_names(num_layers: int) -> tuple[list, tuple[list, list]]:
    """The encoder's output names and the step's (input, output) names."""
    cross = [f"cross_{kind}_{i}" for i in range(num_layers) for kind in ("keys", "values")]
    cache = [f"cache_{kind}_{i}" for i in range(num_layers) for kind in ("keys", "values")]
    step_inputs = ["ids", "position", *cache, *cross]
    step_outputs = ["logits", *(f"next_{name}" for name in cache)]
    return cross, (step_inputs, step_outputs)


def _encoder_function(model, output_names: list) -> tuple[Callable, list]:
    """The encoder + cross keys/values as a `tf.function`, and its input signature."""
    import tensorflow as tf

    channels = model.encoder.input_channels
    specs = [tf.TensorSpec((None, None, None, channels), tf.float32, "images")]

    @tf.function(input_signature=specs, autograph=False)
    def encode(images):
        memory = model.encode(images)
        pairs = model.decoder.precompute_memory(memory)
        tensors = [tensor for pair in pairs for tensor in pair]
        return dict(zip(output_names, tensors))

    return encode, specs


def _featurizer_function(model) -> tuple[Callable, list]:
    """The frozen symbol classifier's view features, `StrokeFeaturizer`'s, as a `tf.function`.

    The head's hidden layer and its log-softmax, concatenated, as `stroke_features` computes
    them (the parity check holds the two equal).
    """
    import tensorflow as tf
    from keras import ops

    encoder, head = model.encoder, model.symbol_head
    size = model.drawing.image_size
    specs = [tf.TensorSpec((None, size, size, 1), tf.float32, "views")]

    @tf.function(input_signature=specs, autograph=False)
    def featurize(views):
        grid = encoder(views, training=False)
        flat = ops.reshape(grid, (ops.shape(grid)[0], -1))
        if head.pooling != "flatten":
            axes = tuple(range(1, len(grid.shape) - 1))
            flat = ops.mean(grid, axis=axes) if head.pooling == "avg" else ops.max(grid, axis=axes)
        hidden = head.hidden(flat)
        logits = head.classifier(hidden)
        features = ops.concatenate([hidden, ops.log_softmax(logits, axis=-1)], axis=-1)
        return {"features": features}

    return featurize, specs


def _token_encoder_function(model, output_names: list) -> tuple[Callable, list]:
    """Stroke tokens → the decoder's cross keys/values, as a `tf.function`, and its signature."""
    import tensorflow as tf

    from im2latex_encoder.recognizer.stroke_tokens import GEOMETRY_COLUMNS

    specs = [
        tf.TensorSpec((None, None, model.feature_dim), tf.float32, "features"),
        tf.TensorSpec((None, None, len(GEOMETRY_COLUMNS)), tf.float32, "geometry"),
    ]

    @tf.function(input_signature=specs, autograph=False)
    def encode(features, geometry):
        memory = model.encode({"features": features, "geometry": geometry})
        pairs = model.decoder.precompute_memory(memory)
        outputs = dict(zip(output_names, [tensor for pair in pairs for tensor in pair]))
        outputs[JOIN_OUTPUT] = model.join_logits(memory)[..., 0]  # (batch, S)
        outputs[SYMBOL_OUTPUT] = model.symbol_logits(memory)  # (batch, S, classes)
        return outputs

    return encode, specs


def _step_specs(decoder) -> list:
    import tensorflow as tf

    heads, key_dim = decoder.num_heads, decoder.hidden_dim // decoder.num_heads
    shapes = {  # the cache's length is fixed, the image's sequence length is free
        "cache": (None, heads, decoder.max_length, key_dim),
        "cross": (None, heads, None, key_dim),
    }
    names = _tensor_names(decoder.num_layers)[1][0]
    specs = [tf.TensorSpec((None, 1), tf.int32, "ids"), tf.TensorSpec((), tf.int32, "position")]
    for name in names[2:]:
        specs.append(tf.TensorSpec(shapes[name.split("_")[0]], tf.float32, name))
    return specs


def _step_function(decoder) -> tuple[Callable, list]:
    """`decoder.decode_step` as a `tf.function` of named tensors, and its input signature."""
    import tensorflow as tf

    layers = decoder.num_layers
    output_names = _tensor_names(layers)[1][1]

    # Positional tensors: a signature's inputs are named by their specs.
    specs = _step_specs(decoder)

    @tf.function(input_signature=specs, autograph=False)
    def step(ids, position, *tensors):
        cache = [(tensors[2 * i], tensors[2 * i + 1]) for i in range(layers)]
        cross = [(tensors[2 * (layers + i)], tensors[2 * (layers + i) + 1]) for i in range(layers)]
        logits, cache = decoder.decode_step(ids, position, cache, cross)
        return dict(zip(output_names, [logits, *(t for pair in cache for t in pair)]))

    return step, specs


def _write_graphs(format: str, graphs: dict, staged: Path) -> None:
    """Write each of `graphs` (file name -> (tf.function, input signature)) into `staged`."""
    if format == "savedmodel":
        for name, (function, _) in graphs.items():
            write_saved_model(None, function, staged / name)
    elif format == "tflite":
        # Inside the staging folder, so that a killed export leaves nothing else behind.
        with tempfile.TemporaryDirectory(dir=staged, prefix=".savedmodel-") as tmp:
            for name, (function, _) in graphs.items():
                saved = Path(tmp) / name
                write_saved_model(None, function, saved)
                write_bytes(staged / name, tflite_bytes(saved, None))
    else:
        try:
            import tf2onnx
        except ImportError as error:
            raise ExportError(
                "ONNX export needs tf2onnx and onnxruntime: pip install "
                f"'im2latex-encoder[export]'. Received: {error}"
            ) from error
        for name, (function, specs) in graphs.items():
            model_proto, _ = tf2onnx.convert.from_function(
                function,
                input_signature=specs,
                opset=ONNX_OPSET,
                custom_op_handlers={
                    "Erfc": (_erfc_as_one_minus_erf, []),
                    "Log1p": (_log1p_as_log_of_one_plus, []),
                },
            )
            write_bytes(staged / name, model_proto.SerializeToString())


def _erfc_as_one_minus_erf(ctx, node, name, args) -> None:
    """tf2onnx has no ``Erfc`` (the exact GELU of the decoder's MLP): ``1 - Erf``, ONNX's."""
    from tf2onnx import utils

    node.type = "Erf"
    node.domain = ""
    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.output[0]))
    one = ctx.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype))
    ctx.insert_new_node_on_output("Sub", node.output[0], inputs=[one.output[0], node.output[0]])


def _log1p_as_log_of_one_plus(ctx, node, name, args) -> None:
    """tf2onnx has no ``Log1p`` (the stroke token encoder's signed log of its geometry):
    ``Log(1 + x)``, ONNX's (the same to float rounding: the geometry is never near -1)."""
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    one = ctx.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype))
    ctx.insert_new_node_on_input(node, "Add", [node.input[0], one.output[0]])
    node.type = "Log"
    node.domain = ""


def _pad_batch_default(name: str) -> int:
    import inspect

    from im2latex_encoder.recognizer.preprocessor import pad_batch

    return int(inspect.signature(pad_batch).parameters[name].default)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")


# --- The parity check ----------------------------------------------------------------------------


def _probe_images() -> list[np.ndarray]:
    """Stroke-like uint8 images of `PROBE_SHAPES`: sparse ink with anti-aliased pixels."""
    rng = np.random.default_rng(7)
    images = []
    for shape in PROBE_SHAPES:
        image = np.zeros(shape, np.uint8)
        image[rng.random(shape) < 0.15] = 255
        image[rng.random(shape) < 0.05] = 128
        images.append(image)
    return images


def _probe_strokes() -> list[list[np.ndarray]]:
    """Random pen strokes (`PROBE_STROKE_COUNTS` expressions), written left to right."""
    rng = np.random.default_rng(11)
    expressions = []
    for count in PROBE_STROKE_COUNTS:
        strokes = []
        for index in range(count):
            start = np.array([index * 30.0 + rng.uniform(0, 10), rng.uniform(0, 40)])
            steps = rng.normal(0, 4, (int(rng.integers(2, 25)), 2))
            strokes.append(start + np.cumsum(steps, axis=0))
        expressions.append(strokes)
    return expressions


def _probe_stroke_image() -> np.ndarray:
    """A uint8 image of separate pen strokes (ink 255 on 0), read by its components."""
    import cv2

    rng = np.random.default_rng(12)
    image = np.zeros((60, 200), np.uint8)
    for index in range(6):
        points = np.array([index * 32 + 10, 30]) + np.cumsum(rng.normal(0, 5, (6, 2)), axis=0)
        cv2.polylines(image, [np.rint(points).astype(np.int32)], False, 255, 2)
    return image


def _check_stroke_parity(model, folder: Path, expressions: list, images: list) -> dict:
    """A stroke export's runner against the Keras model; `ExportError` where they differ."""
    from im2latex_encoder.export.runner import ExportedRecognizer
    from im2latex_encoder.recognizer.decoding import greedy_decode
    from im2latex_encoder.recognizer.stroke_tokens import draw_stroke_views, normalize_expression

    runner = ExportedRecognizer(folder)
    name = runner.manifest["format"]
    # The featurizer graph on the probes' views.
    size = model.drawing.image_size
    units = [normalize_expression(strokes) for strokes in expressions]
    views = np.concatenate(
        [draw_stroke_views(unit, model.drawing, normalized=True) for unit in units]
    ).reshape(-1, size, size)
    expected = np.concatenate(model.featurizer.many(units, normalized=True))
    actual = runner.view_features(views).reshape(expected.shape)
    feature_diff = float(np.max(np.abs(actual - expected)))
    feature_tolerance = FEATURE_RELATIVE_TOLERANCE * max(1.0, float(np.max(np.abs(expected))))
    if not feature_diff <= feature_tolerance:
        raise ExportError(
            f"the {name} export's stroke features differ from Keras' by {feature_diff:.3g} "
            f"(max abs) on the probe strokes. Expected at most {feature_tolerance:.3g}"
        )
    # The token encoder and the step, on Keras' own tokens, batched by stroke count.
    tokens = model.tokens_of(expressions)
    difference, largest = 0.0, 0.0
    counts = np.array([len(token["features"]) for token in tokens])
    for count in np.unique(counts):
        members = np.flatnonzero(counts == count)
        batch = {key: np.stack([tokens[i][key] for i in members]) for key in tokens[0]}
        steps: list = []
        ids = runner.greedy_ids(batch, logits=steps)
        expected_ids = greedy_decode(model, batch)
        if ids != expected_ids:
            raise ExportError(
                f"the {name} export's greedy tokens differ from Keras' on probe expressions of "
                f"{count} strokes: {ids} != {expected_ids}"
            )
        logits = np.stack(steps, axis=1)
        reference = _keras_step_logits(model, batch, _fed_tokens(logits), len(members))
        difference = max(difference, float(np.max(np.abs(logits - reference))))
        largest = max(largest, float(np.max(np.abs(reference))))
    tolerance = LOGIT_RELATIVE_TOLERANCE * max(1.0, largest)
    if not difference <= tolerance:  # also refuses NaN
        raise ExportError(
            f"the {name} export's logits differ from the Keras step's by {difference:.3g} "
            f"(max abs) on the probe strokes. Expected at most {tolerance:.3g}"
        )
    # End to end: the runner's own drawing, features and decoding against the Keras model's,
    # greedy and by beam search (with its symbol-count prior).
    latex = runner.recognize_strokes(expressions, beam_width=1) + runner.recognize_strokes(
        expressions, beam_width=PROBE_BEAM_WIDTH
    )
    keras_latex = model.recognize_strokes(expressions, beam_width=1) + model.recognize_strokes(
        expressions, beam_width=PROBE_BEAM_WIDTH
    )
    # ... and images, each at its default beam width (the export's is the model's)
    image_latex = runner.recognize_images(images)
    keras_image_latex = model.recognize_images(images)
    if latex != keras_latex or image_latex != keras_image_latex:
        raise ExportError(
            f"the {name} export's runner reads the probes differently from Keras: strokes "
            f"{latex} != {keras_latex}, images {image_latex} != {keras_image_latex}"
        )
    return {
        "max_feature_diff": feature_diff,
        "feature_tolerance": feature_tolerance,
        "max_logit_diff": difference,
        "tolerance": tolerance,
        "probe_stroke_counts": [len(strokes) for strokes in expressions],
        "probe_image_shapes": [list(np.shape(image)) for image in images],
        "latex": latex + image_latex,
    }


def _check_parity(model, vocabulary, folder: Path, probes: list) -> tuple[float, float, list]:
    """Decode the probes with the runner and with Keras; raise `ExportError` if they differ."""
    from im2latex_encoder.export.runner import ExportedRecognizer
    from im2latex_encoder.recognizer.decoding import greedy_decode
    from im2latex_encoder.recognizer.preprocessor import pad_batch

    runner = ExportedRecognizer(folder)
    difference, largest = 0.0, 0.0
    latex: list[str] = []
    for batch in (pad_batch(probes), pad_batch(probes[:1])):
        steps: list = []
        ids = runner.greedy_ids(batch, logits=steps)
        expected_ids = greedy_decode(model, batch)
        if ids != expected_ids:
            raise ExportError(
                f"the {runner.manifest['format']} export's greedy tokens differ from Keras' on "
                f"probe images {batch.shape[1]}x{batch.shape[2]}: {ids} != {expected_ids}"
            )
        actual = np.stack(steps, axis=1)
        expected = _keras_step_logits(model, batch, _fed_tokens(actual), batch.shape[0])
        difference = max(difference, float(np.max(np.abs(actual - expected))))
        largest = max(largest, float(np.max(np.abs(expected))))
        if not latex:
            latex = [" ".join(vocabulary.decode_tokens(row)) for row in ids]
    tolerance = LOGIT_RELATIVE_TOLERANCE * max(1.0, largest)
    if not difference <= tolerance:  # also refuses NaN
        raise ExportError(
            f"the {runner.manifest['format']} export's logits differ from the Keras step's by "
            f"{difference:.3g} (max abs) on the probe images. Expected at most {tolerance:.3g}"
        )
    return difference, tolerance, latex


def _fed_tokens(logits: np.ndarray) -> np.ndarray:
    """The tokens greedy decoding chose from `logits` `(batch, steps, vocabulary)`:
    the argmax, ``<pad>`` after a row's ``<end>``."""
    from im2latex_encoder.recognizer.decoding import END_ID, PAD_ID

    done = np.zeros(logits.shape[0], bool)
    chosen = []
    for step in range(logits.shape[1]):
        token = np.where(done, PAD_ID, logits[:, step].argmax(-1))
        chosen.append(token)
        done |= token == END_ID
    return np.stack(chosen, axis=1)


def _keras_step_logits(model, images, chosen: np.ndarray, batch: int) -> np.ndarray:
    """The Keras step's logits `(batch, steps, vocabulary)` along the tokens `chosen`.

    `images` is what `model.encode` takes: an image batch, or a stroke model's token dict.

    Row `b`'s token at step `t` is `chosen[b, t - 1]` (``<start>`` at step 0): the runner's
    choices, so a late difference is measured on the same prefix, not on a diverged one.
    """
    from keras import ops

    from im2latex_encoder.recognizer.decoding import START_ID, compiled_decode_step

    decoder = model.decoder
    step = compiled_decode_step(decoder)
    cross = decoder.precompute_memory(model.encode(images))
    cache = decoder.empty_cache(batch)
    ids = np.full((batch, 1), START_ID, np.int32)
    out = []
    for position in range(chosen.shape[1]):
        logits, cache = step(
            ops.convert_to_tensor(ids), ops.convert_to_tensor(position, "int32"), cache, cross
        )
        out.append(ops.convert_to_numpy(logits))
        ids = chosen[:, position : position + 1].astype(np.int32)
    return np.stack(out, axis=1)
