"""Deprecated: the formula recognizer moved to `im2latex_encoder.recognizer` (this package goes in 0.3.0).

Every name `transfer` exported still imports from here and from its submodules
(`transfer.recognizer`, `transfer.handwritten`, `transfer.decoding`, ...), with a
`DeprecationWarning` naming the module that holds it now.

Example:
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     from im2latex_encoder.transfer import FormulaRecognizer
>>> FormulaRecognizer.__module__, caught[0].category.__name__
('im2latex_encoder.recognizer.formula_recognizer', 'DeprecationWarning')
"""

from im2latex_encoder._deprecation import moved_names

__all__ = [
    "DecoderBlock",
    "DrawSettings",
    "ExpressionBatches",
    "FormulaDecoder",
    "FormulaRecognizer",
    "MaskedTokenAccuracy",
    "beam_search_decode",
    "compile_recognizer",
    "edit_distance",
    "evaluate_expressions",
    "evaluate_recognizer",
    "exact_match_rate",
    "expression_rates",
    "fit_with_curve",
    "greedy_decode",
    "load_recognizer",
    "recognize_images",
    "save_recognizer",
    "strip_special",
    "token_accuracy",
    "train_handwritten",
]

__getattr__ = moved_names(
    __name__,
    {
        "DecoderBlock": "im2latex_encoder.recognizer.decoder",
        "DrawSettings": "im2latex_encoder.recognizer.preprocessor",
        "ExpressionBatches": "im2latex_encoder.recognizer.batches",
        "FormulaDecoder": "im2latex_encoder.recognizer.decoder",
        "FormulaRecognizer": "im2latex_encoder.recognizer.formula_recognizer",
        "MaskedTokenAccuracy": "im2latex_encoder.recognizer.metrics",
        "beam_search_decode": "im2latex_encoder.recognizer.decoding",
        "compile_recognizer": "im2latex_encoder.recognizer.training",
        "edit_distance": "im2latex_encoder.recognizer.metrics",
        "evaluate_expressions": "im2latex_encoder.recognizer.evaluation",
        "evaluate_recognizer": "im2latex_encoder.recognizer.training",
        "exact_match_rate": "im2latex_encoder.recognizer.metrics",
        "expression_rates": "im2latex_encoder.recognizer.metrics",
        "fit_with_curve": "im2latex_encoder.recognizer.training",
        "greedy_decode": "im2latex_encoder.recognizer.decoding",
        "load_recognizer": "im2latex_encoder.recognizer.saving",
        "recognize_images": "im2latex_encoder.recognizer.evaluation",
        "save_recognizer": "im2latex_encoder.recognizer.saving",
        "strip_special": "im2latex_encoder.recognizer.metrics",
        "token_accuracy": "im2latex_encoder.recognizer.metrics",
        "train_handwritten": "im2latex_encoder.recognizer.handwritten_training",
    },
)
