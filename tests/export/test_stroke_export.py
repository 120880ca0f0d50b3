"""`export_recognizer` on a `StrokeRecognizer`: featurizer, token-encoder and step graphs.

One tiny stroke recognizer (a 4-4-4 `SymbolEncoder`, hidden head of 8, width 16, one layer
each), its cross-attention and geometry sharpened and its `<end>` logit raised so that greedy decoding
emits different tokens and lengths for different expressions. It is exported once, to ONNX,
by `im2latex-encoder export` as a user runs it, and read by the exported runner in a fresh
interpreter that never imports Keras or TensorFlow.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from im2latex_encoder import SymbolEncoder
from im2latex_encoder.cli import main
from im2latex_encoder.export import ExportError
from im2latex_encoder.export import recognizer as export_recognizer_module
from im2latex_encoder.export.recognizer import export_recognizer
from im2latex_encoder.recognizer.decoding import END_ID
from im2latex_encoder.recognizer.stroke_recognizer import StrokeRecognizer
from im2latex_encoder.symbols import CROHME_SYMBOLS
from inkml_fixtures import build_inkml

pytestmark = [
    pytest.mark.slow,
    # A one-stroke expression's attention has one key: Keras warns about its softmax.
    pytest.mark.filterwarnings("ignore:You are using a softmax over axis:UserWarning"),
]

VOCABULARY = ["x", "y", "+", "-", "=", "2", "(", ")", "a"]
#: How the random recognizer is perturbed: cross-attention and geometry kernels scaled,
#: `<end>` raised (tuned to seed 3's weights: five expressions, four readings, four lengths).
CROSS_SCALE, GEOMETRY_SCALE, END_SHIFT = 20.0, 4.0, 2.0
#: The test expressions' stroke counts: two of 4, decoded as one batch.
STROKE_COUNTS = (1, 2, 4, 4, 6)
#: Slant views read beside the ink (`_RUN_WITHOUT_TENSORFLOW` reads the same ones).
SLANTS = (2.0, -2.0, 1.0)


def _expressions(seed: int = 5) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    expressions = []
    for count in STROKE_COUNTS:
        strokes = []
        for index in range(count):
            start = np.array([index * 25.0 + rng.uniform(0, 8), rng.uniform(0, 30)])
            strokes.append(start + np.cumsum(rng.normal(0, 3, (int(rng.integers(2, 20)), 2)), 0))
        expressions.append(strokes)
    return expressions


def _image() -> np.ndarray:
    """Five separate pen strokes drawn into a uint8 image (ink 255 on 0)."""
    import cv2

    rng = np.random.default_rng(6)
    image = np.zeros((50, 170), np.uint8)
    for index in range(5):
        points = np.array([index * 32 + 12, 25]) + np.cumsum(rng.normal(0, 4, (5, 2)), axis=0)
        cv2.polylines(image, [np.rint(points).astype(np.int32)], False, 255, 2)
    return image


def _tiny_stroke_recognizer(seed: int = 3) -> StrokeRecognizer:
    keras.utils.set_random_seed(seed)
    model = StrokeRecognizer(
        SymbolEncoder(filters=(4, 4, 4)),
        vocabulary=VOCABULARY,
        symbol_hidden_units=8,
        hidden_dim=16,
        encoder_layers=1,
        decoder_layers=1,
        num_heads=2,
        intermediate_dim=32,
        max_length=8,
    )
    model.build()
    attention = model.decoder.blocks[0].cross_attention
    for dense in (attention._query_dense, attention._value_dense, attention._output_dense):
        dense.kernel.assign(keras.ops.convert_to_numpy(dense.kernel) * CROSS_SCALE)
    geometry = model.token_encoder.geometry_projection.kernel
    geometry.assign(keras.ops.convert_to_numpy(geometry) * GEOMETRY_SCALE)
    bias = keras.ops.convert_to_numpy(model.decoder.logits.bias).copy()
    bias[END_ID] += END_SHIFT
    model.decoder.logits.bias.assign(bias)
    return model


@pytest.fixture(scope="module")
def preset_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("stroke_export") / "recognizer"
    _tiny_stroke_recognizer().save_to_preset(directory)
    return directory


@pytest.fixture(scope="module")
def keras_latex(preset_dir):
    """What the Keras model reads: the expressions (greedy, beam 3) and the image; checked to vary."""
    model = StrokeRecognizer.from_preset(os.fspath(preset_dir))
    greedy = model.recognize_strokes(_expressions(), beam_width=1, batch_size=2)
    assert len(set(greedy)) >= 3 and len({len(row.split()) for row in greedy}) >= 2, (
        f"the perturbation (CROSS_SCALE, GEOMETRY_SCALE, END_SHIFT) needs retuning: {greedy}"
    )
    return {
        "strokes": greedy,
        "beam": model.recognize_strokes(_expressions(), beam_width=3, batch_size=2),
        "beam_alone": [
            " ".join(row)
            for row in model.recognize_stroke_tokens(
                _expressions(), beam_width=3, symbol_count_weight=0, slants=()
            )
        ],
        # Slant views (not the default ones), averaged in the runner's beam search too.
        "beam_slanted": [
            " ".join(row)
            for row in model.recognize_stroke_tokens(
                _expressions(), beam_width=3, symbol_count_weight=0, slants=SLANTS
            )
        ],
        "image": model.recognize_images([_image()], beam_width=1),
    }


@pytest.fixture(scope="module")
def inkml_dir(tmp_path_factory):
    """`_expressions()` as InkML files, and one file that is not InkML."""
    folder = tmp_path_factory.mktemp("inkml")
    for index, strokes in enumerate(_expressions()):
        (folder / f"e{index}.inkml").write_bytes(build_inkml([s.tolist() for s in strokes]))
    (folder / "broken.inkml").write_text("not xml")
    return folder


@pytest.fixture(scope="module")
def exported(preset_dir, inkml_dir, tmp_path_factory):
    """The ONNX export, made by the command line as a user makes it, and what it printed."""
    out = tmp_path_factory.mktemp("stroke_exported") / "exported"
    printed, errors = io.StringIO(), io.StringIO()  # capsys is per test, this fixture per module
    argv = ["export", "--model", str(preset_dir), "--format", "onnx", "--out", str(out)]
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors):
        status = main([*argv, "--compare-inkml", str(inkml_dir)])
    assert status == 0, errors.getvalue()
    return out, printed.getvalue(), errors.getvalue()


def test_cli_exports_the_three_graphs_with_a_manifest(exported):
    out, printed, _ = exported
    assert sorted(p.name for p in out.iterdir()) == [
        "encoder.onnx",
        "export.json",
        "featurizer.onnx",
        "runner.py",
        "step.onnx",
        "stroke_drawing.json",
        "vocabulary.json",
    ]
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["kind"] == "stroke-recognizer"
    assert manifest["encoder_inputs"] == ["features", "geometry"]
    # Beam search's symbol-count prior travels with the export: joins, symbols, weight.
    assert manifest["join_output"] == "join_logits" and manifest["symbol_count_weight"] == 1.0
    assert manifest["symbol_output"] == "symbol_logits"
    tokens = json.loads((out / "vocabulary.json").read_text())["tokens"]
    symbols = [t for t, c in zip(tokens, manifest["token_classes"]) if c >= 0]
    assert symbols == [
        t for t in tokens if t not in ("<pad>", "<start>", "<end>", "<unk>", "^", "_", "{", "}")
    ]
    # Each symbol token's class is the classifier's class of that name (x is class "x").
    assert [CROHME_SYMBOLS[c] for c in manifest["token_classes"] if c >= 0] == symbols
    # Three views of (8 hidden + 101 classes) per stroke.
    assert (manifest["view_dim"], manifest["feature_dim"]) == (109, 327)
    parity = manifest["parity"]
    assert parity["max_feature_diff"] <= parity["feature_tolerance"]
    assert parity["max_logit_diff"] <= parity["tolerance"]
    # The slants beam search also reads each expression at, as the Keras model's default.
    assert manifest["default_slants"] == list(StrokeRecognizer.default_slants)
    assert "runner.py's greedy tokens equal Keras' on 6 probe inputs" in printed


_RUN_WITHOUT_TENSORFLOW = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import runner
from im2latex_encoder.recognizer.stroke_tokens import slanted
expressions = [[np.array(s, np.float64) for s in e] for e in json.load(open(sys.argv[2]))]
image = np.load(sys.argv[3], allow_pickle=False)
recognizer = runner.ExportedRecognizer(sys.argv[1])
tokens = recognizer.tokens_of(expressions)
views = [recognizer.tokens_of(slanted(expressions, s)) for s in (2.0, -2.0, 1.0)]
out = {
    "strokes": recognizer.recognize_strokes(expressions, beam_width=1, batch_size=2),
    "beam": recognizer.recognize_strokes(expressions, beam_width=3, batch_size=2),
    "beam_alone": [
        recognizer.latex(recognizer.beam_ids(
            {k: v[None] for k, v in recognizer.tokens_of([e])[0].items()}, 3,
            symbol_count_weight=0)[0])
        for e in expressions
    ],
    "beam_slanted": [
        recognizer.latex(recognizer.beam_ids(
            {k: np.stack([t[k] for t in [tokens[i], *(view[i] for view in views)]])
             for k in ("features", "geometry")}, 3, symbol_count_weight=0,
            views=1 + len(views))[0])
        for i in range(len(expressions))
    ],
    "image": recognizer.recognize_images([image], beam_width=1),
    "decode": recognizer.decode([image]),
    "loaded": sorted({m.split(".")[0] for m in sys.modules} & {"keras", "tensorflow", "jax"}),
}
print(json.dumps(out))
"""


def test_runner_reads_what_keras_reads_without_tensorflow(exported, keras_latex, tmp_path):
    out, _, _ = exported
    strokes = tmp_path / "expressions.json"
    strokes.write_text(json.dumps([[s.tolist() for s in e] for e in _expressions()]))
    image = tmp_path / "image.npy"
    np.save(image, _image())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND")}
    completed = subprocess.run(
        [sys.executable, "-c", _RUN_WITHOUT_TENSORFLOW, str(out), str(strokes), str(image)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report.pop("loaded") == []
    assert report.pop("decode") == keras_latex["image"]
    assert report == keras_latex
    assert keras_latex["beam_slanted"] != keras_latex["beam_alone"], "views changed nothing"


def test_compare_inkml_reads_each_file_with_keras_and_the_runner(exported, inkml_dir):
    _, printed, errors = exported
    count = len(STROKE_COUNTS)
    assert f"same LaTeX as Keras on {count} of {count} InkML files in {inkml_dir} (100.00%)" in (
        printed
    )
    assert "broken.inkml" in errors and "differs:" not in errors


def test_compare_inkml_by_beam_search(exported, preset_dir, inkml_dir):
    from im2latex_encoder.export.recognizer import stroke_export_agreement

    out, _, _ = exported
    files = sorted(inkml_dir.glob("*.inkml"))
    report = stroke_export_agreement(preset_dir, out, files, beam_width=3)
    assert (report["files"], report["same"]) == (len(STROKE_COUNTS), len(STROKE_COUNTS))
    assert [name for name, _ in report["unreadable"]] == [str(inkml_dir / "broken.inkml")]


def test_compare_inkml_is_refused_before_loading(preset_dir, tmp_path, capsys):
    out = str(tmp_path / "exported")
    argv = ["export", "--model", str(preset_dir), "--format", "onnx", "--out", out]
    assert main([*argv, "--compare-inkml", str(tmp_path / "missing")]) == 2
    assert "--compare-inkml expects a folder of InkML files" in capsys.readouterr().err
    symbol = ["export", "--model", "crohme101", "--format", "onnx", "--out", out]
    assert main([*symbol, "--compare-inkml", str(tmp_path)]) == 2
    assert "applies to a stroke recognizer's export" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_parity_check_writes_nothing(preset_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(export_recognizer_module, "FEATURE_RELATIVE_TOLERANCE", -1.0)
    out = tmp_path / "exported"
    with pytest.raises(ExportError, match="stroke features differ from Keras'"):
        export_recognizer(preset_dir, out, format="onnx", probe_strokes=_expressions()[:1])
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_the_runner_refuses_stroke_methods_on_an_image_export():
    from im2latex_encoder.export.runner import ExportedRecognizer

    runner = ExportedRecognizer.__new__(ExportedRecognizer)
    runner.kind = "recognizer"
    with pytest.raises(ValueError, match="needs a StrokeRecognizer's export"):
        runner.tokens_of([[np.zeros((2, 2))]])


def test_an_ensemble_exports_and_the_runner_reads_as_keras(tmp_path):
    """Two members joined (`from_members`), saved as float16: the export's graphs average the
    members as Keras does, greedy and by beam search, with no change to the runner."""
    from im2latex_encoder.export.runner import ExportedRecognizer

    first, second = _tiny_stroke_recognizer(3), _tiny_stroke_recognizer(4)
    second.encoder.set_weights(first.encoder.get_weights())
    second.symbol_head.set_weights(first.symbol_head.get_weights())
    preset = tmp_path / "joined"
    StrokeRecognizer.from_members([first, second]).save_to_preset(preset, weights_dtype="float16")
    model = StrokeRecognizer.from_preset(os.fspath(preset))
    result = export_recognizer(preset, tmp_path / "exported", format="onnx")
    manifest = json.loads((result.path / "export.json").read_text())
    assert manifest["num_layers"] == 2  # each member's one block, its cache and cross
    runner = ExportedRecognizer(result.path)
    expressions = _expressions()
    for width in (1, 3):
        read = model.recognize_strokes(expressions, beam_width=width, batch_size=2)
        assert runner.recognize_strokes(expressions, beam_width=width, batch_size=2) == read
    alone = model.member(0).recognize_strokes(expressions, beam_width=1, batch_size=2)
    assert alone != model.recognize_strokes(expressions, beam_width=1, batch_size=2)


def test_the_runner_cuts_images_as_the_model_does(tmp_path):
    """A model that reads images cut at their junctions (`split_junctions`) exports the setting,
    and the runner cuts a picture of touching strokes into the same tokens."""
    import cv2

    from im2latex_encoder.export.runner import ExportedRecognizer

    model = _tiny_stroke_recognizer()
    cutting = StrokeRecognizer.from_config({**model.get_config(), "split_junctions": True})
    cutting.set_weights(model.get_weights())
    cutting.save_to_preset(tmp_path / "cutting")
    result = export_recognizer(tmp_path / "cutting", tmp_path / "exported", format="onnx")
    assert json.loads((result.path / "export.json").read_text())["split_junctions"] is True
    runner = ExportedRecognizer(result.path)
    image = _image()
    cv2.polylines(image, [np.array([[5, 25], [165, 25]], np.int32)], False, 255, 2)  # all touch
    assert runner.split_junctions is True
    read = cutting.recognize_images([image], beam_width=1)
    assert runner.recognize_images([image], beam_width=1) == read
    assert read != model.recognize_images([image], beam_width=1)  # one component, read whole


def test_the_runner_orders_image_tokens_as_the_model_does(tmp_path):
    """A model that reads images in layout order (`image_order`) exports the setting, and the
    runner puts a fraction's bar before its numerator as the model does."""
    import cv2

    from im2latex_encoder.export.runner import ExportedRecognizer
    from im2latex_encoder.recognizer.stroke_components import image_tokens

    model = _tiny_stroke_recognizer()
    layout = StrokeRecognizer.from_config({**model.get_config(), "image_order": "layout"})
    layout.set_weights(model.get_weights())
    layout.save_to_preset(tmp_path / "layout")
    result = export_recognizer(tmp_path / "layout", tmp_path / "exported", format="onnx")
    assert json.loads((result.path / "export.json").read_text())["image_order"] == "layout"
    runner = ExportedRecognizer(result.path)
    assert runner.image_order == "layout"
    image = np.zeros((90, 120), np.uint8)  # a numerator, a bar, a denominator, a plus
    for stroke in ([[30, 10], [30, 35]], [[10, 45], [60, 45]], [[25, 55], [40, 80]]):
        cv2.polylines(image, [np.array(stroke, np.int32)], False, 255, 2)
    cv2.polylines(image, [np.array([[80, 45], [110, 45]], np.int32)], False, 255, 2)
    tokens = image_tokens(image, order="layout")
    assert np.ptp(np.concatenate(tokens[0])[:, 0]) > 40  # the bar first
    read = layout.recognize_strokes([tokens], beam_width=1)
    assert layout.recognize_images([image], beam_width=1) == read
    assert runner.recognize_images([image], beam_width=1) == read
