"""`data.image_files`: an image file's size is checked from its header, before decoding.

The huge images here are crafted headers of a few dozen bytes (a PNG whose IHDR claims
20000×20000 and whose pixel data is missing): never a real huge image.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from im2latex_encoder.data.errors import DataError
from im2latex_encoder.data.image_files import (
    MAX_IMAGE_FILE_PIXELS,
    MAX_IMAGE_FILE_SIDE,
    check_image_size,
    open_image,
)
from im2latex_encoder.data.symbol_files import load_symbol_file, read_image_gray


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG that claims `width`×`height` 8-bit grayscale pixels and holds none of them."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any image's pixels are decoded."""

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"decoded a {self.size} image: the header check came too late")

    monkeypatch.setattr(Image.Image, "load", refuse)
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


@pytest.mark.parametrize(
    "width, height, message",
    [
        # Past Pillow's own limit (179 MP), in its words: the size in pixels.
        (20_000, 20_000, r"image is too large \(Image size \(400000000 pixels\).*\)"),
        (9_000, 9_000, r"image is 9000×9000 \(81,000,000 pixels\)"),  # every side allowed
        (12_000, 10, r"image is 12000×10 \(120,000 pixels\)"),  # few pixels, too wide
    ],
)
def test_a_huge_header_is_refused_before_decoding(tmp_path, no_decoding, width, height, message):
    path = tmp_path / "huge.png"
    path.write_bytes(huge_png_header(width, height))
    assert path.stat().st_size < 100
    limits = r"at most 50,000,000 pixels and 10,000 a side are accepted"
    with pytest.raises(DataError, match=rf"huge\.png: {message}; {limits}"):
        with open_image(path):
            pass
    with pytest.raises(DataError, match=rf"huge\.png: {message}"):
        read_image_gray(path)  # predict's, recognize's and the web server's reader
    with pytest.raises(DataError, match=rf"upload\.png: {message}"):
        read_image_gray(path.read_bytes(), name="upload.png")
    with pytest.raises(DataError, match=rf"huge\.png: {message}"):
        load_symbol_file(path)


def test_an_image_within_the_limits_opens_and_reads(tmp_path):
    path = tmp_path / "symbol.png"
    Image.fromarray(np.full((30, 40), 255, np.uint8)).save(path)
    with open_image(path) as image:
        assert image.size == (40, 30)
    gray = read_image_gray(path)
    assert gray.shape == (30, 40) and gray.dtype == np.float32 and gray.max() == 1.0
    check_image_size(MAX_IMAGE_FILE_SIDE, MAX_IMAGE_FILE_PIXELS // MAX_IMAGE_FILE_SIDE, "edge")


def test_bytes_that_are_not_an_image_say_so():
    with pytest.raises(DataError, match=r"<bytes>: not a readable image"):
        with open_image(b"not an image"):
            pass
    buffer = io.BytesIO()
    Image.new("L", (16, 12)).save(buffer, format="JPEG")
    with open_image(buffer.getvalue()) as image:
        assert image.size == (16, 12) and image.format == "JPEG"


def test_im2latex_100k_images_are_checked_too(tmp_path, no_decoding):
    from im2latex_encoder.formulas.im2latex100k import Im2LatexError, load_im2latex_image

    path = tmp_path / "formula.png"
    path.write_bytes(huge_png_header(20_000, 20_000))
    with pytest.raises(Im2LatexError, match=r"formula\.png: .*readable PNG.*too large.*400000000"):
        load_im2latex_image(path)


def test_the_exported_runner_applies_the_same_limits(tmp_path, no_decoding):
    from im2latex_encoder.export import runner

    assert (runner.MAX_IMAGE_FILE_SIDE, runner.MAX_IMAGE_FILE_PIXELS) == (
        MAX_IMAGE_FILE_SIDE,
        MAX_IMAGE_FILE_PIXELS,
    )
    path = tmp_path / "huge.png"
    limits = r"at most 50,000,000 pixels and 10,000 a side are accepted"
    for (width, height), size in (
        ((9_000, 9_000), r"9000×9000 \(81,000,000 pixels\)"),
        ((20_000, 20_000), r"too large \(Image size \(400000000 pixels\).*\)"),
    ):
        path.write_bytes(huge_png_header(width, height))
        with pytest.raises(ValueError, match=rf"huge\.png: image is {size}; {limits}"):
            runner._read_image_file(str(path))
