"""`validation_by="writer"`: the held-out slice holds every expression of some writers."""

import numpy as np
import pytest

from im2latex_encoder.data.ink import InkDataset
from im2latex_encoder.symbols import CROHME_SYMBOLS
from im2latex_encoder.training import PretrainConfig
from im2latex_encoder.training.data_sources import crohme_writers, parse_data_spec
from im2latex_encoder.training.run import training_source
from inkml_fixtures import build_inkml, build_writer_folder


def _ink(groups: int, per_group: int = 2) -> InkDataset:
    count = groups * per_group
    return InkDataset.from_symbols(
        [[np.array([[0.0, 0.0], [1.0, 1.0]])]] * count,
        [0] * count,
        ("x",),
        groups=np.arange(count) // per_group,
        group_names=[f"f{i}.inkml" for i in range(groups)],
    )


def test_split_by_key_keeps_each_key_on_one_side_and_never_holds_out_a_missing_one():
    ink = _ink(60)
    writers = [None if i % 5 == 0 else f"w{i % 7}" for i in range(60)]
    kept, held = ink.split_by_group(0.4, seed=3, keys=writers)
    assert len(kept) + len(held) == len(ink)
    held_keys = {writers[g] for g in held.groups}
    kept_keys = {writers[g] for g in kept.groups}
    assert held_keys and not held_keys & kept_keys  # every writer on one side only
    assert None not in held_keys  # files without a writer always train
    assert {g for g in range(60) if writers[g] is None} <= set(kept.groups.tolist())
    # The key decides, not the file name: renaming the files moves no writer.
    renamed = _ink(60)
    renamed = renamed.subset(np.arange(len(renamed)))
    object.__setattr__(renamed, "group_names", tuple(f"other{i}" for i in range(60)))
    np.testing.assert_array_equal(
        renamed.split_by_group(0.4, seed=3, keys=writers)[1].groups, held.groups
    )
    # Another seed holds out other writers.
    other = {writers[g] for g in ink.split_by_group(0.4, seed=4, keys=writers)[1].groups}
    assert other != held_keys
    with pytest.raises(ValueError, match="one key per group: expected 60. Received: 3 keys"):
        ink.split_by_group(0.4, keys=["a", "b", "c"])


def test_crohme_writers_reads_the_annotation_and_says_none_where_there_is_none(tmp_path):
    traces = [[(0, 0), (1, 1)]]
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.inkml").write_bytes(build_inkml(traces, ui="u1", writer="Zx9+/=="))
    (tmp_path / "two.inkml").write_bytes(build_inkml(traces, ui="u2"))
    (tmp_path / "three.inkml").write_bytes(
        build_inkml(traces, writer="w3").replace(b"<annotation", b"<ns0:annotation")
    )
    names = ["a/one.inkml", "two.inkml", "three.inkml", "gone.inkml"]
    assert crohme_writers([tmp_path], names) == ["Zx9+/==", None, "w3", None]
    # Names are looked up under each folder in turn; absolute paths are read as they are.
    assert crohme_writers([tmp_path / "a", tmp_path], ["one.inkml", "two.inkml"]) == [
        "Zx9+/==",
        None,
    ]
    assert crohme_writers([], [str(tmp_path / "a" / "one.inkml")]) == ["Zx9+/=="]


def test_a_run_holds_out_whole_writers(tmp_path, monkeypatch):
    monkeypatch.setenv("IM2LATEX_ENCODER_CACHE", str(tmp_path / "cache"))
    writers = [f"writer{i % 8}" for i in range(32)] + [None] * 6
    specs = [parse_data_spec(f"crohme:{build_writer_folder(tmp_path / 'crohme', writers)}")]
    config = PretrainConfig(
        image_size=16,
        batch_size=8,
        validation_split=0.4,
        validation_by="writer",
        ink_augment={},
        seed=2,
    )
    _source, _evals, notes, validation, layouts = training_source(
        specs, config, CROHME_SYMBOLS, False
    )
    note = next(n for n in notes if "held out for validation" in n)
    held_writers = int(note.split(" expressions by ")[1].split(" of ")[0])
    assert 1 <= held_writers < 8 and "of 8 writers" in note
    assert "the 6 files without one always train" in note
    # Every writer here wrote 8 symbols: the note says how evenly the held-out writers weigh.
    assert "Its writers hold 8 to 8 symbols each; the largest " in note
    # Two symbols per expression, four expressions per writer, all of a writer held out.
    assert len(validation.labels) == held_writers * 4 * 2
    # The held-out symbols keep their places; the expression context counts the others only.
    assert validation.boxes.shape == (len(validation.labels), 4)
    assert len(validation.groups) == len(validation.labels)
    assert len(layouts) == 1 and len(layouts[0]) == len(writers) * 2 - len(validation.labels)

    by_expression = config.replace(validation_by="expression")
    notes = training_source(specs, by_expression, CROHME_SYMBOLS, False)[2]
    assert any("expressions held out for validation" in n for n in notes)


def test_writer_validation_without_writers_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("IM2LATEX_ENCODER_CACHE", str(tmp_path / "cache"))
    specs = [parse_data_spec(f"crohme:{build_writer_folder(tmp_path / 'crohme', [None] * 6)}")]
    config = PretrainConfig(
        image_size=16, validation_split=0.2, validation_by="writer", ink_augment={}
    )
    with pytest.raises(ValueError, match="needs CROHME files that name their writer"):
        training_source(specs, config, CROHME_SYMBOLS, False)
    with pytest.raises(
        ValueError, match=r"`validation_by` must be one of \('expression', 'writer'\)"
    ):
        PretrainConfig(validation_by="person")
