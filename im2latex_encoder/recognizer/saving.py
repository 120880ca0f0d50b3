"""Load a saved formula recognizer of either design; the deprecated tuple API around it.

A trained recognizer is a preset: `model.save_to_preset(directory)` writes it with its
vocabulary and drawing settings, since they are the model's. Two classes read formulas, each
with its preset kind (`RECOGNIZER_KINDS`): the image `FormulaRecognizer` (``"recognizer"``:
``vocabulary.json``, ``recognizer.json``) and the `StrokeRecognizer` (``"stroke-recognizer"``:
``vocabulary.json``, ``stroke_drawing.json``). `load_formula_recognizer` reads either, by
directory, name or ``.keras`` file, and the image model's older folder layout (``model.keras``
with the two JSON files beside it). `DEFAULT_FORMULA_MODEL` (``"crohme-formulas"``) names the
default formula model, whatever its class; `IMAGE_FORMULA_MODEL` (``"crohme-formulas-image"``)
is the shipped image recognizer. `save_recognizer` / `load_recognizer`, which took and gave the
vocabulary and settings beside the model as a tuple, are deprecated and go in 0.3.0.

Example:
>>> model = load_formula_recognizer("crohme-formulas-image")
>>> len(model.vocabulary), model.draw_settings.symbol_size
(115, 18.2)
>>> type(load_formula_recognizer("crohme-formulas")).__name__ in ("FormulaRecognizer",
...                                                               "StrokeRecognizer")
True
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import keras

from im2latex_encoder._deprecation import REMOVED_IN
from im2latex_encoder.formulas.tokenizer import Vocabulary
from im2latex_encoder.recognizer.preprocessor import DrawSettings

MODEL_FILE = "model.keras"
VOCABULARY_FILE = "vocabulary.json"
SETTINGS_FILE = "recognizer.json"
#: The default formula model's name (`recognize`, `evaluate-formulas` and `serve` use it).
DEFAULT_FORMULA_MODEL = "crohme-formulas"
#: The shipped image recognizer (`FormulaRecognizer`, ``crohme-formulas`` version 1 before).
IMAGE_FORMULA_MODEL = "crohme-formulas-image"
#: `metadata.json`'s kind of each formula recognizer's presets -> the class's module and name.
RECOGNIZER_KINDS = {
    "recognizer": ("im2latex_encoder.recognizer.formula_recognizer", "FormulaRecognizer"),
    "stroke-recognizer": ("im2latex_encoder.recognizer.stroke_recognizer", "StrokeRecognizer"),
}


def recognizer_classes() -> dict[str, Any]:
    """The formula recognizer classes by preset kind (importing them registers their presets).

    Example:
    >>> sorted((kind, cls.__name__) for kind, cls in recognizer_classes().items())
    [('recognizer', 'FormulaRecognizer'), ('stroke-recognizer', 'StrokeRecognizer')]
    """
    import importlib

    return {
        kind: getattr(importlib.import_module(module), name)
        for kind, (module, name) in RECOGNIZER_KINDS.items()
    }


def resolve_formula_model(model: str | os.PathLike) -> str | os.PathLike:
    """`model`, or `IMAGE_FORMULA_MODEL` for `DEFAULT_FORMULA_MODEL` while that is not shipped.

    ``"crohme-formulas"`` names the default formula model, whatever its class. Until a preset
    of that name is shipped (or registered, or a folder of that name is in the working
    directory), the default is the shipped image recognizer, ``"crohme-formulas-image"``;
    every other name or path is returned as given.

    Args:
        model: str or PathLike. A preset's name, a folder or a file.

    Example:
    >>> resolve_formula_model("runs/strokes/recognizer")
    'runs/strokes/recognizer'
    >>> resolve_formula_model("crohme-formulas") in ("crohme-formulas", "crohme-formulas-image")
    True
    """
    from im2latex_encoder import presets

    if (
        isinstance(model, str)
        and model == DEFAULT_FORMULA_MODEL
        and not Path(model).exists()
        and model not in presets.list_presets()
    ):
        return IMAGE_FORMULA_MODEL
    return model


def register_shipped_recognizers(cls: Any, names) -> tuple[str, ...]:
    """Register for `cls` the shipped presets among `names` that hold a preset of its kind.

    A model module calls it at import with the names it can ship (`SHIPPABLE_PRESETS`): a
    name is registered only once its folder is in ``shipped_presets/`` and its
    ``metadata.json`` records `cls.preset_kind`, so the package works before a preset is
    shipped, and one name (``crohme-formulas``) can hold either design. The files are
    checked against their sha256 when the preset is loaded.

    Args:
        cls: type. A `Task` class with `preset_kind`.
        names: iterable of str. Shipped preset names.

    Returns:
        The names registered.

    Example:
    >>> from im2latex_encoder.recognizer import FormulaRecognizer
    >>> register_shipped_recognizers(FormulaRecognizer, ["crohme-formulas-image", "nothing"])
    ('crohme-formulas-image',)
    """
    from im2latex_encoder import presets

    shipped = {}
    for name in names:
        directory = presets.shipped_preset(name)
        try:
            metadata = json.loads((directory / presets.METADATA).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(metadata, dict) and metadata.get("kind") == cls.preset_kind:
            shipped[name] = directory
    presets.register_presets(cls, shipped)
    return tuple(shipped)


def load_formula_recognizer(path: str | os.PathLike):
    """Load a saved formula recognizer of either class, with what it reads by, safely.

    `path` is one of:

    - a recognizer preset directory (`save_to_preset` of a `FormulaRecognizer` or a
      `StrokeRecognizer`; `metadata.json`'s kind says which): every file is checked against
      its sha256 in ``metadata.json`` before it is read;
    - a registered recognizer preset's name: ``"crohme-formulas-image"`` (the image model),
      ``"crohme-formulas"`` (the default formula model: `resolve_formula_model`);
    - a ``.keras`` file of either class, loaded with ``safe_mode=True``; the image model's
      older folder layout (``model.keras``, ``vocabulary.json``, ``recognizer.json``).

    The model it gives reads formulas by itself (`recognize_strokes`, `recognize_images`):
    its vocabulary and drawing settings are set.

    Args:
        path: str or PathLike. A preset directory, a preset name, a folder or a ``.keras`` file.

    Returns:
        The `FormulaRecognizer` or `StrokeRecognizer`.

    Raises:
        FileNotFoundError: if `path` is none of these (nothing there, or a folder lacking
            files); the message says what was expected.
        PresetError: if a preset fails its checksums, is not a recognizer's (a classifier's
            such as ``crohme101``), or lacks its vocabulary or drawing settings.
        ValueError: if a ``.keras`` file holds something other than a formula recognizer.

    Example:
    >>> import tempfile
    >>> from im2latex_encoder import SymbolEncoder
    >>> from im2latex_encoder.recognizer import FormulaRecognizer
    >>> model = FormulaRecognizer(SymbolEncoder(filters=(8, 8)), 7, hidden_dim=16,
    ...                           num_layers=1, num_heads=2,
    ...                           vocabulary=Vocabulary(["x", "y", "+"]),
    ...                           draw_settings=DrawSettings(18.0))
    >>> folder = tempfile.mkdtemp() + "/recognizer"
    >>> model.save_to_preset(folder)
    >>> loaded = load_formula_recognizer(folder)
    >>> loaded.vocabulary_size, len(loaded.vocabulary), loaded.draw_settings.symbol_size
    (7, 7, 18.0)

    A `StrokeRecognizer` loads the same way:
    >>> from im2latex_encoder.recognizer.stroke_recognizer import StrokeRecognizer
    >>> strokes = StrokeRecognizer(SymbolEncoder(filters=(4, 4, 4)), vocabulary=["x", "1"],
    ...                            symbol_hidden_units=8, hidden_dim=16, encoder_layers=1,
    ...                            decoder_layers=1, num_heads=2, intermediate_dim=32)
    >>> strokes.build()
    >>> folder = tempfile.mkdtemp() + "/strokes"
    >>> strokes.save_to_preset(folder)
    >>> loaded = load_formula_recognizer(folder)
    >>> type(loaded).__name__, loaded.vocabulary.tokens == strokes.vocabulary.tokens
    ('StrokeRecognizer', True)
    """
    path = resolve_formula_model(path)
    layout, where = _locate_recognizer(path)
    if layout == "preset":
        return _load_recognizer_preset(path, where)
    classes = recognizer_classes()
    model_file = where if where.suffix == ".keras" else where / MODEL_FILE
    directory = model_file.parent
    beside = [name for name in (VOCABULARY_FILE, SETTINGS_FILE) if (directory / name).is_file()]
    model: Any = keras.saving.load_model(model_file, safe_mode=True)
    if not isinstance(model, tuple(classes.values())):
        raise ValueError(
            f"{model_file}: expected a FormulaRecognizer or a StrokeRecognizer. Received: "
            f"{type(model).__name__}"
        )
    if not isinstance(model, classes["recognizer"]):
        return model  # a StrokeRecognizer's configuration holds its vocabulary and drawing
    own = model.vocabulary is not None and model.draw_settings is not None
    if own and not beside:
        return model
    missing = [name for name in (VOCABULARY_FILE, SETTINGS_FILE) if name not in beside]
    if missing:
        raise FileNotFoundError(
            f"{os.fspath(path)} is not a recognizer folder: expected {MODEL_FILE}, "
            f"{VOCABULARY_FILE} and {SETTINGS_FILE} together (or a model saved with its "
            f"vocabulary and drawing settings); missing {missing}"
        )
    vocabulary = Vocabulary.from_json(
        json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
    )
    settings = DrawSettings(**json.loads((directory / SETTINGS_FILE).read_text(encoding="utf-8")))
    if len(vocabulary) != model.vocabulary_size:
        raise ValueError(
            f"{VOCABULARY_FILE} has {len(vocabulary)} tokens and the model reads "
            f"{model.vocabulary_size} ids. Received: mismatched files in {directory}"
        )
    model.vocabulary, model.draw_settings = vocabulary, settings
    return model


def save_recognizer(
    directory: str | os.PathLike,
    model,
    vocabulary: Vocabulary,
    settings: DrawSettings,
    extra_files: dict | None = None,
    *,
    metadata: dict | None = None,
) -> Path:
    """Deprecated: give the model its vocabulary and settings, then `model.save_to_preset`.

    Saves `model` as a recognizer preset with `vocabulary` and `settings` as its own
    (``vocabulary.json``, ``recognizer.json``), as `FormulaRecognizer.save_to_preset` saves a
    model that has them; `model` itself is left as it was. Goes in 0.3.0.

    Args:
        directory: str or PathLike. The preset directory to (re)place.
        model: FormulaRecognizer. The trained recognizer.
        vocabulary: Vocabulary. Its token ids.
        settings: DrawSettings. How expressions are drawn for it.
        extra_files: dict or None. More text files, name -> text (``model_card.md``).
        metadata: dict or None. JSON-serialisable facts for ``metadata.json``.

    Returns:
        The directory's path.

    Raises:
        ValueError: if `model` is not a `FormulaRecognizer`, or its vocabulary size differs
            from `vocabulary`'s.

    Example:
    >>> import tempfile, warnings
    >>> from im2latex_encoder import SymbolEncoder
    >>> from im2latex_encoder.recognizer import FormulaRecognizer
    >>> model = FormulaRecognizer(SymbolEncoder(filters=(8, 8)), 7, hidden_dim=16,
    ...                           num_layers=1, num_heads=2)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     folder = save_recognizer(tempfile.mkdtemp() + "/recognizer", model,
    ...                              Vocabulary(["x", "y", "+"]), DrawSettings(18.0))
    >>> caught[0].category.__name__, load_formula_recognizer(folder).draw_settings.symbol_size
    ('DeprecationWarning', 18.0)
    """
    from im2latex_encoder.recognizer.formula_recognizer import FormulaRecognizer

    warnings.warn(
        f"save_recognizer(directory, model, vocabulary, settings) is deprecated and will be "
        f"removed in {REMOVED_IN}: the vocabulary and drawing settings are the model's "
        "(FormulaRecognizer(..., vocabulary=..., draw_settings=...)); save it with "
        "model.save_to_preset(directory).",
        DeprecationWarning,
        stacklevel=2,
    )
    if not isinstance(model, FormulaRecognizer):
        raise ValueError(
            f"save_recognizer saves a FormulaRecognizer. Received: {type(model).__name__}"
        )
    if model.vocabulary_size != len(vocabulary):
        raise ValueError(
            f"The model reads {model.vocabulary_size} token ids and the vocabulary has "
            f"{len(vocabulary)}; save the vocabulary it was trained with. "
            f"Received: vocabulary of {len(vocabulary)} tokens"
        )
    own = model.vocabulary, model.draw_settings
    model.vocabulary, model.draw_settings = vocabulary, settings
    try:
        model.save_to_preset(os.fspath(directory), metadata=metadata, extra_files=extra_files)
    finally:
        model.vocabulary, model.draw_settings = own
    return Path(directory)


def load_recognizer(path: str | os.PathLike):
    """Deprecated: `load_formula_recognizer(path)`, whose model carries its vocabulary and settings.

    Returns ``(model, model.vocabulary, model.draw_settings)``, reading every form
    `load_formula_recognizer` reads (a `StrokeRecognizer`'s settings are its `drawing`).
    Goes in 0.3.0.

    Example:
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     model, vocabulary, settings = load_recognizer("crohme-formulas-image")
    >>> vocabulary is model.vocabulary, settings is model.draw_settings
    (True, True)
    """
    warnings.warn(
        f"load_recognizer(path) is deprecated and will be removed in {REMOVED_IN}: use "
        "load_formula_recognizer(path) (or FormulaRecognizer.from_preset for a preset); the "
        "model carries its vocabulary and drawing settings (`model.vocabulary`, "
        "`model.draw_settings`).",
        DeprecationWarning,
        stacklevel=2,
    )
    model = load_formula_recognizer(path)
    settings = getattr(model, "draw_settings", None) or getattr(model, "drawing", None)
    return model, model.vocabulary, settings


def _locate_recognizer(path: str | os.PathLike) -> tuple[str, Path]:
    """``("preset", directory)`` or ``("folder", folder or .keras file)``; else a clear error."""
    from im2latex_encoder import presets

    candidate = Path(path)
    presets.recover_interrupted_swap(candidate)
    expected = (
        f"Expected a recognizer preset directory ({presets.METADATA}, {presets.TASK_CONFIG}, "
        f"{presets.TASK_WEIGHTS} and the model's vocabulary and drawing settings; "
        f"`save_to_preset`), a folder with {MODEL_FILE}, {VOCABULARY_FILE} and "
        f"{SETTINGS_FILE}, a .keras file, or a recognizer preset's name"
    )
    if candidate.is_dir():
        if (candidate / presets.METADATA).is_file():
            return "preset", candidate
        if (candidate / MODEL_FILE).is_file():
            return "folder", candidate
        found = sorted(p.name for p in candidate.iterdir())[:8]
        raise FileNotFoundError(
            f"{os.fspath(path)} is not a recognizer folder. {expected}. Received: a folder "
            f"holding {found or 'nothing'}"
        )
    if candidate.is_file() and candidate.suffix == ".keras":
        return "folder", candidate
    names = sorted(
        {
            name
            for cls in recognizer_classes().values()
            for name in presets.list_presets(cls, include_backbone=False)
        }
    )
    if isinstance(path, str) and path in names:
        return "preset", presets.resolve_preset(path)
    if isinstance(path, str) and path in presets.list_presets():
        return "preset", presets.resolve_preset(path)  # the kind check says what it is
    raise FileNotFoundError(
        f"No recognizer at {os.fspath(path)!r}. {expected} "
        f"(registered: {names or 'none shipped'}). Received: {os.fspath(path)!r}"
    )


def _load_recognizer_preset(path, directory: Path):
    """The recognizer a preset holds, of the class its verified `metadata.json` kind names."""
    from im2latex_encoder import presets

    metadata = presets.preset_metadata(directory)  # every listed file's sha256 checked
    kind = metadata.get("kind")
    classes = recognizer_classes()
    cls = classes.get(str(kind))
    if cls is None:
        raise presets.PresetError(
            path,
            "expected a recognizer preset (kind 'recognizer', saved by "
            "`FormulaRecognizer.save_to_preset`, or 'stroke-recognizer', saved by "
            f"`StrokeRecognizer.save_to_preset`). Received: kind {kind!r}",
        )
    assets = sorted(cls.preset_assets.values())
    missing = [name for name in assets if name not in metadata["files"]]
    if missing:
        raise presets.PresetError(
            path,
            f"a recognizer preset for `recognize` carries its vocabulary and drawing settings "
            f"({', '.join(assets)}), checksummed in {presets.METADATA} (a model given its "
            f"vocabulary and drawing settings saves them). Received: none for {missing}",
        )
    return cls.from_preset(os.fspath(directory))
