"""`pretrain.compare`: paired differences between runs, with intervals from resampling writers."""

import json

import numpy as np
import pytest

from im2latex_encoder.training import PretrainConfig
from pretrain.compare import held_out_configs, main, writer_bootstrap
from training_helpers import run_folder_answering


def test_identical_runs_differ_by_nothing_with_no_spread():
    hits = np.array([True, False, True, True, False])
    result = writer_bootstrap(hits, hits, ["a", "a", "b", "c", "c"])
    assert (result.points, result.low, result.high) == (0.0, 0.0, 0.0)
    assert (result.writers, result.symbols) == (3, 5)
    assert not result.resolved


def test_a_gain_on_every_writer_is_resolved_and_one_writers_gain_is_not():
    writers = np.repeat(np.arange(20), 10)
    base = np.zeros(200, dtype=bool)
    everyone = base.copy()
    everyone[::10] = True  # one more symbol right for each of the 20 writers
    result = writer_bootstrap(base, everyone, writers)
    assert result.points == pytest.approx(10.0)
    assert result.resolved and result.low == pytest.approx(10.0)
    one_writer = base.copy()
    one_writer[:10] = True  # the same 10 points, all from writer 0
    result = writer_bootstrap(base, one_writer, writers)
    assert result.points == pytest.approx(5.0)
    assert result.low == 0.0 and result.high > 10 and not result.resolved


def test_a_slice_held_by_one_heavy_writer_is_less_sure_than_an_even_one():
    # 400 symbols and +20 right either way: spread over 20 even writers, or all in one writer
    # who holds 300 symbols beside ten who hold 10 (CROHME's HAMEX writers are that lumpy).
    base = np.zeros(400, dtype=bool)
    even_writers = np.repeat(np.arange(20), 20)
    even = base.copy()
    even[::20] = True
    lumpy_writers = np.concatenate([np.zeros(300, int), np.repeat(np.arange(1, 11), 10)])
    lumpy = base.copy()
    lumpy[:300:15] = True
    spread = writer_bootstrap(base, even, even_writers)
    heavy = writer_bootstrap(base, lumpy, lumpy_writers)
    assert spread.points == heavy.points == pytest.approx(5.0)
    assert spread.resolved and not heavy.resolved
    assert heavy.high - heavy.low > spread.high - spread.low


def test_mismatched_inputs_are_refused_with_what_was_received():
    with pytest.raises(ValueError, match="Received: 2 and 3 results, 2 writers"):
        writer_bootstrap([True, False], [True, True, False], ["a", "b"])
    with pytest.raises(ValueError, match="at least one symbol"):
        writer_bootstrap([], [], [])
    with pytest.raises(ValueError, match="resamples"):
        writer_bootstrap([True], [True], ["a"], resamples=0)


def _run(tmp_path, name, **fields):
    folder = tmp_path / name
    folder.mkdir()
    config = PretrainConfig(validation_split=0.15, validation_by="writer", **fields)
    (folder / "run.json").write_text(json.dumps({"config": config.to_dict()}))
    return str(folder)


def test_runs_that_held_out_different_slices_are_refused_before_any_data_is_read(tmp_path, capsys):
    base = _run(tmp_path, "base")
    same = _run(tmp_path, "same", weight_decay=0.05)
    other = _run(tmp_path, "other", split_seed=3)
    assert len(held_out_configs([base, same])) == 2  # another recipe, the same slice
    with pytest.raises(ValueError, match="held out the same slice") as error:
        held_out_configs([base, other])
    assert "'split_seed': 3" in str(error.value)
    # The command line says so too, and exits 2 without reading --data (which does not exist).
    assert main([base, other, "--data", f"crohme:{tmp_path / 'absent'}"]) == 2
    assert "held out the same slice" in capsys.readouterr().err
    with pytest.raises(ValueError, match="expected a `pretrain` run folder"):
        held_out_configs([base, str(tmp_path)])


def _run_always_saying(tmp_path, name, label, config):
    """A run folder whose preset answers `label` for every image."""
    return run_folder_answering(tmp_path / name, config, label)


def test_runs_are_scored_on_the_writers_they_held_out_and_on_the_test_symbols(
    tmp_path, monkeypatch, capsys
):
    from inkml_fixtures import build_writer_folder

    monkeypatch.setenv("IM2LATEX_ENCODER_CACHE", str(tmp_path / "cache"))
    data = build_writer_folder(tmp_path / "train", [f"writer{i % 8}" for i in range(32)])
    test = build_writer_folder(tmp_path / "test", [f"new{i % 3}" for i in range(6)])
    config = PretrainConfig(
        image_size=24, validation_split=0.4, validation_by="writer", ink_augment={}, seed=2
    )
    # Every expression holds one `x` and one `1`: a run that always says `x` reads half of
    # any slice, and one that always says `y` reads none of it, on every writer.
    says_x = _run_always_saying(tmp_path, "says_x", "x", config)
    says_1 = _run_always_saying(tmp_path, "says_1", "1", config.replace(weight_decay=0.05))
    says_y = _run_always_saying(tmp_path, "says_y", "y", config)
    output = tmp_path / "figures.json"
    assert (
        main(
            [
                says_x,
                says_1,
                says_y,
                "--data",
                f"crohme:{data}",
                "--test",
                f"crohme:{test}",
                "--json",
                str(output),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    figures = json.loads(output.read_text())
    assert list(figures) == ["held-out slice", f"crohme:{test}"]
    slice_note = figures["held-out slice"]["note"]
    assert "of 8 writers" in slice_note and "held out for validation" in slice_note
    assert "12 symbols" in figures[f"crohme:{test}"]["note"]
    for result in figures.values():
        assert result["top1"] == {says_x: 50.0, says_1: 50.0, says_y: 0.0}
        same, worse = result["differences"][says_1], result["differences"][says_y]
        assert (same["points"], same["low"], same["high"]) == (0.0, 0.0, 0.0)
        assert (worse["points"], worse["low"], worse["high"]) == (-50.0, -50.0, -50.0)
    assert f"| {says_y} | 0.00% | -50.00 | -50.00 to -50.00 |" in printed
