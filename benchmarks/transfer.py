"""Transfer to a new head: images/s and accuracy of fine-tuning from the preset.

Intended measurement: fine-tuning throughput (images/s, batch 32) of a new head on the
pretrained `crohme101` encoder, frozen and unfrozen, and the accuracy reached after a fixed
number of steps vs the same model trained from scratch, interleaved in one process. Needs
`im2latex_encoder.training` for the fine-tuning loop.

Unavailable until `im2latex_encoder.training` exists; then replace the body of `run`.
"""

from __future__ import annotations

from benchmarks._harness import BenchmarkUnavailable, Options, Result, require


def run(options: Options) -> Result:
    """Measure fine-tuning from the pretrained encoder (see the module docstring); unavailable for now.

    Example:
    >>> run(Options(quick=True))  # doctest: +SKIP
    """
    require("im2latex_encoder.training", "fine-tuning from the pretrained encoder")
    raise BenchmarkUnavailable("the measurement is not written yet (see benchmarks/transfer.py)")
