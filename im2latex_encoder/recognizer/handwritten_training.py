"""`FormulaRecognizer` on handwritten CROHME expressions: train, save, load, recognise, score.

A trained recognizer is a preset directory (`save_recognizer`): the model's preset files
(checksummed, safe-loaded), ``vocabulary.json``, ``recognizer.json`` (how expressions are drawn
for it) and the run's ``model_card.md`` and ``metrics.json``; the run folder also holds
``history.csv`` and ``curves.png``. `load_recognizer` also reads the older folder layout
(``model.keras`` and the two JSON files).

Example:
>>> result = train_handwritten("../shared/data/crohme/train", "runs/formulas",
...                            captions="../shared/data/crohme/train_caption.txt",
...                            eval_folders=["../shared/data/crohme/test2016"])  # doctest: +SKIP
>>> result["metrics"]["test2016"]["greedy"]["exprate"]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from im2latex_encoder._deprecation import renamed_arguments
from im2latex_encoder.formulas.handwritten import (
    ExpressionAugment,
    InkExpressions,
    bucket_batches,
    pad_batch,
    read_crohme_expressions,
)
from im2latex_encoder.formulas.tokenizer import Vocabulary

MODEL_FILE = "model.keras"
VOCABULARY_FILE = "vocabulary.json"
SETTINGS_FILE = "recognizer.json"
#: Stroke augmentation used by `train_handwritten` unless told otherwise.
DEFAULT_AUGMENT = {
    "rotation": 3.0,
    "slant": 0.15,
    "aspect": 0.1,
    "scale": 0.1,
    "stroke_shift": 0.03,
    "line_width": [1.5, 3.0],
}


@dataclasses.dataclass(frozen=True)
class DrawSettings:
    """How expressions are drawn for a recognizer (saved with it as ``recognizer.json``).

    Args:
        symbol_size: float. Pixels of an expression's typical symbol (`symbol_size_for`).
        line_width: float. Pen width in pixels.
        max_shape: (height, width). Largest image; bigger expressions are scaled down.

    Example:
    >>> DrawSettings(18.0).to_dict()
    {'symbol_size': 18.0, 'line_width': 2.0, 'max_shape': [256, 1024]}
    """

    symbol_size: float = 36.4
    line_width: float = 2.0
    max_shape: tuple = (256, 1024)

    def to_dict(self) -> dict:
        """JSON form; `DrawSettings(**d)` rebuilds it.

        Example:
        >>> DrawSettings(**DrawSettings().to_dict()).max_shape
        (256, 1024)
        """
        return {
            "symbol_size": float(self.symbol_size),
            "line_width": float(self.line_width),
            "max_shape": [int(v) for v in self.max_shape],
        }

    def __post_init__(self):
        object.__setattr__(self, "max_shape", tuple(int(v) for v in self.max_shape))
        if self.symbol_size <= 0 or self.line_width <= 0 or min(self.max_shape) < 16:
            raise ValueError(
                f"Expected symbol_size > 0, line_width > 0 and max_shape sides >= 16. "
                f"Received: {self}"
            )

    def render(self, expressions: InkExpressions, index: int, *, augment=None, rng=None):
        """Draw expression `index` with these settings: uint8 ``(H, W)``.

        Example:
        >>> data = InkExpressions.from_strokes([[np.array([[0., 0.], [9., 9.]])]],
        ...                                    names=["e"], truths=[""])
        >>> DrawSettings(10.0).render(data, 0).shape
        (14, 14)
        """
        return expressions.render(
            index,
            self.symbol_size,
            line_width=self.line_width,
            max_shape=self.max_shape,
            augment=augment,
            rng=rng,
        )


def crohme_vocabulary(dictionary: str | os.PathLike) -> Vocabulary:
    """The vocabulary of CROHME's caption dictionary (its tokens in id order, after the 4
    special tokens).

    Example:
    >>> len(crohme_vocabulary("../shared/data/crohme/dictionary.txt"))  # doctest: +SKIP
    115
    """
    from im2latex_encoder.formulas.crohme_truth import read_crohme_dictionary

    return Vocabulary(read_crohme_dictionary(dictionary))


def expression_targets(
    expressions: InkExpressions, captions: dict | None = None
) -> tuple[list, dict]:
    """The token target of every expression, and why some have none.

    With `captions` (stem → tokens, `read_crohme_captions`), an expression's target is its
    caption; without, its normalised ``truth`` (`normalize_crohme_truth`).

    Returns:
        ``(targets, skipped)``: one token list (or None) per expression, and
        ``{name: reason}`` for each None.

    Example:
    >>> data = InkExpressions.from_strokes([[np.zeros((1, 2))]] * 2, names=["a", "b"],
    ...                                    truths=["$x^2$", ""])
    >>> expression_targets(data)
    ([['x', '^', '{', '2', '}'], None], {'b': 'no truth'})
    """
    from im2latex_encoder.formulas.crohme_truth import normalize_crohme_truth

    targets, skipped = [], {}
    for name, truth in zip(expressions.names, expressions.truths):
        if captions is not None:
            tokens = captions.get(name)
            reason = "no caption"
        else:
            tokens = normalize_crohme_truth(truth) if truth else None
            reason = "no truth"
        if not tokens:
            skipped[name] = reason
            tokens = None
        targets.append(tokens)
    return targets, skipped


class ExpressionBatches(keras.utils.PyDataset):
    """Teacher-forcing batches of drawn expressions, bucketed by width.

    Each epoch groups the expressions into batches of similar width (fresh groups every
    epoch when `shuffle`), draws them (with `augment`, seeded by epoch and batch, so a
    resumed run sees the same batches) and pads each batch to its own largest size.
    Yields ``((images (B, H, W, 1), ids (B, T)), next_ids (B, T))``.

    Args:
        expressions: InkExpressions.
        token_ids: one int sequence per expression: ``<start>`` … ``<end>``.
        batch_size: int.
        settings: DrawSettings.
        augment: ExpressionAugment or None.
        shuffle: bool.
        seed: int.
        **kwargs: `keras.utils.PyDataset` arguments (`workers`, `use_multiprocessing`).

    Example:
    >>> data = InkExpressions.from_strokes([[np.array([[0., 0.], [9., 9.]])]] * 3,
    ...                                    names="abc", truths=["", "", ""])
    >>> batches = ExpressionBatches(data, [[1, 5, 2]] * 3, 2, DrawSettings(10.0), shuffle=False)
    >>> (images, ids), next_ids = batches[0]
    >>> len(batches), images.shape, ids.tolist(), next_ids.tolist()
    (2, (2, 32, 32, 1), [[1, 5], [1, 5]], [[5, 2], [5, 2]])
    """

    def __init__(
        self,
        expressions: InkExpressions,
        token_ids: Sequence[Sequence[int]],
        batch_size: int,
        settings: DrawSettings,
        *,
        augment: ExpressionAugment | None = None,
        shuffle: bool = True,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if len(token_ids) != len(expressions):
            raise ValueError(
                f"Need one token sequence per expression. Received: "
                f"{len(token_ids)} for {len(expressions)} expressions"
            )
        self.expressions = expressions
        self.token_ids = [np.asarray(ids, np.int32) for ids in token_ids]
        self.batch_size = int(batch_size)
        self.settings = settings
        self.augment = augment
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.shapes = [
            expressions.image_shape(
                i,
                settings.symbol_size,
                line_width=settings.line_width,
                max_shape=settings.max_shape,
            )
            for i in range(len(expressions))
        ]
        self.epoch = 0
        self._batches = self._bucket()

    def _bucket(self):
        rng = np.random.default_rng([self.seed, self.epoch]) if self.shuffle else None
        return bucket_batches(self.shapes, self.batch_size, rng=rng)

    def set_epoch(self, epoch: int) -> None:
        """Regroup as for `epoch` (a resumed run starts at its epoch).

        Example:
        >>> batches.set_epoch(3)  # doctest: +SKIP
        """
        self.epoch = int(epoch)
        self._batches = self._bucket()

    def __len__(self) -> int:
        return len(self._batches)

    def __getitem__(self, index: int):
        members = self._batches[index]
        rng = np.random.default_rng([self.seed, self.epoch, int(index), 7])
        images = [
            self.settings.render(
                self.expressions, int(i), augment=self.augment if self.augment else None, rng=rng
            )
            for i in members
        ]
        length = max(len(self.token_ids[i]) for i in members)
        ids = np.zeros((len(members), length), np.int32)
        for row, i in zip(ids, members):
            row[: len(self.token_ids[i])] = self.token_ids[i]
        return (pad_batch(images), ids[:, :-1]), ids[:, 1:]

    def on_epoch_end(self):
        if self.shuffle:
            self.set_epoch(self.epoch + 1)

    def as_tf_dataset(self, prefetch: int = 2):
        """These batches as a `tf.data.Dataset` whose shapes are all free (None).

        Keras' own adapter fixes every dimension its first two batches agree on, and width
        buckets differ in width, height and formula length; one pass of the dataset is one
        epoch, and the next pass regroups (`on_epoch_end`). `fit` takes it on every backend.

        Example:
        >>> dataset = batches.as_tf_dataset()  # doctest: +SKIP
        >>> model.fit(dataset, epochs=10)  # doctest: +SKIP
        """
        import tensorflow as tf

        def generate():
            for index in range(len(self)):
                yield self[index]
            self.on_epoch_end()

        spec = (
            (
                tf.TensorSpec((None, None, None, 1), tf.float32),
                tf.TensorSpec((None, None), tf.int32),
            ),
            tf.TensorSpec((None, None), tf.int32),
        )
        return tf.data.Dataset.from_generator(generate, output_signature=spec).prefetch(prefetch)


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
    >>> from im2latex_encoder.transfer import FormulaRecognizer
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
    from im2latex_encoder.transfer.recognizer import FormulaRecognizer

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
    >>> from im2latex_encoder.transfer import FormulaRecognizer
    >>> model = FormulaRecognizer(SymbolEncoder(filters=(8, 8)), 7, hidden_dim=16,
    ...                           num_layers=1, num_heads=2)
    >>> folder = save_recognizer(tempfile.mkdtemp() + "/recognizer", model,
    ...                          Vocabulary(["x", "y", "+"]), DrawSettings(18.0))
    >>> loaded, vocabulary, settings = load_recognizer(folder)
    >>> loaded.vocabulary_size, len(vocabulary), settings.symbol_size
    (7, 7, 18.0)
    """
    from im2latex_encoder.transfer.recognizer import FormulaRecognizer

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
    from im2latex_encoder.transfer.recognizer import FormulaRecognizer

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


def recognize_images(
    model,
    vocabulary: Vocabulary,
    images: Sequence[np.ndarray],
    *,
    beam: int | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> list:
    """Decode uint8 expression images (255 = ink) into token lists, in input order.

    Images are bucketed by width and padded per batch, as in training.

    Args:
        model: FormulaRecognizer.
        vocabulary: Vocabulary.
        images: uint8 ``(H, W)`` arrays of any sizes.
        beam: int or None. Beam width; None (or 1) decodes greedily.
        batch_size: int.
        progress: bool. A tqdm progress bar.

    Example:
    >>> tokens = recognize_images(model, vocabulary, [image])  # doctest: +SKIP
    """
    from im2latex_encoder.transfer.decoding import beam_search_decode, greedy_decode

    results: list = [None] * len(images)
    batches = bucket_batches([image.shape for image in images], batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="decode", unit="batch")
    for members in batches:
        batch = pad_batch([images[i] for i in members])
        if beam and beam > 1:
            decoded = beam_search_decode(model, batch, beam_width=int(beam))
        else:
            decoded = greedy_decode(model, batch)
        for i, ids in zip(members, decoded):
            results[int(i)] = vocabulary.decode_tokens(ids)
    return results


def evaluate_expressions(
    model,
    vocabulary: Vocabulary,
    settings: DrawSettings,
    expressions: InkExpressions,
    targets: Sequence,
    *,
    beam: int | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> dict:
    """ExpRate, ≤ 1 and ≤ 2 token errors and token error rate over expressions with a target.

    Expressions whose target is None, or holds a token outside the vocabulary, are counted in
    `skipped` (with reasons), never silently dropped.

    Returns:
        dict: `exprate`, `exprate_1`, `exprate_2`, `token_error_rate`, `n`, `skipped`,
        `skipped_reasons`, `formulas_per_second`, and `examples` (the first 20 errors).

    Example:
    >>> evaluate_expressions(model, vocabulary, settings, test, targets)["exprate"]  # doctest: +SKIP
    """
    from im2latex_encoder.transfer.metrics import edit_distance, expression_rates

    keep, reasons = [], {}
    for index, target in enumerate(targets):
        if target is None:
            reasons[expressions.names[index]] = "no target"
        elif any(token not in vocabulary for token in target):
            unknown = sorted({t for t in target if t not in vocabulary})
            reasons[expressions.names[index]] = f"tokens outside the vocabulary: {unknown}"
        else:
            keep.append(index)
    images = [settings.render(expressions, i) for i in keep]
    started = time.perf_counter()
    predicted = recognize_images(
        model, vocabulary, images, beam=beam, batch_size=batch_size, progress=progress
    )
    seconds = time.perf_counter() - started
    wanted = [list(targets[i]) for i in keep]
    result = expression_rates(wanted, predicted)
    errors = [
        {
            "name": expressions.names[i],
            "target": " ".join(t),
            "predicted": " ".join(p),
            "edits": edit_distance(t, p),
        }
        for i, t, p in zip(keep, wanted, predicted)
        if t != p
    ]
    result.update(
        {
            "skipped": len(reasons),
            "skipped_reasons": reasons,
            "formulas_per_second": len(keep) / seconds if seconds > 0 else 0.0,
            "decoding": f"beam {beam}" if beam and beam > 1 else "greedy",
            "examples": errors[:20],
        }
    )
    return result


def _split(keys: Sequence[str], fraction: float, seed: int) -> np.ndarray:
    """Held-out mask: a key is held when its hash falls under `fraction`; equal keys go together.

    With at least two distinct keys, both sides get one: if no key falls under `fraction`
    the one with the smallest hash is held, and if all do, the largest is trained on.
    """
    from im2latex_encoder.data.ink import _unit_hash

    hashes = {key: _unit_hash(f"{seed}:{key}") for key in keys}
    held = {key: value < fraction for key, value in hashes.items()}
    if len(hashes) >= 2 and len(set(held.values())) == 1:
        pick = (min if not any(held.values()) else max)(hashes, key=hashes.__getitem__)
        held[pick] = not held[pick]
    return np.array([held[key] for key in keys], bool)


@renamed_arguments(train_dir="folders", eval_dirs="eval_folders")
def train_handwritten(
    folders,
    out,
    *,
    captions=None,
    dictionary=None,
    preset: str | None = "crohme101",
    freeze_encoder: bool = False,
    epochs: int = 20,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    hidden_dim: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_dim: int = 256,
    dropout: float = 0.1,
    max_length: int = 100,
    symbol_size: float | None = None,
    validation_split: float = 0.05,
    augment: dict | None = None,
    eval_folders: Sequence = (),
    beam: int | None = None,
    seed: int = 0,
    strategy: str = "default",
    max_train: int | None = None,
    progress: bool = True,
    command: str = "",
) -> dict:
    """Train a `FormulaRecognizer` on CROHME expressions; resumable; scores every eval folder.

    Every epoch is checkpointed atomically (`RunCheckpoint`); run the same call again after
    an interruption (even ``kill -9``) and it resumes after the last finished epoch. Choices
    are made on `validation_split` of the training expressions, split by formula (a hash of
    the target tokens: every writer's copy of a formula lands on the same side); folders in
    `eval_folders` are only scored, at the end.

    Args:
        folders: CROHME folder(s) of training expressions (``train_dir=`` is its deprecated
            spelling, removed in 0.3.0).
        out: run folder (``checkpoint/``, ``history.csv``, ``curves.png``, ``metrics.json``,
            ``recognizer/``).
        captions: caption file (stem → tokens) for the training targets, or None to use
            each file's normalised ``truth``.
        dictionary: CROHME ``dictionary.txt`` for the vocabulary, or None for the tokens of
            the training targets.
        preset: symbol encoder preset for the encoder's weights, or None (random, "scratch").
        freeze_encoder: bool. Keep the pretrained conv stages fixed.
        epochs, batch_size, learning_rate: training.
        hidden_dim, num_layers, num_heads, intermediate_dim, dropout, max_length: the model.
        symbol_size: float or None. Pixels of a typical symbol; None: the size the preset's
            symbols were drawn at (`symbol_size_for` its image size), 36.4 without a preset.
        validation_split: float in (0, 1).
        augment: dict of `ExpressionAugment` fields, or None for `DEFAULT_AUGMENT`.
        eval_folders: CROHME folders to score at the end (targets: normalised truths);
            ``eval_dirs=`` is its deprecated spelling (removed in 0.3.0).
        beam: int or None. Also score with beam search of this width.
        seed: int.
        strategy: `"default"` or `"mirrored"` (tf.distribute, as `pretrain --strategy`).
        max_train: int or None. Use only this many training expressions (smoke runs).
        progress: bool. Progress bars.
        command: str. The command line, recorded in the model card.

    Returns:
        dict with `metrics` (per folder: greedy, and beam when asked) and `history`.

    Example:
    >>> train_handwritten("crohme/train", "runs/f", epochs=1)  # doctest: +SKIP
    """
    from im2latex_encoder import SymbolEncoder
    from im2latex_encoder.formulas.crohme_truth import read_crohme_captions
    from im2latex_encoder.formulas.handwritten import symbol_size_for
    from im2latex_encoder.training.checkpoint import RunCheckpoint
    from im2latex_encoder.training.data_sources import _cache_path
    from im2latex_encoder.training.distribute import make_strategy
    from im2latex_encoder.transfer.recognizer import FormulaRecognizer
    from im2latex_encoder.transfer.training import compile_recognizer

    if not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must lie in (0, 1). Received: {validation_split!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sources = [
        os.fspath(d) for d in ([folders] if isinstance(folders, (str, os.PathLike)) else folders)
    ]
    expressions = read_crohme_expressions(
        sources, progress=progress, cache=_cache_path("crohme-expressions", sources, ".npz")
    )
    caption_map = read_crohme_captions(captions) if captions else None
    targets, skipped = expression_targets(expressions, caption_map)
    vocabulary = (
        crohme_vocabulary(dictionary)
        if dictionary
        else Vocabulary(sorted({t for target in targets if target for t in target}))
    )
    usable = [
        i
        for i, t in enumerate(targets)
        if t is not None
        and len(t) + 2 <= max_length + 1
        and all(token in vocabulary for token in t)
    ]
    for i, t in enumerate(targets):
        if t is not None and i not in set(usable):
            skipped[expressions.names[i]] = (
                "longer than max_length"
                if len(t) + 2 > max_length + 1
                else "tokens outside the vocabulary"
            )
    if max_train:
        usable = usable[:max_train]
    # Split by formula, not by file: half of CROHME's training expressions share their formula
    # with another writer's, and a held-out copy of a trained formula measures memory.
    held = _split([" ".join(targets[i]) for i in usable], validation_split, seed)
    train_index = [i for i, h in zip(usable, held) if not h]
    validation_index = [i for i, h in zip(usable, held) if h]
    if not train_index or not validation_index:
        raise ValueError(
            f"Need training and validation expressions. Received: {len(train_index)} "
            f"and {len(validation_index)} (of {len(expressions)} read, {len(skipped)} skipped)"
        )

    if symbol_size is None:
        symbol_size = 36.4
        if preset:
            from im2latex_encoder import SymbolClassifier

            try:
                size = SymbolClassifier.from_preset(preset).image_size
                symbol_size = round(symbol_size_for(size[0]), 1) if size else symbol_size
            except Exception:  # noqa: BLE001 - an encoder-only preset has no image size
                pass
    settings = DrawSettings(float(symbol_size))
    augment_fields = dict(DEFAULT_AUGMENT if augment is None else augment)
    if "line_width" in augment_fields:
        augment_fields["line_width"] = tuple(augment_fields["line_width"])
    augmentation = ExpressionAugment(**augment_fields)
    ids = {i: vocabulary.encode(target) for i, target in enumerate(targets) if target is not None}
    train_data = expressions.subset(train_index)
    validation_data = expressions.subset(validation_index)
    train_batches = ExpressionBatches(
        train_data,
        [ids[i] for i in train_index],
        batch_size,
        settings,
        augment=augmentation,
        seed=seed,
    )
    validation_batches = ExpressionBatches(
        validation_data, [ids[i] for i in validation_index], batch_size, settings, shuffle=False
    )

    keras.utils.set_random_seed(seed)
    distribution = make_strategy(strategy)
    with distribution.scope():
        if preset:
            model = FormulaRecognizer.from_preset(
                preset,
                vocabulary_size=len(vocabulary),
                hidden_dim=hidden_dim,
                freeze_encoder=freeze_encoder,
                num_layers=num_layers,
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                max_length=max_length,
                dropout=dropout,
            )
        else:
            # The default neck: projection to hidden_dim, layer norm, positional encoding.
            model = FormulaRecognizer(
                SymbolEncoder(),
                len(vocabulary),
                hidden_dim=hidden_dim,
                num_layers=num_layers,
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                max_length=max_length,
                dropout=dropout,
            )
        compile_recognizer(model, learning_rate=learning_rate, jit_compile=False)
    record = {
        "train": sources,
        "preset": preset,
        "freeze_encoder": freeze_encoder,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "hidden_dim": hidden_dim,
        "num_layers": num_layers,
        "num_heads": num_heads,
        "intermediate_dim": intermediate_dim,
        "dropout": dropout,
        "max_length": max_length,
        "draw": settings.to_dict(),
        "augment": {k: list(v) if isinstance(v, tuple) else v for k, v in augment_fields.items()},
        "validation_split": validation_split,
        "validation_by": "formula",
        "seed": seed,
        "max_train": max_train,
        "captions": os.fspath(captions) if captions else None,
    }
    run_file = out / "run.json"
    if run_file.is_file():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        # `epochs` may grow (a constant learning rate: more epochs extend the same run).
        changed = sorted(
            k
            for k in set(previous) | set(record)
            if k != "epochs" and previous.get(k) != record.get(k)
        )
        if changed:
            raise ValueError(
                f"{out} holds a run with other settings ({changed}); resume it with the "
                "same arguments or choose another --out"
            )
    from im2latex_encoder._atomic import atomic_write_text

    atomic_write_text(run_file, json.dumps(record, indent=1))
    checkpoint = RunCheckpoint(out / "checkpoint", history_csv=out / "history.csv")
    # Build the model's variables before restoring (one small batch, not trained on).
    (images, prefix), _ = validation_batches[0]
    model((images[:1], prefix[:1]))
    initial_epoch = checkpoint.restore(model)
    train_batches.set_epoch(initial_epoch)
    started = time.perf_counter()
    if initial_epoch < epochs:
        model.fit(
            train_batches.as_tf_dataset(),
            validation_data=validation_batches.as_tf_dataset(),
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=[checkpoint],
            verbose=1 if progress else 2,
            shuffle=False,  # ExpressionBatches regroups every epoch itself (seeded, resumable)
        )
    training_seconds = time.perf_counter() - started
    history = checkpoint.history

    metrics = {
        "validation": _score(
            model,
            vocabulary,
            settings,
            validation_data,
            [targets[i] for i in validation_index],
            beam,
            progress,
        )
    }
    for folder in eval_folders:
        data = read_crohme_expressions(
            folder,
            progress=progress,
            cache=_cache_path("crohme-expressions", [os.fspath(folder)], ".npz"),
        )
        folder_targets, folder_skipped = expression_targets(data)
        metrics[Path(folder).name] = _score(
            model,
            vocabulary,
            settings,
            data,
            folder_targets,
            beam,
            progress,
            extra_skipped=folder_skipped,
        )
    _write_outputs(
        out,
        model,
        vocabulary,
        settings,
        record,
        history,
        metrics,
        skipped,
        len(train_index),
        training_seconds,
        command,
    )
    return {"metrics": metrics, "history": history}


def _score(model, vocabulary, settings, data, targets, beam, progress, extra_skipped=None) -> dict:
    scores: dict = {
        "greedy": evaluate_expressions(
            model, vocabulary, settings, data, targets, progress=progress
        )
    }
    if beam and beam > 1:
        scores["beam"] = evaluate_expressions(
            model, vocabulary, settings, data, targets, beam=beam, progress=progress
        )
    if extra_skipped:
        scores["unreadable"] = len(extra_skipped)
    return scores


def _write_outputs(
    out: Path,
    model,
    vocabulary,
    settings,
    record,
    history,
    metrics,
    skipped,
    trained_on,
    training_seconds,
    command,
) -> None:
    from im2latex_encoder._atomic import atomic_write_text
    from im2latex_encoder.training.model_card import CROHME_LICENCE

    _plot_curves(history, out / "curves.png")
    summary = {
        name: {
            kind: {k: v for k, v in score.items() if k not in ("skipped_reasons", "examples")}
            for kind, score in scores.items()
            if isinstance(score, dict)
        }
        for name, scores in metrics.items()
    }
    atomic_write_text(
        out / "metrics.json",
        json.dumps(
            {
                "metrics": metrics,
                "training_seconds": training_seconds,
                "trained_on": trained_on,
                "skipped_training_expressions": skipped,
            },
            indent=1,
        ),
    )
    lines = [
        f"# Model card: handwritten formula recognizer ({out.name})",
        "",
        "Reads a handwritten expression (CROHME InkML drawn to an image, or an image) and writes "
        "its LaTeX tokens (CROHME's caption form).",
        "",
        "## Data",
        "",
        CROHME_LICENCE,
        "",
        f"- Training: {trained_on} expressions of {', '.join(record['train'])} "
        f"({len(skipped)} skipped: no caption, too long or unknown tokens); "
        f"{record['validation_split']:.0%} of the expressions held out for validation.",
        f"- Encoder: {'preset ' + repr(record['preset']) if record['preset'] else 'random (scratch)'}"
        f"{', frozen' if record['freeze_encoder'] else ''}; typical symbol drawn "
        f"{settings.symbol_size} px tall.",
        "",
        "## Results",
        "",
        "| data | decoding | ExpRate | ≤1 | ≤2 | token error rate | n | skipped |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, scores in summary.items():
        for kind, score in scores.items():
            lines.append(
                f"| {name} | {kind} | {100 * score['exprate']:.2f}% | {100 * score['exprate_1']:.2f}% | "
                f"{100 * score['exprate_2']:.2f}% | {100 * score['token_error_rate']:.2f}% | "
                f"{score['n']} | {score['skipped']} |"
            )
    lines += [
        "",
        "## Training",
        "",
        f"- {len(history)} epochs, {training_seconds:.0f} s in this process "
        "(an interrupted run's earlier epochs are in history.csv).",
        f"- Command: `{command or 'train_handwritten(...)'}`",
        f"- Settings: `{json.dumps(record)}`",
        "",
    ]
    card = "\n".join(lines)
    atomic_write_text(out / "model_card.md", card)
    save_recognizer(
        out / "recognizer",
        model,
        vocabulary,
        settings,
        extra_files={"model_card.md": card, "metrics.json": json.dumps(summary, indent=1)},
        metadata={
            "metrics": summary,
            "training": {
                "command": command,
                "trained_on": trained_on,
                "seconds": training_seconds,
                "settings": record,
            },
        },
    )


def _plot_curves(history, path) -> None:
    if not history:
        return
    from im2latex_encoder.training.plots import plot_history

    plot_history(
        history,
        path,
        metric="token_accuracy",
        title="Token accuracy (teacher-forced)",
        validation_label="validation expressions",
    )
