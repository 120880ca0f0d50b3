"""What the server accepts: bounds on a request, and strokes checked against them.

A server is an attack surface: every size a client controls is bounded here (an uploaded
image's pixels by the library's own guard, `data.symbol_files.read_image_gray`; an InkML file's
XML by `data.inkml.read_inkml`), and anything outside the bounds is refused with a `RequestRejected` that carries the HTTP status and a
message saying what was expected and what was received.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

#: Largest coordinate accepted (the InkML reader's bound, `data.inkml.MAX_ABS_COORDINATE`).
MAX_ABS_COORDINATE = 1e9


class RequestRejected(Exception):
    """A request the server refuses: an HTTP status (4xx) and a message for the client.

    Args:
        status: int. The HTTP status to answer with.
        message: str. What was expected and what was received.

    Example:
    >>> error = RequestRejected(422, "expected at least one stroke. Received: 0")
    >>> error.status, str(error)
    (422, 'expected at least one stroke. Received: 0')
    """

    def __init__(self, status: int, message: str):
        self.status = int(status)
        self.message = message
        super().__init__(message)


@dataclasses.dataclass(frozen=True)
class ServeLimits:
    """The bounds one request must stay within.

    Args:
        max_body_bytes: int. Largest request body (JSON or upload), in bytes.
        max_strokes: int. Most strokes in one drawing.
        max_points_per_stroke: int. Most points in one stroke.
        max_points: int. Most points in one drawing, over all strokes.
        timeout_s: float. Longest a request may compute before it is answered with 503.

    Example:
    >>> ServeLimits().max_body_bytes
    1000000
    >>> ServeLimits(max_strokes=0)
    Traceback (most recent call last):
    ...
    ValueError: `max_strokes` must be a positive number. Received: max_strokes=0
    """

    max_body_bytes: int = 1_000_000
    max_strokes: int = 500
    max_points_per_stroke: int = 10_000
    max_points: int = 50_000
    timeout_s: float = 10.0

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(
                    f"`{field.name}` must be a positive number. Received: {field.name}={value!r}"
                )


def _reject_constant(name: str):
    raise RequestRejected(
        422, f"coordinates must be finite numbers. Received: {name} (NaN and Infinity are refused)"
    )


def parse_json(body: bytes) -> object:
    """Parse a JSON request body, refusing NaN and Infinity (which Python's json accepts).

    Args:
        body: bytes. The request body.

    Raises:
        RequestRejected: 400 for a body that is not UTF-8 JSON, 422 for NaN/Infinity.

    Example:
    >>> parse_json(b'{"strokes": []}')
    {'strokes': []}
    >>> parse_json(b'{"strokes": [[[0, NaN]]]}')
    Traceback (most recent call last):
    ...
    im2latex_encoder.serve.limits.RequestRejected: coordinates must be finite numbers. Received: NaN (NaN and Infinity are refused)
    """
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise RequestRejected(
            400, "expected a UTF-8 JSON body. Received: undecodable bytes"
        ) from None
    except json.JSONDecodeError as error:
        raise RequestRejected(
            400,
            f'expected a JSON body such as {{"strokes": [[[x, y], ...], ...]}}. '
            f"Received: malformed JSON ({error.msg} at line {error.lineno} column {error.colno})",
        ) from None
    except RecursionError:
        raise RequestRejected(400, "expected a JSON body. Received: nesting too deep") from None
    except ValueError as error:  # e.g. an integer of more digits than Python converts
        raise RequestRejected(
            422, f"expected numbers a float can hold. Received: {str(error)[:80]}"
        ) from None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_strokes(payload: object, limits: ServeLimits | None = None) -> list[np.ndarray]:
    """Check a ``{"strokes": [[[x, y], ...], ...]}`` payload and return its strokes.

    Coordinates are in any units with Y pointing down, as in InkML. Every bound of `limits`
    is checked before anything is drawn.

    Args:
        payload: the parsed JSON (`parse_json`).
        limits: ServeLimits or None (the defaults).

    Returns:
        A list of float64 ``(n, 2)`` arrays, one per stroke, in drawing order.

    Raises:
        RequestRejected: 422 naming what was expected and what was received.

    Example:
    >>> strokes = parse_strokes({"strokes": [[[0, 0], [10, 5]], [[3, 3]]]})
    >>> [stroke.shape for stroke in strokes]
    [(2, 2), (1, 2)]
    >>> parse_strokes({"strokes": []})
    Traceback (most recent call last):
    ...
    im2latex_encoder.serve.limits.RequestRejected: expected at least one stroke. Received: an empty drawing
    """
    limits = limits or ServeLimits()
    if not isinstance(payload, dict) or "strokes" not in payload:
        received = (
            f"an object with keys {sorted(payload)[:5]}"
            if isinstance(payload, dict)
            else f"a JSON {type(payload).__name__}"
        )
        raise RequestRejected(
            422, f'expected an object {{"strokes": [[[x, y], ...], ...]}}. Received: {received}'
        )
    strokes = payload["strokes"]
    if not isinstance(strokes, list):
        raise RequestRejected(
            422, f"expected `strokes` to be a list of strokes. Received: {type(strokes).__name__}"
        )
    if not strokes:
        raise RequestRejected(422, "expected at least one stroke. Received: an empty drawing")
    if len(strokes) > limits.max_strokes:
        raise RequestRejected(
            422, f"expected at most {limits.max_strokes} strokes. Received: {len(strokes)}"
        )
    total = 0
    arrays = []
    for index, stroke in enumerate(strokes):
        if not isinstance(stroke, list) or not stroke:
            raise RequestRejected(
                422,
                f"expected stroke {index} to be a non-empty list of [x, y] points. "
                f"Received: {_describe(stroke)}",
            )
        if len(stroke) > limits.max_points_per_stroke:
            raise RequestRejected(
                422,
                f"expected at most {limits.max_points_per_stroke} points per stroke. "
                f"Received: {len(stroke)} in stroke {index}",
            )
        total += len(stroke)
        if total > limits.max_points:
            raise RequestRejected(
                422, f"expected at most {limits.max_points} points in all. Received: more"
            )
        for point in stroke:
            if not (isinstance(point, list) and len(point) == 2 and all(map(_is_number, point))):
                raise RequestRejected(
                    422,
                    f"expected each point to be [x, y] with two numbers. Received: "
                    f"{_describe(point)} in stroke {index}",
                )
        try:
            array = np.asarray(stroke, np.float64)
        except OverflowError:  # an integer beyond any float
            raise RequestRejected(
                422,
                f"coordinates must be finite numbers within ±{MAX_ABS_COORDINATE:g}. "
                f"Received: an integer too large for a float in stroke {index}",
            ) from None
        if not np.isfinite(array).all() or np.abs(array).max() > MAX_ABS_COORDINATE:
            raise RequestRejected(
                422,
                f"coordinates must be finite numbers within ±{MAX_ABS_COORDINATE:g}. "
                f"Received: {_describe(array[~(np.abs(array) <= MAX_ABS_COORDINATE)][0])} "
                f"in stroke {index}",
            )
        arrays.append(array)
    return arrays


def _describe(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, np.generic) else repr(float(value))
    if isinstance(value, float) and not math.isfinite(value):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_stroke_counts(strokes: list[np.ndarray], limits: ServeLimits | None = None) -> None:
    """Hold strokes read from an uploaded file to the same counts as drawn ones.

    Args:
        strokes: list of ``(n, 2)`` arrays.
        limits: ServeLimits or None (the defaults).

    Raises:
        RequestRejected: 422 for no strokes, too many strokes or too many points.

    Example:
    >>> check_stroke_counts([np.zeros((3, 2))], ServeLimits(max_points_per_stroke=2))
    Traceback (most recent call last):
    ...
    im2latex_encoder.serve.limits.RequestRejected: expected at most 2 points per stroke. Received: 3 in stroke 0
    """
    limits = limits or ServeLimits()
    if not strokes:
        raise RequestRejected(422, "expected at least one stroke. Received: an empty drawing")
    if len(strokes) > limits.max_strokes:
        raise RequestRejected(
            422, f"expected at most {limits.max_strokes} strokes. Received: {len(strokes)}"
        )
    for index, stroke in enumerate(strokes):
        if len(stroke) > limits.max_points_per_stroke:
            raise RequestRejected(
                422,
                f"expected at most {limits.max_points_per_stroke} points per stroke. "
                f"Received: {len(stroke)} in stroke {index}",
            )
    total = sum(len(stroke) for stroke in strokes)
    if total > limits.max_points:
        raise RequestRejected(
            422, f"expected at most {limits.max_points} points in all. Received: {total}"
        )
