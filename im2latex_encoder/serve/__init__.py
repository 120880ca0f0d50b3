"""A local web page and JSON API to draw a symbol or a formula and read it (`im2latex-encoder serve`).

FastAPI served by uvicorn, both in the optional extra ``serve`` (``pip install
'im2latex-encoder[serve]'``). The page (`static/index.html`) draws with pointer events (mouse,
pen, touch) and renders LaTeX with KaTeX, vendored in `static/katex/` with its licence: no
request leaves the machine.

| module | holds |
| --- | --- |
| `app` | `create_app`: the page, `POST /api/symbols`, `POST /api/formulas`, `GET /healthz` |
| `limits` | `ServeLimits`, `RequestRejected`, the strokes' JSON checked against the limits |
| `uploads` | uploaded InkML, PNG and JPEG files read with the library's guarded readers |
| `readers` | `SymbolReader`, `FormulaReader`: the models, loaded once and warmed |

Example:
>>> from fastapi.testclient import TestClient
>>> from im2latex_encoder.serve import create_app
>>> client = TestClient(create_app("crohme101", formulas=None))
>>> client.post("/api/symbols", json={"strokes": []}).json()
{'error': 'expected at least one stroke. Received: an empty drawing'}
"""

from im2latex_encoder.serve.limits import RequestRejected, ServeLimits, parse_strokes


def create_app(*args, **kwargs):
    """Make the web app (see `im2latex_encoder.serve.app.create_app`); needs FastAPI.

    Example:
    >>> app = create_app("crohme101", None)  # doctest: +SKIP
    """
    from im2latex_encoder.serve.app import create_app as create

    return create(*args, **kwargs)


__all__ = ["RequestRejected", "ServeLimits", "create_app", "parse_strokes"]
