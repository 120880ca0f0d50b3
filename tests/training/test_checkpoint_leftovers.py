"""`RunCheckpoint.restore` removes what a killed run left half-written, and nothing else."""

from im2latex_encoder.training.checkpoint import RunCheckpoint


def _leftovers(run):
    checkpoint = run / "checkpoint"
    checkpoint.mkdir(parents=True)
    ours = [
        checkpoint / ".state.json.tmp-abcd1234.json",
        checkpoint / ".epoch-0002.weights.h5.tmp-k2j4x9ab.weights.h5",
        run / ".history.csv.tmp-dbwnnfmk.csv",  # what a kill -9 mid-write left in CI once
    ]
    others = [
        run / "history.csv",
        checkpoint / "epoch-0001.weights.h5",
        run / ".model_card.md.tmp-abcd1234.md",  # not a file the checkpoint writes
        checkpoint / "notes.txt",
    ]
    for path in ours + others:
        path.write_text("x")
    return checkpoint, ours, others


def test_a_writing_checkpoint_removes_fresh_leftovers_of_its_own_files(tmp_path):
    checkpoint, ours, others = _leftovers(tmp_path)
    # Fresh files (seconds old): `remove_stale_temporaries`' default would keep them.
    assert RunCheckpoint(checkpoint, history_csv=tmp_path / "history.csv").restore(None) == 0
    assert [path for path in ours if path.exists()] == []
    assert all(path.exists() for path in others)


def test_a_reading_worker_leaves_them_to_the_chief(tmp_path):
    checkpoint, ours, others = _leftovers(tmp_path)
    RunCheckpoint(checkpoint, history_csv=tmp_path / "history.csv", write=False).restore(None)
    assert all(path.exists() for path in ours + others)
