"""TensorFlow inference knobs for `SymbolEncoder`: each against the default, side by side.

Every variant runs in its own worker subprocess (TensorFlow reads these settings once, at start)
and is timed against a default worker in its own short interleaved group, so each ratio
"variant / default" compares like with like (the default's figure pools all its rounds). Measured at 128×128, batch 64 (images/s) and
batch 1 (calls/s), all through a `tf.function` of the encoder's call (the fastest path in the
`encoder` benchmark):

- ``inter-op 1``: `tf.config.threading.set_inter_op_parallelism_threads(1)` (default: #CPUs);
- ``frozen weights``: ``TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1`` (oneDNN caches reordered weights).
  Unsafe in any process that changes weights after the first call (training, `load_weights`,
  `from_preset` afterwards): the cached copy is used and outputs go stale;
- ``oneDNN off``: ``TF_ENABLE_ONEDNN_OPTS=0`` (Eigen kernels instead of oneDNN);
- ``xla``: the same `tf.function` with ``jit_compile=True``;
- ``bfloat16``: the full ``"bfloat16"`` dtype policy (no float32 variables to cast).
"""

from __future__ import annotations

from benchmarks._harness import Options, Result, interleave, rate_figure, rates, ratio
from benchmarks._worker import SubprocessCandidate

#: (height, width) of the images and the throughput batch.
SHAPE = (128, 128)
THROUGHPUT_BATCH = 64
#: `Options(tiny=True)`'s sizes (see `benchmarks._harness.tiny_sizes`).
TINY = {"SHAPE": (24, 40), "THROUGHPUT_BATCH": 2}
#: name -> (environment, keras_candidates keyword arguments, per-config overrides)
VARIANTS = {
    "default": ({}, {}, {}),
    "inter-op 1": ({}, {"inter_threads": 1}, {}),
    "frozen weights": ({"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "1"}, {}, {}),
    "oneDNN off": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, {}, {}),
    "xla": ({}, {}, {"path": "tf.function+xla"}),
    "bfloat16": ({}, {}, {"dtype": "bfloat16"}),
}


def run(options: Options) -> Result:
    """Time each knob against the default in interleaved rounds (see the module docstring).

    Example:
    >>> run(Options(quick=True)).status  # doctest: +SKIP
    'ok'
    """
    rounds = options.rounds(7)
    calls = 1 if options.quick else 2
    latency_calls = 5 if options.quick else 30
    shape = list(SHAPE)
    at = f"{shape[0]}x{shape[1]}"
    batches = ((THROUGHPUT_BATCH, calls), (1, latency_calls))
    result = Result("encoder_tuning")
    workers, candidates = [], {}
    try:
        for name, (env, kwargs, overrides) in VARIANTS.items():
            configs = [
                {
                    "key": f"b{batch}",
                    "path": "tf.function",
                    "dtype": "float32",
                    "batch": batch,
                    "shape": shape,
                    "calls": n,
                    **overrides,
                }
                for batch, n in batches
            ]
            worker = SubprocessCandidate(
                "benchmarks.encoder:keras_candidates",
                {"configs": configs, "threads": options.threads, **kwargs},
                env={"KERAS_BACKEND": "tensorflow", **env},
            )
            workers.append(worker.__enter__())
            for batch, _ in batches:
                candidates[(name, batch)] = worker.candidate(f"b{batch}")
        # One short group per (variant, batch): the default and the variant alternate, so the
        # two sides of each ratio run within a second of each other.
        times = {("default", batch): [] for batch, _ in batches}
        for name in list(VARIANTS)[1:]:
            for batch, _ in batches:
                group = interleave(
                    {"default": candidates[("default", batch)], name: candidates[(name, batch)]},
                    rounds,
                    warmup=1,
                )
                times[(name, batch)] = group[name]
                times[(name, batch, "default")] = group["default"]
                times[("default", batch)] += group["default"]
    finally:
        for worker in workers:
            worker.__exit__(None, None, None)
    for batch, n in batches:
        unit = "images/s" if batch > 1 else "calls/s"
        for name in VARIANTS:
            result.figures.append(
                rate_figure(f"{name}, {at} b{batch}", times[(name, batch)], batch * n, unit)
            )
        for name in list(VARIANTS)[1:]:
            result.ratios.append(
                ratio(
                    f"{name} / default, {at} b{batch}",
                    rates(times[(name, batch)], 1),
                    rates(times[(name, batch, "default")], 1),
                )
            )
    result.notes.append(
        "frozen weights: TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1 keeps serving the "
        "first weights it saw after `variable.assign` (outputs stale): only "
        "for inference-only processes."
    )
    result.notes.append(
        "Each variant is a worker process; 'default' is oneDNN on, intra- and "
        f"inter-op threads {options.threads}, float32, tf.function without XLA."
    )
    return result
