"""Data specs of the command line (`synthetic`, `crohme:DIR`, `FILE.npz`) → labelled arrays."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from im2latex_encoder.symbols import CROHME_SYMBOLS

_CACHE_ENV = "IM2LATEX_ENCODER_CACHE"


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """One data source named on the command line.

    Args:
        kind: str. `"synthetic"`, `"crohme"` (an InkML folder) or `"npz"` (a prepared cache).
        path: str or None. The folder or file, for `crohme` and `npz`.

    Example:
    >>> parse_data_spec("crohme:/data/CROHME/train")
    DataSpec(kind='crohme', path='/data/CROHME/train')
    """

    kind: str
    path: str | None = None

    def __str__(self) -> str:
        return self.kind if self.path is None else f"{self.kind}:{self.path}"


def parse_data_spec(text: str) -> DataSpec:
    """Parse `synthetic`, `crohme:DIR` or a prepared `FILE.npz`.

    Raises:
        ValueError: for anything else, saying what was expected.

    Example:
    >>> parse_data_spec("synthetic")
    DataSpec(kind='synthetic', path=None)
    """
    if text == "synthetic":
        return DataSpec("synthetic")
    if text.startswith("crohme:") and len(text) > len("crohme:"):
        return DataSpec("crohme", text[len("crohme:") :])
    if text.endswith(".npz"):
        return DataSpec("npz", text)
    raise ValueError(
        "`--data` must be 'synthetic', 'crohme:DIR' (a CROHME InkML folder) or a prepared "
        f"FILE.npz. Received: {text!r}"
    )


def spec_path(spec: DataSpec) -> str:
    """The path of a data spec (`crohme:DIR`, `FILE.npz`); a clear error when it has none."""
    if spec.path is None:
        raise ValueError(
            f"`{spec.kind}` data needs a path ('crohme:DIR' or FILE.npz). Received: {spec}"
        )
    return spec.path


@dataclasses.dataclass
class LabelledImages:
    """Images with labels mapped onto a model's label list, and what could not be used.

    Args:
        images: uint8 `(N, H, W)`, 255 = ink.
        labels: int32 `(N,)`, indices into the model's labels.
        name: str. Where they came from.
        skipped: int. Samples not usable (unknown labels, malformed files, missing files).
        report: dict. The source's own report of what it skipped, by reason.
        boxes: float32 `(N, 4)` or None. Each symbol's place in its expression
            (`InkDataset.boxes`), when the source knows it (CROHME ink).
        groups: int32 `(N,)` or None. Each symbol's expression, with `boxes`.

    Example:
    >>> data = LabelledImages(np.zeros((1, 8, 8), np.uint8), np.zeros(1, np.int32), "x", 0, {})
    >>> len(data)
    1
    """

    images: np.ndarray
    labels: np.ndarray
    name: str
    skipped: int
    report: dict
    boxes: np.ndarray | None = None
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


def split_crohme_folders(directory: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """Split a CROHME download into training and validation folders by their names.

    Sub-folders named like `val*`, `valid*`, `test*` are validation; the rest (or the folder
    itself when it has no such sub-folder) is training.

    Example:
    >>> split_crohme_folders("/data/CROHME")  # doctest: +SKIP
    ([PosixPath('/data/CROHME/train')], [PosixPath('/data/CROHME/validation')])
    """
    root = Path(directory)
    if not root.is_dir():
        raise NotADirectoryError(f"CROHME data must be a folder. Received: {str(directory)!r}")
    children = sorted(p for p in root.iterdir() if p.is_dir())
    validation = [p for p in children if p.name.lower().startswith(("val", "test"))]
    training = [p for p in children if p not in validation]
    if not validation:
        return [root], []
    return training or [], validation


def load_labelled(
    spec: DataSpec,
    *,
    labels: Sequence[str] = CROHME_SYMBOLS,
    image_size: int = 128,
    split: str = "train",
    per_class: int = 20,
    seed: int = 0,
    synthetic_options: dict | None = None,
    progress: bool = True,
    folders: Sequence[str | os.PathLike] | None = None,
    context_scale: bool | float = False,
) -> LabelledImages:
    """Load a data spec as uint8 images with labels mapped onto `labels`.

    Synthetic data is drawn fresh (`per_class` per class, fonts of `split`); a CROHME folder is
    prepared into a content-hashed cache (reused when unchanged) under
    `$IM2LATEX_ENCODER_CACHE` (default `~/.cache/im2latex_encoder`); a `.npz` is loaded as is.
    Samples whose label is not in `labels` are counted in `skipped`, never silently dropped.

    Args:
        spec: DataSpec.
        labels: sequence of str. The model's labels.
        image_size: int. Square image side.
        split: str. Synthetic split (`"train"` or `"validation"`).
        per_class: int. Synthetic images per class.
        seed: int. Synthetic seed.
        synthetic_options: dict or None. `SyntheticSymbols` options.
        progress: bool. Progress bars.
        folders: sequence of paths or None. For `crohme`, these folders instead of `spec.path`.
        context_scale: bool or float. For `crohme`, draw each symbol at its size in its
            expression (from the ink cache, `InkDataset.render`; a float is the typical
            symbol's share of the image, `context_fill`) instead of filling the image.

    Example:
    >>> data = load_labelled(DataSpec("synthetic"), image_size=32, per_class=1, progress=False)
    >>> len(data), data.images.dtype
    (101, dtype('uint8'))
    """
    label_index = {name: i for i, name in enumerate(labels)}
    if spec.kind == "synthetic":
        from im2latex_encoder.data.synthetic import generate_synthetic_symbols

        wanted = [name for name in labels if name in CROHME_SYMBOLS]
        images, symbol_ids = generate_synthetic_symbols(
            per_class,
            split=split,
            image_size=image_size,
            seed=seed,
            labels=wanted,
            progress=progress,
            **(synthetic_options or {}),
        )
        mapped = np.array([label_index[CROHME_SYMBOLS[i]] for i in symbol_ids], np.int32)
        return LabelledImages(images, mapped, f"synthetic ({split} fonts)", 0, {})
    from im2latex_encoder.data.cache import load_prepared
    from im2latex_encoder.data.crohme_preparer import prepare_crohme

    if spec.kind == "crohme" and context_scale:
        ink, skipped, report = load_ink_labelled(
            spec, labels=labels, progress=progress, folders=folders
        )
        return LabelledImages(
            ink.render(image_size, context_scale=context_scale),
            ink.labels,
            str(spec),
            skipped,
            report,
            boxes=ink.boxes,
            groups=ink.groups,
        )
    if spec.kind == "crohme":
        sources = [os.fspath(p) for p in (folders or [spec_path(spec)])]
        dataset = prepare_crohme(
            sources if len(sources) > 1 else sources[0],
            cache_path("crohme", sources, f"-{image_size}.npz"),
            image_size=image_size,
            progress=progress,
        )
    else:
        dataset = load_prepared(spec_path(spec))
    mapped, keep, skipped, report = _map_labels(
        dataset.label_names, dataset.labels, dataset.report, label_index
    )
    images = dataset.images if keep.all() else dataset.images[keep]
    return LabelledImages(images, mapped[keep], str(spec), skipped, report)


def _map_labels(source_names, source_labels: np.ndarray, source_report: dict, label_index: dict):
    """Map a source's label indices onto a model's: ``(mapped, keep, skipped, report)``.

    `mapped` is -1 where the label is not the model's (`keep` False there); `skipped` counts those
    plus every skip in the source's report except ``missing_file`` (ground-truth rows without a
    file are data the user does not have, not skipped samples).
    """
    source_ids = np.array([label_index.get(name, -1) for name in source_names], np.int32)
    mapped = source_ids[source_labels] if len(source_labels) else np.zeros(0, np.int32)
    keep = mapped >= 0
    report = dict(source_report)
    skipped_labels = int((~keep).sum())
    counts = report.get("counts", {}) if isinstance(report.get("counts"), dict) else {}
    skipped = skipped_labels + sum(
        int(n) for reason, n in counts.items() if reason != "missing_file"
    )
    if skipped_labels:
        report["not_in_model_labels"] = skipped_labels
    return mapped, keep, skipped, report


def cache_path(kind: str, sources: Sequence[str], suffix: str) -> Path:
    """Where prepared data of `kind` read from `sources` is cached (keyed by their paths)."""
    key = hashlib.sha256("\n".join(os.path.abspath(s) for s in sources).encode()).hexdigest()[:16]
    cache_dir = Path(os.environ.get(_CACHE_ENV, Path.home() / ".cache" / "im2latex_encoder"))
    cache_dir.mkdir(parents=True, exist_ok=True)
    return cache_dir / f"{kind}-{key}{suffix}"


def load_ink_labelled(
    spec: DataSpec,
    *,
    labels: Sequence[str] = CROHME_SYMBOLS,
    progress: bool = True,
    folders: Sequence[str | os.PathLike] | None = None,
):
    """Load a `crohme:DIR` spec as strokes (`InkDataset`) with labels mapped onto `labels`.

    The folder is read once into a content-hashed ink cache under `$IM2LATEX_ENCODER_CACHE`
    (see `prepare_crohme_ink`) and reused while its files are unchanged. Symbols whose label
    is not in `labels` are left out and counted.

    Returns:
        ``(ink, skipped, report)``: the `InkDataset` (labels are indices into `labels`), the
        number of symbols not usable, and the scan's report.

    Example:
    >>> ink, skipped, report = load_ink_labelled(parse_data_spec("crohme:DIR"))  # doctest: +SKIP
    """
    import dataclasses as _dataclasses

    from im2latex_encoder.data.ink import prepare_crohme_ink

    if spec.kind != "crohme":
        raise ValueError(f"Ink (stroke) data needs a CROHME folder, 'crohme:DIR'. Received: {spec}")
    sources = [os.fspath(p) for p in (folders or [spec_path(spec)])]
    ink = prepare_crohme_ink(
        sources if len(sources) > 1 else sources[0],
        cache_path("crohme-ink", sources, ".npz"),
        progress=progress,
    )
    label_index = {name: i for i, name in enumerate(labels)}
    mapped, keep, skipped, report = _map_labels(
        ink.label_names, ink.labels, ink.report, label_index
    )
    if not keep.all():
        ink = ink.subset(np.flatnonzero(keep))
        mapped = mapped[keep]
    ink = _dataclasses.replace(ink, labels=mapped.astype(np.int32), label_names=tuple(labels))
    return ink, skipped, report


# A regex, not an XML parse: one top-level annotation per file, read 11× faster than parsing
# every trace (the InkML reader's job).
_WRITER = re.compile(rb'<(?:[\w.-]+:)?annotation\b[^>]*\btype="writer"[^>]*>([^<]*)<')


def crohme_writers(folders: Sequence[str | os.PathLike], names: Sequence[str]) -> list[str | None]:
    """The ``writer`` annotation of each CROHME file `names` (paths relative to `folders`).

    CROHME's HAMEX, KAIST, MfrDB and expressmatch files name their writer (an id or a hash);
    MathBrush's do not, and get None, as does a file that no longer exists.

    Args:
        folders: sequence of str or PathLike. The folders the names are relative to (the
            first that holds a name wins; absolute names are read as they are).
        names: sequence of str. File paths, as `InkDataset.group_names` holds them.

    Returns:
        list of str or None, one per name.

    Example:
    >>> crohme_writers(["../shared/data/crohme/train"], ["HAMEX/formulaire001-equation001.inkml"])  # doctest: +SKIP
    ['...']
    """
    writers: list[str | None] = []
    roots = [os.fspath(folder) for folder in folders]
    for name in names:
        candidates = [name] if os.path.isabs(name) else [os.path.join(r, name) for r in roots]
        path = next((c for c in candidates if os.path.isfile(c)), None)
        if path is None:
            writers.append(None)
            continue
        with open(path, "rb") as handle:
            match = _WRITER.search(handle.read())
        writer = match.group(1).decode("utf-8", "replace").strip() if match else ""
        writers.append(writer or None)
    return writers
