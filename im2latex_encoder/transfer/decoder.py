"""Deprecated: the decoder moved to `im2latex_encoder.recognizer` (this module goes in 0.3.0).

Example:
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     from im2latex_encoder.transfer.decoder import DecoderBlock
>>> DecoderBlock.__module__, caught[0].category.__name__
('im2latex_encoder.recognizer.decoder', 'DeprecationWarning')
"""

from im2latex_encoder._deprecation import moved_names

__getattr__ = moved_names(
    __name__,
    {
        "DecoderBlock": "im2latex_encoder.recognizer.decoder",
        "FormulaDecoder": "im2latex_encoder.recognizer.decoder",
    },
)
