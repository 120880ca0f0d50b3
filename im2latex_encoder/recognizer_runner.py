"""Deprecated: moved to `im2latex_encoder.export.runner` (this module goes in 0.3.0).

An exported folder carries its own copy, ``runner.py``; run that one
(``python runner.py IMAGE``), or ``python -m im2latex_encoder.export.runner``.

Example:
>>> import warnings
>>> with warnings.catch_warnings():
...     warnings.simplefilter("ignore", DeprecationWarning)
...     from im2latex_encoder.recognizer_runner import ExportedRecognizer
>>> ExportedRecognizer.__module__
'im2latex_encoder.export.runner'
"""

from im2latex_encoder._deprecation import moved_names

__getattr__ = moved_names(
    __name__,
    {
        name: "im2latex_encoder.export.runner"
        for name in (
            "BACKENDS",
            "MANIFEST_FILE",
            "SIGNATURE",
            "ExportedRecognizer",
            "decode",
            "main",
            "read_images",
        )
    },
)
