"""Prepared datasets as atomic, content-hashed, pickle-free ``.npz`` files.

A prepared dataset is a stack of uint8 images (255 = ink) with int32 labels, the label names,
the settings that made it (render settings, source kind, ...), a hash of its source and a report
of what was skipped. `save_prepared` writes it atomically; `load_prepared` reads it back with
``allow_pickle=False`` and validates every array, raising `CacheError` with the reason.
The file is a `im2latex_encoder.data.npz` file of kind ``"prepared"``;
`im2latex_encoder.data.crohme_preparer.prepare_crohme` turns CROHME folders into one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import warnings
from typing import Any

import numpy as np

from im2latex_encoder._deprecation import deprecated_attribute, renamed_arguments
from im2latex_encoder.data.errors import CacheError
from im2latex_encoder.data.npz import NpzArchive, describe_array, open_npz, save_npz

logger = logging.getLogger(__name__)

#: Version of the ``.npz`` layout written by `save_prepared`; `load_prepared` refuses others.
#: (Files written before the ``kind`` array was stored are the same layout and still load.)
CACHE_FORMAT_VERSION = 1
#: The `save_npz` kind of a prepared dataset.
CACHE_KIND = "prepared"

_DATA_ARRAYS = ("images", "labels")
_METADATA = ("label_names", "settings", "report")  # JSON; `source_hash` is a plain 0-d string


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
    >>> len(ds), ds.image_size, ds.as_float().dtype
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
        problem = _validate(
            self.images, self.labels, self.label_names, self.settings, self.source_hash, self.report
        )
        if problem:
            raise ValueError(f"Invalid PreparedDataset: {problem}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """``(height, width)`` of every image (``image_shape`` is its deprecated spelling).

        Example:
        >>> PreparedDataset(np.zeros((0, 4, 6), np.uint8), np.zeros(0, np.int32), ("a",),
        ...                 {}, "").image_size
        (4, 6)
        """
        return int(self.images.shape[1]), int(self.images.shape[2])

    image_shape = deprecated_attribute("image_shape", "image_size", "PreparedDataset")

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
        return (
            f"`images` must be a uint8 array of shape (N, H, W). Received: {describe_array(images)}"
        )
    if not isinstance(labels, np.ndarray) or labels.dtype != np.int32 or labels.ndim != 1:
        return f"`labels` must be an int32 array of shape (N,). Received: {describe_array(labels)}"
    if labels.shape[0] != images.shape[0]:
        return (
            f"`labels` must have one entry per image: expected {images.shape[0]}. "
            f"Received: {labels.shape[0]}"
        )
    if not all(isinstance(name, str) for name in label_names):
        return f"`label_names` must be strings. Received: {label_names!r}"
    if len(set(label_names)) != len(label_names):
        return f"`label_names` must be unique. Received: {label_names!r}"
    if labels.size and (labels.min() < 0 or labels.max() >= len(label_names)):
        return (
            f"`labels` must lie in [0, {len(label_names) - 1}] (one per label name). "
            f"Received: range [{labels.min()}, {labels.max()}]"
        )
    if not isinstance(settings, dict) or not isinstance(report, dict):
        return (
            f"`settings` and `report` must be dicts. Received: {type(settings).__name__}, "
            f"{type(report).__name__}"
        )
    if not isinstance(source_hash, str):
        return f"`source_hash` must be a str. Received: {type(source_hash).__name__}"
    return None


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
    save_npz(
        path,
        {
            "images": dataset.images,
            "labels": dataset.labels,
            "source_hash": np.array(dataset.source_hash, dtype=np.str_),
        },
        kind=CACHE_KIND,
        version=CACHE_FORMAT_VERSION,
        metadata={
            "label_names": list(dataset.label_names),
            "settings": dataset.settings,
            "report": dataset.report,
        },
    )


def _read_header(archive: NpzArchive) -> tuple[dict, str, list]:
    """Check the file's kind, version and entries; read settings, source_hash, label_names."""
    archive.check(
        kind=CACHE_KIND,
        versions=[CACHE_FORMAT_VERSION],
        arrays=[*_DATA_ARRAYS, "source_hash"],
        metadata=_METADATA,
    )
    source_hash = archive.text("source_hash")
    settings = archive.json("settings")
    label_names = archive.json("label_names")
    if not isinstance(label_names, list):
        raise CacheError(
            archive.path,
            f"'label_names' must be a JSON list. Received: {type(label_names).__name__}",
        )
    return settings, source_hash, label_names


def load_prepared(path: str | os.PathLike) -> PreparedDataset:
    """Load and validate a prepared dataset written by `save_prepared`.

    Loads with ``allow_pickle=False`` and checks the file's kind and format version, every
    array's dtype and shape, that labels index into the label names and that the metadata is
    valid JSON.

    Args:
        path: str or PathLike. A ``.npz`` file written by `save_prepared`.

    Returns:
        The `PreparedDataset`.

    Raises:
        FileNotFoundError: if `path` does not exist.
        CacheError: if the file is truncated, corrupt, of another kind or version, or
            inconsistent; the message names the file and the reason.

    Example:
    >>> load_prepared("train.npz")  # doctest: +SKIP
    PreparedDataset(images=array(...), ...)
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No prepared dataset at {path!r}")
    with open_npz(path) as archive:
        settings, source_hash, label_names = _read_header(archive)
        report = archive.json("report")
        images = archive.array("images")
        labels = archive.array("labels")
    problem = _validate(images, labels, tuple(label_names), settings, source_hash, report)
    if problem:
        raise CacheError(path, problem)
    return PreparedDataset(images, labels, tuple(label_names), settings, source_hash, report)


def load_if_current(
    path: str | os.PathLike, *, source_hash: str, settings: dict
) -> PreparedDataset | None:
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
        with open_npz(path) as archive:
            old_settings, old_hash, _ = _read_header(archive)
    except (CacheError, OSError) as error:
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


@renamed_arguments(directories="folders")
def crohme_source_hash(
    inkml_files: list[str], ground_truth_files: list[str], folders: list[str]
) -> str:
    """Hash a CROHME source by file metadata: relative path, size and mtime of every file.

    One ``stat`` per file (no file is read), so it takes about a second on a 100,000-file
    folder; an edit that keeps a file's size and modification time is not noticed. Paths are
    taken relative to the one of `folders` they lie in (``directories=`` is the deprecated
    spelling of `folders`, removed in 0.3.0).

    Example:
    >>> len(crohme_source_hash([], [], ["."]))
    64
    """
    digest = hashlib.sha256()
    roots = [os.path.abspath(folder) for folder in folders]
    for path in list(ground_truth_files) + list(inkml_files):
        absolute = os.path.abspath(path)
        index, root = next(
            ((i, r) for i, r in enumerate(roots) if absolute.startswith(r + os.sep)), (-1, "")
        )
        relative = os.path.relpath(absolute, root) if root else absolute
        stat = os.stat(path)
        digest.update(f"{index}\0{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


_MOVED = {"prepare_crohme", "SCAN_VERSION"}


def __getattr__(name: str):
    # The CROHME preparer moved to its own module; the old spelling warns for one release.
    if name in _MOVED:
        import importlib

        home = "crohme" if name == "SCAN_VERSION" else "crohme_preparer"
        warnings.warn(
            f"`im2latex_encoder.data.cache.{name}` moved to "
            f"`im2latex_encoder.data.{home}.{name}`; the old name will be removed in the next "
            "release",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(f"im2latex_encoder.data.{home}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
