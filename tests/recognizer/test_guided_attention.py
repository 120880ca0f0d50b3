"""Guided attention (TAP) for the stroke recognizer: caption tokens aligned to the ink's
symbols (`align_symbols`), the batches' guide, and the loss that pulls the decoder's
cross-attention toward the strokes of the symbol it writes."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from im2latex_encoder.recognizer.stroke_training import (
    StrokeBatches,
    align_symbols,
    token_symbol_classes,
)
from im2latex_encoder.symbols import CROHME_SYMBOLS


def test_tokens_align_to_symbols_in_writing_order_and_structure_gets_none():
    vocabulary = ["<pad>", "<start>", "<end>", "<unk>", "x", "2", "^", "{", "}", "\\frac", "-"]
    classes = token_symbol_classes(vocabulary)
    assert [CROHME_SYMBOLS[c] for c in classes[[4, 5, 9, 10]]] == ["x", "2", "-", "-"]
    assert (classes[[0, 1, 2, 3, 6, 7, 8]] == -1).all()
    cls = {name: CROHME_SYMBOLS.index(name) for name in ("x", "2", "-")}
    # ink, in writing order: x (two strokes), 2, a minus, x
    labels = np.array([cls["x"], cls["x"], cls["2"], cls["-"], cls["x"]])
    groups = np.array([0, 0, 1, 2, 3])
    # caption: x ^ { 2 } - x   (ids)
    target = [4, 6, 7, 5, 8, 10, 4]
    assert align_symbols(target, classes, labels, groups).tolist() == [0, -1, -1, 1, -1, 2, 3]
    # a token whose class has no symbol left in the ink gets none
    assert align_symbols([5, 5], classes, labels, groups).tolist() == [1, -1]


def _batches(token_classes):
    x, y, plus = (CROHME_SYMBOLS.index(c) for c in ("x", "y", "+"))
    features = np.zeros((6, 3), np.float16)
    return StrokeBatches(
        [(features, np.zeros((6, 12), np.float32))],
        np.array([3, 3]),
        [[4, 6, 5], [5, 6, 5]],  # x + y ; y + y   (vocabulary: x=4, y=5, +=6)
        np.array([x, plus, y, y, plus, y]),
        np.array([0, 1, 2, 0, 1, 2]),
        batch_size=2,
        shuffle=False,
        token_classes=token_classes,
    )


def test_batches_carry_a_guide_only_when_asked():
    classes = token_symbol_classes(["<pad>", "<start>", "<end>", "<unk>", "x", "y", "+"])
    _, y = _batches(classes)[0]
    guide = y["guide"]
    assert guide.shape == (2, 4, 3)  # batch, next tokens (3 + <end>), strokes
    assert guide[0].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert guide[1].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert "guide" not in _batches(None)[0][1]


def test_the_guided_loss_is_tracked_and_training_moves_attention_to_the_guided_strokes():
    from im2latex_encoder.recognizer.stroke_recognizer import StrokeRecognizer
    from model_checks import tiny_stroke_recognizer

    keras.utils.set_random_seed(0)
    base = tiny_stroke_recognizer(("x", "y", "+"))
    config = base.get_config()
    config["auxiliary_weights"] = {"symbols": 0.0, "joins": 0.0, "attention": 1.0}
    model = StrokeRecognizer.from_config(config)
    rng = np.random.default_rng(0)
    inputs = {
        "features": rng.normal(size=(4, 3, model.feature_dim)).astype("float32"),
        "geometry": rng.normal(size=(4, 3, 12)).astype("float32"),
        "ids": np.array([[1, 4, 6, 5]] * 4, np.int32),
    }
    guide = np.zeros((4, 4, 3), np.float32)
    guide[:, 0, 2] = guide[:, 1, 0] = guide[:, 2, 1] = 1.0  # an arbitrary alignment
    targets = {
        "tokens": np.array([[4, 6, 5, 2]] * 4, np.int32),
        "symbols": np.full((4, 3), -1, np.int32),
        "joins": np.full((4, 3), -1, np.int32),
        "guide": guide,
    }

    def guided_mass():
        attention = keras.ops.convert_to_numpy(model(inputs)["attention"])
        return float((attention * guide).sum(-1)[:, :3].mean())

    before = guided_mass()
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    history = model.fit(inputs, targets, epochs=30, batch_size=4, verbose=0)
    assert "attention_loss" in history.history
    assert history.history["attention_loss"][-1] < history.history["attention_loss"][0]
    assert guided_mass() > max(before, 0.5)
    # without the weight the model has no attention output and no attention loss
    assert "attention" not in base(inputs)
    assert "attention_loss" not in [m.name for m in base.metrics]


@pytest.mark.parametrize("weight", [-0.5, float("nan")])
def test_train_strokes_refuses_a_negative_attention_weight(tmp_path, weight):
    from im2latex_encoder.recognizer.stroke_training import train_strokes

    with pytest.raises(ValueError, match="`attention_weight` must be >= 0. Received"):
        train_strokes(tmp_path / "none", tmp_path / "out", attention_weight=weight)


def test_beam_search_returns_every_beam_best_first_and_coverage_rescoring_picks_one():
    from im2latex_encoder.recognizer.decoding import beam_search_decode
    from model_checks import tiny_stroke_recognizer

    model = tiny_stroke_recognizer(seed=3)
    rng = np.random.default_rng(1)
    batch = {
        "features": rng.normal(size=(3, 4, model.feature_dim)).astype("float32"),
        "geometry": rng.normal(size=(3, 4, 12)).astype("float32"),
    }
    best = beam_search_decode(model, batch, beam_width=3)
    beams = beam_search_decode(model, batch, beam_width=3, return_beams=True)
    assert [candidates[0][0] for candidates in beams] == best
    for candidates in beams:
        assert 1 <= len(candidates) <= 3
        scores = [score for _, score in candidates]
        assert scores == sorted(scores, reverse=True)
    tokens = [{key: value[i] for key, value in batch.items()} for i in range(3)]
    # The beams above are the decoder's alone: so are these (no symbol-count prior, no
    # grammar).
    alone = {"symbol_count_weight": 0, "latex_grammar": False}
    plain = model.recognize_token_ids(tokens, beam_width=3, **alone)
    assert plain == best
    rescored = model.recognize_token_ids(tokens, beam_width=3, coverage_weight=0.25, **alone)
    # each reading is one of that expression's beams
    assert all(
        ids in [candidate for candidate, _ in candidates]
        for ids, candidates in zip(rescored, beams)
    )
