"""im2latex_encoder: a pretrained Keras 3 encoder for handwritten math symbols and formulas.

The model classes are imported on first use, so that the data tools and the command line's
`prepare` and `show` start without loading a deep-learning framework.

Example:
>>> from im2latex_encoder import SymbolEncoder, SymbolClassifier, CROHME_SYMBOLS
>>> len(CROHME_SYMBOLS)
101
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from im2latex_encoder.symbols import CROHME_SYMBOLS, crohme_labels, symbol_to_latex
from im2latex_encoder.version import __version__

if TYPE_CHECKING:
    from im2latex_encoder.classifier import SymbolClassifier
    from im2latex_encoder.context import ExpressionContext
    from im2latex_encoder.encoder import SymbolEncoder
    from im2latex_encoder.heads import ClassificationHead
    from im2latex_encoder.neck import FeatureGridNeck
    from im2latex_encoder.positional import PositionalEncoding2D
    from im2latex_encoder.presets import PresetError, list_presets, preset_metadata
    from im2latex_encoder.recognizer.formula_recognizer import FormulaRecognizer
    from im2latex_encoder.recognizer.stroke_recognizer import StrokeRecognizer

_LAZY = {
    "ClassificationHead": "im2latex_encoder.heads",
    "ExpressionContext": "im2latex_encoder.context",
    "FeatureGridNeck": "im2latex_encoder.neck",
    "FormulaRecognizer": "im2latex_encoder.recognizer.formula_recognizer",
    "PositionalEncoding2D": "im2latex_encoder.positional",
    "PresetError": "im2latex_encoder.presets",
    "SymbolClassifier": "im2latex_encoder.classifier",
    "StrokeRecognizer": "im2latex_encoder.recognizer.stroke_recognizer",
    "SymbolEncoder": "im2latex_encoder.encoder",
    "list_presets": "im2latex_encoder.presets",
    "preset_metadata": "im2latex_encoder.presets",
}

__all__ = [
    "CROHME_SYMBOLS",
    "ClassificationHead",
    "ExpressionContext",
    "FeatureGridNeck",
    "FormulaRecognizer",
    "PositionalEncoding2D",
    "PresetError",
    "StrokeRecognizer",
    "SymbolClassifier",
    "SymbolEncoder",
    "__version__",
    "crohme_labels",
    "list_presets",
    "preset_metadata",
    "symbol_to_latex",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'im2latex_encoder' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
