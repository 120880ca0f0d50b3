"""`export_recognizer`: encoder and decoder-step graphs whose standalone runner reads what Keras reads.

One tiny recognizer (1 layer, 2 heads, width 16, `max_length` 8), its cross-attention
sharpened and its `<end>` logit raised so that greedy decoding stops at different steps and
emits different tokens on images of different widths and ink densities; each format is
exported once per module and decoded by its runner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from im2latex_encoder import FeatureGridNeck, SymbolEncoder
from im2latex_encoder.cli import main
from im2latex_encoder.export import ExportError
from im2latex_encoder.export import recognizer as export_recognizer_module
from im2latex_encoder.export.recognizer import export_recognizer
from im2latex_encoder.formulas.tokenizer import Vocabulary
from im2latex_encoder.recognizer import (
    DrawSettings,
    FormulaRecognizer,
    beam_search_decode,
    greedy_decode,
    recognize_images,
    save_recognizer,
)
from im2latex_encoder.recognizer.decoding import END_ID
from im2latex_encoder.recognizer.preprocessor import pad_batch

# TensorFlow's interpreter runs the TFLite files only where LiteRT (`ai_edge_litert`) is absent.
pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")

ERROR_PREFIX = "im2latex-encoder export: error: "
#: (height, width, share of ink pixels) of the test images: six widths, six densities.
IMAGES = (
    (30, 40, 0.05),
    (40, 90, 0.1),
    (36, 150, 0.2),
    (48, 200, 0.3),
    (32, 64, 0.45),
    (44, 120, 0.6),
)
#: How the random recognizer is perturbed: cross-attention kernels scaled, `<end>` raised.
CROSS_SCALE, END_SHIFT = 6.0, 3.0
BATCH_SIZE = 2  # three width buckets of two


def _images(seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    images = []
    for height, width, ink in IMAGES:
        image = np.zeros((height, width), np.uint8)
        image[rng.random((height, width)) < ink] = 255
        images.append(image)
    return images


def _tiny_recognizer(seed: int = 1) -> FormulaRecognizer:
    keras.utils.set_random_seed(seed)
    model = FormulaRecognizer(
        SymbolEncoder(filters=(8, 8)),
        14,
        num_layers=1,
        num_heads=2,
        intermediate_dim=32,
        max_length=8,
        # No layer norm: CROSS_SCALE and END_SHIFT below are tuned to these random weights.
        neck=FeatureGridNeck(16, positional_encoding=True),
    )
    attention = model.decoder.blocks[0].cross_attention
    for dense in (attention._query_dense, attention._value_dense, attention._output_dense):
        dense.kernel.assign(keras.ops.convert_to_numpy(dense.kernel) * CROSS_SCALE)
    bias = keras.ops.convert_to_numpy(model.decoder.logits.bias).copy()
    bias[END_ID] += END_SHIFT
    model.decoder.logits.bias.assign(bias)
    return model


@pytest.fixture(scope="module")
def recognizer_dir(tmp_path_factory):
    vocabulary = Vocabulary(list("xyz+-=2()a"))
    directory = tmp_path_factory.mktemp("export_recognizer") / "recognizer"
    save_recognizer(directory, _tiny_recognizer(), vocabulary, DrawSettings(18.0))
    return directory


@pytest.fixture(scope="module")
def keras_latex(recognizer_dir):
    """What the Keras path (`recognize_images`) reads on `_images()`; checked to vary."""
    from im2latex_encoder.recognizer import load_recognizer

    model, vocabulary, _ = load_recognizer(recognizer_dir)
    tokens = recognize_images(model, vocabulary, _images(), batch_size=BATCH_SIZE)
    lengths = sorted({len(row) for row in tokens})
    assert len(lengths) >= 3 and len({" ".join(row) for row in tokens}) >= 3, (
        f"the perturbation (CROSS_SCALE, END_SHIFT) needs retuning: {tokens}"
    )
    return model, [" ".join(row) for row in tokens]


@pytest.fixture(scope="module")
def exports(recognizer_dir, tmp_path_factory):
    """format -> (folder, result), each exported on first use."""
    made: dict = {}

    def export(format):
        if format not in made:
            out = tmp_path_factory.mktemp(f"exported_{format}") / "exported"
            made[format] = (out, export_recognizer(recognizer_dir, out, format=format))
        return made[format]

    return export


@pytest.mark.slow
@pytest.mark.parametrize(
    "format,graphs",
    [
        ("onnx", ("encoder.onnx", "step.onnx")),
        ("tflite", ("encoder.tflite", "step.tflite")),
        ("savedmodel", ("encoder", "step")),
    ],
)
def test_export_writes_graphs_runner_and_manifest(format, graphs, exports, recognizer_dir):
    out, result = exports(format)

    expected = {*graphs, "export.json", "runner.py", "vocabulary.json", "recognizer.json"}
    assert set(result.files) == expected == {path.name for path in out.iterdir()}
    assert result.path == out and result.format == format and result.probes == 3
    assert result.max_logit_diff <= result.tolerance < 1e-2
    for name in ("vocabulary.json", "recognizer.json"):
        assert (out / name).read_bytes() == (recognizer_dir / name).read_bytes()
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["max_length"] == 8 and manifest["num_heads"] == 2 and manifest["key_dim"] == 8
    assert manifest["step_inputs"] == [
        "ids",
        "position",
        "cache_keys_0",
        "cache_values_0",
        "cross_keys_0",
        "cross_values_0",
    ]
    assert manifest["step_outputs"] == ["logits", "next_cache_keys_0", "next_cache_values_0"]
    assert manifest["parity"]["max_logit_diff"] == result.max_logit_diff
    assert not any(name.startswith(".") for name in os.listdir(out.parent))  # no leftovers


@pytest.mark.slow
def test_onnx_graphs_have_free_batch_and_image_sizes(exports):
    import onnxruntime

    out, _ = exports("onnx")

    def shapes(name, which):
        session = onnxruntime.InferenceSession(str(out / name), providers=["CPUExecutionProvider"])
        tensors = session.get_inputs() if which == "inputs" else session.get_outputs()
        return {t.name: tuple(s if isinstance(s, int) else None for s in t.shape) for t in tensors}

    assert shapes("encoder.onnx", "inputs") == {"images": (None, None, None, 1)}
    assert shapes("encoder.onnx", "outputs")["cross_keys_0"] == (None, 2, None, 8)
    step = shapes("step.onnx", "inputs")
    assert step["ids"] == (None, 1) and step["position"] == ()
    assert step["cache_keys_0"] == (None, 2, 8, 8) and step["cross_values_0"] == (None, 2, None, 8)
    assert shapes("step.onnx", "outputs")["logits"] == (None, 14)


@pytest.mark.slow
@pytest.mark.parametrize("format", ["onnx", "tflite", "savedmodel"])
def test_runner_reads_the_latex_keras_reads(format, exports, keras_latex):
    from im2latex_encoder.export.runner import ExportedRecognizer

    model, expected = keras_latex
    out, _ = exports(format)
    runner = ExportedRecognizer(out)

    assert runner.decode(_images(), batch_size=BATCH_SIZE) == expected
    # A padded float batch (other widths, ink of other brightness) decodes as greedy_decode.
    brightness = np.array([0.0, 0.5, 1.0, 2.0], "float32")[:, None, None, None]
    batch = pad_batch(_images(seed=5)[:4]) * brightness
    assert runner.greedy_ids(batch) == greedy_decode(model, batch)
    assert runner.greedy_ids(batch[:1], max_length=3) == greedy_decode(
        model, batch[:1], max_length=3
    )


@pytest.mark.slow
@pytest.mark.parametrize("format", ["onnx", "tflite"])
def test_runner_beam_search_reads_what_keras_beam_search_reads(format, exports, recognizer_dir):
    from im2latex_encoder.export.runner import ExportedRecognizer
    from im2latex_encoder.recognizer import load_recognizer

    model, vocabulary, _ = load_recognizer(recognizer_dir)
    runner = ExportedRecognizer(exports(format)[0])
    batch = pad_batch(_images())

    greedy = greedy_decode(model, batch)
    assert runner.beam_ids(batch, 1) == beam_search_decode(model, batch, beam_width=1) == greedy
    expected = beam_search_decode(model, batch, beam_width=3)
    assert runner.beam_ids(batch, 3) == expected
    # Beams that stopped at different steps (tests/test_runner_beam_search.py has more lengths).
    assert len({len(ids) for ids in expected}) >= 2 and expected != greedy
    # Grouped by width and padded, as `recognize --beam 3` reads them.
    keras = recognize_images(model, vocabulary, _images(), beam=3, batch_size=BATCH_SIZE)
    latex = runner.decode(_images(), batch_size=BATCH_SIZE, beam_width=3)
    assert latex == [" ".join(tokens) for tokens in keras]


@pytest.mark.slow
def test_runner_command_line_decodes_with_a_beam(exports, recognizer_dir, tmp_path, capsys):
    from im2latex_encoder.export import runner as recognizer_runner
    from im2latex_encoder.recognizer import load_recognizer

    model, vocabulary, _ = load_recognizer(recognizer_dir)
    files = []
    for index, image in enumerate(_images()):
        files.append(str(tmp_path / f"image{index}.npy"))
        np.save(files[-1], image)
    folder = str(exports("onnx")[0])

    argv = [*files, "--folder", folder, "--batch-size", str(BATCH_SIZE), "--beam", "3"]
    assert recognizer_runner.main(argv) == 0
    keras = recognize_images(model, vocabulary, _images(), beam=3, batch_size=BATCH_SIZE)
    assert capsys.readouterr().out.splitlines() == [" ".join(tokens) for tokens in keras]
    assert recognizer_runner.main([*argv[:-1], "-1"]) == 2
    assert capsys.readouterr().err.strip() == (
        "runner: error: `beam_width` must be a positive int. Received: beam_width=-1"
    )


_FORBIDDEN_CHECK = """
import json, sys
sys.path.insert(0, sys.argv[1])
import runner
status = runner.main([*sys.argv[3:], "--backend", sys.argv[2], "--batch-size", "2"])
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"keras", "tensorflow", "im2latex_encoder"})
print(json.dumps({"status": status, "loaded": loaded}), file=sys.stderr)
"""


@pytest.mark.slow
@pytest.mark.parametrize("format,backend", [("onnx", "onnxruntime"), ("tflite", "litert")])
def test_runner_runs_without_keras_or_tensorflow(format, backend, exports, keras_latex, tmp_path):
    out, _ = exports(format)
    files = []
    for index, image in enumerate(_images()):
        files.append(tmp_path / f"image{index}.npy")
        np.save(files[-1], image)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND")}
    completed = subprocess.run(
        [sys.executable, "-c", _FORBIDDEN_CHECK, str(out), backend, *map(str, files)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    report = json.loads(completed.stderr.strip().splitlines()[-1])
    assert report == {"status": 0, "loaded": []}, completed.stderr
    assert completed.stdout.splitlines() == keras_latex[1]


@pytest.mark.slow
def test_a_failed_parity_check_writes_nothing(recognizer_dir, tmp_path, monkeypatch):
    out = tmp_path / "exported"
    out.mkdir()
    (out / "previous.txt").write_text("kept")
    monkeypatch.setattr(export_recognizer_module, "LOGIT_RELATIVE_TOLERANCE", -1.0)

    with pytest.raises(ExportError, match="logits differ from the Keras step's"):
        export_recognizer(recognizer_dir, out, format="savedmodel")
    assert [p.name for p in tmp_path.iterdir()] == ["exported"]
    assert [p.name for p in out.iterdir()] == ["previous.txt"]


def test_unknown_format_and_missing_folder_are_refused(tmp_path):
    with pytest.raises(ValueError, match="`format` must be one of 'onnx', 'tflite'"):
        export_recognizer(tmp_path, tmp_path / "out", format="pb")
    with pytest.raises(FileNotFoundError, match="is not a recognizer folder"):
        export_recognizer(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- The command line ----------------------------------------------------------------------------


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--model", "{missing}"], "not a preset directory and not a shipped preset"),
        (["--model", "{model}", "--preset", "crohme101"], "give the model once, with --model"),
        ([], "expected --model NAME_OR_PATH (a preset or a recognizer). Received: none"),
        (
            ["--model", "{model}.keras", "--part", "classifier"],
            "--part and --quantize apply to symbol presets",
        ),
        (["--model", "{model}", "--format", "pb"], "--format must be one of savedmodel, tflite"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(argv, expected, tmp_path, capsys):
    model = tmp_path / "recognizer"
    model.mkdir()
    missing = tmp_path / "no_such_recognizer"
    values = {"missing": str(missing), "model": str(model)}
    argv = [arg.format(**values) for arg in argv]
    if "--format" not in argv:
        argv += ["--format", "onnx"]
    status = main(["export", *argv, "--out", str(tmp_path / "exported")])
    assert status == 2
    assert expected.format(**values) in _one_error_line(capsys)
    assert not (tmp_path / "exported").exists()


@pytest.mark.slow
def test_cli_exports_a_recognizer(recognizer_dir, keras_latex, tmp_path, capsys):
    out = tmp_path / "exported"
    argv = ["export", "--model", str(recognizer_dir), "--format", "tflite", "--out", str(out)]
    assert main(argv) == 0
    message = capsys.readouterr().out
    assert message.startswith(f"wrote {out} (tflite: encoder.tflite, export.json, ")
    assert "runner.py's greedy tokens equal Keras' on 3 probe images" in message

    from im2latex_encoder.export.runner import decode

    assert decode(_images(), folder=out, batch_size=BATCH_SIZE) == keras_latex[1]
