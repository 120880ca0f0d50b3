"""`StrokeRecognizer`: readings that do not depend on the ink's scale or place, bad input
refused clearly, and every saved form (`.keras`, preset, shipped name) loading the same model.

One tiny recognizer with random weights (a 4-filter classifier, 16-wide encoder and decoder)
is shared by the module; its readings depend on every stroke's features.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from im2latex_encoder import presets
from im2latex_encoder.recognizer.saving import load_formula_recognizer, resolve_formula_model
from im2latex_encoder.recognizer.stroke_recognizer import StrokeRecognizer
from inkml_fixtures import build_inkml
from model_checks import tiny_stroke_recognizer


def _line(start, end, points=8):
    return np.linspace(start, end, points)


EXPRESSION = [
    _line([0, 0], [10, 12]),
    _line([10, 0], [0, 12]),
    _line([16, 6], [26, 6]),
    _line([21, 1], [21, 11]),
    _line([32, 0], [32, 12]),
]
OTHER = [_line([0, 0], [0, 12]), _line([6, 0], [14, 0]), _line([14, 0], [8, 12])]


@pytest.fixture(scope="module")
def model():
    return tiny_stroke_recognizer(seed=2)  # a seed whose readings differ between the two


@pytest.fixture(scope="module")
def readings(model):
    return model.recognize_strokes([EXPRESSION, OTHER])


def _outputs(model, strokes):
    token = model.tokens_of([strokes])[0]
    inputs = {key: value[None] for key, value in token.items()}
    inputs["ids"] = np.array([[1, 4, 5]], np.int32)
    return {key: keras.ops.convert_to_numpy(value) for key, value in model(inputs).items()}


def _check_frozen(loaded, model):
    """The classifier stays frozen when the model is rebuilt from its configuration."""
    frozen = [*loaded.encoder.variables, *loaded.symbol_head.variables]
    assert frozen and not any(variable.trainable for variable in frozen)
    assert len(loaded.trainable_variables) == len(model.trainable_variables)


def test_a_reading_does_not_depend_on_the_ink_s_scale_or_place(model, readings):
    assert len(readings) == 2 and all(isinstance(latex, str) for latex in readings)
    assert readings[0] != readings[1]  # the reading depends on the strokes
    moved = [
        [stroke * scale + shift for stroke in expression]
        for expression, scale, shift in (
            (EXPRESSION, 10.0, [300.0, -40.0]),
            (OTHER, 0.05, [-7.0, 2.0]),
        )
    ]
    assert model.recognize_strokes(moved) == readings
    assert model.recognize_strokes(moved, beam_width=3) == model.recognize_strokes(
        [EXPRESSION, OTHER], beam_width=3
    )
    assert model.stroke_symbols(moved[0]) == model.stroke_symbols(EXPRESSION)
    assert len(model.stroke_symbols(EXPRESSION)) == len(EXPRESSION)
    assert set(model.stroke_symbols(EXPRESSION)) <= set(model.labels)
    # Read one at a time or together (padded to the longest): the same answers.
    assert [model.recognize_strokes([e])[0] for e in (EXPRESSION, OTHER)] == readings


def test_expressions_of_different_lengths_read_together_as_each_reads_alone(model):
    from im2latex_encoder.recognizer.decoding import beam_search_decode, greedy_decode
    from im2latex_encoder.recognizer.stroke_recognizer import pad_tokens

    expressions = [EXPRESSION, OTHER, EXPRESSION[:4], OTHER[:1], EXPRESSION[1:]]
    tokens = model.tokens_of(expressions)
    batch = pad_tokens(tokens)
    assert batch["padding_mask"].sum(axis=1).tolist() == [5, 3, 4, 1, 4]
    # The token encoder: every real stroke's vector is the one it gets alone; the heads too.
    memory = keras.ops.convert_to_numpy(model.encode(batch))
    for row, token in enumerate(tokens):
        alone = keras.ops.convert_to_numpy(model.encode(pad_tokens([token])))[0]
        np.testing.assert_allclose(memory[row, : len(alone)], alone, atol=1e-5)
    prior, alone_priors = (
        model.symbol_count_prior(batch, 1.0),
        [model.symbol_count_prior(pad_tokens([token]), 1.0) for token in tokens],
    )
    for row, single in enumerate(alone_priors):
        width = single.end_scores.shape[1]
        np.testing.assert_allclose(prior.end_scores[row, :width], single.end_scores[0], atol=1e-5)
    # Decoding: one call on the padded batch reads what one call per expression reads.
    for options in (
        {"beam_width": 1},
        {"beam_width": 3},
        {"beam_width": 3, "coverage_weight": 0.5},
        {"beam_width": 2, "symbol_count_weight": 0, "latex_grammar": False},
    ):
        together = model.recognize_token_ids(tokens, **options)
        each = [model.recognize_token_ids([token], **options)[0] for token in tokens]
        assert together == each, options
        assert model.recognize_token_ids(tokens, batch_size=2, **options) == each, options
    # The reference (uncached) decoder reads the mask as the cached steps do.
    for decode in (greedy_decode, beam_search_decode):
        assert decode(model, batch, use_cache=False) == decode(model, batch)
    with pytest.raises(ValueError, match="at least one expression's tokens. Received: \\[\\]"):
        pad_tokens([])
    with pytest.raises(
        ValueError, match="`batch_size` must be a positive int. Received: batch_size=0"
    ):
        model.recognize_token_ids(tokens, batch_size=0)


def test_views_average_the_decoder_over_the_ink_and_each_slant(model):
    from im2latex_encoder.recognizer.decoding import beam_search_decode, greedy_decode
    from im2latex_encoder.recognizer.stroke_recognizer import pad_tokens
    from im2latex_encoder.recognizer.stroke_tokens import slanted

    expressions = [EXPRESSION, OTHER, EXPRESSION[:3]]
    tokens = model.tokens_of(expressions)
    leaning = model.tokens_of(slanted(expressions, 0.3))
    assert not np.allclose(leaning[0]["features"], tokens[0]["features"])  # a real other view
    # A view identical to the ink changes no reading.
    for options in ({"beam_width": 1}, {"beam_width": 3}):
        assert model.recognize_token_ids(tokens, views=[tokens], **options) == (
            model.recognize_token_ids(tokens, **options)
        )
    # The heads' prior over an expression's identical views is its prior alone.
    batch = pad_tokens(tokens)
    twice = pad_tokens([token for token in tokens for _ in range(2)])
    alone, viewed = (
        model.symbol_count_prior(batch, 1.0),
        model.symbol_count_prior(twice, 1.0, views=2),
    )
    np.testing.assert_allclose(viewed.end_scores, alone.end_scores, atol=1e-6)
    np.testing.assert_allclose(viewed.class_more_scores, alone.class_more_scores, atol=1e-6)
    # With another view: each step averages the two, the expression's views in adjacent rows.
    both = pad_tokens([view[i] for i in range(3) for view in (tokens, leaning)])
    plain = {"symbol_count_weight": 0, "latex_grammar": False}
    assert model.recognize_token_ids(tokens, views=[leaning], beam_width=1, **plain) == (
        greedy_decode(model, both, views=2)
    )
    assert model.recognize_token_ids(tokens, views=[leaning], beam_width=3, **plain) == (
        beam_search_decode(model, both, beam_width=3, views=2)
    )
    read = model.recognize_stroke_tokens(expressions, beam_width=3, slants=(0.3,))
    ids = model.recognize_token_ids(tokens, views=[leaning], beam_width=3)
    assert read == [model.vocabulary.decode_tokens(row) for row in ids]
    # A model's `default_slants` are what beam search reads with unless told; greedy, never.
    assert model.default_slants == ()
    model.default_slants = (0.3,)
    try:
        assert model.recognize_stroke_tokens(expressions, beam_width=3) == read
        greedy = model.recognize_stroke_tokens(expressions, beam_width=1)
        assert greedy == model.recognize_stroke_tokens(expressions, beam_width=1, slants=())
    finally:
        del model.default_slants
    with pytest.raises(ValueError, match="same stroke counts. Received: view 0 of 2 expressions"):
        model.recognize_token_ids(tokens, views=[leaning[:2]])
    with pytest.raises(ValueError, match=r"stroke counts \[5, 3, 5\] for \[5, 3, 3\]"):
        model.recognize_token_ids(tokens, views=[[*leaning[:2], leaning[0]]])
    with pytest.raises(ValueError, match="pass either `views` or a `coverage_weight`"):
        model.recognize_token_ids(tokens, views=[leaning], beam_width=2, coverage_weight=0.5)


def test_bad_input_is_refused_saying_what_was_expected(model):
    with pytest.raises(ValueError, match="must be finite. Received NaN or infinity"):
        model.recognize_strokes([[EXPRESSION[0], np.array([[0.0, 1.0], [np.nan, 2.0]])]])
    with pytest.raises(ValueError, match="must be finite"):
        model.recognize_strokes([[np.array([[0.0, 0.0], [np.inf, 2.0]])]])
    with pytest.raises(ValueError, match="at least one stroke with a point. Received none"):
        model.recognize_strokes([[]])
    with pytest.raises(ValueError, match="at least one stroke with a point"):
        model.recognize_strokes([EXPRESSION, [np.zeros((0, 2))]])
    with pytest.raises(ValueError, match=r"\(n, 2\) array of X, Y. Received: shape \(3, 3\)"):
        model.recognize_strokes([[np.zeros((3, 3))]])
    with pytest.raises(
        ValueError, match="`beam_width` must be a positive int. Received: beam_width=0"
    ):
        model.recognize_strokes([EXPRESSION], beam_width=0)


def test_beam_search_counts_symbols_against_the_strokes_joins(model):
    from im2latex_encoder.recognizer.decoding import beam_search_decode
    from im2latex_encoder.recognizer.latex_grammar import LatexGrammar, chain_processors

    tokens = model.tokens_of([EXPRESSION, OTHER])
    batch = {key: np.stack([t[key] for t in tokens[:1]]) for key in ("features", "geometry")}
    alone = beam_search_decode(model, batch, beam_width=3)
    plain = {"symbol_count_weight": 0, "latex_grammar": False}
    assert model.recognize_token_ids(tokens[:1], beam_width=3, **plain) == alone
    prior = model.symbol_count_prior(batch, 1.0)
    assert prior.end_scores.shape == (1, len(EXPRESSION) + 2)
    assert prior.class_more_scores.shape == (1, len(model.labels), len(EXPRESSION) + 2)
    assert model.recognize_token_ids(
        tokens[:1], beam_width=3, latex_grammar=False
    ) == beam_search_decode(model, batch, beam_width=3, logits_processor=prior)
    # By default beam search also keeps to the LaTeX grammar (after the prior).
    grammar = LatexGrammar(model.vocabulary.tokens, model.vocabulary.end_id, model.max_length)
    assert model.recognize_token_ids(tokens[:1], beam_width=3) == beam_search_decode(
        model, batch, beam_width=3, logits_processor=chain_processors(prior, grammar)
    )
    classes = model.token_classes
    assert [model.labels[c] for c in classes if c >= 0] == [
        t for t, c in zip(model.vocabulary.tokens, classes) if c >= 0
    ]
    assert (classes >= 0).tolist() == [
        token not in ("<pad>", "<start>", "<end>", "<unk>") for token in model.vocabulary.tokens
    ]
    # Greedy decoding reads without the prior unless asked.
    assert model.recognize_token_ids(tokens, beam_width=1) == model.recognize_token_ids(
        tokens, beam_width=1, symbol_count_weight=0
    )
    assert model.symbol_count_prior(batch, 0) is None
    for bad in (-1.0, float("inf"), True):
        with pytest.raises(ValueError, match="`symbol_count_weight` must be a finite number"):
            model.recognize_token_ids(tokens, beam_width=2, symbol_count_weight=bad)


def test_keras_file_round_trip_in_safe_mode(model, readings, tmp_path):
    path = tmp_path / "strokes.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is StrokeRecognizer
    _check_frozen(loaded, model)
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(
        model.get_config(), sort_keys=True
    )
    for key, value in _outputs(model, EXPRESSION).items():
        np.testing.assert_allclose(_outputs(loaded, EXPRESSION)[key], value, atol=1e-5)
    assert loaded.recognize_strokes([EXPRESSION, OTHER]) == readings
    # `load_formula_recognizer` takes the file as it takes an image model's.
    assert load_formula_recognizer(path).recognize_strokes([EXPRESSION, OTHER]) == readings


def test_a_preset_loads_as_a_stroke_recognizer_checked(model, readings, tmp_path):
    folder = tmp_path / "recognizer"
    model.save_to_preset(str(folder))
    metadata = presets.preset_metadata(str(folder))
    assert metadata["kind"] == "stroke-recognizer"
    assert {"vocabulary.json", "stroke_drawing.json"} <= set(metadata["files"])
    loaded = load_formula_recognizer(folder)
    assert type(loaded) is StrokeRecognizer and loaded.drawing == model.drawing
    _check_frozen(loaded, model)
    assert loaded.vocabulary.tokens == model.vocabulary.tokens
    assert loaded.recognize_strokes([EXPRESSION, OTHER]) == readings
    # The drawing settings are read only once their checksum holds.
    settings = json.loads((folder / "stroke_drawing.json").read_text())
    (folder / "stroke_drawing.json").write_text(json.dumps({**settings, "fill": 0.5}))
    with pytest.raises(presets.PresetError, match="stroke_drawing.json has sha256"):
        load_formula_recognizer(folder)


@pytest.fixture
def shipped_root(tmp_path, monkeypatch):
    """A temporary `shipped_presets/` folder and registry without the formula models."""
    root = tmp_path / "shipped_presets"
    root.mkdir()
    names = ("crohme-formulas", "crohme-formulas-image")
    monkeypatch.setattr(presets, "SHIPPED_DIR", root)
    monkeypatch.setattr(
        presets, "_REGISTRY", {k: v for k, v in presets._REGISTRY.items() if k not in names}
    )
    monkeypatch.setattr(
        presets,
        "_REGISTERED_FOR",
        {k: set(v) for k, v in presets._REGISTERED_FOR.items() if k not in names},
    )
    return root


def test_shipped_as_crohme_formulas_it_is_the_default_formula_model(
    model, readings, shipped_root, tmp_path, capsys
):
    from im2latex_encoder.cli import main
    from im2latex_encoder.recognizer import formula_recognizer, stroke_recognizer
    from im2latex_encoder.recognizer.formula_recognizer import FormulaRecognizer
    from pretrain.ship import ship

    assert resolve_formula_model("crohme-formulas") == "crohme-formulas-image"
    model.save_to_preset(str(tmp_path / "recognizer"))
    ship(tmp_path / "recognizer", "crohme-formulas", 2, target_root=shipped_root)
    # Registered by its kind: for the stroke class, not for the image one.
    assert stroke_recognizer._register_shipped_presets() == ("crohme-formulas",)
    assert formula_recognizer._register_shipped_presets() == ()
    assert presets.list_presets(StrokeRecognizer, include_backbone=False) == ("crohme-formulas",)
    assert presets.list_presets(FormulaRecognizer, include_backbone=False) == ()
    assert resolve_formula_model("crohme-formulas") == "crohme-formulas"
    loaded = load_formula_recognizer("crohme-formulas")
    assert type(loaded) is StrokeRecognizer
    assert loaded.recognize_strokes([EXPRESSION, OTHER]) == readings
    assert StrokeRecognizer.from_preset("crohme-formulas").recognize_strokes([OTHER]) == [
        readings[1]
    ]

    # `recognize`'s default model is it: an InkML file reads as its strokes do.
    path = tmp_path / "expression.inkml"
    path.write_bytes(build_inkml([stroke.tolist() for stroke in EXPRESSION]))
    assert main(["recognize", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}\t{readings[0]}\n"
    # An image file reads by its components, as `recognize_images` reads its ink.
    import cv2

    from im2latex_encoder.data.symbol_files import read_image_gray
    from im2latex_encoder.recognizer.preprocessor import expression_ink

    paper = np.full((40, 120), 255, np.uint8)
    for stroke in EXPRESSION:
        cv2.polylines(paper, [np.rint(stroke * 2 + 5).astype(np.int32)], False, 0, 2)
    cv2.imwrite(str(tmp_path / "expression.png"), paper)
    (expected,) = model.recognize_images(
        [expression_ink(read_image_gray(tmp_path / "expression.png"))]
    )
    assert main(["recognize", str(tmp_path / "expression.png")]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'expression.png'}\t{expected}\n"


def _touching_image() -> np.ndarray:
    """A minus running into a 1, then a plus: two components, four strokes."""
    import cv2

    image = np.zeros((60, 120), np.uint8)
    for stroke in (
        [[10, 30], [40, 30]],
        [[40, 10], [40, 50]],
        [[60, 30], [100, 30]],
        [[80, 10], [80, 50]],
    ):
        cv2.polylines(image, [np.array(stroke, np.int32)], False, 255, 3, cv2.LINE_AA)
    return image


def test_an_image_is_cut_into_tokens_as_the_model_was_trained(model, tmp_path):
    from im2latex_encoder.recognizer.stroke_components import image_tokens

    image = _touching_image()
    whole, cut = image_tokens(image), image_tokens(image, split_junctions=True)
    assert (len(whole), len(cut)) == (2, 4)
    assert model.split_junctions is False  # the default: whole components, as before
    cutting = StrokeRecognizer.from_config({**model.get_config(), "split_junctions": True})
    cutting.set_weights(model.get_weights())
    for reader, tokens in ((model, whole), (cutting, cut)):
        assert reader.recognize_images([image], beam_width=1) == reader.recognize_strokes(
            [tokens], beam_width=1
        )
    # the two cuts give the same weights different inputs: their features differ
    assert len(cutting.tokens_of([cut])[0]["features"]) == 4
    cutting.save_to_preset(tmp_path / "cutting")
    assert StrokeRecognizer.from_preset(str(tmp_path / "cutting")).split_junctions is True


def test_an_image_is_read_in_the_token_order_the_model_was_trained_on(model, tmp_path):
    import cv2

    from im2latex_encoder.recognizer.stroke_components import image_tokens

    image = np.zeros((90, 120), np.uint8)  # a numerator, a bar below it, a denominator
    for stroke in ([[30, 10], [30, 35]], [[10, 45], [60, 45]], [[25, 55], [40, 80]]):
        cv2.polylines(image, [np.array(stroke, np.int32)], False, 255, 2)
    assert model.image_order == "left-to-right"  # the default, as before
    layout = StrokeRecognizer.from_config({**model.get_config(), "image_order": "layout"})
    layout.set_weights(model.get_weights())
    for reader, order in ((model, "left-to-right"), (layout, "layout")):
        tokens = image_tokens(image, order=order)
        assert reader.recognize_images([image], beam_width=1) == reader.recognize_strokes(
            [tokens], beam_width=1
        )
    # the orders differ here: left to right, the denominator (further left) comes before the
    # numerator; in the layout order, the bar, then the numerator, then the denominator
    lr, laid = image_tokens(image), image_tokens(image, order="layout")
    heights = [[float(np.concatenate(t)[:, 1].mean()) for t in ts] for ts in (lr, laid)]
    assert heights[0][1] > heights[0][2] and heights[1][0] < heights[1][2]
    assert heights[1][1] < heights[1][0] < heights[1][2]
    layout.save_to_preset(tmp_path / "layout")
    assert StrokeRecognizer.from_preset(str(tmp_path / "layout")).image_order == "layout"
    with pytest.raises(ValueError, match="`order` must be one of"):
        StrokeRecognizer.from_config({**model.get_config(), "image_order": "upside-down"})


def test_a_recognizer_without_writing_order_reads_any_order_of_the_strokes_the_same(
    model, tmp_path
):
    config = model.get_config()
    assert config["writing_order"] is True  # the default, as before
    drawing = {**config["drawing"], "views": ["alone", "window"]}
    as_set = StrokeRecognizer.from_config({**config, "drawing": drawing, "writing_order": False})
    in_order = StrokeRecognizer.from_config({**config, "drawing": drawing})
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype("float32") * 0.5 for w in as_set.get_weights()]
    as_set.set_weights(weights)
    in_order.set_weights(weights)
    shuffled = [EXPRESSION[k] for k in (3, 0, 4, 2, 1)]
    ids = np.array([[1, 4, 5]], np.int32)

    def memory(reader, strokes):
        token = reader.tokens_of([strokes])[0]
        inputs = {key: value[None] for key, value in token.items()}
        out = reader.token_encoder(inputs["features"], inputs["geometry"])
        return keras.ops.convert_to_numpy(out)[0], reader({**inputs, "ids": ids})

    (first, read), (second, reread) = memory(as_set, EXPRESSION), memory(as_set, shuffled)
    # each stroke's vector is the one it gets in any order, and so is the decoder's reading (up
    # to the float16 rounding of features batched in another order: 1 in 256 here)
    np.testing.assert_allclose(first[[3, 0, 4, 2, 1]], second, atol=5e-3)
    np.testing.assert_allclose(read["tokens"], reread["tokens"], atol=5e-3)
    assert (
        as_set.recognize_strokes([EXPRESSION, shuffled], beam_width=1)
        == [*as_set.recognize_strokes([EXPRESSION], beam_width=1)] * 2
    )
    # the same weights reading the writer's order do depend on it
    in_first, in_second = memory(in_order, EXPRESSION)[0], memory(in_order, shuffled)[0]
    assert np.abs(in_first[[3, 0, 4, 2, 1]] - in_second).max() > 0.1
    as_set.save_to_preset(tmp_path / "as-set")
    assert StrokeRecognizer.from_preset(str(tmp_path / "as-set")).writing_order is False
    with pytest.raises(ValueError, match=r"views that need none.*Received: views=\('alone', "):
        StrokeRecognizer.from_config({**config, "writing_order": False})
