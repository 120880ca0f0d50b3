"""Save and load a trained recognizer with its vocabulary and drawing settings.

A trained recognizer is a preset directory (`save_recognizer`): the model's preset files
(checksummed, safe-loaded), ``vocabulary.json``, ``recognizer.json`` (how expressions are drawn
for it) and the run's ``model_card.md`` and ``metrics.json``. `load_recognizer` also reads the
older folder layout (``model.keras`` and the two JSON files).

Example:
>>> model, vocabulary, settings = load_recognizer("crohme-formulas")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras

from im2latex_encoder.formulas.tokenizer import Vocabulary
from im2latex_encoder.recognizer.preprocessor import DrawSettings

MODEL_FILE = "model.keras"
VOCABULARY_FILE = "vocabulary.json"
SETTINGS_FILE = "recognizer.json"


def save_recognizer(
    directory: str | os.PathLike,
    model,
    vocabulary: Vocabulary,
    settings: DrawSettings,
    extra_files: dict | None = None,
    *,
    metadata: dict | None = None,
) -> Path:
    """Save a recognizer as a preset directory: the model, its vocabulary and how to draw for it.

    Writes `FormulaRecognizer.save_to_preset`'s files (``config.json``, ``model.weights.h5``,
    ``task.json``, ``task.weights.h5``, ``metadata.json``) with ``vocabulary.json``,
    ``recognizer.json`` (the `DrawSettings`) and `extra_files` (e.g. the run's
    ``model_card.md``) beside them, every file checksummed in ``metadata.json``, which also
    records the draw settings. The folder is built beside its target and swapped in whole.
    `load_recognizer` and ``im2latex-encoder recognize --model`` read it;
    ``python -m pretrain.ship`` ships it inside the package.

    Args:
        directory: str or PathLike. The preset directory to (re)place.
        model: FormulaRecognizer. The trained recognizer.
        vocabulary: Vocabulary. Its token ids.
        settings: DrawSettings. How expressions are drawn for it.
        extra_files: dict or None. More text files, name -> text (``model_card.md``,
            ``metrics.json``).
        metadata: dict or None. JSON-serialisable facts for ``metadata.json`` (metrics,
            training command).

    Returns:
        The directory's path.

    Raises:
        ValueError: if `model` is not a `FormulaRecognizer`, or its vocabulary size differs
            from `vocabulary`'s.

    Example:
    >>> import tempfile
    >>> from im2latex_encoder import SymbolEncoder
    >>> from im2latex_encoder.recognizer import FormulaRecognizer
    >>> model = FormulaRecognizer(SymbolEncoder(filters=(8, 8)), 7, hidden_dim=16,
    ...                           num_layers=1, num_heads=2)
    >>> folder = save_recognizer(tempfile.mkdtemp() + "/recognizer", model,
    ...                          Vocabulary(["x", "y", "+"]), DrawSettings(18.0))
    >>> sorted(p.name for p in folder.iterdir())  # doctest: +NORMALIZE_WHITESPACE
    ['config.json', 'metadata.json', 'model.weights.h5', 'recognizer.json', 'task.json',
     'task.weights.h5', 'vocabulary.json']
    >>> load_recognizer(folder)[2]
    DrawSettings(symbol_size=18.0, line_width=2.0, max_shape=(256, 1024))
    """
    from im2latex_encoder.recognizer.formula_recognizer import FormulaRecognizer

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
    files = {
        VOCABULARY_FILE: _vocabulary_text(vocabulary),
        SETTINGS_FILE: _settings_text(settings),
        **(extra_files or {}),
    }
    record = {"draw_settings": settings.to_dict(), **(metadata or {})}
    model.save_to_preset(os.fspath(directory), metadata=record, extra_files=files)
    return Path(directory)


def load_recognizer(path: str | os.PathLike):
    """Load a saved recognizer: ``(model, vocabulary, settings)``, without running saved code.

    `path` is one of:

    - a recognizer preset directory (`save_recognizer`): every file is checked against its
      sha256 in ``metadata.json`` before it is read;
    - a registered recognizer preset's name, such as ``"crohme-formulas"`` once it is shipped
      (`presets.list_presets(FormulaRecognizer, include_backbone=False)` lists them);
    - the older folder layout (``model.keras``, ``vocabulary.json``, ``recognizer.json``) or
      its ``.keras`` file (with the two JSON files beside it), loaded with ``safe_mode=True``.

    Args:
        path: str or PathLike. A preset directory, a preset name, a folder or a ``.keras`` file.

    Returns:
        ``(FormulaRecognizer, Vocabulary, DrawSettings)``.

    Raises:
        FileNotFoundError: if `path` is none of these (nothing there, or a folder lacking
            files); the message says what was expected.
        PresetError: if a preset fails its checksums, is not a recognizer's (a classifier's
            such as ``crohme101``), or lacks its vocabulary or draw settings.
        ValueError: if a ``.keras`` file holds something other than a `FormulaRecognizer`.

    Example:
    >>> import tempfile
    >>> from im2latex_encoder import SymbolEncoder
    >>> from im2latex_encoder.recognizer import FormulaRecognizer
    >>> model = FormulaRecognizer(SymbolEncoder(filters=(8, 8)), 7, hidden_dim=16,
    ...                           num_layers=1, num_heads=2)
    >>> folder = save_recognizer(tempfile.mkdtemp() + "/recognizer", model,
    ...                          Vocabulary(["x", "y", "+"]), DrawSettings(18.0))
    >>> loaded, vocabulary, settings = load_recognizer(folder)
    >>> loaded.vocabulary_size, len(vocabulary), settings.symbol_size
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
    return model, vocabulary, settings


def _vocabulary_text(vocabulary: Vocabulary) -> str:
    return json.dumps(vocabulary.to_json(), indent=1)


def _settings_text(settings: DrawSettings) -> str:
    return json.dumps(settings.to_dict(), indent=1)


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
            f"`save_recognizer`). Received: kind {kind!r}",
        )
    missing = [name for name in (VOCABULARY_FILE, SETTINGS_FILE) if name not in metadata["files"]]
    if missing:
        raise presets.PresetError(
            path,
            f"a recognizer preset for `recognize` carries its vocabulary and draw settings, "
            f"checksummed in {presets.METADATA} (`save_recognizer` writes them). "
            f"Received: none for {missing}",
        )
    model = cls.from_preset(os.fspath(directory))
    vocabulary = Vocabulary.from_json(
        json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
    )
    settings = DrawSettings(**json.loads((directory / SETTINGS_FILE).read_text(encoding="utf-8")))
    if len(vocabulary) != model.vocabulary_size:
        raise presets.PresetError(
            path,
            f"{VOCABULARY_FILE} has {len(vocabulary)} tokens and the model reads "
            f"{model.vocabulary_size} ids. Received: mismatched files",
        )
    return model, vocabulary, settings
