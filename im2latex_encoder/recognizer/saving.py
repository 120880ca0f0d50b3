"""Load a saved recognizer in any of its forms; the deprecated tuple API around it.

A trained recognizer is a `FormulaRecognizer` preset: `model.save_to_preset(directory)`
writes it, its vocabulary (``vocabulary.json``) and drawing settings (``recognizer.json``)
included, since they are the model's (`FormulaRecognizer(..., vocabulary=...,
draw_settings=...)`). `load_formula_recognizer` reads such a preset, by directory or name, and
also the older folder layout (``model.keras`` with the two JSON files beside it).
`save_recognizer` / `load_recognizer`, which took and gave the vocabulary and settings beside
the model as a tuple, are deprecated and go in 0.3.0.

Example:
>>> model = load_formula_recognizer("crohme-formulas")
>>> len(model.vocabulary), model.draw_settings.symbol_size
(115, 18.2)
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import keras

from im2latex_encoder._deprecation import REMOVED_IN
from im2latex_encoder.formulas.tokenizer import Vocabulary
from im2latex_encoder.recognizer.preprocessor import DrawSettings

MODEL_FILE = "model.keras"
VOCABULARY_FILE = "vocabulary.json"
SETTINGS_FILE = "recognizer.json"


def load_formula_recognizer(path: str | os.PathLike):
    """Load a saved `FormulaRecognizer` with its vocabulary and drawing settings, safely.

    `path` is one of:

    - a recognizer preset directory (`FormulaRecognizer.save_to_preset`): every file is
      checked against its sha256 in ``metadata.json`` before it is read;
    - a registered recognizer preset's name, such as ``"crohme-formulas"``
      (`presets.list_presets(FormulaRecognizer, include_backbone=False)` lists them);
    - the older folder layout (``model.keras``, ``vocabulary.json``, ``recognizer.json``) or
      its ``.keras`` file (with the two JSON files beside it), loaded with ``safe_mode=True``.

    The model it gives reads formulas by itself: `model.vocabulary` and
    `model.draw_settings` are set.

    Args:
        path: str or PathLike. A preset directory, a preset name, a folder or a ``.keras`` file.

    Returns:
        The `FormulaRecognizer`.

    Raises:
        FileNotFoundError: if `path` is none of these (nothing there, or a folder lacking
            files); the message says what was expected.
        PresetError: if a preset fails its checksums, is not a recognizer's (a classifier's
            such as ``crohme101``), or lacks its vocabulary or drawing settings.
        ValueError: if a ``.keras`` file holds something other than a `FormulaRecognizer`.

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
    """
    from im2latex_encoder.recognizer.formula_recognizer import FormulaRecognizer

    layout, where = _locate_recognizer(path)
    if layout == "preset":
        return _load_recognizer_preset(FormulaRecognizer, path, where)
    model_file = where if where.suffix == ".keras" else where / MODEL_FILE
    directory = model_file.parent
    missing = [
        name for name in (VOCABULARY_FILE, SETTINGS_FILE) if not (directory / name).is_file()
    ]
    if missing:
        raise FileNotFoundError(
            f"{os.fspath(path)} is not a recognizer folder: expected {MODEL_FILE}, "
            f"{VOCABULARY_FILE} and {SETTINGS_FILE} together; missing {missing}"
        )
    model = keras.saving.load_model(model_file, safe_mode=True)
    if not isinstance(model, FormulaRecognizer):
        raise ValueError(
            f"{model_file}: expected a FormulaRecognizer. Received: {type(model).__name__}"
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
    `load_formula_recognizer` reads. Goes in 0.3.0.

    Example:
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     model, vocabulary, settings = load_recognizer("crohme-formulas")
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
    return model, model.vocabulary, model.draw_settings


def _locate_recognizer(path: str | os.PathLike) -> tuple[str, Path]:
    """``("preset", directory)`` or ``("folder", folder or .keras file)``; else a clear error."""
    from im2latex_encoder import presets
    from im2latex_encoder.recognizer.formula_recognizer import FormulaRecognizer

    candidate = Path(path)
    presets.recover_interrupted_swap(candidate)
    expected = (
        f"Expected a recognizer preset directory ({presets.METADATA}, {presets.TASK_CONFIG}, "
        f"{presets.TASK_WEIGHTS}, {VOCABULARY_FILE}, {SETTINGS_FILE}; `save_recognizer`), a "
        f"folder with {MODEL_FILE}, {VOCABULARY_FILE} and {SETTINGS_FILE}, a .keras file, or a "
        "recognizer preset's name"
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
    names = presets.list_presets(FormulaRecognizer, include_backbone=False)
    if isinstance(path, str) and path in names:
        return "preset", presets.resolve_preset(path)
    if isinstance(path, str) and path in presets.list_presets():
        return "preset", presets.resolve_preset(path)  # the kind check says what it is
    raise FileNotFoundError(
        f"No recognizer at {os.fspath(path)!r}. {expected} "
        f"(registered: {list(names) or 'none shipped'}). Received: {os.fspath(path)!r}"
    )


def _load_recognizer_preset(cls, path, directory: Path):
    from im2latex_encoder import presets

    metadata = presets.preset_metadata(directory)  # every listed file's sha256 checked
    kind = metadata.get("kind")
    if kind != cls.preset_kind:
        raise presets.PresetError(
            path,
            f"expected a recognizer preset (kind {cls.preset_kind!r}, saved by "
            f"`FormulaRecognizer.save_to_preset`). Received: kind {kind!r}",
        )
    missing = [name for name in (VOCABULARY_FILE, SETTINGS_FILE) if name not in metadata["files"]]
    if missing:
        raise presets.PresetError(
            path,
            f"a recognizer preset for `recognize` carries its vocabulary and draw settings, "
            f"checksummed in {presets.METADATA} (a model given `vocabulary` and "
            f"`draw_settings` saves them). Received: none for {missing}",
        )
    return cls.from_preset(os.fspath(directory))
