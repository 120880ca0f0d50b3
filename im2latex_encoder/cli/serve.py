"""`im2latex-encoder serve`: the drawing page and JSON API on a local port (needs `.[serve]`)."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="a local web page to draw symbols and formulas and read them, with a JSON API",
        description="Serve the drawing page (/) and the JSON API (POST /api/symbols, POST "
        "/api/formulas, GET /healthz, /docs) with uvicorn. The models are loaded once. Binds "
        "127.0.0.1 (this machine only) unless --host says otherwise. Needs the `serve` extra: "
        "pip install 'im2latex-encoder[serve]'.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, local only)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument(
        "--symbols",
        default="crohme101",
        metavar="PRESET",
        help="symbol classifier preset, name or directory (default: crohme101)",
    )
    parser.add_argument(
        "--formulas",
        default="crohme-formulas",
        metavar="MODEL",
        help="formula recognizer, as recognize --model takes it (default: crohme-formulas, the "
        "default formula model; crohme-formulas-image, the image model, until it is shipped)",
    )
    parser.add_argument(
        "--beam",
        type=int,
        default=None,
        help="beam width for formulas (default: the model's: 4 for a stroke recognizer, whose "
        "beam search counts the symbols; 1, greedy, for the image model)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=1_000_000,
        help="largest request body in bytes (default: 1000000)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds a request may compute before it is refused (default: 10)",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from im2latex_encoder.cli import CLIError

    if not 0 < args.port < 65536:
        raise CLIError(f"--port must lie in 1..65535. Received: {args.port}")
    if args.beam is not None and args.beam < 1:
        raise CLIError(f"--beam must be at least 1. Received: {args.beam}")
    try:
        import uvicorn

        from im2latex_encoder.serve import ServeLimits, create_app
    except ModuleNotFoundError as error:
        raise CLIError(
            f"serve needs the `serve` extra ({error.name} is missing): "
            "pip install 'im2latex-encoder[serve]'"
        ) from None
    limits = ServeLimits(max_body_bytes=args.max_body_bytes, timeout_s=args.timeout)
    print(f"im2latex-encoder serve: loading {args.symbols} and {args.formulas} ...", flush=True)
    app = create_app(args.symbols, args.formulas, limits=limits, beam_width=args.beam)
    where = "this machine only" if args.host in ("127.0.0.1", "localhost", "::1") else "the network"
    print(
        f"im2latex-encoder serve: http://{args.host}:{args.port}/ (bound to {args.host}: "
        f"{where}); API docs at /docs; Ctrl+C stops it",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
