"""`Task`: the base of the library's tasks, a model built around a backbone, saved as a preset.

keras-hub's `Task` (with its `preset_utils`), applied: `from_preset` and `save_to_preset` are
written once, here, and every task inherits them. The preset loader and saver
(`presets.load_task`, `presets.save_preset`) do the checking and the reading (sha256 of every
file, configurations rebuilt with `safe_mode`, weights as HDF5 arrays); they ask the task
only through the hooks below, each with a default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import keras

from im2latex_encoder import presets
from im2latex_encoder.encoder import SymbolEncoder


class Task(keras.Model):
    """A model built around a backbone object, saved and loaded as a preset.

    A task is a backbone (`SymbolEncoder`) plus its own layers (a head, a neck, a decoder),
    as keras-hub's tasks are. A subclass names its presets' kind (`preset_kind`), takes the
    backbone as its first constructor argument, keeps it as `encoder` (`backbone` is
    keras-hub's name for it), and mirrors every constructor argument in `get_config()`.
    It then has `from_preset` and `save_to_preset`:

    - `from_preset(preset, **kwargs)` on a preset of the same kind rebuilds the task as
      saved with all its weights; when `kwargs` change it (`preset_changes`), it keeps the
      backbone's weights and makes the task's own layers anew (`with_new_layers`), with a
      warning naming the change. On any other preset (a backbone's, another task's), it
      loads the backbone and builds the task around it (`from_backbone`), with a warning
      that the task's own layers (`task_layers`) start untrained.
    - `save_to_preset(directory)` writes the backbone (`config.json`, `model.weights.h5`),
      the task (`task.json`, `task.weights.h5`), the task's assets and `metadata.json`.

    Assets are what a task reads beside its weights: a vocabulary, drawing settings, an
    expression context, class names. A task keeps each one in its configuration (so a
    `.keras` file carries it too) and lists it in `preset_assets`, `{config key: file name}`:
    a preset holds it as its own checksummed JSON file, not inside `task.json`, and the
    loader puts it back into the configuration. That is the one hook a task with assets
    needs; the others have defaults.

    Args:
        **kwargs: standard `keras.Model` arguments (`name`, `dtype`, `trainable`).

    Example:
    >>> import tempfile
    >>> import numpy as np
    >>> @keras.saving.register_keras_serializable(package="task_docs")
    ... class Scorer(Task):
    ...     preset_kind = "scorer"
    ...     preset_assets = {"words": "words.json"}
    ...
    ...     def __init__(self, encoder, words=("yes", "no"), **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.encoder = encoder
    ...         self.dense = keras.layers.Dense(len(words))
    ...         self.dense.build((None, encoder.output_channels))
    ...         self.words = tuple(words)
    ...
    ...     def call(self, images):
    ...         features = self.encoder(images)  # averaged over every position
    ...         axes = tuple(range(1, len(features.shape) - 1))
    ...         return self.dense(keras.ops.mean(features, axis=axes))
    ...
    ...     def get_config(self):
    ...         return {"encoder": keras.saving.serialize_keras_object(self.encoder),
    ...                 "words": list(self.words), "name": self.name}
    ...
    ...     @classmethod
    ...     def from_config(cls, config):
    ...         encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
    ...         return cls(encoder, **config)
    >>> scorer = Scorer(SymbolEncoder(filters=(4, 8)), words=["a", "b", "c"])
    >>> images = np.ones((1, 32, 32, 1), "float32")
    >>> before = scorer(images)
    >>> directory = tempfile.mkdtemp() + "/scorer"
    >>> scorer.save_to_preset(directory)
    >>> sorted(presets.preset_metadata(directory)["files"])
    ['config.json', 'model.weights.h5', 'task.json', 'task.weights.h5', 'words.json']
    >>> loaded = Scorer.from_preset(directory)
    >>> loaded.words, bool(np.allclose(loaded(images), before))
    (('a', 'b', 'c'), True)

    A new task around a pretrained backbone (here `crohme101`'s), its own layers untrained:
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     fresh = Scorer.from_preset("crohme101", words=["x", "y"])
    >>> fresh.words, "start untrained" in str(caught[0].message)
    (('x', 'y'), True)
    """

    #: The backbone class `from_preset` loads from a preset that is not this task's.
    backbone_cls: ClassVar[type[keras.Model]] = SymbolEncoder
    #: `metadata.json`'s `kind` of this task's presets (`"classifier"`, `"recognizer"`).
    preset_kind: ClassVar[str] = ""
    #: Configuration entries a preset holds as their own JSON files: `{config key: file name}`.
    preset_assets: ClassVar[Mapping[str, str]] = {}
    #: What the warnings call the layers a task adds to its backbone.
    task_layers: ClassVar[str] = "the layers around its backbone"

    @property
    def backbone(self) -> keras.Model:
        """The backbone this task is built around (keras-hub's name for `encoder`).

        Example:
        >>> from im2latex_encoder import SymbolClassifier
        >>> classifier = SymbolClassifier()
        >>> classifier.backbone is classifier.encoder
        True
        """
        return self.encoder

    # --- Presets ----------------------------------------------------------------------------

    @classmethod
    def from_preset(cls, preset: str, **kwargs):
        """Load this task from a preset name or directory, checking every file's sha256 first.

        From a preset of this task, the task as saved, every weight loaded; with `kwargs`
        that change it, the backbone's weights are loaded and the task's own layers are
        new, with a warning. From any other preset (a backbone's, another task's), the
        backbone is loaded and the task is built around it from `kwargs`, with a warning
        that its own layers start untrained.

        Args:
            preset: str or PathLike. A registered preset's name (see
                `im2latex_encoder.list_presets`) or a preset directory.
            **kwargs: the task's arguments (a classifier's `num_classes` or `labels`, a
                recognizer's `vocabulary_size`, ...).

        Raises:
            PresetError: if the preset is unknown, incomplete, fails its sha256 check,
                describes another class, or lacks what the task needs.

        Example:
        >>> from im2latex_encoder import SymbolClassifier
        >>> SymbolClassifier.from_preset("crohme101").head.num_classes
        101
        """
        if not cls.preset_kind:
            raise ValueError(
                f"{cls.__name__} has no `preset_kind`; call `from_preset` on a task class. "
                f"Received: {cls.__name__}.from_preset({str(preset)!r})"
            )
        return presets.load_task(cls, preset, **kwargs)

    def save_to_preset(
        self,
        preset_dir: str,
        metadata: dict | None = None,
        extra_files: dict[str, str] | None = None,
        weights_dtype: str = "float32",
    ) -> None:
        """Save this task as a preset directory, replaced atomically if it exists.

        Writes `config.json` + `model.weights.h5` (the backbone, so a backbone or another
        task can start from it), `task.json` + `task.weights.h5` (the whole task), one JSON
        file per asset (`preset_assets`) and `metadata.json` with a sha256 of each file.

        Args:
            preset_dir: str. Directory to write.
            metadata: dict or None. Extra JSON-serialisable facts (training data, metrics).
            extra_files: dict or None. Text files to add, e.g. ``{"model_card.md": text}``.
            weights_dtype: str. ``"float32"``, or ``"float16"`` to store the trainable
                weights at half the size (they load back as float32; frozen ones stay
                float32; `presets.save_preset`).

        Example:
        >>> import tempfile
        >>> from im2latex_encoder import SymbolClassifier
        >>> directory = tempfile.mkdtemp() + "/my_classifier"
        >>> SymbolClassifier(SymbolEncoder(filters=(4, 8)), labels="ab").save_to_preset(directory)
        >>> SymbolClassifier.from_preset(directory).labels
        ('a', 'b')
        """
        presets.save_preset(
            self,
            preset_dir,
            metadata=metadata,
            extra_files=extra_files,
            weights_dtype=weights_dtype,
        )

    # --- Hooks, each with a default ---------------------------------------------------------

    @classmethod
    def from_backbone(cls, backbone: keras.Model, **kwargs) -> Task:
        """A new task around a loaded `backbone`, for a preset that is not this task's.

        The default is `cls(backbone, **kwargs)`; a task whose new layers need an argument
        raises a `ValueError` saying which (the loader names the preset).

        Example:
        >>> from im2latex_encoder import SymbolClassifier
        >>> SymbolClassifier.from_backbone(SymbolEncoder(), labels=["a", "b"]).labels
        ('a', 'b')
        """
        return cls(backbone, **kwargs)

    def preset_changes(self, **kwargs) -> str:
        """What `kwargs` change in this task loaded from its preset; "" when nothing.

        The default compares each argument with the value in `get_config()` and refuses
        names that are not there. Anything but "" makes `from_preset` keep the backbone's
        weights only and call `with_new_layers`.

        Example:
        >>> from im2latex_encoder import SymbolClassifier
        >>> classifier = SymbolClassifier(labels=["a", "b"])
        >>> classifier.preset_changes(labels=["a", "b"])
        ''
        >>> classifier.preset_changes(labels=["a", "b", "c"])
        'the preset has 2 classes, the new head has 3'
        """
        config = self.get_config()
        unknown = sorted(set(kwargs) - set(config))
        if unknown:
            raise ValueError(
                f"{type(self).__name__}.from_preset takes {sorted(config)}. Received: {unknown}"
            )
        return describe_changes({name: (config[name], value) for name, value in kwargs.items()})

    def with_new_layers(self, **kwargs) -> Task:
        """This task's backbone (weights kept) with the task's own layers made anew from `kwargs`.

        Called by `from_preset` when `preset_changes` is not "". The default rebuilds the
        task from its configuration with `kwargs` applied and copies the backbone's weights.

        Example:
        >>> from im2latex_encoder import SymbolClassifier
        >>> classifier = SymbolClassifier(labels=["a", "b"])
        >>> bigger = classifier.with_new_layers(labels=["a", "b", "c"])
        >>> bigger.head.num_classes, bigger.encoder is classifier.encoder
        (3, True)
        """
        new = type(self).from_config({**self.get_config(), **kwargs})
        new.backbone.set_weights(self.backbone.get_weights())
        return new

    def preset_metadata(self) -> dict[str, Any]:
        """Facts `save_to_preset` records in `metadata.json` (default: none).

        Example:
        >>> from im2latex_encoder import SymbolClassifier
        >>> SymbolClassifier(labels=["a", "b"], image_size=32).preset_metadata()
        {'num_classes': 2, 'image_size': [32, 32]}
        """
        return {}


def describe_changes(changes: Mapping[str, tuple[Any, Any]]) -> str:
    """Say which `{name: (saved, asked)}` pairs differ (for `Task.preset_changes`); "" if none.

    Values are compared as JSON, so a tuple equals the list a configuration holds.

    Example:
    >>> describe_changes({"vocabulary_size": (9, 11), "num_layers": (2, 2)})
    'vocabulary_size=9 in the preset, 11 asked'
    """
    return ", ".join(
        f"{name}={saved!r} in the preset, {asked!r} asked"
        for name, (saved, asked) in changes.items()
        if _as_json(saved) != _as_json(asked)
    )


def _as_json(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return value
