import numpy as np
import pytest

from im2latex_encoder import PositionalEncoding2D
from model_checks import check_config_round_trip, check_output_shape


def test_signal_is_bounded_distinct_and_symmetric_in_its_halves():
    layer = PositionalEncoding2D()
    out = np.asarray(check_output_shape(layer, (1, 6, 9, 16), (1, 6, 9, 16)))
    assert np.abs(out).max() <= 1.0 + 1e-6
    flat = out.reshape(-1, 16)
    assert len({tuple(np.round(row, 5)) for row in flat}) == 6 * 9  # every cell distinct
    # first half depends on the row only, second half on the column only
    np.testing.assert_allclose(out[0, 2, 0, :8], out[0, 2, 7, :8], atol=1e-6)
    np.testing.assert_allclose(out[0, 0, 4, 8:], out[0, 5, 4, 8:], atol=1e-6)


def test_channels_must_divide_by_four():
    with pytest.raises(ValueError, match="divisible by 4.*Received: channels=6"):
        PositionalEncoding2D()(np.zeros((1, 2, 2, 6), "float32"))


def test_config_round_trip():
    check_config_round_trip(PositionalEncoding2D(min_timescale=2.0, max_timescale=100.0))
