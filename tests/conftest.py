"""Shared pytest setup: quiet TensorFlow, the default backend, and the shared-data path."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
CROHME_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "crohme-sample"
CROHME = REPO_ROOT.parent / "shared" / "data" / "crohme"


@pytest.fixture
def crohme_sample_dir():
    """The real CROHME sample beside the repository; skips the test when it is absent."""
    if not (CROHME_SAMPLE / "train").is_dir():
        pytest.skip(f"real CROHME sample not found at {CROHME_SAMPLE}")
    return CROHME_SAMPLE / "train"


@pytest.fixture
def crohme_dir():
    """The real CROHME data (train/, test2016/) beside the repository; skips when absent."""
    if not (CROHME / "train").is_dir() or not (CROHME / "test2016").is_dir():
        pytest.skip(f"real CROHME data not found at {CROHME}")
    return CROHME


# === InkML fixtures (tests/data, tests/cli): the builder lives in inkml_fixtures.py ===
from inkml_fixtures import INKML_NAMESPACE, build_inkml  # noqa: E402,F401


@pytest.fixture
def make_inkml():
    """The `build_inkml` function, as a fixture."""
    return build_inkml
