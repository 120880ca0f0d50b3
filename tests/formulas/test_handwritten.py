"""Handwritten expressions: reading InkML, scaling, drawing and caching."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from im2latex_encoder.formulas.handwritten import (
    STROKE_TO_SYMBOL,
    ExpressionAugment,
    InkExpressions,
    load_expressions,
    read_crohme_expressions,
    reference_size,
    save_expressions,
)
from im2latex_encoder.recognizer.preprocessor import symbol_size_for
from inkml_fixtures import build_inkml

# "x = 1": an x of two strokes, a two-stroke "=", a "1"; every symbol 10 units tall.
X_EQUALS_1 = [
    [(0, 0), (10, 10)],
    [(10, 0), (0, 10)],
    [(15, 4), (25, 4)],
    [(15, 7), (25, 7)],
    [(30, 0), (30, 10)],
]
GROUPS = [("x", [0, 1]), ("=", [2, 3]), ("1", [4])]


def _ink_height(image):
    rows = np.nonzero((image > 127).any(axis=1))[0]
    return rows.max() - rows.min() + 1


def _write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as handle:
        handle.write(data)


def test_reference_size_is_the_median_symbol_or_scaled_stroke():
    symbols = [
        [np.array(X_EQUALS_1[0], float), np.array(X_EQUALS_1[1], float)],
        [np.array(X_EQUALS_1[2], float), np.array(X_EQUALS_1[3], float)],
        [np.array(X_EQUALS_1[4], float)],
    ]
    strokes = [np.array(t, float) for t in X_EQUALS_1]
    assert reference_size(strokes, symbols) == 10.0
    assert reference_size(strokes) == pytest.approx(10.0 * STROKE_TO_SYMBOL)
    assert reference_size([np.zeros((1, 2))]) == 1.0  # a lone dot


def test_expressions_are_scaled_to_their_typical_symbol_and_drawn_at_symbol_size():
    strokes = [np.array(t, float) * 7 + 100 for t in X_EQUALS_1]  # other units, other origin
    symbols = [[strokes[i] for i in members] for _, members in GROUPS]
    data = InkExpressions.from_strokes([strokes], names=["e"], truths=["$x=1$"], symbols=[symbols])
    assert data.size(0) == (3.0, 1.0)
    assert data.points.min() == 0.0
    image = data.render(0, symbol_size=20, line_width=2)
    # The typical symbol is 20 px (plus the pen), the whole expression 3 symbols wide.
    assert abs(_ink_height(image) - 22) <= 1
    assert image.shape == data.image_shape(0, 20, line_width=2)
    # Too big for max_shape: scaled down to fit, never cropped.
    small = data.render(0, symbol_size=200, max_shape=(64, 128))
    assert small.shape[0] <= 64 and small.shape[1] <= 128 and small.max() == 255
    assert symbol_size_for(48) == pytest.approx(36.4)


def test_augmentation_is_seeded_and_changes_the_drawing():
    strokes = [np.array(t, float) for t in X_EQUALS_1]
    data = InkExpressions.from_strokes([strokes], names=["e"], truths=[""])
    augment = ExpressionAugment(rotation=5, slant=0.2, aspect=0.1, scale=0.1, line_width=(1.0, 3.0))
    plain = data.render(0, 20)
    first = data.render(0, 20, augment=augment, rng=np.random.default_rng(3))
    again = data.render(0, 20, augment=augment, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(first, again)
    assert first.shape != plain.shape or (first != plain).any()
    with pytest.raises(ValueError, match="needs an `rng`"):
        data.render(0, 20, augment=augment)


def test_subset_strokes_and_save_load_round_trip(tmp_path):
    expressions = [[np.array(t, float) for t in X_EQUALS_1[:k]] for k in (1, 3, 5)]
    data = InkExpressions.from_strokes(expressions, names=["a", "b", "c"], truths=["1", "2", "3"])
    part = data.subset([2, 0])
    assert part.names == ("c", "a") and part.truths == ("3", "1")
    assert len(part.strokes(0)) == 5 and len(part.strokes(1)) == 1
    np.testing.assert_array_equal(part.strokes(0)[4], data.strokes(2)[4])
    path = tmp_path / "e.npz"
    save_expressions(path, data)
    back = load_expressions(path)
    np.testing.assert_array_equal(back.points, data.points)
    assert back.names == data.names and back.truths == data.truths
    assert os.listdir(tmp_path) == ["e.npz"]  # no temporaries left
    np.savez(tmp_path / "other.npz", images=np.zeros(3))
    with pytest.raises(ValueError, match=r"missing array\(s\) \['format_version', 'points'"):
        load_expressions(tmp_path / "other.npz")
    from im2latex_encoder.data.npz import save_npz

    save_npz(tmp_path / "ink.npz", {"points": np.zeros((1, 2))}, kind="ink", version=1)
    with pytest.raises(
        ValueError, match="expected a file of kind 'expressions'. Received: kind 'ink'"
    ):
        load_expressions(tmp_path / "ink.npz")


def test_expressions_written_before_the_shared_npz_format_still_load(tmp_path):
    data = InkExpressions.from_strokes(
        [[np.array(t, float) for t in X_EQUALS_1]], names=["a"], truths=["$x=1$"]
    )
    # The layout `save_expressions` wrote before it used `data.npz` (no `kind` array).
    np.savez_compressed(
        tmp_path / "old.npz",
        format_version=np.array(1),
        points=data.points,
        stroke_sizes=data.stroke_sizes,
        expression_strokes=data.expression_strokes,
        names=np.array(json.dumps(list(data.names))),
        truths=np.array(json.dumps(list(data.truths))),
        settings=np.array(json.dumps(data.settings)),
        source_hash=np.array(data.source_hash),
        report=np.array(json.dumps(data.report)),
    )
    back = load_expressions(tmp_path / "old.npz")
    np.testing.assert_array_equal(back.points, data.points)
    assert (back.names, back.truths, back.settings) == (data.names, data.truths, data.settings)
    assert back.strokes(0)[2].tolist() == data.strokes(0)[2].tolist()


def test_read_crohme_expressions_counts_every_file(tmp_path):
    source = tmp_path / "crohme"
    _write(source / "A", "e1.inkml", build_inkml(X_EQUALS_1, ui="e1", truth="$x=1$", groups=GROUPS))
    _write(source / "B", "e2.inkml", build_inkml(X_EQUALS_1[:2], ui="e2"))  # no truth, no groups
    _write(source / "B", "broken.inkml", b"<ink><trace>1 2")
    _write(source / "B", "notes.txt", b"not ink")
    cache = tmp_path / "cache.npz"
    data = read_crohme_expressions(source, progress=False, workers=1, cache=cache)
    assert data.names == ("e1", "e2") and data.truths == ("$x=1$", "")
    assert data.report["files"] == 3 and data.report["read"] == 2
    assert list(data.report["skipped"]) == ["broken.inkml"]
    assert data.report["without_truth"] == 1
    assert data.size(0) == (3.0, 1.0)  # scaled by its labelled symbols
    # Reused while the files are unchanged, rebuilt when one changes.
    stamp = os.stat(cache).st_mtime_ns
    assert (
        read_crohme_expressions(source, progress=False, workers=1, cache=cache).names == data.names
    )
    assert os.stat(cache).st_mtime_ns == stamp
    (source / "B" / "broken.inkml").unlink()
    again = read_crohme_expressions(source, progress=False, workers=1, cache=cache)
    assert again.report["files"] == 2 and not again.report["skipped"]
    with pytest.raises(FileNotFoundError):
        read_crohme_expressions(tmp_path / "missing", progress=False)
    (source / "B" / "e2.inkml").unlink()
    (source / "A" / "e1.inkml").write_bytes(b"")
    with pytest.raises(ValueError, match="No readable InkML expression"):
        read_crohme_expressions(source, progress=False, workers=1)


def test_real_crohme_expressions_read_and_normalise(crohme_dir, tmp_path):
    from im2latex_encoder.formulas.crohme_truth import (
        normalize_crohme_truth,
        read_crohme_dictionary,
    )

    files = sorted((crohme_dir / "test2016").glob("*.inkml"))[:12]
    for path in files:  # a temporary copy of a few files, never kept
        shutil.copy(path, tmp_path / path.name)
    data = read_crohme_expressions(tmp_path, progress=False, workers=1)
    assert len(data) == 12 and not data.report["skipped"]
    dictionary = set(read_crohme_dictionary(crohme_dir / "dictionary.txt"))
    for index in range(len(data)):
        tokens = normalize_crohme_truth(data.truths[index])
        assert tokens and set(tokens) <= dictionary
        image = data.render(index, 36.4)
        # A typical symbol 36 px tall: an expression is at least one symbol tall.
        assert 30 <= image.shape[0] <= 256 and image.shape[1] <= 1024
