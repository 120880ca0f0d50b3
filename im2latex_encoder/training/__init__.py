"""Pretraining: configs, the resumable fit loop, evaluation, plots and the model card.

Example:
>>> from im2latex_encoder.training import load_config
>>> load_config("quick").name
'quick'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from im2latex_encoder.training.config import PretrainConfig, load_config, named_configs
    from im2latex_encoder.training.distillation import EnsembleDistiller
    from im2latex_encoder.training.evaluation import evaluate_classifier
    from im2latex_encoder.training.run import (
        build_classifier,
        build_optimizer,
        build_trainer,
        pretrain,
    )

# Imported on first use: a submodule (`training.plots`, `training.data_sources`) must not load
# Keras and TensorFlow through this package, or the command line's `--help` would.
_LAZY = {
    "EnsembleDistiller": "im2latex_encoder.training.distillation",
    "PretrainConfig": "im2latex_encoder.training.config",
    "build_classifier": "im2latex_encoder.training.run",
    "build_optimizer": "im2latex_encoder.training.run",
    "build_trainer": "im2latex_encoder.training.run",
    "evaluate_classifier": "im2latex_encoder.training.evaluation",
    "load_config": "im2latex_encoder.training.config",
    "named_configs": "im2latex_encoder.training.config",
    "pretrain": "im2latex_encoder.training.run",
}

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


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'im2latex_encoder.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
