"""`im2latex-encoder serve`: its help costs no TensorFlow or FastAPI, it binds 127.0.0.1 and says so."""

import subprocess
import sys

import pytest

from im2latex_encoder.cli import main


def test_help_and_argument_errors_import_neither_tensorflow_nor_fastapi():
    code = (
        "import sys\n"
        "from im2latex_encoder.cli import main\n"
        "for argv in (['--help'], ['serve', '--help'], ['serve', '--port', '0']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "loaded = sorted({'tensorflow', 'fastapi', 'uvicorn', 'keras'} & set(sys.modules))\n"
        "print('LOADED', loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "LOADED []" in result.stdout, result.stdout + result.stderr
    assert "serve" in result.stdout  # listed in the top-level help
    assert "--port must lie in 1..65535. Received: 0" in result.stderr


def test_serve_binds_the_loopback_address_by_default_and_says_so(monkeypatch, capsys):
    import uvicorn

    import im2latex_encoder.serve as serve

    made, ran = {}, {}
    monkeypatch.setattr(serve, "create_app", lambda *args, **kwargs: made.update(kwargs) or "app")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: ran.update(kwargs, app=app))

    assert main(["serve", "--max-body-bytes", "2000", "--timeout", "3"]) == 0

    assert ran["host"] == "127.0.0.1" and ran["port"] == 8000 and ran["app"] == "app"
    assert made["limits"].max_body_bytes == 2000 and made["limits"].timeout_s == 3
    assert "bound to 127.0.0.1: this machine only" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["serve", "--beam", "0"], "--beam must be at least 1. Received: 0"),
        (["serve", "--max-body-bytes", "0"], "max_body_bytes"),
    ],
)
def test_serve_refuses_bad_settings_before_loading_anything(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
