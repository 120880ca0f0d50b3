"""Ink the server tests draw (importable: `from serve_drawings import PLUS, EXPRESSION`).

Strokes in the page's canvas pixels (720 × 320, Y down), integers, so the browser test can move
a pointer along exactly these points and the InkML file the tests write holds the same numbers.
Made here, never taken from CROHME.
"""

import numpy as np


def line(start, end, step=6):
    """Integer points from `start` to `end`, about `step` pixels apart, both ends included."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    count = max(2, int(np.ceil(np.linalg.norm(end - start) / step)) + 1)
    points = np.rint(np.linspace(start, end, count)).astype(int)
    return [tuple(map(int, point)) for point in points]


def arc(centre, radius, start_degrees, end_degrees, step=6):
    """Integer points along a circular arc (degrees, clockwise on screen since Y points down)."""
    length = abs(np.radians(end_degrees - start_degrees)) * radius
    count = max(3, int(np.ceil(length / step)) + 1)
    angles = np.radians(np.linspace(start_degrees, end_degrees, count))
    points = np.rint(
        np.stack([centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)], 1)
    ).astype(int)
    return [tuple(map(int, point)) for point in points]


#: A plus sign, two strokes, drawn large in the middle of the canvas.
PLUS = [line((300, 160), (420, 160)), line((360, 100), (360, 220))]

#: "x + 2" in six strokes: a crossed x, a plus, a two (arc then base line).
EXPRESSION = [
    line((90, 130), (150, 200)),
    line((150, 130), (90, 200)),
    line((200, 165), (260, 165)),
    line((230, 135), (230, 195)),
    arc((345, 150), 28, 200, 380) + line((372, 158), (320, 205))[1:],
    line((320, 205), (380, 205)),
]


def as_arrays(strokes):
    """The strokes as float64 `(n, 2)` arrays, as the readers take them."""
    return [np.asarray(stroke, np.float64) for stroke in strokes]


def as_json(strokes):
    """The strokes as the API's JSON: ``{"strokes": [[[x, y], ...], ...]}``."""
    return {"strokes": [[list(point) for point in stroke] for stroke in strokes]}
