"""Peak resident memory of a pretrain over an 85,802-image dataset.

Intended measurement: peak RSS (`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` of a
subprocess) of one pretrain epoch of the default recipe over a prepared cache of 85,802 images
(the size of CROHME's isolated-symbol training set) at 128×128, streamed through
`im2latex_encoder.data.pipeline`, against the dataset's in-memory size as float32
(85,802 × 128 × 128 × 4 B ≈ 5.6 GB) as the naive baseline. Reports peak RSS in MiB and the ratio
to that baseline.

Unavailable until `im2latex_encoder.training` exists; then replace the body of `run`.
"""

from __future__ import annotations

from benchmarks._harness import BenchmarkUnavailable, Options, Result, require


def run(options: Options) -> Result:
    """Measure peak RSS of a pretrain (see the module docstring); unavailable for now.

    Example:
    >>> run(Options(quick=True))  # doctest: +SKIP
    """
    require("im2latex_encoder.training", "peak RSS of a pretrain")
    raise BenchmarkUnavailable("the measurement is not written yet (see benchmarks/memory.py)")
