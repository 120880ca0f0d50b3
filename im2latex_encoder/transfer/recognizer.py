"""Deprecated: `FormulaRecognizer` moved to `im2latex_encoder.recognizer` (this module goes in 0.3.0).

Example:
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     from im2latex_encoder.transfer.recognizer import FormulaRecognizer
>>> FormulaRecognizer.__module__, caught[0].category.__name__
('im2latex_encoder.recognizer.formula_recognizer', 'DeprecationWarning')
"""

from im2latex_encoder._deprecation import moved_names

__getattr__ = moved_names(
    __name__,
    {
        "FormulaRecognizer": "im2latex_encoder.recognizer.formula_recognizer",
    },
)
