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
  function converted to TFLite (float32 in), same interpreter settings; ``tflite dynamic``
  the export with ``quantize="dynamic"`` (int8 weights; XNNPACK may quantize activations on
  the fly), same uint8 pixels and settings. That one is a *different precision*: its rows
  say "int8 weights, not fp32", carry no target and never count as the fastest path; its
  output's max abs difference from the fp32 Keras encoder, relative to the largest output
  magnitude, is in its figure's note.
- ``tf inter-op 1``: the same ``tf`` / ``tf s2d`` paths with inter-op 1 (intra-op ``T``).
- ``tf 1 thread``: intra-op 1, inter-op 1: ``tf``, ``tf s2d``, the three TFLite paths (1
  thread), the stages, and the single-core ceiling (below).
- ``torch``: the seed stack in PyTorch, channels-last, `torch.inference_mode`,
  ``torch.set_num_threads(T)``, ``set_num_interop_threads(1)``: ``torch`` eager and
  ``torch frozen`` (`torch.jit.trace` → `freeze` → `optimize_for_inference`, TorchScript).
  Same weights as the Keras encoder (read from one ``.npz``).
- ``torch 1 thread``: the same with one intra-op thread, the stages and the ceiling's matmul.
  Each Keras-side path is compared with the faster PyTorch worker in each round ("best
  threads"): on a loaded machine PyTorch's OpenMP pool with ``T`` threads can run an order
  of magnitude slower than one thread, and the target should be met against PyTorch at its
  best.
- ``ort`` / ``ort spinning`` / ``ort 1 thread``: ONNX Runtime on the library's own ONNX
  export of the same encoder (`export_model(encoder, path, format="onnx")`, written once by
  the parent; uint8 pixels in, like ``tflite``), CPU execution provider, graph optimizations
  ``ORT_ENABLE_ALL``, intra-op ``T`` / ``T`` / 1, inter-op 1. An fp32 Keras-side path like
  the TFLite export. ``ort``'s pool sleeps between calls
  (``session.intra_op.allow_spinning = 0``); ``ort spinning`` keeps ONNX Runtime's default,
  a pool that spins for a while after each call, which is faster when calls follow each
  other but would keep a core busy into the next candidate's turn: so every full-model
  candidate is timed after `SETTLE_SECONDS` idle (the same for all; PyTorch's OpenMP pool
  spins too). Without onnxruntime or tf2onnx (the ``export`` extra) the three are left out
  with a note, as is a worker that fails to start.
- ``openvino`` / ``openvino 1 thread`` / ``openvino bf16``: OpenVINO's CPU runtime on the same
  ONNX file, compiled per shape (static batch 1) with the ``LATENCY`` hint, ``T`` / 1 / ``T``
  threads, inference precision f32 / f32 / bf16. The f32 ones are fp32 Keras-side paths;
  ``openvino bf16`` is a different precision, reported like ``tflite dynamic`` (its parity is
  against the f32 compile). Without ``openvino`` (the ``openvino`` extra) they are left out
  with a note.

Keras-side paths (each with ratios to PyTorch eager and TorchScript) are every TF worker's
paths and the ``ort`` ones; the "fastest Keras-side path" of a shape is picked among the
float32 ones.

The single-core fp32 ceiling: the ``torch 1 thread`` and ``tf 1 thread`` workers also time a
``MATMUL_SIDE``² (1024²) float32 matmul (``torch.matmul``; ``tf.linalg.matmul`` as a concrete
function), in every shape's full-model rounds. `encoder_flops` counts a forward pass (2 × the
multiply-adds of the three valid 3×3 convs), so each single-thread path (TorchScript, torch
eager, tf, tflite, ort; `SINGLE_THREAD_PATHS`) gets a ``ceiling: <path> GFLOP/s`` figure and
its share of the faster matmul of the same round (a ratio, median over rounds), and
``ceiling: needed for 1.2x TorchScript`` is 1.2 × TorchScript's share: above 1, beating
TorchScript by 1.2× in fp32 would take more than this CPU's single-core matmul rate.

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

import importlib.util
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
    rate_figure,
    rates,
    ratio,
    timed,
)
from benchmarks._worker import SubprocessCandidate
from benchmarks.encoder import export_pixels, tflite_forward

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
TF_PATHS = ("tf", "tf s2d", "tf xla", "tf s2d xla", "tflite", "tflite s2d", "tflite dynamic")
#: Paths of the TF workers with other thread settings.
THREAD_VARIANTS = {
    "tf inter-op 1": ("tf", "tf s2d"),
    "tf 1 thread": ("tf", "tf s2d", "tflite", "tflite s2d", "tflite dynamic"),
}
#: Paths that are not float32 arithmetic -> what they are instead: reported in rows of their
#: own, never a target's, never the fastest path.
QUANTIZED_PATHS = {"tflite dynamic": "int8 weights", "openvino bf16": "bf16 arithmetic"}
#: Paths fed the export's uint8 pixels (the others take the float32 image).
UINT8_PATHS = ("tflite", "tflite dynamic", "ort", "openvino", "openvino bf16")
#: PyTorch workers: name -> threads (None: `Options.threads`).
TORCH_WORKERS = {"torch": None, "torch 1 thread": 1}
#: ONNX Runtime workers: name -> (intra-op threads (None: `Options.threads`), spinning pool).
ORT_WORKERS = {"ort": (None, False), "ort spinning": (None, True), "ort 1 thread": (1, False)}
#: OpenVINO workers: name -> (threads (None: `Options.threads`), inference precision).
OPENVINO_WORKERS = {
    "openvino": (None, "f32"),
    "openvino 1 thread": (1, "f32"),
    "openvino bf16": (None, "bf16"),
}
#: Calls of a 128×128 forward per timed unit (scaled by pixels at other shapes, `_calls`):
#: about 60 ms of work, so one preemption by the scheduler moves a unit by a few percent.
UNIT_CALLS = 32
#: Interleaved rounds per group; ratios are medians over them.
ROUNDS = 15
#: Idle seconds before each full-model candidate is timed (`interleave(settle=...)`), the
#: same for every candidate: long enough for the previous worker's spinning pool (ONNX
#: Runtime's, PyTorch's OpenMP) to go to sleep, so no candidate is timed while another's
#: threads still hold a core.
SETTLE_SECONDS = 0.05
#: Workers whose keys are not prefixed with the worker's name.
UNPREFIXED_WORKERS = ("tf", "torch", "ort", "openvino", "openvino bf16")
#: Side of the square float32 matmul timed as the single-core ceiling.
MATMUL_SIDE = 1024
#: `Options(tiny=True)`'s sizes (see `benchmarks._harness.tiny_sizes`).
TINY = {"SHAPES": ((24, 40),), "MATMUL_SIDE": 64}
#: The single-thread full-model paths measured against the ceiling: label -> candidate prefix.
SINGLE_THREAD_PATHS = {
    "TorchScript 1 thread": "torch 1 thread: torch frozen",
    "torch eager 1 thread": "torch 1 thread: torch",
    "tf 1 thread": "tf 1 thread: tf",
    "tflite 1 thread": "tf 1 thread: tflite",
    "ort 1 thread": "ort 1 thread: ort",
    "openvino 1 thread": "openvino 1 thread: openvino",
}


def label(shape) -> str:
    """``"HxW"``.

    Example:
    >>> label((64, 160))
    '64x160'
    """
    return f"{shape[0]}x{shape[1]}"


def encoder_flops(shape, filters=(32, 64, 64)) -> int:
    """FLOPs of one batch-1 forward pass of the seed stack: 2 × the multiply-adds of its convs.

    Valid 3×3 convs with `filters` outputs on one input channel, a 2×2 max pool (floor)
    between them; bias, ReLU and the pools are not counted (a few per cent at most).

    Example:
    >>> round(encoder_flops((128, 128)) / 1e6, 1)
    204.1
    """
    from benchmarks.encoder import conv_flops

    return conv_flops(tuple(shape), filters=tuple(filters), kernel_size=3, channels=1, pool=2)


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
    matmul: bool = False,
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
        matmul: bool. Also time a `MATMUL_SIDE`² float32 ``tf.linalg.matmul`` (a concrete
            function), keyed ``"matmul <side>x<side> <HxW>"`` once per shape (the same
            callable, so it takes part in every shape's rounds).

    Returns:
        dict of ``"<path> <HxW>"`` / ``"stage <name> <HxW>"`` -> timed callable; each
        callable's ``info`` holds the thread settings, calls and an output checksum
        (``"tflite dynamic"`` also its ``parity`` with the float32 Keras encoder: max abs
        difference / max |output|, on the same uint8 pixels).
    """
    import tensorflow as tf

    from benchmarks.encoder import serving_forward, set_tf_threads

    thread_note = set_tf_threads(threads, inter_threads)
    stages = paths is None if stages is None else stages
    encoder = _load_encoder(weights)
    forward_s2d = s2d_forward(encoder)
    dynamic = None  # the dynamic-range TFLite export's bytes, made once for every shape

    def plain(images):
        return as_sequence(encoder(images, training=False))

    candidates = {}
    if matmul:
        one = _tf_matmul(MATMUL_SIDE, seed)
        one()
        unit = _unit(one, 1, threads=thread_note, flops=2 * MATMUL_SIDE**3)
        candidates.update({f"{_matmul_path()} {label(s)}": unit for s in shapes})
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
                one = serving_forward(encoder, "tflite", images)
            elif path == "tflite s2d":
                one = _tflite_function(forward_s2d, spec, images, threads)
            elif path == "tflite dynamic":
                dynamic = dynamic or _tflite_export(encoder, quantize="dynamic")
                one = tflite_forward(dynamic, export_pixels(images), threads)
            else:
                raise ValueError(f"Unknown path {path!r}. Expected one of {TF_PATHS}")
            output = one()
            extra = {}
            if path in QUANTIZED_PATHS:
                extra["parity"] = _parity(
                    output, plain(export_pixels(images).astype("float32") / 255)
                )
            candidates[f"{path} {label(shape)}"] = _unit(
                one, calls, threads=thread_note, checksum=_checksum(output), **extra
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


def _matmul_path() -> str:
    return f"matmul {MATMUL_SIDE}x{MATMUL_SIDE}"


def _tf_matmul(side: int, seed: int = 0):
    """A `side`² float32 ``tf.linalg.matmul`` as a concrete function on two constants."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    a, b = (tf.constant(rng.random((side, side), dtype=np.float32)) for _ in range(2))
    spec = tf.TensorSpec((side, side), tf.float32)
    run = tf.function(tf.linalg.matmul).get_concrete_function(spec, spec)
    return lambda: run(a, b)


def _parity(output, reference) -> float:
    """Max abs difference / max |reference|, both as ``(1, positions, channels)``."""
    reference = np.asarray(reference, dtype=np.float64)
    output = np.asarray(output, dtype=np.float64).reshape(reference.shape)
    return float(np.max(np.abs(output - reference)) / max(np.max(np.abs(reference)), 1e-12))


def _tflite_export(encoder, quantize: str | None = None) -> bytes:
    """The bytes of `export_model`'s TFLite file of `encoder` (uint8 ``serve`` signature)."""
    from im2latex_encoder.export import export_model

    with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
        out = os.path.join(folder, "encoder.tflite")
        export_model(encoder, out, format="tflite", quantize=quantize)
        with open(out, "rb") as handle:
            return handle.read()


def _tflite_function(function, spec, images: np.ndarray, threads: int):
    """Convert a tf.function (float32 in) to TFLite and return a forward pass under LiteRT."""
    import tensorflow as tf

    from im2latex_encoder.export.encoder import tflite_interpreter

    concrete = tf.function(function).get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    interpreter = tflite_interpreter(content=converter.convert(), num_threads=threads)
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
    matmul: bool = False,
) -> dict:
    """Worker factory: timed batch-1 PyTorch eager and TorchScript-frozen passes (and stages).

    Keys: ``"torch <HxW>"``, ``"torch frozen <HxW>"``, ``"torch stage <name> <HxW>"``,
    ``"torch frozen stage <name> <HxW>"``, and with `matmul` a `MATMUL_SIDE`² float32
    ``torch.matmul`` keyed ``"matmul <side>x<side> <HxW>"``. Arguments as
    `tf_latency_candidates`.
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
    if matmul:
        rng = np.random.default_rng(seed)
        a, b = (
            torch.from_numpy(rng.random((MATMUL_SIDE, MATMUL_SIDE), dtype=np.float32))
            for _ in range(2)
        )
        one = _in_inference_mode(lambda: torch.matmul(a, b))
        one()
        unit = _unit(one, 1, threads=thread_note, flops=2 * MATMUL_SIDE**3)
        candidates.update({f"{_matmul_path()} {label(s)}": unit for s in shapes})
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


def ort_latency_candidates(
    model: str,
    shapes: list,
    threads: int,
    base_calls: int = 20,
    seed: int = 0,
    spinning: bool = True,
) -> dict:
    """Worker factory: timed batch-1 ONNX Runtime passes of the library's ONNX export.

    `model` is the ``.onnx`` file `export_model(encoder, path, format="onnx")` wrote (its
    uint8 ``images`` input); it runs on the CPU execution provider with `threads` intra-op
    threads, inter-op 1, all graph optimizations. `spinning` False sets
    ``session.intra_op.allow_spinning`` to ``"0"``: the pool's threads sleep between calls
    instead of spinning. Keys: ``"ort <HxW>"``; other arguments as `tf_latency_candidates`.
    """
    import onnxruntime

    settings = onnxruntime.SessionOptions()
    settings.intra_op_num_threads = threads
    settings.inter_op_num_threads = 1
    settings.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spinning:
        settings.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(model, settings, providers=["CPUExecutionProvider"])
    thread_note = f"intra {threads}, inter 1 (onnxruntime {onnxruntime.__version__})"
    if not spinning:
        thread_note += ", no spinning"
    name = session.get_inputs()[0].name
    candidates = {}
    for shape in [tuple(s) for s in shapes]:
        feed = {name: export_pixels(_image(shape, seed))}
        one = lambda feed=feed: session.run(None, feed)[0]  # noqa: E731
        candidates[f"ort {label(shape)}"] = _unit(
            one, _calls(shape, base_calls), threads=thread_note, checksum=_checksum(one())
        )
    return candidates


def openvino_latency_candidates(
    model: str,
    shapes: list,
    threads: int,
    base_calls: int = 20,
    seed: int = 0,
    precision: str = "f32",
) -> dict:
    """Worker factory: timed batch-1 OpenVINO passes of the library's ONNX export.

    The same ``.onnx`` file as `ort_latency_candidates` (uint8 ``images`` in), read by
    OpenVINO's runtime and compiled for the CPU once per shape (a static batch-1 shape, as a
    deployed model is) with the ``LATENCY`` hint, ``INFERENCE_NUM_THREADS`` `threads` and
    ``INFERENCE_PRECISION_HINT`` `precision`; its input is bound once as a shared-memory
    tensor that each call copies its image into (OpenVINO's zero-copy input: ``infer([array])``
    wraps the array anew on every call, which cost 4-5% at the formula shapes). ``"f32"`` is
    float32 arithmetic (OpenVINO
    would otherwise pick bf16 on a CPU with bf16 units); ``"bf16"`` is that lower precision,
    keyed ``"openvino bf16 <HxW>"`` with its ``parity`` (max abs difference from the f32
    compile's output over its largest magnitude). Keys: ``"openvino <HxW>"``; other
    arguments as `tf_latency_candidates`.
    """
    import openvino

    if precision not in ("f32", "bf16"):
        raise ValueError(f"`precision` must be 'f32' or 'bf16'. Received: {precision!r}")
    core = openvino.Core()
    thread_note = f"{threads} threads, LATENCY hint, {precision} (openvino {openvino.__version__})"

    def compiled(shape, hint):
        network = core.read_model(model)
        network.reshape([1, *shape, 1])
        settings = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": hint}
        return core.compile_model(network, "CPU", {"PERFORMANCE_HINT": "LATENCY", **settings})

    candidates = {}
    for shape in [tuple(s) for s in shapes]:
        request = compiled(shape, precision).create_infer_request()
        pixels = export_pixels(_image(shape, seed))
        bound = pixels.copy()
        request.set_input_tensor(openvino.Tensor(bound, shared_memory=True))

        def one(request=request, pixels=pixels, bound=bound):
            np.copyto(bound, pixels)  # each call writes its image into the bound input
            request.infer()
            return request.get_output_tensor(0).data

        extra = {}
        if precision != "f32":
            reference = compiled(shape, "f32")([pixels])[0]
            extra["parity"] = _parity(np.array(one()), reference)
        path = "openvino" if precision == "f32" else f"openvino {precision}"
        candidates[f"{path} {label(shape)}"] = _unit(
            one, _calls(shape, base_calls), threads=thread_note, checksum=_checksum(one()), **extra
        )
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


def _export_onnx(weights: str, folder: str) -> tuple:
    """Write the library's ONNX export of the benchmark's encoder; ``(path or None, why not)``.

    Done in the parent (which already holds TensorFlow for the weights), so the ONNX Runtime
    workers import onnxruntime and numpy only.
    """
    import importlib.util

    missing = [m for m in ("onnxruntime", "tf2onnx") if importlib.util.find_spec(m) is None]
    if missing:
        return None, (
            f"{' and '.join(missing)} not installed (pip install 'im2latex-encoder[export]')"
        )
    import keras

    if keras.backend.backend() != "tensorflow":
        return (
            None,
            f"the ONNX export needs KERAS_BACKEND=tensorflow, not {keras.backend.backend()}",
        )
    from im2latex_encoder.export import ExportError, export_model

    path = os.path.join(folder, "encoder.onnx")
    try:
        export_model(_load_encoder(weights), path, format="onnx")
    except ExportError as error:
        return None, f"the ONNX export failed: {error}"
    return path, ""


def _workers(
    weights: str,
    shapes: list,
    threads: int,
    quick: bool,
    onnx_model: str | None = None,
    openvino: bool = False,
) -> dict:
    """The worker processes: name -> (factory, kwargs, env).

    ONNX Runtime's with `onnx_model`; OpenVINO's with `onnx_model` and `openvino` (installed).
    """
    base = 4 if quick else UNIT_CALLS
    tf_env = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    common = {"weights": weights, "shapes": shapes, "threads": threads, "base_calls": base}
    factory = "benchmarks.encoder_latency:tf_latency_candidates"
    torch_factory = "benchmarks.encoder_latency:torch_latency_candidates"
    workers = {
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
                "matmul": True,
            },
            tf_env,
        ),
        "torch": (torch_factory, {**common, "stages": False}, {}),
        "torch 1 thread": (
            torch_factory,
            {**common, "threads": 1, "stages": True, "matmul": True},
            {},
        ),
    }
    if onnx_model:
        ort_common = {k: v for k, v in common.items() if k != "weights"}
        for name, (ort_threads, spinning) in ORT_WORKERS.items():
            kwargs = {
                **ort_common,
                "model": onnx_model,
                "threads": ort_threads or threads,
                "spinning": spinning,
            }
            workers[name] = ("benchmarks.encoder_latency:ort_latency_candidates", kwargs, {})
        if openvino:
            for name, (ov_threads, precision) in OPENVINO_WORKERS.items():
                kwargs = {
                    **ort_common,
                    "model": onnx_model,
                    "threads": ov_threads or threads,
                    "precision": precision,
                }
                factory = "benchmarks.encoder_latency:openvino_latency_candidates"
                workers[name] = (factory, kwargs, {})
    return workers


def run(options: Options, shapes=None) -> Result:
    """Time batch-1 latency per shape and per stage in worker processes (module docstring).

    Example:
    >>> run(Options(quick=True)).status  # doctest: +SKIP
    'ok'
    """
    rounds = options.rounds(ROUNDS)
    threads = options.threads
    shapes = [list(s) for s in (SHAPES if shapes is None else shapes)]
    result = Result("encoder_latency")
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as folder:
        weights = _save_weights(folder)
        onnx_model, why_not = _export_onnx(weights, folder)
        if why_not:
            result.notes.append(f"ONNX Runtime and OpenVINO rows left out: {why_not}.")
        openvino = importlib.util.find_spec("openvino") is not None
        if onnx_model and not openvino:
            result.notes.append(
                "OpenVINO rows left out: openvino not installed (pip install "
                "'im2latex-encoder[openvino]')."
            )
        workers, candidates, info = [], {}, {}
        try:
            for name, (factory, kwargs, env) in _workers(
                weights, shapes, threads, options.quick, onnx_model, openvino
            ).items():
                try:
                    worker = SubprocessCandidate(factory, kwargs, env=env).__enter__()
                except RuntimeError as error:
                    if name not in {**ORT_WORKERS, **OPENVINO_WORKERS}:  # optional peers may fail
                        raise
                    result.notes.append(f"Worker {name!r} left out: it failed to start ({error}).")
                    continue
                workers.append(worker)
                for key, key_info in worker.info.items():
                    # Stage keys come from one worker per framework and stay unprefixed.
                    plain = name in UNPREFIXED_WORKERS or " stage " in f" {key}"
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


def ort_keys(shape) -> list:
    """ONNX Runtime candidates at `shape` (the library's ONNX export), one per `ORT_WORKERS`.

    Example:
    >>> ort_keys((48, 48))
    ['ort 48x48', 'ort spinning: ort 48x48', 'ort 1 thread: ort 48x48']
    """
    at = label(shape)
    return [
        f"ort {at}" if worker in UNPREFIXED_WORKERS else f"{worker}: ort {at}"
        for worker in ORT_WORKERS
    ]


def openvino_keys(shape) -> list:
    """OpenVINO candidates at `shape` (the library's ONNX export), one per `OPENVINO_WORKERS`.

    Example:
    >>> openvino_keys((48, 48))
    ['openvino 48x48', 'openvino 1 thread: openvino 48x48', 'openvino bf16 48x48']
    """
    at = label(shape)
    keys = []
    for worker, (_threads, precision) in OPENVINO_WORKERS.items():
        path = "openvino" if precision == "f32" else f"openvino {precision}"
        keys.append(f"{path} {at}" if worker in UNPREFIXED_WORKERS else f"{worker}: {path} {at}")
    return keys


def full_keys(shape) -> list:
    """The full-model candidates interleaved in one group at `shape`.

    Example:
    >>> full_keys((48, 48))[:3]
    ['torch 48x48', 'torch frozen 48x48', 'torch 1 thread: torch 48x48']
    """
    return torch_keys(shape) + tf_keys(shape) + ort_keys(shape) + openvino_keys(shape)


def ceiling_keys(shape) -> list:
    """The 1-thread float32 matmuls timed in the full-model group at `shape` (torch, tf).

    Example:
    >>> ceiling_keys((48, 48))
    ['torch 1 thread: matmul 1024x1024 48x48', 'tf 1 thread: matmul 1024x1024 48x48']
    """
    return [
        f"{worker}: {_matmul_path()} {label(shape)}" for worker in ("torch 1 thread", "tf 1 thread")
    ]


def path_of(key: str, shape) -> str:
    """The path of a full-model candidate key, without its worker prefix and shape.

    Example:
    >>> path_of("tf 1 thread: tflite dynamic 48x48", (48, 48))
    'tflite dynamic'
    """
    return key[: -len(label(shape)) - 1].split(": ")[-1]


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
    """Interleave each shape's full-model group (with the matmuls), then its stage group.

    The full-model group waits `SETTLE_SECONDS` before each candidate (its workers run
    multi-threaded pools); the stage group runs in the 1-thread workers and does not.
    """
    times = {}
    for shape in shapes:
        for keys, settle in (
            (full_keys(shape) + ceiling_keys(shape), SETTLE_SECONDS),
            (stage_keys(shape), 0.0),
        ):
            group = {key: candidates[key] for key in keys if key in candidates}
            start = time.perf_counter()
            times.update(interleave(group, rounds, warmup=1, settle=settle))
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
                note = info[key]["threads"]
                lower = QUANTIZED_PATHS.get(path_of(key, shape))
                if lower:
                    reference = "fp32 Keras encoder" if "tflite" in key else "fp32 compile"
                    note += (
                        f"; {lower}, not fp32; output within {info[key]['parity']:.1e} of the "
                        f"{reference} (max abs diff / max |output|)"
                    )
                result.figures.append(latency_figure(f"{key} b1", times[key], calls(key), note))
        best_torch = {
            kind: [
                max(values) for values in zip(*(per_call_rates(k) for k in torch_keys(shape, kind)))
            ]
            for kind in ("torch", "torch frozen")
        }
        candidates = [
            k for k in tf_keys(shape) + ort_keys(shape) + openvino_keys(shape) if k in times
        ]
        for key in candidates:
            path = key[: -len(at) - 1]
            lower = QUANTIZED_PATHS.get(path_of(key, shape))
            for kind in ("torch", "torch frozen"):
                result.ratios.append(
                    ratio(
                        f"{path}{f' ({lower}, not fp32)' if lower else ''} / {kind} "
                        f"(best threads) batch-1 calls/s, {at}",
                        per_call_rates(key),
                        best_torch[kind],
                        target=TARGET if path == "tf" else None,
                    )
                )
        # The fastest Keras-side path at this shape (float32 only; picked by its median ratio
        # to frozen; picking the best of many noisy candidates flatters it a little).
        fastest = max(
            [k for k in candidates if path_of(k, shape) not in QUANTIZED_PATHS],
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
        def worst(reference, keys):
            return max(
                [
                    abs(info[k]["checksum"][0] - reference[0]) / max(abs(reference[0]), 1e-12)
                    for k in keys
                    if k in info and "checksum" in info[k]
                ],
                default=float("nan"),
            )

        float_input = [k for k in full_keys(shape) if path_of(k, shape) not in UINT8_PATHS]
        uint8_input = [
            k
            for k in full_keys(shape)
            if path_of(k, shape) in UINT8_PATHS and path_of(k, shape) not in QUANTIZED_PATHS
        ]
        result.notes.append(
            f"{at}: every float32-input path's output sum within "
            f"{worst(info[f'tf {at}']['checksum'], float_input):.1e} (relative) of the tf "
            "path's; the float32 exports fed uint8 pixels (tflite, ort, openvino) within "
            f"{worst(info[f'tflite {at}']['checksum'], uint8_input):.1e} of the tflite path's "
            "(`export_model` checks their parity with the Keras model)."
        )
        _report_ceiling(result, times, info, shape)
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
        "'ort': the library's ONNX export (`export_model(..., format='onnx')`, uint8 input) "
        "under ONNX Runtime, CPU execution provider, all graph optimizations, inter-op 1; "
        "'ort' with a pool that sleeps between calls, 'ort spinning' with ONNX Runtime's "
        "default spinning pool; an fp32 Keras-side path like the TFLite export. "
        "'tflite dynamic': the TFLite export with `quantize='dynamic'` (int8 weights; XNNPACK "
        "may quantize activations on the fly), a different precision: its ratios carry no "
        "target and it is never the fastest path. 'openvino': the same ONNX file under "
        "OpenVINO's CPU runtime, compiled per shape with the LATENCY hint and f32 inference "
        "precision, an fp32 Keras-side path; 'openvino bf16' the same in bf16 (a different "
        "precision, reported like 'tflite dynamic')."
    )
    result.notes.append(
        f"'ceiling' rows: a {MATMUL_SIDE}² float32 matmul on one thread (torch.matmul in the "
        "'torch 1 thread' worker, a tf.linalg.matmul concrete function in 'tf 1 thread'), timed "
        "in each shape's full-model rounds; each 1-thread path's GFLOP/s (`encoder_flops`: 2 × "
        "the convs' multiply-adds) over the faster matmul of the same round. 'needed for 1.2x "
        "TorchScript' = 1.2 × TorchScript's share: above 1, a 1.2× faster fp32 path would "
        "have to beat this CPU's single-core fp32 matmul rate."
    )
    result.notes.append(
        "'torch' / 'torch frozen (best threads)': in each round, the faster of the PyTorch "
        f"worker with {threads} threads and the one with 1 thread, so each Keras-side path "
        "is compared with PyTorch's best thread setting on this machine at that moment."
    )
    result.notes.append(
        "Full-model candidates of a shape are one interleaved group, its stages another; "
        "ratios are medians of per-round ratios (range in the table). In the full-model group "
        f"every candidate is timed after {SETTLE_SECONDS * 1000:.0f} ms idle, so a spinning "
        "pool of the previous worker has gone to sleep."
    )


def _report_ceiling(result: Result, times: dict, info: dict, shape) -> None:
    """The single-core fp32 ceiling rows at `shape` (module docstring); skipped without matmuls."""
    at = label(shape)
    matmuls = [k for k in ceiling_keys(shape) if k in times]
    if not matmuls:
        return
    matmul_rates = []
    for key in matmuls:
        work = info[key]["calls"] * info[key]["flops"] / 1e9
        result.figures.append(
            rate_figure(
                f"ceiling: {key.split(': ')[0]} fp32 matmul {MATMUL_SIDE}x{MATMUL_SIDE} "
                f"GFLOP/s, {at} rounds",
                times[key],
                work,
                "GFLOP/s",
                info[key]["threads"],
            )
        )
        matmul_rates.append(rates(times[key], work))
    per_round = [max(values) for values in zip(*matmul_rates)]
    flops = encoder_flops(shape)
    shares = {}
    for name, prefix in SINGLE_THREAD_PATHS.items():
        key = f"{prefix} {at}"
        if key not in times:
            continue
        work = info[key]["calls"] * flops / 1e9
        result.figures.append(
            rate_figure(
                f"ceiling: {name} GFLOP/s, {at}",
                times[key],
                work,
                "GFLOP/s",
                f"{flops / 1e6:.1f} MFLOP per call (encoder_flops)",
            )
        )
        shares[name] = rates(times[key], work)
        result.ratios.append(
            ratio(
                f"ceiling: {name} GFLOP/s / 1-thread fp32 matmul GFLOP/s, {at}",
                shares[name],
                per_round,
            )
        )
    if "TorchScript 1 thread" in shares:
        result.ratios.append(
            ratio(
                f"ceiling: needed for {TARGET}x TorchScript, GFLOP/s / 1-thread fp32 matmul "
                f"GFLOP/s, {at}",
                [TARGET * g for g in shares["TorchScript 1 thread"]],
                per_round,
            )
        )
