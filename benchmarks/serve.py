"""The web server's latency and throughput: `im2latex-encoder serve` answering over HTTP.

Starts ``im2latex-encoder serve`` in its own process on a free loopback port (the models loaded
once and warmed, as a user runs it; `SYMBOLS` and `FORMULAS` name them) and times requests from
this process with `httpx` over real sockets:

- **latency**: `REQUESTS` sequential requests to each endpoint with drawn strokes as JSON, each
  timed from send to parsed answer. ``POST /api/symbols`` gets a two-stroke plus sign
  (21 + 21 points); ``POST /api/formulas`` gets, in turn, the six strokes of "x + 2"
  (95 points) and that expression written twice and three times side by side (12 and 18
  strokes): formulas of three lengths. The ink is the tests' (``tests/serve/serve_drawings.py``).
  Reported: p50 and p95 in ms (the figure's low/high are the fastest and slowest request), and
  the server's own compute time (the answers' ``seconds``) p50 in the notes.
- **throughput**: `CLIENTS` (8) concurrent clients, each with its own connection, sending
  `CONCURRENT_REQUESTS` symbol requests in all, `rounds` times; requests/s per round
  (median and range over rounds).

Target (issue 33): the symbol endpoint answers while the user draws: p95 well under 100 ms.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from benchmarks._harness import Figure, Options, Result, require

SYMBOLS = "crohme101"
FORMULAS = "crohme-formulas"
#: Sequential requests timed per endpoint (after `WARMUP`).
REQUESTS = 200
WARMUP = 10
#: Concurrent clients and the symbol requests they send in all, per throughput round.
CLIENTS = 8
CONCURRENT_REQUESTS = 400
#: Longest the server may take to load its models and answer /healthz.
START_TIMEOUT_S = 300
#: Serve from a thread of this process instead of `im2latex-encoder serve` in its own.
IN_PROCESS = False
#: `Options(tiny=True)`: every path once or twice, the server in this process (no second
#: TensorFlow start-up).
TINY = {"REQUESTS": 3, "WARMUP": 1, "CONCURRENT_REQUESTS": 16, "IN_PROCESS": True}


def _line(start, end, step=6):
    start, end = np.asarray(start, float), np.asarray(end, float)
    count = max(2, int(np.ceil(np.linalg.norm(end - start) / step)) + 1)
    return np.rint(np.linspace(start, end, count)).astype(int).tolist()


def _arc(centre, radius, first, last, step=6):
    count = max(3, int(np.ceil(abs(np.radians(last - first)) * radius / step)) + 1)
    angles = np.radians(np.linspace(first, last, count))
    points = np.stack([centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)])
    return np.rint(points.T).astype(int).tolist()


#: A plus sign and "x + 2", in canvas pixels (the page's 720 × 320 canvas).
PLUS = [_line((300, 160), (420, 160)), _line((360, 100), (360, 220))]
EXPRESSION = [
    _line((90, 130), (150, 200)),
    _line((150, 130), (90, 200)),
    _line((200, 165), (260, 165)),
    _line((230, 135), (230, 195)),
    _arc((345, 150), 28, 200, 380) + _line((372, 158), (320, 205))[1:],
    _line((320, 205), (380, 205)),
]


def _repeated(strokes: list, count: int) -> list:
    """`strokes` written `count` times side by side: a longer formula of the same hand."""
    return [[[x + 300 * k, y] for x, y in stroke] for k in range(count) for stroke in strokes]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(port: int, log) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "im2latex_encoder.cli",
        "serve",
        "--port",
        str(port),
        "--symbols",
        SYMBOLS,
        "--formulas",
        FORMULAS,
    ]
    # The log goes to a file: a pipe nobody reads would fill with access lines and stall it.
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def _wait_healthy(httpx, url: str) -> dict:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            return httpx.get(url + "/healthz", timeout=5).json()
        except httpx.TransportError:
            time.sleep(0.5)
    raise RuntimeError(f"the server did not answer /healthz within {START_TIMEOUT_S} s")


def _latencies(client, path: str, payloads: list, count: int) -> tuple[list, list]:
    """Seconds per request (client side) and the server's own `seconds`, for `count` requests
    cycling over `payloads`."""
    elapsed, compute = [], []
    for index in range(count):
        start = time.perf_counter()
        response = client.post(path, json=payloads[index % len(payloads)])
        answer = response.json()
        elapsed.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}: {answer}")
        compute.append(answer["seconds"])
    return elapsed, compute


def _concurrent_rate(httpx, url: str, payload: dict) -> float:
    """Requests/s of `CLIENTS` threads, each with its own connection, `CONCURRENT_REQUESTS` in all."""
    share = [
        CONCURRENT_REQUESTS // CLIENTS + (i < CONCURRENT_REQUESTS % CLIENTS) for i in range(CLIENTS)
    ]
    errors: list = []
    barrier = threading.Barrier(CLIENTS + 1)

    def client(count: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as session:
            session.get("/healthz")  # connect before the clock starts
            barrier.wait()
            for _ in range(count):
                response = session.post("/api/symbols", json=payload)
                if response.status_code != 200:
                    errors.append(response.text)

    threads = [threading.Thread(target=client, args=(count,)) for count in share]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} concurrent requests failed, e.g. {errors[0][:200]}")
    return CONCURRENT_REQUESTS / seconds


def _percentile_figures(name: str, seconds: list) -> list:
    ms = np.asarray(seconds) * 1000.0
    low, high = float(ms.min()), float(ms.max())
    note = f"{len(ms)} sequential requests, one connection; low/high: fastest/slowest request"
    return [
        Figure(f"{name} p50", "ms", float(np.percentile(ms, 50)), low, high, len(ms), note),
        Figure(f"{name} p95", "ms", float(np.percentile(ms, 95)), low, high, len(ms), note),
    ]


def run(options: Options) -> Result:
    """Start the server, time both endpoints and the symbol endpoint under 8 clients."""
    httpx = require("httpx", "HTTP requests to the server (the dev extra)")
    require("fastapi", "the server (the serve extra)")
    require("uvicorn", "the server (the serve extra)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with _in_process(port) if IN_PROCESS else _own_process(httpx, port, url):
        health = _wait_healthy(httpx, url)
        result = Result("serve")
        with httpx.Client(base_url=url, timeout=60) as client:
            symbols = {"strokes": PLUS}
            formulas = [{"strokes": _repeated(EXPRESSION, count)} for count in (1, 2, 3)]
            _latencies(client, "/api/symbols", [symbols], WARMUP)
            _latencies(client, "/api/formulas", formulas, WARMUP)
            symbol_seconds, symbol_compute = _latencies(client, "/api/symbols", [symbols], REQUESTS)
            formula_seconds, formula_compute = _latencies(
                client, "/api/formulas", formulas, REQUESTS
            )
            latex = client.post("/api/formulas", json=formulas[0]).json()["latex"]
        result.figures += _percentile_figures("POST /api/symbols", symbol_seconds)
        result.figures += _percentile_figures("POST /api/formulas", formula_seconds)
        rates = [_concurrent_rate(httpx, url, symbols) for _ in range(options.rounds(3))]
        result.figures.append(
            Figure(
                f"POST /api/symbols, {CLIENTS} concurrent clients",
                "requests/s",
                statistics.median(rates),
                min(rates),
                max(rates),
                len(rates),
                f"{CONCURRENT_REQUESTS} requests per round over {CLIENTS} connections",
            )
        )
        p95 = float(np.percentile(np.asarray(symbol_seconds) * 1000.0, 95))
        result.notes += [
            f"Models: {health['symbols']['name']} v{health['symbols']['version']}, "
            f"{health['formulas']['name']} v{health['formulas']['version']}; server: "
            + (
                "uvicorn in a thread of this process"
                if IN_PROCESS
                else "`im2latex-encoder serve` in its own process"
            )
            + ", client: httpx in this one, over 127.0.0.1.",
            f"Server compute (the answers' `seconds`) p50: symbols "
            f"{1000 * statistics.median(symbol_compute):.1f} ms, formulas "
            f"{1000 * statistics.median(formula_compute):.1f} ms (the rest is HTTP, JSON and "
            f"the event loop).",
            f"The formula drawn reads as {latex!r}.",
            f"Target: symbol p95 well under 100 ms: {p95:.1f} ms, "
            f"{'met' if p95 < 100 else 'not met'}.",
        ]
        if options.tiny:
            result.notes.append("Tiny mode: a few requests to check every path; not figures.")
        return result


@contextlib.contextmanager
def _own_process(httpx, port: int, url: str):
    """`im2latex-encoder serve` in its own process, as a user runs it; stopped after."""
    with tempfile.TemporaryFile() as log:
        server = _start_server(port, log)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while server.poll() is None and time.monotonic() < deadline:
                try:
                    httpx.get(url + "/healthz", timeout=5)
                    break
                except httpx.TransportError:
                    time.sleep(0.5)
            if server.poll() is not None:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"the server exited ({server.returncode}): {tail}")
            yield
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@contextlib.contextmanager
def _in_process(port: int):
    """The same app under uvicorn in a thread of this process (tiny mode: no second start-up)."""
    import uvicorn

    from im2latex_encoder.serve import create_app

    server = uvicorn.Server(
        uvicorn.Config(create_app(SYMBOLS, FORMULAS), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started and thread.is_alive():
            time.sleep(0.05)
        yield
    finally:
        server.should_exit = True
        thread.join(30)
