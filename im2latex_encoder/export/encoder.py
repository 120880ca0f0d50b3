"""Export an encoder or classifier for serving: TensorFlow SavedModel, TFLite or ONNX.

Every format serves the same signature, `serve` (also `serving_default` in a SavedModel): it
takes **uint8** images `(batch, height, width, 1)`, ink 255 on background 0, as a camera or a
prepared cache holds them, and divides by 255 inside, so the model sees its usual float
images, ink 1.0 on 0.0. Height and width may be any size ≥ the encoder's minimum, except for a
classifier whose head flattens the grid (`pooling="flatten"`): that one is tied to the image
size it was built for, and the exported signature fixes it.

| format | written with | checked with |
| --- | --- | --- |
| `savedmodel` | `keras.export.ExportArchive` with a `tf.function` endpoint | `tf.saved_model.load` |
| `tflite` | `tf.lite.TFLiteConverter.from_saved_model` (fp32; `quantize="dynamic"` for int8 weights) | LiteRT (`ai_edge_litert`), else `tf.lite.Interpreter` |
| `onnx` | `tf2onnx.convert.from_function` on the same `tf.function` | `onnxruntime` |

ONNX goes through tf2onnx directly rather than `model.export(format="onnx")`: Keras' own ONNX
export traces the float model, and the uint8 → float conversion belongs inside the graph.

Each export is run on a fixed batch of probe images before it is moved into place and compared
with the Keras model: a float32 export must agree within `1e-4` (max abs difference) or the
export fails and nothing is written. Dynamic-range quantization stores weights as int8, so it is
held to a looser bound, `QUANTIZED_RELATIVE_TOLERANCE` of the largest output magnitude.

Exporting needs the TensorFlow backend (`KERAS_BACKEND=tensorflow`, the default): the exported
graph is a TensorFlow graph. A preset saved on any backend exports the same way.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from im2latex_encoder._atomic import atomic_directory, atomic_path

FORMATS = ("savedmodel", "tflite", "onnx")
PARTS = ("encoder", "classifier")
QUANTIZATIONS = (None, "dynamic")
SIGNATURE = "serve"
INPUT_NAME = "images"
FLOAT_TOLERANCE = 1e-4
QUANTIZED_RELATIVE_TOLERANCE = 0.05
ONNX_OPSET = 17


class ExportError(ValueError):
    """An export failed its parity check against the Keras model, or cannot be made.

    Example:
    >>> str(ExportError("onnx differs from the Keras model by 0.3 (max abs); allowed 0.0001"))
    'onnx differs from the Keras model by 0.3 (max abs); allowed 0.0001'
    """


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What `export_model` wrote and how closely it matches the Keras model.

    Attributes:
        path: Path. The exported file (`.tflite`, `.onnx`) or SavedModel directory.
        format: str. `"savedmodel"`, `"tflite"` or `"onnx"`.
        part: str. `"encoder"` or `"classifier"`.
        size_bytes: int. Size on disk (the whole directory for a SavedModel).
        max_abs_diff: float. Largest difference from the Keras model on the probe images.
        tolerance: float. The bound `max_abs_diff` was held to.
        input_shape: tuple. The signature's image shape; None marks a free dimension.
        output_name: str. Name of the signature's output (`"features"`, `"probabilities"`, ...).
        quantize: str or None. `"dynamic"` for a dynamic-range quantized TFLite model.

    Example:
    >>> result = export_model(SymbolEncoder(), "/tmp/encoder.onnx", format="onnx")  # doctest: +SKIP
    >>> result.max_abs_diff < 1e-4, result.size_bytes  # doctest: +SKIP
    (True, 236000)
    """

    path: Path
    format: str
    part: str
    size_bytes: int
    max_abs_diff: float
    tolerance: float
    input_shape: tuple
    output_name: str
    quantize: str | None = None


def export_model(
    preset_or_model: Any,
    out: str | os.PathLike,
    *,
    format: str = "savedmodel",
    part: str = "encoder",
    quantize: str | None = None,
) -> ExportResult:
    """Export an encoder or classifier with a uint8-image serving signature, then check it.

    The model is a preset (name or directory, loaded with its sha256 check) or a
    `SymbolEncoder` / `SymbolClassifier` object. `part="encoder"` exports the encoder alone
    (of a classifier preset, its encoder part); `part="classifier"` exports encoder and head.
    The export is written beside `out` under a temporary name, run on probe images and compared
    with the Keras model, and only then renamed to `out` (replacing what was there).

    Args:
        preset_or_model: str, PathLike, `SymbolEncoder` or `SymbolClassifier`.
        out: str or PathLike. The `.tflite` / `.onnx` file or the SavedModel directory to write.
        format: str. `"savedmodel"`, `"tflite"` or `"onnx"`.
        part: str. `"encoder"` or `"classifier"`.
        quantize: None or `"dynamic"`. Dynamic-range quantization (int8 weights, float
            activations), TFLite only; about 4× smaller, checked against a looser bound.

    Returns:
        An `ExportResult` with the path, size in bytes and the parity figure.

    Raises:
        ValueError: for an unknown `format`, `part` or `quantize`, or a part the model lacks.
        PresetError: if the preset is unknown, incomplete or fails its sha256 check.
        ExportError: if the export disagrees with the Keras model, or the backend is not
            TensorFlow.

    Example:
    >>> from im2latex_encoder import SymbolEncoder
    >>> result = export_model(SymbolEncoder(), "/tmp/encoder_savedmodel")  # doctest: +SKIP
    >>> result.input_shape  # doctest: +SKIP
    (None, None, None, 1)

    From a preset, for a phone:
    >>> export_model("crohme101", "symbols.tflite", format="tflite",
    ...              part="classifier", quantize="dynamic")  # doctest: +SKIP
    """
    check_choice("format", format, FORMATS)
    check_choice("part", part, PARTS)
    check_choice("quantize", quantize, QUANTIZATIONS)
    if quantize is not None and format != "tflite":
        raise ValueError(
            f"`quantize` applies to format='tflite' only. Received: format={format!r}, "
            f"quantize={quantize!r}"
        )
    require_tensorflow_backend()
    model = _resolve_model(preset_or_model, part)
    input_shape = _input_shape(model)
    output_name = _output_name(model)
    serve = _serving_function(model, input_shape, output_name)
    probe = _probe_images(model, input_shape)
    expected = _keras_outputs(model, probe)

    target = Path(out)
    staging = atomic_directory(target) if format == "savedmodel" else atomic_path(target)
    with staging as staged:
        if format == "savedmodel":
            write_saved_model(model, serve, staged)
            actual = _run_saved_model(staged, probe, output_name)
        elif format == "tflite":
            with tempfile.TemporaryDirectory(dir=target.parent, prefix=".savedmodel-") as tmp:
                saved = Path(tmp) / "savedmodel"
                write_saved_model(model, serve, saved)
                write_bytes(staged, tflite_bytes(saved, quantize))
            actual = _run_tflite(staged, probe, output_name)
        else:
            write_bytes(staged, _onnx_bytes(serve, input_shape))
            actual = _run_onnx(staged, probe)
        difference = float(np.max(np.abs(actual - expected)))
        tolerance = FLOAT_TOLERANCE
        if quantize == "dynamic":
            tolerance = max(
                FLOAT_TOLERANCE, QUANTIZED_RELATIVE_TOLERANCE * float(np.max(np.abs(expected)))
            )
        if not difference <= tolerance:  # also refuses NaN
            raise ExportError(
                f"the {format} export of the {part} differs from the Keras model by "
                f"{difference:.3g} (max abs) on the probe images. Expected at most {tolerance:.3g}"
            )
        size = disk_size_bytes(staged)
    return ExportResult(
        path=target,
        format=format,
        part=part,
        size_bytes=size,
        max_abs_diff=difference,
        tolerance=tolerance,
        input_shape=input_shape,
        output_name=output_name,
        quantize=quantize,
    )


# --- The model and its signature ---------------------------------------------------------------


def check_choice(name: str, value, choices) -> None:
    """Refuse a `value` of option `name` that is not one of `choices`, naming them."""
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(repr(c) for c in choices)}. "
            f"Received: {name}={value!r}"
        )


def require_tensorflow_backend() -> None:
    """Refuse to export unless Keras runs on TensorFlow (the graphs are TensorFlow's)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ExportError(
            "exporting builds a TensorFlow graph and needs the TensorFlow backend. Expected "
            f"KERAS_BACKEND=tensorflow. Received: {keras.backend.backend()!r} (set the variable "
            "before keras is imported; presets saved on any backend export the same way)"
        )


def _resolve_model(preset_or_model, part: str):
    from im2latex_encoder.classifier import SymbolClassifier
    from im2latex_encoder.encoder import SymbolEncoder

    if isinstance(preset_or_model, (str, os.PathLike)):
        if part == "encoder":
            return SymbolEncoder.from_preset(os.fspath(preset_or_model))
        return SymbolClassifier.from_preset(os.fspath(preset_or_model))
    if isinstance(preset_or_model, SymbolClassifier):
        return preset_or_model.encoder if part == "encoder" else preset_or_model
    if isinstance(preset_or_model, SymbolEncoder):
        if part == "classifier":
            raise ValueError(
                "part='classifier' needs a SymbolClassifier or a classifier preset. "
                "Received: a SymbolEncoder (export it with part='encoder')"
            )
        return preset_or_model
    raise ValueError(
        "export_model takes a preset name or directory, a SymbolEncoder or a SymbolClassifier. "
        f"Received: {type(preset_or_model).__name__}"
    )


def _encoder_of(model):
    from im2latex_encoder.classifier import SymbolClassifier

    return model.encoder if isinstance(model, SymbolClassifier) else model


def _input_shape(model) -> tuple:
    from im2latex_encoder.classifier import SymbolClassifier

    channels = _encoder_of(model).input_channels
    flatten = isinstance(model, SymbolClassifier) and model.head.pooling == "flatten"
    if flatten and model.image_size is not None:  # a flatten head always has an image size
        height, width = model.image_size
        return (None, height, width, channels)
    return (None, None, None, channels)


def _output_name(model) -> str:
    from im2latex_encoder.classifier import SymbolClassifier

    if not isinstance(model, SymbolClassifier) or not model.head.num_classes:
        return "features"
    return "probabilities" if model.head.activation == "softmax" else "scores"


def _serving_function(model, input_shape: tuple, output_name: str) -> Callable:
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec(input_shape, tf.uint8, name=INPUT_NAME)])
    def serve(images):
        # Ink 255 on 0 → the model's float convention, ink 1.0 on 0.0 (anti-aliasing kept).
        floats = tf.cast(images, tf.float32) / 255.0
        return {output_name: model(floats, training=False)}

    return serve


def _probe_images(model, input_shape: tuple) -> np.ndarray:
    """Two deterministic stroke-like uint8 images, wide rather than square where free."""
    encoder = _encoder_of(model)
    side = max(encoder.minimum_image_side(), 24)
    height = input_shape[1] or side + 16
    width = input_shape[2] or 2 * side + 24
    rng = np.random.default_rng(7)
    images = np.zeros((2, height, width, input_shape[3]), np.uint8)
    images[rng.random(images.shape) < 0.15] = 255
    images[rng.random(images.shape) < 0.05] = 128  # anti-aliased edge pixels
    return images


def _keras_outputs(model, images: np.ndarray) -> np.ndarray:
    import keras

    floats = images.astype("float32") / 255.0
    return keras.ops.convert_to_numpy(model(floats, training=False))


# --- Writers -----------------------------------------------------------------------------------


def write_saved_model(model, serve: Callable, directory: Path) -> None:
    """Write `serve` as a SavedModel's serving signature in `directory`."""
    import keras

    archive = keras.export.ExportArchive()
    # No `archive.track(model)`: the endpoint's trace already captures every variable, and
    # tracking the Keras wrappers as well stores each weight twice (keras-team/keras#23553).
    archive.add_endpoint(SIGNATURE, serve)
    archive.write_out(os.fspath(directory), verbose=False)


def tflite_bytes(saved_model: Path, quantize: str | None) -> bytes:
    """A SavedModel's serving signature converted to LiteRT (TFLite), quantized or not."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        os.fspath(saved_model), signature_keys=[SIGNATURE]
    )
    if quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def _onnx_bytes(serve: Callable, input_shape: tuple) -> bytes:
    import tensorflow as tf

    try:
        import tf2onnx
    except ImportError as error:
        raise ExportError(
            "ONNX export needs tf2onnx and onnxruntime: pip install 'im2latex-encoder[export]'. "
            f"Received: {error}"
        ) from error
    model_proto, _ = tf2onnx.convert.from_function(
        serve,
        input_signature=[tf.TensorSpec(input_shape, tf.uint8, name=INPUT_NAME)],
        opset=ONNX_OPSET,
    )
    return model_proto.SerializeToString()


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` and flush it to disk (inside an atomic directory)."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


# --- Runners (the parity check) ------------------------------------------------------------------


def _run_saved_model(directory: Path, images: np.ndarray, output_name: str) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(os.fspath(directory))
    outputs = loaded.signatures[SIGNATURE](**{INPUT_NAME: tf.constant(images)})
    return outputs[output_name].numpy()


def _run_tflite(path: Path, images: np.ndarray, output_name: str) -> np.ndarray:
    interpreter = tflite_interpreter(path)
    runner = interpreter.get_signature_runner(SIGNATURE)
    return np.asarray(runner(**{INPUT_NAME: images})[output_name])


def tflite_interpreter(
    path: str | os.PathLike | None = None,
    content: bytes | None = None,
    num_threads: int | None = None,
):
    """A TFLite interpreter for a file (`path`) or its bytes (`content`).

    LiteRT's (`ai_edge_litert`, the `export` extra) where installed; TensorFlow's
    `tf.lite.Interpreter`, deprecated in its favour, only where it is not.
    """
    if (path is None) == (content is None):
        given = "None" if content is None else f"{len(content)} bytes"
        raise ValueError(
            f"Pass exactly one of `path` and `content`. Received: path={path!r}, content={given}"
        )
    model_path = None if path is None else os.fspath(path)
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            return tf.lite.Interpreter(
                model_path=model_path, model_content=content, num_threads=num_threads
            )
    return Interpreter(model_path=model_path, model_content=content, num_threads=num_threads)


def _run_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    try:
        import onnxruntime
    except ImportError as error:
        raise ExportError(
            "checking an ONNX export needs onnxruntime: pip install 'im2latex-encoder[export]'. "
            f"Received: {error}"
        ) from error
    session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT_NAME: images})[0]


def disk_size_bytes(path: Path) -> int:
    """Bytes on disk of a file, or of every file under a directory."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
