"""Deprecated: the metrics moved to `im2latex_encoder.recognizer` (this module goes in 0.3.0).

Example:
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     from im2latex_encoder.transfer.metrics import MaskedTokenAccuracy
>>> MaskedTokenAccuracy.__module__, caught[0].category.__name__
('im2latex_encoder.recognizer.metrics', 'DeprecationWarning')
"""

from im2latex_encoder._deprecation import moved_names

__getattr__ = moved_names(
    __name__,
    {
        "MaskedTokenAccuracy": "im2latex_encoder.recognizer.metrics",
        "edit_distance": "im2latex_encoder.recognizer.metrics",
        "exact_match_rate": "im2latex_encoder.recognizer.metrics",
        "expression_rates": "im2latex_encoder.recognizer.metrics",
        "strip_special": "im2latex_encoder.recognizer.metrics",
        "token_accuracy": "im2latex_encoder.recognizer.metrics",
    },
)
