"""New training formulas from training ink (`rename_symbols`), image-token draws
(`ComponentDraws`), the batches that read them beside the ink (`StrokeBatches(variants=)`)
and validation held out by formula (`split_by_formula`)."""

from __future__ import annotations

import numpy as np
import pytest

from im2latex_encoder.recognizer.stroke_data import StrokeExpressions
from im2latex_encoder.recognizer.stroke_features import StrokeAugment
from im2latex_encoder.recognizer.stroke_synthesis import ComponentDraws, rename_symbols
from im2latex_encoder.recognizer.stroke_training import (
    StrokeBatches,
    component_annotation,
    join_targets,
    split_by_expression,
    split_by_formula,
)
from im2latex_encoder.symbols import CROHME_SYMBOLS

C = {name: CROHME_SYMBOLS.index(name) for name in ("x", "y", "k", "+", "2", "3", "s", "i", "n")}


def _bar(x0, y0=0.0, size=1.0):
    return np.array([[x0, y0], [x0 + size, y0 + size]])


def _data():
    """e0: x + x (x of two strokes); e1: 2 y (the donors); e2: s i n x, caption \\sin x."""
    expressions = [
        [_bar(0), _bar(0.2), _bar(2), _bar(4), _bar(4.2)],
        [_bar(0), _bar(2, size=2.0)],
        [_bar(0), _bar(1), _bar(2), _bar(4)],
    ]
    labels = [
        [C["x"], C["x"], C["+"], C["x"], C["x"]],
        [C["2"], C["y"]],
        [C["s"], C["i"], C["n"], C["x"]],
    ]
    groups = [[0, 0, 1, 2, 2], [0, 1], [0, 1, 2, 3]]
    data = StrokeExpressions.from_lists(
        expressions,
        names=["e0", "e1", "e2"],
        truths=["", "", ""],
        stroke_labels=labels,
        stroke_groups=groups,
    )
    captions = {"e0": ["x", "+", "x"], "e1": ["2", "y"], "e2": ["\\sin", "x"]}
    return data, captions


def test_a_rename_changes_caption_and_ink_together_with_another_writers_symbol():
    data, captions = _data()
    renamed, new = rename_symbols(data, captions, seed=0, probability=1.0, donors=[1])
    assert renamed.names[0] == "e0~renamed"
    # the only lowercase donor is e1's y (one stroke): both x become y, each one stroke
    assert new["e0~renamed"] == ["y", "+", "y"]
    assert renamed.labels(0).tolist() == [C["y"], C["+"], C["y"]]
    assert renamed.groups(0).tolist() == [0, 1, 2]
    strokes = renamed.strokes(0)
    # the donor's stroke, at the scale ratio of the two expressions, centred on each x
    for stroke, centre in zip((strokes[0], strokes[2]), (0.6, 4.6)):
        assert (stroke.min(0) + stroke.max(0)).tolist() == pytest.approx([2 * centre, 1.0])
    assert np.array_equal(strokes[1], data.strokes(0)[2])  # the + is the writer's own
    # e1's 2 has no digit donor (e1 is the only one, and it holds 2): y cannot be renamed to
    # itself, so e1 is copied unchanged under its own name
    assert renamed.names[1] == "e1" and new["e1"] == ["2", "y"]


def test_letters_of_a_function_name_are_not_renamed_when_the_caption_spells_it_as_one_token():
    data, captions = _data()
    renamed, new = rename_symbols(data, captions, seed=0, probability=1.0, donors=[1])
    # \sin x: the ink's s, i, n are not in the caption, so only x (once in each) is renamed
    assert new["e2~renamed"] == ["\\sin", "y"]
    assert renamed.labels(2).tolist() == [C["s"], C["i"], C["n"], C["y"]]


def test_renames_are_seeded_and_probability_zero_renames_nothing():
    data, captions = _data()
    first, _ = rename_symbols(data, captions, seed=4)
    again, _ = rename_symbols(data, captions, seed=4)
    assert np.array_equal(first.points, again.points) and first.names == again.names
    same, kept = rename_symbols(data, captions, seed=4, probability=0.0)
    assert same.names == data.names and np.array_equal(same.points, data.points)
    assert kept == captions
    with pytest.raises(ValueError, match=r"`probability` must be in \[0, 1\]. Received: 2"):
        rename_symbols(data, captions, probability=2)


def test_component_draws_give_image_tokens_seeded_and_at_random_sizes():
    data, _ = _data()
    expressions = [data.strokes(i) for i in range(len(data))]
    draws = ComponentDraws(expressions, seed=1)
    tokens = draws[1]
    assert len(tokens) == 2 and all(isinstance(part, np.ndarray) for part in tokens[0])
    assert [np.array_equal(a, b) for a, b in zip(draws[1][0], tokens[0])] == [True] * len(tokens[0])
    # e0's two-stroke x are crossing bars: each x is one component, with the + between
    assert len(draws[0]) == 3
    assert len(draws[0:2]) == 2
    with pytest.raises(ValueError, match="0 < low <= high. Received: \\(5, 1\\)"):
        ComponentDraws(expressions, symbol_sizes=(5, 1))


def test_component_tokens_carry_the_symbol_and_group_of_the_strokes_that_drew_them():
    data, _ = _data()
    # e3: an = of two bars that never touch, then a y: two components of one symbol
    equals = [np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[0.0, 0.5], [1.0, 0.5]]), _bar(2)]
    data = StrokeExpressions.from_lists(
        [*(data.strokes(i) for i in range(len(data))), equals],
        names=[*data.names, "e3"],
        truths=["", "", "", ""],
        stroke_labels=[*(data.labels(i) for i in range(len(data))), [C["y"] + 1] * 2 + [C["y"]]],
        stroke_groups=[*(data.groups(i) for i in range(len(data))), [0, 0, 1]],
    )
    starts = np.concatenate([[0], np.cumsum(data.expression_strokes)[:-1]])
    for augment in (None, StrokeAugment()):  # warped ink keeps each stroke's annotation
        draws = ComponentDraws([data.strokes(i) for i in range(len(data))], augment=augment)
        counts = np.array([len(draws[i]) for i in range(len(data))])
        labels, groups = component_annotation(
            draws, data.stroke_labels, data.stroke_groups, starts, counts
        )
        assert counts.tolist() == [3, 2, 4, 3]
        # e0's x of two crossing strokes is one component: the x, its group, then + and x
        x, plus, y, equal = C["x"], C["+"], C["y"], C["y"] + 1
        assert labels.tolist() == [x, plus, x, C["2"], y, C["s"], C["i"], C["n"], x] + [
            equal,
            equal,
            y,
        ]
        assert groups.tolist() == [0, 1, 2, 0, 1, 0, 1, 2, 3, 0, 0, 1]
        # the join target of the = 's second bar says: the same symbol as the token before
        assert join_targets(groups, counts).tolist()[-3:] == [-1, 1, 0]
    with pytest.raises(ValueError, match="draws 3 components but its cached features have 4"):
        component_annotation(draws, data.stroke_labels, data.stroke_groups, starts, counts + 1)
    with pytest.raises(ValueError, match="one entry per expression. Received: 4, 3 and 4"):
        component_annotation(draws, data.stroke_labels, data.stroke_groups, starts[:3], counts)


def _version(counts, targets, width):
    strokes = int(np.sum(counts))
    features = np.full((strokes, 2), width, np.float16)
    return {
        "draws": [(features, np.zeros((strokes, 12), np.float32))],
        "expression_strokes": np.array(counts),
        "targets": targets,
        "stroke_labels": np.full(strokes, -1),
        "stroke_groups": np.full(strokes, -1),
    }


def _batches(version, **options):
    return StrokeBatches(
        version["draws"],
        version["expression_strokes"],
        version["targets"],
        version["stroke_labels"],
        version["stroke_groups"],
        **options,
    )


def test_batches_read_each_expression_once_an_epoch_in_its_own_ink_or_a_variant():
    own = _version([2, 3, 2], [[5], [6], [7]], 0.0)
    renamed = _version([3, 3, 1], [[8], [9], None], 1.0)  # expression 2: no renamed version
    batches = _batches(own, batch_size=8, seed=0, variants=[renamed])
    seen = {"own": 0, "renamed": 0}
    for epoch in range(20):
        batches.set_epoch(epoch)
        targets = []
        for index in range(len(batches)):
            x, y = batches[index]
            assert len(set(x["features"].shape[1:2])) == 1  # equal token counts in a batch
            for row, first in zip(x["features"][:, 0, 0], y["tokens"][:, 0]):
                version = "renamed" if row == 1.0 else "own"
                seen[version] += 1
                targets.append(int(first))
                # a version's tokens go with its own target
                assert (first >= 8) == (version == "renamed")
        # each expression once; expression 2 (target 7) always in its own ink
        assert sorted(t if t < 8 else t - 3 for t in targets) == [5, 6, 7]
    assert seen["own"] > 20 and seen["renamed"] > 10
    # validation: a fixed order and the expressions' own clean draw
    fixed = _batches(own, shuffle=False, variants=[renamed])
    rows = [x["features"][:, 0, 0] for x, _ in (fixed[i] for i in range(len(fixed)))]
    assert np.concatenate(rows).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="same 3 expressions. Received: variant 0 with 2"):
        _batches(own, variants=[_version([2, 3], [[5], [6]], 1.0)])


def test_the_first_two_batches_differ_in_every_dimension_keras_infers_from_them():
    # Keras fixes a PyDataset's shapes from batches 0 and 1: here most batches are alike
    # (4 rows, 3 strokes, caption 1 + 2), one is not (3 rows, 5 strokes, caption 2 + 2).
    own = _version([3] * 40 + [5] * 3, [[5]] * 40 + [[6, 7]] * 3, 0.0)
    batches = _batches(own, batch_size=4, seed=0)
    for epoch in range(12):
        batches.set_epoch(epoch)
        first, second = (batches[i][0] for i in range(2))
        for key in ("features", "ids"):
            assert all(a != b for a, b in zip(first[key].shape[:2], second[key].shape[:2]))
        rows = sum(len(batches[i][0]["ids"]) for i in range(len(batches)))
        assert rows == 43  # still every expression once
    # Where every batch is alike, the order is left alone.
    alike = _version([3] * 8, [[5]] * 8, 0.0)
    same = _batches(alike, batch_size=4)
    assert len(same) == 2


def test_split_by_formula_holds_every_writer_of_a_held_formula():
    formulas = [[f"x{i % 40}"] for i in range(400)] + [None]
    held = split_by_formula(formulas, 0.25, 0)
    by_formula: dict = {}
    for formula, flag in zip(formulas[:-1], held[:-1]):
        by_formula.setdefault(formula[0], set()).add(bool(flag))
    assert all(len(flags) == 1 for flags in by_formula.values())
    assert 0 < sum(True in flags for flags in by_formula.values()) < 40
    assert not held[-1]
    # by expression, writers of one formula land on both sides
    by_expression = split_by_expression([f"e{i}" for i in range(400)], 0.25, 0)
    assert any(len({bool(by_expression[i]) for i in range(j, 400, 40)}) == 2 for j in range(40))
