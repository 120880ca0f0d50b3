import doctest
import importlib

import pytest

import im2latex_encoder

CORE_MODULES = [
    "symbols",
    "positional",
    "neck",
    "encoder",
    "heads",
    "classifier",
    "presets",
    "recognizer.formula_recognizer",
]


def test_public_names_have_docstrings_with_examples():
    assert {
        "SymbolEncoder",
        "SymbolClassifier",
        "ClassificationHead",
        "FeatureGridNeck",
        "list_presets",
    } <= set(im2latex_encoder.__all__)
    for name in im2latex_encoder.__all__:
        obj = getattr(im2latex_encoder, name)
        if name.startswith("__") or isinstance(obj, tuple):
            continue
        assert obj.__doc__ and "Example" in obj.__doc__, f"{name} needs a docstring with an example"


@pytest.mark.parametrize("module_name", CORE_MODULES)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(f"im2latex_encoder.{module_name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"im2latex_encoder.{module_name} has no doctest that runs"
    assert result.failed == 0


def test_version_is_reported():
    assert im2latex_encoder.__version__.count(".") == 2
