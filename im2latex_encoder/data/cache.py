"""Prepared datasets as atomic, content-hashed, pickle-free ``.npz`` files.

A prepared dataset is a stack of uint8 images (255 = ink) with int32 labels, the label names,
the settings that made it (render settings, source kind, ...), a hash of its source and a report
of what was skipped. `save_prepared` writes it atomically; `load_prepared` reads it back with
``allow_pickle=False`` and validates every array, raising `CacheError` with the reason.
`prepare_crohme` turns a CROHME folder into one, reusing an up-to-date cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import zipfile
import zlib
from typing import Any

import numpy as np

from im2latex_encoder.data.errors import CacheError

logger = logging.getLogger(__name__)

#: Version of the ``.npz`` layout written by `save_prepared`; `load_prepared` refuses others.
CACHE_FORMAT_VERSION = 1

# The arrays of a cache file. Metadata is JSON in 0-d unicode arrays: never object arrays.
_ARRAY_KEYS = ("format_version", "images", "labels", "label_names", "settings", "source_hash",
               "report")


@dataclasses.dataclass(frozen=True, eq=False)
class PreparedDataset:
    """A labelled stack of symbol images, as stored in a prepared cache.

    Images are uint8 with 255 = ink on 0 = background (the float convention of the package,
    ink 1.0 on 0.0, times 255); `as_float()` gives them back as float32 in [0, 1].

    Args:
        images: np.ndarray uint8 of shape ``(N, H, W)``.
        labels: np.ndarray int32 of shape ``(N,)``, indices into `label_names`.
        label_names: tuple of str. The class names, index = label.
        settings: dict. JSON-serialisable settings that made the images (render settings,
            source kind, seed, ...); part of the cache's identity.
        source_hash: str. Hash of the source data (see `prepare_crohme`), or of the generator's
            inputs for synthetic data.
        report: dict. JSON-serialisable report of what was used and skipped.

    Example:
    >>> ds = PreparedDataset(np.zeros((2, 8, 8), np.uint8), np.array([0, 1], np.int32),
    ...                      ("a", "b"), {"image_size": [8, 8]}, "abc", {})
    >>> len(ds), ds.image_shape, ds.as_float().dtype
    (2, (8, 8), dtype('float32'))
    """

    images: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    settings: dict
    source_hash: str
    report: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "label_names", tuple(self.label_names))
        problem = _validate(self.images, self.labels, self.label_names, self.settings,
                            self.source_hash, self.report)
        if problem:
            raise ValueError(f"Invalid PreparedDataset: {problem}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(H, W)`` of every image.

        Example:
        >>> PreparedDataset(np.zeros((0, 4, 6), np.uint8), np.zeros(0, np.int32), ("a",),
        ...                 {}, "").image_shape
        (4, 6)
        """
        return int(self.images.shape[1]), int(self.images.shape[2])

    def as_float(self) -> np.ndarray:
        """Return the images as float32 in [0, 1], ink 1.0 on background 0.0.

        Example:
        >>> ds = PreparedDataset(np.full((1, 2, 2), 255, np.uint8), np.zeros(1, np.int32),
        ...                      ("a",), {}, "")
        >>> float(ds.as_float().max())
        1.0
        """
        return self.images.astype(np.float32) / np.float32(255.0)


def _validate(images, labels, label_names, settings, source_hash, report) -> str | None:
    """Return what is wrong with the parts of a dataset, or None."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 3:
        return ("`images` must be a uint8 array of shape (N, H, W). Received: "
                f"{_describe(images)}")
    if not isinstance(labels, np.ndarray) or labels.dtype != np.int32 or labels.ndim != 1:
        return f"`labels` must be an int32 array of shape (N,). Received: {_describe(labels)}"
    if labels.shape[0] != images.shape[0]:
        return (f"`labels` must have one entry per image: expected {images.shape[0]}. "
                f"Received: {labels.shape[0]}")
    if not all(isinstance(name, str) for name in label_names):
        return f"`label_names` must be strings. Received: {label_names!r}"
    if len(set(label_names)) != len(label_names):
        return f"`label_names` must be unique. Received: {label_names!r}"
    if labels.size and (labels.min() < 0 or labels.max() >= len(label_names)):
        return (f"`labels` must lie in [0, {len(label_names) - 1}] (one per label name). "
                f"Received: range [{labels.min()}, {labels.max()}]")
    if not isinstance(settings, dict) or not isinstance(report, dict):
        return (f"`settings` and `report` must be dicts. Received: {type(settings).__name__}, "
                f"{type(report).__name__}")
    if not isinstance(source_hash, str):
        return f"`source_hash` must be a str. Received: {type(source_hash).__name__}"
    return None


def _describe(array) -> str:
    if isinstance(array, np.ndarray):
        return f"dtype={array.dtype}, shape={array.shape}"
    return f"type={type(array).__name__}"


def _json_array(value) -> np.ndarray:
    # A 0-d unicode array: loads with allow_pickle=False, unlike an object array.
    return np.array(json.dumps(value, sort_keys=True, ensure_ascii=False), dtype=np.str_)


def save_prepared(path: str | os.PathLike, dataset: PreparedDataset) -> None:
    """Write a prepared dataset to a compressed ``.npz`` file, atomically.

    The file is written to a temporary file in the same folder, flushed to disk (fsync) and
    moved over `path` with `os.replace`, so readers see the old file or the new one, never a
    half-written one. Metadata is stored as JSON in 0-d unicode arrays (no pickle).

    Args:
        path: str or PathLike. The ``.npz`` file to write (its folder must exist).
        dataset: PreparedDataset. What to write.

    Raises:
        TypeError: if `dataset` is not a `PreparedDataset`.
        FileNotFoundError: if the folder of `path` does not exist.

    Example:
    >>> import tempfile, os
    >>> ds = PreparedDataset(np.zeros((1, 4, 4), np.uint8), np.zeros(1, np.int32), ("a",),
    ...                      {"image_size": [4, 4]}, "h")
    >>> out = os.path.join(tempfile.mkdtemp(), "ds.npz")
    >>> save_prepared(out, ds); load_prepared(out).label_names
    ('a',)
    """
    if not isinstance(dataset, PreparedDataset):
        raise TypeError(f"`dataset` must be a PreparedDataset. Received: {type(dataset).__name__}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"The folder of the output file does not exist: {folder}")
    arrays = {
        "format_version": np.array(CACHE_FORMAT_VERSION, dtype=np.int64),
        "images": dataset.images,
        "labels": dataset.labels,
        "label_names": _json_array(list(dataset.label_names)),
        "settings": _json_array(dataset.settings),
        "source_hash": np.array(dataset.source_hash, dtype=np.str_),
        "report": _json_array(dataset.report),
    }
    fd, tmp_path = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez_compressed(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise


def _open_npz(path: str):
    if not os.path.exists(path):
        raise FileNotFoundError(f"No prepared dataset at {path!r}")
    if os.path.isdir(path):
        raise CacheError(path, "expected a .npz file. Received: a directory")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise CacheError(path, f"not a readable .npz file ({type(error).__name__}: {error})") \
            from None


def _read_json(path: str, npz, key: str):
    array = npz[key]
    if array.ndim != 0 or array.dtype.kind != "U":
        raise CacheError(path, f"array {key!r} must be a 0-d unicode (JSON) array. "
                               f"Received: {_describe(array)}")
    try:
        return json.loads(str(array))
    except json.JSONDecodeError as error:
        raise CacheError(path, f"array {key!r} is not valid JSON ({error})") from None


def _read_header(path: str, npz) -> tuple[dict, str, list]:
    """Read and check format_version, settings, source_hash and label_names (cheap: small)."""
    missing = [key for key in _ARRAY_KEYS if key not in npz.files]
    if missing:
        raise CacheError(path, f"missing array(s) {missing}; expected {list(_ARRAY_KEYS)}. "
                               f"Received: {sorted(npz.files)}")
    version = npz["format_version"]
    if version.ndim != 0 or version.dtype.kind not in "iu":
        raise CacheError(path, f"'format_version' must be a 0-d integer. Received: "
                               f"{_describe(version)}")
    if int(version) != CACHE_FORMAT_VERSION:
        raise CacheError(path, f"unknown cache version: expected {CACHE_FORMAT_VERSION}. "
                               f"Received: {int(version)} (re-run `prepare`)")
    source_hash = npz["source_hash"]
    if source_hash.ndim != 0 or source_hash.dtype.kind != "U":
        raise CacheError(path, f"'source_hash' must be a 0-d unicode array. Received: "
                               f"{_describe(source_hash)}")
    settings = _read_json(path, npz, "settings")
    label_names = _read_json(path, npz, "label_names")
    if not isinstance(label_names, list):
        raise CacheError(path, f"'label_names' must be a JSON list. Received: "
                               f"{type(label_names).__name__}")
    return settings, str(source_hash), label_names


def load_prepared(path: str | os.PathLike) -> PreparedDataset:
    """Load and validate a prepared dataset written by `save_prepared`.

    Loads with ``allow_pickle=False`` and checks the format version, every array's dtype and
    shape, that labels index into the label names and that the metadata is valid JSON.

    Args:
        path: str or PathLike. A ``.npz`` file written by `save_prepared`.

    Returns:
        The `PreparedDataset`.

    Raises:
        FileNotFoundError: if `path` does not exist.
        CacheError: if the file is truncated, corrupt, of another version or inconsistent;
            the message names the file and the reason.

    Example:
    >>> load_prepared("train.npz")  # doctest: +SKIP
    PreparedDataset(images=array(...), ...)
    """
    path = os.fspath(path)
    npz = _open_npz(path)
    try:
        with npz:
            settings, source_hash, label_names = _read_header(path, npz)
            report = _read_json(path, npz, "report")
            images = npz["images"]
            labels = npz["labels"]
    except CacheError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        raise CacheError(path, f"corrupt or truncated .npz ({type(error).__name__}: {error})") \
            from None
    problem = _validate(images, labels, tuple(label_names), settings, source_hash, report)
    if problem:
        raise CacheError(path, problem)
    return PreparedDataset(images, labels, tuple(label_names), settings, source_hash, report)


def load_if_current(path: str | os.PathLike, *, source_hash: str,
                    settings: dict) -> PreparedDataset | None:
    """Return the cache at `path` if it was made from the same source and settings, else None.

    Only the small metadata arrays are read to decide; the images are loaded only on a match.
    A missing, corrupt or outdated file returns None (and logs why), so the caller rebuilds it.

    Args:
        path: str or PathLike. A cache file, possibly missing.
        source_hash: str. The hash the current source has.
        settings: dict. The settings the caller would prepare with (compared as JSON).

    Example:
    >>> load_if_current("missing.npz", source_hash="x", settings={}) is None
    True
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        return None
    wanted = json.loads(json.dumps(settings, sort_keys=True))
    try:
        with _open_npz(path) as npz:
            old_settings, old_hash, _ = _read_header(path, npz)
    except (CacheError, OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        logger.info("Rebuilding %s: the existing file is unusable (%s)", path, error)
        return None
    if old_hash != source_hash or old_settings != wanted:
        logger.info("Rebuilding %s: its source hash or settings differ", path)
        return None
    try:
        return load_prepared(path)
    except CacheError as error:
        logger.info("Rebuilding %s: %s", path, error)
        return None


def hash_json(value: Any) -> str:
    """Return the SHA-256 hex digest of a JSON-serialisable value (keys sorted).

    Useful as the `source_hash` of generated data: hash the generator's inputs.

    Example:
    >>> hash_json({"b": 1, "a": 2}) == hash_json({"a": 2, "b": 1})
    True
    """
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
