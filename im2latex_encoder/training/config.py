"""Pretraining configurations: a frozen dataclass, and the named JSON configs shipped."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

_CONFIG_DIR = Path(__file__).parent / "configs"
_OPTIMIZERS = ("adamw", "adam")
_SCHEDULES = ("constant", "cosine")
_MIXED_PRECISION = ("off", "auto", "bfloat16")
_VALIDATION_BY = ("expression", "writer")


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Everything that decides a pretraining run, so a run can be reproduced from its JSON.

    Args:
        name: str. The configuration's name (`quick`, `full`, `seed`, or your own).
        description: str. One line on what it is for.
        image_size: int. Square training image side.
        filters: tuple of int. `SymbolEncoder` stages.
        normalization: str or None. `SymbolEncoder` normalization.
        padding: str. `SymbolEncoder` padding.
        pooling: str. `ClassificationHead` pooling.
        hidden_units: int or None. `ClassificationHead` hidden layer.
        dropout: float. `ClassificationHead` dropout.
        batch_size: int. Global batch size.
        epochs: int. Epochs to train.
        steps_per_epoch: int. Steps per epoch (synthetic data is endless; a cache is cycled).
        optimizer: str. `"adamw"` or `"adam"`.
        learning_rate: float. Peak learning rate.
        weight_decay: float. AdamW's decoupled weight decay.
        schedule: str. `"constant"` or `"cosine"` (linear warm-up, then cosine decay to 0).
        warmup_fraction: float. Share of all steps spent warming up.
        label_smoothing: float. Label smoothing of the cross-entropy.
        ema_momentum: float or None. Keep an exponential moving average of the weights with
            this momentum (e.g. 0.999) and end the run with the averaged weights; None: off.
        augment: dict. `rotation`, `zoom`, `translation` of `augmentation_layers` (empty: none).
        synthetic: dict. Options of `SyntheticSymbols` (`layout`, `ink`, `distortion`, ...).
        synthetic_share: float. Share of each batch drawn from synthetic symbols when CROHME
            data is mixed in.
        validation_per_class: int. Held-out-font synthetic validation images per class.
        ink_augment: dict or None. For CROHME data: None trains on rendered images (the
            `augment` layers apply); a dict (`InkAugment` fields, `{}` for none) keeps the
            strokes and augments the ink before drawing every batch.
        validation_split: float. Share of the CROHME training expressions held out (whole
            expressions, by a hash of the file name) as the validation set that `fit` reports
            and choices are made on; 0 keeps them all and validates on synthetic symbols.
        split_seed: int or None. Seeds which expressions are held out; None uses `seed`. Give
            runs of different seeds one `split_seed` to compare them (or ensemble and distil
            them) on one held-out slice that none of them trained on.
        validation_by: str. What `validation_split` holds out whole: `"expression"` (each
            file on one side) or `"writer"` (every expression of a held-out writer, by the
            files' ``writer`` annotation, so validation writers are new to the model as the
            test set's are; files without one always train).
        context_scale: bool or float. Draw each real symbol at its size in its expression (a
            comma small, an ``x`` smaller than an ``X``) instead of fitting every symbol to the
            image: CROHME data only; the preset records it so evaluation draws the same way.
            True: the expression's typical symbol fills the image; a float in (0, 1]: it fills
            that share, so larger symbols are drawn larger (`data.ink.context_fill`).
        mixed_precision: str. `"off"`, `"bfloat16"`, or `"auto"` (bfloat16 where the CPU has
            AVX512-BF16 or AMX and the backend is TensorFlow).
        seed: int. Seeds weights, data and augmentation.

    Example:
    >>> config = load_config("quick")
    >>> config.name, config.optimizer
    ('quick', 'adamw')
    >>> small = config.replace(epochs=1, steps_per_epoch=5)
    """

    name: str = "custom"
    description: str = ""
    image_size: int = 128
    filters: tuple = (32, 64, 64)
    normalization: str | None = "batch"
    padding: str = "valid"
    pooling: str = "avg"
    hidden_units: int | None = None
    dropout: float = 0.0
    batch_size: int = 64
    epochs: int = 10
    steps_per_epoch: int = 200
    optimizer: str = "adamw"
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_fraction: float = 0.05
    label_smoothing: float = 0.1
    ema_momentum: float | None = None
    augment: dict = dataclasses.field(default_factory=dict)
    synthetic: dict = dataclasses.field(default_factory=dict)
    synthetic_share: float = 0.5
    validation_per_class: int = 20
    ink_augment: dict | None = None
    validation_split: float = 0.0
    split_seed: int | None = None
    validation_by: str = "expression"
    context_scale: bool | float = False
    mixed_precision: str = "off"
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "filters", tuple(int(f) for f in self.filters))
        checks = [
            (
                self.optimizer in _OPTIMIZERS,
                f"`optimizer` must be one of {_OPTIMIZERS}. Received: optimizer={self.optimizer!r}",
            ),
            (
                self.schedule in _SCHEDULES,
                f"`schedule` must be one of {_SCHEDULES}. Received: schedule={self.schedule!r}",
            ),
            (
                self.mixed_precision in _MIXED_PRECISION,
                f"`mixed_precision` must be one of {_MIXED_PRECISION}. Received: mixed_precision={self.mixed_precision!r}",
            ),
            (self.epochs >= 1, f"`epochs` must be >= 1. Received: epochs={self.epochs}"),
            (
                self.steps_per_epoch >= 1,
                f"`steps_per_epoch` must be >= 1. Received: steps_per_epoch={self.steps_per_epoch}",
            ),
            (
                self.batch_size >= 1,
                f"`batch_size` must be >= 1. Received: batch_size={self.batch_size}",
            ),
            (
                self.learning_rate > 0,
                f"`learning_rate` must be > 0. Received: learning_rate={self.learning_rate}",
            ),
            (
                0 <= self.warmup_fraction < 1,
                f"`warmup_fraction` must be in [0, 1). Received: warmup_fraction={self.warmup_fraction}",
            ),
            (
                0 <= self.label_smoothing < 1,
                f"`label_smoothing` must be in [0, 1). Received: label_smoothing={self.label_smoothing}",
            ),
            (
                0 < self.synthetic_share <= 1,
                f"`synthetic_share` must be in (0, 1]. Received: synthetic_share={self.synthetic_share}",
            ),
            (
                set(self.augment) <= {"rotation", "zoom", "translation"},
                f"`augment` takes rotation, zoom, translation. Received: {sorted(self.augment)}",
            ),
            (
                self.ema_momentum is None or 0 < self.ema_momentum < 1,
                f"`ema_momentum` must be None or in (0, 1). Received: ema_momentum={self.ema_momentum}",
            ),
            (
                self.validation_by in _VALIDATION_BY,
                f"`validation_by` must be one of {_VALIDATION_BY}. Received: validation_by={self.validation_by!r}",
            ),
            (
                0 <= self.validation_split < 1,
                f"`validation_split` must be in [0, 1). Received: validation_split={self.validation_split}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        from im2latex_encoder.data.ink import context_fill

        context_fill(self.context_scale)  # raises, saying what it takes
        if self.ink_augment is not None:
            from im2latex_encoder.data.ink import InkAugment

            InkAugment.from_dict(self.ink_augment)  # raises, naming the bad field

    @property
    def total_steps(self) -> int:
        """Optimizer steps in the whole run.

        Example:
        >>> PretrainConfig(epochs=3, steps_per_epoch=10).total_steps
        30
        """
        return self.epochs * self.steps_per_epoch

    def replace(self, **changes) -> PretrainConfig:
        """A copy with some fields changed (validated again).

        Example:
        >>> PretrainConfig().replace(epochs=2).epochs
        2
        """
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(
                f"Unknown config fields: {sorted(unknown)}. Expected some of {sorted(f.name for f in dataclasses.fields(self))}"
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable form; `PretrainConfig(**d)` rebuilds it.

        Example:
        >>> PretrainConfig(**PretrainConfig().to_dict()) == PretrainConfig()
        True
        """
        data = dataclasses.asdict(self)
        data["filters"] = list(self.filters)
        return data


def named_configs() -> tuple[str, ...]:
    """Names of the shipped configurations.

    Example:
    >>> named_configs()
    ('crohme', 'full', 'quick', 'seed')
    """
    return tuple(sorted(p.stem for p in _CONFIG_DIR.glob("*.json")))


def load_config(name_or_path: str | os.PathLike) -> PretrainConfig:
    """Load a shipped configuration by name, or a JSON file.

    Args:
        name_or_path: str or PathLike. A name of `named_configs()` (`crohme`, `full`,
            `quick`, `seed`) or a path to a JSON file of `PretrainConfig` fields.

    Raises:
        ValueError: for an unknown name, unreadable JSON or unknown fields.

    Example:
    >>> load_config("seed").optimizer
    'adam'
    """
    path = Path(name_or_path)
    if not path.suffix and str(name_or_path) in named_configs():
        path = _CONFIG_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise ValueError(
            f"`--config` must be one of {list(named_configs())} or a JSON file. "
            f"Received: {str(name_or_path)!r}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: expected a JSON object of config fields. Received: {type(data).__name__}"
        )
    data.pop("$comment", None)
    unknown = set(data) - {f.name for f in dataclasses.fields(PretrainConfig)}
    if unknown:
        raise ValueError(f"{path}: unknown config fields {sorted(unknown)}")
    return PretrainConfig(**data)
