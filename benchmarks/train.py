"""Training throughput of the default pretrain recipe vs the seed's.

Intended measurement: training images/s (forward + backward + optimizer step, `model.fit`
steps after the first epoch's compilation) of the default pretrain recipe from
`im2latex_encoder.training` vs the seed notebook's model (`SymbolClassifier` with the seed head:
flatten + Dense(25) + Dense(101)) and `keras.optimizers.Adam(1e-4)`, both at batch 32 on
128×128 synthetic images held in memory, interleaved in one process. Reports images/s of each
and the ratio recipe / seed.

Unavailable until `im2latex_encoder.training` exists; then replace the body of `run`.
"""

from __future__ import annotations

from benchmarks._harness import BenchmarkUnavailable, Options, Result, require


def run(options: Options) -> Result:
    """Measure the default pretrain recipe (see the module docstring); unavailable for now.

    Example:
    >>> run(Options(quick=True))  # doctest: +SKIP
    """
    require("im2latex_encoder.training", "the default pretrain recipe")
    raise BenchmarkUnavailable("the measurement is not written yet (see benchmarks/train.py)")
