"""The one ``.npz`` format of the package's data files: arrays, JSON metadata, a kind, a version.

Every cache the package writes (prepared symbol images, CROHME ink, rendered formulas) is a
`save_npz` file: its arrays as they are, each metadata value as JSON in a 0-d unicode array
(never an object array, so it loads with ``allow_pickle=False``), and two small arrays that say
what the file is: ``kind`` (e.g. ``"prepared"``) and ``format_version``. It is written to a
temporary file beside the target and renamed over it, so a reader sees the old file or the new
one. `open_npz` reads one back lazily (an array is decompressed when asked for) and
`NpzArchive.check` refuses, with a `CacheError` saying what was expected and what was received,
a file of another kind or version, with missing arrays, or corrupt.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import numpy as np

from im2latex_encoder._atomic import atomic_path
from im2latex_encoder.data.errors import CacheError

#: The arrays `save_npz` adds to every file; no data array or metadata key may take these names.
RESERVED_KEYS = ("format_version", "kind")
# What reading a damaged zip member can raise (a truncated or overwritten file).
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


def describe_array(array: Any) -> str:
    """``dtype=..., shape=...`` of an array, or the type of anything else (for error messages).

    Example:
    >>> describe_array(np.zeros((2, 3), np.uint8)), describe_array([1])
    ('dtype=uint8, shape=(2, 3)', 'type=list')
    """
    if isinstance(array, np.ndarray):
        return f"dtype={array.dtype}, shape={array.shape}"
    return f"type={type(array).__name__}"


def json_array(value: Any) -> np.ndarray:
    """A JSON-serialisable value as a 0-d unicode array (loads without pickle, unlike objects).

    Example:
    >>> json_array({"b": 1, "a": [2]})
    array('{"a": [2], "b": 1}', dtype='<U18')
    """
    return np.array(json.dumps(value, sort_keys=True, ensure_ascii=False), dtype=np.str_)


def save_npz(
    path: str | os.PathLike,
    arrays: Mapping[str, np.ndarray],
    *,
    kind: str,
    version: int,
    metadata: Mapping[str, Any] | None = None,
    compress: bool = True,
) -> None:
    """Write arrays and JSON metadata to an ``.npz`` file atomically, without pickle.

    Args:
        path: str or PathLike. The file to write (missing folders are created).
        arrays: mapping name -> np.ndarray. Stored as they are; object arrays are refused.
        kind: str. What the file holds (``"prepared"``, ``"ink"``, ...); `NpzArchive.check`
            refuses a file of another kind.
        version: int. The layout's version for this kind.
        metadata: mapping name -> JSON-serialisable value, each stored as a 0-d JSON array.
        compress: bool. Deflate the arrays (smaller, slower to write and read).

    Raises:
        TypeError: if an array has dtype object (it would need pickle).
        ValueError: if a name is reserved (`RESERVED_KEYS`) or used twice.

    Example:
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "d.npz")
    >>> save_npz(path, {"x": np.arange(3)}, kind="demo", version=1, metadata={"note": "hi"})
    >>> with open_npz(path) as archive:
    ...     version = archive.check(kind="demo", versions=[1], arrays=["x"], metadata=["note"])
    ...     archive.array("x").tolist(), archive.json("note"), version
    ([0, 1, 2], 'hi', 1)
    """
    metadata = dict(metadata or {})
    names = list(arrays) + list(metadata)
    clashes = sorted({name for name in names if name in RESERVED_KEYS or names.count(name) > 1})
    if clashes:
        raise ValueError(
            f"array and metadata names must be unique and not one of {list(RESERVED_KEYS)}. "
            f"Received: {clashes}"
        )
    stored: dict[str, Any] = {  # Any: numpy's stubs check **kwargs against allow_pickle's bool
        "format_version": np.array(int(version), dtype=np.int64),
        "kind": np.array(kind, dtype=np.str_),
    }
    for name, array in arrays.items():
        array = np.asarray(array)
        if array.dtype == object:
            raise TypeError(
                f"array {name!r} must not hold Python objects (they need pickle). "
                f"Received: {describe_array(array)}"
            )
        stored[name] = array
    stored.update({name: json_array(value) for name, value in metadata.items()})
    write = np.savez_compressed if compress else np.savez
    with atomic_path(path, suffix=".npz") as temporary:
        with open(temporary, "wb") as handle:
            write(handle, **stored)


class NpzArchive:
    """An ``.npz`` file opened by `open_npz`: check what it is, then read its arrays.

    Arrays are read lazily, so checking a large file's kind, version and metadata is cheap.
    Every read turns a damaged file's errors into a `CacheError` naming the file.

    Args:
        path: str. The file (for messages).
        npz: the ``np.lib.npyio.NpzFile`` that `np.load` opened.

    Example:
    >>> with open_npz("train.npz") as archive:  # doctest: +SKIP
    ...     archive.check(kind="prepared", versions=[1], arrays=["images"])
    ...     images = archive.array("images")
    """

    def __init__(self, path: str, npz):
        self.path = path
        self._npz = npz
        #: The names of the arrays in the file.
        self.files: tuple[str, ...] = tuple(npz.files)

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the file.

        Example:
        >>> archive = open_npz("train.npz"); archive.close()  # doctest: +SKIP
        """
        self._npz.close()

    @property
    def kind(self) -> str | None:
        """The file's ``kind``, or None for a file written before kinds were stored.

        Example:
        >>> open_npz("train.npz").kind  # doctest: +SKIP
        'prepared'
        """
        return self.text("kind") if "kind" in self.files else None

    @property
    def version(self) -> int | None:
        """The file's ``format_version``, or None if it has none.

        Example:
        >>> open_npz("train.npz").version  # doctest: +SKIP
        1
        """
        if "format_version" not in self.files:
            return None
        version = self.array("format_version")
        if version.ndim != 0 or version.dtype.kind not in "iu":
            raise CacheError(
                self.path,
                f"'format_version' must be a 0-d integer. Received: {describe_array(version)}",
            )
        return int(version)

    def check(
        self,
        *,
        kind: str,
        versions: Collection[int],
        arrays: Iterable[str] = (),
        metadata: Iterable[str] = (),
    ) -> int:
        """Refuse a file that is not `kind` in one of `versions` with the named entries.

        A file without a ``kind`` array (written before kinds were stored) is taken for
        `kind`; its version and arrays are still checked.

        Args:
            kind: str. The kind expected.
            versions: collection of int. The versions this reader understands.
            arrays: iterable of str. Data arrays that must be present.
            metadata: iterable of str. JSON metadata entries that must be present.

        Returns:
            The file's version.

        Raises:
            CacheError: saying what was expected and what the file holds.

        Example:
        >>> with open_npz("train.npz") as archive:  # doctest: +SKIP
        ...     archive.check(kind="ink", versions=[2])
        CacheError: train.npz: expected a file of kind 'ink'. Received: kind 'prepared'
        """
        found_kind = self.kind
        if found_kind is not None and found_kind != kind:
            raise CacheError(
                self.path, f"expected a file of kind {kind!r}. Received: kind {found_kind!r}"
            )
        version = self.version
        expected = [*arrays, *metadata]
        missing = [key for key in expected if key not in self.files]
        if version is not None and version not in versions:
            raise CacheError(
                self.path,
                f"unknown {kind} format version: expected one of {sorted(versions)}. "
                f"Received: version {version} (rebuild the file with this version of the package)",
            )
        if version is None or missing:
            missing = (["format_version"] if version is None else []) + missing
            raise CacheError(
                self.path,
                f"missing array(s) {missing} in an .npz of kind {kind!r}: expected "
                f"{['format_version', *expected]}. Received: {sorted(self.files)}",
            )
        return version

    def array(self, key: str) -> np.ndarray:
        """Read one array (decompressing it now).

        Raises:
            CacheError: if the array is missing or its bytes are damaged.

        Example:
        >>> open_npz("train.npz").array("labels")  # doctest: +SKIP
        array([0, 3, ...], dtype=int32)
        """
        if key not in self.files:
            raise CacheError(
                self.path, f"missing array {key!r}. Received arrays: {sorted(self.files)}"
            )
        try:
            return self._npz[key]
        except _READ_ERRORS as error:
            raise CacheError(
                self.path, f"corrupt or truncated .npz ({type(error).__name__}: {error})"
            ) from None

    def text(self, key: str) -> str:
        """Read a 0-d unicode array as a str.

        Example:
        >>> open_npz("train.npz").text("source_hash")  # doctest: +SKIP
        '3f1c...'
        """
        array = self.array(key)
        if array.ndim != 0 or array.dtype.kind != "U":
            raise CacheError(
                self.path,
                f"array {key!r} must be a 0-d unicode array. Received: {describe_array(array)}",
            )
        return str(array)

    def json(self, key: str) -> Any:
        """Read a metadata entry that `save_npz` stored as JSON.

        Example:
        >>> open_npz("train.npz").json("settings")  # doctest: +SKIP
        {'source': 'crohme', ...}
        """
        array = self.array(key)
        if array.ndim != 0 or array.dtype.kind != "U":
            raise CacheError(
                self.path,
                f"array {key!r} must be a 0-d unicode (JSON) array. "
                f"Received: {describe_array(array)}",
            )
        try:
            return json.loads(str(array))
        except json.JSONDecodeError as error:
            raise CacheError(self.path, f"array {key!r} is not valid JSON ({error})") from None


def open_npz(path: str | os.PathLike) -> NpzArchive:
    """Open an ``.npz`` file with ``allow_pickle=False``; use it as a context manager.

    Raises:
        FileNotFoundError: if `path` does not exist.
        CacheError: if `path` is a folder or not a readable ``.npz`` (truncated, garbage).

    Example:
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "d.npz")
    >>> save_npz(path, {}, kind="demo", version=3)
    >>> with open_npz(path) as archive:
    ...     archive.kind, archive.version
    ('demo', 3)
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No .npz file at {path!r}")
    if os.path.isdir(path):
        raise CacheError(path, "expected a .npz file. Received: a directory")
    try:
        npz = np.load(path, allow_pickle=False)
    except _READ_ERRORS as error:
        raise CacheError(
            path, f"not a readable .npz file ({type(error).__name__}: {error})"
        ) from None
    if not hasattr(npz, "files"):  # a bare .npy file: np.load gave an array
        raise CacheError(path, f"expected a .npz archive. Received: a .npy array ({npz.dtype})")
    return NpzArchive(path, npz)
