"""The ASGI app: the drawing page, `POST /api/symbols`, `POST /api/formulas`, `GET /healthz`.

The models are loaded once, when the app is made, and warmed. Each request's body is read with
its size bounded (`ServeLimits.max_body_bytes`) before anything is parsed; the parsing, drawing
and model call run in a worker thread, off the event loop, bounded by `ServeLimits.timeout_s`.
Every refusal is a 4xx with a JSON body ``{"error": message}`` saying what was expected and
what was received.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations (`Request`,
# imported inside `create_app` so that importing this module needs no FastAPI) at definition.
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from im2latex_encoder.serve.limits import RequestRejected, ServeLimits, parse_json, parse_strokes

STATIC = Path(__file__).parent / "static"
#: Content types read as an uploaded file's raw bytes (curl --data-binary).
RAW_TYPES = (
    "image/png",
    "image/jpeg",
    "application/xml",
    "text/xml",
    "application/inkml+xml",
    "application/octet-stream",
)
#: The page's resources are the server's own: nothing is fetched from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; script-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'"
)

_STROKES_SCHEMA = {
    "type": "object",
    "required": ["strokes"],
    "properties": {
        "strokes": {
            "type": "array",
            "description": "Strokes in drawing order; each a list of [x, y] points, any units, "
            "Y down.",
            "items": {
                "type": "array",
                "items": {
                    "type": "array",
                    "items": {"type": "number"},
                    "minItems": 2,
                    "maxItems": 2,
                },
            },
        }
    },
    "example": {"strokes": [[[0, 0], [10, 10]], [[10, 0], [0, 10]]]},
}
_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _STROKES_SCHEMA},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "An InkML file, a PNG or a JPEG",
                        }
                    },
                }
            },
            **{kind: {"schema": {"type": "string", "format": "binary"}} for kind in RAW_TYPES},
        },
    }
}


def create_app(
    symbols: str | os.PathLike | None = "crohme101",
    formulas: str | os.PathLike | None = "crohme-formulas",
    *,
    limits: ServeLimits | None = None,
    beam_width: int | None = None,
    symbol_reader=None,
    formula_reader=None,
):
    """Make the web app: load the models once, warm them, and route the page and the API.

    Args:
        symbols: str, PathLike or None. Symbol classifier preset (name or directory); None
            leaves `POST /api/symbols` answering 503.
        formulas: str, PathLike or None. Formula recognizer, as `recognize --model` takes it;
            None leaves `POST /api/formulas` answering 503.
        limits: ServeLimits or None. Request bounds (the defaults when None).
        beam_width: int or None. Beam width of the formula recognizer (1: greedy; None: the
            model's `default_beam_width`, as `recognize` reads).
        symbol_reader: SymbolReader or None. An already loaded reader (used instead of
            `symbols`), e.g. to share one between apps.
        formula_reader: FormulaReader or None. The same for formulas.

    Returns:
        A `fastapi.FastAPI` app; serve it with ``uvicorn.run(app)`` or
        ``im2latex-encoder serve``.

    Example:
    >>> from fastapi.testclient import TestClient
    >>> app = create_app("crohme101", None)
    >>> client = TestClient(app)
    >>> client.get("/healthz").json()["symbols"]
    {'name': 'crohme101', 'version': '8'}
    >>> answer = client.post("/api/symbols", json={"strokes": [[[0, 5], [10, 5]], [[5, 0], [5, 10]]]})
    >>> answer.status_code, len(answer.json()["candidates"])
    (200, 5)
    >>> client.post("/api/symbols", content=b"{not json", headers={"content-type": "application/json"}).json()["error"][:40]
    'expected a JSON body such as {"strokes":'
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    from im2latex_encoder.serve.readers import FormulaReader, SymbolReader
    from im2latex_encoder.version import __version__

    limits = limits or ServeLimits()
    if symbol_reader is None and symbols is not None:
        symbol_reader = SymbolReader.from_preset(symbols)
    if formula_reader is None and formulas is not None:
        formula_reader = FormulaReader.from_preset(formulas, beam_width=beam_width)

    app = FastAPI(
        title="im2latex-encoder",
        version=__version__,
        description="Draw a handwritten symbol or formula and read it: the symbol classifier's "
        "top 5 and the formula recognizer's LaTeX. Strokes as JSON (any units, Y down) or an "
        "uploaded InkML, PNG or JPEG file.",
    )
    app.state.limits = limits
    app.state.symbol_reader = symbol_reader
    app.state.formula_reader = formula_reader

    @app.exception_handler(RequestRejected)
    async def _rejected(request, error: RequestRejected):
        return JSONResponse({"error": error.message}, status_code=error.status)

    @app.exception_handler(Exception)
    async def _failed(request, error: Exception):
        # A bug, not bad input: the client gets JSON without internals, the log the traceback.
        logging.getLogger("im2latex_encoder.serve").exception("request failed")
        return JSONResponse(
            {"error": f"the server failed on this request ({type(error).__name__}); see its log"},
            status_code=500,
        )

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(
            STATIC / "index.html", headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY}
        )

    @app.get("/healthz")
    async def healthz() -> dict:
        """The server is up; the models it reads with."""
        return {
            "status": "ok",
            "symbols": symbol_reader.info.to_dict() if symbol_reader else None,
            "formulas": formula_reader.info.to_dict() if formula_reader else None,
            "limits": {
                "max_body_bytes": limits.max_body_bytes,
                "max_strokes": limits.max_strokes,
                "max_points_per_stroke": limits.max_points_per_stroke,
                "max_points": limits.max_points,
                "timeout_s": limits.timeout_s,
            },
        }

    @app.post("/api/symbols", openapi_extra=_REQUEST_BODY)
    async def read_symbol(request: Request) -> dict:
        """The top 5 symbols of one drawn symbol (strokes) or an uploaded symbol file.

        Answers ``{"model", "seconds", "input", "candidates": [{"label", "latex", "score"}]}``,
        best first; `label` is the CROHME class name, `latex` what typesets it.
        """
        reader = _loaded(symbol_reader, "symbol")
        source = await _request_input(request, limits)

        def work() -> dict:
            kind, strokes, gray, name = _decoded(source, limits)
            if kind == "image":
                return {"input": kind, "candidates": reader.read_image(gray, name=name)}
            return {"input": kind, "candidates": reader.read_strokes(strokes)}

        return await _timed(work, reader.info, limits)

    @app.post("/api/formulas", openapi_extra=_REQUEST_BODY)
    async def read_formula(request: Request) -> dict:
        """The LaTeX of one drawn expression (strokes) or an uploaded expression file.

        Answers ``{"model", "seconds", "input", "latex", "stroke_symbols"}``: `latex` is exactly
        what `im2latex-encoder recognize` prints for the same strokes in an InkML file;
        `stroke_symbols` is the symbol each stroke was read as, when the model can say
        (else null).
        """
        reader = _loaded(formula_reader, "formula")
        source = await _request_input(request, limits)

        def work() -> dict:
            from im2latex_encoder.recognizer.preprocessor import expression_ink

            kind, strokes, gray, name = _decoded(source, limits)
            if kind == "image":
                latex, symbols = reader.read_image(expression_ink(gray, name=name)), None
            else:
                latex, symbols = reader.read_strokes(strokes)
            return {"input": kind, "latex": latex, "stroke_symbols": symbols}

        return await _timed(work, reader.info, limits)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _loaded(reader, what: str):
    if reader is None:
        raise RequestRejected(503, f"this server was started without a {what} model")
    return reader


async def _read_body(request, limits: ServeLimits) -> bytes:
    """The request body, refused past `max_body_bytes` (declared or streamed)."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise RequestRejected(
            415,
            f"expected an uncompressed body. Received: Content-Encoding {encoding[:20]!r}",
        )
    declared = request.headers.get("content-length")
    too_large = (
        f"expected a body of at most {limits.max_body_bytes} bytes "
        f"({limits.max_body_bytes / 1e6:g} MB). Received: "
    )
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise RequestRejected(413, too_large + f"{int(declared)} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise RequestRejected(413, too_large + "more")
        chunks.append(chunk)
    return b"".join(chunks)


async def _request_input(request, limits: ServeLimits) -> tuple:
    """``("json", payload)`` or ``("file", bytes, name)``, from the request's content type."""
    from starlette.requests import Request

    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _read_body(request, limits)
    if content_type == "application/json":
        return ("json", body)
    if content_type in RAW_TYPES:
        return ("file", body, "<upload>")
    if content_type == "multipart/form-data":

        async def replay():
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(max_files=1, max_fields=8)
        except Exception as error:  # noqa: BLE001 - starlette raises several kinds for bad forms
            raise RequestRejected(
                400, f"expected a multipart form with a `file` field. Received: {error}"
            ) from None
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise RequestRejected(
                422,
                "expected a multipart form with a `file` field holding the file. Received: "
                f"fields {sorted(form.keys())[:8]}",
            )
        name = os.path.basename(upload.filename or "<upload>")[:80] or "<upload>"
        return ("file", await upload.read(), name)
    raise RequestRejected(
        415,
        "expected application/json strokes, a multipart/form-data upload or a raw file "
        f"({', '.join(RAW_TYPES)}). Received: Content-Type {content_type[:60]!r}",
    )


def _decoded(source: tuple, limits: ServeLimits) -> tuple:
    """``(kind, strokes, gray, name)``: parsed in the worker thread, not on the event loop."""
    from im2latex_encoder.serve.uploads import read_upload

    if source[0] == "json":
        return "strokes", parse_strokes(parse_json(source[1]), limits), None, None
    upload = read_upload(source[1], source[2], limits)
    return upload.kind, upload.strokes, upload.gray, source[2]


async def _timed(work: Callable[[], dict], info, limits: ServeLimits) -> dict[str, Any]:
    """Run `work` in a worker thread within the time limit; add the model and the time."""
    import anyio

    from im2latex_encoder.data.errors import DataError

    start = time.perf_counter()
    try:
        with anyio.fail_after(limits.timeout_s):
            answer = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    except DataError as error:  # the library's readers refused the input (a blank image, ...)
        raise RequestRejected(422, str(error)) from None
    except TimeoutError:
        raise RequestRejected(
            503,
            f"expected an answer within {limits.timeout_s:g} s. Received: a request that took "
            "longer; try a smaller drawing",
        ) from None
    return {"model": info.to_dict(), "seconds": round(time.perf_counter() - start, 4), **answer}
