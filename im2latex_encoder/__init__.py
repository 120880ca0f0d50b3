"""im2latex_encoder: a pretrained Keras 3 encoder for handwritten math symbols and formulas.

Example:
>>> from im2latex_encoder import SymbolEncoder, SymbolClassifier, CROHME_SYMBOLS
>>> len(CROHME_SYMBOLS)
101
"""

from im2latex_encoder.classifier import SymbolClassifier
from im2latex_encoder.encoder import SymbolEncoder
from im2latex_encoder.heads import ClassificationHead
from im2latex_encoder.positional import PositionalEncoding2D
from im2latex_encoder.presets import PresetError, list_presets, preset_metadata
from im2latex_encoder.symbols import CROHME_SYMBOLS, crohme_labels, symbol_to_latex
from im2latex_encoder.version import __version__

__all__ = [
    "CROHME_SYMBOLS",
    "ClassificationHead",
    "PositionalEncoding2D",
    "PresetError",
    "SymbolClassifier",
    "SymbolEncoder",
    "__version__",
    "crohme_labels",
    "list_presets",
    "preset_metadata",
    "symbol_to_latex",
]
