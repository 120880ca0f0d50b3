"""Tests for im2latex_encoder/data/synthetic.py: the embedded synthetic CROHME symbols."""

from __future__ import annotations

import os

import numpy as np
import pytest

from im2latex_encoder.data.cache import load_if_current, load_prepared
from im2latex_encoder.data.synthetic import (
    VALIDATION_FONTS,
    SyntheticSymbols,
    generate_synthetic_symbols,
    prepare_synthetic,
    synthetic_fonts,
)
from im2latex_encoder.symbols import CROHME_SYMBOLS


@pytest.mark.parametrize("split", ["train", "validation"])
def test_every_class_renders_with_ink(split):
    # 48 px: the pen is 2 px wide (at 32 px a 1 px anti-aliased pen leaves "\\ldots" grey)
    images, labels = generate_synthetic_symbols(2, split=split, image_size=48, progress=False)
    assert images.shape == (202, 48, 48) and images.dtype == np.uint8
    assert labels.dtype == np.int32 and np.array_equal(labels, np.repeat(np.arange(101), 2))
    ink_pixels = (images > 127).sum(axis=(1, 2))
    assert ink_pixels.min() >= 4, CROHME_SYMBOLS[labels[ink_pixels.argmin()]]
    # ink fills part of the image, not all of it
    assert (images > 0).mean(axis=(1, 2)).max() < 0.7


def test_sample_batch_is_float_in_unit_range():
    images, labels = SyntheticSymbols(image_size=24).sample_batch(16, np.random.default_rng(0))
    assert images.dtype == np.float32 and images.shape == (16, 24, 24)
    assert images.min() == 0.0 and images.max() <= 1.0 and images.max() > 0.5
    assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() < 101


def test_same_seed_same_arrays_other_seed_other_arrays():
    first = generate_synthetic_symbols(2, image_size=24, seed=5, progress=False)
    again = generate_synthetic_symbols(2, image_size=24, seed=5, progress=False)
    other = generate_synthetic_symbols(2, image_size=24, seed=6, progress=False)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])
    source = SyntheticSymbols(image_size=24)
    a = source.sample_batch(8, np.random.default_rng(3))
    b = source.sample_batch(8, np.random.default_rng(3))
    np.testing.assert_array_equal(a[0], b[0])
    c, d = (
        next(SyntheticSymbols(image_size=24, seed=2).batches(4)),
        next(SyntheticSymbols(image_size=24, seed=2).batches(4)),
    )
    np.testing.assert_array_equal(c[0], d[0])


def test_a_class_does_not_change_when_other_classes_are_drawn_too():
    alone, _ = generate_synthetic_symbols(3, image_size=24, labels=["="], progress=False)
    pair, pair_labels = generate_synthetic_symbols(
        3, image_size=24, labels=["=", "-"], progress=False
    )
    np.testing.assert_array_equal(alone, pair[pair_labels == CROHME_SYMBOLS.index("=")])


def test_train_and_validation_fonts_are_disjoint():
    train, validation = synthetic_fonts("train"), synthetic_fonts("validation")
    assert validation == VALIDATION_FONTS == ("stixsans",)
    assert not set(train) & set(validation)
    assert {"cm", "stix", "dejavusans", "dejavuserif"} <= set(train)
    assert SyntheticSymbols(split="validation").fonts == validation
    with pytest.raises(ValueError, match="Received: split='test'"):
        synthetic_fonts("test")


@pytest.mark.parametrize("layout", ["fit", "baseline"])
def test_distinct_classes_differ(layout):
    names = ["-", "=", "\\div", "+", "\\pm", "\\times"]
    source = SyntheticSymbols(image_size=64, labels=names, layout=layout, distortion=0.0)
    images = {
        name: source.render(CROHME_SYMBOLS.index(name), np.random.default_rng(0)) / 255.0
        for name in names
    }
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            # the dots of \div over a "-" are the smallest difference: ~25 pixels of 4096
            assert np.abs(images[a] - images[b]).mean() > 0.004, (a, b)


def test_baseline_layout_tells_case_pairs_apart_and_fit_layout_fills_the_image():
    for layout, fills in (("baseline", False), ("fit", True)):
        source = SyntheticSymbols(image_size=48, layout=layout, distortion=0.0)
        for lower, upper in (("c", "C"), ("s", "S"), ("x", "X"), ("o", "0")):
            small = source.render(CROHME_SYMBOLS.index(lower), np.random.default_rng(0)) > 127
            big = source.render(CROHME_SYMBOLS.index(upper), np.random.default_rng(0)) > 127
            height_small = np.ptp(np.nonzero(small.any(axis=1))[0])
            height_big = np.ptp(np.nonzero(big.any(axis=1))[0])
            if fills:  # both scaled to fit: as ambiguous as real CROHME renders
                assert abs(height_small - height_big) <= 0.25 * 48
            else:
                assert height_big > 1.2 * height_small, (lower, upper)


def test_non_square_images():
    images, _ = generate_synthetic_symbols(
        1, image_size=(20, 36), labels=["\\sum", "1"], progress=False
    )
    assert images.shape == (2, 20, 36)
    batch, _ = SyntheticSymbols(image_size=(36, 20), layout="baseline").sample_batch(
        3, np.random.default_rng(0)
    )
    assert batch.shape == (3, 36, 20)


def test_bad_arguments_say_what_they_got():
    with pytest.raises(ValueError, match="Received: per_class=0"):
        generate_synthetic_symbols(0, progress=False)
    with pytest.raises(ValueError, match="unknown: \\['W'\\]"):
        generate_synthetic_symbols(1, labels=["x", "W"], progress=False)
    with pytest.raises(ValueError, match="Received: layout='centre'"):
        SyntheticSymbols(layout="centre")
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        SyntheticSymbols().sample_batch(0, np.random.default_rng(0))


def test_prepare_synthetic_writes_a_loadable_current_cache(tmp_path):
    path = tmp_path / "synthetic.npz"
    written = prepare_synthetic(
        path,
        per_class=1,
        image_size=16,
        seed=3,
        split="validation",
        progress=False,
        labels=["a", "b"],
    )
    loaded = load_prepared(path)
    np.testing.assert_array_equal(loaded.images, written.images)
    np.testing.assert_array_equal(
        loaded.labels, [CROHME_SYMBOLS.index("a"), CROHME_SYMBOLS.index("b")]
    )
    assert loaded.label_names == CROHME_SYMBOLS
    assert loaded.settings["fonts"] == ["stixsans"] and loaded.settings["seed"] == 3
    assert (
        load_if_current(path, source_hash=written.source_hash, settings=written.settings)
        is not None
    )
    assert not [name for name in os.listdir(tmp_path) if name != "synthetic.npz"]


def test_fit_ambiguous_pairs_are_crohme_classes():
    from im2latex_encoder.data.synthetic import FIT_AMBIGUOUS_PAIRS

    assert (
        len(FIT_AMBIGUOUS_PAIRS) == 6 and ("o", "0") in FIT_AMBIGUOUS_PAIRS
    )  # 12 classes, as documented
    assert all(a in CROHME_SYMBOLS and b in CROHME_SYMBOLS for a, b in FIT_AMBIGUOUS_PAIRS)


@pytest.mark.parametrize("distortion", [0.0, 1.5])
def test_a_batch_holds_the_images_one_render_call_per_sample_draws(distortion):
    """`sample_batch` draws the default layout as one batch (`render_glyph_batch`): it must
    give, sample for sample, what one `render` call per sample gives from the same generator."""
    labels = ["i", "j", "=", "x", "\\ldots", "\\sum", "!", "\\div", "-", "."]
    source = SyntheticSymbols("train", (24, 40), labels=labels, distortion=distortion)
    images, drawn = source.sample_batch(40, np.random.default_rng(5))

    rng = np.random.default_rng(5)
    expected_labels = source.classes[rng.integers(len(source.classes), size=40)]
    one_by_one = np.stack([source.render(int(label), rng) for label in expected_labels])
    np.testing.assert_array_equal(drawn, expected_labels)
    np.testing.assert_array_equal(images, one_by_one.astype(np.float32) * np.float32(1 / 255))
    assert len({image.tobytes() for image in one_by_one}) > 20  # not one image repeated
