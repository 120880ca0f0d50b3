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
import zipfile
import zlib
from typing import Any

import numpy as np

from im2latex_encoder._atomic import atomic_path
from im2latex_encoder.data.errors import CacheError

logger = logging.getLogger(__name__)

#: Version of the ``.npz`` layout written by `save_prepared`; `load_prepared` refuses others.
CACHE_FORMAT_VERSION = 1
#: Version of the rules that turn CROHME files into samples (part of a cache's settings, so a
#: cache made under older rules is rebuilt). 2: a dangling traceView costs one symbol, not the
#: file; expressions sharing a UI are both kept; undeclared Latin-1 files are read.
SCAN_VERSION = 2

# The arrays of a cache file. Metadata is JSON in 0-d unicode arrays: never object arrays.
_ARRAY_KEYS = (
    "format_version",
    "images",
    "labels",
    "label_names",
    "settings",
    "source_hash",
    "report",
)


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
        problem = _validate(
            self.images, self.labels, self.label_names, self.settings, self.source_hash, self.report
        )
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
        return f"`images` must be a uint8 array of shape (N, H, W). Received: {_describe(images)}"
    if not isinstance(labels, np.ndarray) or labels.dtype != np.int32 or labels.ndim != 1:
        return f"`labels` must be an int32 array of shape (N,). Received: {_describe(labels)}"
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
    # Any: numpy's stubs check **kwargs against savez's allow_pickle (a bool).
    arrays: dict[str, Any] = {
        "format_version": np.array(CACHE_FORMAT_VERSION, dtype=np.int64),
        "images": dataset.images,
        "labels": dataset.labels,
        "label_names": _json_array(list(dataset.label_names)),
        "settings": _json_array(dataset.settings),
        "source_hash": np.array(dataset.source_hash, dtype=np.str_),
        "report": _json_array(dataset.report),
    }
    with atomic_path(path, suffix=".npz") as temporary:
        with open(temporary, "wb") as handle:
            np.savez_compressed(handle, **arrays)


def _open_npz(path: str):
    if not os.path.exists(path):
        raise FileNotFoundError(f"No prepared dataset at {path!r}")
    if os.path.isdir(path):
        raise CacheError(path, "expected a .npz file. Received: a directory")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise CacheError(
            path, f"not a readable .npz file ({type(error).__name__}: {error})"
        ) from None


def _read_json(path: str, npz, key: str):
    array = npz[key]
    if array.ndim != 0 or array.dtype.kind != "U":
        raise CacheError(
            path, f"array {key!r} must be a 0-d unicode (JSON) array. Received: {_describe(array)}"
        )
    try:
        return json.loads(str(array))
    except json.JSONDecodeError as error:
        raise CacheError(path, f"array {key!r} is not valid JSON ({error})") from None


def _read_header(path: str, npz) -> tuple[dict, str, list]:
    """Read and check format_version, settings, source_hash and label_names (cheap: small)."""
    missing = [key for key in _ARRAY_KEYS if key not in npz.files]
    if missing:
        raise CacheError(
            path,
            f"missing array(s) {missing}; expected {list(_ARRAY_KEYS)}. "
            f"Received: {sorted(npz.files)}",
        )
    version = npz["format_version"]
    if version.ndim != 0 or version.dtype.kind not in "iu":
        raise CacheError(
            path, f"'format_version' must be a 0-d integer. Received: {_describe(version)}"
        )
    if int(version) != CACHE_FORMAT_VERSION:
        raise CacheError(
            path,
            f"unknown cache version: expected {CACHE_FORMAT_VERSION}. "
            f"Received: {int(version)} (re-run `prepare`)",
        )
    source_hash = npz["source_hash"]
    if source_hash.ndim != 0 or source_hash.dtype.kind != "U":
        raise CacheError(
            path, f"'source_hash' must be a 0-d unicode array. Received: {_describe(source_hash)}"
        )
    settings = _read_json(path, npz, "settings")
    label_names = _read_json(path, npz, "label_names")
    if not isinstance(label_names, list):
        raise CacheError(
            path, f"'label_names' must be a JSON list. Received: {type(label_names).__name__}"
        )
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
        raise CacheError(
            path, f"corrupt or truncated .npz ({type(error).__name__}: {error})"
        ) from None
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


def crohme_source_hash(
    inkml_files: list[str], ground_truth_files: list[str], directories: list[str]
) -> str:
    """Hash a CROHME source by file metadata: relative path, size and mtime of every file.

    One ``stat`` per file (no file is read), so it takes about a second on a 100,000-file
    folder; an edit that keeps a file's size and modification time is not noticed.

    Example:
    >>> len(crohme_source_hash([], [], ["."]))
    64
    """
    digest = hashlib.sha256()
    roots = [os.path.abspath(directory) for directory in directories]
    for path in list(ground_truth_files) + list(inkml_files):
        absolute = os.path.abspath(path)
        index, root = next(
            ((i, r) for i, r in enumerate(roots) if absolute.startswith(r + os.sep)), (-1, "")
        )
        relative = os.path.relpath(absolute, root) if root else absolute
        stat = os.stat(path)
        digest.update(f"{index}\0{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


# Worker state, set once per process by _init_worker (the ground truth is sent once, not per
# chunk).
_WORKER: dict = {}


def _init_worker(ground_truth: dict, label_index: dict, render_settings: dict | None) -> None:
    """Set a worker's state; `render_settings` None keeps strokes (`prepare_crohme_ink`)."""
    import cv2

    cv2.setNumThreads(1)  # the pool is the parallelism
    from im2latex_encoder.data.render import RenderSettings

    _WORKER.update(
        ground_truth=ground_truth,
        label_index=label_index,
        settings=None if render_settings is None else RenderSettings(**render_settings),
    )


def _init_pool_worker(*args) -> None:
    _exit_with_parent()
    _init_worker(*args)


def _exit_with_parent() -> None:
    """End this worker when its parent dies: a `kill -9`'d parent leaves no orphans behind.

    A pool worker otherwise waits forever on its task queue, whose write end it inherited.
    """
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _prepare_chunk(paths: list[str]) -> list[tuple]:
    """Parse, classify and render files; one record per file, in order.

    Without render settings a sample is its strokes instead of an image: ``(points float32
    (n, 2), points per stroke int32, extent)``, centred on the bounding box and scaled to a
    largest extent of 1, and the symbol's largest extent before scaling (see
    `im2latex_encoder.data.ink`).
    """
    from im2latex_encoder.data.crohme import SkipReport, classify_document
    from im2latex_encoder.data.errors import InkMLError
    from im2latex_encoder.data.ink import normalize_strokes, symbol_extent
    from im2latex_encoder.data.inkml import read_inkml
    from im2latex_encoder.data.render import render_strokes_uint8

    settings = _WORKER["settings"]
    # ("malformed", path, reason) or ("ok", path, ui, samples, skips)
    records: list[tuple] = []
    for path in paths:
        try:
            document = read_inkml(path)
        except InkMLError as error:
            records.append(("malformed", path, error.reason))
            continue
        except OSError as error:  # vanished or unreadable since the listing
            records.append(("malformed", path, f"cannot read the file ({error})"))
            continue
        skips = SkipReport()
        samples: list[tuple[str, Any]] = []  # (label, image) or (label, (points, sizes, extent))
        for _, label, strokes in classify_document(
            document, _WORKER["ground_truth"], _WORKER["label_index"], skips
        ):
            if settings is None:
                samples.append((label, (*normalize_strokes(strokes), symbol_extent(strokes))))
                continue
            image = render_strokes_uint8(
                strokes,
                settings.image_size,
                margin=settings.margin,
                line_width=settings.line_width,
                antialias=settings.antialias,
            )
            samples.append((label, image))
        records.append(("ok", path, document.ui, samples, skips))
    return records


def prepare_crohme(
    source,
    out: str | os.PathLike,
    *,
    image_size=128,
    include_junk: bool = False,
    strict: bool = False,
    progress: bool = True,
    workers: int | None = None,
    chunk_size: int = 256,
) -> PreparedDataset:
    """Turn CROHME folder(s) into a prepared dataset at `out`, reusing it when up to date.

    The source is hashed by file metadata (see `crohme_source_hash`); if `out` already holds
    a cache with the same hash and settings it is loaded and returned without rewriting
    (logged). Otherwise files are parsed and rendered in parallel over chunks of
    `chunk_size` files, with at most two chunks per worker in flight, and the images are
    written into one preallocated array, so memory stays bounded by the output itself. The
    skip report (`SkipReport.to_dict`) is stored in the dataset's `report`.

    Args:
        source: str, PathLike or a sequence of them. CROHME folder(s) (train, validation).
        out: str or PathLike. The ``.npz`` cache to write (atomically).
        image_size: int or (height, width). Rendered image size.
        include_junk: bool. Keep CROHME's ``junk`` samples as an extra last class.
        strict: bool. The first malformed InkML file (or ground-truth line) is fatal.
        progress: bool. Show a tqdm progress bar.
        workers: int, optional. Processes; None uses every CPU, 1 works in this process.
        chunk_size: int. Files per task sent to a worker.

    Returns:
        The `PreparedDataset` (also saved at `out`).

    Raises:
        FileNotFoundError / NotADirectoryError: if a folder is missing.
        InkMLError / GroundTruthError: with ``strict=True``, on the first bad file.
        DataError: if no sample at all could be used.

    Example:
    >>> ds = prepare_crohme("../shared/data/crohme-sample/train", "crohme.npz",
    ...                     image_size=64, progress=False)  # doctest: +SKIP
    >>> ds.report["counts"]["missing_file"]  # doctest: +SKIP
    85702
    """
    from im2latex_encoder.data.crohme import scan_crohme_folder
    from im2latex_encoder.data.errors import DataError
    from im2latex_encoder.data.render import RenderSettings

    out = os.fspath(out)
    render_settings = RenderSettings(image_size=image_size)
    scan = scan_crohme_folder(source, include_junk=include_junk, strict=strict)
    inkml_files, ground_truth_files = scan.files()
    source_hash = crohme_source_hash(inkml_files, ground_truth_files, scan.directories)
    settings = {
        "source": "crohme",
        "scan_version": SCAN_VERSION,
        "render": render_settings.to_dict(),
        "include_junk": bool(include_junk),
        "labels_hash": hash_json(scan.labels),
    }
    cached = load_if_current(out, source_hash=source_hash, settings=settings)
    if cached is not None:
        logger.info("Reusing %s: same source hash and settings", out)
        return cached

    ground_truth = scan.start(ground_truth_files)
    height, width = render_settings.image_size
    capacity = max(len(inkml_files), 1)
    images = np.empty((capacity, height, width), dtype=np.uint8)
    labels = np.empty(capacity, dtype=np.int32)
    count = 0

    def consume(records):
        nonlocal images, labels, count
        for _, samples in accepted_records(scan, records):
            for label, image in samples:
                if count == len(images):  # expression files give several samples per file
                    grown = max(2 * len(images), 16)
                    images = np.concatenate(
                        [images, np.empty((grown - len(images), height, width), np.uint8)]
                    )
                    labels = np.concatenate([labels, np.empty(grown - len(labels), np.int32)])
                images[count] = image
                labels[count] = scan.label_index[label]
                count += 1
                scan.report.use(label)

    run_chunks(
        inkml_files,
        consume,
        (ground_truth, scan.label_index, render_settings.to_dict()),
        progress=progress,
        workers=workers,
        chunk_size=chunk_size,
    )
    scan.finish(ground_truth)
    if count == 0:
        raise DataError(scan.directories[0], "no usable sample: " + scan.report.summary())
    # Trim; copy only when the slack is large, so the common case adds no second copy.
    images = images[:count].copy() if count < 0.75 * len(images) else images[:count]
    labels = labels[:count].copy()
    report = dict(scan.report.to_dict(), sources=scan.directories)
    dataset = PreparedDataset(images, labels, scan.labels, settings, source_hash, report)
    save_prepared(out, dataset)
    logger.info("Wrote %s: %d samples; %s", out, count, scan.report.summary())
    return dataset


def accepted_records(scan, records):
    """Count each worker record in `scan`'s report; yield ``(path, samples)`` of the files used.

    A malformed file is counted (or raised, when the scan is strict), a duplicate file is
    counted and left out, and a used file's own skips (junk, unknown labels, unreadable
    symbols) are merged into the report.

    Example:
    >>> list(accepted_records(scan, [("malformed", "a.inkml", "empty file")]))  # doctest: +SKIP
    []
    """
    from im2latex_encoder.data.errors import InkMLError

    for record in records:
        if record[0] == "malformed":
            scan.malformed(InkMLError(record[1], record[2]))
            continue
        _, path, ui, samples, skips = record
        if not scan.accept(path, ui):
            continue
        scan.report.merge_skips(skips)
        yield path, samples


def run_chunks(
    inkml_files: list[str],
    consume,
    init_args: tuple,
    *,
    progress: bool = True,
    workers: int | None = None,
    chunk_size: int = 256,
    description: str = "prepare crohme",
) -> None:
    """Parse (and render) `inkml_files` in worker processes, handing records to `consume` in order.

    The files go out in chunks of `chunk_size`, at most two chunks per worker in flight, so
    memory stays bounded; `consume` receives each chunk's records (see `_prepare_chunk`) in
    file order, in this process. `init_args` are `_init_worker`'s: ``(ground_truth,
    label_index, render_settings or None)``.

    Example:
    >>> run_chunks([], lambda records: None, ({}, {}, None), progress=False)
    """
    import concurrent.futures
    import multiprocessing
    from collections import deque

    from tqdm.auto import tqdm

    chunks = [inkml_files[i : i + chunk_size] for i in range(0, len(inkml_files), chunk_size)]
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"`workers` must be at least 1. Received: workers={workers}")
    with tqdm(total=len(inkml_files), disable=not progress, unit="file", desc=description) as bar:
        if workers == 1 or len(chunks) <= 1:
            _init_worker(*init_args)
            for chunk in chunks:
                consume(_prepare_chunk(chunk))
                bar.update(len(chunk))
            return
        # fork: workers inherit the imported modules instead of re-importing the package.
        context = multiprocessing.get_context("fork")
        pool = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_pool_worker, initargs=init_args
        )
        try:
            pending: deque[tuple[concurrent.futures.Future, int]] = deque()
            for chunk in chunks:
                pending.append((pool.submit(_prepare_chunk, chunk), len(chunk)))
                if len(pending) >= 2 * workers:
                    future, size = pending.popleft()
                    consume(future.result())
                    bar.update(size)
            while pending:
                future, size = pending.popleft()
                consume(future.result())
                bar.update(size)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
