"""Run the encoder, head, classifier and presets on one Keras backend; write every output.

`KERAS_BACKEND` must be set before keras is first imported, so each backend runs this script
in its own process (see `test_backends.py`):

    python _backend_probe.py --backend jax --preset DIR --keras-file F --inputs in.npz \
        --work DIR --out out.npz

It loads a classifier preset (made on TensorFlow) as a `SymbolClassifier` and as
`SymbolEncoder`s (sequence; grid with positional encoding), runs them at 128×128 and 64×512,
runs positional encoding in a functional model with unknown height and width, loads a `.keras`
file written on TensorFlow, trains one epoch (SGD, no shuffling, so every backend takes the
same steps), and round-trips the trained classifier through `.keras` and a preset. Every
output goes into one `.npz`, which the test compares with TensorFlow's.

Exit status 3 with a one-line message means the backend's framework failed to import.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

_FRAMEWORKS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
IMPORT_FAILED = 3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", required=True, choices=sorted(_FRAMEWORKS))
    parser.add_argument("--preset", required=True)
    parser.add_argument("--keras-file", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    if "keras" in sys.modules:
        raise RuntimeError("keras was imported before KERAS_BACKEND was set")
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    framework = _FRAMEWORKS[args.backend]
    try:
        importlib.import_module(framework)
    except Exception as error:  # noqa: BLE001 - any import failure means the backend is missing
        hint = (
            f"install it with: pip install -e '.[{args.backend}]'"
            if args.backend != "tensorflow"
            else "tensorflow is a core dependency: reinstall the package"
        )
        print(
            f"backend {args.backend!r} failed to import: cannot import {framework} "
            f"({type(error).__name__}: {error}); {hint}",
            file=sys.stderr,
        )
        return IMPORT_FAILED

    import keras
    import numpy as np

    if keras.backend.backend() != args.backend:
        raise RuntimeError(f"expected backend {args.backend}, keras runs {keras.backend.backend()}")

    from im2latex_encoder import (
        FeatureGridNeck,
        PositionalEncoding2D,
        SymbolClassifier,
        SymbolEncoder,
    )

    def numpy(x):
        return np.asarray(keras.ops.convert_to_numpy(x))

    with np.load(args.inputs, allow_pickle=False) as data:
        inputs = {key: data[key] for key in data.files}
    square, wide = inputs["square"], inputs["wide"]
    results = {}

    # --- A preset made on TensorFlow, loaded on this backend --------------------------------
    classifier = SymbolClassifier.from_preset(args.preset)
    backbone = SymbolEncoder.from_preset(args.preset, output="grid")

    def sequence(images, training=False):
        return FeatureGridNeck()(backbone(images, training=training))

    grid_neck = FeatureGridNeck(positional_encoding=True, output="grid")

    def grid(images, training=False):
        return grid_neck(backbone(images, training=training))

    # predict() compiles (jit on JAX): once, at one size; direct calls cover the other.
    results["classifier_predict_128x128"] = classifier.predict(square, verbose=0)
    for size, images in (("128x128", square), ("64x512", wide)):
        results[f"classifier_{size}"] = numpy(classifier(images, training=False))
        results[f"encoder_sequence_{size}"] = numpy(sequence(images, training=False))
        results[f"encoder_grid_pe_{size}"] = numpy(grid(images, training=False))

    # --- Positional encoding with unknown sizes, inside a functional model ---------------------
    symbolic = keras.Input((None, None, 1))
    functional = keras.Model(symbolic, grid(symbolic))
    results["functional_grid_pe_64x512"] = numpy(functional(wide))
    results["functional_grid_pe_40x56"] = numpy(functional(inputs["small"]))
    grid_input = keras.Input((None, None, 8))
    encoding_only = keras.Model(grid_input, PositionalEncoding2D()(grid_input))
    results["positional_only_5x7"] = numpy(encoding_only(np.zeros((1, 5, 7, 8), "float32")))

    # --- A .keras file written on TensorFlow ----------------------------------------------------
    from_tensorflow = keras.saving.load_model(args.keras_file, safe_mode=True)
    results["tf_keras_file_128x128"] = numpy(from_tensorflow(square, training=False))

    # --- One epoch of training --------------------------------------------------------------
    classifier.compile(optimizer=keras.optimizers.SGD(0.05), metrics=[])
    history = classifier.fit(
        inputs["train_x"], inputs["train_y"], batch_size=4, epochs=1, shuffle=False, verbose=0
    )
    results["train_loss"] = np.asarray(history.history["loss"], "float32")
    trained = numpy(classifier(square, training=False))
    results["trained_128x128"] = trained
    results["trained_encoder_weights"] = np.concatenate(
        [np.ravel(w) for w in classifier.encoder.get_weights()]
    )

    # --- Round trips on this backend ----------------------------------------------------------
    keras_path = os.path.join(args.work, f"trained_{args.backend}.keras")
    classifier.save(keras_path)
    reloaded = keras.saving.load_model(keras_path, safe_mode=True)
    results["keras_round_trip_diff"] = np.float32(
        np.max(np.abs(numpy(reloaded(square, training=False)) - trained))
    )
    preset_path = os.path.join(args.work, f"preset_{args.backend}")
    classifier.save_to_preset(preset_path)
    again = SymbolClassifier.from_preset(preset_path)
    results["preset_round_trip_diff"] = np.float32(
        np.max(np.abs(numpy(again(square, training=False)) - trained))
    )
    again_encoder = SymbolEncoder.from_preset(preset_path)
    results["preset_round_trip_encoder_diff"] = np.float32(
        np.max(
            np.abs(
                numpy(again_encoder(square, training=False))
                - numpy(classifier.encoder(square, training=False))
            )
        )
    )

    np.savez(args.out, backend=np.asarray(args.backend), **results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
