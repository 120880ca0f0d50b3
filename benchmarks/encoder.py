"""Encoder inference: Keras/TensorFlow vs a PyTorch peer, the machine's limit, bf16, JAX.

What it measures, in one run. Every comparison is its own short group of 2–4 candidates
interleaved round by round (see `benchmarks._harness`), so both sides of a ratio run within a
second of each other; a figure pools all rounds of its candidate across groups.

- **TF inference path**: `SymbolEncoder` (the seed stack, fp32) through `model.predict`,
  `model.predict_on_batch`, a `tf.function` of the call, the same with `jit_compile=True`
  (XLA), its concrete function (called directly), and the two TensorFlow exports of
  `im2latex_encoder.export.export_model` with their uint8 `serve` signature: the SavedModel
  (`tf.saved_model.load`) and the TFLite file (LiteRT, XNNPACK), at both sizes,
  batch 64 and batch 1. The fastest path at each size and batch is the one the rest of the
  benchmark calls "tf" (bf16 and oneDNN-off compare like with like, on the fastest in-process path).
- **Throughput** (images/s, batch 64) at 128×128 and 64×512 of: tf fp32; the same
  architecture in PyTorch (eager, channels-last, `torch.inference_mode`, same thread count,
  weights copied from the Keras model and outputs checked equal; also TorchScript-frozen,
  PyTorch's fastest CPU inference path without a compiler); tf with
  `dtype="mixed_bfloat16"` (with the bf16/fp32 ratio of a 2048² TF matmul, the hardware's
  ceiling for it); Keras on the JAX backend (a worker subprocess with
  `KERAS_BACKEND=jax`, `jax.jit` of `stateless_call`); tf with `TF_ENABLE_ONEDNN_OPTS=0`
  (a worker subprocess).
- **The machine's limit**: achieved GFLOP/s of tf fp32, counting conv FLOPs analytically
  (2·K·K·Cin·Cout·H_out·W_out per conv; bias, ReLU and pooling not counted), as a fraction of
  the faster of numpy's and TensorFlow's 2048² float32 matmul GFLOP/s, timed in the same rounds.
- **Stages**: each conv (+ bias + ReLU) and each max pool alone at 128×128 batch 64, as TF
  graphs: each conv's GFLOP/s and each stage's share of the time (where the gap to the
  matmul is).
- **Latency** (ms per image at batch 1) of tf, torch (eager and TorchScript-frozen) and JAX at
  both sizes.
- **ONNX Runtime** (when installed, the `export` extra): the ONNX export's throughput and
  latency, for reference; not a TensorFlow path, so never "tf".

Targets: tf ≥ 1.0× torch, conv GFLOP/s ≥ 0.85× matmul GFLOP/s, bf16 ≥ 1.5× fp32 images/s.
"""

from __future__ import annotations

import importlib.util
import os
import statistics

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

#: (height, width) sizes measured: a symbol and a formula-shaped strip.
SHAPES = ((128, 128), (64, 512))
THROUGHPUT_BATCH = 64
MATMUL_SIDE = 2048
#: `Options(tiny=True)`'s sizes (see `benchmarks._harness.tiny_sizes`).
TINY = {"SHAPES": ((24, 40),), "THROUGHPUT_BATCH": 2, "MATMUL_SIDE": 64}
#: Exported for serving by `im2latex_encoder.export.export_model` (uint8 in, TensorFlow runtimes).
SERVING_PATHS = ("savedmodel", "tflite")
TF_PATHS = (
    "predict",
    "predict_on_batch",
    "tf.function",
    "tf.function+xla",
    "concrete function",
    *SERVING_PATHS,
)


def conv_flops(shape, filters=(32, 64, 64), kernel_size=3, channels=1, pool=2) -> int:
    """Multiply-add FLOPs of the seed stack's convs for one image (valid padding).

    Args:
        shape: (height, width) of the input image.
        filters: filters per conv stage; a `pool`×`pool` max pool sits between stages.
        kernel_size: square kernel side.
        channels: input channels.
        pool: pool size between stages.

    Example:
    >>> round(conv_flops((128, 128)) / 1e6, 1)
    204.1
    """
    height, width = shape
    total, c_in = 0, channels
    for index, c_out in enumerate(filters):
        height, width = height - kernel_size + 1, width - kernel_size + 1
        total += 2 * kernel_size * kernel_size * c_in * c_out * height * width
        c_in = c_out
        if index < len(filters) - 1:
            height, width = height // pool, width // pool
    return total


def _key(kind: str, shape, batch: int) -> str:
    return f"{kind} {shape[0]}x{shape[1]} b{batch}"


def _images(batch: int, shape, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((batch, shape[0], shape[1], 1), dtype=np.float32)


def set_tf_threads(threads: int, inter_threads: int | None = None) -> str:
    """Set TensorFlow's thread pools (before its runtime starts); say what they are."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # the many one-shape tf.functions trip a retracing warning
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(inter_threads or threads)
    except RuntimeError:  # the runtime already started in this process
        pass
    return (
        f"intra {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, "
        f"inter {tf.config.threading.get_inter_op_parallelism_threads() or 'default'}"
    )


def keras_candidates(
    configs: list, threads: int, seed: int = 0, inter_threads: int | None = None
) -> dict:
    """Build timed `SymbolEncoder` forward passes on the current Keras backend.

    Args:
        configs: list of dicts with ``key``, ``path`` (one of `TF_PATHS` on TensorFlow;
            ``"jax.jit"`` or ``"predict_on_batch"`` on JAX), ``dtype``, ``batch``, ``shape``,
            ``calls`` (forward passes per unit of work).
        threads: int. Intra/inter-op threads for TensorFlow.
        seed: int. Seed for weights and images.
        inter_threads: int or None. TensorFlow's inter-op threads (`threads` when None).

    Returns:
        dict of key -> callable running ``calls`` forward passes and returning the seconds.

    Example:
    >>> candidates = keras_candidates([{"key": "k", "path": "tf.function", "dtype": "float32",
    ...     "batch": 2, "shape": [32, 32], "calls": 1}], threads=2)  # doctest: +SKIP
    """
    import keras

    backend = keras.backend.backend()
    thread_note = (
        "XLA default pool" if backend != "tensorflow" else set_tf_threads(threads, inter_threads)
    )
    from im2latex_encoder import SymbolEncoder

    keras.utils.set_random_seed(seed)
    encoders = {}
    candidates = {}
    for config in configs:
        dtype = config.get("dtype", "float32")
        if dtype not in encoders:
            encoders[dtype] = SymbolEncoder(dtype=dtype)
        encoder = encoders[dtype]
        forward = _forward(
            encoder, backend, config["path"], _images(config["batch"], tuple(config["shape"]), seed)
        )
        calls = int(config.get("calls", 1))
        run = timed(lambda forward=forward, calls=calls: [forward() for _ in range(calls)])
        run.info = {"backend": backend, "threads": thread_note, **config}
        candidates[config["key"]] = run
    return candidates


def _forward(encoder, backend: str, path: str, images: np.ndarray):
    """Return a no-argument callable running one forward pass to completion."""
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(images)
        if path == "predict":  # what `SymbolClassifier.predict_labels` goes through
            return lambda: encoder.predict(x, batch_size=len(images), verbose=0)
        if path == "predict_on_batch":
            return lambda: encoder.predict_on_batch(x)
        if path in ("tf.function", "tf.function+xla", "concrete function"):
            function = tf.function(
                lambda batch: encoder(batch, training=False),
                jit_compile=path.endswith("xla"),
                reduce_retracing=True,
            )
            if path == "concrete function":  # skips tf.function's per-call argument matching
                function = function.get_concrete_function(tf.TensorSpec(x.shape, x.dtype))
            return lambda: function(x)
        if path in (*SERVING_PATHS, "onnxruntime"):
            return serving_forward(encoder, path, images)
    elif backend == "jax":
        import jax

        x = jax.numpy.asarray(images)
        if path == "predict_on_batch":
            return lambda: encoder.predict_on_batch(x)
        if path == "jax.jit":
            trainable = [v.value for v in encoder.trainable_variables]
            non_trainable = [v.value for v in encoder.non_trainable_variables]

            @jax.jit
            def function(trainable, non_trainable, batch):
                return encoder.stateless_call(trainable, non_trainable, batch, training=False)[0]

            return lambda: function(trainable, non_trainable, x).block_until_ready()
    raise ValueError(f"Unknown inference path {path!r} for backend {backend!r}")


def serving_forward(encoder, path: str, images: np.ndarray):
    """A forward pass through `export_model`'s output: the uint8 `serve` signature, as deployed.

    `path` is ``"savedmodel"`` (`tf.saved_model.load`), ``"tflite"`` (LiteRT's interpreter,
    else TensorFlow's `tf.lite.Interpreter`; XNNPACK) or ``"onnxruntime"``; the runtimes get
    TensorFlow's intra-op thread count. The export is written to a temporary folder and read
    back into memory, so nothing stays on disk; `export_model` itself checks its parity with
    the encoder.
    """
    import tempfile

    import tensorflow as tf

    from im2latex_encoder.export import export_model

    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    pixels = export_pixels(images)
    suffix = {"savedmodel": "", "tflite": ".tflite", "onnxruntime": ".onnx"}[path]
    with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
        out = f"{folder}/encoder{suffix}"
        export_model(encoder, out, format=path.replace("runtime", ""))
        if path == "savedmodel":
            loaded = tf.saved_model.load(out)  # owns the variables: keep it referenced
            x = tf.constant(pixels)
            return lambda: loaded.serve(x)
        with open(out, "rb") as handle:
            content = handle.read()
    if path == "onnxruntime":
        import onnxruntime

        settings = onnxruntime.SessionOptions()
        settings.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(
            content, settings, providers=["CPUExecutionProvider"]
        )
        feed = {session.get_inputs()[0].name: pixels}
        return lambda: session.run(None, feed)
    return tflite_forward(content, pixels, threads)


def export_pixels(images: np.ndarray) -> np.ndarray:
    """The uint8 pixels an exported ``serve`` signature takes (ink 255 on 0) for float `images`.

    Example:
    >>> export_pixels(np.array([0.0, 0.5, 1.0])).tolist()
    [0, 128, 255]
    """
    return np.round(images * 255).astype(np.uint8)


def tflite_forward(content: bytes, pixels: np.ndarray, threads: int):
    """A forward pass of a TFLite export's bytes on uint8 `pixels`: LiteRT with XNNPACK.

    Example:
    >>> forward = tflite_forward(tflite_bytes, pixels, threads=1)  # doctest: +SKIP
    >>> forward().shape  # doctest: +SKIP
    (1, 784, 64)
    """
    from im2latex_encoder.export.encoder import tflite_interpreter

    interpreter = tflite_interpreter(content=content, num_threads=threads)
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(source["index"], pixels.shape)
    interpreter.allocate_tensors()

    def forward():
        interpreter.set_tensor(source["index"], pixels)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"])

    return forward


def torch_encoder(filters=(32, 64, 64), kernel_size=3, channels=1):
    """The seed stack written in PyTorch (NCHW modules, used channels-last).

    Example:
    >>> torch_encoder()[0].out_channels  # doctest: +SKIP
    32
    """
    import torch

    modules, c_in = [], channels
    for index, c_out in enumerate(filters):
        modules += [torch.nn.Conv2d(c_in, c_out, kernel_size), torch.nn.ReLU()]
        if index < len(filters) - 1:
            modules.append(torch.nn.MaxPool2d(2))
        c_in = c_out
    return torch.nn.Sequential(*modules).eval()


def copy_keras_weights(keras_encoder, torch_model) -> None:
    """Copy a `SymbolEncoder`'s conv kernels (HWIO) and biases into `torch_encoder()` (OIHW).

    Example:
    >>> copy_keras_weights(SymbolEncoder(), torch_encoder())  # doctest: +SKIP
    """
    import torch

    convs = [m for m in torch_model if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        for conv, keras_conv in zip(convs, keras_encoder.convs):
            kernel, bias = (np.asarray(w) for w in keras_conv.get_weights())
            conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
            conv.bias.copy_(torch.from_numpy(bias))


def torch_candidates(configs: list, threads: int, keras_encoder=None, seed: int = 0) -> dict:
    """Build timed PyTorch forward passes (channels-last, `inference_mode`), output as a sequence.

    Args:
        configs: list of dicts with ``key``, ``batch``, ``shape``, ``calls`` and optionally
            ``frozen`` (also build a TorchScript-frozen model, keyed ``"torch frozen ..."``).
        threads: int. `torch.set_num_threads`.
        keras_encoder: `SymbolEncoder` or None. Weights to copy (random weights when None).
        seed: int. Seed for images.

    Example:
    >>> torch_candidates([{"key": "t", "batch": 1, "shape": [32, 32], "calls": 1}], 2)  # doctest: +SKIP
    """
    import torch

    torch.set_num_threads(threads)
    model = torch_encoder()
    if keras_encoder is not None:
        copy_keras_weights(keras_encoder, model)
    model = model.to(memory_format=torch.channels_last)
    candidates = {}
    for config in configs:
        batch, shape = config["batch"], tuple(config["shape"])
        x = torch.from_numpy(_images(batch, shape, seed).transpose(0, 3, 1, 2).copy())
        x = x.contiguous(memory_format=torch.channels_last)

        calls = int(config.get("calls", 1))
        run = timed(_torch_forward(model, x, batch, calls))
        run.info = {"torch_threads": torch.get_num_threads(), **config}
        candidates[config["key"]] = run
        if config.get("frozen"):
            # TorchScript freezing pre-packs the weights for oneDNN and fuses conv + ReLU:
            # PyTorch's own fastest CPU inference path without a compiler toolchain.
            with torch.inference_mode():
                frozen = torch.jit.optimize_for_inference(
                    torch.jit.freeze(torch.jit.trace(model, x))
                )
            run = timed(_torch_forward(frozen, x, batch, calls))
            run.info = {"torch_threads": torch.get_num_threads(), **config}
            candidates[config["key"].replace("torch", "torch frozen", 1)] = run
    return candidates


def matmul_candidates(side: int | None = None) -> dict:
    """Timed `side`² matmuls: float32 in numpy (its BLAS) and TensorFlow, bfloat16 in TensorFlow.

    `side` defaults to `MATMUL_SIDE`, read at the call (tiny mode shrinks it).

    Example:
    >>> sorted(matmul_candidates(64))
    ['matmul numpy', 'matmul tf', 'matmul tf bf16']
    """
    import tensorflow as tf

    side = MATMUL_SIDE if side is None else side
    rng = np.random.default_rng(0)
    a = rng.standard_normal((side, side), dtype=np.float32)
    b = rng.standard_normal((side, side), dtype=np.float32)
    ta, tb = tf.constant(a), tf.constant(b)
    ha, hb = tf.cast(ta, tf.bfloat16), tf.cast(tb, tf.bfloat16)
    tf_matmul = tf.function(tf.linalg.matmul)
    return {
        "matmul numpy": timed(lambda: a @ b),
        "matmul tf": timed(lambda: tf_matmul(ta, tb)),
        "matmul tf bf16": timed(lambda: tf_matmul(ha, hb)),
    }


def stage_candidates(shape, batch: int, filters=(32, 64, 64), kernel_size=3, seed: int = 0):
    """Each stage of the seed stack alone, as TensorFlow graphs: where the forward time goes.

    Every conv (with its bias and ReLU, which oneDNN fuses into it) and every 2×2 max pool is
    its own concrete function fed a tensor of the shape it sees inside the encoder, so the
    stages' times add up to about one forward pass.

    Returns:
        dict of stage name (``"conv1"``, ``"pool1"``, ...) -> (timed callable, conv FLOPs of
        one call: 0 for pools).

    Example:
    >>> sorted(stage_candidates((32, 32), 2))
    ['conv1', 'conv2', 'conv3', 'pool1', 'pool2']
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    stages, height, width, c_in = {}, shape[0], shape[1], 1
    for index, c_out in enumerate(filters, start=1):
        kernel = tf.constant(
            rng.standard_normal((kernel_size, kernel_size, c_in, c_out), dtype=np.float32) * 0.1
        )
        bias = tf.constant(np.zeros(c_out, np.float32))
        x = tf.constant(rng.random((batch, height, width, c_in), dtype=np.float32))
        conv = tf.function(_conv_stage(kernel, bias)).get_concrete_function(x)
        height, width = height - kernel_size + 1, width - kernel_size + 1
        flops = 2 * kernel_size**2 * c_in * c_out * height * width * batch
        stages[f"conv{index}"] = (timed(lambda conv=conv, x=x: conv(x)), flops)
        c_in = c_out
        if index < len(filters):
            y = tf.constant(rng.random((batch, height, width, c_out), dtype=np.float32))
            pool = tf.function(lambda y: tf.nn.max_pool2d(y, 2, 2, "VALID")).get_concrete_function(
                y
            )
            stages[f"pool{index}"] = (timed(lambda pool=pool, y=y: pool(y)), 0)
            height, width = height // 2, width // 2
    return stages


def _check_torch_matches(keras_encoder, threads: int) -> float:
    """Max abs difference between the Keras encoder and its PyTorch copy on one batch."""
    import torch

    torch.set_num_threads(threads)
    model = torch_encoder()
    copy_keras_weights(keras_encoder, model)
    images = _images(2, (64, 80), seed=1)
    expected = np.asarray(keras_encoder(images))
    with torch.inference_mode():
        y = model(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))
        got = y.permute(0, 2, 3, 1).reshape(2, -1, y.shape[1]).numpy()
    return float(np.abs(expected - got).max())


def run(options: Options) -> Result:
    """Measure encoder inference (see the module docstring) and return its figures and ratios.

    Example:
    >>> run(Options(quick=True)).status  # doctest: +SKIP
    'ok'
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        from benchmarks._harness import BenchmarkUnavailable

        raise BenchmarkUnavailable("run with KERAS_BACKEND=tensorflow (JAX runs in a worker)")
    threads = options.threads
    rounds = options.rounds(9)
    calls = 1  # one batch per unit keeps the rounds short, so a ratio's two sides sit close
    latency_calls = 5 if options.quick else 20
    result = Result("encoder")

    # --- Which TensorFlow inference path is fastest, at each size and batch? -----------
    best, thread_note = {}, ""
    for shape in SHAPES:
        best[shape], thread_note = _fastest_tf_paths(
            shape, threads, rounds, calls, latency_calls, result
        )
    result.notes.append(
        "Fastest TF path: "
        + "; ".join(
            f"{shape[0]}x{shape[1]}: {best[shape][THROUGHPUT_BATCH]} at batch {THROUGHPUT_BATCH}, "
            f"{best[shape][1]} at batch 1"
            for shape in SHAPES
        )
        + ". 'tf' below means that path."
    )

    # --- Throughput and latency against the peers, both shapes ------------------------
    # Each comparison is its own short interleaved group (2–3 candidates), so the two sides of
    # a ratio run within a second of each other however the machine's load drifts.
    tf_configs, torch_configs, worker_configs, onednn_configs = [], [], [], []
    has_onnxruntime = importlib.util.find_spec("onnxruntime") is not None
    peers = ("torch", "torch frozen", "jax") + (("onnx",) if has_onnxruntime else ())
    if not has_onnxruntime:
        result.notes.append(
            "ONNX Runtime not installed (pip install 'im2latex-encoder[export]')"
            ": its figures are left out."
        )
    in_process, fp32_reference = {}, {}
    for shape in SHAPES:
        fastest = best[shape][THROUGHPUT_BATCH]
        in_process[shape] = fastest if fastest not in SERVING_PATHS else "concrete function"
        fp32_reference[shape] = "tf" if in_process[shape] == fastest else "tf in-process"
        for batch, n in ((THROUGHPUT_BATCH, calls), (1, latency_calls)):
            common = {"batch": batch, "shape": list(shape), "calls": n}
            tf_configs.append(
                {
                    "key": _key("tf", shape, batch),
                    "path": best[shape][batch],
                    "dtype": "float32",
                    **common,
                }
            )
            if has_onnxruntime:
                tf_configs.append(
                    {
                        "key": _key("onnx", shape, batch),
                        "path": "onnxruntime",
                        "dtype": "float32",
                        **common,
                    }
                )
            torch_configs.append({"key": _key("torch", shape, batch), "frozen": True, **common})
            worker_configs.append(
                {"key": _key("jax", shape, batch), "path": "jax.jit", "dtype": "float32", **common}
            )
            if batch == THROUGHPUT_BATCH:
                # bf16 and oneDNN-off are settings of the in-process model: compared with fp32
                # on the same in-process path (the exports are fp32 and bring their runtimes).
                if in_process[shape] != fastest:
                    tf_configs.append(
                        {
                            "key": _key(fp32_reference[shape], shape, batch),
                            "path": in_process[shape],
                            "dtype": "float32",
                            **common,
                        }
                    )
                tf_configs.append(
                    {
                        "key": _key("tf bf16", shape, batch),
                        "path": in_process[shape],
                        "dtype": "mixed_bfloat16",
                        **common,
                    }
                )
                onednn_configs.append(
                    {
                        "key": _key("tf onednn-off", shape, batch),
                        "path": in_process[shape],
                        "dtype": "float32",
                        **common,
                    }
                )
    candidates = keras_candidates(tf_configs, threads)
    from im2latex_encoder import SymbolEncoder

    keras.utils.set_random_seed(0)
    reference = SymbolEncoder()
    difference = _check_torch_matches(reference, threads)
    result.notes.append(
        f"PyTorch peer: same weights as a Keras encoder give outputs within "
        f"{difference:.1e} (max abs) of it."
    )
    candidates.update(torch_candidates(torch_configs, threads, keras_encoder=reference))
    candidates.update(matmul_candidates())
    factory = "benchmarks.encoder:keras_candidates"
    groups = {}  # group name -> {candidate key: [seconds per round]}
    with (
        SubprocessCandidate(
            factory, {"configs": worker_configs, "threads": threads}, env={"KERAS_BACKEND": "jax"}
        ) as jax_worker,
        SubprocessCandidate(
            factory,
            {"configs": onednn_configs, "threads": threads},
            env={"KERAS_BACKEND": "tensorflow", "TF_ENABLE_ONEDNN_OPTS": "0"},
        ) as onednn_worker,
    ):
        for config in worker_configs:
            candidates[config["key"]] = jax_worker.candidate(config["key"])
        for config in onednn_configs:
            candidates[config["key"]] = onednn_worker.candidate(config["key"])
        plan = {"bf16 matmul": ["matmul tf", "matmul tf bf16"]}
        for shape in SHAPES:
            label, b = f"{shape[0]}x{shape[1]}", THROUGHPUT_BATCH
            plan.update(
                {
                    f"torch {label}": [_key(k, shape, b) for k in ("tf", "torch", "torch frozen")],
                    f"matmul {label}": [_key("tf", shape, b), "matmul numpy", "matmul tf"],
                    f"bf16 {label}": [
                        _key(k, shape, b) for k in (fp32_reference[shape], "tf bf16")
                    ],
                    f"jax {label}": [_key(k, shape, b) for k in ("tf", "jax")],
                    f"onednn {label}": [
                        _key(k, shape, b) for k in (fp32_reference[shape], "tf onednn-off")
                    ],
                    f"latency {label}": [_key(k, shape, 1) for k in ("tf", *peers)],
                }
            )
            if has_onnxruntime:
                plan[f"onnx {label}"] = [_key(k, shape, b) for k in ("tf", "onnx")]
        for group, keys in plan.items():
            groups[group] = interleave({k: candidates[k] for k in keys}, rounds, warmup=1)
    result.figures += _stage_figures(rounds)

    def pooled(key):
        return [t for group in groups.values() for t in group.get(key, [])]

    matmul_gflops = 2 * MATMUL_SIDE**3 / 1e9
    for name in ("matmul numpy", "matmul tf", "matmul tf bf16"):
        precision = "bf16" if name.endswith("bf16") else "fp32"
        result.figures.append(
            rate_figure(
                f"{name.replace(' bf16', '')} {MATMUL_SIDE}² {precision}",
                pooled(name),
                matmul_gflops,
                "GFLOP/s",
            )
        )
    g = groups["bf16 matmul"]
    result.ratios.append(
        ratio(
            "bf16 / fp32 matmul GFLOP/s (tf): the hardware's bf16 ceiling",
            rates(g["matmul tf bf16"], 1),
            rates(g["matmul tf"], 1),
        )
    )
    for shape in SHAPES:
        label = f"{shape[0]}x{shape[1]}"
        batch, work = THROUGHPUT_BATCH, THROUGHPUT_BATCH * calls
        flops = conv_flops(shape) / 1e9
        key = lambda kind, b=batch, s=shape: _key(kind, s, b)  # noqa: E731
        for kind, note in (
            ("tf", f"{best[shape][batch]}; all its rounds"),
            ("torch", "eager, channels-last"),
            ("torch frozen", "jit.freeze + optimize_for_inference"),
            ("tf bf16", f"mixed_bfloat16, {in_process[shape]}"),
            ("jax", "Keras on JAX, jax.jit(stateless_call)"),
            ("tf onednn-off", "TF_ENABLE_ONEDNN_OPTS=0"),
            ("onnx", "the ONNX export under ONNX Runtime"),
        ):
            if not pooled(key(kind)):
                continue
            result.figures.append(
                rate_figure(f"{kind} {label} b{batch}", pooled(key(kind)), work, "images/s", note)
            )
        result.figures.append(
            rate_figure(
                f"tf conv {label} b{batch}",
                pooled(key("tf")),
                work * flops,
                "GFLOP/s",
                f"{flops * 1e3:.0f} MFLOP/image",
            )
        )

        def side_by_side(group, numerator, denominator, scale=1.0, label=label):
            times = groups[f"{group} {label}"]
            return rates(times[numerator], scale), rates(times[denominator], 1)

        g = groups[f"matmul {label}"]
        per_round_matmul = [
            max(a, b)
            for a, b in zip(
                rates(g["matmul numpy"], matmul_gflops), rates(g["matmul tf"], matmul_gflops)
            )
        ]
        result.ratios += [
            ratio(
                f"tf / torch images/s, {label}",
                *side_by_side("torch", key("tf"), key("torch")),
                target=1.0,
            ),
            ratio(
                f"tf / torch frozen images/s, {label}",
                *side_by_side("torch", key("tf"), key("torch frozen")),
            ),
            ratio(
                f"tf conv GFLOP/s / matmul GFLOP/s, {label}",
                rates(g[key("tf")], work * flops),
                per_round_matmul,
                target=0.85,
                note="matmul: the faster of numpy and tf in each round",
            ),
            ratio(
                f"bf16 / fp32 images/s (tf), {label}",
                *side_by_side("bf16", key("tf bf16"), key(fp32_reference[shape])),
                target=1.5,
            ),
            ratio(f"jax / tf images/s, {label}", *side_by_side("jax", key("jax"), key("tf"))),
            ratio(
                f"oneDNN on / off images/s (tf), {label}",
                *side_by_side("onednn", key(fp32_reference[shape]), key("tf onednn-off")),
            ),
        ]
        for kind in ("tf", *peers):
            result.figures.append(
                latency_figure(
                    f"{kind} {label} b1",
                    groups[f"latency {label}"][key(kind, 1)],
                    latency_calls,
                    best[shape][1] if kind == "tf" else "",
                )
            )
        result.ratios += [
            ratio(
                f"tf / torch batch-1 calls/s, {label}",
                *side_by_side("latency", key("tf", 1), key("torch", 1)),
                target=1.0,
            ),
            ratio(
                f"tf / torch frozen batch-1 calls/s, {label}",
                *side_by_side("latency", key("tf", 1), key("torch frozen", 1)),
            ),
            ratio(
                f"jax / tf batch-1 calls/s, {label}",
                *side_by_side("latency", key("jax", 1), key("tf", 1)),
            ),
        ]
        if has_onnxruntime:
            result.ratios += [
                ratio(
                    f"onnxruntime / tf images/s, {label}",
                    *side_by_side("onnx", key("onnx"), key("tf")),
                ),
                ratio(
                    f"onnxruntime / tf batch-1 calls/s, {label}",
                    *side_by_side("latency", key("onnx", 1), key("tf", 1)),
                ),
            ]
    result.notes.append(
        "Each ratio comes from its own short interleaved group (tf vs torch, "
        "tf vs matmul, tf vs bf16, tf vs jax, tf vs oneDNN-off, batch-1 "
        "latency); a figure pools every round of its candidate."
    )
    result.notes.append(
        f"Threads: TF {thread_note}; torch {threads}; JAX: XLA's default "
        f"pool ({os.cpu_count()} CPUs); numpy: its BLAS default."
    )
    return result


def _conv_stage(kernel, bias):
    import tensorflow as tf

    return lambda x: tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "VALID"), bias))


def _fastest_tf_paths(
    shape, threads: int, rounds: int, calls: int, latency_calls: int, result: Result
) -> tuple:
    """Time every `TF_PATHS` entry at `shape`, batch 64 and batch 1; add figures and ratios.

    Returns:
        ``({batch: fastest path}, TensorFlow's thread note)``. The fastest is picked by the
        median of per-round ratios against `predict`, so load that drifts mid-run cannot pick it.
    """
    label = f"{shape[0]}x{shape[1]}"
    batches = ((THROUGHPUT_BATCH, calls), (1, latency_calls))
    configs = [
        {
            "key": _key(path, shape, batch),
            "path": path,
            "dtype": "float32",
            "batch": batch,
            "shape": list(shape),
            "calls": n,
        }
        for batch, n in batches
        for path in TF_PATHS
    ]
    paths = keras_candidates(configs, threads)
    thread_note = next(iter(paths.values())).info["threads"]
    times = interleave(paths, rounds, warmup=2)
    del paths
    fastest = {}
    for batch, n in batches:
        for path in TF_PATHS:
            seconds = times[_key(path, shape, batch)]
            if batch == 1:
                result.figures.append(latency_figure(f"tf fp32 {path}, {label} b1", seconds, n))
            else:
                result.figures.append(
                    rate_figure(f"tf fp32 {path}, {label} b{batch}", seconds, batch * n, "images/s")
                )
        baseline = times[_key("predict", shape, batch)]
        fastest[batch] = max(
            TF_PATHS,
            key=lambda p: statistics.median(
                [a / b for a, b in zip(baseline, times[_key(p, shape, batch)])]
            ),
        )
        result.ratios += [
            ratio(
                f"{path} / predict, {label} b{batch}",
                rates(times[_key(path, shape, batch)], 1),
                rates(baseline, 1),
            )
            for path in TF_PATHS
            if path != "predict"
        ]
    return fastest, thread_note


def _stage_figures(rounds: int) -> list:
    """Per-stage time shares and conv GFLOP/s at the first shape, batch 64 (`stage_candidates`)."""
    shape, batch = SHAPES[0], THROUGHPUT_BATCH
    stages = stage_candidates(shape, batch)
    times = interleave({name: stage for name, (stage, _) in stages.items()}, rounds, warmup=1)
    total = sum(statistics.median(t) for t in times.values())
    figures = []
    for name, (_, flops) in stages.items():
        share = statistics.median(times[name]) / total
        label = f"stage {name} {shape[0]}x{shape[1]} b{batch}"
        if flops:
            figures.append(
                rate_figure(
                    label,
                    times[name],
                    flops / 1e9,
                    "GFLOP/s",
                    f"{share:.0%} of the stages' time, "
                    f"{flops / batch / conv_flops(shape):.1%} of the FLOPs",
                )
            )
        else:
            figures.append(
                latency_figure(
                    label, times[name], 1, f"{share:.0%} of the stages' time, no FLOPs counted"
                )
            )
    return figures


def _torch_forward(model, x, batch: int, calls: int):
    """A timed call: `calls` forward passes, each output flattened to the encoder's sequence."""
    import torch

    def forward():
        with torch.inference_mode():
            for _ in range(calls):
                y = model(x)
                y.permute(0, 2, 3, 1).reshape(batch, -1, y.shape[1])

    return forward
