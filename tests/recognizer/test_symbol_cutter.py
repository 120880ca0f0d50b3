"""`SymbolCutter`: where touching symbols meet in a formula image, learned from the ink's trace
groups, and `image_tokens` cutting components there.

Fixtures: a minus whose end runs into a ``1`` (two symbols, one component) and a plus (two
strokes of one symbol); a cutter whose net is replaced by a known probability map, so the cut
itself is checked apart from what a net learned.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from im2latex_encoder.cli import main
from im2latex_encoder.recognizer.stroke_components import (
    cut_components,
    draw_expression_image,
    image_tokens,
)
from im2latex_encoder.recognizer.stroke_data import StrokeExpressions
from im2latex_encoder.recognizer.symbol_cutter import (
    SymbolCutter,
    boundary_targets,
    build_symbol_cutter_model,
    symbol_cutter_crops,
    train_symbol_cutter,
)
from inkml_fixtures import build_inkml

MINUS = np.array([[0.0, 5.0], [6.0, 5.0]])
ONE = np.array([[6.0, 0.0], [6.0, 10.0]])
PLUS = [np.array([[20.0, 5.0], [28.0, 5.0]]), np.array([[24.0, 1.0], [24.0, 9.0]])]


class _KnownMap:
    """Stands in for the net: probability 1 on the columns given (in the image it is shown)."""

    def __init__(self, columns):
        self.columns = columns

    def predict_on_batch(self, batch):
        probability = np.zeros(batch.shape, np.float32)
        probability[:, :, self.columns, :] = 1.0
        return probability


def _box(token):
    points = np.concatenate(token)
    return points.min(axis=0), points.max(axis=0)


def test_targets_mark_only_where_two_symbols_meet():
    image, owners = draw_expression_image([MINUS, ONE, *PLUS], 40, owners=True)
    target = boundary_targets(image, owners, [0, 1, 2, 2])
    assert target.any() and not (target & (image < 128)).any()  # on ink only
    ys, xs = np.nonzero(target)
    # The minus meets the 1 at its right end; the plus (one symbol of two strokes) is not cut.
    one_column = np.nonzero(owners == 2)[1]
    assert xs.min() >= one_column.min() - 40 // 12 - 3
    assert xs.max() <= one_column.max() + 3
    assert not target[:, np.nonzero(owners == 3)[1].min() :].any()
    # The same ink as one symbol: nothing to cut; a stroke of no symbol counts as its own.
    assert not boundary_targets(image, owners, [0, 0, 2, 2]).any()
    assert boundary_targets(image, owners, [0, -1, 2, 2]).any()


def test_cut_components_parts_the_ink_and_loses_none():
    image = draw_expression_image([MINUS, ONE], 40)
    whole = cut_components(image, np.zeros(image.shape, np.float32), 0.5)
    assert len(whole) == 1
    column = int(np.nonzero(image >= 128)[1].min()) + 20
    boundary = np.zeros(image.shape, np.float32)
    boundary[:, column - 2 : column + 2] = 0.9
    parts = cut_components(image, boundary, 0.5)
    assert len(parts) == 2
    assert parts[0][:, 1].min() < parts[1][:, 1].min()  # left to right
    ink = {tuple(p) for p in np.argwhere(image >= 128)}
    cut = [tuple(p) for part in parts for p in part]
    assert len(cut) == len(set(cut)) and set(cut) == ink  # every ink pixel, once
    # Above the threshold only: the same map at a higher threshold cuts nothing.
    assert len(cut_components(image, boundary, 0.95)) == 1


def test_image_tokens_with_a_cutter_reads_the_touching_symbols_apart():
    image = draw_expression_image([MINUS, ONE], 48)
    assert len(image_tokens(image)) == 1
    # The minus runs from the left edge of the ink to the 1; cut just left of the 1.
    ink_columns = np.nonzero(image >= 128)[1]
    one_left = ink_columns.max() - 48 // 12 - 1
    cutter = SymbolCutter(_KnownMap(slice(one_left - 2, one_left + 1)))
    assert cutter.boundaries(image).shape == image.shape
    tokens = image_tokens(image, symbol_cutter=cutter)
    assert len(tokens) == 2
    (left, _), (right, _) = _box(tokens[0]), _box(tokens[1])
    assert left[0] < right[0]
    (_, minus_high), (one_low, one_high) = _box(tokens[0]), _box(tokens[1])
    assert minus_high[1] - _box(tokens[0])[0][1] < 8  # the minus: flat
    assert one_high[1] - one_low[1] > 30  # the 1: tall
    with pytest.raises(ValueError, match="not both"):
        image_tokens(image, split_junctions=True, symbol_cutter=cutter)


def test_a_cutter_is_saved_without_pickle_and_loads_to_the_same_map(tmp_path):
    cutter = SymbolCutter(build_symbol_cutter_model(seed=3), threshold=0.7, record={"epochs": 0})
    image = draw_expression_image([MINUS, ONE, *PLUS], 40)
    folder = cutter.save(tmp_path / "cutter")
    assert sorted(p.name for p in folder.iterdir()) == [
        "symbol_cutter.json",
        "symbol_cutter.weights.h5",
    ]
    loaded = SymbolCutter.load(folder)
    assert loaded.threshold == 0.7 and loaded.record == {"epochs": 0}
    np.testing.assert_allclose(loaded.boundaries(image), cutter.boundaries(image), atol=1e-6)
    assert SymbolCutter.load(folder, threshold=0.4).threshold == 0.4
    with pytest.raises(FileNotFoundError, match="train-symbol-cutter"):
        SymbolCutter.load(tmp_path)
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        SymbolCutter(cutter.model, threshold=1.5)
    with pytest.raises(ValueError, match="no ink"):
        cutter.boundaries(np.zeros((10, 10), np.uint8))


def test_the_scale_the_net_sees_comes_from_the_components():
    # The same ink drawn small and large is shown to the net at one scale (its pen aside).
    seen = []
    for pixels in (24, 96):

        class Recorder:
            def predict_on_batch(self, batch):
                ys, xs = np.nonzero(np.asarray(batch)[0, ..., 0] >= 0.5)
                seen.append((ys.max() - ys.min(), xs.max() - xs.min()))  # the ink's extent
                return np.zeros(batch.shape, np.float32)

        SymbolCutter(Recorder()).boundaries(draw_expression_image([MINUS, ONE, *PLUS], pixels))
    (small_h, small_w), (large_h, large_w) = seen
    assert abs(small_h - large_h) <= 0.15 * large_h and abs(small_w - large_w) <= 0.15 * large_w


def _touching_data(count=6):
    expressions, groups = [], []
    for k in range(count):
        shift = np.array([3.0 * k, 0.0])
        expressions.append([MINUS + shift, ONE + shift, *(p + shift for p in PLUS)])
        groups.append([0, 1, 2, 2])
    return StrokeExpressions.from_lists(
        expressions,
        names=[f"e{k}" for k in range(count)],
        truths=[""] * count,
        stroke_groups=groups,
        stroke_labels=groups,
    )


def test_crops_come_two_per_expression_the_first_around_a_meeting():
    data = _touching_data(3)
    images, targets = symbol_cutter_crops(data, [0, 1, 2], seed=1, crop=(64, 96))
    assert images.shape == (6, 64, 96) and targets.shape == images.shape
    assert all(targets[i].any() for i in (0, 2, 4))
    assert not (targets & (images < 128)).any()
    again, _ = symbol_cutter_crops(data, [0, 1, 2], seed=1, crop=(64, 96))
    np.testing.assert_array_equal(images, again)  # seeded
    with pytest.raises(ValueError, match="even"):
        symbol_cutter_crops(data, [0], crop=(63, 96))


@pytest.mark.slow
def test_a_cutter_learns_where_the_fixture_symbols_meet(capsys):
    data = _touching_data(8)
    images, targets = symbol_cutter_crops(data, range(8), seed=0, crop=(64, 96))
    cutter = train_symbol_cutter(images, targets, epochs=12, progress=False, seed=0)
    loss = cutter.record["loss"]
    assert len(loss) == 12 and loss[-1] < 0.5 * loss[0]
    # without a progress bar, one line per epoch: never silent for a whole training
    assert capsys.readouterr().out.count(" - loss: ") == 12
    image, owners = draw_expression_image([MINUS, ONE, *PLUS], 64, owners=True)
    truth = boundary_targets(image, owners, [0, 1, 2, 2])
    probability = cutter.boundaries(image)
    ink = image >= 128
    assert probability[truth].mean() > probability[ink & ~truth].mean() + 0.2
    with pytest.raises(ValueError, match="same shape"):
        train_symbol_cutter(images, targets[:, :10], epochs=1, progress=False)


def test_train_symbol_cutter_command_writes_a_cutter_and_refuses_an_existing_out(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for k in range(4):
        shift = np.array([3.0 * k, 0.0])
        traces = [(s + shift).round(2).tolist() for s in (MINUS, ONE, *PLUS)]
        groups = [("-", [0]), ("1", [1]), ("+", [2, 3])]
        (data / f"e{k}.inkml").write_bytes(build_inkml(traces, truth="$-1+$", groups=groups))
    out = tmp_path / "cutter"
    argv = ["train-symbol-cutter", "--data", f"crohme:{data}", "--out", str(out)]
    assert main([*argv, "--epochs", "1", "--no-progress", "--threshold", "0.6"]) == 0
    printed = capsys.readouterr().out
    assert "8 crops" in printed and f"wrote {out}" in printed
    cutter = SymbolCutter.load(out)
    assert cutter.threshold == 0.6
    assert cutter.record["epochs"] == 1 and cutter.record["expressions"] == 4
    assert (
        "non-commercial"
        in json.loads((out / "symbol_cutter.json").read_text())["record"]["licence"]
    )
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging
    assert (out.stat().st_mode & 0o777) == (data.stat().st_mode & 0o777)  # as mkdir makes it
    assert main([*argv, "--epochs", "1", "--no-progress"]) == 2
    assert "--out must be a new folder" in capsys.readouterr().err
    other = [*argv[:-1], str(tmp_path / "other")]
    assert main([*other, "--threshold", "1.5", "--no-progress"]) == 2
    assert "--threshold must be in (0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
