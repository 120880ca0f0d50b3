"""The server's tests share one loaded symbol reader and formula reader (loading takes seconds)."""

import pytest

pytest.importorskip("fastapi", reason="the `serve` extra (fastapi, uvicorn) is not installed")


@pytest.fixture(scope="session")
def symbol_reader():
    from im2latex_encoder.serve.readers import SymbolReader

    return SymbolReader.from_preset("crohme101")


@pytest.fixture(scope="session")
def formula_reader():
    from im2latex_encoder.serve.readers import FormulaReader

    return FormulaReader.from_preset("crohme-formulas")


@pytest.fixture(scope="session")
def serve_app(symbol_reader, formula_reader):
    """The app with the shipped models and the default limits."""
    from im2latex_encoder.serve import create_app

    return create_app(symbol_reader=symbol_reader, formula_reader=formula_reader)


@pytest.fixture(scope="module")
def client(serve_app):
    from fastapi.testclient import TestClient

    with TestClient(serve_app) as client:
        yield client
