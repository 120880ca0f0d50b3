"""Presets: save and load any model of the library as a checked directory, given its class.

A preset directory follows keras-hub's layout:

| file | holds |
| --- | --- |
| `config.json` | the backbone's configuration (`SymbolEncoder`, the conv stack) |
| `model.weights.h5` | the backbone's weights |
| `task.json` | the task's configuration (task presets only: a classifier, a recognizer) |
| `task.weights.h5` | the task's weights, backbone included (task presets only) |
| `labels.json`, ... | the task's assets, one JSON file each (`Task.preset_assets`: a classifier's labels and context, a recognizer's vocabulary and drawing settings) |
| `metadata.json` | what it was trained on, its metrics, the library version, a sha256 of every other file |

This module imports no model. `load_backbone(cls, preset)` and `load_task(cls, preset)` are
handed the class to build: a backbone, or a subclass of `im2latex_encoder.task.Task`, whose
hooks (each with a default) are all a task tells the loader, so one loader serves every model
alike. Every file's sha256 is checked before anything is deserialised, configurations are read
with Keras' `safe_mode` and must describe the class asked for, and weights are HDF5 arrays:
loading a preset never runs code from it. Models register their shipped presets
(`register_presets`).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

from im2latex_encoder._atomic import atomic_directory, recover_interrupted_swap
from im2latex_encoder.version import __version__

FORMAT_VERSION = 1
BACKBONE_CONFIG = "config.json"
BACKBONE_WEIGHTS = "model.weights.h5"
TASK_CONFIG = "task.json"
TASK_WEIGHTS = "task.weights.h5"
METADATA = "metadata.json"
# 0.1.0's names for the backbone's files.
ENCODER_CONFIG = BACKBONE_CONFIG
ENCODER_WEIGHTS = BACKBONE_WEIGHTS
LABELS = "labels.json"
BACKBONE_KIND = "encoder"

SHIPPED_DIR = Path(__file__).parent / "shipped_presets"
# name -> directory, and the registered names of the classes that registered each name.
_REGISTRY: dict[str, Path] = {}
_REGISTERED_FOR: dict[str, set[str]] = {}


class PresetError(ValueError):
    """A preset is unknown, incomplete, or fails its integrity check.

    Example:
    >>> str(PresetError("my_preset", "metadata.json is missing"))
    'preset my_preset: metadata.json is missing'
    """

    def __init__(self, preset: str | os.PathLike, reason: str):
        self.preset = str(preset)
        self.reason = reason
        super().__init__(f"preset {self.preset}: {reason}")


# --- Registry --------------------------------------------------------------------------------


def shipped_preset(name: str) -> Path:
    """Return the directory of a preset shipped inside the package (for `register_presets`).

    Example:
    >>> shipped_preset("crohme101").name
    'crohme101'
    """
    return SHIPPED_DIR / name


def register_presets(cls: type, presets: Mapping[str, str | os.PathLike]) -> None:
    """Register named preset directories as presets of `cls` (and of its tasks' backbone).

    A model module calls this at import for the presets it ships, as keras-hub's
    `register_presets` does; `from_preset(name)` then finds them by name, and
    `list_presets(cls)` lists them.

    Args:
        cls: type. The model class the presets were made for.
        presets: mapping of str to path. Preset names and their directories.

    Raises:
        ValueError: if a name is already registered for another directory.

    Example:
    >>> class MyModel:
    ...     pass
    >>> register_presets(MyModel, {"crohme101": shipped_preset("crohme101")})
    >>> "crohme101" in list_presets(MyModel)
    True
    """
    for name, directory in presets.items():
        directory = Path(directory)
        known = _REGISTRY.get(name)
        if known is not None and known != directory:
            raise ValueError(
                f"Preset {name!r} is already registered for {known}. Received: {directory}"
            )
        _REGISTRY[name] = directory
        _REGISTERED_FOR.setdefault(name, set()).add(_class_key(cls))


def list_presets(cls: type | None = None, *, include_backbone: bool = True) -> tuple[str, ...]:
    """Return the names of the registered presets (those of `cls` and its backbone, if given).

    Without a class: every registered preset and every preset shipped inside the package, so
    the listing needs no model imported. A task lists its backbone's presets too (it can start
    from them); `include_backbone=False` lists only the presets registered for `cls` itself
    (for `FormulaRecognizer`: the trained recognizers, such as `crohme-formulas` once shipped).

    Args:
        cls: type or None. A model class (`SymbolEncoder`, `SymbolClassifier`, ...).
        include_backbone: bool. Also list the presets of `cls.backbone_cls`.

    Example:
    >>> "crohme101" in list_presets()
    True
    >>> class MyTask:
    ...     pass
    >>> list_presets(MyTask, include_backbone=False)
    ()
    """
    if cls is None:
        shipped = (
            {p.name for p in SHIPPED_DIR.iterdir() if (p / METADATA).is_file()}
            if SHIPPED_DIR.is_dir()
            else set()
        )
        return tuple(sorted(shipped | set(_REGISTRY)))
    from im2latex_encoder.task import Task  # the task base imports this module

    keys = {_class_key(cls)}
    if include_backbone and isinstance(cls, type) and issubclass(cls, Task):
        keys.add(_class_key(cls.backbone_cls))
    return tuple(sorted(name for name, owners in _REGISTERED_FOR.items() if owners & keys))


def preset_metadata(preset: str | os.PathLike) -> dict:
    """Return a preset's verified `metadata.json` (training data, metrics, checksums).

    Args:
        preset: str. A registered preset's name or a preset directory.

    Example:
    >>> preset_metadata("crohme101")["kind"]
    'classifier'
    """
    return _verify(resolve_preset(preset))


def resolve_preset(preset: str | os.PathLike) -> Path:
    """Return the directory of a preset given by name or path.

    Raises:
        PresetError: if `preset` is neither a registered or shipped preset's name nor a
            directory.

    Example:
    >>> resolve_preset("crohme101").name
    'crohme101'
    """
    path = Path(preset)
    recover_interrupted_swap(path)
    if path.is_dir():
        return path
    if isinstance(preset, str) and preset in _REGISTRY:
        return _REGISTRY[preset]
    if isinstance(preset, str) and preset in list_presets():
        return SHIPPED_DIR / preset
    raise PresetError(
        preset,
        f"not a preset directory and not a shipped preset. Expected one of {list(list_presets())} "
        f"or a directory. Received: preset={str(preset)!r}",
    )


# --- Saving ----------------------------------------------------------------------------------


def _save_weights_without_optimizer(model, path) -> None:
    """`model.save_weights`, less a compiled model's optimizer state.

    A preset is for reading and fine-tuning: a trained model's Adam moments would double its
    size (a run's checkpoint keeps them for resuming).
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        model.save_weights(path)
        return
    # Keras 3 has no public way to leave the optimizer out of a weights file.
    from keras.src.saving import saving_lib

    saving_lib.save_weights_only(model, path, objects_to_skip=[optimizer])


def _store_as_float16(path: Path, frozen: list) -> None:
    """Rewrite a Keras weights file's float32 arrays as float16, but those equal to `frozen`.

    Keras loads a float16 array into a float32 variable by casting it (relative rounding
    2**-11): the trained weights at half the size. Arrays equal to one of `frozen` (a
    pretrained featurizer's weights, frozen in the task) stay float32, bit for bit. Written
    by hand with h5py (Keras' own dependency) because Keras saves each variable in its dtype;
    copied into a new file, swapped in, because HDF5 does not give back a deleted array's space.
    """
    import h5py
    import numpy as np

    by_shape: dict = {}
    for array in frozen:
        by_shape.setdefault(array.shape, []).append(array)

    def narrowed(values):
        if getattr(values, "dtype", None) != np.float32:
            return values
        if any(np.array_equal(values, kept) for kept in by_shape.get(values.shape, ())):
            return values
        return values.astype(np.float16)

    def copy(source, target) -> None:
        target.attrs.update(dict(source.attrs))
        for name, item in source.items():
            if isinstance(item, h5py.Group):
                copy(item, target.create_group(name))
            else:
                dataset = target.create_dataset(name, data=narrowed(item[()]))
                dataset.attrs.update(dict(item.attrs))

    narrow = path.with_name(path.name + ".float16")
    with h5py.File(path, "r") as source, h5py.File(narrow, "w") as target:
        copy(source, target)
    os.replace(narrow, path)


#: `save_preset`'s choices of how the task's weights are stored.
WEIGHTS_DTYPES = ("float32", "float16")


def save_preset(
    model,
    preset_dir: str | os.PathLike,
    metadata: dict | None = None,
    extra_files: dict[str, str] | None = None,
    weights_dtype: str = "float32",
) -> Path:
    """Save a backbone or a task (a `Task`) as a preset directory.

    The backbone's configuration and weights go to `config.json` and `model.weights.h5`
    whatever the model; a task adds `task.json`, `task.weights.h5`, the facts its
    `preset_metadata()` gives, and one JSON file per entry of its configuration that its
    `preset_assets` names (a classifier's `labels.json`), taken out of `task.json`. The
    directory is written beside its final place and swapped in with renames, so a crash leaves
    either the previous complete preset or the new complete one, never a mix.

    Args:
        model: a backbone (`SymbolEncoder`) or a `Task` (`SymbolClassifier`, `FormulaRecognizer`).
        preset_dir: str or PathLike. Directory to (re)place.
        metadata: dict or None. JSON-serialisable facts to record (training data, metrics).
        extra_files: dict or None. Text files to add (e.g. ``{"model_card.md": text}``); they
            are checksummed like the rest.
        weights_dtype: str. How `task.weights.h5` stores the task's trainable float32
            weights: ``"float32"``, or ``"float16"`` (half the size; they load back as
            float32, each rounded to 11 significant bits). Frozen weights (a pretrained
            featurizer's) and the backbone's `model.weights.h5` stay float32, bit for bit.
            Recorded in `metadata.json` as ``task_weights_dtype``.

    Returns:
        The preset directory's path.

    Example:
    >>> import tempfile
    >>> from im2latex_encoder import SymbolClassifier, SymbolEncoder
    >>> directory = save_preset(
    ...     SymbolClassifier(SymbolEncoder(filters=(4, 8)), num_classes=3, image_size=24),
    ...     tempfile.mkdtemp() + "/preset")
    >>> sorted(preset_metadata(directory)["files"])
    ['config.json', 'labels.json', 'model.weights.h5', 'task.json', 'task.weights.h5']
    """
    from im2latex_encoder.task import Task  # the task base imports this module

    is_task = isinstance(model, Task)
    backbone = model.backbone if is_task else model
    if not isinstance(model, keras.Model) or not isinstance(backbone, keras.Model):
        raise ValueError(
            "save_preset takes a backbone (a keras.Model such as SymbolEncoder) or a Task "
            f"with a `backbone`. Received: {type(model).__name__}"
        )
    if weights_dtype not in WEIGHTS_DTYPES or (weights_dtype != "float32" and not is_task):
        raise ValueError(
            f"`weights_dtype` must be one of {WEIGHTS_DTYPES} (a task's only: a backbone's "
            f"weights stay float32). Received: weights_dtype={weights_dtype!r} for "
            f"{type(model).__name__}"
        )
    kind = model.preset_kind if is_task else BACKBONE_KIND
    if not isinstance(kind, str) or not kind or (is_task and kind == BACKBONE_KIND):
        raise ValueError(
            f"A task must name its preset kind (`preset_kind`). Received: {type(model).__name__} "
            f"with preset_kind={kind!r}"
        )
    record = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "class": keras.saving.get_registered_name(type(model)),
        "library_version": __version__,
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    assets: dict = {}
    if is_task:
        record.update(model.preset_metadata())
        task_config = keras.saving.serialize_keras_object(model)
        # weights only (`_save_weights_without_optimizer`): a loaded preset is not compiled
        task_config.pop("compile_config", None)
        for key, name in type(model).preset_assets.items():
            value = task_config["config"].pop(key, None)
            if value is not None:
                assets[name] = value
    record.update(json.loads(json.dumps(metadata or {})))  # refuses what JSON cannot hold

    target = Path(preset_dir)
    with atomic_directory(target) as staging:
        write_json(staging / BACKBONE_CONFIG, keras.saving.serialize_keras_object(backbone))
        backbone.save_weights(staging / BACKBONE_WEIGHTS)
        if is_task:
            write_json(staging / TASK_CONFIG, task_config)
            _save_weights_without_optimizer(model, staging / TASK_WEIGHTS)
            if weights_dtype == "float16":
                frozen = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
                _store_as_float16(staging / TASK_WEIGHTS, frozen)
                record["task_weights_dtype"] = weights_dtype
        for name, value in assets.items():
            write_json(staging / name, value)
        for name, text in (extra_files or {}).items():
            if Path(name).name != name or name == METADATA or (staging / name).exists():
                raise ValueError(
                    f"`extra_files` names must be new plain file names. Received: {name!r}"
                )
            (staging / name).write_text(text, encoding="utf-8")
        record["files"] = {
            path.name: _sha256(path) for path in sorted(staging.iterdir()) if path.name != METADATA
        }
        write_json(staging / METADATA, record)
    return target


# --- Loading ---------------------------------------------------------------------------------


def load_backbone(cls: type, preset: str | os.PathLike):
    """Load the backbone of any preset (backbone or task) as a `cls`, checking sha256 first.

    The backbone comes as saved; its class's `from_preset` applies what its caller may change
    (`SymbolEncoder.from_preset(..., trainable=False)`).

    Args:
        cls: type. The backbone class (`SymbolEncoder`).
        preset: str or PathLike. A registered preset's name or a preset directory.

    Raises:
        PresetError: if the preset is unknown, incomplete, fails its sha256 check or describes
            another class.

    Example:
    >>> from im2latex_encoder import SymbolEncoder
    >>> load_backbone(SymbolEncoder, "crohme101").filters
    (32, 64, 64)
    """
    directory = resolve_preset(preset)
    _verify(directory)
    return _load_backbone(cls, directory)


def load_task(cls: type[Any], preset: str | os.PathLike, **kwargs):
    """Load a `Task` subclass `cls` from any preset, keras-hub's way; says which weights were skipped.

    - A preset of this task (`metadata.json`'s kind is `cls.preset_kind`): its `task.json`,
      with the asset files of `cls.preset_assets` put back into it, is rebuilt. When
      `task.preset_changes(**kwargs)` is "" every weight is loaded; else the backbone's
      weights are loaded and `task.with_new_layers(**kwargs)` makes the task's own layers
      anew, with a warning naming the change.
    - Any other preset (backbone only, or another task's): its backbone is loaded and
      `cls.from_backbone(backbone, **kwargs)` builds the task around it, with a warning that
      the task's own layers (`cls.task_layers`) start untrained.

    Args:
        cls: type. The task class (`SymbolClassifier`, `FormulaRecognizer`).
        preset: str or PathLike. A registered preset's name or a preset directory.
        **kwargs: the task's `from_preset` arguments (`num_classes`, `labels`, ...).

    Raises:
        PresetError: if the preset is unknown, incomplete, fails its sha256 check, describes
            another class, or lacks what the task needs (a head for `SymbolClassifier`
            without `num_classes`).

    Example:
    >>> from im2latex_encoder import SymbolClassifier
    >>> load_task(SymbolClassifier, "crohme101").head.num_classes
    101
    """
    from im2latex_encoder.task import Task  # the task base imports this module

    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ValueError(f"load_task loads a Task subclass. Received: {cls!r}")
    directory = resolve_preset(preset)
    metadata = _verify(directory)
    kind = metadata.get("kind")
    if kind != cls.preset_kind:
        backbone = _load_backbone(cls.backbone_cls, directory)
        try:
            task = cls.from_backbone(backbone, **kwargs)
        except ValueError as error:
            raise PresetError(preset, f"is {_article(kind)} {kind} preset: {error}") from error
        warnings.warn(
            f"Loaded the backbone of preset {str(preset)!r} ({_article(kind)} {kind} preset) into "
            f"a new {cls.__name__}; its new layers ({cls.task_layers}) have no weights "
            "in the preset and start untrained.",
            stacklevel=3,
        )
        return task
    assets = {}
    for key, name in cls.preset_assets.items():
        if name in metadata["files"]:
            assets[key] = _read_json(directory, name)
        elif (directory / name).exists():
            raise PresetError(directory, f"{name} is not checksummed: {METADATA} does not list it")
    task = _deserialize(directory, _read_json(directory, TASK_CONFIG), cls, TASK_CONFIG, assets)
    try:
        difference = task.preset_changes(**kwargs)
        if not difference:
            task.load_weights(directory / TASK_WEIGHTS)
            return task
        task.backbone.load_weights(directory / BACKBONE_WEIGHTS)
        new = task.with_new_layers(**kwargs)
    except ValueError as error:
        if isinstance(error, PresetError):
            raise
        raise PresetError(preset, str(error)) from error
    warnings.warn(
        f"Loaded the encoder of preset {str(preset)!r} and skipped its head's weights: "
        f"{difference}. The new layers ({new.task_layers}) start untrained.",
        stacklevel=3,
    )
    return new


def _load_backbone(cls: type, directory: Path):
    model = _deserialize(directory, _read_json(directory, BACKBONE_CONFIG), cls, BACKBONE_CONFIG)
    model.load_weights(directory / BACKBONE_WEIGHTS)
    return model


def _article(word) -> str:
    return "an" if str(word)[:1] in "aeiou" else "a"


def _class_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# --- Integrity -------------------------------------------------------------------------------


def _verify(directory: Path) -> dict:
    """Check every file listed in metadata.json against its sha256; return the metadata."""
    metadata = _read_json(directory, METADATA)
    if not isinstance(metadata, dict) or not isinstance(metadata.get("files"), dict):
        raise PresetError(directory, f"{METADATA} has no 'files' table of sha256 checksums")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise PresetError(
            directory,
            f"unsupported format_version. Expected {FORMAT_VERSION}. "
            f"Received: {metadata.get('format_version')!r}",
        )
    for name, expected in metadata["files"].items():
        if Path(name).name != name:
            raise PresetError(directory, f"{METADATA} lists a path outside the preset: {name!r}")
        path = directory / name
        if not path.is_file():
            raise PresetError(directory, f"{name} is missing (listed in {METADATA})")
        actual = _sha256(path)
        if actual != expected:
            raise PresetError(
                directory,
                f"refused: {name} has sha256 {actual[:16]}…, {METADATA} records {str(expected)[:16]}…. "
                "The file is corrupt or was modified; re-download or re-save the preset.",
            )
    # Every file a loader reads must be checksummed, or a tampered one would load unchecked.
    required: tuple[str, ...] = (BACKBONE_CONFIG, BACKBONE_WEIGHTS)
    if metadata.get("kind") != BACKBONE_KIND:
        required += (TASK_CONFIG, TASK_WEIGHTS)
    for needed in required:
        if needed not in metadata["files"]:
            raise PresetError(directory, f"{METADATA} does not list {needed}")
    return metadata


def _deserialize(directory: Path, config, expected: type, name: str, assets: dict | None = None):
    if assets and isinstance(config, dict) and isinstance(config.get("config"), dict):
        # Said before the assets join a configuration they would not fit.
        described = keras.saving.get_registered_object(str(config.get("registered_name")))
        if isinstance(described, type) and not issubclass(described, expected):
            raise PresetError(
                directory,
                f"{name} must describe a {expected.__name__}. Received: a {described.__name__}",
            )
        config = {**config, "config": {**config["config"], **assets}}
    try:
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - any failure here is a bad preset
        raise PresetError(
            directory, f"cannot rebuild the model from its configuration: {error}"
        ) from error
    if not isinstance(model, expected):
        raise PresetError(
            directory,
            f"{name} must describe a {expected.__name__}. Received: a {type(model).__name__}",
        )
    return model


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_json(directory: Path, name: str):
    path = directory / name
    if not path.is_file():
        raise PresetError(directory, f"{name} is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PresetError(directory, f"{name} is not valid JSON: {error}") from error


def write_json(path: str | os.PathLike, value) -> None:
    """Write `value` as a preset writes its JSON files: sorted keys, indented, final newline.

    Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "labels.json"
    >>> write_json(path, ["a", "b"])
    >>> path.read_text()
    '[\\n  "a",\\n  "b"\\n]\\n'
    """
    Path(path).write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")
