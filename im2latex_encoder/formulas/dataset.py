"""Random formula images with their token ids, for training image-to-LaTeX seq2seq models.

`make_formula_dataset` draws formulas from `FormulaGrammar`, typesets them with
`render_formula` and encodes them with a `Vocabulary`; `make_teacher_forcing_dataset` turns
the result into ``((images, decoder_input_ids), target_ids)`` batches for ``model.fit``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from im2latex_encoder._deprecation import renamed_arguments
from im2latex_encoder.data.errors import CacheError
from im2latex_encoder.data.npz import open_npz, save_npz
from im2latex_encoder.formulas.grammar import FormulaGrammar
from im2latex_encoder.formulas.render import FONTSETS, render_formula
from im2latex_encoder.formulas.tokenizer import Vocabulary, tokenize_latex

logger = logging.getLogger(__name__)

#: The `im2latex_encoder.data.npz` kind and version of a saved `FormulaDataset` (version 1,
#: written by 0.1, had neither array and kept its version in ``config``; it still loads).
_KIND = "formulas"
_FORMAT_VERSION = 2
_ARRAYS = ("images", "token_ids", "latex", "vocabulary")


@dataclass(frozen=True, eq=False)
class FormulaDataset:
    """Formula images, their padded token ids, the vocabulary and the LaTeX strings.

    Args:
        images: array ``(N, H, W)``, float32 in [0, 1] or uint8 in [0, 255]; ink is high.
        token_ids: int32 array ``(N, T)``: ``<start>`` tokens ``<end>``, then ``<pad>`` (0).
        vocabulary: Vocabulary. Maps the ids to tokens.
        latex: tuple of str. The normalized formula of each image.

    Example:
    >>> data = make_formula_dataset(4, seed=0, progress=False)
    >>> data.images.shape, data.token_ids.shape, len(data)
    ((4, 64, 512), (4, 32), 4)
    >>> data.vocabulary.decode(data.token_ids[0]) == data.vocabulary.decode(
    ...     data.vocabulary.encode(data.latex[0]))
    True
    """

    images: np.ndarray
    token_ids: np.ndarray
    vocabulary: Vocabulary
    latex: tuple[str, ...]

    def __post_init__(self):
        n = len(self.latex)
        if self.images.ndim != 3 or self.images.shape[0] != n:
            raise ValueError(
                f"`images` must have shape (N={n}, H, W). Received: {self.images.shape}"
            )
        if self.token_ids.ndim != 2 or self.token_ids.shape[0] != n:
            raise ValueError(
                f"`token_ids` must have shape (N={n}, T). Received: {self.token_ids.shape}"
            )
        if self.images.dtype not in (np.float32, np.uint8):
            raise ValueError(
                f"`images` must be float32 or uint8. Received: dtype={self.images.dtype}"
            )

    def __len__(self) -> int:
        return len(self.latex)

    def save(self, path: str | os.PathLike) -> None:
        """Write the dataset as an ``.npz`` (no pickle), atomically.

        Example:
        >>> import tempfile, os
        >>> data = make_formula_dataset(2, seed=0, progress=False)
        >>> path = os.path.join(tempfile.mkdtemp(), "formulas.npz")
        >>> data.save(path)
        >>> FormulaDataset.load(path).latex == data.latex
        True
        """
        self._save(path, config={})

    def _save(self, path, config: dict) -> None:
        save_npz(
            path,
            {
                "images": self.images,
                "token_ids": self.token_ids,
                "latex": np.array(self.latex, dtype=np.str_).reshape(-1),
                "vocabulary": np.array(self.vocabulary.tokens, dtype=np.str_),
            },
            kind=_KIND,
            version=_FORMAT_VERSION,
            metadata={"config": config},
            compress=False,  # float32 images: deflating them costs more time than it saves space
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> FormulaDataset:
        """Read a dataset written by `save` (``allow_pickle=False``).

        Files written by version 0.1 of the package (no ``kind`` array, the version inside
        ``config``) still load.

        Raises:
            CacheError: if the file is not a formula dataset or is truncated.

        Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "formulas.npz")
        >>> make_formula_dataset(3, seed=1, progress=False).save(path)
        >>> len(FormulaDataset.load(path))
        3
        """
        return cls._load(path)[0]

    @classmethod
    def _load(cls, path) -> tuple[FormulaDataset, dict]:
        with open_npz(path) as archive:
            if archive.version is None and "config" in archive.files:
                # Format 1 (0.1): no kind nor format_version array; the version in `config`.
                config = archive.json("config")
                if not isinstance(config, dict) or config.get("version") != 1:
                    raise CacheError(
                        archive.path,
                        f"expected a formula dataset whose config has version 1. "
                        f"Received: config {str(config)[:80]!r}",
                    )
                config = {key: value for key, value in config.items() if key != "version"}
                missing = [key for key in _ARRAYS if key not in archive.files]
                if missing:
                    raise CacheError(
                        archive.path,
                        f"missing array(s) {missing} in a formula dataset: expected "
                        f"{list(_ARRAYS)}. Received: {sorted(archive.files)}",
                    )
            else:
                archive.check(
                    kind=_KIND, versions=[_FORMAT_VERSION], arrays=_ARRAYS, metadata=["config"]
                )
                config = archive.json("config")
            arrays = {key: archive.array(key) for key in _ARRAYS}
        tokens = [str(token) for token in arrays["vocabulary"]]
        try:
            dataset = cls(
                images=arrays["images"],
                token_ids=arrays["token_ids"],
                vocabulary=Vocabulary(tokens[len(Vocabulary.SPECIAL_TOKENS) :]),
                latex=tuple(str(text) for text in arrays["latex"]),
            )
        except ValueError as error:
            raise CacheError(path, f"inconsistent formula dataset: {error}") from None
        return dataset, config


@renamed_arguments(height=("image_size", 0), width=("image_size", 1))
def make_formula_dataset(
    n: int,
    *,
    seed: int = 0,
    image_size: Sequence[int] = (64, 512),
    max_tokens: int = 30,
    max_depth: int = 2,
    fontsets: Sequence[str] = ("cm",),
    fontsize: float = 14.0,
    augment: bool = False,
    dtype: str = "float32",
    vocabulary: Vocabulary | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> FormulaDataset:
    """Draw `n` random formulas, typeset them and encode their tokens.

    Everything is a function of the arguments: the same call gives the same arrays, and the
    formulas are those of ``random_formulas(n, seed=seed, ...)`` (styles use another stream). The font
    set of each image is drawn from `fontsets`. With `augment`, each image also gets a random
    font size (x0.85 to x1.15) and a random position (up to 32 px to the right, and up and down
    within the free rows); the token ids do not change.

    Args:
        n: int. Number of examples.
        seed: int. Seeds the grammar and the augmentation.
        image_size: (height, width). Every image's size; formulas too wide are typeset
            smaller. ``height=`` and ``width=`` are its deprecated spellings (removed in 0.3.0).
        max_tokens: int. Longest formula in tokens; `token_ids` has ``max_tokens + 2`` columns.
        max_depth: int. Deepest nesting in the grammar (see `FormulaGrammar`).
        fontsets: sequence of str. Font sets to draw from, each one of `FONTSETS`.
        fontsize: float. Font size in points at 100 dpi (see `render_formula`); at 14 about
            2% of the grammar's formulas are too tall for 64 px and are typeset smaller.
        augment: bool. Jitter font size and position.
        dtype: str. ``"float32"`` (0..1) or ``"uint8"`` (0..255, four times smaller).
        vocabulary: Vocabulary or None. Defaults to `Vocabulary.from_grammar()`.
        cache_dir: str, PathLike or None. If set, the dataset is loaded from (or saved to) an
            ``.npz`` there, named by a hash of all the arguments above.
        progress: bool. Show a progress bar.

    Returns:
        A `FormulaDataset`.

    Example:
    >>> data = make_formula_dataset(8, seed=3, fontsets=("cm", "stix"), augment=True,
    ...                             dtype="uint8", progress=False)
    >>> data.images.dtype, data.token_ids.shape[1], int(data.token_ids[0, 0])
    (dtype('uint8'), 32, 1)
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"`n` must be an int >= 0. Received: n={n!r}")
    if dtype not in ("float32", "uint8"):
        raise ValueError(f"`dtype` must be 'float32' or 'uint8'. Received: dtype={dtype!r}")
    height, width = _as_height_width(image_size)
    fontsets = tuple(fontsets)
    unknown = [name for name in fontsets if name not in FONTSETS]
    if not fontsets or unknown:
        raise ValueError(
            f"`fontsets` must be a non-empty sequence of {FONTSETS}. "
            f"Received: fontsets={fontsets!r}"
        )
    vocabulary = vocabulary if vocabulary is not None else Vocabulary.from_grammar()
    config = {  # 0.1.0's keys, so that its caches stay valid
        "n": n,
        "seed": seed,
        "height": height,
        "width": width,
        "max_tokens": max_tokens,
        "max_depth": max_depth,
        "fontsets": list(fontsets),
        "fontsize": fontsize,
        "augment": augment,
        "dtype": dtype,
        "vocabulary": list(vocabulary.tokens),
    }
    cache_path = None
    if cache_dir is not None:
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
        cache_path = os.path.join(os.fspath(cache_dir), f"formulas-{digest}.npz")
        if os.path.exists(cache_path):
            try:
                dataset, stored = FormulaDataset._load(cache_path)
            except CacheError as error:
                logger.warning("Rebuilding %s: %s", cache_path, error.reason)
            else:
                if stored.get("arguments") == config:
                    return dataset
                logger.info("Rebuilding %s: it was made with other arguments", cache_path)

    grammar = FormulaGrammar(max_tokens=max_tokens, max_depth=max_depth)
    formula_rng = random.Random(seed)
    style_rng = np.random.default_rng([seed, 1])  # separate stream: styles never shift formulas
    images = np.zeros((n, height, width), np.float32 if dtype == "float32" else np.uint8)
    token_ids = np.zeros((n, max_tokens + 2), np.int32)
    latex = []
    for index in tqdm(range(n), desc="formulas", disable=not progress, unit="img"):
        formula = grammar.sample(formula_rng)
        fontset = fontsets[int(style_rng.integers(len(fontsets)))]
        size = fontsize * float(style_rng.uniform(0.85, 1.15)) if augment else fontsize
        image = render_formula(
            formula, height=height, max_width=width, fontset=fontset, fontsize=size
        )
        if augment:
            image = _shift_ink(image, style_rng)
        images[index] = image if dtype == "float32" else np.round(image * 255).astype(np.uint8)
        ids = vocabulary.encode(tokenize_latex(formula))
        token_ids[index, : len(ids)] = ids
        latex.append(formula)
    dataset = FormulaDataset(
        images=images, token_ids=token_ids, vocabulary=vocabulary, latex=tuple(latex)
    )
    if cache_path is not None:
        os.makedirs(os.path.dirname(cache_path), exist_ok=True)
        dataset._save(cache_path, config={"arguments": config})
    return dataset


def _as_height_width(image_size) -> tuple[int, int]:
    if (
        isinstance(image_size, (tuple, list))
        and len(image_size) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in image_size)
        and min(image_size) >= 1
    ):
        return int(image_size[0]), int(image_size[1])
    raise ValueError(
        "`image_size` must be a (height, width) pair of positive ints. "
        f"Received: image_size={image_size!r}"
    )


def _shift_ink(image: np.ndarray, rng: np.random.Generator, max_dx: int = 32) -> np.ndarray:
    """Move the ink right by up to `max_dx` px and up or down within the free rows."""
    rows, columns = np.nonzero(image)
    if rows.size == 0:
        return image
    free_right = image.shape[1] - 1 - columns.max()
    dx = int(rng.integers(0, min(max_dx, free_right) + 1))
    dy = int(rng.integers(-rows.min(), image.shape[0] - rows.max()))  # keeps all rows inside
    return np.roll(image, (dy, dx), axis=(0, 1))


def make_teacher_forcing_dataset(
    dataset: FormulaDataset,
    *,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
):
    """Build a ``tf.data.Dataset`` of ``((images, decoder_input_ids), target_ids)`` batches.

    ``decoder_input_ids`` are the token ids without the last column (they start with
    ``<start>``); ``target_ids`` are shifted one step left (they end with ``<end>``, then
    ``<pad>`` = 0). Images become float32 ``(batch, H, W, 1)`` in [0, 1] (uint8 images are
    divided by 255 per batch, so the dataset stays small in memory). Mask the padding in the
    loss, e.g. ``keras.losses.SparseCategoricalCrossentropy(ignore_class=0)``.

    Args:
        dataset: FormulaDataset.
        batch_size: int. Examples per batch.
        shuffle: bool. Shuffle the examples each epoch.
        seed: int. Shuffle seed.
        drop_remainder: bool. Drop the last smaller batch.

    Returns:
        A batched, prefetched ``tf.data.Dataset``.

    Example:
    >>> data = make_formula_dataset(4, seed=0, progress=False)
    >>> (images, inputs), targets = next(iter(make_teacher_forcing_dataset(data, batch_size=2)))
    >>> tuple(images.shape), tuple(inputs.shape), tuple(targets.shape)
    ((2, 64, 512, 1), (2, 31), (2, 31))
    """
    import tensorflow as tf  # the data modules import TensorFlow only where a pipeline is built

    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1. Received: batch_size={batch_size!r}")
    token_ids = dataset.token_ids.astype(np.int32)
    pairs = tf.data.Dataset.from_tensor_slices(
        (dataset.images, token_ids[:, :-1], token_ids[:, 1:])
    )
    if shuffle:
        pairs = pairs.shuffle(len(dataset), seed=seed, reshuffle_each_iteration=True)
    pairs = pairs.batch(batch_size, drop_remainder=drop_remainder)
    scale = 1 / 255 if dataset.images.dtype == np.uint8 else 1.0

    def to_model_inputs(images, decoder_inputs, targets):
        images = tf.cast(images, tf.float32)[..., tf.newaxis] * scale
        return (images, decoder_inputs), targets

    return pairs.map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE
    )
