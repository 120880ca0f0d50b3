"""Every registered benchmark runs, in tiny mode, so none can break unseen (issue 31).

`Options(tiny=True)` (``python -m benchmarks --tiny``) takes every path of a benchmark with
its module's `TINY` sizes and one round: the figures mean nothing, the point is that the
entry runs to the end (a benchmark that raises is reported as ``"error: ..."``, which a
full `make bench` would only show after minutes).
"""

import os
import sys
import types
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `benchmarks/` sits beside the package, not inside it
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import BENCHMARKS, _harness  # noqa: E402


def test_tiny_sizes_apply_inside_the_block_and_are_restored(monkeypatch):
    monkeypatch.delenv(_harness.TINY_ENV, raising=False)
    bench = types.SimpleNamespace(__name__="fakebench.x", SIDE=2048, SHAPES=((128, 128),))
    bench.TINY = {"SIDE": 64, "SHAPES": ((24, 40),)}
    with _harness.tiny_sizes(bench):
        assert (bench.SIDE, bench.SHAPES) == (64, ((24, 40),))
        assert os.environ[_harness.TINY_ENV] == "1"  # worker subprocesses shrink too
    assert (bench.SIDE, bench.SHAPES) == (2048, ((128, 128),))
    assert _harness.TINY_ENV not in os.environ
    with _harness.tiny_sizes(bench, tiny=False):
        assert bench.SIDE == 2048
    bench.TINY = {"SIDES": 64}
    with pytest.raises(ValueError, match=r"fakebench.x.TINY names .*Received: \['SIDES'\]"):
        with _harness.tiny_sizes(bench):
            pass
    assert _harness.Options(tiny=True).rounds(9) == 1 and _harness.Options(tiny=True).quick


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_runs_in_tiny_mode(name):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the benchmarks run on TensorFlow (other backends in their workers)")
    result = _harness.run_benchmark(name, _harness.Options(tiny=True, threads=1))
    assert result.status == "ok", "\n".join([result.status, *result.notes])
    assert result.figures or result.ratios, f"{name} reported nothing"
    for figure in result.figures:
        assert figure.rounds >= 1 and figure.median == figure.median  # not NaN
