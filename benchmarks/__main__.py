"""`python -m benchmarks [--only NAME ...] [--json OUT] [--markdown OUT.md] [--quick|--tiny]`."""

from __future__ import annotations

import argparse
import os
import sys

# Quiet TensorFlow's start-up chatter and keep matplotlib off any display; set before any
# benchmark imports them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")

from benchmarks import BENCHMARKS, _harness  # noqa: E402


def main(argv=None, registry=BENCHMARKS, package="benchmarks") -> int:
    """Run the selected benchmarks, print a summary, write JSON/Markdown; return exit status.

    The status is 0 when every benchmark ran or was unavailable, 1 when one failed.

    Example:
    >>> main(["--only", "train", "--json", "/tmp/bench.json"])  # doctest: +SKIP
    0
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only this benchmark (repeatable); one of {', '.join(registry)}",
    )
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON here")
    parser.add_argument("--markdown", metavar="OUT.md", help="write a Markdown table here")
    parser.add_argument(
        "--quick", action="store_true", help="few rounds: a smoke run, not figures to quote"
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="the smallest sizes and one round: checks that every path runs, figures mean nothing",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads per framework (default: the CPUs this process may use)",
    )
    args = parser.parse_args(argv)

    names = list(registry)
    if args.only:
        unknown = [name for name in args.only if name not in registry]
        if unknown:
            parser.error(f"unknown benchmark(s) {unknown}; expected some of {list(registry)}")
        names = [name for name in registry if name in args.only]
    options = _harness.Options(quick=args.quick, tiny=args.tiny)
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be at least 1. Received: {args.threads}")
        options.threads = args.threads

    facts = _harness.environment(options)
    results = []
    for name in names:
        print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
        result = _harness.run_benchmark(name, options, package=package)
        print(
            f"[benchmarks] {name}: {result.status} ({result.seconds:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        results.append(result)
    print(_harness.to_markdown(facts, results))
    if args.json:
        _harness.write_json(args.json, facts, results)
    if args.markdown:
        _harness.write_markdown(args.markdown, facts, results)
    return 1 if any(r.status.startswith("error") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
