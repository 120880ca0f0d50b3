"""Image-to-LaTeX transfer: the pretrained `SymbolEncoder` feeding an attention decoder.

`FormulaRecognizer` joins a `SymbolEncoder` (the backbone) through its `FeatureGridNeck`
(projection to the decoder's width, layer norm, 2D positional encoding, flattening) to a small
Transformer `FormulaDecoder`; `greedy_decode` and
`beam_search_decode` read formulas; `token_accuracy` and `exact_match_rate` score them.
`train_handwritten`, `load_recognizer`, `recognize_images` and `evaluate_expressions` (ExpRate)
do the same on handwritten CROHME expressions.
The formula data comes from `im2latex_encoder.formulas`.

Example:
>>> import numpy as np
>>> from im2latex_encoder import SymbolEncoder
>>> from im2latex_encoder.transfer import FormulaRecognizer, greedy_decode
>>> model = FormulaRecognizer(SymbolEncoder(), vocabulary_size=118, hidden_dim=32,
...                           num_layers=1, max_length=8)
>>> len(greedy_decode(model, np.zeros((3, 64, 128, 1), "float32")))
3
"""

from im2latex_encoder.transfer.decoder import DecoderBlock, FormulaDecoder
from im2latex_encoder.transfer.decoding import beam_search_decode, greedy_decode
from im2latex_encoder.transfer.handwritten import (
    DrawSettings,
    ExpressionBatches,
    evaluate_expressions,
    load_recognizer,
    recognize_images,
    save_recognizer,
    train_handwritten,
)
from im2latex_encoder.transfer.metrics import (
    MaskedTokenAccuracy,
    edit_distance,
    exact_match_rate,
    expression_rates,
    strip_special,
    token_accuracy,
)
from im2latex_encoder.transfer.recognizer import FormulaRecognizer
from im2latex_encoder.transfer.training import (
    compile_recognizer,
    evaluate_recognizer,
    fit_with_curve,
)

__all__ = [
    "DecoderBlock",
    "DrawSettings",
    "ExpressionBatches",
    "FormulaDecoder",
    "FormulaRecognizer",
    "MaskedTokenAccuracy",
    "beam_search_decode",
    "compile_recognizer",
    "edit_distance",
    "evaluate_expressions",
    "evaluate_recognizer",
    "exact_match_rate",
    "expression_rates",
    "fit_with_curve",
    "greedy_decode",
    "load_recognizer",
    "recognize_images",
    "save_recognizer",
    "strip_special",
    "token_accuracy",
    "train_handwritten",
]
