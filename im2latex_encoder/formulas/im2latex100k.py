"""Read the im2latex-100k dataset (Deng et al. 2017): image paths paired with LaTeX.

Two layouts are recognised under one root folder:

* the original release: ``im2latex_formulas.lst`` and ``im2latex_{split}.lst`` with rows
  ``formula_idx image_name render_type`` (image name without ``.png``), images in
  ``formula_images/``;
* the Harvard preprocessed release: ``formulas.norm.lst`` (or ``im2latex_formulas.norm.lst``) and
  ``{split}_filter.lst``, ``im2latex_{split}_filter.lst`` or ``{split}.matching.txt`` with rows
  ``image_name formula_idx``, images in ``images_processed/`` (or ``formula_images_processed/``).

The formulas file holds stray ``\\r`` and other line-break characters inside formulas, so it is
split on ``\\n`` only; anything else would shift every index after the first stray character.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import UnidentifiedImageError  # a matplotlib dependency

from im2latex_encoder.data.errors import DataError
from im2latex_encoder.data.framing import frame_ink

_SPLIT_ALIASES = {
    "train": "train",
    "val": "validate",
    "valid": "validate",
    "validation": "validate",
    "validate": "validate",
    "test": "test",
}
# Each layout prefers its own formulas file and falls back to the other's.
_HARVARD_FORMULA_FILES = (
    "formulas.norm.lst",
    "im2latex_formulas.norm.lst",
    "formulas.lst",
    "im2latex_formulas.lst",
)
_ORIGINAL_FORMULA_FILES = (
    "im2latex_formulas.lst",
    "formulas.lst",
    "im2latex_formulas.norm.lst",
    "formulas.norm.lst",
)
_IMAGE_DIRS = ("formula_images_processed", "images_processed", "formula_images", "images")
_EXAMPLES_KEPT = 5


class Im2LatexError(DataError):
    """An im2latex-100k file is missing or malformed.

    Example:
    >>> Im2LatexError("im2latex_train.lst", "line 3: expected 3 fields").reason
    'line 3: expected 3 fields'
    """


@dataclass
class Im2LatexReport:
    """What `read_im2latex100k` read and what it skipped, with the first few examples of each.

    Attributes:
        rows: int. Rows in the split file (blank lines not counted).
        yielded: int. Pairs returned.
        missing_images: int. Rows whose image file does not exist.
        bad_indices: int. Rows whose formula index is outside the formulas file.
        empty_formulas: int. Rows whose formula is blank.
        malformed_rows: int. Rows that do not parse (wrong field count, non-integer index).
        examples: dict of str to list of str. Up to five example rows per skip reason.

    Example:
    >>> report = Im2LatexReport(rows=3, yielded=2, missing_images=1)
    >>> report.skipped, report.summary()
    (1, '2 of 3 rows read; skipped 1 missing image')
    """

    rows: int = 0
    yielded: int = 0
    missing_images: int = 0
    bad_indices: int = 0
    empty_formulas: int = 0
    malformed_rows: int = 0
    examples: dict = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        """Rows not returned, for any reason.

        Example:
        >>> Im2LatexReport(bad_indices=2, malformed_rows=1).skipped
        3
        """
        return self.missing_images + self.bad_indices + self.empty_formulas + self.malformed_rows

    def summary(self) -> str:
        """One line: how many rows were read and why the others were skipped.

        Example:
        >>> Im2LatexReport(rows=1, yielded=1).summary()
        '1 of 1 rows read'
        """
        parts = [
            f"{count} {name}"
            for count, name in (
                (self.missing_images, "missing image"),
                (self.bad_indices, "formula index out of range"),
                (self.empty_formulas, "empty formula"),
                (self.malformed_rows, "malformed row"),
            )
            if count
        ]
        text = f"{self.yielded} of {self.rows} rows read"
        return text + ("; skipped " + ", ".join(parts) if parts else "")

    def _skip(self, reason: str, example: str) -> None:
        setattr(self, reason, getattr(self, reason) + 1)
        kept = self.examples.setdefault(reason, [])
        if len(kept) < _EXAMPLES_KEPT:
            kept.append(example)


def read_im2latex_formulas(path: str | os.PathLike) -> list[str]:
    """Read an im2latex-100k formulas file: one formula per ``\\n``-terminated line.

    Lines are split on ``\\n`` only (the file has stray ``\\r`` inside formulas) and stripped of
    surrounding whitespace; undecodable bytes become U+FFFD. Index ``i`` of the list is the
    formula index the split files use.

    Args:
        path: str or PathLike. ``im2latex_formulas.lst`` or ``formulas.norm.lst``.

    Returns:
        The list of formulas.

    Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "formulas.lst")
    >>> _ = open(path, "w", newline="").write("x^2\\n\\\\frac{a}\\r{b}\\n")
    >>> read_im2latex_formulas(path)
    ['x^2', '\\\\frac{a}\\r{b}']
    """
    with open(path, encoding="utf-8", errors="replace", newline="\n") as file:
        text = file.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":  # the final newline ends the last formula, it adds none
        lines.pop()
    return [line.strip(" \t\r") for line in lines]


def find_im2latex_layout(root: str | os.PathLike, split: str = "train") -> dict:
    """Locate the formulas file, the split file and the image folder under `root`.

    Args:
        root: str or PathLike. The dataset folder.
        split: str. ``"train"``, ``"validate"`` (or ``"val"``, ``"validation"``) or ``"test"``.

    Returns:
        A dict with ``formulas``, ``split_file``, ``images`` (Paths) and ``layout``
        (``"original"``: rows ``formula_idx image_name render_type``; ``"harvard"``: rows
        ``image_name formula_idx``).

    Raises:
        Im2LatexError: if a file or folder is missing (the message lists what was looked for).

    Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("im2latex_formulas.lst", "im2latex_train.lst"): _ = (root / name).write_text("")
    >>> (root / "formula_images").mkdir()
    >>> find_im2latex_layout(root)["layout"]
    'original'
    """
    root = Path(root)
    if split not in _SPLIT_ALIASES:
        raise ValueError(
            f"`split` must be one of {sorted(_SPLIT_ALIASES)}. Received: split={split!r}"
        )
    name = _SPLIT_ALIASES[split]
    if not root.is_dir():
        raise Im2LatexError(root, "expected an im2latex-100k folder; it does not exist")
    candidates = [
        (root / f"im2latex_{name}.lst", "original"),
        (root / f"im2latex_{name}_filter.lst", "harvard"),
        (root / f"{name}_filter.lst", "harvard"),
        (root / f"{name}.matching.txt", "harvard"),
    ]
    found = [(path, layout) for path, layout in candidates if path.is_file()]
    if not found:
        raise Im2LatexError(
            root,
            f"expected a split file for split={split!r}, one of "
            f"{[path.name for path, _ in candidates]}; found none",
        )
    split_file, layout = found[0]
    order = _HARVARD_FORMULA_FILES if layout == "harvard" else _ORIGINAL_FORMULA_FILES
    formulas = next((root / file for file in order if (root / file).is_file()), None)
    if formulas is None:
        raise Im2LatexError(root, f"expected a formulas file, one of {list(order)}; found none")
    images = next((root / folder for folder in _IMAGE_DIRS if (root / folder).is_dir()), None)
    if images is None:
        raise Im2LatexError(
            root, f"expected an image folder, one of {list(_IMAGE_DIRS)}; found none"
        )
    return {"formulas": formulas, "split_file": split_file, "images": images, "layout": layout}


def read_im2latex100k(
    root: str | os.PathLike,
    split: str = "train",
    *,
    report: Im2LatexReport | None = None,
    strict: bool = False,
) -> Iterator[tuple[Path, str]]:
    """Yield ``(image_path, latex)`` pairs of one im2latex-100k split, in split-file order.

    Rows that cannot be used (missing image, formula index out of range, empty formula,
    malformed row) are skipped and counted in `report`; when any were skipped, a warning with
    the report's summary is issued after the last pair. Nothing is dropped silently.

    Args:
        root: str or PathLike. The dataset folder (see the module docstring for the layouts).
        split: str. ``"train"``, ``"validate"`` (``"val"``) or ``"test"``.
        report: Im2LatexReport or None. Filled in while iterating.
        strict: bool. Raise `Im2LatexError` on the first unusable row instead of skipping it.

    Yields:
        ``(Path, str)``: the PNG's path and its LaTeX source as stored in the formulas file.

    Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "im2latex_formulas.lst").write_text("x^2\\ny_1\\n")
    >>> _ = (root / "im2latex_train.lst").write_text("0 aaa basic\\n1 bbb basic\\n")
    >>> (root / "formula_images").mkdir(); _ = (root / "formula_images" / "aaa.png").write_bytes(b"")
    >>> report = Im2LatexReport()
    >>> import warnings
    >>> with warnings.catch_warnings(record=True):
    ...     pairs = list(read_im2latex100k(root, "train", report=report))
    >>> [(path.name, latex) for path, latex in pairs], report.missing_images
    ([('aaa.png', 'x^2')], 1)
    """
    report = report if report is not None else Im2LatexReport()
    layout = find_im2latex_layout(root, split)
    formulas = read_im2latex_formulas(layout["formulas"])
    split_file, images = layout["split_file"], layout["images"]
    with open(split_file, encoding="utf-8", errors="replace", newline="\n") as file:
        lines = file.read().split("\n")
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        report.rows += 1
        where = f"{split_file.name}:{number}"
        parsed = _parse_row(fields, layout["layout"])
        if parsed is None:
            expected = (
                "'formula_idx image_name render_type'"
                if layout["layout"] == "original"
                else "'image_name formula_idx'"
            )
            _skip_or_raise(
                report,
                "malformed_rows",
                split_file,
                f"line {number}: expected {expected}; found {line.strip()!r}",
                strict,
            )
            continue
        image_name, formula_index = parsed
        if not 0 <= formula_index < len(formulas):
            _skip_or_raise(
                report,
                "bad_indices",
                split_file,
                f"line {number}: formula index {formula_index} is outside "
                f"[0, {len(formulas)}) of {layout['formulas'].name}",
                strict,
            )
            continue
        latex = formulas[formula_index]
        if not latex:
            _skip_or_raise(
                report,
                "empty_formulas",
                split_file,
                f"line {number}: formula {formula_index} is empty",
                strict,
            )
            continue
        image_path = images / (image_name if Path(image_name).suffix else f"{image_name}.png")
        if not image_path.is_file():
            _skip_or_raise(
                report,
                "missing_images",
                image_path,
                f"{where}: expected an image file; it does not exist",
                strict,
            )
            continue
        report.yielded += 1
        yield image_path, latex
    if report.skipped:
        warnings.warn(
            f"im2latex-100k {split!r} ({split_file}): {report.summary()}. "
            f"Examples: {report.examples}",
            stacklevel=2,
        )


def _parse_row(fields: list[str], layout: str) -> tuple[str, int] | None:
    try:
        if layout == "original" and len(fields) == 3:
            return fields[1], int(fields[0])
        if layout == "harvard" and len(fields) == 2:
            return fields[0], int(fields[1])
    except ValueError:
        return None
    return None


def _skip_or_raise(report: Im2LatexReport, reason: str, path, message: str, strict: bool) -> None:
    if strict:
        raise Im2LatexError(path, message)
    report._skip(reason, f"{os.fspath(path)}: {message}")


def load_im2latex_image(
    path: str | os.PathLike, *, height: int = 64, max_width: int = 512, margin: int = 4
) -> np.ndarray:
    """Load an im2latex-100k PNG (dark ink on light paper) as a float32 image, ink 1.0 on 0.0.

    The ink is cropped to its bounding box, shrunk (never enlarged, by area averaging: see
    `im2latex_encoder.data.framing.frame_ink`) to fit ``height x max_width`` less `margin`, centered vertically and left-aligned: the same
    contract as `render_formula`, so real and synthetic images can be mixed.

    Args:
        path: str or PathLike. A PNG file.
        height: int. Output height.
        max_width: int. Output width.
        margin: int. Blank pixels kept around the ink.

    Returns:
        A float32 array ``(height, max_width)`` in [0, 1].

    Raises:
        Im2LatexError: if the file cannot be read as an image or holds no ink.

    Example:
    >>> import tempfile, os, matplotlib.pyplot as plt
    >>> from im2latex_encoder.formulas.render import render_formula
    >>> path = os.path.join(tempfile.mkdtemp(), "x.png")
    >>> plt.imsave(path, render_formula("x^2", height=48, max_width=96), cmap="gray_r")
    >>> image = load_im2latex_image(path)
    >>> image.shape, image.dtype, float(image.max()) > 0.9
    ((64, 512), dtype('float32'), True)
    """
    from im2latex_encoder.data.errors import DataError
    from im2latex_encoder.data.image_files import open_image

    try:
        with open_image(path) as opened:  # its size checked before decoding
            gray = opened.convert("L")
    except DataError as error:  # unreadable, or over the size limits
        raise Im2LatexError(path, f"expected a readable PNG image; {error.reason}") from None
    except (OSError, UnidentifiedImageError) as error:
        raise Im2LatexError(path, f"expected a readable PNG image; {error}") from None
    ink = 1.0 - np.asarray(gray, np.float32) / 255.0
    image = frame_ink(
        ink,
        (height, max_width),
        (height - 2 * margin, max_width - 2 * margin),
        threshold=0.1,
        enlarge=False,
        left=margin,
    )
    if image is None:
        raise Im2LatexError(path, "expected a formula image with ink; found a blank image")
    return image
