"""Batch-1 encoder latency: Keras/TF paths vs PyTorch eager and TorchScript, per shape and stage.

Every peer runs in **its own worker process** (`benchmarks._worker.SubprocessCandidate`), so no
framework's thread pool, allocator or spinning threads sit in the process that times another;
the parent only sends ``run`` lines and collects the seconds each worker measured. Candidates
are interleaved round by round (`benchmarks._harness.interleave`); a ratio is the median of
per-round ratios, reported with its range; calls/s, never an absolute limit.

Workers and their thread settings (``T`` = `Options.threads`, the CPUs this process may use):

- ``tf``: Keras 3 on TensorFlow, intra-op ``T``, inter-op ``T`` (the `encoder` benchmark's
  setting). Paths, all float32 at batch 1 on a ``tf.constant``:
  ``tf`` the concrete function of ``encoder(x, training=False)`` (the fastest in-process
  path in the `encoder` benchmark); ``tf s2d`` the same with the first conv + ReLU + pool
  computed by `benchmarks.s2d_stem.s2d_conv_relu_pool` from the encoder's own first-conv
  weights (pre-rearranged once); ``tf xla`` / ``tf s2d xla`` those with ``jit_compile=True``;
  ``tflite`` the TFLite file of `im2latex_encoder.export.export_model` (uint8 ``serve``
  signature, as deployed) under LiteRT with XNNPACK, ``T`` threads; ``tflite s2d`` the s2d
  function converted to TFLite (float32 in), same interpreter settings.
- ``tf inter-op 1``: the same ``tf`` / ``tf s2d`` paths with inter-op 1 (intra-op ``T``).
- ``tf 1 thread``: intra-op 1, inter-op 1.
- ``torch``: the seed stack in PyTorch, channels-last, `torch.inference_mode`,
  ``torch.set_num_threads(T)``, ``set_num_interop_threads(1)``: ``torch`` eager and
  ``torch frozen`` (`torch.jit.trace` → `freeze` → `optimize_for_inference`, TorchScript).
  Same weights as the Keras encoder (read from one ``.npz``).
- ``torch 1 thread``: the same with one intra-op thread. Each Keras-side path is compared
  with the faster PyTorch worker in each round ("best threads"): on a loaded machine
  PyTorch's OpenMP pool with ``T`` threads can run an order of magnitude slower than one
  thread, and the target should be met against PyTorch at its best.

Shapes: 128×128 and 64×512 (the `encoder` benchmark's), 48×48 (the ``crohme101`` preset's
input), 64×160 and 96×352: the median and 90th-percentile padded input of the handwritten
formula model (CROHME 2016 test expressions drawn with 18.2 px symbols, padded to a multiple
of 16 by `pad_batch`: median 53×158 raw → 64×160; 90th percentile 84×345 → 96×352).

Per-stage profile (in the two 1-thread workers, like for like): conv1 (+bias+ReLU), pool1,
conv2, pool2, conv3, each alone at batch 1 on a tensor of the shape it sees in the encoder:
Keras layers in a concrete function (TF), eager modules (torch), one frozen TorchScript
module per stage (frozen), plus the s2d stem (replacing conv1 + pool1) and an empty TF call
(the per-call floor of a concrete function).

Target (issue 16): batch-1 calls/s ≥ 1.2× PyTorch eager and TorchScript at every shape.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

import numpy as np

from benchmarks._harness import (
    Options,
    Result,
    interleave,
    latency_figure,
    rates,
    ratio,
    timed,
)
from benchmarks._worker import SubprocessCandidate

#: (height, width) measured; see the module docstring for where each comes from.
SHAPES = ((128, 128), (64, 512), (48, 48), (64, 160), (96, 352))
SHAPE_NOTES = {
    (128, 128): "square symbol",
    (64, 512): "typeset formula strip",
    (48, 48): "crohme101 input",
    (64, 160): "handwritten formula, median",
    (96, 352): "handwritten formula, p90",
}
STAGES = ("conv1", "pool1", "conv2", "pool2", "conv3")
TARGET = 1.2
#: Full-model paths of each TF worker.
TF_PATHS = ("tf", "tf s2d", "tf xla", "tf s2d xla", "tflite", "tflite s2d")
#: Paths of the TF workers with other thread settings.
THREAD_VARIANTS = {
    "tf inter-op 1": ("tf", "tf s2d"),
    "tf 1 thread": ("tf", "tf s2d", "tflite", "tflite s2d"),
}
#: PyTorch workers: name -> threads (None: `Options.threads`).
TORCH_WORKERS = {"torch": None, "torch 1 thread": 1}


def label(shape) -> str:
    """``"HxW"``.

    Example:
    >>> label((64, 160))
    '64x160'
    """
    return f"{shape[0]}x{shape[1]}"


def _image(shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((1, shape[0], shape[1], 1), dtype=np.float32)


def _calls(shape, base: int) -> int:
    """Calls per timed unit: about the same work per unit at every shape."""
    return max(5, round(base * 128 * 128 / (shape[0] * shape[1])))


def _load_encoder(weights: str):
    import keras

    from im2latex_encoder import SymbolEncoder

    encoder = SymbolEncoder()
    with np.load(weights) as saved:
        for conv, index in zip(encoder.convs, range(len(encoder.convs))):
            conv.set_weights([saved[f"kernel{index}"], saved[f"bias{index}"]])
    assert keras.backend.backend() == "tensorflow"
    return encoder


def s2d_forward(encoder):
    """A forward pass of `encoder` (the seed stack, sequence output) with the s2d stem.

    The first conv's kernel is rearranged once (`s2d_kernel`) and kept as a constant; the
    rest of the stack is the encoder's own layers. Returns ``fn(images) -> (B, H'·W', C)``.

    Example:
    >>> fn = s2d_forward(SymbolEncoder())  # doctest: +SKIP
    """
    from keras import ops

    from benchmarks.s2d_stem import s2d_conv_relu_pool, s2d_kernel

    first = encoder.convs[0]
    packed = ops.convert_to_numpy(s2d_kernel(first.kernel))
    bias = ops.convert_to_numpy(first.bias)

    def forward(images):
        x = s2d_conv_relu_pool(images, packed, bias)
        for index, conv in enumerate(encoder.convs[1:], start=1):
            x = encoder.activation_layer(conv(x))
            if index < len(encoder.convs) - 1:
                x = encoder.pool(x)
        return as_sequence(x)

    return forward


def as_sequence(x):
    """``(B, H', W', C) -> (B, H'·W', C)``; a sequence passes through.

    The encoder's own output is a grid or a sequence depending on its version and neck; every
    timed path ends in the sequence an attention decoder reads, as the PyTorch peer does.

    Example:
    >>> tuple(as_sequence(np.zeros((1, 2, 3, 4))).shape)
    (1, 6, 4)
    """
    from keras import ops

    if len(x.shape) == 3:
        return x
    return ops.reshape(x, (ops.shape(x)[0], -1, ops.shape(x)[-1]))


def _checksum(output) -> list:
    array = np.asarray(output, dtype=np.float64)
    return [float(array.sum()), float(np.abs(array).max())]


def tf_latency_candidates(
    weights: str,
    shapes: list,
    threads: int,
    inter_threads: int | None = None,
    paths: list | None = None,
    stages: bool | None = None,
    base_calls: int = 20,
    seed: int = 0,
) -> dict:
    """Worker factory: timed batch-1 TF/TFLite forward passes (and stages) of the encoder.

    Args:
        weights: str. ``.npz`` with ``kernel{i}``/``bias{i}`` of the seed stack's convs.
        shapes: list of [height, width].
        threads: int. Intra-op threads (and TFLite threads).
        inter_threads: int or None. Inter-op threads (`threads` when None).
        paths: list of `TF_PATHS` entries (all when None).
        stages: bool or None. Also time each stage alone (None: when `paths` is None).
        base_calls: int. Forward passes per unit at 128×128 (scaled by pixels elsewhere).
        seed: int. Seed of the images.

    Returns:
        dict of ``"<path> <HxW>"`` / ``"stage <name> <HxW>"`` -> timed callable; each
        callable's ``info`` holds the thread settings, calls and an output checksum.
    """
    import tensorflow as tf

    from benchmarks.encoder import _serving_forward, _set_tf_threads

    thread_note = _set_tf_threads(threads, inter_threads)
    stages = paths is None if stages is None else stages
    encoder = _load_encoder(weights)
    forward_s2d = s2d_forward(encoder)

    def plain(images):
        return as_sequence(encoder(images, training=False))

    candidates = {}
    for shape in [tuple(s) for s in shapes]:
        images = _image(shape, seed)
        x = tf.constant(images)
        spec = tf.TensorSpec(x.shape, x.dtype)
        calls = _calls(shape, base_calls)
        for path in paths or TF_PATHS:
            function = plain if "s2d" not in path else forward_s2d
            if path in ("tf", "tf s2d"):
                run = tf.function(function).get_concrete_function(spec)
                one = lambda run=run, x=x: run(x)  # noqa: E731
            elif path in ("tf xla", "tf s2d xla"):
                run = tf.function(function, jit_compile=True)
                one = lambda run=run, x=x: run(x)  # noqa: E731
            elif path == "tflite":
                one = _serving_forward(encoder, "tflite", images)
            elif path == "tflite s2d":
                one = _tflite_function(forward_s2d, spec, images, threads)
            else:
                raise ValueError(f"Unknown path {path!r}. Expected one of {TF_PATHS}")
            output = one()
            candidates[f"{path} {label(shape)}"] = _unit(
                one, calls, threads=thread_note, checksum=_checksum(output)
            )
        if stages:
            candidates.update(_tf_stages(encoder, shape, x, _calls(shape, base_calls)))
            for name in list(candidates):
                if name.startswith("stage"):
                    candidates[name].info["threads"] = thread_note
    return candidates


def _unit(one, calls: int, **info):
    run = timed(lambda: [one() for _ in range(calls)])
    run.info = {"calls": calls, **info}
    return run


def _tflite_function(function, spec, images: np.ndarray, threads: int):
    """Convert a tf.function (float32 in) to TFLite and return a forward pass under LiteRT."""
    import tensorflow as tf

    from im2latex_encoder.export import _tflite_interpreter

    concrete = tf.function(function).get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    interpreter = _tflite_interpreter(content=converter.convert(), num_threads=threads)
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    target = interpreter.get_output_details()[0]["index"]

    def forward():
        interpreter.set_tensor(source, images)
        interpreter.invoke()
        return interpreter.get_tensor(target)

    return forward


def _tf_stages(encoder, shape, x, calls: int) -> dict:
    """Each stage of the encoder alone, as a concrete function of the Keras layers."""
    import tensorflow as tf

    from benchmarks.s2d_stem import s2d_conv_relu_pool, s2d_kernel

    stages, y = {}, x
    for index, conv in enumerate(encoder.convs):
        fn = tf.function(lambda t, conv=conv: encoder.activation_layer(conv(t)))
        run = fn.get_concrete_function(tf.TensorSpec(y.shape, y.dtype))
        stages[f"conv{index + 1}"] = (run, y)
        y = run(y)
        if index < len(encoder.convs) - 1:
            fn = tf.function(lambda t: encoder.pool(t))
            run = fn.get_concrete_function(tf.TensorSpec(y.shape, y.dtype))
            stages[f"pool{index + 1}"] = (run, y)
            y = run(y)
    first = encoder.convs[0]
    packed = tf.constant(np.asarray(s2d_kernel(first.kernel)))
    fn = tf.function(lambda t: s2d_conv_relu_pool(t, packed, first.bias))
    stages["s2d stem"] = (fn.get_concrete_function(tf.TensorSpec(x.shape, x.dtype)), x)
    stages["empty call"] = (
        tf.function(lambda t: tf.identity(t)).get_concrete_function(
            tf.TensorSpec(x.shape, x.dtype)
        ),
        x,
    )
    return {
        f"stage {name} {label(shape)}": _unit(lambda run=run, t=t: run(t), calls)
        for name, (run, t) in stages.items()
    }


def torch_latency_candidates(
    weights: str,
    shapes: list,
    threads: int,
    stages: bool = True,
    base_calls: int = 20,
    seed: int = 0,
) -> dict:
    """Worker factory: timed batch-1 PyTorch eager and TorchScript-frozen passes (and stages).

    Keys: ``"torch <HxW>"``, ``"torch frozen <HxW>"``, ``"torch stage <name> <HxW>"``,
    ``"torch frozen stage <name> <HxW>"``. Arguments as `tf_latency_candidates`.
    """
    import torch

    from benchmarks.encoder import torch_encoder

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
    thread_note = f"intra {torch.get_num_threads()}, inter {torch.get_num_interop_threads()}"
    model = torch_encoder()
    convs = [m for m in model if isinstance(m, torch.nn.Conv2d)]
    with np.load(weights) as saved, torch.no_grad():
        for index, conv in enumerate(convs):
            kernel = saved[f"kernel{index}"]
            conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
            conv.bias.copy_(torch.from_numpy(saved[f"bias{index}"]))
    model = model.to(memory_format=torch.channels_last)
    # Stages: (conv, ReLU) pairs and pools, in order.
    parts, modules = [], list(model)
    while modules:
        module = modules.pop(0)
        if isinstance(module, torch.nn.Conv2d):
            parts.append(torch.nn.Sequential(module, modules.pop(0)))
        else:
            parts.append(module)
    candidates = {}
    for shape in [tuple(s) for s in shapes]:
        x = torch.from_numpy(_image(shape, seed).transpose(0, 3, 1, 2).copy())
        x = x.contiguous(memory_format=torch.channels_last)
        calls = _calls(shape, base_calls)
        frozen = _freeze(model, x)
        for name, net in (("torch", model), ("torch frozen", frozen)):
            one = _torch_call(net, x, sequence=True)
            with torch.inference_mode():
                output = one()
            candidates[f"{name} {label(shape)}"] = _unit(
                _in_inference_mode(one), calls, threads=thread_note, checksum=_checksum(output)
            )
        if not stages:
            continue
        y = x
        for name, part in zip(STAGES, parts):
            for kind, net in (("torch", part), ("torch frozen", _freeze(part, y))):
                candidates[f"{kind} stage {name} {label(shape)}"] = _unit(
                    _in_inference_mode(_torch_call(net, y)),
                    _calls(shape, base_calls),
                    threads=thread_note,
                )
            with torch.inference_mode():
                y = part(y).contiguous(memory_format=torch.channels_last)
    return candidates


def _freeze(net, x):
    import torch

    with torch.inference_mode():
        return torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, x).eval()))


def _torch_call(net, x, sequence: bool = False):
    def one():
        y = net(x)
        if sequence:  # the encoder's output: (1, H'·W', C), as the Keras encoder returns
            y = y.permute(0, 2, 3, 1).reshape(y.shape[0], -1, y.shape[1])
        return y.numpy() if sequence else y

    return one


def _in_inference_mode(one):
    import torch

    def run():
        with torch.inference_mode():
            return one()

    return run


def _save_weights(folder: str, seed: int = 0) -> str:
    import keras

    from im2latex_encoder import SymbolEncoder

    keras.utils.set_random_seed(seed)
    encoder = SymbolEncoder()
    arrays = {}
    for index, conv in enumerate(encoder.convs):
        kernel, bias = conv.get_weights()
        arrays[f"kernel{index}"], arrays[f"bias{index}"] = kernel, bias
    path = os.path.join(folder, "weights.npz")
    np.savez(path, **arrays)
    return path


def _workers(weights: str, shapes: list, threads: int, quick: bool) -> dict:
    """The worker processes: name -> (factory, kwargs, env)."""
    base = 4 if quick else 8
    tf_env = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    common = {"weights": weights, "shapes": shapes, "threads": threads, "base_calls": base}
    factory = "benchmarks.encoder_latency:tf_latency_candidates"
    torch_factory = "benchmarks.encoder_latency:torch_latency_candidates"
    return {
        "tf": (factory, {**common, "stages": False}, tf_env),
        "tf inter-op 1": (
            factory,
            {**common, "inter_threads": 1, "paths": list(THREAD_VARIANTS["tf inter-op 1"])},
            tf_env,
        ),
        "tf 1 thread": (
            factory,
            {
                **common,
                "threads": 1,
                "inter_threads": 1,
                "paths": list(THREAD_VARIANTS["tf 1 thread"]),
                "stages": True,
            },
            tf_env,
        ),
        "torch": (torch_factory, {**common, "stages": False}, {}),
        "torch 1 thread": (torch_factory, {**common, "threads": 1, "stages": True}, {}),
    }


def run(options: Options, shapes=SHAPES) -> Result:
    """Time batch-1 latency per shape and per stage in worker processes (module docstring).

    Example:
    >>> run(Options(quick=True)).status  # doctest: +SKIP
    'ok'
    """
    rounds = options.rounds(9)
    threads = options.threads
    shapes = [list(s) for s in shapes]
    result = Result("encoder_latency")
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as folder:
        weights = _save_weights(folder)
        workers, candidates, info = [], {}, {}
        try:
            for name, (factory, kwargs, env) in _workers(
                weights, shapes, threads, options.quick
            ).items():
                worker = SubprocessCandidate(factory, kwargs, env=env).__enter__()
                workers.append(worker)
                for key, key_info in worker.info.items():
                    # Stage keys come from one worker per framework and stay unprefixed.
                    plain = name in ("tf", "torch") or " stage " in f" {key}"
                    full = key if plain else f"{name}: {key}"
                    if full in candidates:
                        raise ValueError(f"Two workers time {full!r}")
                    candidates[full] = worker.candidate(key)
                    info[full] = dict(key_info, worker=name)
            times = _measure(candidates, shapes, rounds)
        finally:
            for worker in workers:
                worker.__exit__(None, None, None)
    _report(result, times, info, shapes, threads)
    return result


def tf_keys(shape) -> list:
    """Every Keras/TF-side candidate at `shape` (worker-prefixed but for the main TF worker).

    Example:
    >>> tf_keys((48, 48))[:2]
    ['tf 48x48', 'tf s2d 48x48']
    """
    at = label(shape)
    keys = [f"{path} {at}" for path in TF_PATHS]
    for worker, paths in THREAD_VARIANTS.items():
        keys += [f"{worker}: {path} {at}" for path in paths]
    return keys


def torch_keys(shape, kind: str = "") -> list:
    """PyTorch candidates at `shape`: eager and frozen, or only `kind` (``"torch"``/``"torch frozen"``).

    Example:
    >>> torch_keys((48, 48), "torch frozen")
    ['torch frozen 48x48', 'torch 1 thread: torch frozen 48x48']
    """
    at = label(shape)
    kinds = (kind,) if kind else ("torch", "torch frozen")
    keys = []
    for worker in TORCH_WORKERS:
        prefix = "" if worker == "torch" else f"{worker}: "
        keys += [f"{prefix}{k} {at}" for k in kinds]
    return keys


def full_keys(shape) -> list:
    """The full-model candidates interleaved in one group at `shape`.

    Example:
    >>> full_keys((48, 48))[:3]
    ['torch 48x48', 'torch frozen 48x48', 'torch 1 thread: torch 48x48']
    """
    return torch_keys(shape) + tf_keys(shape)


def stage_keys(shape) -> list:
    """The per-stage candidates interleaved in one group at `shape`.

    Example:
    >>> stage_keys((48, 48))[:3]
    ['stage conv1 48x48', 'torch stage conv1 48x48', 'torch frozen stage conv1 48x48']
    """
    at = label(shape)
    keys = []
    for name in STAGES:
        keys += [f"{kind}stage {name} {at}" for kind in ("", "torch ", "torch frozen ")]
    return keys + [f"stage s2d stem {at}", f"stage empty call {at}"]


def _measure(candidates: dict, shapes: list, rounds: int) -> dict:
    """Interleave each shape's full-model group, then its stage group; all rounds kept."""
    times = {}
    for shape in shapes:
        for keys in (full_keys(shape), stage_keys(shape)):
            group = {key: candidates[key] for key in keys if key in candidates}
            start = time.perf_counter()
            times.update(interleave(group, rounds, warmup=1))
            print(
                f"[encoder_latency] {label(shape)}: {len(group)} candidates, "
                f"{time.perf_counter() - start:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    return times


def _report(result: Result, times: dict, info: dict, shapes: list, threads: int) -> None:
    def calls(key):
        return info[key]["calls"]

    def per_call_rates(key):
        return rates(times[key], calls(key))

    for shape in shapes:
        at = label(shape)
        where = SHAPE_NOTES.get(tuple(shape), "")
        for key in full_keys(shape):
            if key in times:
                result.figures.append(
                    latency_figure(f"{key} b1", times[key], calls(key), info[key]["threads"])
                )
        best_torch = {
            kind: [
                max(values) for values in zip(*(per_call_rates(k) for k in torch_keys(shape, kind)))
            ]
            for kind in ("torch", "torch frozen")
        }
        candidates = [k for k in tf_keys(shape) if k in times]
        for key in candidates:
            path = key[: -len(at) - 1]
            for kind in ("torch", "torch frozen"):
                result.ratios.append(
                    ratio(
                        f"{path} / {kind} (best threads) batch-1 calls/s, {at}",
                        per_call_rates(key),
                        best_torch[kind],
                        target=TARGET if path == "tf" else None,
                    )
                )
        # The fastest Keras-side path at this shape (picked by its median ratio to frozen;
        # picking the best of many noisy candidates flatters it a little).
        fastest = max(
            candidates,
            key=lambda k: statistics.median(
                [a / b for a, b in zip(per_call_rates(k), best_torch["torch frozen"])]
            ),
        )
        for kind in ("torch", "torch frozen"):
            result.ratios.append(
                ratio(
                    f"fastest Keras-side path ({fastest[: -len(at) - 1]}) / {kind} "
                    f"(best threads) batch-1 calls/s, {at} ({where})",
                    per_call_rates(fastest),
                    best_torch[kind],
                    target=TARGET,
                )
            )
        # Per-stage table: ms per call and each framework's share of its stages' sum.
        medians = {}
        for kind in ("", "torch ", "torch frozen "):
            medians[kind] = {
                name: statistics.median(times[f"{kind}stage {name} {at}"])
                / calls(f"{kind}stage {name} {at}")
                for name in STAGES
            }
        for name in STAGES:
            for kind, who in (("", "tf"), ("torch ", "torch"), ("torch frozen ", "frozen")):
                key = f"{kind}stage {name} {at}"
                share = medians[kind][name] / sum(medians[kind].values())
                result.figures.append(
                    latency_figure(
                        f"stage {name} {at} b1, {who}",
                        times[key],
                        calls(key),
                        f"1 thread; {share:.0%} of {who}'s stage sum",
                    )
                )
            for peer, who in (("torch ", "torch"), ("torch frozen ", "frozen")):
                result.ratios.append(
                    ratio(
                        f"stage {name} tf / {who} calls/s, {at}",
                        per_call_rates(f"stage {name} {at}"),
                        per_call_rates(f"{peer}stage {name} {at}"),
                    )
                )
        for name in ("s2d stem", "empty call"):
            key = f"stage {name} {at}"
            result.figures.append(
                latency_figure(
                    f"stage {name} {at} b1, tf",
                    times[key],
                    calls(key),
                    "replaces conv1 + pool1" if name == "s2d stem" else "per-call floor",
                )
            )
        plain = [
            sum(pair)
            for pair in zip(
                *(
                    [t / calls(f"stage {n} {at}") for t in times[f"stage {n} {at}"]]
                    for n in ("conv1", "pool1")
                )
            )
        ]
        stem = [t / calls(f"stage s2d stem {at}") for t in times[f"stage s2d stem {at}"]]
        result.ratios.append(
            ratio(
                f"stage s2d stem / (conv1 + pool1) calls/s (tf), {at}",
                [1 / s for s in stem],
                [1 / p for p in plain],
            )
        )
        # Exactness of the paths, on this shape's image.
        reference = info[f"tf {at}"]["checksum"]
        worst = max(
            abs(info[k]["checksum"][0] - reference[0]) / max(abs(reference[0]), 1e-12)
            for k in full_keys(shape)
            if k in info and "checksum" in info[k] and k != f"tflite {at}"
        )
        result.notes.append(
            f"{at}: every float32-input path's output sum within {worst:.1e} (relative) of "
            "the tf path's (the tflite export takes uint8 pixels, so it is left out here; "
            "`export_model` checks its parity)."
        )
    result.notes.append(
        "Each peer runs in its own worker process; threads: "
        + "; ".join(
            sorted(
                {
                    f"{v['worker']}: {v['threads']}"
                    for v in info.values()
                    if "threads" in v and "worker" in v
                }
            )
        )
        + f" (T = {threads}); TFLite: {threads} threads, XNNPACK."
    )
    result.notes.append(
        "'torch' / 'torch frozen (best threads)': in each round, the faster of the PyTorch "
        f"worker with {threads} threads and the one with 1 thread, so each Keras-side path "
        "is compared with PyTorch's best thread setting on this machine at that moment."
    )
    result.notes.append(
        "Full-model candidates of a shape are one interleaved group, its stages another; "
        "ratios are medians of per-round ratios (range in the table)."
    )
