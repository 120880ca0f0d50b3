"""Distil an ensemble of trained classifiers into one: `EnsembleDistiller`, `load_teachers`."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

# The probabilities' floor before a log, as `keras.losses.categorical_crossentropy` clips them.
_EPSILON = 1e-7


class EnsembleDistiller(keras.Model):
    """Train a student on its labels and on the averaged predictions of frozen teachers.

    Every batch goes through the student and, in inference mode, through each teacher: the
    same images, so with ink augmented before drawing both see the same augmented symbol
    ("function matching"). The loss is ``(1 - weight) * compiled_loss + weight * T² *
    KL(teachers_T || student_T)``, where ``teachers`` is the mean of the teachers' softmax
    outputs and ``_T`` sharpens or softens a distribution by the temperature ``T``. Metrics
    (accuracy, top-5) are the student's. Only the student is trained; teachers are frozen.

    Args:
        student: keras.Model. Images in, class probabilities (softmax) out.
        teachers: sequence of keras.Model. Same inputs and classes as the student.
        weight: float in [0, 1]. Share of the loss on the teachers' predictions; 1 ignores the
            labels, 0 is plain training.
        temperature: float > 0. Softmax temperature of both distributions in the KL term.

    Example:
    >>> import keras, numpy as np
    >>> def tiny():
    ...     return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                              keras.layers.Dense(3, activation="softmax")])
    >>> distiller = EnsembleDistiller(tiny(), [tiny(), tiny()], weight=0.5)
    >>> distiller.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    >>> history = distiller.fit(np.zeros((4, 8, 8, 1)), np.eye(3)[[0, 1, 2, 0]], verbose=0)
    >>> len(distiller.trainable_weights)  # the student's kernel and bias only
    2
    """

    def __init__(
        self,
        student: keras.Model,
        teachers: Sequence[keras.Model],
        *,
        weight: float = 0.5,
        temperature: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not teachers:
            raise ValueError("EnsembleDistiller needs at least one teacher. Received: none")
        check_distillation(weight, temperature)
        self.student = student
        self.teachers = list(teachers)
        for teacher in self.teachers:
            teacher.trainable = False
        self.weight = float(weight)
        self.temperature = float(temperature)

    def call(self, images, training=None):
        return self.student(images, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        label_loss = super().compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )
        if self.weight == 0:
            return label_loss
        teachers = ops.mean(
            ops.stack([ops.cast(t(x, training=False), "float32") for t in self.teachers]), axis=0
        )
        target = _tempered_log(ops.stop_gradient(teachers), self.temperature)
        student = _tempered_log(ops.cast(y_pred, "float32"), self.temperature)
        divergence = ops.sum(ops.exp(target) * (target - student), axis=-1)
        matched = ops.mean(divergence) * self.temperature**2
        return (1.0 - self.weight) * label_loss + self.weight * matched


def check_distillation(weight: float, temperature: float) -> None:
    """Raise a ValueError naming the bad value unless 0 <= weight <= 1 and temperature > 0.

    Example:
    >>> check_distillation(0.5, 1.0)
    """
    if not 0 <= weight <= 1:
        raise ValueError(f"`weight` must be in [0, 1]. Received: weight={weight}")
    if not temperature > 0:
        raise ValueError(f"`temperature` must be > 0. Received: temperature={temperature}")


def _tempered_log(probabilities, temperature: float):
    """log softmax(log(p) / T): the tempered distribution, from probabilities (the shipped heads
    end in a softmax, so there are no logits to divide)."""
    logits = ops.log(ops.clip(probabilities, _EPSILON, 1.0))
    return ops.log_softmax(logits / temperature, axis=-1)


def load_teachers(presets: Sequence[str], *, labels: Sequence[str], image_size: int, context_scale):
    """Load `SymbolClassifier` presets to teach a run, checking they fit it.

    A teacher must have the run's classes in the run's order and draw the same images (size
    and `context_scale`): otherwise its predictions describe other images than the student's.

    Args:
        presets: sequence of str. Preset names or folders.
        labels: sequence of str. The run's classes.
        image_size: int. The run's image side.
        context_scale: bool or float. The run's `context_scale`.

    Returns:
        A list of `SymbolClassifier`, frozen.

    Raises:
        ValueError: naming the preset and what differs.

    Example:
    >>> teachers = load_teachers(["crohme101"], labels=CROHME_SYMBOLS, image_size=48,
    ...                          context_scale=0.8)  # doctest: +SKIP
    """
    from im2latex_encoder import SymbolClassifier

    teachers = []
    for preset in presets:
        teacher = SymbolClassifier.from_preset(preset)
        problems = []
        if list(teacher.labels) != list(labels):
            problems.append(f"{len(teacher.labels)} classes, not the run's {len(labels)}")
        drawn = teacher.image_size
        if drawn != (image_size, image_size):
            shown = "size-free" if drawn is None else f"{drawn[0]}×{drawn[1]}"
            problems.append(f"{shown} images, not {image_size}×{image_size}")
        if teacher.context_scale != context_scale:
            problems.append(
                f"context_scale {teacher.context_scale!r}, not the run's {context_scale!r}"
            )
        if problems:
            raise ValueError(
                f"Teacher {preset!r} does not fit this run: it has {'; '.join(problems)}. "
                "A teacher must see the student's images and predict its classes."
            )
        teacher.trainable = False
        teachers.append(teacher)
    return teachers
