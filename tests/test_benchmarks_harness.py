"""The benchmark harness, tested on tiny fake benchmarks; no real benchmark runs here."""

import json
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `benchmarks/` sits beside the package, not inside it
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import _harness  # noqa: E402
from benchmarks.__main__ import main  # noqa: E402
from benchmarks._worker import SubprocessCandidate  # noqa: E402

FAKE_BENCHMARKS = {
    "fast": """
        from benchmarks._harness import Result, interleave, rate_figure, rates, ratio, timed

        def run(options):
            work = {"a": timed(lambda: sum(range(100))), "b": timed(lambda: sum(range(200)))}
            times = interleave(work, options.rounds(5))
            result = Result("fast")
            result.figures.append(rate_figure("a", times["a"], 100, "items/s"))
            result.ratios.append(ratio("a / b", rates(times["a"], 1), rates(times["b"], 1),
                                       target=0.0))
            result.notes.append(f"rounds={len(times['a'])}")
            return result
        """,
    "later": """
        from benchmarks._harness import require

        def run(options):
            require("no_such_package_yet.module", "something later")
        """,
    "broken": """
        def run(options):
            raise RuntimeError("boom")
        """,
}


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A package `fakebench` holding the fake benchmarks, importable for this test."""
    package = tmp_path / "fakebench"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, source in FAKE_BENCHMARKS.items():
        (package / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "fakebench"


def test_interleave_times_every_candidate_once_per_round_after_warmup():
    calls = []

    def candidate(name):
        return lambda: calls.append(name) or 0.5

    times = _harness.interleave({"a": candidate("a"), "b": candidate("b")}, rounds=3, warmup=2)
    assert times == {"a": [0.5] * 3, "b": [0.5] * 3}
    assert len(calls) == 2 * (2 + 3)
    assert calls[4:] == ["a", "b", "b", "a", "a", "b"]  # order rotates round by round


def test_interleave_settles_before_every_call_when_asked(monkeypatch):
    """`settle` idles the same time before each candidate (warm-up included), so a thread
    pool still spinning from the previous one is asleep when the next is timed."""
    events = []
    monkeypatch.setattr(_harness.time, "sleep", lambda seconds: events.append(("sleep", seconds)))

    def candidate(name):
        return lambda: events.append(("call", name)) or 0.5

    work = {"a": candidate("a"), "b": candidate("b")}
    _harness.interleave(work, rounds=2, warmup=1, settle=0.05)
    assert events == [("sleep", 0.05), ("call", "a"), ("sleep", 0.05), ("call", "b")] + [
        ("sleep", 0.05),
        ("call", "a"),
        ("sleep", 0.05),
        ("call", "b"),
        ("sleep", 0.05),
        ("call", "b"),
        ("sleep", 0.05),
        ("call", "a"),
    ]
    events.clear()
    _harness.interleave(work, rounds=2, warmup=1)
    assert ("sleep", 0.05) not in events and len(events) == 6
    with pytest.raises(ValueError, match=r"`settle` must be seconds >= 0. Received: settle=-1"):
        _harness.interleave(work, rounds=1, settle=-1)


def test_figures_and_ratios_are_medians_over_rounds():
    figure = _harness.rate_figure("x", [1.0, 0.5, 0.25], work=10, unit="items/s")
    assert (figure.median, figure.low, figure.high) == (20.0, 10.0, 40.0)
    assert figure.spread == pytest.approx(1.5)
    assert _harness.latency_figure("y", [0.1, 0.2, 0.3], calls=10).median == pytest.approx(20.0)
    r = _harness.ratio("a / b", [3.0, 8.0, 2.0], [1.0, 2.0, 2.0], target=2.0)
    assert (r.value, r.low, r.high, r.met) == (3.0, 1.0, 4.0, True)
    with pytest.raises(ValueError, match="one value per round"):
        _harness.ratio("a / b", [1.0], [1.0, 2.0])


def test_quick_shrinks_rounds():
    assert _harness.Options(quick=True).rounds(9) == 2
    assert _harness.Options(quick=False).rounds(9) == 9


def test_run_benchmark_reports_ok_unavailable_and_error(fake_package):
    options = _harness.Options(quick=True)
    ok = _harness.run_benchmark("fast", options, package=fake_package)
    assert ok.status == "ok" and ok.figures[0].rounds == 2 and ok.ratios[0].met
    later = _harness.run_benchmark("later", options, package=fake_package)
    assert later.status.startswith("unavailable: until `no_such_package_yet.module`")
    broken = _harness.run_benchmark("broken", options, package=fake_package)
    assert broken.status == "error: RuntimeError: boom"
    assert "Traceback" in broken.notes[0]


def test_main_writes_json_and_markdown(fake_package, tmp_path, capsys):
    out_json, out_md = tmp_path / "out" / "all.json", tmp_path / "out" / "README.md"
    status = main(
        [
            "--only",
            "fast",
            "--only",
            "later",
            "--quick",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ],
        registry=("fast", "later", "broken"),
        package=fake_package,
    )
    assert status == 0
    payload = json.loads(out_json.read_text())
    assert set(payload["benchmarks"]) == {"fast", "later"}
    assert payload["environment"]["quick"] is True
    fast = payload["benchmarks"]["fast"]
    assert fast["status"] == "ok" and fast["figures"][0]["unit"] == "items/s"
    assert fast["ratios"][0]["met"] is True
    markdown = out_md.read_text()
    assert "| a | " in markdown and "| a / b | " in markdown
    assert "`later`: **unavailable: until" in markdown
    assert markdown in capsys.readouterr().out + "\n"


def test_main_exit_status_and_unknown_names(fake_package, tmp_path):
    assert main(["--only", "broken"], registry=("broken",), package=fake_package) == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["--only", "nope"], registry=("fast",), package=fake_package)
    assert exit_info.value.code == 2


def test_subprocess_candidate_reports_worker_seconds():
    with SubprocessCandidate("benchmarks._worker:sleep_candidate", {"seconds": 0.0}) as worker:
        assert worker.info == {"slept": 0.0}
        assert 0.0 <= worker() < 5.0
    assert worker.process.returncode == 0


def test_subprocess_candidate_failure_names_the_factory():
    with pytest.raises(RuntimeError, match="benchmarks._worker:no_such_factory"):
        with SubprocessCandidate("benchmarks._worker:no_such_factory"):
            pass


def test_conv_flops_counts_the_seed_stack():
    from benchmarks.encoder import conv_flops

    # 2·K·K·Cin·Cout·H·W per conv: 126², 61², 28² outputs at 128×128.
    expected = 2 * 9 * (1 * 32 * 126 * 126 + 32 * 64 * 61 * 61 + 64 * 64 * 28 * 28)
    assert conv_flops((128, 128)) == expected


def test_memory_benchmark_measures_the_child_not_the_large_parent():
    """Linux carries a forked child's parent's size into its `ru_maxrss`: the memory benchmark
    must not report a 600 MB parent's size for a child that holds 100 MB."""
    import numpy as np

    from benchmarks.memory import peak_rss

    parent = np.ones(600 * 2**20 // 8)  # resident in this process while the child runs
    child = [sys.executable, "-c", "import numpy as np; print(np.ones(100 * 2**20 // 8).sum())"]
    peak, _ = peak_rss(child, str(REPO_ROOT))
    assert 100 * 2**20 < peak < 400 * 2**20, peak / 2**20
    assert parent.sum() > 0
    with pytest.raises(RuntimeError, match=r"failed \(3\)"):
        peak_rss([sys.executable, "-c", "import sys; sys.exit(3)"], str(REPO_ROOT))


@pytest.mark.parametrize("path", ["concrete function", "savedmodel", "tflite", "onnxruntime"])
def test_encoder_benchmark_paths_compute_the_encoder_and_leave_no_files(
    path, tmp_path, monkeypatch
):
    """Each inference path the `encoder` benchmark may call "tf" (or reports beside it) runs
    the same computation as the Keras encoder; the exports it times leave no folder behind."""
    import tempfile

    import numpy as np

    if path == "onnxruntime":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("tf2onnx")
    from benchmarks.encoder import _forward
    from im2latex_encoder import SymbolEncoder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    encoder = SymbolEncoder(filters=(4, 8, 8))
    rng = np.random.default_rng(0)
    # Whole uint8 levels, so the exports' uint8 input carries exactly these images.
    images = (rng.integers(0, 256, (2, 24, 40, 1)) / 255).astype("float32")
    expected = np.asarray(encoder(images))

    output = _forward(encoder, "tensorflow", path, images)()
    if isinstance(output, dict):  # the SavedModel's signature
        output = output["features"]
    if isinstance(output, list):  # ONNX Runtime's outputs
        output = output[0]
    np.testing.assert_allclose(np.asarray(output), expected, atol=1e-5)
    assert list(tmp_path.glob("bench-export-*")) == []  # (autograph keeps its own .py files)


def test_train_benchmark_measures_quick_at_its_configured_image_size():
    from benchmarks.train import RECIPE_SIZE
    from im2latex_encoder.training import load_config

    assert RECIPE_SIZE == load_config("quick").image_size


def test_time_to_accuracy_real_mode_rows():
    """The real CROHME mode reports time to 80% / 90% for every recipe, each against seed."""
    import math

    from benchmarks.time_to_accuracy import REAL_RECIPES, _result

    def curve(points):
        return [
            {"seconds": s, "steps": 10 * i, "images": 640 * i, "top1": a, "top1_merged": a}
            for i, (s, a) in enumerate(points, start=1)
        ]

    config = {"batch_size": 64, "image_size": 32}
    measured = {
        "budget": 100.0,
        "real": "/data/crohme",
        "recipes": list(REAL_RECIPES),
        "quick": {
            "config": config,
            "curve": curve([(5, 0.7), (10, 0.85)]),
            "stopped": "schedule ended",
            "validation_images": 4000,
        },
        "crohme": {
            "config": config,
            "curve": curve([(4, 0.82), (8, 0.91)]),
            "stopped": "reached 90% top-1",
            "validation_images": 4000,
        },
        "seed": {
            "config": config,
            "curve": curve([(50, 0.5), (100, 0.81)]),
            "stopped": "budget spent",
            "validation_images": 4000,
        },
    }
    result = _result(measured, {"eval_images": 640}, _harness.Options(quick=False))
    ratios = {r.name: r for r in result.ratios}
    assert ratios["seed / crohme seconds to 80% top-1"].value == 100 / 4
    target = ratios["seed / crohme seconds to 90% top-1"]
    assert (
        math.isinf(target.value) and target.low == 100 / 8 and target.target == 5.0 and target.met
    )
    assert math.isnan(ratios["seed / quick seconds to 90% top-1"].value)
    assert "CROHME 2016 test symbols" in " ".join(result.notes)


CROHME = Path(__file__).parents[1].parent / "shared" / "data" / "crohme"


def test_transfer_data_selects_the_mode(monkeypatch, tmp_path):
    """`IM2LATEX_TRANSFER_DATA`: unset or `typeset` is the typeset mode, `crohme:DIR` a folder;
    a missing folder makes the benchmark unavailable, anything else is an error."""
    from benchmarks.transfer import DATA_ENV, transfer_data

    monkeypatch.delenv(DATA_ENV, raising=False)
    assert transfer_data() is None
    monkeypatch.setenv(DATA_ENV, "typeset")
    assert transfer_data() is None
    monkeypatch.setenv(DATA_ENV, f"crohme:{tmp_path}")
    assert transfer_data() == str(tmp_path)
    monkeypatch.setenv(DATA_ENV, f"crohme:{tmp_path / 'absent'}")
    with pytest.raises(_harness.BenchmarkUnavailable, match="no CROHME expression folder"):
        transfer_data()
    monkeypatch.setenv(DATA_ENV, "im2latex")
    with pytest.raises(ValueError, match="'typeset', 'crohme' or 'crohme:DIR'"):
        transfer_data()


@pytest.mark.slow
@pytest.mark.skipif(not (CROHME / "train").is_dir(), reason="no CROHME data beside the repository")
def test_transfer_handwritten_mode_quick(tmp_path):
    """The handwritten mode at its quick size: three runs of one seed on real ink, curves with
    one point per `eval_every` steps, ExpRates over exactly the held-out expressions, and the
    figures, ratios (with their targets) and plot built from them."""
    from benchmarks.transfer import (
        EXPRATE_TARGET,
        RUNS,
        SPEEDUP_TARGET,
        _handwritten_result,
        _handwritten_settings,
        measure_handwritten,
        plot_handwritten,
    )

    # Smaller than the quick size (which `--quick` runs): the suite checks the structure.
    settings = dict(
        _handwritten_settings(quick=True),
        train=16,
        validation=8,
        steps=4,
        eval_every=2,
        batch_size=8,
    )
    data = measure_handwritten(
        "crohme101", str(CROHME / "train"), quick=True, seeds=(0,), settings=settings
    )
    assert data["settings"] == settings and data["seeds"] == [0]
    points = settings["steps"] // settings["eval_every"]
    for name in RUNS:
        run = data["runs"][name]
        assert run["steps"] == [settings["eval_every"] * (k + 1) for k in range(points)]
        assert len(run["token_accuracy"]) == points
        assert all(0.0 <= value <= 1.0 for value in run["token_accuracy"])
        assert len(run["per_seed"]) == 1 and run["n"] == [settings["validation"]]
        for key in ("exprate", "exprate_1", "exprate_2"):
            assert 0.0 <= run[key][0] <= 1.0
        assert run["exprate"][0] <= run["exprate_1"][0] <= run["exprate_2"][0]
    assert data["scratch_final_token_accuracy"] == data["runs"]["scratch"]["token_accuracy"][-1]

    result = _handwritten_result(data)
    figures = {figure.name for figure in result.figures}
    assert {
        f"{name}: {kind}"
        for name in RUNS
        for kind in ("final token accuracy", "ExpRate", "ExpRate ≤1", "ExpRate ≤2")
    } <= figures
    targets = {ratio.name: ratio.target for ratio in result.ratios}
    assert targets["scratch steps / fine-tuned steps to the same token accuracy"] == SPEEDUP_TARGET
    assert (
        targets[f"fine-tuned minus scratch ExpRate after {settings['steps']} steps (points)"]
        == EXPRATE_TARGET
    )
    json.dumps(result.to_dict())  # JSON-ready
    assert Path(plot_handwritten(data, str(tmp_path / "curves.png"))).stat().st_size > 0


def test_transfer_handwritten_run_reports_speedup_exprate_difference_and_plot(
    monkeypatch, tmp_path
):
    """`run` in the handwritten mode: seeds 0,1,2 by default, the speed-up and the paired
    ExpRate difference against their targets, and the plot's path in the notes."""
    from benchmarks import transfer

    def fake_measure(preset, folder, *, quick, seeds, **options):
        curves = {"frozen": [0.3, 0.5], "fine-tuned": [0.6, 0.7], "scratch": [0.2, 0.6]}
        rates = {
            "frozen": [0.05, 0.1, 0.0],
            "fine-tuned": [0.2, 0.3, 0.1],
            "scratch": [0.1, 0.1, 0.1],
        }
        runs = {
            name: {
                "steps": [100, 200],
                "token_accuracy": curves[name],
                "final_token_accuracy": [curves[name][-1]] * 3,
                "exprate": rates[name],
                "exprate_1": [min(1.0, r + 0.1) for r in rates[name]],
                "exprate_2": [min(1.0, r + 0.2) for r in rates[name]],
                "token_error_rate": [0.5] * 3,
                "n": [300] * 3,
                "per_seed": [{"seed": s, "token_accuracy": curves[name]} for s in seeds],
            }
            for name in transfer.RUNS
        }
        return {
            "folder": folder,
            "preset": preset,
            "seeds": list(seeds),
            "settings": {
                "train": 2000,
                "validation": 300,
                "steps": 200,
                "eval_every": 100,
                "batch_size": 16,
            },
            "model": transfer.HANDWRITTEN_MODEL,
            "draw": {},
            "augment": {},
            "validation_split": 0.05,
            "expressions": 8836,
            "usable": 8800,
            "held_out": 440,
            "runs": runs,
            "scratch_final_token_accuracy": 0.6,
            "fine_tuned_steps_to_scratch_final": 100,
            "frozen_steps_to_scratch_final": None,
        }

    monkeypatch.setenv(transfer.DATA_ENV, f"crohme:{tmp_path}")
    monkeypatch.delenv("IM2LATEX_TRANSFER_SEEDS", raising=False)
    monkeypatch.delenv("IM2LATEX_PRESET", raising=False)
    monkeypatch.setattr(transfer, "measure_handwritten", fake_measure)
    monkeypatch.setattr(transfer, "_plot_path", lambda: str(tmp_path / "plot.png"))
    result = transfer.run(_harness.Options(quick=False))
    ratios = {ratio.name: ratio for ratio in result.ratios}
    speedup = ratios["scratch steps / fine-tuned steps to the same token accuracy"]
    assert speedup.value == 2.0 and not speedup.met
    assert ratios["scratch steps / frozen steps to the same token accuracy"].value == 0.0
    difference = ratios["fine-tuned minus scratch ExpRate after 200 steps (points)"]
    assert (difference.low, difference.value, difference.high) == pytest.approx((0, 10, 20))
    assert difference.met
    figures = {figure.name: figure for figure in result.figures}
    exprate = figures["fine-tuned: ExpRate"]
    assert (exprate.median, exprate.low, exprate.high, exprate.rounds) == (0.2, 0.1, 0.3, 3)
    assert (tmp_path / "plot.png").stat().st_size > 0
    assert "plot.png" in result.notes[-1]
    assert "[0, 1, 2]" in result.notes[0]


def test_decoding_benchmark_rows_on_a_tiny_model(monkeypatch):
    """Each decoding pair reports formulas/s, tokens/s and cached / uncached; same tokens; the
    exported runner decodes greedily and by beam search with the same LaTeX."""
    import benchmarks.decoding as decoding

    monkeypatch.delenv(decoding.RECOGNIZER_ENV, raising=False)
    monkeypatch.setattr(
        decoding,
        "RANDOM_MODEL",
        {
            "hidden_dim": 16,
            "num_layers": 1,
            "num_heads": 2,
            "intermediate_dim": 32,
            "max_length": 8,
            "vocabulary_size": 12,
        },
    )
    monkeypatch.setattr(decoding, "BATCH", 3)
    monkeypatch.setattr(decoding, "IMAGE_SHAPE", (24, 40))
    monkeypatch.setattr(decoding, "QUICK_MAX_LENGTH", 3)
    monkeypatch.setattr(decoding, "EXPORT_FORMATS", ("onnx",))  # one exported runner is enough
    import benchmarks.encoder

    monkeypatch.setattr(benchmarks.encoder, "MATMUL_SIDE", 128)
    result = decoding.run(_harness.Options(quick=True, threads=1))
    assert [r.name for r in result.ratios] == [
        "cached / uncached formulas/s, greedy b1",
        "onnxruntime runner / Keras cached formulas/s, greedy b1",
        "cached / uncached formulas/s, greedy b3",
        "onnxruntime runner / Keras cached formulas/s, greedy b3",
        "cached decoder GFLOP/s / fp32 matmul GFLOP/s, greedy b3",
        "cached / uncached formulas/s, beam 4 b3",
        "onnxruntime runner / Keras cached formulas/s, beam 4 b3",
    ]
    assert all(r.value > 0 for r in result.ratios)
    # The tiny decoder's share of the matmul rate is a fraction; its FLOPs are counted.
    assert result.ratios[4].value < 1.0
    flops = [f for f in result.figures if f.name.endswith("decoder GFLOP/s")]
    assert len(flops) == 1 and "MFLOP per row and step" in flops[0].note
    units = [f.unit for f in result.figures]
    assert units.count("formulas/s") == units.count("tokens/s") == 9
    notes = " ".join(result.notes)
    assert "greedy b1 yes, greedy b3 yes, beam 4 b3 yes" in notes
    assert (
        "onnxruntime greedy b1 100%, onnxruntime greedy b3 100%, onnxruntime beam 4 b3 100%"
        in notes
    )
    assert result.ratios[1].note == result.ratios[-1].note == "100% identical LaTeX"


def test_the_environment_names_the_cpu_generation_that_a_bare_model_name_hides():
    zen5 = textwrap.dedent(
        """\
        processor\t: 0
        vendor_id\t: AuthenticAMD
        cpu family\t: 26
        model\t\t: 2
        model name\t: AMD EPYC
        flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16 avx512vl

        processor\t: 1
        cpu family\t: 25
        flags\t\t: fpu amx_tile
        """
    )
    # The first block is read; flags are kept only where they decide conv rates.
    assert _harness.cpu_generation(zen5) == {
        "cpu_family": 26,
        "cpu_model": 2,
        "cpu_vector_units": ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"],
    }
    assert _harness.cpu_generation("model name\t: Apple M2\n") == {}
    facts = _harness.environment(_harness.Options())
    if Path("/proc/cpuinfo").is_file():
        assert isinstance(facts["cpu_family"], int) and "cpu_vector_units" in facts
