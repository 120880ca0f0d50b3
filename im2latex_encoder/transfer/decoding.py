"""Deprecated: decoding moved to `im2latex_encoder.recognizer` (this module goes in 0.3.0).

Example:
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     from im2latex_encoder.transfer.decoding import beam_search_decode
>>> beam_search_decode.__module__, caught[0].category.__name__
('im2latex_encoder.recognizer.decoding', 'DeprecationWarning')
"""

from im2latex_encoder._deprecation import moved_names

__getattr__ = moved_names(
    __name__,
    {
        "END_ID": "im2latex_encoder.recognizer.decoding",
        "PAD_ID": "im2latex_encoder.recognizer.decoding",
        "START_ID": "im2latex_encoder.recognizer.decoding",
        "beam_search_decode": "im2latex_encoder.recognizer.decoding",
        "greedy_decode": "im2latex_encoder.recognizer.decoding",
    },
)
