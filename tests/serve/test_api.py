"""The JSON API: answers through the library's own paths, and every bad input refused with a 4xx."""

import gzip
import json
import struct
import zlib

import numpy as np
import pytest

from im2latex_encoder.cli import main
from im2latex_encoder.recognizer.saving import resolve_formula_model
from inkml_fixtures import build_inkml
from serve_drawings import EXPRESSION, PLUS, as_arrays, as_json


def _recognize_prints(path, capsys) -> str:
    """The LaTeX `im2latex-encoder recognize FILE` prints for one file."""
    capsys.readouterr()
    assert main(["recognize", "--model", "crohme-formulas", str(path)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(path) + "\t"), line
    return line.split("\t", 1)[1]


def _png(image_uint8) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", image_uint8)
    assert ok
    return data.tobytes()


def _paper(strokes) -> np.ndarray:
    """The strokes drawn dark on light paper, as a photo or scan of them would be."""
    from im2latex_encoder.data.render import render_strokes

    return (255 - np.rint(render_strokes(as_arrays(strokes), (120, 360)) * 255)).astype(np.uint8)


# === Answers ===


def test_symbol_answer_is_predicts_answer_for_the_same_strokes_in_an_inkml_file(
    client, symbol_reader, tmp_path
):
    from im2latex_encoder.data.symbol_files import load_symbol_file

    path = tmp_path / "plus.inkml"
    path.write_bytes(build_inkml(PLUS))
    expected = symbol_reader.classifier.predict_labels(
        load_symbol_file(path, symbol_reader.image_size), top_k=5
    )[0]

    answer = client.post("/api/symbols", json=as_json(PLUS)).json()

    assert answer["model"] == {"name": "crohme101", "version": "8"}
    assert answer["input"] == "strokes" and answer["seconds"] > 0
    assert [c["label"] for c in answer["candidates"]] == [label for label, _ in expected]
    np.testing.assert_allclose(
        [c["score"] for c in answer["candidates"]], [p for _, p in expected], rtol=1e-5
    )
    assert answer["candidates"][0] == {
        "label": "+",
        "latex": "+",
        "score": pytest.approx(expected[0][1], rel=1e-5),
    }
    scores = [c["score"] for c in answer["candidates"]]
    assert scores == sorted(scores, reverse=True)

    uploaded = client.post("/api/symbols", files={"file": ("plus.inkml", path.read_bytes())})
    assert uploaded.json()["input"] == "inkml"
    assert uploaded.json()["candidates"] == answer["candidates"]


def test_symbol_answer_for_an_uploaded_png_is_predicts(client, symbol_reader, tmp_path):
    from im2latex_encoder.data.symbol_files import load_symbol_file

    path = tmp_path / "plus.png"
    path.write_bytes(_png(_paper(PLUS)))
    expected = symbol_reader.classifier.predict_labels(
        load_symbol_file(path, symbol_reader.image_size), top_k=5
    )[0]

    answer = client.post(
        "/api/symbols", content=path.read_bytes(), headers={"content-type": "image/png"}
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["input"] == "image"
    assert [c["label"] for c in answer.json()["candidates"]] == [label for label, _ in expected]


def test_formula_answer_is_exactly_what_recognize_prints(client, tmp_path, capsys):
    path = tmp_path / "expression.inkml"
    path.write_bytes(build_inkml(EXPRESSION))
    printed = _recognize_prints(path, capsys)

    answer = client.post("/api/formulas", json=as_json(EXPRESSION)).json()
    uploaded = client.post(
        "/api/formulas", files={"file": ("expression.inkml", path.read_bytes())}
    ).json()

    assert answer["latex"] == printed
    # The default formula model: `crohme-formulas`, the image model's name until it is shipped.
    assert answer["model"]["name"] == resolve_formula_model("crohme-formulas")
    assert answer["input"] == "strokes"
    assert uploaded["latex"] == printed and uploaded["input"] == "inkml"


def test_formula_answer_for_an_uploaded_png_is_what_recognize_prints(client, tmp_path, capsys):
    path = tmp_path / "expression.png"
    path.write_bytes(_png(_paper(EXPRESSION)))
    printed = _recognize_prints(path, capsys)

    answer = client.post("/api/formulas", files={"file": ("expression.png", path.read_bytes())})

    assert answer.status_code == 200, answer.text
    assert answer.json()["latex"] == printed and answer.json()["input"] == "image"


@pytest.mark.slow
def test_formula_answer_is_recognizes_on_crohme_test_files(client, crohme_dir, tmp_path, capsys):
    from im2latex_encoder.data.inkml import read_inkml

    files = sorted((crohme_dir / "test2016").glob("*.inkml"))[:3]
    for path in files:
        strokes = [s for s in read_inkml(path).strokes() if len(s)]
        answer = client.post(
            "/api/formulas", json={"strokes": [stroke.tolist() for stroke in strokes]}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["latex"] == _recognize_prints(path, capsys), path.name


def test_health_openapi_and_the_page(client):
    health = client.get("/healthz").json()
    assert health["status"] == "ok"
    assert health["symbols"]["name"] == "crohme101"
    assert health["formulas"]["name"] == resolve_formula_model("crohme-formulas")
    schema = client.get("/openapi.json").json()
    assert {"/api/symbols", "/api/formulas", "/healthz"} <= set(schema["paths"])
    body = schema["paths"]["/api/formulas"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data", "image/png"} <= set(body)
    page = client.get("/")
    assert page.status_code == 200 and 'id="canvas"' in page.text
    # Nothing is fetched from elsewhere: the policy allows this server's resources only.
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")
    assert client.get("/static/katex/katex.min.js").status_code == 200
    assert client.get("/static/katex/fonts/KaTeX_Main-Regular.woff2").status_code == 200


# === Bad input: each refused with a 4xx and a JSON message; the server keeps serving ===


def _png_header(width: int, height: int) -> bytes:
    """A PNG of a few bytes whose header claims `width` × `height` pixels (no pixel data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def _blank_png() -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", np.full((40, 40), 255, np.uint8))
    return data.tobytes()


_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE ink [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(8)
    )
    + b']><ink><trace id="t">0 0, &i;</trace></ink>'
)
_JSON = {"content-type": "application/json"}
BAD_INPUTS = {
    "malformed JSON": (dict(content=b'{"strokes": [[[0, 0]', headers=_JSON), 400, "malformed JSON"),
    "not UTF-8": (dict(content=b"\xff\xfe{}", headers=_JSON), 400, "UTF-8"),
    "NaN coordinate": (dict(content=b'{"strokes": [[[0, NaN]]]}', headers=_JSON), 422, "NaN"),
    "Infinity coordinate": (
        dict(content=b'{"strokes": [[[0, 0], [Infinity, 1]]]}', headers=_JSON),
        422,
        "finite",
    ),
    "overflowing coordinate": (
        dict(content=b'{"strokes": [[[0, 0], [1e999, 1]]]}', headers=_JSON),
        422,
        "finite",
    ),
    "huge coordinate": (dict(json={"strokes": [[[0, 0], [1e12, 1]]]}), 422, "within"),
    "an integer beyond any float": (
        dict(content=b'{"strokes": [[[1' + b"0" * 400 + b", 0]]]}", headers=_JSON),
        422,
        "too large for a float",
    ),
    "an integer of 5000 digits": (
        dict(content=b'{"strokes": [[[1' + b"0" * 5000 + b", 0]]]}", headers=_JSON),
        422,
        "numbers a float can hold",
    ),
    "deeply nested JSON": (dict(content=b"[" * 100_000, headers=_JSON), 400, "nesting"),
    "a stroke of 10^6 points": (
        dict(content=b'{"strokes": [[' + b",".join([b"[1,2]"] * 10**6) + b"]]}", headers=_JSON),
        413,
        "at most 1000000 bytes",
    ),
    "empty drawing": (dict(json={"strokes": []}), 422, "empty drawing"),
    "empty stroke": (dict(json={"strokes": [[]]}), 422, "non-empty list"),
    "no strokes key": (dict(json={"points": []}), 422, '"strokes"'),
    "a list, not an object": (dict(json=[[0, 0]]), 422, "JSON list"),
    "point of three values": (dict(json={"strokes": [[[0, 0, 0]]]}), 422, "[x, y]"),
    "point of strings": (dict(json={"strokes": [[["0", "1"]]]}), 422, "two numbers"),
    "too many strokes": (
        dict(json={"strokes": [[[i, i]] for i in range(501)]}),
        422,
        "at most 500",
    ),
    "a PNG that is not one": (
        dict(content=b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, headers={"content-type": "image/png"}),
        422,
        "not a readable image",
    ),
    "a 10^5 x 10^5 image header": (
        dict(files={"file": ("huge.png", _png_header(100_000, 100_000))}),
        422,
        "pixels",
    ),
    "an InkML entity bomb": (
        dict(files={"file": ("bomb.inkml", _LAUGHS)}),
        422,
        "entities",
    ),
    "a gzip bomb of an InkML": (
        dict(
            files={"file": ("bomb.inkml", gzip.compress(b"<ink>" + b" " * 10_000_000 + b"</ink>"))}
        ),
        415,
        "gzip-compressed",
    ),
    "a gzip-encoded body": (
        dict(
            content=gzip.compress(json.dumps(as_json(PLUS)).encode()),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        ),
        415,
        "uncompressed body",
    ),
    "an upload over 1 MB": (
        dict(files={"file": ("big.png", b"\x89PNG\r\n\x1a\n" + bytes(1_100_000))}),
        413,
        "at most 1000000 bytes",
    ),
    "an InkML without traces": (
        dict(content=b"<ink></ink>", headers={"content-type": "application/xml"}),
        422,
        "no <trace>",
    ),
    "neither InkML nor an image": (
        dict(files={"file": ("notes.txt", b"just some text")}),
        415,
        "expected an InkML file, a PNG or a JPEG",
    ),
    "a form without a file": (dict(files={"upload": ("x.inkml", b"<ink/>")}), 422, "`file` field"),
    "plain text": (dict(content=b"x", headers={"content-type": "text/plain"}), 415, "Content-Type"),
}


@pytest.mark.parametrize("endpoint", ["/api/symbols", "/api/formulas"])
@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_refused_with_a_message_and_the_server_keeps_serving(client, endpoint, name):
    request, status, message = BAD_INPUTS[name]

    answer = client.post(endpoint, **request)

    assert answer.status_code == status, (name, answer.text)
    assert message in answer.json()["error"], (name, answer.json())
    assert client.get("/healthz").status_code == 200


def test_a_blank_image_is_no_symbol_and_no_formula(client, tmp_path, capsys):
    path = tmp_path / "blank.png"
    path.write_bytes(_blank_png())

    symbol = client.post("/api/symbols", files={"file": ("blank.png", path.read_bytes())})
    formula = client.post("/api/formulas", files={"file": ("blank.png", path.read_bytes())})

    assert symbol.status_code == 422
    assert symbol.json()["error"] == "blank.png: blank image: no ink found"
    assert formula.status_code == 422  # no formula to read, as `recognize` says
    assert formula.json()["error"] == "blank.png: blank image: no ink found"
    assert client.get("/healthz").status_code == 200
    capsys.readouterr()
    assert main(["recognize", "--model", "crohme-formulas", str(path)]) == 2
    assert f"{path}: blank image: no ink found" in capsys.readouterr().err


@pytest.mark.slow
def test_a_stroke_of_10_6_points_is_refused_by_count_when_the_body_may_be_larger(
    symbol_reader,
):
    from fastapi.testclient import TestClient

    from im2latex_encoder.serve import ServeLimits, create_app

    app = create_app(
        symbol_reader=symbol_reader, formulas=None, limits=ServeLimits(max_body_bytes=10**7)
    )
    with TestClient(app) as client:
        body = b'{"strokes": [[' + b",".join([b"[1,2]"] * 10**6) + b"]]}"
        answer = client.post("/api/symbols", content=body, headers=_JSON)
        assert answer.status_code == 422
        assert answer.json()["error"] == (
            "expected at most 10000 points per stroke. Received: 1000000 in stroke 0"
        )
        assert client.get("/healthz").status_code == 200


def test_a_request_over_its_time_is_refused(symbol_reader):
    from fastapi.testclient import TestClient

    from im2latex_encoder.serve import ServeLimits, create_app

    app = create_app(symbol_reader=symbol_reader, formulas=None, limits=ServeLimits(timeout_s=1e-6))
    with TestClient(app) as client:
        answer = client.post("/api/symbols", json=as_json(PLUS))
        assert answer.status_code == 503
        assert "within 1e-06 s" in answer.json()["error"]
        assert client.get("/healthz").status_code == 200


def test_no_endpoint_reads_a_file_the_client_names(client, tmp_path):
    secret = tmp_path / "secret.inkml"
    secret.write_bytes(build_inkml(PLUS))
    assert client.get("/static/../app.py").status_code == 404
    assert client.get(f"/static/{secret}").status_code == 404
    # A file name in an upload names the upload only; its content is what is read.
    answer = client.post(
        "/api/symbols", files={"file": (str(secret), b"<ink><trace>0 0, 0 9</trace></ink>")}
    )
    assert answer.status_code == 200
    plus = client.post("/api/symbols", json=as_json(PLUS)).json()["candidates"]
    assert answer.json()["candidates"] != plus
