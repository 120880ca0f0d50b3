"""`export_model`: SavedModel, TFLite and ONNX exports agree with the Keras model."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from im2latex_encoder import ClassificationHead, SymbolClassifier, SymbolEncoder
from im2latex_encoder.export import ExportError, export_model
from im2latex_encoder.export import encoder as export_module

# TensorFlow's interpreter runs the TFLite files only where LiteRT (`ai_edge_litert`) is absent.
pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")


def _uint8_strokes(seed, shape):
    rng = np.random.default_rng(seed)
    images = np.zeros(shape, np.uint8)
    images[rng.random(shape) < 0.12] = 255
    images[rng.random(shape) < 0.04] = 100
    return images


def _keras_reference(model, images):
    import keras

    return keras.ops.convert_to_numpy(model(images.astype("float32") / 255.0, training=False))


@pytest.fixture(scope="module")
def encoder_preset(tmp_path_factory):
    """The default encoder, random weights, with positional encoding (its TFLite path matters)."""
    directory = tmp_path_factory.mktemp("export") / "encoder_preset"
    SymbolEncoder(positional_encoding=True).save_to_preset(directory)
    return directory


def _run(format, path, images, output_name="features"):
    """Run an export with its own runtime, independently of export_model's own check."""
    if format == "savedmodel":
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures["serve"]
        spec = signature.structured_input_signature[1]["images"]
        assert spec.dtype == tf.uint8
        assert "serving_default" in loaded.signatures
        return signature(images=tf.constant(images))[output_name].numpy(), tuple(spec.shape)
    if format == "tflite":
        interpreter = export_module.tflite_interpreter(path)
        details = interpreter.get_signature_runner("serve").get_input_details()["images"]
        assert details["dtype"] == np.uint8
        runner = interpreter.get_signature_runner("serve")
        shape = tuple(None if s == -1 else int(s) for s in details["shape_signature"])
        return np.asarray(runner(images=images)[output_name]), shape
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (input_,) = session.get_inputs()
    assert input_.type == "tensor(uint8)" and session.get_outputs()[0].name == output_name
    shape = tuple(s if isinstance(s, int) else None for s in input_.shape)
    return session.run(None, {"images": images})[0], shape


@pytest.mark.slow
@pytest.mark.parametrize(
    "format,suffix", [("savedmodel", ""), ("tflite", ".tflite"), ("onnx", ".onnx")]
)
def test_encoder_export_takes_uint8_images_of_any_size(format, suffix, encoder_preset, tmp_path):
    out = tmp_path / f"encoder{suffix or '_savedmodel'}"
    result = export_model(encoder_preset, out, format=format)

    assert result.path == out and result.format == format and result.part == "encoder"
    assert result.input_shape == (None, None, None, 1) and result.output_name == "features"
    assert result.max_abs_diff <= 1e-4 and result.tolerance == 1e-4
    on_disk = (
        sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        if out.is_dir()
        else out.stat().st_size
    )
    assert result.size_bytes == on_disk > 100_000  # the weights are in it
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary left behind

    encoder = SymbolEncoder.from_preset(str(encoder_preset))
    for seed, shape in ((1, (1, 128, 128, 1)), (2, (3, 40, 200, 1))):
        images = _uint8_strokes(seed, shape)
        actual, signature_shape = _run(format, out, images)
        expected = _keras_reference(encoder, images)
        grid_height, grid_width = encoder.grid_shape(shape[1:3])
        assert actual.shape == expected.shape == (shape[0], grid_height * grid_width, 64)
        assert float(np.max(np.abs(actual - expected))) <= 1e-4
    assert signature_shape == (None, None, None, 1)


@pytest.mark.slow
def test_classifier_with_flatten_head_exports_at_its_fixed_size(tmp_path):
    classifier = SymbolClassifier(
        SymbolEncoder(filters=(8, 16)),
        ClassificationHead(4, pooling="flatten", hidden_units=8),
        labels="abcd",
        image_size=(32, 48),
    )
    classifier.save_to_preset(tmp_path / "preset")
    out = tmp_path / "classifier_savedmodel"
    result = export_model(tmp_path / "preset", out, part="classifier")
    assert result.input_shape == (None, 32, 48, 1) and result.output_name == "probabilities"

    images = _uint8_strokes(3, (2, 32, 48, 1))
    actual, signature_shape = _run("savedmodel", out, images, "probabilities")
    assert signature_shape == (None, 32, 48, 1)
    np.testing.assert_allclose(actual, _keras_reference(classifier, images), atol=1e-4)
    np.testing.assert_allclose(actual.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_dynamic_quantization_shrinks_the_tflite_model_within_its_documented_bound(tmp_path):
    encoder = SymbolEncoder()
    fp32 = export_model(encoder, tmp_path / "fp32.tflite", format="tflite")
    int8 = export_model(encoder, tmp_path / "int8.tflite", format="tflite", quantize="dynamic")
    assert int8.quantize == "dynamic"
    assert int8.size_bytes < 0.5 * fp32.size_bytes
    images = _uint8_strokes(4, (1, 64, 96, 1))
    actual, _ = _run("tflite", tmp_path / "int8.tflite", images)
    expected = _keras_reference(encoder, images)
    bound = export_module.QUANTIZED_RELATIVE_TOLERANCE * float(np.max(np.abs(expected)))
    assert 0 < float(np.max(np.abs(actual - expected))) <= bound  # int8 weights do change outputs


@pytest.mark.slow
def test_a_failed_parity_check_leaves_the_previous_export_in_place(
    encoder_preset, tmp_path, monkeypatch
):
    out = tmp_path / "encoder.onnx"
    out.write_bytes(b"previous export")
    monkeypatch.setattr(export_module, "_run_onnx", lambda path, images: np.full((2, 1, 64), 9.0))
    with pytest.raises(
        ExportError, match=r"onnx export of the encoder differs from the Keras model"
    ):
        export_model(encoder_preset, out, format="onnx")
    assert out.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encoder.onnx"]


def test_bad_arguments_say_what_was_expected(encoder_preset, tmp_path):
    with pytest.raises(
        ValueError,
        match=r"`format` must be one of 'savedmodel', 'tflite', 'onnx'. Received: format='pb'",
    ):
        export_model(encoder_preset, tmp_path / "x", format="pb")
    with pytest.raises(ValueError, match=r"`part` must be one of .* Received: part='head'"):
        export_model(encoder_preset, tmp_path / "x", part="head")
    with pytest.raises(ValueError, match=r"format='tflite' only. Received: format='onnx'"):
        export_model(encoder_preset, tmp_path / "x", format="onnx", quantize="dynamic")
    with pytest.raises(ValueError, match="part='classifier' needs a SymbolClassifier"):
        export_model(SymbolEncoder(), tmp_path / "x", part="classifier")
    with pytest.raises(ValueError, match="is an encoder preset: it has no head"):
        export_model(encoder_preset, tmp_path / "x", part="classifier")
    with pytest.raises(ValueError, match="Received: list"):
        export_model([1, 2], tmp_path / "x")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "module_name",
    [
        "im2latex_encoder.export",
        "im2latex_encoder.export.encoder",
        "im2latex_encoder.cli.export",
    ],
)
def test_docstring_examples_run(module_name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.slow
def test_saved_model_stores_each_weight_once(tmp_path):
    # keras.export's track(model) would store every weight twice (keras-team/keras#23553).
    classifier = SymbolClassifier(
        SymbolEncoder(normalization="batch"),
        labels="abc",
        head=ClassificationHead(3),
        image_size=None,
    )
    export_model(classifier, tmp_path / "savedmodel", part="classifier")
    reader = tf.train.load_checkpoint(str(tmp_path / "savedmodel" / "variables" / "variables"))
    stored = {
        name: shape
        for name, shape in reader.get_variable_to_shape_map().items()
        if name != "_CHECKPOINTABLE_OBJECT_GRAPH"
    }
    assert sum(int(np.prod(shape)) for shape in stored.values()) == classifier.count_params()


def test_tflite_runs_on_litert_where_installed_else_on_tensorflow(tmp_path, monkeypatch):
    import sys

    encoder = SymbolEncoder(filters=(8,))
    export_model(encoder, tmp_path / "tiny.tflite", format="tflite")
    images = _uint8_strokes(5, (1, 32, 40, 1))

    def features(interpreter):
        return interpreter.get_signature_runner("serve")(images=images)["features"]

    with pytest.raises(ValueError, match="exactly one of `path` and `content`"):
        export_module.tflite_interpreter()
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # as if not installed
        content = (tmp_path / "tiny.tflite").read_bytes()
        fallback = export_module.tflite_interpreter(content=content, num_threads=1)
    assert isinstance(fallback, tf.lite.Interpreter)
    np.testing.assert_allclose(features(fallback), _keras_reference(encoder, images), atol=1e-4)
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = export_module.tflite_interpreter(tmp_path / "tiny.tflite", num_threads=1)
    assert isinstance(interpreter, litert.Interpreter)
    np.testing.assert_allclose(features(interpreter), _keras_reference(encoder, images), atol=1e-4)
