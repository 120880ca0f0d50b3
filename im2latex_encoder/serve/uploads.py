"""Uploaded files -> strokes or a grayscale image, through the library's own guarded readers.

An upload is read in memory, never from or to a path the client names. Its kind is decided by
its first bytes (PNG and JPEG signatures), falling back to InkML for XML text: a client cannot
make the server open a file by naming it, and a misnamed file is read for what it is.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from im2latex_encoder.serve.limits import RequestRejected, ServeLimits, check_stroke_counts

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
_COMPRESSED = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"BZh": "bzip2", b"\xfd7zXZ": "xz"}
EXPECTED = "expected an InkML file, a PNG or a JPEG"


@dataclasses.dataclass
class Upload:
    """What an uploaded file held: strokes (InkML) or a grayscale image (PNG/JPEG).

    Args:
        kind: str. ``"inkml"`` or ``"image"``.
        strokes: list of ``(n, 2)`` arrays, for InkML.
        gray: float32 ``(H, W)`` in [0, 1], for images.

    Example:
    >>> Upload("inkml", strokes=[np.zeros((1, 2))]).kind
    'inkml'
    """

    kind: str
    strokes: list | None = None
    gray: np.ndarray | None = None


def sniff(data: bytes) -> str:
    """The kind of an upload from its first bytes: ``"png"``, ``"jpeg"`` or ``"xml"``.

    Raises:
        RequestRejected: 415 for compressed archives and anything else.

    Example:
    >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n..."), sniff(b"  <ink/>")
    ('png', 'xml')
    """
    if data.startswith(_PNG):
        return "png"
    if data.startswith(_JPEG):
        return "jpeg"
    for magic, name in _COMPRESSED.items():
        if data.startswith(magic):
            raise RequestRejected(
                415, f"{EXPECTED}, uncompressed. Received: {name}-compressed data"
            )
    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        return "xml"
    raise RequestRejected(415, f"{EXPECTED}. Received: {len(data)} bytes of neither")


def read_upload(data: bytes, name: str = "<upload>", limits: ServeLimits | None = None) -> Upload:
    """Read an uploaded file's bytes with the library's readers.

    InkML goes through `data.inkml.read_inkml` (defusedxml: no DTDs, no entities, every size
    bounded), then the server's stroke counts; images through
    `data.symbol_files.read_image_gray` (the size read from the header before decoding).

    Args:
        data: bytes. The file's content.
        name: str. Named in error messages (the client's file name is never opened).
        limits: ServeLimits or None.

    Raises:
        RequestRejected: 415 for an unknown kind, 422 for a file the readers refuse.

    Example:
    >>> upload = read_upload(b'<ink><trace>0 0, 5 9</trace></ink>', "x.inkml")
    >>> upload.kind, upload.strokes[0].tolist()
    ('inkml', [[0.0, 0.0], [5.0, 9.0]])
    >>> read_upload(b'<!DOCTYPE ink [<!ENTITY a "aaaa">]><ink>&a;</ink>', "bomb.inkml")
    Traceback (most recent call last):
    ...
    im2latex_encoder.serve.limits.RequestRejected: bomb.inkml: forbidden XML construct (DTDForbidden): DTDs, entities and external references are not accepted
    """
    from im2latex_encoder.data.errors import DataError

    if not data:
        raise RequestRejected(422, f"{EXPECTED}. Received: an empty file")
    kind = sniff(data)
    try:
        if kind == "xml":
            from im2latex_encoder.data.inkml import read_inkml

            document = read_inkml(data, name=name)
            strokes = [stroke for stroke in document.strokes() if len(stroke)]
            check_stroke_counts(strokes, limits)
            return Upload("inkml", strokes=strokes)
        from im2latex_encoder.data.symbol_files import read_image_gray

        return Upload("image", gray=read_image_gray(data, name=name))
    except DataError as error:
        raise RequestRejected(422, str(error)) from None
