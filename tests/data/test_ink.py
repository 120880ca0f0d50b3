"""Tests for im2latex_encoder/data/ink.py: the ink cache, stroke augmentation, ink batches."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from im2latex_encoder.data.errors import CacheError
from im2latex_encoder.data.ink import (
    InkAugment,
    InkBatches,
    InkDataset,
    context_fill,
    load_ink,
    normalize_strokes,
    prepare_crohme_ink,
    relative_sizes,
    render_augmented,
    save_ink,
    symbol_extent,
)
from im2latex_encoder.data.render import render_strokes_uint8
from inkml_fixtures import build_inkml

RNG = np.random.default_rng(0)


def _random_symbols(count, rng=RNG):
    symbols = []
    for _ in range(count):
        strokes = [
            rng.uniform(0, 100, (int(rng.integers(1, 12)), 2))
            for _ in range(int(rng.integers(1, 4)))
        ]
        symbols.append(strokes)
    return symbols


def _ink(count=12, groups=None):
    symbols = _random_symbols(count)
    groups = np.arange(count) // 3 if groups is None else groups
    names = [f"expr{i}.inkml" for i in range(int(np.max(groups)) + 1)]
    return symbols, InkDataset.from_symbols(
        symbols, np.arange(count) % 3, ("a", "b", "c"), groups=groups, group_names=names
    )


def test_normalize_strokes_centres_and_scales():
    points, sizes = normalize_strokes(
        [np.array([[10.0, 0.0], [14.0, 2.0]]), np.array([[12.0, 1.0]])]
    )
    assert points.dtype == np.float32 and sizes.tolist() == [2, 1]
    np.testing.assert_allclose(points.min(axis=0), [-0.5, -0.25])
    np.testing.assert_allclose(points.max(axis=0), [0.5, 0.25])
    dot, _ = normalize_strokes([np.array([[5.0, 5.0]])])
    assert dot.tolist() == [[0.0, 0.0]]
    with pytest.raises(ValueError, match="at least one stroke"):
        normalize_strokes([])


def test_strokes_and_gather_give_back_each_symbol():
    symbols, ink = _ink()
    for index in (0, 5, 11):
        expected = [normalize_strokes(symbols[index])[0]]
        np.testing.assert_array_equal(np.concatenate(ink.strokes(index)), expected[0])
        assert [len(s) for s in ink.strokes(index)] == [len(s) for s in symbols[index]]
    points, sizes, counts = ink.gather(np.array([7, 2]))
    assert counts.tolist() == [len(symbols[7]), len(symbols[2])]
    assert sizes.tolist() == [len(s) for s in symbols[7] + symbols[2]]
    np.testing.assert_array_equal(points, np.concatenate(ink.strokes(7) + ink.strokes(2)))


def test_subset_keeps_labels_groups_and_strokes():
    _, ink = _ink()
    part = ink.subset(np.array([4, 9]))
    assert part.labels.tolist() == [ink.labels[4], ink.labels[9]]
    assert part.groups.tolist() == [ink.groups[4], ink.groups[9]]
    np.testing.assert_array_equal(np.concatenate(part.strokes(1)), np.concatenate(ink.strokes(9)))


def test_split_by_group_keeps_expressions_whole_and_is_stable():
    groups = np.repeat(np.arange(40), 3)
    _, ink = _ink(120, groups)
    kept, held = ink.split_by_group(0.25, seed=0)
    assert len(kept) + len(held) == 120
    assert not set(kept.groups.tolist()) & set(held.groups.tolist())
    assert 0 < len(set(held.groups.tolist())) < 40
    # The split of an expression does not depend on which other expressions are present.
    smaller = ink.subset(np.flatnonzero(ink.groups < 20))
    _, held_small = smaller.split_by_group(0.25, seed=0)
    assert set(held_small.groups.tolist()) == {g for g in held.groups.tolist() if g < 20}
    _, other = ink.split_by_group(0.25, seed=1)
    assert set(other.groups.tolist()) != set(held.groups.tolist())
    with pytest.raises(ValueError, match="fraction"):
        ink.split_by_group(1.0)


def test_invalid_dataset_is_refused():
    _, ink = _ink()
    with pytest.raises(ValueError, match="stroke sizes|adds up"):
        InkDataset(
            ink.points,
            ink.stroke_sizes[:-1],
            ink.symbol_strokes,
            ink.labels,
            ink.groups,
            ink.label_names,
        )
    with pytest.raises(ValueError, match="labels must index"):
        InkDataset(
            ink.points,
            ink.stroke_sizes,
            ink.symbol_strokes,
            ink.labels + 5,
            ink.groups,
            ink.label_names,
        )


def test_save_load_round_trip_and_refusals(tmp_path):
    _, ink = _ink()
    path = tmp_path / "ink.npz"
    save_ink(path, ink)
    back = load_ink(path)
    np.testing.assert_array_equal(back.points, ink.points)
    np.testing.assert_array_equal(back.relative_sizes, ink.relative_sizes)
    assert back.group_names == ink.group_names and back.label_names == ink.label_names
    assert not [p for p in os.listdir(tmp_path) if p != "ink.npz"]  # no temporaries left
    np.savez(tmp_path / "images.npz", images=np.zeros((1, 4, 4), np.uint8))
    with pytest.raises(CacheError, match=r"missing array\(s\) \['format_version', 'points'"):
        load_ink(tmp_path / "images.npz")
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:200])
    with pytest.raises(CacheError, match="cut.npz"):
        load_ink(tmp_path / "cut.npz")
    with pytest.raises(FileNotFoundError):
        load_ink(tmp_path / "missing.npz")


def test_render_matches_rendering_the_original_strokes():
    symbols, ink = _ink()
    images = ink.render(32)
    for index in range(len(symbols)):
        expected = render_strokes_uint8(symbols[index], 32)
        # Normalised float32 points may move a sub-pixel edge by one grey level at most.
        assert np.abs(images[index].astype(int) - expected).max() <= 16


def test_no_augmentation_draws_exactly_what_render_draws():
    _, ink = _ink()
    indices = np.array([3, 1, 4, 1, 5])
    drawn = render_augmented(ink, indices, (24, 24), InkAugment(), np.random.default_rng(3))
    np.testing.assert_array_equal(drawn, ink.render(24)[indices])


def test_augmentation_changes_ink_and_keeps_every_stroke():
    _, ink = _ink()
    indices = np.arange(len(ink))
    plain = ink.render(32)
    augment = InkAugment(
        rotation=15,
        slant=0.3,
        aspect=0.2,
        stroke_shift=0.05,
        jitter=0.01,
        drop=0.5,
        line_width=(0.03, 0.08),
        margin=(0.05, 0.15),
    )
    drawn = render_augmented(ink, indices, (32, 32), augment, np.random.default_rng(0))
    assert drawn.shape == plain.shape and drawn.dtype == np.uint8
    assert (drawn != plain).any(axis=(1, 2)).all()
    assert (drawn.reshape(len(ink), -1).max(axis=1) >= 200).all()  # every symbol still inked


def test_ink_augment_validation_and_dicts():
    with pytest.raises(ValueError, match="rotation"):
        InkAugment(rotation=-1)
    with pytest.raises(ValueError, match="drop"):
        InkAugment(drop=1.0)
    with pytest.raises(ValueError, match="line_width"):
        InkAugment(line_width=(0.05, 0.01))
    with pytest.raises(ValueError, match="unknown \\['zoom'\\]"):
        InkAugment.from_dict({"zoom": 0.1})
    augment = InkAugment(slant=0.2, margin=(0.05, 0.1))
    assert InkAugment.from_dict(augment.to_dict()) == augment


def test_ink_batches_are_a_function_of_the_step():
    _, ink = _ink(40)
    batches = InkBatches(ink, 8, 16, InkAugment(rotation=10, jitter=0.01), seed=2)
    first, labels = batches.batch(3)
    again, labels_again = InkBatches(
        ink, 8, 16, InkAugment(rotation=10, jitter=0.01), seed=2
    ).batch(3)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(labels, labels_again)
    assert first.dtype == np.float32 and first.shape == (8, 16, 16) and first.max() <= 1.0
    assert not np.array_equal(first, batches.batch(4)[0])
    # One epoch visits every symbol once.
    seen = np.concatenate([batches._order(0)[i * 8 : (i + 1) * 8] for i in range(5)])
    assert sorted(seen.tolist()) == list(range(40))
    mapped = InkBatches(ink, 8, 16, label_map=np.array([2, 1, 0]), seed=2).batch(3)[1]
    np.testing.assert_array_equal(mapped, 2 - labels)
    with pytest.raises(ValueError, match="full batch"):
        InkBatches(ink, 64, 16)


# === prepare_crohme_ink over a folder of expression files ===


def _write(folder, name, data):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def test_prepare_crohme_ink_keeps_every_readable_symbol(tmp_path):
    traces = [[(0, 0), (10, 10)], [(10, 0), (0, 10)], [(20, 0), (20, 10)]]
    source = tmp_path / "crohme"
    _write(
        source / "A", "e1.inkml", build_inkml(traces, ui="em_1", groups=[("x", [0, 1]), ("1", [2])])
    )
    # Two writers' expressions sharing a UI: both kept.
    _write(
        source / "B",
        "w2_em_1.inkml",
        build_inkml(traces, ui="em_1", groups=[("<", [0]), ("-", [2])]),
    )
    # A traceGroup pointing at a trace the file lacks: that symbol alone is left out.
    dangling = build_inkml(traces, ui="em_3", groups=[("y", [0]), ("2", [1])]).replace(
        b'traceDataRef="1"', b'traceDataRef="99"'
    )
    _write(source / "B", "e3.inkml", dangling)
    _write(source / "B", "empty.inkml", b"")
    _write(
        source / "B",
        "junk.inkml",
        build_inkml(traces, ui="em_4", groups=[("junk", [0]), ("\\heart", [1])]),
    )
    ink = prepare_crohme_ink(source, tmp_path / "ink.npz", progress=False, workers=1)
    labels = [ink.label_names[i] for i in ink.labels]
    assert labels == ["x", "1", "y", "\\lt", "-"]  # files in sorted order
    # Each symbol keeps its place in its expression, in units of the typical symbol (10 here).
    np.testing.assert_allclose(ink.boxes[:2], [[0, 0, 1, 1], [2, 0, 2, 1]])
    assert ink.group_names == (
        os.path.join("A", "e1.inkml"),
        os.path.join("B", "e3.inkml"),
        os.path.join("B", "w2_em_1.inkml"),
    )
    assert ink.groups.tolist() == [0, 0, 1, 2, 2]
    assert ink.symbol_strokes.tolist() == [2, 1, 1, 1, 1]
    counts = ink.report["counts"]
    assert counts == {"unreadable_symbol": 1, "malformed_file": 1, "junk": 1, "unknown_label": 1}
    assert ink.report["used"] == 5 and ink.report["files"] == 5
    # Reused while the files are unchanged; rebuilt when one changes.
    stamp = os.stat(tmp_path / "ink.npz").st_mtime_ns
    assert len(prepare_crohme_ink(source, tmp_path / "ink.npz", progress=False)) == 5
    assert os.stat(tmp_path / "ink.npz").st_mtime_ns == stamp
    (source / "B" / "empty.inkml").unlink()
    again = prepare_crohme_ink(
        source, tmp_path / "ink.npz", progress=False, workers=2, chunk_size=1
    )
    assert len(again) == 5 and "malformed_file" not in again.report["counts"]
    np.testing.assert_array_equal(again.points, ink.points)


def test_prepare_crohme_ink_counts_the_same_file_twice(tmp_path):
    traces = [[(0, 0), (10, 10)]]
    data = build_inkml(traces, ui="em_1", groups=[("x", [0])])
    _write(tmp_path / "a", "e.inkml", data)
    _write(tmp_path / "b", "e.inkml", data)
    ink = prepare_crohme_ink(
        [tmp_path / "a", tmp_path / "b"], tmp_path / "ink.npz", progress=False, workers=1
    )
    assert len(ink) == 1 and ink.report["counts"] == {"duplicate_file": 1}


def test_boxes_are_in_units_of_the_expression_typical_symbol_and_travel_with_symbols(tmp_path):
    stroke = lambda x0, y0, size: [np.array([[x0, y0], [x0 + size, y0 + size]], float)]  # noqa: E731
    ink = InkDataset.from_symbols(
        [stroke(0, 0, 10), stroke(20, -10, 10), stroke(30, 5, 2), stroke(0, 0, 4)],
        [0, 1, 0, 1],
        ("a", "b"),
        groups=[0, 0, 0, 1],
    )
    np.testing.assert_allclose(
        ink.boxes, [[0, 0, 1, 1], [2, -1, 3, 0], [3, 0.5, 3.2, 0.7], [0, 0, 1, 1]], rtol=1e-6
    )
    np.testing.assert_array_equal(ink.subset(np.array([1])).boxes, ink.boxes[1:2])
    kept, held = ink.split_by_group(0.5, seed=3)
    assert len(kept.boxes) == len(kept) and len(held.boxes) == len(held)
    save_ink(tmp_path / "ink.npz", ink)
    np.testing.assert_array_equal(load_ink(tmp_path / "ink.npz").boxes, ink.boxes)
    # Unknown places are NaN rows; half-known rows and shapes that do not match are refused.
    blank = InkDataset(
        ink.points, ink.stroke_sizes, ink.symbol_strokes, ink.labels, ink.groups, ("a", "b")
    )
    assert np.isnan(blank.boxes).all() and blank.boxes.shape == (4, 4)
    half = ink.boxes.copy()
    half[0, 0] = np.nan
    with pytest.raises(ValueError, match="four finite numbers or four NaN"):
        dataclasses.replace(ink, boxes=half)
    with pytest.raises(ValueError, match=r"`boxes` must be a float array of shape \(4, 4\)"):
        dataclasses.replace(ink, boxes=ink.boxes[:2])
    flipped = ink.boxes.copy()
    flipped[0, 2] = -5
    with pytest.raises(ValueError, match="right >= left"):
        dataclasses.replace(ink, boxes=flipped)


def test_a_version_2_ink_cache_loads_with_unknown_places(tmp_path):
    ink = InkDataset.from_symbols([[np.zeros((2, 2))]] * 2, [0, 0], ("x",))
    save_ink(tmp_path / "ink.npz", ink)
    with np.load(tmp_path / "ink.npz", allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files if key != "boxes"}
    arrays["format_version"] = np.array(2, np.int64)
    np.savez(tmp_path / "v2.npz", **arrays)
    old = load_ink(tmp_path / "v2.npz")
    assert len(old) == 2 and np.isnan(old.boxes).all()
    # A version-3 file without its boxes is corrupt, and says so.
    arrays["format_version"] = np.array(3, np.int64)
    np.savez(tmp_path / "v3.npz", **arrays)
    with pytest.raises(CacheError, match="boxes"):
        load_ink(tmp_path / "v3.npz")


def test_relative_sizes_are_per_expression_medians():
    extents = np.array([2.0, 4.0, 8.0, 3.0, 0.0, 6.0, 0.0])
    groups = np.array([0, 0, 0, 1, 1, 1, 2])
    # Group 0: median 4; group 1: median 3; group 2 has only a dot: 1.0.
    assert relative_sizes(extents, groups).tolist() == [0.5, 1.0, 2.0, 1.0, 0.0, 2.0, 1.0]
    assert symbol_extent([np.array([[0.0, 0.0], [3.0, 1.0]]), np.array([[0.0, 5.0]])]) == 5.0


def _ink_pixels_box(image):
    rows, cols = np.nonzero(image > image.max() / 2)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def test_context_scale_draws_a_small_symbol_small():
    big = [np.array([[0.0, 0.0], [0.0, 100.0]]), np.array([[0.0, 0.0], [60.0, 0.0]])]
    small = [np.array([[0.0, 0.0], [0.0, 30.0]])]  # 0.3 of its expression's typical symbol
    ink = InkDataset.from_symbols([big, big, small], [0, 0, 1], ("T", ","), groups=[0, 0, 0])
    np.testing.assert_allclose(ink.relative_sizes, [1.0, 1.0, 0.3], rtol=1e-6)
    fitted = ink.render(48)
    in_context = ink.render(48, context_scale=True)
    # Fitted: the comma is as tall as the T. In context: 0.3 of it; the T is unchanged.
    assert abs(_ink_pixels_box(fitted[2])[0] - _ink_pixels_box(fitted[0])[0]) <= 1
    assert abs(_ink_pixels_box(in_context[2])[0] / _ink_pixels_box(in_context[0])[0] - 0.3) < 0.08
    np.testing.assert_array_equal(in_context[0], fitted[0])
    # Augmented batches draw the same way when asked to.
    batches = InkBatches(ink, batch_size=3, image_size=48, context_scale=True)
    images, labels = batches.batch(0)
    heights = {int(label): _ink_pixels_box(image)[0] for image, label in zip(images, labels)}
    assert heights[1] < 0.4 * heights[0]
    # The clip: a dot-sized symbol is drawn at MIN_RELATIVE_SIZE, not vanishing.
    tiny = InkDataset.from_symbols(
        [big, big, [np.array([[0.0, 0.0], [0.0, 1.0]])]], [0, 0, 1], ("T", "."), groups=[0, 0, 0]
    )
    assert tiny.frames().max() == pytest.approx(5.0)


def test_context_fill_draws_the_typical_symbol_at_its_share_and_larger_ones_larger():
    typical = [np.array([[0.0, 0.0], [0.0, 100.0]]), np.array([[0.0, 0.0], [60.0, 0.0]])]
    tall = [np.array([[0.0, 0.0], [0.0, 125.0]])]  # 1.25 x the typical symbol
    small = [np.array([[0.0, 0.0], [0.0, 50.0]])]  # 0.5 x
    ink = InkDataset.from_symbols(
        [typical, typical, tall, small], [0, 0, 1, 2], ("x", "|", ","), groups=[0, 0, 0, 0]
    )
    np.testing.assert_allclose(ink.relative_sizes, [1.0, 1.0, 1.25, 0.5], rtol=1e-6)
    full = [_ink_pixels_box(image)[0] for image in ink.render(48, context_scale=True)]
    share = [_ink_pixels_box(image)[0] for image in ink.render(48, context_scale=0.8)]
    # True: the typical and the taller symbol both fill the box (their sizes are lost).
    assert abs(full[2] - full[0]) <= 1
    # 0.8: the typical symbol at 0.8 of the box, the 1.25x one fills it, the small one at 0.4.
    assert abs(share[0] / full[0] - 0.8) < 0.06
    assert abs(share[2] - full[2]) <= 1
    assert abs(share[3] / full[0] - 0.4) < 0.06
    np.testing.assert_allclose(ink.frames(fill=0.8), ink.frames() / 0.8)
    # Augmented batches (no augmentation) draw exactly what render draws, for a share too.
    drawn = render_augmented(
        ink, np.arange(4), (48, 48), InkAugment(), np.random.default_rng(0), context_scale=0.8
    )
    np.testing.assert_array_equal(drawn, ink.render(48, context_scale=0.8))


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.2, "yes", None])
def test_context_fill_refuses_what_is_not_a_share(bad):
    with pytest.raises(ValueError, match=r"`context_scale` must be .*Received: context_scale="):
        context_fill(bad)
    with pytest.raises(ValueError, match="context_scale"):
        InkBatches(_ink()[1], batch_size=2, image_size=8, context_scale=bad)


def test_version_1_ink_cache_is_refused_so_it_is_rebuilt(tmp_path):
    _, ink = _ink()
    path = tmp_path / "ink.npz"
    save_ink(path, ink)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files if key != "relative_sizes"}
    arrays["format_version"] = np.array(1, np.int64)
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(CacheError, match=r"unknown ink format version: expected one of \[2, 3\]"):
        load_ink(tmp_path / "old.npz")
