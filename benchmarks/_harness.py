"""The benchmark harness: timing rounds, results, JSON and Markdown.

Timings on a shared machine drift by tens of percent within minutes, so every benchmark times
its candidates *interleaved*: round 1 runs each candidate once, round 2 again, and so on. A
ratio is the median over rounds of the per-round ratio, so a burst of load from elsewhere lands
on both sides of it. Medians and the spread (min, max over rounds) are what gets reported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import importlib
import importlib.metadata
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence


class BenchmarkUnavailable(Exception):
    """Raised by a benchmark whose subject is not built yet (recorded as "unavailable: why").

    Example:
    >>> raise BenchmarkUnavailable("until im2latex_encoder.training exists")  # doctest: +SKIP
    """


#: Set to "1" while a benchmark runs in tiny mode, so its worker subprocesses shrink too.
TINY_ENV = "IM2LATEX_BENCH_TINY"


@dataclasses.dataclass
class Options:
    """Settings every benchmark receives.

    Args:
        quick: bool. Few rounds and small work units: a smoke run, not figures to quote.
        threads: int. CPU threads each framework may use (the same for all of them).
        tiny: bool. The smallest run that goes through every path of a benchmark (one round,
            and the module's `TINY` sizes, see `tiny_sizes`): a check that it runs, for the
            tests; its figures mean nothing. Implies `quick`.

    Example:
    >>> Options(quick=True).rounds(7), Options(tiny=True).rounds(7), Options(tiny=True).quick
    (2, 1, True)
    """

    quick: bool = False
    threads: int = dataclasses.field(default_factory=lambda: len(os.sched_getaffinity(0)))
    tiny: bool = False

    def __post_init__(self) -> None:
        if self.tiny:
            self.quick = True

    def rounds(self, full: int) -> int:
        """Return the number of timing rounds: `full`, 2 for a quick run, 1 for a tiny one."""
        if self.tiny:
            return 1
        return 2 if self.quick else full


@dataclasses.dataclass
class Figure:
    """One measured quantity: the median over rounds and its spread.

    Args:
        name: str. What was measured, e.g. ``"tf fp32 128x128 b64"``.
        unit: str. E.g. ``"images/s"``, ``"ms"``, ``"GFLOP/s"``.
        median: float. Median over rounds.
        low: float. Smallest value over rounds.
        high: float. Largest value over rounds.
        rounds: int. Rounds timed.
        note: str. How it was measured, when that is not obvious from the name.

    Example:
    >>> Figure("x", "images/s", 10.0, 9.0, 11.0, 3).spread
    0.2
    """

    name: str
    unit: str
    median: float
    low: float
    high: float
    rounds: int
    note: str = ""

    @property
    def spread(self) -> float:
        """(high - low) / median: how noisy the rounds were."""
        return (self.high - self.low) / self.median if self.median else math.nan


@dataclasses.dataclass
class Ratio:
    """A ratio between two candidates measured side by side, with an optional target.

    Args:
        name: str. E.g. ``"tf / torch images/s at 128x128"``.
        value: float. Median over rounds of the per-round ratio.
        low: float. Smallest per-round ratio.
        high: float. Largest per-round ratio.
        target: float or None. The value it should reach (``value >= target``).
        note: str. Anything needed to read it.

    Example:
    >>> Ratio("a / b", 1.2, 1.1, 1.3, target=1.0).met
    True
    """

    name: str
    value: float
    low: float
    high: float
    target: float | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        """Whether `value >= target` (None without a target)."""
        return None if self.target is None else bool(self.value >= self.target)


@dataclasses.dataclass
class Result:
    """What one benchmark reports.

    Args:
        name: str. The benchmark's module name.
        status: str. ``"ok"``, ``"unavailable: <why>"`` or ``"error: <what>"``.
        figures: list of `Figure`.
        ratios: list of `Ratio`.
        notes: list of str. How it was measured, which path was fastest, caveats.
        seconds: float. Wall time the benchmark took.

    Example:
    >>> Result("encoder").status
    'ok'
    """

    name: str
    status: str = "ok"
    figures: list = dataclasses.field(default_factory=list)
    ratios: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """Return a JSON-ready dict (figures and ratios with their derived fields)."""
        return {
            "name": self.name,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "figures": [dict(dataclasses.asdict(f), spread=f.spread) for f in self.figures],
            "ratios": [dict(dataclasses.asdict(r), met=r.met) for r in self.ratios],
            "notes": list(self.notes),
        }


def timed(fn: Callable[[], object]) -> Callable[[], float]:
    """Wrap `fn` so that calling the wrapper runs it once and returns the elapsed seconds.

    Example:
    >>> elapsed = timed(lambda: sum(range(1000)))()
    >>> elapsed >= 0
    True
    """

    def run() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return run


def interleave(candidates: dict, rounds: int, warmup: int = 1, settle: float = 0.0) -> dict:
    """Time candidates round-robin and return each one's per-round seconds.

    Each candidate is a callable returning the seconds one unit of its work took (see
    `timed`; a subprocess proxy returns the time its worker measured). The order within a
    round rotates so no candidate always follows the same neighbour.

    Args:
        candidates: dict of name -> callable returning seconds.
        rounds: int. Timed rounds.
        warmup: int. Untimed rounds first (compilation, caches, thread pools).
        settle: float. Idle seconds before every call, the same for each candidate, so the
            thread pool of the previous one (ONNX Runtime's or OpenMP's, which spin for a
            while after their work) is asleep before the next is timed. 0: none.

    Returns:
        dict of name -> list of seconds, one per round.

    Example:
    >>> times = interleave({"a": timed(lambda: None)}, rounds=3)
    >>> len(times["a"])
    3
    """
    if not settle >= 0:
        raise ValueError(f"`settle` must be seconds >= 0. Received: settle={settle!r}")
    names = list(candidates)

    def call(name):
        if settle:
            time.sleep(settle)
        return candidates[name]()

    for _ in range(warmup):
        for name in names:
            call(name)
    times = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(float(call(name)))
    return times


def rate_figure(
    name: str, seconds: Sequence[float], work: float, unit: str, note: str = ""
) -> Figure:
    """Turn per-round seconds into a rate figure (`work` units per round / seconds).

    Example:
    >>> rate_figure("x", [0.5, 1.0, 0.25], 10, "images/s").median
    20.0
    """
    rates = [work / s for s in seconds]
    return Figure(name, unit, statistics.median(rates), min(rates), max(rates), len(rates), note)


def latency_figure(name: str, seconds: Sequence[float], calls: int, note: str = "") -> Figure:
    """Turn per-round seconds of `calls` calls into a per-call latency figure in ms.

    Example:
    >>> latency_figure("x", [0.01, 0.02, 0.03], 10).median
    2.0
    """
    ms = [1000.0 * s / calls for s in seconds]
    return Figure(name, "ms", statistics.median(ms), min(ms), max(ms), len(ms), note)


def ratio(
    name: str,
    numerator: Sequence[float],
    denominator: Sequence[float],
    target: float | None = None,
    note: str = "",
) -> Ratio:
    """Median of per-round ratios `numerator[i] / denominator[i]` (rates, not seconds).

    Example:
    >>> ratio("a / b", [2.0, 4.0, 6.0], [1.0, 2.0, 2.0], target=1.5).value
    2.0
    """
    if len(numerator) != len(denominator):
        raise ValueError(
            f"Ratios need one value per round on each side. Received: "
            f"{len(numerator)} and {len(denominator)}"
        )
    values = [n / d for n, d in zip(numerator, denominator)]
    return Ratio(name, statistics.median(values), min(values), max(values), target, note)


def rates(seconds: Sequence[float], work: float) -> list:
    """Per-round rates `work / seconds`.

    Example:
    >>> rates([0.5, 2.0], 10)
    [20.0, 5.0]
    """
    return [work / s for s in seconds]


def run_benchmark(module_name: str, options: Options, package: str = "benchmarks") -> Result:
    """Import `package.module_name` and call its `run(options)`; never raises.

    A `BenchmarkUnavailable` (or an ImportError of the benchmark's subject) becomes
    ``status="unavailable: <why>"``; any other exception ``status="error: <what>"`` with the
    traceback in the notes.

    Example:
    >>> run_benchmark("train", Options(quick=True)).status.startswith("unavailable")  # doctest: +SKIP
    True
    """
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"{package}.{module_name}")
        with tiny_sizes(module, options.tiny):
            result = module.run(options)
        result.name = module_name
    except BenchmarkUnavailable as error:
        result = Result(module_name, status=f"unavailable: {error}")
    except Exception as error:  # a broken benchmark must not take the suite down
        result = Result(
            module_name,
            status=f"error: {type(error).__name__}: {error}",
            notes=[traceback.format_exc()],
        )
    result.seconds = time.perf_counter() - start
    return result


@contextlib.contextmanager
def tiny_sizes(module, tiny: bool = True):
    """Within the block, `module`'s sizes are its `TINY` ones (when `tiny`); restored after.

    A benchmark module declares ``TINY = {"CONSTANT": small value, ...}``: the module-level
    sizes (images, batches, matmul sides, candidate lists) that make a run tiny but take every
    path. `run_benchmark` applies them for `Options(tiny=True)`, and sets `TINY_ENV` so a
    worker subprocess (`benchmarks._worker`) applies its factory module's too.

    Raises:
        ValueError: if `TINY` names a constant the module does not have.

    Example:
    >>> import types
    >>> bench = types.SimpleNamespace(SIDE=2048, TINY={"SIDE": 64})
    >>> with tiny_sizes(bench):
    ...     inside = bench.SIDE
    >>> inside, bench.SIDE
    (64, 2048)
    """
    if not tiny:
        yield
        return
    overrides = dict(getattr(module, "TINY", {}))
    unknown = sorted(name for name in overrides if not hasattr(module, name))
    if unknown:
        raise ValueError(
            f"{getattr(module, '__name__', module)}.TINY names constants the module does not "
            f"have. Expected some of its module-level names. Received: {unknown}"
        )
    saved = {name: getattr(module, name) for name in overrides}
    saved_env = os.environ.get(TINY_ENV)
    os.environ[TINY_ENV] = "1"
    for name, value in overrides.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)
        if saved_env is None:
            os.environ.pop(TINY_ENV, None)
        else:
            os.environ[TINY_ENV] = saved_env


def environment(options: Options) -> dict:
    """Facts about the run that a reader needs to compare figures (versions, CPU, load).

    Example:
    >>> "python" in environment(Options())
    True
    """
    cpuinfo = _read_cpuinfo()  # read once for the name and the generation
    facts = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable), "-m", "benchmarks"] + sys.argv[1:]),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": _cpu_name(cpuinfo),
        **cpu_generation(cpuinfo),
        "cpus": os.cpu_count(),
        "threads": options.threads,
        "quick": options.quick,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    for package in ("numpy", "keras", "tensorflow", "torch", "jax", "cv2", "matplotlib"):
        try:
            facts[package] = importlib.metadata.version(
                {"cv2": "opencv-python-headless"}.get(package, package)
            )
        except importlib.metadata.PackageNotFoundError:
            facts[package] = None
    return facts


def _read_cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""


def _cpu_name(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


# The vector units that decide conv and matmul rates; which of them a CPU has.
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def cpu_generation(cpuinfo: str) -> dict:
    """The CPU's family, model and vector units, from the text of ``/proc/cpuinfo``.

    A virtual machine's model name can be as bare as "AMD EPYC", which hides a factor of two:
    Zen 4 (family 25) runs AVX-512 at half width, Zen 5 (family 26) at full width, so the same
    conv ran at about 218 GFLOP/s on two Zen 4 cores and 409 on two Zen 5 ones. Latency
    figures from two runs compare only when these agree.

    Example:
    >>> cpu_generation("cpu family\\t: 26\\nmodel\\t\\t: 2\\nflags\\t\\t: fpu avx2 avx512f\\n")
    {'cpu_family': 26, 'cpu_model': 2, 'cpu_vector_units': ['avx2', 'avx512f']}
    >>> cpu_generation("")
    {}
    """
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            break  # the first processor's block describes them all
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    facts: dict = {}
    for key, name in (("cpu family", "cpu_family"), ("model", "cpu_model")):
        if fields.get(key, "").isdigit():
            facts[name] = int(fields[key])
    if "flags" in fields:
        flags = set(fields["flags"].split())
        facts["cpu_vector_units"] = [f for f in VECTOR_FLAGS if f in flags]
    return facts


def write_json(path: str, environment_facts: dict, results: Sequence[Result]) -> None:
    """Write the run as JSON, atomically (temporary file in the same folder, then replace).

    Example:
    >>> write_json("/tmp/bench.json", {}, [Result("x")])  # doctest: +SKIP
    """
    payload = {
        "environment": environment_facts,
        "benchmarks": {r.name: r.to_dict() for r in results},
    }
    _write_atomic(path, json.dumps(payload, indent=2, allow_nan=True) + "\n")


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def to_markdown(environment_facts: dict, results: Sequence[Result]) -> str:
    """Render the run as Markdown: one table of figures and one of ratios per benchmark.

    Example:
    >>> print(to_markdown({}, [Result("train", status="unavailable: later")]).splitlines()[-1])
    `train`: **unavailable: later**
    """
    lines = ["# Benchmark results", ""]
    if environment_facts:
        lines.append(
            "Run `{}` on {} ({} CPUs, {} threads per framework), {}; load average at "
            "start {}.".format(
                environment_facts.get("command"),
                environment_facts.get("cpu"),
                environment_facts.get("cpus"),
                environment_facts.get("threads"),
                environment_facts.get("date"),
                environment_facts.get("load_average_at_start"),
            )
        )
        versions = ", ".join(
            f"{k} {environment_facts[k]}"
            for k in ("python", "keras", "tensorflow", "torch", "jax", "numpy")
            if environment_facts.get(k)
        )
        lines += [
            "",
            versions,
            "",
            "Medians over interleaved rounds; spread = (max - min) / median. Ratios are "
            "medians of per-round ratios, measured side by side in this run.",
            "",
        ]
    for result in results:
        if result.status != "ok":
            lines += [f"`{result.name}`: **{result.status}**", ""]
            continue
        lines += [f"## `{result.name}` ({result.seconds:.0f} s)", ""]
        if result.figures:
            lines += [
                "| figure | median | unit | spread | rounds | note |",
                "|---|---:|---|---:|---:|---|",
            ]
            for f in result.figures:
                lines.append(
                    f"| {f.name} | {_fmt(f.median)} | {f.unit} | {f.spread:.0%} | "
                    f"{f.rounds} | {f.note} |"
                )
            lines.append("")
        if result.ratios:
            lines += ["| ratio | value | range | target | met |", "|---|---:|---|---:|---|"]
            for r in result.ratios:
                met = {True: "yes", False: "**no**", None: ""}[r.met]
                target = "" if r.target is None else f"≥ {_fmt(r.target)}"
                lines.append(
                    f"| {r.name} | {_fmt(r.value)} | {_fmt(r.low)}–{_fmt(r.high)} | "
                    f"{target} | {met} |"
                )
            lines.append("")
        for note in result.notes:
            lines.append(f"- {note}")
        if result.notes:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(path: str, environment_facts: dict, results: Sequence[Result]) -> None:
    """Write `to_markdown(...)` to `path`, atomically.

    Example:
    >>> write_markdown("/tmp/bench.md", {}, [Result("x")])  # doctest: +SKIP
    """
    _write_atomic(path, to_markdown(environment_facts, results))


def _write_atomic(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


def require(module: str, purpose: str):
    """Import `module` or raise `BenchmarkUnavailable` saying what waits for it.

    Args:
        module: str. Dotted module name, e.g. ``"im2latex_encoder.training"``.
        purpose: str. What the benchmark would measure with it.

    Example:
    >>> require("json", "nothing").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name and module.startswith(error.name):
            raise BenchmarkUnavailable(f"until `{module}` exists ({purpose})") from None
        raise
