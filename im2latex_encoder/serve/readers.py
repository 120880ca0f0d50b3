"""The two models the server reads with, loaded once, warmed, and called through the library.

`SymbolReader` draws a symbol's strokes as `im2latex-encoder predict` draws an InkML file's
(`data.symbol_files.load_symbol_file`) and reads the classifier's top labels. `FormulaReader`
calls the recognizer's `recognize_strokes`, the one function `im2latex-encoder recognize` calls
for ink. Each reader serialises calls to its model with a lock: requests run in worker threads,
off the event loop, and one model call at a time keeps memory and latency predictable on a CPU.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Sequence

import numpy as np

#: Labels returned per symbol request.
TOP_K = 5
#: "x + 1" as a pen would draw it, to warm the formula model with (see `from_preset`).
_WARM_UP_EXPRESSION = [
    np.array([[0.0, 0.0], [30.0, 35.0]]),
    np.array([[30.0, 0.0], [0.0, 35.0]]),
    np.array([[55.0, 17.0], [85.0, 17.0]]),
    np.array([[70.0, 2.0], [70.0, 32.0]]),
    np.array([[110.0, 0.0], [110.0, 35.0]]),
]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """A loaded model's name and version, as the API reports them.

    Args:
        name: str. The preset's name (or the folder given).
        version: str. The preset's version ("unknown" when it records none).

    Example:
    >>> ModelInfo("crohme101", "8").to_dict()
    {'name': 'crohme101', 'version': '8'}
    """

    name: str
    version: str

    def to_dict(self) -> dict:
        """JSON form."""
        return {"name": self.name, "version": self.version}


def preset_info(preset: str | os.PathLike) -> ModelInfo:
    """Name and version of a preset (a shipped name or a directory), from its metadata.

    Example:
    >>> preset_info("crohme101").name
    'crohme101'
    """
    from im2latex_encoder import presets

    try:
        metadata = presets.preset_metadata(preset)
    except (presets.PresetError, FileNotFoundError, OSError):
        return ModelInfo(os.fspath(preset), "unknown")
    version = metadata.get("preset_version", metadata.get("library_version", "unknown"))
    return ModelInfo(str(metadata.get("name") or os.fspath(preset)), str(version))


class SymbolReader:
    """A symbol classifier that reads strokes or a symbol image: its top labels.

    Args:
        classifier: SymbolClassifier.
        info: ModelInfo. What the API reports as the model.

    Example:
    >>> reader = SymbolReader.from_preset("crohme101")
    >>> top = reader.read_strokes([np.array([[0., 5.], [10., 5.]]), np.array([[5., 0.], [5., 10.]])])
    >>> len(top), sorted(top[0])
    (5, ['label', 'latex', 'score'])
    """

    def __init__(self, classifier, info: ModelInfo):
        self.classifier = classifier
        self.info = info
        self.image_size = classifier.image_size[0] if classifier.image_size else 128
        self._lock = threading.Lock()

    @classmethod
    def from_preset(cls, preset: str | os.PathLike = "crohme101") -> SymbolReader:
        """Load a classifier preset and warm it (the first call builds its graph).

        Example:
        >>> SymbolReader.from_preset("crohme101").info.version
        '8'
        """
        from im2latex_encoder import SymbolClassifier

        reader = cls(SymbolClassifier.from_preset(os.fspath(preset)), preset_info(preset))
        reader.read_strokes([np.array([[0.0, 0.0], [1.0, 1.0]])])
        return reader

    def read_strokes(self, strokes: Sequence[np.ndarray], top_k: int = TOP_K) -> list[dict]:
        """The top labels of one symbol's strokes (any units, Y down), drawn as `predict` does.

        Example:
        >>> reader.read_strokes([np.array([[0., 0.], [0., 9.]])])[0]["label"]  # doctest: +SKIP
        '1'
        """
        from im2latex_encoder.data.symbol_files import render_symbol_strokes

        return self._top(render_symbol_strokes(strokes, self.image_size), top_k)

    def read_image(self, gray: np.ndarray, name: str = "<upload>", top_k: int = TOP_K) -> list:
        """The top labels of a grayscale symbol image (either polarity), framed as `predict` does.

        Example:
        >>> reader.read_image(np.ones((40, 40), "float32"))  # doctest: +SKIP
        """
        from im2latex_encoder.data.symbol_files import fit_image

        return self._top(fit_image(gray, self.image_size, name=name), top_k)

    def _top(self, image: np.ndarray, top_k: int) -> list[dict]:
        from im2latex_encoder.symbols import symbol_to_latex

        with self._lock:
            (top,) = self.classifier.predict_labels(image, top_k=top_k)
        return [
            {"label": label, "latex": symbol_to_latex(label), "score": float(score)}
            for label, score in top
        ]


class FormulaReader:
    """A formula recognizer that reads strokes or an expression image: its LaTeX.

    Any model with ``recognize_strokes(expressions, beam_width=1) -> list[str]`` reads ink;
    one that also has ``stroke_symbols(strokes)`` says which symbol each stroke was read as
    (the page colours the ink by it); one with ``recognize_images(images)`` reads images.

    Args:
        model: the recognizer.
        info: ModelInfo.
        beam_width: int or None. Beam width for every request (1: greedy; None: the model's
            `default_beam_width`, as `recognize` reads).

    Example:
    >>> reader = FormulaReader.from_preset("crohme-formulas")  # doctest: +SKIP
    >>> reader.read_strokes([np.array([[0., 0.], [0., 9.]])])  # doctest: +SKIP
    ('1', None)
    """

    def __init__(self, model, info: ModelInfo, beam_width: int | None = None):
        if not callable(getattr(model, "recognize_strokes", None)):
            raise ValueError(
                "A formula model for the server must have `recognize_strokes(expressions, "
                f"beam_width)`. Received: {type(model).__name__}"
            )
        self.model = model
        self.info = info
        if beam_width is None:
            beam_width = getattr(model, "default_beam_width", 1)
        self.beam_width = int(beam_width)
        self._lock = threading.Lock()

    @classmethod
    def from_preset(
        cls, preset: str | os.PathLike = "crohme-formulas", beam_width: int | None = None
    ) -> FormulaReader:
        """Load a recognizer as `im2latex-encoder recognize --model` does, and warm it.

        ``"crohme-formulas"`` is the default formula model (`resolve_formula_model`: the image
        model ``"crohme-formulas-image"`` until it is shipped); the reader's `info` names the
        model it loaded.

        Example:
        >>> FormulaReader.from_preset("crohme-formulas-image").info.name  # doctest: +SKIP
        'crohme-formulas-image'
        """
        from im2latex_encoder.recognizer.saving import (
            load_formula_recognizer,
            resolve_formula_model,
        )

        preset = resolve_formula_model(os.fspath(preset))
        model = load_formula_recognizer(preset)  # as `recognize --model` loads it
        reader = cls(model, preset_info(preset), beam_width)
        # The decoder's compiled step is traced for the first image shape and generalised to
        # any on the second: two drawings of different sizes, before the first user.
        reader.read_strokes(_WARM_UP_EXPRESSION)
        reader.read_strokes(_WARM_UP_EXPRESSION + [s + [150.0, 10.0] for s in _WARM_UP_EXPRESSION])
        return reader

    def read_strokes(self, strokes: Sequence[np.ndarray]) -> tuple[str, list | None]:
        """The LaTeX of one expression's strokes, and each stroke's symbol when the model says.

        Example:
        >>> reader.read_strokes(strokes)  # doctest: +SKIP
        ('x ^ { 2 }', None)
        """
        with self._lock:
            (latex,) = self.model.recognize_strokes([list(strokes)], beam_width=self.beam_width)
            stroke_symbols = getattr(self.model, "stroke_symbols", None)
            symbols = list(stroke_symbols(list(strokes))) if callable(stroke_symbols) else None
        return latex, symbols

    def read_image(self, ink: np.ndarray) -> str:
        """The LaTeX of an expression image: uint8, ink 255 on 0, as `recognize` reads a PNG.

        Example:
        >>> reader.read_image(np.zeros((32, 64), "uint8"))  # doctest: +SKIP
        ''
        """
        recognize_images = getattr(self.model, "recognize_images", None)
        if not callable(recognize_images):
            from im2latex_encoder.serve.limits import RequestRejected

            raise RequestRejected(
                415,
                f"the formula model {self.info.name!r} reads ink only: expected strokes or an "
                "InkML file. Received: an image",
            )
        with self._lock:
            (latex,) = recognize_images([ink], beam_width=self.beam_width)
        return latex
