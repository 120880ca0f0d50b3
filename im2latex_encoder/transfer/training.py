"""Deprecated: the training helpers moved to `im2latex_encoder.recognizer` (this module goes in 0.3.0).

Example:
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     from im2latex_encoder.transfer.training import compile_recognizer
>>> compile_recognizer.__module__, caught[0].category.__name__
('im2latex_encoder.recognizer.training', 'DeprecationWarning')
"""

from im2latex_encoder._deprecation import moved_names

__getattr__ = moved_names(
    __name__,
    {
        "compile_recognizer": "im2latex_encoder.recognizer.training",
        "evaluate_recognizer": "im2latex_encoder.recognizer.training",
        "fit_with_curve": "im2latex_encoder.recognizer.training",
    },
)
