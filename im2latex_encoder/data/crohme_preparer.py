"""CROHME folders -> a prepared cache, with the scan's per-file step run in worker processes.

A `CrohmeScan` splits into a per-file step that needs no state (`read_crohme_file`: parse,
look the labels up, count the file's own skips) and a per-scan step that must see the files in
order (`CrohmeScan.add`: duplicates, malformed files, the report). `run_chunks` runs the first
in a process pool and hands the records to the second in this process, so a prepared cache has
exactly the samples and skip report of iterating the scan, at the speed of all CPUs.
`prepare_crohme` renders the symbols into a `PreparedDataset`; `prepare_crohme_ink` (in
`im2latex_encoder.data.ink`) keeps their strokes.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from im2latex_encoder._deprecation import renamed_arguments
from im2latex_encoder.data.cache import (
    PreparedDataset,
    crohme_source_hash,
    hash_json,
    load_if_current,
    save_prepared,
)
from im2latex_encoder.data.crohme import SCAN_VERSION, FileRecord, read_crohme_file

logger = logging.getLogger(__name__)

# Worker state, set once per process by _init_worker (the ground truth is sent once, not per
# chunk).
_WORKER: dict = {}


def _init_worker(ground_truth: dict, label_index: dict, convert: Callable[[list], Any]) -> None:
    import cv2

    cv2.setNumThreads(1)  # the pool is the parallelism
    _WORKER.update(ground_truth=ground_truth, label_index=label_index, convert=convert)


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


def _prepare_chunk(paths: list[str]) -> list[FileRecord]:
    """The scan's per-file step on each path, with each sample's strokes converted."""
    ground_truth, label_index = _WORKER["ground_truth"], _WORKER["label_index"]
    convert = _WORKER["convert"]
    return [
        read_crohme_file(path, ground_truth, label_index).with_payloads(convert) for path in paths
    ]


def run_chunks(
    inkml_files: list[str],
    consume: Callable[[list[FileRecord]], None],
    *,
    ground_truth: dict,
    label_index: dict,
    convert: Callable[[list], Any],
    progress: bool = True,
    workers: int | None = None,
    chunk_size: int = 256,
    description: str = "prepare crohme",
) -> None:
    """Run `read_crohme_file` on `inkml_files` in worker processes; hand the records on in order.

    The files go out in chunks of `chunk_size`, at most two chunks per worker in flight, so
    memory stays bounded; each sample's strokes become ``convert(strokes)`` in the worker (an
    image, say, which is smaller to send back), and `consume` receives each chunk's
    `FileRecord` list in file order, in this process: pass them to `CrohmeScan.add`.

    Args:
        inkml_files: list of str. The files, in the scan's order.
        consume: callable taking a list of `FileRecord`.
        ground_truth: dict UI -> label (`CrohmeScan.start`'s).
        label_index: dict label -> index (the scan's).
        convert: callable strokes -> payload, picklable (a module-level function or a
            `functools.partial` of one).
        progress: bool. A tqdm progress bar.
        workers: int or None. Processes; None uses every CPU, 1 works in this process.
        chunk_size: int. Files per task.
        description: str. The progress bar's label.

    Example:
    >>> records = []
    >>> run_chunks([], records.extend, ground_truth={}, label_index={}, convert=len,
    ...            progress=False)
    >>> records
    []
    """
    import concurrent.futures
    import multiprocessing
    from collections import deque

    from tqdm.auto import tqdm

    chunks = [inkml_files[i : i + chunk_size] for i in range(0, len(inkml_files), chunk_size)]
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"`workers` must be at least 1. Received: workers={workers}")
    init_args = (ground_truth, label_index, convert)
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


@renamed_arguments(source="folders")
def prepare_crohme(
    folders,
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

    The folders are hashed by file metadata (see `crohme_source_hash`); if `out` already holds
    a cache with the same hash and settings it is loaded and returned without rewriting
    (logged). Otherwise the scan's per-file step runs in parallel over chunks of
    `chunk_size` files (see `run_chunks`), and the images are written into one preallocated
    array, so memory stays bounded by the output itself. The samples and the skip report
    (`SkipReport.to_dict`, stored in the dataset's `report`) are those of iterating
    ``scan_crohme_folder(folders)``.

    Args:
        folders: str, PathLike or a sequence of them. CROHME folder(s) (train, validation);
            ``source=`` is its deprecated spelling (removed in 0.3.0).
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
    from im2latex_encoder.data.render import RenderSettings, render_strokes_uint8

    out = os.fspath(out)
    render_settings = RenderSettings(image_size=image_size)
    scan = scan_crohme_folder(folders, include_junk=include_junk, strict=strict)
    inkml_files, ground_truth_files = scan.files()
    source_hash = crohme_source_hash(inkml_files, ground_truth_files, scan.folders)
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

    def consume(records: list[FileRecord]) -> None:
        nonlocal images, labels, count
        for record in records:
            for _, label, image in scan.add(record):
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
        ground_truth=ground_truth,
        label_index=scan.label_index,
        convert=functools.partial(
            render_strokes_uint8,
            image_size=render_settings.image_size,
            margin=render_settings.margin,
            line_width=render_settings.line_width,
            antialias=render_settings.antialias,
        ),
        progress=progress,
        workers=workers,
        chunk_size=chunk_size,
    )
    scan.finish(ground_truth)
    if count == 0:
        raise DataError(scan.folders[0], "no usable sample: " + scan.report.summary())
    # Trim; copy only when the slack is large, so the common case adds no second copy.
    images = images[:count].copy() if count < 0.75 * len(images) else images[:count]
    labels = labels[:count].copy()
    report = dict(scan.report.to_dict(), sources=scan.folders)
    dataset = PreparedDataset(images, labels, scan.labels, settings, source_hash, report)
    save_prepared(out, dataset)
    logger.info("Wrote %s: %d samples; %s", out, count, scan.report.summary())
    return dataset
