import json
import warnings

import numpy as np
import pytest

from im2latex_encoder import (
    CROHME_SYMBOLS,
    ClassificationHead,
    PresetError,
    SymbolClassifier,
    SymbolEncoder,
    presets,
)
from model_checks import tiny_recognizer


@pytest.fixture
def images():
    return np.random.default_rng(0).random((2, 128, 128, 1)).astype("float32")


@pytest.fixture
def classifier_preset(tmp_path):
    classifier = SymbolClassifier(
        SymbolEncoder(normalization="batch"),
        ClassificationHead(101, pooling="avg", hidden_units=16),
    )
    # non-trivial BN statistics and weights, so a wrong load would show
    rng = np.random.default_rng(3)
    classifier.set_weights(
        [
            rng.normal(size=w.shape).astype("float32") * 0.1 + (w.ndim == 1)
            for w in classifier.get_weights()
        ]
    )
    path = tmp_path / "preset"
    classifier.save_to_preset(
        path, metadata={"metrics": {"top1": 0.9}, "training": {"data": "test"}}
    )
    return classifier, path


def test_round_trip_gives_the_same_outputs_and_metadata(classifier_preset, images):
    classifier, path = classifier_preset
    names = sorted(p.name for p in path.iterdir())
    assert names == [
        "config.json",
        "labels.json",
        "metadata.json",
        "model.weights.h5",
        "task.json",
        "task.weights.h5",
    ]
    loaded = SymbolClassifier.from_preset(str(path))
    np.testing.assert_allclose(
        np.asarray(loaded(images)), np.asarray(classifier(images)), atol=1e-6
    )
    metadata = presets.preset_metadata(str(path))
    assert metadata["metrics"] == {"top1": 0.9} and metadata["kind"] == "classifier"
    assert set(metadata["files"]) == set(names) - {"metadata.json"}
    assert json.loads((path / "labels.json").read_text())[0] == "!"


def test_encoder_only_load_from_a_classifier_preset(classifier_preset, images):
    classifier, path = classifier_preset
    encoder = SymbolEncoder.from_preset(str(path))
    np.testing.assert_allclose(
        np.asarray(encoder(images)), np.asarray(classifier.encoder(images)), atol=1e-6
    )
    assert tuple(encoder(images).shape) == (2, 784, 64), "the backbone's flattened grid"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # `output` is the encoder's option, not deprecated
        as_grid = SymbolEncoder.from_preset(str(path), output="grid")
    assert tuple(as_grid(images).shape) == (2, 28, 28, 64)
    # 0.1.0's neck arguments still add their layers on the pretrained stack, and warn.
    with pytest.warns(DeprecationWarning):
        grid = SymbolEncoder.from_preset(str(path), output="grid", positional_encoding=True)
    assert tuple(grid(images).shape) == (2, 28, 28, 64)
    with pytest.warns(DeprecationWarning):
        projected = SymbolEncoder.from_preset(str(path), projection_dim=32)
    assert tuple(projected(images).shape) == (2, 784, 32)
    assert len(projected.convs) == len(encoder.convs) == 3
    for a, b in zip(projected.convs, encoder.convs):
        assert len(a.get_weights()) == len(b.get_weights()) == 1  # the kernel (batch norm: no bias)
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(wa, wb)
    with pytest.warns(DeprecationWarning):
        normed = SymbolEncoder.from_preset(str(path), projection_dim=32, output_norm=True)
    assert normed.output_norm and tuple(normed(images).shape) == (2, 784, 32)
    np.testing.assert_array_equal(
        normed.convs[-1].get_weights()[0], encoder.convs[-1].get_weights()[0]
    )
    with pytest.raises(PresetError, match=r"cannot override \['filters'\]"):
        SymbolEncoder.from_preset(str(path), filters=(8, 8, 8))


def test_other_num_classes_loads_the_encoder_and_skips_the_head(classifier_preset, images):
    classifier, path = classifier_preset
    with pytest.warns(UserWarning, match="skipped its head's weights.*101 classes.*102"):
        with_junk = SymbolClassifier.from_preset(str(path), num_classes=102)
    with pytest.warns(UserWarning, match="skipped its head's weights.*101 classes.*2"):
        relabelled = SymbolClassifier.from_preset(str(path), labels=["other", "-"])
    assert relabelled.labels == ("other", "-")
    with pytest.warns(UserWarning, match="skipped its head's weights"):
        SymbolClassifier.from_preset(str(path), pooling="max")  # same classes, another head
    assert with_junk.head.num_classes == 102
    np.testing.assert_allclose(
        np.asarray(with_junk.encoder(images)), np.asarray(classifier.encoder(images)), atol=1e-6
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = SymbolClassifier.from_preset(str(path), num_classes=101)  # no warning: same head
    np.testing.assert_allclose(np.asarray(same(images)), np.asarray(classifier(images)), atol=1e-6)


def test_encoder_preset_round_trip_and_new_head(tmp_path, images):
    encoder = SymbolEncoder(filters=(8, 16, 16))
    encoder.save_to_preset(tmp_path / "enc")
    loaded = SymbolEncoder.from_preset(str(tmp_path / "enc"))
    np.testing.assert_allclose(np.asarray(loaded(images)), np.asarray(encoder(images)), atol=1e-6)
    assert not (tmp_path / "enc" / "task.json").exists()
    with pytest.raises(PresetError, match="encoder preset: it has no head"):
        SymbolClassifier.from_preset(str(tmp_path / "enc"))
    with pytest.warns(UserWarning, match=r"new SymbolClassifier; its new layers \(the head\)"):
        classifier = SymbolClassifier.from_preset(str(tmp_path / "enc"), labels=["a", "b"])
    assert classifier.head.num_classes == 2 and classifier.labels == ("a", "b")
    np.testing.assert_allclose(
        np.asarray(classifier.encoder(images)), np.asarray(encoder(images)), atol=1e-6
    )
    with pytest.warns(UserWarning, match="start untrained"):
        counted = SymbolClassifier.from_preset(str(tmp_path / "enc"), num_classes=3, pooling="max")
    assert counted.labels == ("0", "1", "2") and counted.head.pooling == "max"


def test_corrupted_weights_are_refused_by_checksum(classifier_preset):
    _, path = classifier_preset
    weights = path / "model.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(PresetError, match="refused: model.weights.h5 has sha256 .* records"):
        SymbolEncoder.from_preset(str(path))
    with pytest.raises(PresetError, match="refused"):
        SymbolClassifier.from_preset(str(path))


def test_tampered_config_is_refused(classifier_preset):
    _, path = classifier_preset
    config = json.loads((path / "task.json").read_text())
    config["config"]["context_scale"] = True
    (path / "task.json").write_text(json.dumps(config))
    with pytest.raises(PresetError, match="refused: task.json"):
        SymbolClassifier.from_preset(str(path))
    # The labels are an asset of the task, in their own checksummed file.
    (path / "labels.json").write_text(
        json.dumps(["evil"] + json.loads((path / "labels.json").read_text())[1:])
    )
    with pytest.raises(PresetError, match="refused: labels.json"):
        SymbolClassifier.from_preset(str(path))


def test_missing_and_unknown_presets(tmp_path):
    with pytest.raises(PresetError, match="Received: preset='no_such_preset'"):
        SymbolEncoder.from_preset("no_such_preset")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PresetError, match="metadata.json is missing"):
        SymbolEncoder.from_preset(str(tmp_path / "empty"))


def test_save_replaces_atomically_and_recovers_an_interrupted_swap(tmp_path, images):
    path = tmp_path / "preset"
    first = SymbolEncoder()
    first.save_to_preset(path)
    second = SymbolEncoder()
    second.save_to_preset(path)
    assert not list(tmp_path.glob(".preset.*")), "no staging or retired directories left behind"
    np.testing.assert_allclose(
        np.asarray(SymbolEncoder.from_preset(str(path))(images)),
        np.asarray(second(images)),
        atol=1e-6,
    )
    # a crash between the two renames leaves only the retired copy: loading puts it back
    path.rename(tmp_path / ".preset.old-deadbeef")
    np.testing.assert_allclose(
        np.asarray(SymbolEncoder.from_preset(str(path))(images)),
        np.asarray(second(images)),
        atol=1e-6,
    )


def _shipped_recognizers() -> tuple[str, ...]:
    """The formula recognizer presets shipped, of either class (`crohme-formulas-image`, the
    image model; `crohme-formulas`, the default formula model, once the lead ships it)."""
    from im2latex_encoder.recognizer.saving import recognizer_classes

    return tuple(
        sorted(
            {
                name
                for cls in recognizer_classes().values()
                for name in presets.list_presets(cls, include_backbone=False)
            }
        )
    )


def test_shipped_presets_pass_their_checks():
    # Exactly the shipped presets: a folder whose metadata.json went missing would drop out of
    # `list_presets()` silently, so the listing is checked against the package's folders too.
    recognizers = _shipped_recognizers()
    assert "crohme-formulas-image" in recognizers
    assert set(recognizers) <= {"crohme-formulas", "crohme-formulas-image"}
    shipped = presets.list_presets()
    assert shipped == tuple(sorted(("crohme101", "crohme101-synthetic", *recognizers)))
    folder = presets.resolve_preset("crohme101").parent
    assert (
        tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name != "__pycache__"))
        == shipped
    )
    for name in shipped:
        metadata = presets.preset_metadata(name)
        assert metadata["name"] == name
        if name in recognizers:
            assert metadata["kind"] in ("recognizer", "stroke-recognizer")
            assert metadata["preset_version"] >= 1
            continue
        assert metadata["kind"] == "classifier" and metadata["preset_version"] >= 3
        classifier = SymbolClassifier.from_preset(name)
        assert classifier.head.num_classes == 101


def test_a_shipped_recognizer_reads_formulas():
    from im2latex_encoder.recognizer.saving import load_formula_recognizer, recognizer_classes

    classes = recognizer_classes()
    for name in _shipped_recognizers():
        assert (presets.resolve_preset(name) / "model_card.md").is_file()
        model = load_formula_recognizer(name)
        kind = presets.preset_metadata(name)["kind"]
        assert type(model) is classes[kind] and len(model.vocabulary) > 100
        image = np.zeros((40, 120), np.uint8)
        image[18:22, 10:110] = 255  # a minus sign
        (latex,) = model.recognize_images([image])
        assert isinstance(latex, str)


def test_the_real_ink_preset_says_what_it_was_trained_on():
    metadata = presets.preset_metadata("crohme101")
    assert metadata["preset_version"] == 8
    assert any(item.startswith("crohme:") for item in metadata["training"]["data"])
    assert metadata["training"]["config"]["ink_augment"]
    # Version 6 draws each symbol at its size in its expression, the typical one at 0.8 of the
    # image, and says so.
    assert metadata["training"]["config"]["context_scale"] == 0.8
    # Version 7 is version 6's recipe refit on every training expression, and says so.
    assert metadata["training"]["config"]["validation_split"] == 0.0
    assert SymbolClassifier.from_preset("crohme101").context_scale == 0.8
    assert SymbolClassifier.from_preset("crohme101-synthetic").context_scale is False
    card = (presets.resolve_preset("crohme101") / "model_card.md").read_text(encoding="utf-8")
    assert "non-commercial research" in card and "Per class" in card and "Most-confused" in card
    assert "No training expressions were held out" in card
    synthetic = presets.preset_metadata("crohme101-synthetic")
    assert synthetic["training"]["data"] == ["synthetic"]
    # Version 8 is version 7's weights with an expression context counted on the same
    # training expressions; its card and metadata give both readings of the test symbols.
    context = SymbolClassifier.from_preset("crohme101").context
    assert context.labels == CROHME_SYMBOLS and context.transitions.sum() > 85802
    assert metadata["training"]["context"]["symbols"] == 85802
    test = next(m for name, m in metadata["metrics"].items() if "test2016" in name)
    assert test["in_context"]["top1"] > test["top1"]
    assert ", with neighbours |" in card
    assert SymbolClassifier.from_preset("crohme101-synthetic").context is None


# --- One loader for every class --------------------------------------------------------------


def test_recognizer_preset_round_trip_and_its_backbone(tmp_path):
    from im2latex_encoder.recognizer import FormulaRecognizer

    model = tiny_recognizer(seed=4)
    model.save_to_preset(tmp_path / "rec", metadata={"note": "tiny"})
    metadata = presets.preset_metadata(str(tmp_path / "rec"))
    assert metadata["kind"] == "recognizer" and metadata["vocabulary_size"] == 9
    assert metadata["library_version"] and metadata["class"].endswith("FormulaRecognizer")
    images = np.random.default_rng(0).random((2, 20, 28, 1)).astype("float32")
    ids = np.array([[1, 3, 4], [1, 5, 2]], "int32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # all weights loaded: nothing to say
        loaded = FormulaRecognizer.from_preset(str(tmp_path / "rec"))
    np.testing.assert_allclose(
        np.asarray(loaded((images, ids))), np.asarray(model((images, ids))), atol=1e-5
    )
    # The preset's config.json is the backbone alone; any class can start from it.
    backbone = SymbolEncoder.from_preset(str(tmp_path / "rec"))
    assert backbone.get_config() == model.encoder.get_config()
    np.testing.assert_allclose(
        np.asarray(backbone(images)), np.asarray(model.encoder(images)), atol=1e-6
    )
    with pytest.raises(PresetError, match="recognizer preset: it has no head"):
        SymbolClassifier.from_preset(str(tmp_path / "rec"))
    with pytest.warns(UserWarning, match="recognizer preset"):
        classifier = SymbolClassifier.from_preset(str(tmp_path / "rec"), num_classes=4)
    np.testing.assert_allclose(
        np.asarray(classifier.encoder(images)), np.asarray(model.encoder(images)), atol=1e-6
    )


def test_recognizer_preset_with_another_vocabulary_keeps_the_backbone_only(tmp_path):
    from im2latex_encoder.recognizer import FormulaRecognizer

    model = tiny_recognizer(seed=5)
    model.save_to_preset(tmp_path / "rec")
    with pytest.warns(UserWarning, match=r"vocabulary_size=9 in the preset, 11 asked"):
        bigger = FormulaRecognizer.from_preset(str(tmp_path / "rec"), vocabulary_size=11)
    assert bigger.vocabulary_size == 11 and bigger.hidden_dim == 16 and bigger.num_layers == 1
    for ours, theirs in zip(bigger.encoder.weights, model.encoder.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    assert not np.allclose(
        np.asarray(bigger.neck.projection.kernel), np.asarray(model.neck.projection.kernel)
    ), "the neck is new"
    with pytest.raises(PresetError, match="Received: beam"):
        FormulaRecognizer.from_preset(str(tmp_path / "rec"), beam=3)


def test_a_task_from_a_backbone_only_preset_needs_its_head_s_size(tmp_path):
    from im2latex_encoder.recognizer import FormulaRecognizer

    SymbolEncoder(filters=(8, 8)).save_to_preset(tmp_path / "enc")
    with pytest.raises(PresetError, match="encoder preset: it has no decoder.*vocabulary_size"):
        FormulaRecognizer.from_preset(str(tmp_path / "enc"))
    with pytest.warns(UserWarning, match=r"new layers \(the neck and the decoder\)"):
        model = FormulaRecognizer.from_preset(
            str(tmp_path / "enc"), vocabulary_size=5, num_layers=1
        )
    assert model.hidden_dim == 128 and model.neck.output_norm and model.neck.positional_encoding


def test_presets_are_registered_by_the_models():
    from im2latex_encoder.recognizer import FormulaRecognizer

    assert presets.list_presets(SymbolEncoder) == ("crohme101", "crohme101-synthetic")
    assert presets.list_presets(SymbolClassifier) == ("crohme101", "crohme101-synthetic")
    # A task lists its backbone's presets: it can start from them; its own (a trained
    # recognizer, once shipped) are listed for it alone.
    recognizers = _shipped_recognizers()
    images = presets.list_presets(FormulaRecognizer, include_backbone=False)
    assert "crohme-formulas-image" in images and set(images) <= set(recognizers)
    assert presets.list_presets(FormulaRecognizer) == tuple(
        sorted(("crohme101", "crohme101-synthetic", *images))
    )
    assert not set(recognizers) & {"crohme101", "crohme101-synthetic"}
    with pytest.raises(ValueError, match="already registered"):
        presets.register_presets(SymbolEncoder, {"crohme101": "/elsewhere"})


def test_save_preset_refuses_what_is_not_a_model(tmp_path):
    with pytest.raises(ValueError, match="save_preset takes a backbone.*Received: dict"):
        presets.save_preset({}, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_trained_models_preset_leaves_the_optimizer_state_out(tmp_path):
    """A compiled, trained task saves its weights only: Adam's moments would double a preset."""
    import h5py
    import keras

    classifier = SymbolClassifier(
        SymbolEncoder(filters=(4, 8)), ClassificationHead(3, pooling="avg"), labels="abc"
    )
    data = np.random.default_rng(0).random((8, 32, 32, 1)).astype("float32")
    classifier.compile(
        optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy"
    )
    classifier.fit(data, np.arange(8) % 3, epochs=1, verbose=0)
    assert classifier.optimizer.variables  # trained: the optimizer holds moments
    classifier.save_to_preset(tmp_path / "preset")
    with h5py.File(tmp_path / "preset" / "task.weights.h5") as weights:
        groups = set(weights.keys())
    assert "optimizer" not in groups and groups
    task = json.loads((tmp_path / "preset" / "task.json").read_text())
    assert not task.get("compile_config")  # nor is it compiled when loaded
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "Skipping variable loading for optimizer"
        loaded = SymbolClassifier.from_preset(str(tmp_path / "preset"))
    np.testing.assert_allclose(np.asarray(loaded(data)), np.asarray(classifier(data)), atol=1e-6)
