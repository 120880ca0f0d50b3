"""Stroke token features: what the pretrained symbol classifier sees in each stroke's views.

`StrokeFeaturizer` draws every stroke of an expression in `StrokeDrawing.views`, runs the
symbol classifier (a `SymbolClassifier`, e.g. the ``crohme101`` preset) once over all of them,
and keeps, for each view, the head's hidden layer (256 numbers) and the class
log-probabilities (101): the features a stroke token starts from. Training computes them once
per augmented draw and caches them (`cached_stroke_features`), so the epochs go to the parts
that learn; a cache is keyed by the classifier's weights, the drawing settings, the
augmentation and the data, and rebuilt when any of them changes.

Example:
>>> import numpy as np
>>> from im2latex_encoder import SymbolEncoder
>>> from im2latex_encoder.heads import ClassificationHead
>>> featurizer = StrokeFeaturizer(SymbolEncoder(filters=(4, 4, 4)), ClassificationHead(
...     5, pooling="flatten", hidden_units=8), StrokeDrawing())
>>> featurizer.feature_dim
39
>>> featurizer([np.array([[0., 0.], [5., 5.]]), np.array([[9., 0.], [9., 5.]])]).shape
(2, 39)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from im2latex_encoder.recognizer.stroke_tokens import (
    StrokeDrawing,
    draw_stroke_views,
    normalize_expression,
    stroke_geometry,
)

#: Version of the stroke feature cache layout.
FEATURE_CACHE_FORMAT = 1
_KIND = "stroke-features"


@dataclasses.dataclass(frozen=True)
class StrokeAugment:
    """Random warps of an expression's ink before its strokes are drawn (training only).

    The whole expression is rotated, slanted and stretched a little (a writer's hand); each
    stroke is then rotated, scaled and shifted about its own centre (a writer's variation),
    and every point jittered. Angles in degrees, lengths in typical-symbol units.

    Example:
    >>> strokes = [np.array([[0., 0.], [1., 1.]])]
    >>> out = StrokeAugment().apply(strokes, np.random.default_rng(0))
    >>> out[0].shape
    (2, 2)
    """

    rotation: float = 4.0
    slant: float = 0.15
    aspect: float = 0.1
    stroke_rotation: float = 6.0
    stroke_scale: float = 0.1
    stroke_shift: float = 0.04
    jitter: float = 0.005

    def apply(self, strokes: Sequence, rng: np.random.Generator) -> list:
        """Warped copies of `strokes` (typical-symbol units in, the same units out).

        Each token may be a stroke (an ``(n, 2)`` array) or a list of polylines; the result
        has the same form.

        Example:
        >>> StrokeAugment(rotation=0, slant=0, aspect=0, stroke_rotation=0, stroke_scale=0,
        ...               stroke_shift=0, jitter=0).apply([np.ones((1, 2))],
        ...                                               np.random.default_rng(0))[0].tolist()
        [[1.0, 1.0]]
        """
        matrix = _affine(rng, self.rotation, self.slant, self.aspect)
        out = []
        for token in strokes:
            single = isinstance(token, np.ndarray)
            parts = [p @ matrix.T for p in ([token] if single else token)]
            every = np.concatenate(parts)
            centre = (every.min(axis=0) + every.max(axis=0)) / 2
            local = _affine(rng, self.stroke_rotation, 0.0, 0.0) * float(
                np.exp(rng.uniform(-1, 1) * self.stroke_scale)
            )
            shift = rng.normal(0, self.stroke_shift, 2) if self.stroke_shift else 0.0
            moved = []
            for part in parts:
                part = (part - centre) @ local.T + centre + shift
                if self.jitter:
                    part = part + rng.normal(0, self.jitter, part.shape)
                moved.append(part)
            out.append(moved[0] if single else moved)
        return out


def _affine(rng, rotation: float, slant: float, aspect: float) -> np.ndarray:
    angle = np.radians(rng.uniform(-1, 1) * rotation)
    shear = rng.uniform(-1, 1) * slant
    stretch = np.exp(rng.uniform(-1, 1) * aspect)
    cos, sin = np.cos(angle), np.sin(angle)
    return np.array([[cos, -sin], [sin, cos]]) @ np.array([[stretch, shear], [0, 1 / stretch]])


class StrokeFeaturizer:
    """Strokes → one feature row per stroke, from a symbol classifier's views of each stroke.

    Args:
        encoder: SymbolEncoder. The symbol classifier's backbone.
        head: ClassificationHead with a hidden layer and classes (the classifier's head);
            built for the drawing's image size.
        drawing: StrokeDrawing.
        batch_size: int. Views per classifier call.

    Example:
    >>> from im2latex_encoder import SymbolClassifier
    >>> classifier = SymbolClassifier.from_preset("crohme101")
    >>> StrokeFeaturizer(classifier.encoder, classifier.head, StrokeDrawing()).feature_dim
    1071
    """

    def __init__(self, encoder, head, drawing: StrokeDrawing, *, batch_size: int = 2048):
        if head.hidden_units is None or not head.num_classes:
            raise ValueError(
                "StrokeFeaturizer needs a classifier whose head has a hidden layer and classes "
                f"(hidden_units and num_classes). Received: hidden_units={head.hidden_units!r}, "
                f"num_classes={head.num_classes!r}"
            )
        self.encoder, self.head = encoder, head
        self.drawing, self.batch_size = drawing, int(batch_size)
        self.view_dim = int(head.hidden_units) + int(head.num_classes)
        self.feature_dim = self.view_dim * len(drawing.views)
        self._function: Any = None

    def _views_to_features(self, images: np.ndarray) -> np.ndarray:
        if self._function is None:
            self._function = _compiled_features(self.encoder, self.head)
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size].astype(np.float32) / 255.0
            out.append(np.asarray(self._function(batch[..., None])))
        return np.concatenate(out) if out else np.zeros((0, self.view_dim), np.float32)

    def __call__(self, strokes: Sequence[np.ndarray], *, normalized: bool = False) -> np.ndarray:
        """Features of one expression's strokes: float32 ``(S, feature_dim)``.

        Example:
        >>> StrokeFeaturizer.__call__.__doc__ is not None
        True
        """
        return self.many([strokes], normalized=normalized)[0]

    def many(self, expressions: Sequence[Sequence[np.ndarray]], *, normalized: bool = False):
        """Features of several expressions at once (one classifier pass): a list of arrays.

        Example:
        >>> StrokeFeaturizer.many.__doc__ is not None
        True
        """
        views = [draw_stroke_views(s, self.drawing, normalized=normalized) for s in expressions]
        counts = [len(v) for v in views]
        size = self.drawing.image_size
        flat = np.concatenate([v.reshape(-1, size, size) for v in views])
        # A stroke's view with the next stroke is the next stroke's view with this one, and
        # the first and last strokes' pair views are the stroke alone: about a third of the
        # views repeat another, so each distinct image goes through the classifier once.
        first_of: dict[bytes, int] = {}
        inverse = np.array([first_of.setdefault(image.tobytes(), len(first_of)) for image in flat])
        distinct = np.zeros(len(first_of), np.int64)
        distinct[inverse] = np.arange(len(flat))
        features = self._views_to_features(flat[distinct])[inverse]
        features = features.reshape(sum(counts), self.feature_dim)
        bounds = np.cumsum([0, *counts])
        return [features[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def fingerprint(self) -> str:
        """A hash of the classifier's weights and the drawing (a cache's key).

        Example:
        >>> StrokeFeaturizer.fingerprint.__doc__ is not None
        True
        """
        digest = hashlib.sha256(self.drawing.fingerprint().encode())
        for weight in [*self.encoder.weights, *self.head.weights]:
            digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
        return digest.hexdigest()[:16]


def _compiled_features(encoder, head):
    """The head's hidden activations and log-probabilities for a batch of views."""
    import keras
    from keras import ops

    def features(images):
        grid = encoder(images, training=False)
        flat = ops.reshape(grid, (ops.shape(grid)[0], -1))
        if head.pooling != "flatten":
            axes = tuple(range(1, len(grid.shape) - 1))
            flat = ops.mean(grid, axis=axes) if head.pooling == "avg" else ops.max(grid, axis=axes)
        hidden = head.hidden(flat)
        logits = head.classifier(hidden)
        return ops.concatenate([hidden, ops.log_softmax(logits, axis=-1)], axis=-1)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(features, reduce_retracing=True)
    return features


def expression_tokens(
    featurizer: StrokeFeaturizer,
    expressions: Sequence[Sequence],
    *,
    augment: StrokeAugment | None = None,
    seed: int = 0,
    chunk: int = 256,
    progress: bool = False,
    normalized: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Features and geometry of every stroke of `expressions`, stroke after stroke.

    With `augment`, each expression is warped first (seeded by ``(seed, index)``, so a draw is
    reproducible). ``normalized=True`` takes expressions already in typical-symbol units
    (`normalize_expression`). Returns ``(features float16 (S, F), geometry float32 (S, 12))``.

    Example:
    >>> expression_tokens.__doc__ is not None
    True
    """
    features, geometry = [], []
    starts = range(0, len(expressions), chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="stroke features", unit="chunk")
    for start in starts:
        units = []
        for index in range(start, min(start + chunk, len(expressions))):
            strokes: Any = expressions[index]
            if not normalized:
                strokes = normalize_expression(strokes)
            if augment is not None:
                strokes = augment.apply(strokes, np.random.default_rng([seed, index]))
            units.append(strokes)
        for strokes, rows in zip(units, featurizer.many(units, normalized=True)):
            features.append(rows.astype(np.float16))
            geometry.append(stroke_geometry(strokes, normalized=True))
    return np.concatenate(features), np.concatenate(geometry)


def cached_stroke_features(
    path: str | os.PathLike,
    featurizer: StrokeFeaturizer,
    expressions: Sequence[Sequence[np.ndarray]],
    *,
    data_hash: str,
    augment: StrokeAugment | None = None,
    seed: int = 0,
    progress: bool = False,
    with_counts: bool = False,
) -> tuple[np.ndarray, ...]:
    """`expression_tokens`, read from `path` when its key matches, else computed and written.

    The key holds the featurizer's fingerprint (classifier weights, drawing), the augmentation,
    the seed and `data_hash`: changing any of them rebuilds the file. ``with_counts=True``
    also returns the tokens of each expression (int ``(N,)``; for expressions whose token
    count is not their stroke count, such as `ComponentDraws`), which the file keeps.

    Example:
    >>> cached_stroke_features.__doc__ is not None
    True
    """
    from im2latex_encoder.data.errors import CacheError
    from im2latex_encoder.data.npz import open_npz, save_npz

    key = json.dumps(
        {
            "featurizer": featurizer.fingerprint(),
            "augment": None if augment is None else dataclasses.asdict(augment),
            "seed": seed,
            "data": data_hash,
        },
        sort_keys=True,
    )
    if os.path.isfile(path):
        try:
            with open_npz(path) as archive:
                archive.check(
                    kind=_KIND,
                    versions=(FEATURE_CACHE_FORMAT,),
                    arrays=("features", "geometry"),
                    metadata=("key",),
                )
                if archive.json("key") == key and (not with_counts or "counts" in archive.files):
                    found = (archive.array("features"), archive.array("geometry"))
                    return (*found, archive.array("counts")) if with_counts else found
        except CacheError:
            pass
    counts = np.zeros(len(expressions), np.int64)
    features, geometry = expression_tokens(
        featurizer, _Counted(expressions, counts), augment=augment, seed=seed, progress=progress
    )
    if int(counts.sum()) != len(features):
        raise ValueError(
            f"Every token of every expression must give one row of features. Received: "
            f"{int(counts.sum())} tokens, {len(features)} rows (an empty stroke?)"
        )
    save_npz(
        path,
        {"features": features, "geometry": geometry, "counts": counts},
        kind=_KIND,
        version=FEATURE_CACHE_FORMAT,
        metadata={"key": key},
        compress=False,
    )
    return (features, geometry, counts) if with_counts else (features, geometry)


class _Counted(Sequence):
    """`expressions`, noting each one's token count as it is read (drawn lazily, read once)."""

    def __init__(self, expressions, counts: np.ndarray):
        self.expressions, self.counts = expressions, counts

    def __len__(self) -> int:
        return len(self.expressions)

    def __getitem__(self, index):
        tokens = self.expressions[index]
        self.counts[index] = len(tokens)
        return tokens
