"""Run one timed candidate in a subprocess, driven line by line from the parent.

Some candidates need a process of their own: Keras reads `KERAS_BACKEND` once, TensorFlow reads
`TF_ENABLE_ONEDNN_OPTS` once. `SubprocessCandidate` starts ``python -m benchmarks._worker``
with a factory ``"module:function"`` and its keyword arguments; the factory returns a callable
that runs one unit of work and returns its seconds. The parent sends ``run`` for each round and
reads back the seconds the worker measured, so the subprocess takes part in the same
interleaved rounds as the in-process candidates (it sleeps on its pipe in between).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

from benchmarks._harness import TINY_ENV, tiny_sizes


class SubprocessCandidate:
    """A candidate timed in a worker subprocess (use as a context manager, then call it).

    Args:
        factory: str. ``"module:function"``; ``function(**kwargs)`` returns a callable that
            runs one unit of work and returns the seconds it took, or a dict of such callables
            (then time each with `candidate(key)`).
        kwargs: dict. JSON-serialisable keyword arguments for the factory.
        env: dict. Extra environment variables for the worker (e.g. ``KERAS_BACKEND``).
        timeout: float. Seconds to wait for the worker's start-up.

    Example:
    >>> with SubprocessCandidate("benchmarks._worker:sleep_candidate", {"seconds": 0.01}) as c:
    ...     c() >= 0.01  # doctest: +SKIP
    True
    """

    def __init__(self, factory: str, kwargs: dict | None = None, env: dict | None = None):
        self.factory, self.kwargs = factory, dict(kwargs or {})
        self.env = dict(os.environ, **(env or {}))
        self.process = None
        self.info: dict = {}

    def __enter__(self) -> SubprocessCandidate:
        spec = json.dumps({"factory": self.factory, "kwargs": self.kwargs})
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.env["PYTHONPATH"] = os.pathsep.join(
            [root] + [p for p in self.env.get("PYTHONPATH", "").split(os.pathsep) if p]
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._worker", spec],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=root,
        )
        line = self._read()
        self.info = json.loads(line[len("ready ") :])
        return self

    def _read(self) -> str:
        line = self.process.stdout.readline()
        if line.startswith("ready ") or line.startswith("seconds "):
            return line.strip()
        self.process.kill()
        error = self.process.stderr.read()[-2000:]
        raise RuntimeError(f"worker {self.factory} failed: {line.strip() or error.strip()}")

    def __call__(self, key: str = "") -> float:
        self.process.stdin.write(f"run {key}".strip() + "\n")
        self.process.stdin.flush()
        return float(self._read().split()[1])

    def candidate(self, key: str):
        """Return a callable timing the worker's candidate `key` (factories returning dicts).

        Example:
        >>> with SubprocessCandidate("m:f") as worker:  # doctest: +SKIP
        ...     seconds = worker.candidate("jax 128x128 b64")()
        """
        return lambda: self(key)

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def sleep_candidate(seconds: float):
    """A trivial candidate for tests: sleeps `seconds` per unit of work.

    Example:
    >>> round(sleep_candidate(0.0)(), 1)
    0.0
    """
    import time

    from benchmarks._harness import timed

    run = timed(lambda: time.sleep(seconds))
    run.info = {"slept": seconds}
    return run


def main(argv=None) -> None:
    """Worker entry point: build the candidate, answer ``run`` lines with seconds."""
    spec = json.loads((argv or sys.argv[1:])[0])
    module_name, function_name = spec["factory"].split(":")
    module = importlib.import_module(module_name)
    if os.environ.get(TINY_ENV) == "1":  # the parent runs in tiny mode: the same sizes here
        tiny_sizes(module).__enter__()
    candidate = getattr(module, function_name)(**spec["kwargs"])
    if isinstance(candidate, dict):
        info = {key: getattr(value, "info", {}) for key, value in candidate.items()}
    else:
        info = getattr(candidate, "info", {})
    print("ready " + json.dumps(info), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "run" or command.startswith("run "):
            key = command[4:]
            seconds = candidate[key]() if isinstance(candidate, dict) else candidate()
            print(f"seconds {seconds:.9f}", flush=True)
        elif command == "quit":
            break


if __name__ == "__main__":
    main()
