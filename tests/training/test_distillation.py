"""EnsembleDistiller's loss and training, and load_teachers' checks (tiny models, in process)."""

import keras
import numpy as np
import pytest

from im2latex_encoder import ClassificationHead, SymbolClassifier, SymbolEncoder
from im2latex_encoder.symbols import CROHME_SYMBOLS
from im2latex_encoder.training.distillation import EnsembleDistiller, load_teachers


def _tiny(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )


def _data(count=8):
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(count, 6, 6, 1)).astype("float32")
    return images, np.eye(4, dtype="float32")[rng.integers(0, 4, count)]


def _compiled(student, teachers, **kwargs):
    distiller = EnsembleDistiller(student, teachers, **kwargs)
    distiller.compile(keras.optimizers.SGD(0.5), keras.losses.CategoricalCrossentropy())
    return distiller


def _loss(distiller, images, labels):
    return float(distiller.evaluate(images, labels, batch_size=len(images), verbose=0))


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_the_loss_is_the_weighted_kl_to_the_averaged_teachers(temperature):
    images, labels = _data()
    student, teachers = _tiny(0), [_tiny(1), _tiny(2)]
    weight = 0.3
    distiller = _compiled(student, teachers, weight=weight, temperature=temperature)
    p = student.predict(images, verbose=0).astype("float64")
    q = np.mean([t.predict(images, verbose=0) for t in teachers], axis=0).astype("float64")

    def tempered(probabilities):
        logits = np.log(probabilities) / temperature
        return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)

    p_t, q_t = tempered(p), tempered(q)
    kl = np.mean(np.sum(q_t * (np.log(q_t) - np.log(p_t)), -1)) * temperature**2
    cross_entropy = np.mean(-np.sum(labels * np.log(p), -1))
    expected = (1 - weight) * cross_entropy + weight * kl
    assert _loss(distiller, images, labels) == pytest.approx(expected, rel=1e-4)


def test_a_student_equal_to_its_teacher_has_nothing_to_match():
    images, labels = _data()
    student, twin, other = _tiny(0), _tiny(1), _tiny(2)
    twin.set_weights(student.get_weights())
    assert _loss(_compiled(student, [twin], weight=1.0), images, labels) == pytest.approx(
        0.0, abs=1e-6
    )
    assert _loss(_compiled(student, [other], weight=1.0), images, labels) > 1e-3
    # Weight 0 is plain training: the compiled loss alone.
    plain = float(
        keras.losses.CategoricalCrossentropy()(labels, student.predict(images, verbose=0))
    )
    assert _loss(_compiled(student, [other], weight=0.0), images, labels) == pytest.approx(
        plain, rel=1e-5
    )


def test_only_the_student_trains_and_it_moves_toward_the_teachers():
    images, labels = _data(32)
    student, teachers = _tiny(0), [_tiny(1), _tiny(2)]
    before = [t.get_weights() for t in teachers]
    distiller = _compiled(student, teachers, weight=1.0)
    assert len(distiller.trainable_weights) == 2  # the student's kernel and bias
    start = _loss(distiller, images, labels)
    distiller.fit(images, labels, epochs=20, batch_size=8, verbose=0)
    assert _loss(distiller, images, labels) < 0.5 * start
    for teacher, weights in zip(teachers, before, strict=True):
        for a, b in zip(teacher.get_weights(), weights, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"teachers": []}, "at least one teacher. Received: none"),
        ({"weight": 1.5}, "`weight` must be in [0, 1]. Received: weight=1.5"),
        ({"temperature": 0.0}, "`temperature` must be > 0. Received: temperature=0.0"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    arguments = {"teachers": [_tiny(1)], **kwargs}
    with pytest.raises(ValueError) as error:
        EnsembleDistiller(_tiny(0), **arguments)
    assert message in str(error.value)


def test_load_teachers_refuses_a_preset_that_draws_other_images(tmp_path):
    classifier = SymbolClassifier(
        SymbolEncoder(filters=(4, 4, 4)),
        ClassificationHead(len(CROHME_SYMBOLS), pooling="avg"),
        image_size=(32, 32),
        context_scale=0.8,
    )
    classifier(np.zeros((1, 32, 32, 1), "float32"))
    classifier.save_to_preset(tmp_path / "teacher")
    loaded = load_teachers(
        [str(tmp_path / "teacher")], labels=CROHME_SYMBOLS, image_size=32, context_scale=0.8
    )
    assert len(loaded) == 1 and not loaded[0].trainable
    with pytest.raises(ValueError) as error:
        load_teachers(
            [str(tmp_path / "teacher")], labels=CROHME_SYMBOLS, image_size=48, context_scale=True
        )
    message = str(error.value)
    assert "32×32 images, not 48×48" in message
    assert "context_scale 0.8, not the run's True" in message


def test_docstring_examples_run():
    import doctest

    from im2latex_encoder.training import distillation

    result = doctest.testmod(distillation, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
