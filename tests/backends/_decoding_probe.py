"""Decode with and without the key/value cache on one Keras backend; print what differs.

`KERAS_BACKEND` must be set before keras is first imported, so each backend runs this script
in its own process (see `test_decoding_backends.py`):

    python _decoding_probe.py --backend jax

It builds a tiny randomly initialised `FormulaRecognizer`, decodes random images greedily and
with beam search (width 3) both ways (small: JAX compiles every new shape of the uncached path), and runs `FormulaDecoder.decode_step` against
`decode_logits` at every position. It prints one JSON line: the backend, whether the token
lists agree, and the largest logit difference.

Exit status 3 with a one-line message means the backend's framework failed to import.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

IMPORT_FAILED = 3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", required=True, choices=["jax", "tensorflow", "torch"])
    args = parser.parse_args(argv)
    if "keras" in sys.modules:
        raise RuntimeError("keras was imported before KERAS_BACKEND was set")
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        importlib.import_module(args.backend)
    except Exception as error:  # noqa: BLE001 - any import failure means the backend is missing
        print(
            f"backend {args.backend!r} failed to import ({type(error).__name__}: {error}); "
            f"install it with: pip install -e '.[{args.backend}]'",
            file=sys.stderr,
        )
        return IMPORT_FAILED

    import keras
    import numpy as np

    from im2latex_encoder import SymbolEncoder
    from im2latex_encoder.recognizer import FormulaRecognizer, beam_search_decode, greedy_decode

    if keras.backend.backend() != args.backend:
        raise RuntimeError(f"expected backend {args.backend}, keras runs {keras.backend.backend()}")
    keras.utils.set_random_seed(0)
    model = FormulaRecognizer(
        SymbolEncoder(filters=(8, 8)),
        12,
        num_layers=2,
        num_heads=2,
        intermediate_dim=32,
        max_length=5,
    )
    rng = np.random.default_rng(0)
    images = rng.random((3, 24, 56, 1)).astype("float32")
    same = {
        "greedy": greedy_decode(model, images) == greedy_decode(model, images, use_cache=False),
        # One image with 3 beams: the shapes greedy decoding met (JAX compiles per shape).
        "beam": (
            beam_search_decode(model, images[:1], beam_width=3)
            == beam_search_decode(model, images[:1], beam_width=3, use_cache=False)
        ),
    }
    ids = rng.integers(1, 12, (3, model.max_length)).astype("int32")
    memory = model.encode(images)
    decoder = model.decoder
    cross, cache = decoder.precompute_memory(memory), decoder.empty_cache(3)
    worst = 0.0
    for position in range(model.max_length):
        logits, cache = decoder.decode_step(ids[:, position : position + 1], position, cache, cross)
        full = model.decode_logits(memory, ids[:, : position + 1])[:, -1]
        difference = np.abs(keras.ops.convert_to_numpy(logits) - keras.ops.convert_to_numpy(full))
        worst = max(worst, float(difference.max()))
    print(
        json.dumps(
            {"backend": keras.backend.backend(), "same_tokens": same, "max_logit_difference": worst}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
