"""Shared pytest setup: quiet TensorFlow, the default backend, and the shared-data path."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
CROHME_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "crohme-sample"


@pytest.fixture
def crohme_sample_dir():
    """The real CROHME sample beside the repository; skips the test when it is absent."""
    if not (CROHME_SAMPLE / "train").is_dir():
        pytest.skip(f"real CROHME sample not found at {CROHME_SAMPLE}")
    return CROHME_SAMPLE / "train"


# === InkML fixtures (tests/data, tests/cli) ===
INKML_NAMESPACE = "http://www.w3.org/2003/InkML"


def build_inkml(traces, *, ui=None, truth=None, groups=None, namespace=INKML_NAMESPACE,
                trace_ids=None, point_sep=", ", value_sep=" ", number="{:g}"):
    """Return the bytes of a CROHME-style InkML file.

    `traces` is a list of point lists (2 or 3 values per point). `groups` is a list of
    ``(label, [trace index, ...])`` written as expression-level traceGroups with truth
    annotations inside an outer "Segmentation" group; None writes nothing.
    """
    from xml.sax.saxutils import escape

    xmlns = f' xmlns="{namespace}"' if namespace else ""
    width = len(traces[0][0]) if traces and traces[0] else 2
    channels = "".join(f'<channel name="{name}" type="decimal"/>' for name in "XYT"[:width])
    parts = [f"<ink{xmlns}>", f"<traceFormat>{channels}</traceFormat>"]
    if truth is not None:
        parts.append(f'<annotation type="truth">{escape(truth)}</annotation>')
    if ui is not None:
        parts.append(f'<annotation type="UI">{escape(ui)}</annotation>')
    ids = trace_ids or [str(index) for index in range(len(traces))]
    for trace_id, points in zip(ids, traces):
        text = point_sep.join(value_sep.join(number.format(v) for v in point) for point in points)
        parts.append(f'<trace id="{trace_id}">{text}</trace>')
    if groups is not None:
        parts.append('<traceGroup xml:id="g"><annotation type="truth">Segmentation</annotation>')
        for index, (label, members) in enumerate(groups):
            views = "".join(f'<traceView traceDataRef="{ids[m]}"/>' for m in members)
            parts.append(f'<traceGroup xml:id="g{index}"><annotation type="truth">{escape(label)}'
                         f"</annotation>{views}</traceGroup>")
        parts.append("</traceGroup>")
    parts.append("</ink>")
    return "\n".join(parts).encode("utf-8")


@pytest.fixture
def make_inkml():
    """The `build_inkml` function, as a fixture."""
    return build_inkml
