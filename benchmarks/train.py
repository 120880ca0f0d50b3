"""Training throughput of the default pretrain recipe vs the seed notebook's, and what feeds it.

Every candidate trains the model `pretrain` trains (see `im2latex_encoder.training.build_trainer`:
``Sequential([Input, augmentation_layers(...), classifier])``, `CategoricalCrossentropy`, the
accuracy and top-5 metrics) with `train_on_batch` on synthetic batches held in memory as
tensors, so data is not the bottleneck. All candidates live in one worker subprocess (a clean
TensorFlow runtime with `enable_op_determinism`, as `pretrain` sets; the suite's process keeps
its own state) and are timed in interleaved rounds; one unit of work is the same number of
images for every candidate.

- **Recipe vs seed** (images/s): `quick` at its own image size (`RECIPE_SIZE`, 32×32: no
  normalization, average pooling, AdamW with warm-up + cosine, label smoothing, augmentation
  layers, batch 64) vs `seed` (128×128, flatten + Dense(25) + Dense(101), Adam(1e-4), batch 32,
  no augmentation). Target ≥ 1.5×.
- **Decomposition** at equal image size: `seed` at 32×32 and `quick` at 128×128, so the ratio
  splits into image size (quick@128 → quick@32) and recipe (seed@32 → quick@32, or seed@128
  → quick@128). Per-step times are reported too (the batch sizes differ: 64 vs 32).
- **bf16**: `quick` built under `mixed_bfloat16` vs float32.
- **Input pipeline**: `make_dataset(SyntheticBatches(SyntheticSymbols("train", 32), 64), ...)`
  iterated without training (a fresh dataset per unit; its start-up, which a training run pays
  once, is drawn before the clock starts), vs the `quick` training step's images/s at the same
  size. Target ≥ 3×. Also the `quick` step fed by
  that pipeline (a persistent iterator, prefetching while training) vs fed from memory.
"""

from __future__ import annotations

import statistics

from benchmarks._harness import (
    Options,
    Result,
    interleave,
    latency_figure,
    rate_figure,
    rates,
    ratio,
    require,
)
from benchmarks._worker import SubprocessCandidate

#: The image size `quick` (the default recipe) trains at: its config's `image_size`; a test
#: keeps the two equal (a constant, so importing this module needs no TensorFlow).
RECIPE_SIZE = 32
QUICK, SEED, SMALL_SEED = f"quick@{RECIPE_SIZE}", "seed@128", f"seed@{RECIPE_SIZE}"
#: key -> (config name, image size, dtype policy, feed)
CANDIDATES = {
    QUICK: ("quick", RECIPE_SIZE, "float32", "memory"),
    SEED: ("seed", 128, "float32", "memory"),
    SMALL_SEED: ("seed", RECIPE_SIZE, "float32", "memory"),
    "quick@128": ("quick", 128, "float32", "memory"),
    f"{QUICK} bf16": ("quick", RECIPE_SIZE, "mixed_bfloat16", "memory"),
    f"{QUICK} fed by pipeline": ("quick", RECIPE_SIZE, "float32", "pipeline"),
}
PIPELINE = f"pipeline only ({QUICK} batches)"
#: Batches the pipeline candidate draws untimed from each fresh dataset (its start-up).
PIPELINE_WARMUP = 4
#: Images each candidate trains on per round in a quick run (one step at the least).
QUICK_IMAGES = 256
#: `Options(tiny=True)`'s sizes (see `benchmarks._harness.tiny_sizes`).
TINY = {"QUICK_IMAGES": 1, "PIPELINE_WARMUP": 1}


def train_candidates(images_per_unit: int, threads: int, distinct_batches: int = 4) -> dict:
    """Worker factory: timed training units of every candidate, plus the input pipeline alone.

    Args:
        images_per_unit: int. Images one unit of work trains on (steps = this / batch size).
        threads: int. TensorFlow intra- and inter-op threads.
        distinct_batches: int. In-memory batches per candidate, cycled.

    Returns:
        dict of key -> callable returning seconds, with ``.info`` (steps, batch, policy).

    Example:
    >>> candidates = train_candidates(64, threads=2)  # doctest: +SKIP
    >>> seconds = candidates["quick@32"]()  # doctest: +SKIP
    """
    import keras
    import tensorflow as tf

    from benchmarks._recipes import synthetic_batches_in_memory
    from benchmarks.encoder import set_tf_threads
    from im2latex_encoder.data.pipeline import SyntheticBatches, make_dataset
    from im2latex_encoder.data.synthetic import SyntheticSymbols
    from im2latex_encoder.symbols import CROHME_SYMBOLS
    from im2latex_encoder.training import build_trainer, load_config

    thread_note = set_tf_threads(threads)
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()  # as `pretrain` does
    candidates = {}
    for key, (name, size, policy, feed) in CANDIDATES.items():
        config = load_config(name).replace(image_size=size)
        trainer, _ = build_trainer(config, policy=policy)
        steps = max(1, images_per_unit // config.batch_size)
        if feed == "memory":
            batches = synthetic_batches_in_memory(size, config.batch_size, distinct_batches)

            def unit(trainer=trainer, batches=batches, steps=steps):
                for step in range(steps):
                    x, y = batches[step % len(batches)]
                    trainer.train_on_batch(x, y)
        else:
            source = SyntheticBatches(
                SyntheticSymbols("train", size, config.seed), config.batch_size, seed=config.seed
            )
            iterator = iter(
                make_dataset(source, 0, 10**9, (size, size), one_hot=len(CROHME_SYMBOLS))
            )

            def unit(trainer=trainer, iterator=iterator, steps=steps):
                for _ in range(steps):
                    x, y = next(iterator)
                    trainer.train_on_batch(x, y)

        run = _timed_unit(unit)
        run.info = {
            "config": name,
            "image_size": size,
            "policy": policy,
            "feed": feed,
            "batch": config.batch_size,
            "steps": steps,
            "threads": thread_note,
        }
        candidates[key] = run

    source = SyntheticBatches(SyntheticSymbols("train", RECIPE_SIZE, 0), 64, seed=0)
    pipeline_steps = max(1, images_per_unit // 64)
    first = [0]

    def pipeline_run() -> float:
        # A fresh dataset per unit at steps not drawn before, so no batch made while other
        # candidates ran is counted; its first PIPELINE_WARMUP batches (start-up, which a
        # training run pays once, not every few steps) are drawn before the clock starts.
        import time

        dataset = make_dataset(
            source,
            first[0],
            PIPELINE_WARMUP + pipeline_steps,
            (RECIPE_SIZE, RECIPE_SIZE),
            one_hot=len(CROHME_SYMBOLS),
        )
        first[0] += PIPELINE_WARMUP + pipeline_steps
        batches = iter(dataset)
        for _ in range(PIPELINE_WARMUP):
            next(batches)
        start = time.perf_counter()
        for _ in batches:
            pass
        return time.perf_counter() - start

    run = pipeline_run
    run.info = {"batch": 64, "steps": pipeline_steps}
    candidates[PIPELINE] = run
    return candidates


def _timed_unit(unit):
    import time

    def run() -> float:
        start = time.perf_counter()
        unit()
        return time.perf_counter() - start

    return run


def run(options: Options) -> Result:
    """Measure training throughput (see the module docstring).

    Example:
    >>> run(Options(quick=True)).status  # doctest: +SKIP
    'ok'
    """
    require("im2latex_encoder.training", "the default pretrain recipe")
    images = QUICK_IMAGES if options.quick else 768
    rounds = options.rounds(5)
    result = Result("train")
    with SubprocessCandidate(
        "benchmarks.train:train_candidates", {"images_per_unit": images, "threads": options.threads}
    ) as worker:
        keys = list(CANDIDATES) + [PIPELINE]
        times = interleave({key: worker.candidate(key) for key in keys}, rounds)
        info = worker.info
    speed = {key: rates(times[key], images) for key in keys}

    for key in keys:
        details = info[key]
        note = f"batch {details['batch']}, {details['steps']} steps per round"
        if key != PIPELINE:
            note += f", {details['policy']}, fed from {details['feed']}"
        result.figures.append(
            rate_figure(
                f"{key} training" if key != PIPELINE else key, times[key], images, "images/s", note
            )
        )
    for key in (QUICK, SEED, SMALL_SEED, "quick@128", f"{QUICK} bf16"):
        steps = info[key]["steps"]
        result.figures.append(
            latency_figure(
                f"{key} step (batch {info[key]['batch']})",
                times[key],
                steps,
                "ms per train_on_batch",
            )
        )

    result.ratios += [
        ratio(
            f"{QUICK} / {SEED} training images/s",
            speed[QUICK],
            speed[SEED],
            target=1.5,
            note="the default recipe vs the seed notebook's, each at its size",
        ),
        ratio(f"image size: {QUICK} / quick@128 images/s", speed[QUICK], speed["quick@128"]),
        ratio(
            f"recipe at {RECIPE_SIZE}: {QUICK} / {SMALL_SEED} images/s",
            speed[QUICK],
            speed[SMALL_SEED],
        ),
        ratio(f"recipe at 128: quick@128 / {SEED} images/s", speed["quick@128"], speed[SEED]),
        ratio(
            f"image size for seed: {SMALL_SEED} / {SEED} images/s", speed[SMALL_SEED], speed[SEED]
        ),
        ratio(f"bf16 / fp32 training images/s ({QUICK})", speed[f"{QUICK} bf16"], speed[QUICK]),
        ratio(
            f"input pipeline / {QUICK} training images/s",
            speed[PIPELINE],
            speed[QUICK],
            target=3.0,
            note=f"make_dataset over SyntheticBatches, {RECIPE_SIZE}×{RECIPE_SIZE} batch 64, "
            "no training",
        ),
        ratio(
            f"{QUICK} fed by pipeline / from memory images/s",
            speed[f"{QUICK} fed by pipeline"],
            speed[QUICK],
        ),
    ]
    per_step = {key: statistics.median(t) / info[key]["steps"] for key, t in times.items()}
    result.notes += [
        f"{images} images per candidate per round, {rounds} interleaved rounds after one warm-up "
        "round, all candidates in one worker subprocess (TensorFlow, op determinism on as in "
        f"`pretrain`, {info[QUICK]['threads']}).",
        "Models and losses are exactly `pretrain`'s (`im2latex_encoder.training.build_trainer`); "
        "batches are synthetic symbols drawn once and held as tensors; `train_on_batch` per step.",
        "Median step times: "
        + ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in per_step.items() if k != PIPELINE)
        + ".",
        "The pipeline-fed candidate uses one persistent iterator: its prefetch buffer refills "
        "while other candidates run, so it can read a few batches ahead of a true steady state.",
    ]
    return result
