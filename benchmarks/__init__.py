"""The benchmark suite: `python -m benchmarks` (see `python -m benchmarks --help`).

One module per benchmark, each with ``run(options) -> Result`` and a docstring that says what it
measures against what. A benchmark whose subject is not built yet raises
`BenchmarkUnavailable`, which the suite records as "unavailable: <why>" and moves on.
Benchmarks are never part of the test suite; `tests/test_benchmarks_harness.py` tests the
harness on a fake benchmark.
"""

from benchmarks._harness import (  # noqa: F401
    BenchmarkUnavailable,
    Figure,
    Options,
    Ratio,
    Result,
    interleave,
    latency_figure,
    rate_figure,
    rates,
    ratio,
    run_benchmark,
    timed,
    to_markdown,
)

#: The registered benchmarks, in the order `python -m benchmarks` runs them.
BENCHMARKS = (
    "encoder",
    "encoder_latency",
    "encoder_tuning",
    "data",
    "train",
    "time_to_accuracy",
    "memory",
    "transfer",
    "decoding",
    "formulas",
    "serve",
)
