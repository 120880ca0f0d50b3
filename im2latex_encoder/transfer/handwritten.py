"""Deprecated: the handwritten recognizer moved to `im2latex_encoder.recognizer` (this module goes in 0.3.0).

Example:
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     from im2latex_encoder.transfer.handwritten import DrawSettings
>>> DrawSettings.__module__, caught[0].category.__name__
('im2latex_encoder.recognizer.preprocessor', 'DeprecationWarning')
"""

from im2latex_encoder._deprecation import moved_names

__getattr__ = moved_names(
    __name__,
    {
        "DEFAULT_AUGMENT": "im2latex_encoder.recognizer.handwritten_training",
        "DrawSettings": "im2latex_encoder.recognizer.preprocessor",
        "ExpressionBatches": "im2latex_encoder.recognizer.batches",
        "MODEL_FILE": "im2latex_encoder.recognizer.saving",
        "SETTINGS_FILE": "im2latex_encoder.recognizer.saving",
        "VOCABULARY_FILE": "im2latex_encoder.recognizer.saving",
        "crohme_vocabulary": "im2latex_encoder.recognizer.vocabulary",
        "evaluate_expressions": "im2latex_encoder.recognizer.evaluation",
        "expression_targets": "im2latex_encoder.recognizer.vocabulary",
        "load_recognizer": "im2latex_encoder.recognizer.saving",
        "recognize_images": "im2latex_encoder.recognizer.evaluation",
        "save_recognizer": "im2latex_encoder.recognizer.saving",
        "train_handwritten": "im2latex_encoder.recognizer.handwritten_training",
    },
)
