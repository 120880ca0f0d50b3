import keras
import numpy as np
import pytest

from im2latex_encoder import CROHME_SYMBOLS, ClassificationHead, SymbolClassifier, SymbolEncoder
from model_checks import check_config_round_trip, check_keras_file_round_trip


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def test_default_classifier_outputs_101_probabilities():
    classifier = SymbolClassifier()
    probabilities = classifier.predict(np.zeros((2, 128, 128, 1), "float32"), verbose=0)
    assert probabilities.shape == (2, 101)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    assert classifier.labels == CROHME_SYMBOLS


def test_replace_head_shares_the_encoder_and_leaves_its_weights_bit_for_bit():
    seed = SymbolClassifier(head=ClassificationHead(101, pooling="flatten", hidden_units=25))
    before = _weights(seed.encoder)
    binary = seed.replace_head(labels=["other", "-"])
    assert binary.encoder is seed.encoder
    assert binary.labels == ("other", "-")
    assert binary.head is not seed.head and binary.head.num_classes == 2
    assert binary.head.pooling == "flatten" and binary.head.hidden_units == 25
    assert before, "the encoder has weights to compare"
    for a, b in zip(before, _weights(binary.encoder), strict=True):
        assert a.tobytes() == b.tobytes()


def test_training_a_new_head_on_a_frozen_encoder_changes_no_encoder_weight():
    classifier = SymbolClassifier(head=ClassificationHead(101, pooling="avg"), image_size=(32, 32))
    new = classifier.replace_head(num_classes=3, labels=["a", "b", "c"]).freeze_encoder()
    encoder_before = _weights(new.encoder)
    head_before = _weights(new.head)
    new.compile(optimizer=keras.optimizers.Adam(1e-2))
    rng = np.random.default_rng(0)
    new.fit(
        rng.random((16, 32, 32, 1)).astype("float32"),
        rng.integers(0, 3, 16),
        epochs=2,
        batch_size=8,
        verbose=0,
    )
    assert encoder_before and head_before, "weights to compare"
    for a, b in zip(encoder_before, _weights(new.encoder), strict=True):
        assert a.tobytes() == b.tobytes()
    assert any(
        not np.array_equal(a, b) for a, b in zip(head_before, _weights(new.head), strict=True)
    )
    new.freeze_encoder(False)
    assert new.encoder.trainable


def test_zero_classes_gives_features():
    features = SymbolClassifier().replace_head(num_classes=0)
    assert features.predict(np.zeros((1, 128, 128, 1), "float32"), verbose=0).shape == (1, 64)


def test_predict_labels_returns_sorted_probabilities():
    classifier = SymbolClassifier(image_size=None)
    top = classifier.predict_labels(
        np.random.default_rng(0).random((3, 40, 60)).astype("float32"), top_k=4
    )
    assert len(top) == 3 and all(len(row) == 4 for row in top)
    for row in top:
        probabilities = [p for _, p in row]
        assert probabilities == sorted(probabilities, reverse=True)
        assert all(label in CROHME_SYMBOLS for label, _ in row)


def test_predict_labels_refuses_uint8_images_as_the_encoder_does():
    classifier = SymbolClassifier(image_size=None)
    ink_255 = np.zeros((2, 40, 60), np.uint8)
    ink_255[:, 10:30, 20:40] = 255
    rule = r"expects float images with ink 1.0 on background 0.0. Received: dtype=uint8"
    with pytest.raises(ValueError, match=rf"SymbolClassifier.predict_labels {rule}.*/ 255"):
        classifier.predict_labels(ink_255)
    with pytest.raises(ValueError, match=rf"SymbolEncoder {rule}"):
        classifier.encoder(ink_255[..., None])
    converted = classifier.predict_labels(ink_255.astype("float32") / 255, top_k=1)
    assert len(converted) == 2  # converted as the message says, it answers
    with pytest.raises(ValueError, match=r"Received: dtype=int64"):
        classifier.predict_labels(np.zeros((40, 60), np.int64))


def test_any_size_with_avg_head_but_not_with_flatten():
    assert SymbolClassifier(image_size=None).predict(
        np.zeros((1, 64, 512, 1), "float32"), verbose=0
    ).shape == (1, 101)
    flat = SymbolClassifier(head=ClassificationHead(101, pooling="flatten"))
    with pytest.raises(
        ValueError, match=r"built for 128×128 images. Received: images.shape=\(1, 64, 512, 1\)"
    ):
        flat(np.zeros((1, 64, 512, 1), "float32"))
    with pytest.raises(ValueError, match="needs a fixed `image_size`"):
        SymbolClassifier(head=ClassificationHead(101, pooling="flatten"), image_size=None)


def test_bad_arguments():
    with pytest.raises(ValueError, match="The head has 101 classes but 2 labels"):
        SymbolClassifier(labels=["a", "b"], head=ClassificationHead(101))
    with pytest.raises(ValueError, match="unique"):
        SymbolClassifier(labels=["a", "a"])
    with pytest.raises(ValueError, match=r"at least 18×18.*Received: image_size=\(8, 8\)"):
        SymbolClassifier(image_size=8)
    with pytest.raises(ValueError, match="Received neither"):
        SymbolClassifier().replace_head()
    with pytest.raises(ValueError, match="Received: top_k=0"):
        SymbolClassifier().predict_labels(np.zeros((128, 128), "float32"), top_k=0)


def test_config_round_trip():
    check_config_round_trip(
        SymbolClassifier(
            SymbolEncoder(normalization="batch"),
            ClassificationHead(3, hidden_units=8),
            labels=["x", "y", "z"],
            image_size=(64, 48),
        )
    )


def test_context_scale_share_round_trips_and_bad_values_are_refused():
    classifier = SymbolClassifier(num_classes=3, image_size=(24, 24), context_scale=0.8)
    assert classifier.context_scale == 0.8
    assert SymbolClassifier.from_config(classifier.get_config()).context_scale == 0.8
    # A bool stays a bool, so the configs of presets saved before the share existed round-trip.
    assert SymbolClassifier(num_classes=3, context_scale=True).get_config()["context_scale"] is True
    assert classifier.replace_head(2).context_scale == 0.8
    with pytest.raises(ValueError, match=r"in \(0, 1\]. Received: context_scale=1.5"):
        SymbolClassifier(num_classes=3, context_scale=1.5)


def test_keras_file_round_trip(tmp_path):
    classifier = SymbolClassifier(
        SymbolEncoder(normalization="group"),
        ClassificationHead(4, pooling="flatten", hidden_units=8),
        labels="abcd",
        image_size=(32, 32),
    )
    images = np.random.default_rng(2).random((2, 32, 32, 1)).astype("float32")
    loaded = check_keras_file_round_trip(classifier, images, tmp_path)
    assert loaded.labels == ("a", "b", "c", "d")


def test_callbacks_work_with_the_classifier(tmp_path):
    classifier = SymbolClassifier(image_size=(32, 32), labels="abc", head=ClassificationHead(3))
    classifier.compile()
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 32, 32, 1)).astype("float32"), rng.integers(0, 3, 16)
    history = classifier.fit(
        x,
        y,
        validation_data=(x, y),
        epochs=3,
        batch_size=8,
        verbose=0,
        callbacks=[
            keras.callbacks.ModelCheckpoint(tmp_path / "best.keras", save_best_only=True),
            keras.callbacks.EarlyStopping(patience=1, monitor="loss"),
            keras.callbacks.TensorBoard(tmp_path / "tb"),
        ],
    )
    assert "top5" not in history.history  # 3 classes: top-5 would be meaningless
    assert (tmp_path / "best.keras").is_file() and any((tmp_path / "tb").iterdir())
    reloaded = keras.saving.load_model(tmp_path / "best.keras")
    assert isinstance(reloaded, SymbolClassifier)


def test_num_classes_is_taken_as_keras_hub_and_timm_take_it():
    encoder = SymbolEncoder()
    classifier = SymbolClassifier(encoder, num_classes=7, image_size=32)
    assert classifier.head.num_classes == 7 and classifier.labels == tuple("0123456")
    assert classifier.encoder is encoder
    assert SymbolClassifier(labels=["a", "b"], num_classes=2, image_size=32).labels == ("a", "b")
    with pytest.raises(ValueError, match="`num_classes` and `labels` disagree"):
        SymbolClassifier(labels=["a", "b"], num_classes=3, image_size=32)
    with pytest.raises(ValueError, match="positive int. Received: num_classes=0"):
        SymbolClassifier(num_classes=0, image_size=32)
    # replace_head takes it too, and the default is still the 101 CROHME classes.
    assert classifier.replace_head(num_classes=3).head.num_classes == 3
    assert SymbolClassifier(image_size=32).head.num_classes == 101
