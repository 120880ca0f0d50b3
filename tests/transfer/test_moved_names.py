"""`im2latex_encoder.transfer` and the old export modules: every moved name still imports, warns.

The recognizer moved to `im2latex_encoder.recognizer` and the exports to the
`im2latex_encoder.export` package; the old paths re-export each name for one release with a
`DeprecationWarning` that names the new home.
"""

import importlib
import warnings

import keras
import pytest

import im2latex_encoder
from im2latex_encoder import recognizer
from im2latex_encoder._deprecation import REMOVED_IN

R = "im2latex_encoder.recognizer"
# Every (old module, name) people imported, and the module that holds the name now.
MOVED = {
    "im2latex_encoder.transfer": {
        "DecoderBlock": f"{R}.decoder",
        "DrawSettings": f"{R}.preprocessor",
        "ExpressionBatches": f"{R}.batches",
        "FormulaDecoder": f"{R}.decoder",
        "FormulaRecognizer": f"{R}.formula_recognizer",
        "MaskedTokenAccuracy": f"{R}.metrics",
        "beam_search_decode": f"{R}.decoding",
        "compile_recognizer": f"{R}.training",
        "edit_distance": f"{R}.metrics",
        "evaluate_expressions": f"{R}.evaluation",
        "evaluate_recognizer": f"{R}.training",
        "exact_match_rate": f"{R}.metrics",
        "expression_rates": f"{R}.metrics",
        "fit_with_curve": f"{R}.training",
        "greedy_decode": f"{R}.decoding",
        "load_recognizer": f"{R}.saving",
        "recognize_images": f"{R}.evaluation",
        "save_recognizer": f"{R}.saving",
        "strip_special": f"{R}.metrics",
        "token_accuracy": f"{R}.metrics",
        "train_handwritten": f"{R}.handwritten_training",
    },
    "im2latex_encoder.transfer.decoder": {
        "DecoderBlock": f"{R}.decoder",
        "FormulaDecoder": f"{R}.decoder",
    },
    "im2latex_encoder.transfer.decoding": {
        "END_ID": f"{R}.decoding",
        "PAD_ID": f"{R}.decoding",
        "START_ID": f"{R}.decoding",
        "beam_search_decode": f"{R}.decoding",
        "greedy_decode": f"{R}.decoding",
    },
    "im2latex_encoder.transfer.metrics": {
        "MaskedTokenAccuracy": f"{R}.metrics",
        "edit_distance": f"{R}.metrics",
        "exact_match_rate": f"{R}.metrics",
        "expression_rates": f"{R}.metrics",
        "strip_special": f"{R}.metrics",
        "token_accuracy": f"{R}.metrics",
    },
    "im2latex_encoder.transfer.recognizer": {"FormulaRecognizer": f"{R}.formula_recognizer"},
    "im2latex_encoder.transfer.training": {
        "compile_recognizer": f"{R}.training",
        "evaluate_recognizer": f"{R}.training",
        "fit_with_curve": f"{R}.training",
    },
    "im2latex_encoder.transfer.handwritten": {
        "DEFAULT_AUGMENT": f"{R}.handwritten_training",
        "DrawSettings": f"{R}.preprocessor",
        "ExpressionBatches": f"{R}.batches",
        "MODEL_FILE": f"{R}.saving",
        "SETTINGS_FILE": f"{R}.saving",
        "VOCABULARY_FILE": f"{R}.saving",
        "crohme_vocabulary": f"{R}.vocabulary",
        "evaluate_expressions": f"{R}.evaluation",
        "expression_targets": f"{R}.vocabulary",
        "load_recognizer": f"{R}.saving",
        "recognize_images": f"{R}.evaluation",
        "save_recognizer": f"{R}.saving",
        "train_handwritten": f"{R}.handwritten_training",
    },
    "im2latex_encoder.formulas": {"symbol_size_for": f"{R}.preprocessor"},
    "im2latex_encoder.formulas.handwritten": {
        "bucket_batches": f"{R}.preprocessor",
        "pad_batch": f"{R}.preprocessor",
        "symbol_size_for": f"{R}.preprocessor",
    },
    "im2latex_encoder.export_recognizer": {
        "RecognizerExportResult": "im2latex_encoder.export.recognizer",
        "export_recognizer": "im2latex_encoder.export.recognizer",
        "LOGIT_RELATIVE_TOLERANCE": "im2latex_encoder.export.recognizer",
    },
    "im2latex_encoder.recognizer_runner": {
        "ExportedRecognizer": "im2latex_encoder.export.runner",
        "decode": "im2latex_encoder.export.runner",
        "main": "im2latex_encoder.export.runner",
        "read_images": "im2latex_encoder.export.runner",
    },
}
CASES = [(old, name, new) for old, names in MOVED.items() for name, new in names.items()]


@pytest.mark.parametrize("old, name, new", CASES, ids=[f"{o}.{n}" for o, n, _ in CASES])
def test_a_moved_name_imports_from_its_old_module_with_a_warning(old, name, new):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning) as caught:
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), name)
    message = str(caught[0].message)
    assert f"`{old}.{name}`" in message and f"`{new}`" in message and REMOVED_IN in message
    assert caught[0].filename == __file__  # the warning points at the caller's line


def test_from_import_of_the_old_package_warns_and_gives_the_new_objects():
    with pytest.warns(DeprecationWarning, match="im2latex_encoder.recognizer"):
        from im2latex_encoder.transfer import FormulaRecognizer, load_recognizer
    with pytest.warns(DeprecationWarning):
        from im2latex_encoder.transfer.handwritten import DrawSettings
    assert FormulaRecognizer is recognizer.FormulaRecognizer
    assert load_recognizer is recognizer.load_recognizer
    assert DrawSettings is recognizer.DrawSettings


def test_the_old_package_lists_what_it_exported_and_refuses_other_names():
    transfer = importlib.import_module("im2latex_encoder.transfer")
    assert set(transfer.__all__) == set(MOVED["im2latex_encoder.transfer"])
    assert set(transfer.__all__) <= set(recognizer.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        transfer.nothing_here  # noqa: B018 - the attribute access is the test


def test_the_new_homes_import_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for name in recognizer.__all__:
            getattr(recognizer, name)
        from im2latex_encoder.export import ExportedRecognizer, export_model, export_recognizer

    assert callable(export_model) and callable(export_recognizer)
    assert ExportedRecognizer.__module__ == "im2latex_encoder.export.runner"


def test_formula_recognizer_is_public_at_the_top_level():
    assert "FormulaRecognizer" in im2latex_encoder.__all__
    assert im2latex_encoder.FormulaRecognizer is recognizer.FormulaRecognizer


def test_registered_names_did_not_move():
    # Saved .keras files and presets record these names; moving the modules must not change them.
    from im2latex_encoder.recognizer.decoder import DecoderBlock, FormulaDecoder
    from im2latex_encoder.recognizer.metrics import MaskedTokenAccuracy

    for cls in (recognizer.FormulaRecognizer, FormulaDecoder, DecoderBlock, MaskedTokenAccuracy):
        assert keras.saving.get_registered_name(cls) == f"im2latex_encoder>{cls.__name__}"


def test_a_config_saved_with_the_old_module_path_still_deserializes():
    # The shipped crohme-formulas-image task.json records `im2latex_encoder.transfer.metrics`.
    config = {
        "module": "im2latex_encoder.transfer.metrics",
        "class_name": "MaskedTokenAccuracy",
        "config": {"name": "token_accuracy", "dtype": "float32", "pad_id": 0},
        "registered_name": "im2latex_encoder>MaskedTokenAccuracy",
    }
    metric = keras.saving.deserialize_keras_object(config)
    assert type(metric) is recognizer.MaskedTokenAccuracy and metric.pad_id == 0
