"""Presets: save and load encoders and classifiers as checked directories.

A preset directory follows keras-hub's layout:

| file | holds |
| --- | --- |
| `config.json` | the encoder's configuration |
| `model.weights.h5` | the encoder's weights |
| `task.json` | the classifier's configuration (classifier presets only) |
| `task.weights.h5` | the classifier's weights, encoder and head (classifier presets only) |
| `labels.json` | the class names, in output order (classifier presets only) |
| `metadata.json` | what it was trained on, its metrics, and a sha256 of every other file |

Every file's sha256 is checked before anything is deserialised, configurations are read with
Keras' `safe_mode`, and weights are HDF5 arrays: loading a preset never runs code from it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import keras

from im2latex_encoder._atomic import atomic_directory, recover_interrupted_swap
from im2latex_encoder.version import __version__

FORMAT_VERSION = 1
ENCODER_CONFIG = "config.json"
ENCODER_WEIGHTS = "model.weights.h5"
TASK_CONFIG = "task.json"
TASK_WEIGHTS = "task.weights.h5"
LABELS = "labels.json"
METADATA = "metadata.json"

_SHIPPED_DIR = Path(__file__).parent / "shipped_presets"
# Overrides that add new layers on top of the pretrained stack (their weights start fresh).
_NEW_LAYER_OVERRIDES = {"projection_dim", "output_norm"}
# Overrides that change no weight's shape can be applied to the saved configuration directly.
_WEIGHTLESS_OVERRIDES = {
    "output",
    "positional_encoding",
    "name",
    "trainable",
    "dtype",
    "max_image_side",
}


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


def list_presets() -> tuple[str, ...]:
    """Return the names of the presets shipped inside the package.

    Example:
    >>> "crohme101" in list_presets()  # doctest: +SKIP
    True
    """
    if not _SHIPPED_DIR.is_dir():
        return ()
    return tuple(sorted(p.name for p in _SHIPPED_DIR.iterdir() if (p / METADATA).is_file()))


def preset_metadata(preset: str) -> dict:
    """Return a preset's verified `metadata.json` (training data, metrics, checksums).

    Args:
        preset: str. A shipped preset's name or a preset directory.

    Example:
    >>> preset_metadata("crohme101")["metrics"]  # doctest: +SKIP
    """
    return _verify(resolve_preset(preset))


def resolve_preset(preset: str | os.PathLike) -> Path:
    """Return the directory of a preset given by name or path.

    Raises:
        PresetError: if `preset` is neither a shipped preset's name nor a directory.

    Example:
    >>> resolve_preset("crohme101").name  # doctest: +SKIP
    'crohme101'
    """
    path = Path(preset)
    recover_interrupted_swap(path)
    if path.is_dir():
        return path
    if isinstance(preset, str) and preset in list_presets():
        return _SHIPPED_DIR / preset
    raise PresetError(
        preset,
        f"not a preset directory and not a shipped preset. Expected one of {list(list_presets())} "
        f"or a directory. Received: preset={str(preset)!r}",
    )


def save_preset(
    model,
    preset_dir: str | os.PathLike,
    metadata: dict | None = None,
    extra_files: dict[str, str] | None = None,
) -> Path:
    """Save a `SymbolEncoder` or `SymbolClassifier` as a preset directory.

    The directory is written beside its final place and swapped in with renames, so a crash
    leaves either the previous complete preset or the new complete one, never a mix.

    Args:
        model: `SymbolEncoder` or `SymbolClassifier`.
        preset_dir: str or PathLike. Directory to (re)place.
        metadata: dict or None. JSON-serialisable facts to record (training data, metrics).
        extra_files: dict or None. Text files to add (e.g. ``{"model_card.md": text}``); they
            are checksummed like the rest.

    Returns:
        The preset directory's path.

    Example:
    >>> from im2latex_encoder import SymbolClassifier
    >>> save_preset(SymbolClassifier(), "/tmp/preset")  # doctest: +SKIP
    """
    from im2latex_encoder.classifier import SymbolClassifier
    from im2latex_encoder.encoder import SymbolEncoder

    if isinstance(model, SymbolClassifier):
        encoder, kind = model.encoder, "classifier"
    elif isinstance(model, SymbolEncoder):
        encoder, kind = model, "encoder"
    else:
        raise ValueError(
            f"save_preset takes a SymbolEncoder or a SymbolClassifier. Received: {type(model).__name__}"
        )
    record = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "library_version": __version__,
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if kind == "classifier":
        record["num_classes"] = model.head.num_classes
        record["image_size"] = list(model.image_size) if model.image_size else None
    record.update(json.loads(json.dumps(metadata or {})))  # refuses what JSON cannot hold

    target = Path(preset_dir)
    with atomic_directory(target) as staging:
        _write_json(staging / ENCODER_CONFIG, keras.saving.serialize_keras_object(encoder))
        encoder.save_weights(staging / ENCODER_WEIGHTS)
        if kind == "classifier":
            _write_json(staging / TASK_CONFIG, keras.saving.serialize_keras_object(model))
            model.save_weights(staging / TASK_WEIGHTS)
            _write_json(staging / LABELS, list(model.labels))
        for name, text in (extra_files or {}).items():
            if Path(name).name != name or name == METADATA or (staging / name).exists():
                raise ValueError(
                    f"`extra_files` names must be new plain file names. Received: {name!r}"
                )
            (staging / name).write_text(text, encoding="utf-8")
        record["files"] = {
            path.name: _sha256(path) for path in sorted(staging.iterdir()) if path.name != METADATA
        }
        _write_json(staging / METADATA, record)
    return target


def load_encoder(preset: str | os.PathLike, **overrides):
    """Load the encoder of any preset (encoder or classifier), checking its sha256 first.

    Args:
        preset: str or PathLike. A shipped preset's name or a preset directory.
        **overrides: `SymbolEncoder` arguments to change. `output`, `positional_encoding`,
            `max_image_side`, `dtype` apply directly; `projection_dim` and `output_norm` add a
            new projection / layer normalization on top of the pretrained stack. Arguments
            that change the stack's weights are refused.

    Example:
    >>> encoder = load_encoder("crohme101", output="grid")  # doctest: +SKIP
    """
    directory = resolve_preset(preset)
    _verify(directory)
    config = _read_json(directory, ENCODER_CONFIG)
    direct = {k: v for k, v in overrides.items() if k in _WEIGHTLESS_OVERRIDES}
    config = dict(config, config=dict(config["config"], **direct))
    from im2latex_encoder.encoder import SymbolEncoder

    encoder = _deserialize(directory, config, SymbolEncoder, ENCODER_CONFIG)
    encoder.load_weights(directory / ENCODER_WEIGHTS)
    structural = {k: v for k, v in overrides.items() if k not in _WEIGHTLESS_OVERRIDES}
    if not structural:
        return encoder
    changed = {
        k
        for k in structural
        if k not in _NEW_LAYER_OVERRIDES and encoder.get_config().get(k) != structural[k]
    }
    if changed:
        raise PresetError(
            preset,
            f"cannot override {sorted(changed)}: they change the pretrained stack's weights. "
            f"Overridable: {sorted(_WEIGHTLESS_OVERRIDES | _NEW_LAYER_OVERRIDES)}",
        )
    rebuilt = SymbolEncoder.from_config(dict(encoder.get_config(), **structural))
    for source, target in zip(encoder.convs + encoder.norms, rebuilt.convs + rebuilt.norms):
        target.set_weights(source.get_weights())
    return rebuilt


def load_classifier(
    preset: str | os.PathLike,
    num_classes: int | None = None,
    labels: Sequence[str] | None = None,
    **head_kwargs,
):
    """Load a classifier preset; a different `num_classes`/`labels` gets a new head.

    Args:
        preset: str or PathLike. A shipped preset's name or a preset directory.
        num_classes: int or None. Classes wanted; the preset's own when None.
        labels: sequence of str or None. Class names wanted.
        **head_kwargs: options for a new head (`pooling`, `hidden_units`, `dropout`,
            `activation`). Passing any makes a new head.

    Example:
    >>> binary = load_classifier("crohme101", labels=["other", "-"])  # doctest: +SKIP
    """
    directory = resolve_preset(preset)
    metadata = _verify(directory)
    if metadata.get("kind") != "classifier":
        if num_classes is None and labels is None:
            raise PresetError(
                preset,
                "is an encoder preset: it has no head. Pass `num_classes` or `labels` for a new head.",
            )
        from im2latex_encoder.classifier import SymbolClassifier
        from im2latex_encoder.heads import ClassificationHead

        if labels is None:
            assert num_classes is not None
            labels = tuple(str(i) for i in range(num_classes))
        labels = tuple(labels)
        head = ClassificationHead(
            num_classes if num_classes is not None else len(labels), **head_kwargs
        )
        return SymbolClassifier(load_encoder(directory), head, labels=labels)

    from im2latex_encoder.classifier import SymbolClassifier

    classifier = _deserialize(
        directory, _read_json(directory, TASK_CONFIG), SymbolClassifier, TASK_CONFIG
    )
    saved_labels = tuple(classifier.labels)
    wanted_labels = tuple(labels) if labels is not None else None
    same_head = (
        not head_kwargs
        and (num_classes is None or num_classes == len(saved_labels))
        and (wanted_labels is None or wanted_labels == saved_labels)
    )
    if same_head:
        classifier.load_weights(directory / TASK_WEIGHTS)
        return classifier
    classifier.encoder.load_weights(directory / ENCODER_WEIGHTS)
    new = classifier.replace_head(num_classes, wanted_labels, **head_kwargs)
    warnings.warn(
        f"Loaded the encoder of preset {str(preset)!r} and skipped its head's weights: the preset "
        f"has {len(saved_labels)} classes, the new head has {new.head.num_classes}. The new head "
        "starts untrained.",
        stacklevel=3,
    )
    return new


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
    required: tuple[str, ...] = (ENCODER_CONFIG, ENCODER_WEIGHTS)
    if metadata.get("kind") == "classifier":
        required += (TASK_CONFIG, TASK_WEIGHTS)
    for needed in required:
        if needed not in metadata["files"]:
            raise PresetError(directory, f"{METADATA} does not list {needed}")
    return metadata


def _deserialize(directory: Path, config: dict, expected: type, name: str):
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


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")
