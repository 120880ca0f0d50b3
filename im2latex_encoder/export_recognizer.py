"""Deprecated: moved to `im2latex_encoder.export.recognizer` (this module goes in 0.3.0).

Example:
>>> import warnings
>>> with warnings.catch_warnings():
...     warnings.simplefilter("ignore", DeprecationWarning)
...     from im2latex_encoder.export_recognizer import export_recognizer
>>> export_recognizer.__module__
'im2latex_encoder.export.recognizer'
"""

from im2latex_encoder._deprecation import moved_names

__getattr__ = moved_names(
    __name__,
    {
        name: "im2latex_encoder.export.recognizer"
        for name in (
            "FORMATS",
            "GRAPH_FILES",
            "LOGIT_RELATIVE_TOLERANCE",
            "MANIFEST_FILE",
            "PROBE_SHAPES",
            "RUNNER_FILE",
            "RecognizerExportResult",
            "export_recognizer",
        )
    },
)
