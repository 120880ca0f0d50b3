"""Cached decoding gives the uncached tokens and logits on JAX and PyTorch too.

The cache is written with `keras.ops` and compiled per backend (`jax.jit` with the weights as
arguments on JAX, eager without autograd on PyTorch), so each backend runs
`_decoding_probe.py` in a subprocess; TensorFlow is checked in-process by
`tests/recognizer/test_decoding.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("_decoding_probe.py")

pytestmark = [pytest.mark.backend, pytest.mark.slow]


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_cached_decoding_matches_uncached(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        [sys.executable, str(PROBE), "--backend", backend],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if completed.returncode == 3:
        pytest.fail(completed.stderr.strip().splitlines()[-1], pytrace=False)
    assert completed.returncode == 0, (
        f"the {backend} probe failed (exit {completed.returncode}):\n{completed.stderr[-4000:]}"
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["backend"] == backend
    assert result["same_tokens"] == {"greedy": True, "beam": True}
    assert result["max_logit_difference"] <= 1e-5, result
