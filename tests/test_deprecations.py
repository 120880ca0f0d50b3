"""Renamed public arguments (issue 15): each old spelling works for one release and warns.

Every case calls a public name once with the old keyword and once with the new one: the
results agree, the old one warns with both names and the release that removes it, the new one
does not warn, and giving both is a `TypeError`.
"""

from __future__ import annotations

import doctest
import warnings

import numpy as np
import pytest

from im2latex_encoder import _deprecation
from im2latex_encoder._deprecation import REMOVED_IN, renamed_arguments
from inkml_fixtures import build_inkml


@pytest.fixture
def crohme_folder(tmp_path):
    """A CROHME folder of three labelled symbols (one file each) and their ground truth."""
    root = tmp_path / "train"
    root.mkdir()
    rows = []
    for index, label in enumerate(["x", "y", "\\alpha"]):
        points = [(0, 0), (10 + index, 5), (20, index)]
        (root / f"iso{index}.inkml").write_bytes(
            build_inkml([points], ui=f"u_{index}", truth="$x$", groups=[("", [0])])
        )
        rows.append(f"u_{index},{label}")
    (root / "iso_GT.txt").write_text("\n".join(rows) + "\n")
    return root


def _cases(folder, tmp_path):
    """(name, call, old keyword, new keyword, value, other arguments, result -> comparable)."""
    from im2latex_encoder.data import (
        CrohmeScan,
        crohme_source_hash,
        list_crohme_files,
        prepare_crohme,
        prepare_crohme_ink,
        scan_crohme_folder,
    )
    from im2latex_encoder.formulas import read_crohme_expressions

    folder = str(folder)
    return [
        ("list_crohme_files", list_crohme_files, "directories", "folders", folder, {}, repr),
        (
            "scan_crohme_folder",
            scan_crohme_folder,
            "directories",
            "folders",
            folder,
            {},
            lambda scan: [s.label for s in scan],
        ),
        (
            "CrohmeScan",
            CrohmeScan,
            "directories",
            "folders",
            folder,
            {},
            lambda scan: [s.label for s in scan],
        ),
        (
            "crohme_source_hash",
            crohme_source_hash,
            "directories",
            "folders",
            [folder],
            {"inkml_files": [], "ground_truth_files": []},
            repr,
        ),
        (
            "prepare_crohme",
            prepare_crohme,
            "source",
            "folders",
            folder,
            {"out": tmp_path / "s.npz", "image_size": 16, "progress": False, "workers": 1},
            lambda ds: ds.images.tobytes(),
        ),
        (
            "prepare_crohme_ink",
            prepare_crohme_ink,
            "source",
            "folders",
            folder,
            {"out": tmp_path / "i.npz", "progress": False, "workers": 1},
            lambda ink: ink.points.tobytes(),
        ),
        (
            "read_crohme_expressions",
            read_crohme_expressions,
            "source",
            "folders",
            folder,
            {"progress": False, "workers": 1},
            lambda data: data.names,
        ),
    ]


_NAMES = [
    "list_crohme_files",
    "scan_crohme_folder",
    "CrohmeScan",
    "crohme_source_hash",
    "prepare_crohme",
    "prepare_crohme_ink",
    "read_crohme_expressions",
]


def _case(name, folder, tmp_path):
    return next(case for case in _cases(folder, tmp_path) if case[0] == name)


@pytest.mark.parametrize("name", _NAMES)
def test_old_keyword_warns_and_gives_the_same_result(name, crohme_folder, tmp_path):
    _, call, old, new, value, other, key = _case(name, crohme_folder, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        expected = key(call(**{new: value}, **other))
    with pytest.warns(DeprecationWarning) as caught:
        received = key(call(**{old: value}, **other))
    assert received == expected
    message = str(caught[0].message)
    assert f"{name}({old}=...)" in message and f"`{new}=...`" in message
    assert REMOVED_IN in message
    assert caught[0].filename == __file__, "the warning points at the caller"


@pytest.mark.parametrize("name", _NAMES)
def test_old_and_new_keyword_together_are_refused(name, crohme_folder, tmp_path):
    _, call, old, new, value, other, _ = _case(name, crohme_folder, tmp_path)
    with pytest.raises(TypeError, match=rf"both `{old}=` \(deprecated\) and `{new}=`"):
        call(**{old: value, new: value}, **other)


def test_old_keyword_and_new_positional_argument_are_refused(crohme_folder):
    from im2latex_encoder.data import scan_crohme_folder

    with pytest.raises(TypeError, match=r"both `directories=` \(deprecated\) and `folders=`"):
        scan_crohme_folder(str(crohme_folder), directories=str(crohme_folder))


def test_crohme_scan_directories_attribute_warns(crohme_folder):
    from im2latex_encoder.data import scan_crohme_folder

    scan = scan_crohme_folder(crohme_folder)
    assert scan.folders == [str(crohme_folder)]
    with pytest.warns(DeprecationWarning, match=r"CrohmeScan\.directories.*CrohmeScan\.folders"):
        assert scan.directories == scan.folders


def test_prepared_dataset_image_shape_warns():
    from im2latex_encoder.data import PreparedDataset

    dataset = PreparedDataset(np.zeros((1, 4, 6), np.uint8), np.zeros(1, np.int32), ("a",), {}, "")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert dataset.image_size == (4, 6)
    with pytest.warns(DeprecationWarning, match=r"image_shape.*0\.3\.0.*image_size"):
        assert dataset.image_shape == (4, 6)


@pytest.mark.parametrize(
    "old, expected",
    [({"height": 32}, (32, 512)), ({"width": 96}, (64, 96)), ({"height": 8, "width": 24}, (8, 24))],
)
def test_make_formula_dataset_height_width_are_image_size(old, expected):
    from im2latex_encoder.formulas import make_formula_dataset

    with pytest.warns(DeprecationWarning) as caught:
        data = make_formula_dataset(0, progress=False, **old)
    assert data.images.shape[1:] == expected
    assert {str(w.message) for w in caught} == {
        f"`make_formula_dataset({name}=...)` is deprecated and will be removed in {REMOVED_IN}: "
        f"use `image_size[{index}]=...`."
        for name, index in (("height", 0), ("width", 1))
        if name in old
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert make_formula_dataset(0, image_size=expected, progress=False).images.shape[1:] == (
            expected
        )
    with pytest.raises(TypeError, match=r"both `height=` \(deprecated\) and `image_size=`"):
        make_formula_dataset(0, height=8, image_size=(8, 8), progress=False)


def test_make_formula_dataset_image_size_keeps_the_cache_key(tmp_path):
    from im2latex_encoder.formulas import make_formula_dataset

    make_formula_dataset(1, image_size=(16, 48), cache_dir=tmp_path, progress=False)
    with pytest.warns(DeprecationWarning):
        make_formula_dataset(1, height=16, width=48, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("formulas-*.npz"))) == 1
    with pytest.raises(ValueError, match=r"\(height, width\).*Received: image_size=64"):
        make_formula_dataset(1, image_size=64, progress=False)


def test_train_handwritten_old_keywords(tmp_path):
    from im2latex_encoder.recognizer import train_handwritten

    # validation_split=2 is refused before any work: only the argument handling runs.
    for old, new in (("train_dir", "folders"), ("eval_dirs", "eval_folders")):
        value = "data" if old == "train_dir" else ["data"]
        first = {"folders": "data"} if old == "eval_dirs" else {}
        with pytest.warns(DeprecationWarning, match=rf"train_handwritten\({old}=.*`{new}=\.\.\.`"):
            with pytest.raises(ValueError, match="validation_split"):
                train_handwritten(**first, out=tmp_path, validation_split=2, **{old: value})
        with pytest.raises(TypeError, match=rf"both `{old}=` \(deprecated\) and `{new}=`"):
            train_handwritten(**{"folders": "data", new: value, old: value}, out=tmp_path)
    with pytest.raises(TypeError, match=r"both `train_dir=` \(deprecated\) and `folders=`"):
        train_handwritten("data", tmp_path, train_dir="data")


def test_prepare_crohme_positional_call_is_unchanged(crohme_folder, tmp_path):
    from im2latex_encoder.data import prepare_crohme

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        dataset = prepare_crohme(
            crohme_folder, tmp_path / "p.npz", image_size=16, progress=False, workers=1
        )
    assert dataset.image_size == (16, 16)


def test_renamed_arguments_keeps_the_signature_and_docstring():
    import inspect

    from im2latex_encoder.data import scan_crohme_folder

    assert list(inspect.signature(scan_crohme_folder).parameters)[0] == "folders"
    assert "directories=" in scan_crohme_folder.__doc__


def test_renamed_arguments_leaves_unknown_keywords_to_python():
    @renamed_arguments(old="new")
    def f(new=1):
        return new

    with pytest.raises(TypeError, match="unexpected keyword argument 'other'"):
        f(other=2)


def test_deprecation_module_examples_run():
    result = doctest.testmod(_deprecation)
    assert result.attempted > 0 and result.failed == 0
