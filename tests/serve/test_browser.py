"""The page in a real browser: Debian's headless Chromium driven by Selenium.

One server (uvicorn on a free loopback port, in a thread) and one browser for the module. The
tests draw with pen pointer events along the strokes of an InkML expression they write
themselves (and of a CROHME 2016 test expression when `../shared` is present), and check what
a person would see: the top symbol, the formula's LaTeX and its KaTeX rendering, the error for
an oversized upload. Each state's screenshot is saved under ``tests-artifacts/serve/``.
"""

import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from inkml_fixtures import build_inkml
from serve_drawings import EXPRESSION, PLUS

pytest.importorskip("selenium", reason="selenium (the `dev` extra) is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not CHROMIUM or not CHROMEDRIVER:
    pytest.skip(
        "the browser tests need Debian's Chromium and its driver: "
        "apt-get install chromium chromium-driver (found: "
        f"chromium={CHROMIUM}, chromedriver={CHROMEDRIVER})",
        allow_module_level=True,
    )

pytestmark = pytest.mark.slow

ARTEFACTS = Path(__file__).resolve().parents[2] / "tests-artifacts" / "serve"
#: The page's canvas in CSS pixels (page.css); the drawings are made for it.
CANVAS = (720, 320)
#: Generous bound on waiting for the page (a hung page fails instead of hanging the suite).
PATIENCE_S = 120


@pytest.fixture(scope="module")
def server_url(serve_app):
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # a free loopback port, never another interface
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(serve_app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(PATIENCE_S * 10):
        if server.started:
            started.set()
            break
        started.wait(0.1)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)
    sock.close()


@pytest.fixture(scope="module")
def browser(server_url):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,760",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(PATIENCE_S)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _open(browser, server_url, mode):
    from selenium.webdriver.common.by import By

    browser.get(server_url + "/")
    _wait(browser, lambda d: d.find_element(By.ID, "models").text.startswith("Models:"))
    browser.find_element(By.CSS_SELECTOR, f'input[name="mode"][value="{mode}"]').click()
    return browser.find_element(By.ID, "canvas")


def _wait(browser, condition):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, PATIENCE_S).until(condition)


def _requests(browser) -> int:
    """How many requests the page has sent."""
    return int(browser.execute_script("return window.inkPage.request"))


def _answered(browser, after: int) -> bool:
    """The page shows the answer to its latest request, sent after the first `after`."""
    return bool(
        browser.execute_script(
            "const page = window.inkPage; return page.request > arguments[0] "
            "&& page.shown === page.request",
            after,
        )
    )


def _draw(browser, canvas, strokes):
    """Move a pen along each stroke's points (canvas pixels) with pointer events."""
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    centre_x, centre_y = CANVAS[0] // 2, CANVAS[1] // 2  # offsets are from the element's centre
    for stroke in strokes:
        actions = ActionBuilder(
            browser, mouse=PointerInput(interaction.POINTER_PEN, "pen"), duration=0
        )
        pen = actions.pointer_action
        pen.move_to(canvas, stroke[0][0] - centre_x, stroke[0][1] - centre_y)
        pen.pointer_down()
        for x, y in stroke[1:]:
            pen.move_to(canvas, x - centre_x, y - centre_y)
        pen.pointer_up()
        actions.perform()


def _captured(browser) -> list:
    return browser.execute_script("return window.inkPage.strokes")


def _assert_drawn_as_given(browser, strokes):
    """The page kept every point of every stroke (up to where the canvas sits on screen)."""
    captured = _captured(browser)
    assert [len(s) for s in captured] == [len(s) for s in strokes]
    offset = np.asarray(captured[0][0]) - np.asarray(strokes[0][0])
    for got, want in zip(captured, strokes):
        np.testing.assert_allclose(np.asarray(got) - offset, np.asarray(want, float))


def _shot(browser, name) -> Path:
    path = ARTEFACTS / name
    browser.save_screenshot(str(path))
    return path


def test_symbol_mode_shows_the_top_5_as_predict_reads_the_same_ink(
    browser, server_url, symbol_reader, tmp_path
):
    from selenium.webdriver.common.by import By

    from im2latex_encoder.data.symbol_files import load_symbol_file

    path = tmp_path / "plus.inkml"
    path.write_bytes(build_inkml(PLUS))
    expected = symbol_reader.classifier.predict_labels(
        load_symbol_file(path, symbol_reader.image_size), top_k=5
    )[0]
    canvas = _open(browser, server_url, "symbol")

    before = _requests(browser)
    _draw(browser, canvas, PLUS)
    _wait(browser, lambda d: _requests(d) == before + len(PLUS))  # one request a stroke
    _wait(browser, lambda d: _answered(d, before))
    _shot(browser, "symbol-mode.png")

    _assert_drawn_as_given(browser, PLUS)
    items = browser.find_elements(By.CSS_SELECTOR, "#candidates li")
    assert len(items) == 5
    shown = [item.find_element(By.CSS_SELECTOR, "code.latex").text for item in items]
    assert shown == [label for label, _ in expected]  # these labels are their own LaTeX
    assert shown[0] == "+"
    assert items[0].find_elements(By.CSS_SELECTOR, ".glyph .katex")  # rendered by KaTeX
    assert items[0].find_element(By.CSS_SELECTOR, ".score").text == f"{100 * expected[0][1]:.1f}%"


def test_formula_mode_shows_recognizes_latex_rendered_and_an_upload_reads_the_same(
    browser, server_url, tmp_path, capsys
):
    from selenium.webdriver.common.by import By

    from im2latex_encoder.cli import main

    path = tmp_path / "expression.inkml"
    path.write_bytes(build_inkml(EXPRESSION))
    assert main(["recognize", str(path)]) == 0
    printed = capsys.readouterr().out.strip().split("\t", 1)[1]
    canvas = _open(browser, server_url, "formula")
    before = _requests(browser)

    _draw(browser, canvas, EXPRESSION)
    browser.find_element(By.ID, "recognise").click()
    _wait(browser, lambda d: _answered(d, before))
    _shot(browser, "formula-mode.png")

    _assert_drawn_as_given(browser, EXPRESSION)
    assert browser.find_element(By.ID, "latex").text == printed
    assert browser.find_elements(By.CSS_SELECTOR, "#rendered .katex .katex-html")
    assert not browser.find_elements(By.CSS_SELECTOR, "#rendered .katex-error")
    assert browser.find_element(By.ID, "error").is_displayed() is False

    # The same expression as an uploaded InkML file reads the same.
    browser.find_element(By.ID, "clear").click()
    before = _requests(browser)
    browser.find_element(By.ID, "upload").send_keys(str(path))
    _wait(browser, lambda d: _answered(d, before))
    _shot(browser, "formula-upload.png")
    assert browser.find_element(By.ID, "latex").text == printed
    assert browser.find_element(By.ID, "status").text == "Read from the uploaded file."


def test_an_oversized_upload_shows_what_was_expected(browser, server_url, tmp_path):
    from selenium.webdriver.common.by import By

    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(1_200_000))
    _open(browser, server_url, "symbol")
    before = _requests(browser)

    browser.find_element(By.ID, "upload").send_keys(str(big))
    _wait(browser, lambda d: _answered(d, before))
    _shot(browser, "upload-too-large.png")

    error = browser.find_element(By.ID, "error")
    assert error.is_displayed()
    prefix = "expected a body of at most 1000000 bytes (1 MB). Received: "
    assert error.text.startswith(prefix) and error.text.endswith(" bytes"), error.text
    assert int(error.text[len(prefix) : -len(" bytes")]) > big.stat().st_size  # file + form
    assert not browser.find_elements(By.CSS_SELECTOR, "#candidates li")


def test_a_crohme_test_expression_drawn_on_the_page_reads_as_recognize_reads_it(
    browser, server_url, crohme_dir, tmp_path, capsys
):
    from selenium.webdriver.common.by import By

    from im2latex_encoder.cli import main
    from im2latex_encoder.data.inkml import read_inkml

    source = sorted((crohme_dir / "test2016").glob("*.inkml"))[0]
    strokes = [s for s in read_inkml(source).strokes() if len(s)]
    # Fitted into the canvas and rounded to whole pixels, as a pen on the page would give it;
    # the file recognize reads holds the same numbers (written here, outside the repository).
    joined = np.concatenate(strokes)
    low, extent = joined.min(axis=0), np.maximum(np.ptp(joined, axis=0), 1e-9)
    scale = min((CANVAS[0] - 80) / extent[0], (CANVAS[1] - 80) / extent[1])
    drawn = []
    for stroke in strokes:
        points = np.rint((stroke - low) * scale + 40).astype(int)
        keep = np.r_[True, (np.diff(points, axis=0) != 0).any(axis=1)]  # a pen reports moves
        drawn.append(points[keep].tolist())
    path = tmp_path / source.name
    path.write_bytes(build_inkml(drawn))
    assert main(["recognize", str(path)]) == 0
    printed = capsys.readouterr().out.strip().split("\t", 1)[1]
    canvas = _open(browser, server_url, "formula")
    before = _requests(browser)

    _draw(browser, canvas, drawn)
    browser.find_element(By.ID, "recognise").click()
    _wait(browser, lambda d: _answered(d, before))
    _shot(browser, "formula-crohme.png")  # CROHME ink: an artefact, never in the repository

    assert browser.find_element(By.ID, "latex").text == printed
