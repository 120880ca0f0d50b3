"""The formula recognizer: the pretrained `SymbolEncoder` reading LaTeX through a decoder.

Laid out as keras-hub lays out an encoder-decoder model, one job a module:

| module | holds |
| --- | --- |
| `formula_recognizer` | `FormulaRecognizer`, the task: backbone (`SymbolEncoder`) + neck + decoder |
| `decoder` | `FormulaDecoder` and its `DecoderBlock` (cached self- and cross-attention) |
| `decoding` | generation: `greedy_decode`, `beam_search_decode` (each with a `logits_processor`) |
| `symbol_count` | `SymbolCountPrior`: beam search writes as many symbols as the strokes hold |
| `latex_grammar` | `LatexGrammar`: beam search writes only what a caption can be (braces balanced) |
| `preprocessor` | `DrawSettings` (ink to image), `pad_batch`, `bucket_batches`, `symbol_size_for` |
| `vocabulary` | CROHME's vocabulary and each expression's token target |
| `batches` | `ExpressionBatches`, teacher-forcing batches of drawn expressions |
| `saving` | `load_formula_recognizer` (a preset or an older folder); the deprecated `save_recognizer` / `load_recognizer` |
| `evaluation` | `recognize_images`, `evaluate_expressions` (ExpRate) |
| `metrics` | `edit_distance`, `expression_rates`, `MaskedTokenAccuracy`, ... |
| `training` | `compile_recognizer`, `fit_with_curve`, `evaluate_recognizer` (typeset formulas) |
| `handwritten_training` | `train_handwritten`: the resumable CROHME training run |

The tokenizer (`Vocabulary`) and the ink (`InkExpressions`) are data, in
`im2latex_encoder.formulas`; the exports are in `im2latex_encoder.export`.

Example:
>>> import numpy as np
>>> from im2latex_encoder import SymbolEncoder
>>> from im2latex_encoder.recognizer import FormulaRecognizer, greedy_decode
>>> model = FormulaRecognizer(SymbolEncoder(), vocabulary_size=118, hidden_dim=32,
...                           num_layers=1, max_length=8)
>>> len(greedy_decode(model, np.zeros((3, 64, 128, 1), "float32")))
3
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Imported on first use: the numpy-only modules (`stroke_tokens`, `stroke_components`) are
# imported by exported runners, which must not start Keras or TensorFlow.
if TYPE_CHECKING:
    from im2latex_encoder.recognizer.batches import ExpressionBatches
    from im2latex_encoder.recognizer.decoder import DecoderBlock, FormulaDecoder
    from im2latex_encoder.recognizer.decoding import beam_search_decode, greedy_decode
    from im2latex_encoder.recognizer.evaluation import evaluate_expressions, recognize_images
    from im2latex_encoder.recognizer.formula_recognizer import FormulaRecognizer
    from im2latex_encoder.recognizer.handwritten_training import train_handwritten
    from im2latex_encoder.recognizer.latex_grammar import LatexGrammar
    from im2latex_encoder.recognizer.metrics import (
        MaskedTokenAccuracy,
        edit_distance,
        exact_match_rate,
        expression_rates,
        strip_special,
        token_accuracy,
    )
    from im2latex_encoder.recognizer.preprocessor import (
        DrawSettings,
        bucket_batches,
        pad_batch,
        symbol_size_for,
    )
    from im2latex_encoder.recognizer.saving import (
        load_formula_recognizer,
        load_recognizer,
        save_recognizer,
    )
    from im2latex_encoder.recognizer.stroke_recognizer import StrokeRecognizer
    from im2latex_encoder.recognizer.stroke_tokens import StrokeDrawing
    from im2latex_encoder.recognizer.stroke_training import train_strokes
    from im2latex_encoder.recognizer.symbol_count import SymbolCountPrior
    from im2latex_encoder.recognizer.symbol_cutter import SymbolCutter, train_symbol_cutter
    from im2latex_encoder.recognizer.training import (
        compile_recognizer,
        evaluate_recognizer,
        fit_with_curve,
    )
    from im2latex_encoder.recognizer.vocabulary import crohme_vocabulary, expression_targets

_LAZY = {
    "DecoderBlock": "im2latex_encoder.recognizer.decoder",
    "DrawSettings": "im2latex_encoder.recognizer.preprocessor",
    "ExpressionBatches": "im2latex_encoder.recognizer.batches",
    "FormulaDecoder": "im2latex_encoder.recognizer.decoder",
    "FormulaRecognizer": "im2latex_encoder.recognizer.formula_recognizer",
    "MaskedTokenAccuracy": "im2latex_encoder.recognizer.metrics",
    "beam_search_decode": "im2latex_encoder.recognizer.decoding",
    "bucket_batches": "im2latex_encoder.recognizer.preprocessor",
    "compile_recognizer": "im2latex_encoder.recognizer.training",
    "crohme_vocabulary": "im2latex_encoder.recognizer.vocabulary",
    "edit_distance": "im2latex_encoder.recognizer.metrics",
    "evaluate_expressions": "im2latex_encoder.recognizer.evaluation",
    "evaluate_recognizer": "im2latex_encoder.recognizer.training",
    "exact_match_rate": "im2latex_encoder.recognizer.metrics",
    "expression_rates": "im2latex_encoder.recognizer.metrics",
    "expression_targets": "im2latex_encoder.recognizer.vocabulary",
    "fit_with_curve": "im2latex_encoder.recognizer.training",
    "greedy_decode": "im2latex_encoder.recognizer.decoding",
    "load_formula_recognizer": "im2latex_encoder.recognizer.saving",
    "load_recognizer": "im2latex_encoder.recognizer.saving",
    "pad_batch": "im2latex_encoder.recognizer.preprocessor",
    "recognize_images": "im2latex_encoder.recognizer.evaluation",
    "save_recognizer": "im2latex_encoder.recognizer.saving",
    "strip_special": "im2latex_encoder.recognizer.metrics",
    "symbol_size_for": "im2latex_encoder.recognizer.preprocessor",
    "token_accuracy": "im2latex_encoder.recognizer.metrics",
    "train_handwritten": "im2latex_encoder.recognizer.handwritten_training",
    "StrokeRecognizer": "im2latex_encoder.recognizer.stroke_recognizer",
    "StrokeDrawing": "im2latex_encoder.recognizer.stroke_tokens",
    "train_strokes": "im2latex_encoder.recognizer.stroke_training",
    "SymbolCountPrior": "im2latex_encoder.recognizer.symbol_count",
    "SymbolCutter": "im2latex_encoder.recognizer.symbol_cutter",
    "train_symbol_cutter": "im2latex_encoder.recognizer.symbol_cutter",
    "LatexGrammar": "im2latex_encoder.recognizer.latex_grammar",
}

__all__ = [
    "DecoderBlock",
    "DrawSettings",
    "ExpressionBatches",
    "FormulaDecoder",
    "FormulaRecognizer",
    "LatexGrammar",
    "MaskedTokenAccuracy",
    "StrokeDrawing",
    "StrokeRecognizer",
    "SymbolCountPrior",
    "SymbolCutter",
    "beam_search_decode",
    "bucket_batches",
    "compile_recognizer",
    "crohme_vocabulary",
    "edit_distance",
    "evaluate_expressions",
    "evaluate_recognizer",
    "exact_match_rate",
    "expression_rates",
    "expression_targets",
    "fit_with_curve",
    "greedy_decode",
    "load_formula_recognizer",
    "load_recognizer",
    "pad_batch",
    "recognize_images",
    "save_recognizer",
    "strip_special",
    "symbol_size_for",
    "token_accuracy",
    "train_handwritten",
    "train_strokes",
    "train_symbol_cutter",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
