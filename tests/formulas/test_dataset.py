import json

import numpy as np
import pytest

from im2latex_encoder.data.errors import CacheError
from im2latex_encoder.formulas import dataset as dataset_module
from im2latex_encoder.formulas.dataset import (
    FormulaDataset,
    make_formula_dataset,
    make_teacher_forcing_dataset,
)
from im2latex_encoder.formulas.grammar import random_formulas
from im2latex_encoder.formulas.tokenizer import normalize_latex


def test_arrays_tokens_and_latex_agree():
    data = make_formula_dataset(6, seed=0, max_tokens=20, progress=False)
    assert data.images.shape == (6, 64, 512) and data.images.dtype == np.float32
    assert data.token_ids.shape == (6, 22) and data.token_ids.dtype == np.int32
    vocabulary = data.vocabulary
    for row, latex in zip(data.token_ids, data.latex):
        assert row[0] == vocabulary.start_id
        end = int(np.flatnonzero(row == vocabulary.end_id)[0])
        assert np.all(row[end + 1 :] == vocabulary.pad_id) and np.all(row[1:end] > 3)
        assert normalize_latex(vocabulary.decode(row)) == latex
    assert all(image.max() == 1.0 for image in data.images)
    assert data.latex == tuple(random_formulas(6, seed=0, max_tokens=20))


def test_same_arguments_same_dataset():
    a = make_formula_dataset(4, seed=7, fontsets=("cm", "stix"), augment=True, progress=False)
    b = make_formula_dataset(4, seed=7, fontsets=("cm", "stix"), augment=True, progress=False)
    assert a.latex == b.latex and np.array_equal(a.images, b.images)
    assert np.array_equal(a.token_ids, b.token_ids)


def test_augmentation_moves_ink_but_keeps_formulas():
    plain = make_formula_dataset(8, seed=1, progress=False)
    augmented = make_formula_dataset(8, seed=1, augment=True, progress=False)
    assert plain.latex == augmented.latex
    assert np.array_equal(plain.token_ids, augmented.token_ids)
    assert not np.array_equal(plain.images, augmented.images)
    for image in augmented.images:
        assert image.max() == 1.0  # the ink was moved, not cut off


def test_uint8_images():
    data = make_formula_dataset(3, seed=2, dtype="uint8", progress=False)
    assert data.images.dtype == np.uint8 and data.images.max() == 255


def test_cache_is_written_then_read_back(tmp_path, monkeypatch):
    first = make_formula_dataset(3, seed=4, cache_dir=tmp_path, progress=False)
    files = list(tmp_path.glob("formulas-*.npz"))
    assert len(files) == 1

    def no_rendering(*args, **kwargs):
        raise AssertionError("a cache hit must not render")

    monkeypatch.setattr(dataset_module, "render_formula", no_rendering)
    second = make_formula_dataset(3, seed=4, cache_dir=tmp_path, progress=False)
    assert second.latex == first.latex and np.array_equal(second.images, first.images)
    assert second.vocabulary == first.vocabulary
    with pytest.raises(AssertionError, match="must not render"):  # other arguments, other file
        make_formula_dataset(3, seed=5, cache_dir=tmp_path, progress=False)


def test_save_load_round_trip_and_corrupt_file(tmp_path):
    data = make_formula_dataset(2, seed=0, dtype="uint8", progress=False)
    path = tmp_path / "data.npz"
    data.save(path)
    loaded = FormulaDataset.load(path)
    assert loaded.latex == data.latex and np.array_equal(loaded.token_ids, data.token_ids)
    assert loaded.images.dtype == np.uint8
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CacheError, match="data.npz"):
        FormulaDataset.load(path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dtype": "float16"}, "dtype='float16'"),
        ({"fontsets": ("comic",)}, "comic"),
        ({"fontsets": ()}, r"fontsets=\(\)"),
    ],
)
def test_invalid_arguments_say_what_was_received(kwargs, message):
    with pytest.raises(ValueError, match=f"Received.*{message}"):
        make_formula_dataset(1, progress=False, **kwargs)


def test_teacher_forcing_pairs_are_shifted_by_one():
    data = make_formula_dataset(5, seed=3, dtype="uint8", progress=False)
    batches = list(make_teacher_forcing_dataset(data, batch_size=2, shuffle=False))
    assert [b[1].shape[0] for b in batches] == [2, 2, 1]
    (images, inputs), targets = batches[0]
    assert tuple(images.shape) == (2, 64, 512, 1) and images.dtype.name == "float32"
    assert float(images.numpy().max()) == 1.0
    inputs, targets = inputs.numpy(), targets.numpy()
    assert np.array_equal(inputs, data.token_ids[:2, :-1])
    assert np.array_equal(inputs[:, 1:], targets[:, :-1])
    assert np.all(inputs[:, 0] == data.vocabulary.start_id)


def _save_as_version_1(data, path, config):
    # The layout 0.1 wrote: no kind nor format_version array, the version inside `config`.
    np.savez(
        path,
        images=data.images,
        token_ids=data.token_ids,
        latex=np.array(data.latex, dtype=np.str_).reshape(-1),
        vocabulary=np.array(data.vocabulary.tokens, dtype=np.str_),
        config=np.array(json.dumps({"version": 1, **config})),
    )


def test_files_written_by_version_1_still_load(tmp_path):
    data = make_formula_dataset(2, seed=0, dtype="uint8", progress=False)
    _save_as_version_1(data, tmp_path / "old.npz", {})
    loaded = FormulaDataset.load(tmp_path / "old.npz")
    assert loaded.latex == data.latex and np.array_equal(loaded.images, data.images)
    assert loaded.vocabulary == data.vocabulary
    data.save(tmp_path / "new.npz")
    with np.load(tmp_path / "new.npz", allow_pickle=False) as npz:
        assert str(npz["kind"]) == "formulas" and int(npz["format_version"]) == 2
    _save_as_version_1(data, tmp_path / "v7.npz", {"version": 7})
    with pytest.raises(CacheError, match="config has version 1. Received"):
        FormulaDataset.load(tmp_path / "v7.npz")


def test_unusable_cache_file_is_rebuilt_with_a_warning(tmp_path, caplog):
    first = make_formula_dataset(2, seed=4, cache_dir=tmp_path, progress=False)
    (path,) = tmp_path.glob("formulas-*.npz")
    path.write_bytes(b"truncated")
    with caplog.at_level("WARNING", logger="im2latex_encoder.formulas.dataset"):
        again = make_formula_dataset(2, seed=4, cache_dir=tmp_path, progress=False)
    assert "Rebuilding" in caplog.text and "not a readable .npz" in caplog.text
    assert again.latex == first.latex and np.array_equal(again.images, first.images)
    assert FormulaDataset.load(path).latex == first.latex  # rewritten whole
