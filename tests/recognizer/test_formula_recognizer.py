"""Tests for `im2latex_encoder.recognizer`: decoder, recognizer, decoding, metrics (tiny sizes)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from im2latex_encoder import FeatureGridNeck, SymbolClassifier, SymbolEncoder
from im2latex_encoder.recognizer import (
    DecoderBlock,
    FormulaDecoder,
    FormulaRecognizer,
    beam_search_decode,
    greedy_decode,
)
from model_checks import check_config_round_trip, check_keras_file_round_trip

VOCAB = 12


def tiny_model(**kwargs):
    options = dict(
        num_layers=1, num_heads=2, intermediate_dim=32, max_length=8, dropout=0.0, hidden_dim=16
    )
    options.update(kwargs)
    return FormulaRecognizer(SymbolEncoder(filters=(8, 8)), VOCAB, **options)


def random_inputs(batch=2, height=24, width=40, length=5, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.random((batch, height, width, 1)).astype("float32")
    ids = rng.integers(1, VOCAB, (batch, length)).astype("int32")
    return images, ids


def test_logits_shape_and_symbolic_shape():
    model = tiny_model()
    images, ids = random_inputs()
    logits = model((images, ids))
    assert tuple(logits.shape) == (2, 5, VOCAB)
    assert model.compute_output_shape(((2, 24, 40, 1), (2, 5))) == (2, 5, VOCAB)


def test_decoder_is_causal():
    """Changing a later token must not change the logits of earlier positions."""
    model = tiny_model()
    images, ids = random_inputs()
    changed = ids.copy()
    changed[:, 3] = (changed[:, 3] % (VOCAB - 1)) + 1
    a = keras.ops.convert_to_numpy(model((images, ids)))
    b = keras.ops.convert_to_numpy(model((images, changed)))
    np.testing.assert_allclose(a[:, :3], b[:, :3], atol=1e-5)
    assert not np.allclose(a[:, 3:], b[:, 3:], atol=1e-5)


def test_logits_depend_on_the_image():
    model = tiny_model()
    images, ids = random_inputs()
    a = keras.ops.convert_to_numpy(model((images, ids)))
    b = keras.ops.convert_to_numpy(model((np.zeros_like(images), ids)))
    assert not np.allclose(a, b, atol=1e-5)


def test_config_round_trip_of_layers_and_model():
    check_config_round_trip(DecoderBlock(16, num_heads=2, intermediate_dim=32))
    check_config_round_trip(FormulaDecoder(VOCAB, hidden_dim=16, num_layers=2, num_heads=2))
    check_config_round_trip(tiny_model(num_layers=2))


def test_keras_file_round_trip_gives_identical_logits(tmp_path):
    model = tiny_model()
    images, ids = random_inputs()
    loaded = check_keras_file_round_trip(model, (images, ids), tmp_path, atol=1e-6)
    assert isinstance(loaded, FormulaRecognizer)
    assert isinstance(loaded.encoder, SymbolEncoder) and loaded.neck.positional_encoding
    assert loaded.encoder.get_config() == model.encoder.get_config()
    assert greedy_decode(loaded, images) == greedy_decode(model, images)


def test_the_neck_must_give_a_sequence_of_the_decoder_s_width():
    with pytest.raises(ValueError, match="output='grid'"):
        FormulaRecognizer(SymbolEncoder(), VOCAB, neck=FeatureGridNeck(output="grid"))
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="output='grid'"):
        FormulaRecognizer(SymbolEncoder(output="grid", positional_encoding=True), VOCAB)
    with pytest.raises(ValueError, match="SymbolEncoder"):
        FormulaRecognizer(keras.layers.Dense(4), VOCAB)
    with pytest.raises(ValueError, match=r"input is 32 wide. Received: hidden_dim=16"):
        FormulaRecognizer(SymbolEncoder(), VOCAB, hidden_dim=16, neck=FeatureGridNeck(32))
    with pytest.raises(ValueError, match=r"Received: hidden_dim=0"):
        FormulaRecognizer(SymbolEncoder(), VOCAB, hidden_dim=0)


def test_the_recognizer_owns_its_neck_and_the_backbone_stays_the_stack():
    model = tiny_model()
    assert model.backbone is model.encoder and model.encoder.output_mode == "sequence"
    assert model.neck.projection_dim == 16 and model.neck.output_norm
    assert model.neck.positional_encoding, "the decoder knows where each feature is"
    images, _ = random_inputs()
    # The recognizer asks the backbone for its grid, whatever the backbone's `output`.
    expected = keras.ops.convert_to_numpy(model.neck(model.encoder.feature_grid(images)))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.encode(images)), expected, atol=1e-6
    )
    grid_backbone = SymbolEncoder.from_config(dict(model.encoder.get_config(), output="grid"))
    grid_backbone.set_weights(model.encoder.get_weights())
    on_grid = FormulaRecognizer(
        grid_backbone,
        VOCAB,
        neck=model.neck,
        **{name: getattr(model, name) for name in ("num_layers", "num_heads", "intermediate_dim")},
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(on_grid.encode(images)), expected, atol=1e-6
    )


def test_an_encoder_with_0_1_0_s_neck_arguments_still_makes_a_recognizer(tmp_path):
    with pytest.warns(DeprecationWarning, match="FeatureGridNeck"):
        encoder = SymbolEncoder(filters=(8, 8), projection_dim=16, positional_encoding=True)
    model = FormulaRecognizer(encoder, VOCAB, num_layers=1, num_heads=2, intermediate_dim=32)
    assert model.neck is None and model.hidden_dim == 16
    images, ids = random_inputs()
    loaded = check_keras_file_round_trip(model, (images, ids), tmp_path, atol=1e-6)
    assert loaded.neck is None and loaded.encoder.projection_dim == 16
    with pytest.raises(ValueError, match="already applies a neck"):
        FormulaRecognizer(encoder, VOCAB, neck=FeatureGridNeck(16))


def test_num_heads_must_divide_width():
    with pytest.raises(ValueError, match="num_heads=3"):
        DecoderBlock(16, num_heads=3)


def test_too_long_decoder_input_is_refused():
    model = tiny_model(max_length=4)
    images, ids = random_inputs(length=6)
    with pytest.raises(ValueError, match="at most 4 tokens"):
        model((images, ids))


def test_attention_weights_are_distributions_over_the_grid():
    model = tiny_model()
    images, ids = random_inputs()
    attention = model.attention_weights(images, ids)
    grid = model.encoder.grid_shape((24, 40))
    assert attention.shape == (2, 5, *grid)
    np.testing.assert_allclose(attention.sum(axis=(2, 3)), 1.0, atol=1e-5)
    assert (attention >= 0).all()


def test_freeze_encoder_freezes_convs_only():
    model = tiny_model().freeze_encoder()
    frozen = {id(v) for conv in model.encoder.convs for v in conv.weights}
    trainable = {id(v) for v in model.trainable_weights}
    assert frozen and not frozen & trainable
    assert model.neck.projection.weights and all(
        id(v) in trainable for v in model.neck.projection.weights
    )
    model.freeze_encoder(False)
    assert frozen <= {id(v) for v in model.trainable_weights}


def test_from_preset_loads_the_pretrained_convs(tmp_path):
    classifier = SymbolClassifier(SymbolEncoder(filters=(8, 8)))
    classifier.save_to_preset(str(tmp_path / "preset"))
    with pytest.warns(UserWarning, match=r"\(the neck and the decoder\).*start untrained"):
        model = FormulaRecognizer.from_preset(
            str(tmp_path / "preset"),
            vocabulary_size=VOCAB,
            hidden_dim=16,
            num_layers=1,
            num_heads=2,
            freeze_encoder=True,
        )
    assert len(model.encoder.convs) == 2, "both pretrained convs to compare"
    for ours, theirs in zip(model.encoder.convs, classifier.encoder.convs, strict=True):
        assert ours.weights, "a conv with weights"
        for a, b in zip(ours.weights, theirs.weights, strict=True):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
            )
    assert model.neck.positional_encoding and model.hidden_dim == 16
    assert model.neck.output_norm, "a decoder gets layer-normalized pretrained features"
    assert not model.encoder.convs[0].trainable
    assert model.neck.output_norm_layer.weights and all(
        v.trainable for v in model.neck.output_norm_layer.weights
    ), "new, so trained"


class _ScriptedModel:
    """Stands in for a FormulaRecognizer: fixed next-token log-probabilities per prefix.

    It has no decoder to cache, so it is decoded with ``use_cache=False``.
    """

    max_length = 6

    def __init__(self, table):
        self.table = table  # prefix tuple (after <start>) -> probabilities over 5 ids

    def encode(self, images):
        return keras.ops.convert_to_tensor(np.zeros((len(images), 1, 1), "float32"))

    def decode_logits(self, memory, ids):
        ids = np.asarray(ids)
        rows = []
        for row in ids:
            probabilities = self.table.get(tuple(row[1:].tolist()), [0.0, 0.0, 1.0, 0.0, 0.0])
            rows.append(np.log(np.asarray(probabilities) + 1e-12))
        logits = np.zeros((len(ids), ids.shape[1], 5), "float32")
        logits[:, -1] = rows
        return logits


def test_beam_search_finds_the_sequence_greedy_misses():
    # Greedy takes 3 (p=0.6) and is then unsure (0.5); beam finds 4 -> 4 (0.4 * 1.0 = 0.4 > 0.3).
    table = {
        (): [0, 0, 0, 0.6, 0.4],
        (3,): [0, 0, 0.5, 0.25, 0.25],
        (4,): [0, 0, 0, 0, 1.0],
        (3, 2): [0, 0, 1, 0, 0],
        (4, 4): [0, 0, 1, 0, 0],
    }
    model = _ScriptedModel(table)
    images = np.zeros((1, 4, 4, 1), "float32")
    assert greedy_decode(model, images, use_cache=False) == [[3]]
    ids, scores = beam_search_decode(
        model, images, beam_width=2, return_scores=True, use_cache=False
    )
    assert ids == [[4, 4]]
    assert scores[0] == pytest.approx(np.log(0.4), abs=1e-4)
    assert beam_search_decode(model, images, beam_width=1, use_cache=False) == greedy_decode(
        model, images, use_cache=False
    )


def test_decoding_stops_at_max_length_and_checks_arguments():
    model = _ScriptedModel({})  # always predicts <end> ... except we make it never end:
    model.table = {tuple([3] * n): [0, 0, 0, 1.0, 0] for n in range(10)}
    images = np.zeros((2, 4, 4, 1), "float32")
    assert greedy_decode(model, images, max_length=4, use_cache=False) == [[3] * 4, [3] * 4]
    assert beam_search_decode(model, images, beam_width=3, use_cache=False) == [[3] * 6] * 2
    with pytest.raises(ValueError, match="beam_width"):
        beam_search_decode(model, images, beam_width=0)
    with pytest.raises(ValueError, match="max_length"):
        greedy_decode(model, images, max_length=99)


@pytest.mark.slow
def test_a_tiny_model_learns_to_copy_a_formula_length():
    """Training works end to end: token accuracy rises on a toy image->tokens task."""
    from im2latex_encoder.formulas import FormulaDataset, Vocabulary
    from im2latex_encoder.recognizer import compile_recognizer, evaluate_recognizer

    keras.utils.set_random_seed(0)
    vocabulary = Vocabulary(["a", "b"])
    rng = np.random.default_rng(0)
    n = 64
    images = np.zeros((n, 24, 40), "float32")
    token_ids = np.zeros((n, 5), "int32")
    latex = []
    for index in range(n):
        bright = index % 2  # the image says which token to emit three times
        images[index, 4:20, 4:36] = bright
        images[index] += rng.random((24, 40)).astype("float32") * 0.1
        token = "b" if bright else "a"
        token_ids[index] = vocabulary.encode([token] * 3)
        latex.append(" ".join([token] * 3))
    data = FormulaDataset(
        images=images, token_ids=token_ids, vocabulary=vocabulary, latex=tuple(latex)
    )
    model = compile_recognizer(tiny_model(max_length=4), learning_rate=3e-3)
    before = evaluate_recognizer(model, data, decode=None)["token_accuracy"]
    model.fit(
        (images[..., None], token_ids[:, :-1]),
        token_ids[:, 1:],
        batch_size=16,
        epochs=15,
        verbose=0,
    )
    after = evaluate_recognizer(model, data, decode="greedy")
    assert after["token_accuracy"] > max(before, 0.9)
    assert after["exact_match"] > 0.9
    json.dumps(after)
