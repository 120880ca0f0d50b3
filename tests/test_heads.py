import numpy as np
import pytest

from im2latex_encoder import ClassificationHead
from model_checks import check_config_round_trip, check_output_shape


@pytest.mark.parametrize("pooling", ["flatten", "avg", "max"])
def test_pooling_shapes(pooling):
    head = ClassificationHead(101, pooling=pooling, hidden_units=25, dropout=0.1)
    out = check_output_shape(head, (3, 784, 64), (3, 101))
    np.testing.assert_allclose(np.asarray(out).sum(axis=-1), 1.0, atol=1e-5)


def test_accepts_a_grid_as_well_as_a_sequence():
    head = ClassificationHead(5, pooling="avg")
    grid = np.random.default_rng(0).random((2, 3, 4, 8)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(head(grid)), np.asarray(head(grid.reshape(2, 12, 8))), atol=1e-6
    )


def test_zero_classes_is_a_feature_head():
    head = ClassificationHead(0, pooling="avg", hidden_units=16)
    check_output_shape(head, (2, 10, 8), (2, 16))


def test_logits_head():
    head = ClassificationHead(4, activation=None)
    out = np.asarray(head(np.random.default_rng(0).random((2, 9, 8)).astype("float32") * 10))
    assert not np.allclose(out.sum(axis=-1), 1.0)


def test_flatten_head_refuses_another_size():
    head = ClassificationHead(3, pooling="flatten")
    head(np.zeros((1, 784, 64), "float32"))
    with pytest.raises(ValueError, match="flattens 784 positions.*Received: 1488 positions"):
        head(np.zeros((1, 1488, 64), "float32"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": -1}, "Received: num_classes=-1"),
        (
            {"num_classes": 3, "pooling": "mean"},
            "`pooling` must be one of 'flatten', 'avg', 'max'. Received: pooling='mean'",
        ),
        ({"num_classes": 3, "dropout": 1.5}, r"Received: dropout=1.5"),
        ({"num_classes": 3, "hidden_units": 0}, r"Received: hidden_units=0"),
    ],
)
def test_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClassificationHead(**kwargs)


def test_config_round_trip():
    check_config_round_trip(ClassificationHead(12, pooling="max", hidden_units=25, dropout=0.2))
