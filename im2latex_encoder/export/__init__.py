"""Exports for serving: the encoder or classifier, the formula recognizer, and its runner.

| module | exports |
| --- | --- |
| `encoder` | `export_model`: an encoder or classifier as SavedModel, TFLite or ONNX (uint8 in) |
| `recognizer` | `export_recognizer`: a formula recognizer's encoder and decoding step, with a runner |
| `runner` | `ExportedRecognizer`: greedy and beam decoding in numpy on ONNX Runtime or LiteRT |

`im2latex_encoder.export` re-exports what the single module of that name exported before it
became this package, so ``from im2latex_encoder.export import export_model`` keeps working.
The runner also runs as a command: ``python -m im2latex_encoder.export.runner IMAGE --folder
EXPORTED`` (an exported folder carries its own copy, ``runner.py``).

Example:
>>> from im2latex_encoder.export import FORMATS, export_model
>>> FORMATS
('savedmodel', 'tflite', 'onnx')
"""

from im2latex_encoder.export.encoder import (
    FLOAT_TOLERANCE,
    FORMATS,
    INPUT_NAME,
    ONNX_OPSET,
    PARTS,
    QUANTIZATIONS,
    QUANTIZED_RELATIVE_TOLERANCE,
    SIGNATURE,
    ExportError,
    ExportResult,
    export_model,
)
from im2latex_encoder.export.recognizer import RecognizerExportResult, export_recognizer

__all__ = [
    "FLOAT_TOLERANCE",
    "FORMATS",
    "INPUT_NAME",
    "ONNX_OPSET",
    "PARTS",
    "QUANTIZATIONS",
    "QUANTIZED_RELATIVE_TOLERANCE",
    "SIGNATURE",
    "ExportError",
    "ExportResult",
    "ExportedRecognizer",
    "RecognizerExportResult",
    "export_model",
    "export_recognizer",
]


def __getattr__(name: str):
    # The runner is imported on first use, so `python -m im2latex_encoder.export.runner` runs
    # a module that is not already imported.
    if name == "ExportedRecognizer":
        from im2latex_encoder.export.runner import ExportedRecognizer

        return ExportedRecognizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
