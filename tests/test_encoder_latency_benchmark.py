"""The `encoder_latency` benchmark's candidates compute the encoder (no timings asserted)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture()
def weights(tmp_path):
    from benchmarks.encoder_latency import _save_weights

    return _save_weights(str(tmp_path), seed=7)


def test_s2d_forward_equals_the_encoder(weights):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the benchmark's TF side")
    from benchmarks.encoder_latency import _load_encoder, as_sequence, s2d_forward

    encoder = _load_encoder(weights)
    for shape in [(48, 48), (37, 61)]:
        images = np.random.default_rng(0).random((2, *shape, 1)).astype("float32")
        expected = np.asarray(as_sequence(encoder(images)))
        got = np.asarray(s2d_forward(encoder)(images))
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_tf_and_torch_workers_time_the_same_function(weights):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the benchmark's TF side")
    pytest.importorskip("torch")
    from benchmarks.encoder_latency import (
        STAGES,
        stage_keys,
        tf_latency_candidates,
        torch_latency_candidates,
    )

    shape = [40, 52]
    tf_side = tf_latency_candidates(
        weights, [shape], threads=1, paths=["tf", "tf s2d", "tflite s2d"], stages=True, base_calls=1
    )
    torch_side = torch_latency_candidates(weights, [shape], threads=1, base_calls=1)
    every = {**tf_side, **torch_side}
    assert set(stage_keys(shape)) <= set(every)
    assert {f"torch stage {s} 40x52" for s in STAGES} <= set(every)
    reference = tf_side["tf 40x52"].info["checksum"]
    for key in ("tf s2d 40x52", "tflite s2d 40x52"):
        np.testing.assert_allclose(tf_side[key].info["checksum"], reference, rtol=1e-5)
    for key in ("torch 40x52", "torch frozen 40x52"):
        np.testing.assert_allclose(torch_side[key].info["checksum"], reference, rtol=1e-5)
    assert every["stage conv1 40x52"]() >= 0.0  # a candidate runs and returns its seconds


def test_encoder_flops_counts_the_convs():
    from benchmarks.encoder_latency import encoder_flops

    # By hand at 128×128: valid 3×3 convs give 126², then pool → 63², conv → 61², pool →
    # 30², conv → 28²; 2 FLOPs per multiply-add, 9·Cin·Cout multiply-adds per output pixel.
    by_hand = 2 * 9 * (126 * 126 * 1 * 32 + 61 * 61 * 32 * 64 + 28 * 28 * 64 * 64)
    assert encoder_flops((128, 128)) == by_hand == 204_118_272


@pytest.mark.parametrize("filters", [(32, 64, 64), (8, 16)])
def test_encoder_flops_matches_the_keras_layers_output_shapes(filters):
    from benchmarks.encoder_latency import encoder_flops
    from im2latex_encoder import SymbolEncoder

    encoder = SymbolEncoder(filters=filters)
    x, total, channels = np.zeros((1, 37, 61, 1), "float32"), 0, 1
    for index, conv in enumerate(encoder.convs):
        y = conv(x)
        _, height, width, out = (int(d) for d in y.shape)
        total += 2 * 3 * 3 * channels * out * height * width
        channels, x = out, y
        if index < len(encoder.convs) - 1:
            x = encoder.pool(y)
    assert encoder_flops((37, 61), filters=filters) == total


def test_worker_table_has_the_onnxruntime_dynamic_range_and_ceiling_paths():
    from benchmarks.encoder_latency import (
        OPENVINO_WORKERS,
        ORT_WORKERS,
        TF_PATHS,
        THREAD_VARIANTS,
        _workers,
        ceiling_keys,
        full_keys,
    )

    workers = _workers("w.npz", [[48, 48]], threads=2, quick=True, onnx_model="e.onnx")
    assert set(ORT_WORKERS) == {"ort", "ort spinning", "ort 1 thread"} <= set(workers)
    for name, threads, spinning in (
        ("ort", 2, False),
        ("ort spinning", 2, True),
        ("ort 1 thread", 1, False),
    ):
        factory, kwargs, _ = workers[name]
        assert factory == "benchmarks.encoder_latency:ort_latency_candidates"
        assert kwargs["model"] == "e.onnx" and kwargs["threads"] == threads
        assert kwargs["spinning"] is spinning
    assert "tflite dynamic" in TF_PATHS and workers["tf"][1].get("paths") is None
    assert "tflite dynamic" in workers["tf 1 thread"][1]["paths"]
    assert "tflite dynamic" in THREAD_VARIANTS["tf 1 thread"]
    assert workers["tf 1 thread"][1]["matmul"] and workers["torch 1 thread"][1]["matmul"]
    assert not workers["tf"][1].get("matmul") and not workers["torch"][1].get("matmul")
    # Without the export (onnxruntime or tf2onnx missing) the ONNX Runtime workers are left out.
    assert not set(ORT_WORKERS) & set(_workers("w.npz", [[48, 48]], 2, True))
    # OpenVINO's run the same ONNX file, only when openvino is installed.
    assert not set(OPENVINO_WORKERS) & set(workers)
    with_openvino = _workers("w.npz", [[48, 48]], 2, True, onnx_model="e.onnx", openvino=True)
    for name, threads, precision in (
        ("openvino", 2, "f32"),
        ("openvino 1 thread", 1, "f32"),
        ("openvino bf16", 2, "bf16"),
    ):
        factory, kwargs, _ = with_openvino[name]
        assert factory == "benchmarks.encoder_latency:openvino_latency_candidates"
        assert kwargs["model"] == "e.onnx" and kwargs["threads"] == threads
        assert kwargs["precision"] == precision
    assert not set(OPENVINO_WORKERS) & set(_workers("w.npz", [[48, 48]], 2, True, openvino=True))
    keys = full_keys((48, 48))
    for key in (
        "tflite dynamic 48x48",
        "tf 1 thread: tflite dynamic 48x48",
        "ort 48x48",
        "ort spinning: ort 48x48",
        "ort 1 thread: ort 48x48",
        "openvino 48x48",
        "openvino 1 thread: openvino 48x48",
        "openvino bf16 48x48",
    ):
        assert key in keys
    assert ceiling_keys((48, 48)) == [
        "torch 1 thread: matmul 1024x1024 48x48",
        "tf 1 thread: matmul 1024x1024 48x48",
    ]


def test_onnx_export_is_left_out_with_a_note_without_onnxruntime(monkeypatch, tmp_path):
    import importlib.util

    from benchmarks.encoder_latency import _export_onnx

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name)
    )
    path, why_not = _export_onnx("unused.npz", str(tmp_path))
    assert path is None and "onnxruntime not installed" in why_not


def test_exported_model_workers_and_matmuls_compute(weights, tmp_path, monkeypatch):
    """The tflite, tflite dynamic and ort paths run the library's exports of the same encoder
    on the same uint8 pixels; the matmul candidates time one callable in every shape's rounds."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the benchmark's TF side")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    from benchmarks import encoder_latency
    from benchmarks.encoder_latency import (
        _export_onnx,
        ort_latency_candidates,
        tf_latency_candidates,
    )
    from im2latex_encoder.export import QUANTIZED_RELATIVE_TOLERANCE

    monkeypatch.setattr(encoder_latency, "MATMUL_SIDE", 64)  # the same code, a smaller matmul
    shapes = [[40, 52], [24, 24]]
    tf_side = tf_latency_candidates(
        weights,
        shapes,
        threads=1,
        paths=["tflite", "tflite dynamic"],
        stages=False,
        base_calls=1,
        matmul=True,
    )
    model, why_not = _export_onnx(weights, str(tmp_path))
    assert why_not == "" and model is not None
    ort_side = ort_latency_candidates(model, shapes, threads=1, base_calls=1, spinning=False)
    for at in ("40x52", "24x24"):
        reference = tf_side[f"tflite {at}"].info["checksum"]
        np.testing.assert_allclose(ort_side[f"ort {at}"].info["checksum"], reference, rtol=1e-4)
        parity = tf_side[f"tflite dynamic {at}"].info["parity"]
        assert 0.0 < parity <= QUANTIZED_RELATIVE_TOLERANCE  # int8 weights: close, not equal
        assert tf_side[f"matmul 64x64 {at}"].info["flops"] == 2 * 64**3
    assert tf_side["matmul 64x64 40x52"] is tf_side["matmul 64x64 24x24"]
    assert ort_side["ort 24x24"]() >= 0.0 and tf_side["matmul 64x64 24x24"]() >= 0.0

    pytest.importorskip("torch")
    from benchmarks.encoder_latency import torch_latency_candidates

    torch_side = torch_latency_candidates(
        weights, shapes, threads=1, stages=False, base_calls=1, matmul=True
    )
    assert torch_side["matmul 64x64 40x52"].info["flops"] == 2 * 64**3
    assert torch_side["matmul 64x64 40x52"]() >= 0.0


def test_openvino_workers_run_the_same_onnx_export(weights, tmp_path):
    """OpenVINO in f32 computes what ONNX Runtime does on the same file; bf16 comes close."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the benchmark's TF side")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    pytest.importorskip("openvino")
    from benchmarks.encoder_latency import (
        _export_onnx,
        openvino_latency_candidates,
        ort_latency_candidates,
    )

    shapes = [[40, 52], [24, 24]]
    model, why_not = _export_onnx(weights, str(tmp_path))
    assert why_not == "" and model is not None
    ort_side = ort_latency_candidates(model, shapes, threads=1, base_calls=1, spinning=False)
    f32 = openvino_latency_candidates(model, shapes, threads=1, base_calls=1)
    bf16 = openvino_latency_candidates(model, shapes, threads=1, base_calls=1, precision="bf16")
    for at in ("40x52", "24x24"):
        reference = ort_side[f"ort {at}"].info["checksum"]
        np.testing.assert_allclose(f32[f"openvino {at}"].info["checksum"], reference, rtol=1e-4)
        assert 0.0 <= bf16[f"openvino bf16 {at}"].info["parity"] < 0.05
    assert f32["openvino 24x24"]() >= 0.0 and bf16["openvino bf16 24x24"]() >= 0.0
    with pytest.raises(ValueError, match="`precision` must be 'f32' or 'bf16'. Received: 'f16'"):
        openvino_latency_candidates(model, shapes, threads=1, precision="f16")


def _fake_run(shape, rounds=3, without=()):
    """Synthetic per-round seconds and worker info for every candidate at `shape`."""
    from benchmarks.encoder_latency import (
        ceiling_keys,
        full_keys,
        label,
        path_of,
        stage_keys,
    )

    at, times, info = label(shape), {}, {}
    for index, key in enumerate(full_keys(shape) + ceiling_keys(shape) + stage_keys(shape)):
        if key.startswith(without):
            continue
        seconds = 0.01 * (1 + index % 5)
        if key.startswith(("tf 1 thread: tflite dynamic", "openvino bf16")):
            seconds = 0.001  # the fastest of all: still never "the fastest Keras-side path"
        times[key] = [seconds * (1 + r / 10) for r in range(rounds)]
        info[key] = {"calls": 2, "threads": "intra 1, inter 1", "worker": "w"}
        if key in full_keys(shape):
            info[key]["checksum"] = [1.0, 1.0]
            if path_of(key, shape) in ("tflite dynamic", "openvino bf16"):
                info[key]["parity"] = 0.01
        if "matmul" in key:
            info[key] = {**info[key], "calls": 1, "flops": 2 * 1024**3}
    assert f"tf {at}" in times
    return times, info


@pytest.mark.parametrize("without", [(), ("ort ",)])
def test_report_rows_for_the_new_paths_and_the_ceiling(without):
    import statistics

    from benchmarks._harness import Result
    from benchmarks.encoder_latency import SINGLE_THREAD_PATHS, _report, encoder_flops

    shape = [48, 48]
    times, info = _fake_run(shape, without=without)
    result = Result("encoder_latency")
    _report(result, times, info, [shape], threads=2)
    figures = {f.name: f for f in result.figures}
    ratios = {r.name: r for r in result.ratios}
    dynamic = [r for r in ratios.values() if "tflite dynamic" in r.name]
    assert dynamic and all(
        "(int8 weights, not fp32)" in r.name and r.target is None for r in dynamic
    )
    bf16 = [r for r in ratios.values() if "openvino bf16" in r.name]
    assert bf16 and all("(bf16 arithmetic, not fp32)" in r.name and r.target is None for r in bf16)
    assert "bf16 arithmetic, not fp32" in figures["openvino bf16 48x48 b1"].note
    fastest = [r for r in ratios if r.startswith("fastest Keras-side path")]
    assert len(fastest) == 2 and not any("dynamic" in r or "bf16" in r for r in fastest)
    assert "int8 weights" in figures["tf 1 thread: tflite dynamic 48x48 b1"].note
    assert ("ort 48x48 b1" in figures) is not bool(without)
    for fw in ("torch 1 thread", "tf 1 thread"):
        assert figures[f"ceiling: {fw} fp32 matmul 1024x1024 GFLOP/s, 48x48 rounds"].unit == (
            "GFLOP/s"
        )
    for name in SINGLE_THREAD_PATHS:
        present = not (without and name.startswith("ort"))
        assert (f"ceiling: {name} GFLOP/s, 48x48" in figures) is present
        share = f"ceiling: {name} GFLOP/s / 1-thread fp32 matmul GFLOP/s, 48x48"
        assert (share in ratios) is present
    # The figures follow from the synthetic times: GFLOP/s = calls · FLOPs / s, the share is
    # over the faster matmul of each round, and 1.2× TorchScript needs 1.2× its share.
    ts = "torch 1 thread: torch frozen 48x48"
    flops = encoder_flops(shape)
    expected = statistics.median(2 * flops / 1e9 / s for s in times[ts])
    assert figures["ceiling: TorchScript 1 thread GFLOP/s, 48x48"].median == pytest.approx(expected)
    matmul = [
        max(2 * 1024**3 / 1e9 / a, 2 * 1024**3 / 1e9 / b)
        for a, b in zip(
            times["torch 1 thread: matmul 1024x1024 48x48"],
            times["tf 1 thread: matmul 1024x1024 48x48"],
        )
    ]
    shares = [2 * flops / 1e9 / s / m for s, m in zip(times[ts], matmul)]
    share = ratios["ceiling: TorchScript 1 thread GFLOP/s / 1-thread fp32 matmul GFLOP/s, 48x48"]
    assert share.value == pytest.approx(statistics.median(shares))
    needed = ratios[
        "ceiling: needed for 1.2x TorchScript, GFLOP/s / 1-thread fp32 matmul GFLOP/s, 48x48"
    ]
    assert needed.value == pytest.approx(1.2 * share.value) and needed.target is None


def test_full_model_groups_settle_and_stage_groups_do_not(monkeypatch):
    """Every full-model candidate (multi-threaded pools, a spinning ONNX Runtime among them) is
    timed after the same idle gap; the 1-thread stage groups need none."""
    from benchmarks import encoder_latency

    groups = []

    def fake_interleave(group, rounds, warmup=1, settle=0.0):
        groups.append((sorted(group), settle))
        return {key: [1.0] * rounds for key in group}

    monkeypatch.setattr(encoder_latency, "interleave", fake_interleave)
    keys = encoder_latency.full_keys((48, 48)) + encoder_latency.stage_keys((48, 48))
    times = encoder_latency._measure({k: None for k in keys}, [[48, 48]], rounds=2)
    assert set(times) == set(keys)
    (full, full_settle), (stages, stage_settle) = groups
    assert "ort spinning: ort 48x48" in full and full_settle == encoder_latency.SETTLE_SECONDS > 0
    assert all(" stage " in f" {key}" for key in stages) and stage_settle == 0.0
