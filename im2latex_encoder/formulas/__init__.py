"""Typeset formula images and LaTeX tokens for image-to-LaTeX transfer examples.

A random grammar over the 101 CROHME symbols (`random_formulas`), a LaTeX tokenizer and
`Vocabulary`, a mathtext renderer (`render_formula`), a dataset builder for seq2seq training
(`make_formula_dataset`, `make_teacher_forcing_dataset`), a reader for im2latex-100k
(`read_im2latex100k`) and a normaliser of CROHME's raw expression truths into the tokens of
its captions (`normalize_crohme_truth`, `caption_agreement`). TensorFlow is imported only by
`make_teacher_forcing_dataset`.

Example:
>>> from im2latex_encoder.formulas import Vocabulary, random_formulas, render_formula
>>> formula = random_formulas(1, seed=0)[0]
>>> render_formula(formula).shape, Vocabulary.from_grammar().encode(formula)[0]
((64, 512), 1)
"""

from im2latex_encoder._deprecation import moved_names
from im2latex_encoder.formulas.crohme_truth import (
    caption_agreement,
    normalize_crohme_truth,
    read_crohme_captions,
    read_crohme_dictionary,
)
from im2latex_encoder.formulas.dataset import (
    FormulaDataset,
    make_formula_dataset,
    make_teacher_forcing_dataset,
)
from im2latex_encoder.formulas.grammar import FormulaGrammar, grammar_tokens, random_formulas
from im2latex_encoder.formulas.handwritten import (
    ExpressionAugment,
    InkExpressions,
    read_crohme_expressions,
)
from im2latex_encoder.formulas.im2latex100k import (
    Im2LatexError,
    Im2LatexReport,
    find_im2latex_layout,
    load_im2latex_image,
    read_im2latex100k,
    read_im2latex_formulas,
)
from im2latex_encoder.formulas.render import FONTSETS, render_formula
from im2latex_encoder.formulas.tokenizer import (
    Vocabulary,
    detokenize,
    normalize_latex,
    tokenize_latex,
)

__all__ = [
    "ExpressionAugment",
    "InkExpressions",
    "read_crohme_expressions",
    "FONTSETS",
    "FormulaDataset",
    "FormulaGrammar",
    "Im2LatexError",
    "Im2LatexReport",
    "Vocabulary",
    "caption_agreement",
    "detokenize",
    "find_im2latex_layout",
    "grammar_tokens",
    "load_im2latex_image",
    "make_formula_dataset",
    "make_teacher_forcing_dataset",
    "normalize_crohme_truth",
    "normalize_latex",
    "random_formulas",
    "read_crohme_captions",
    "read_crohme_dictionary",
    "read_im2latex100k",
    "read_im2latex_formulas",
    "render_formula",
    "tokenize_latex",
]

# Moved to the recognizer's preprocessor in 0.2.x; importable from here until 0.3.0.
__getattr__ = moved_names(__name__, {"symbol_size_for": "im2latex_encoder.recognizer.preprocessor"})
