"""Tiny pretraining configs and helpers to run the real command line in subprocesses."""

import json

import pytest

TINY = {
    "name": "tiny",
    "description": "test-sized",
    "image_size": 32,
    "filters": [8, 16, 16],
    "normalization": "batch",
    "pooling": "avg",
    "batch_size": 16,
    "epochs": 2,
    "steps_per_epoch": 3,
    "learning_rate": 0.003,
    "augment": {"rotation": 0.02, "zoom": 0.05, "translation": 0.03},
    "validation_per_class": 1,
}


@pytest.fixture
def tiny_config(tmp_path):
    """Write a tiny config JSON; call with overrides, get its path."""

    def make(**overrides):
        path = tmp_path / f"tiny-{len(list(tmp_path.glob('tiny-*.json')))}.json"
        path.write_text(json.dumps(dict(TINY, **overrides)))
        return path

    return make
