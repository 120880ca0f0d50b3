"""Wall time to a validation accuracy, default recipe vs the seed's.

Intended measurement: seconds (and epochs) until top-1 validation accuracy first reaches a
fixed threshold on the synthetic symbols, for the default recipe of `im2latex_encoder.training`
vs the seed model + `Adam(1e-4)` at batch 32, on the same cached data, one after the other in
one run (time-to-accuracy cannot interleave). Reports both times and their ratio.

Unavailable until `im2latex_encoder.training` exists; then replace the body of `run`.
"""

from __future__ import annotations

from benchmarks._harness import BenchmarkUnavailable, Options, Result, require


def run(options: Options) -> Result:
    """Measure time to a target accuracy (see the module docstring); unavailable for now.

    Example:
    >>> run(Options(quick=True))  # doctest: +SKIP
    """
    require("im2latex_encoder.training", "time to a target accuracy")
    raise BenchmarkUnavailable("the measurement is not written yet (see benchmarks/time_to_accuracy.py)")
