"""The strokes' checks: any JSON a client sends is either strokes or a RequestRejected."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from im2latex_encoder.serve.limits import (
    RequestRejected,
    ServeLimits,
    parse_json,
    parse_strokes,
)

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
_JSON = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["strokes", "x"]), children, max_size=2)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_any_json_is_strokes_or_a_4xx(payload):
    limits = ServeLimits(max_strokes=3, max_points_per_stroke=4, max_points=6)
    try:
        strokes = parse_strokes(payload, limits)
    except RequestRejected as error:
        assert 400 <= error.status < 500 and error.message
        return
    assert 1 <= len(strokes) <= 3
    assert all(s.ndim == 2 and s.shape[1] == 2 and 1 <= len(s) <= 4 for s in strokes)
    assert sum(len(s) for s in strokes) <= 6
    assert all(np.isfinite(s).all() for s in strokes)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | _JSON.map(lambda v: json.dumps(v).encode()))
def test_any_body_parses_or_is_refused_with_a_4xx(body):
    try:
        payload = parse_json(body)
    except RequestRejected as error:
        assert error.status in (400, 422)
        return
    try:
        parse_strokes(payload)
    except RequestRejected as error:
        assert error.status == 422


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"strokes": [[[0, 0]]] * 4}, "expected at most 3 strokes. Received: 4"),
        ({"strokes": [[[0, 0]] * 5]}, "expected at most 4 points per stroke. Received: 5"),
        ({"strokes": [[[0, 0]] * 4, [[0, 0]] * 3]}, "expected at most 6 points in all"),
        ({"strokes": [[[0, True]]]}, "two numbers"),
        ({"strokes": [[[0, -2e9]]]}, "within ±1e+09. Received: -2000000000.0"),
    ],
)
def test_each_bound_names_what_was_expected_and_received(payload, message):
    limits = ServeLimits(max_strokes=3, max_points_per_stroke=4, max_points=6)
    with pytest.raises(RequestRejected, match="expected|coordinates") as caught:
        parse_strokes(payload, limits)
    assert message in caught.value.message and caught.value.status == 422
