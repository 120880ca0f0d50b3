"""Pretraining: configs, the resumable fit loop, evaluation, plots and the model card.

Example:
>>> from im2latex_encoder.training import load_config
>>> load_config("quick").name
'quick'
"""

from im2latex_encoder.training.config import PretrainConfig, load_config, named_configs
from im2latex_encoder.training.distillation import EnsembleDistiller
from im2latex_encoder.training.evaluation import evaluate_classifier
from im2latex_encoder.training.run import (
    build_classifier,
    build_optimizer,
    build_trainer,
    pretrain,
)

__all__ = [
    "EnsembleDistiller",
    "PretrainConfig",
    "build_classifier",
    "build_optimizer",
    "build_trainer",
    "evaluate_classifier",
    "load_config",
    "named_configs",
    "pretrain",
]
