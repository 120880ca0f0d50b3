"""`ExportedRecognizer.greedy_ids` drops finished rows from the batch: same tokens as whole."""

from __future__ import annotations

import numpy as np
import pytest

from im2latex_encoder.export.runner import ExportedRecognizer

START, END, PAD, HEADS, MAX_LENGTH, KEY_DIM = 1, 2, 0, 1, 12, 1


class _Encoder:
    """Each row's cross 'keys' hold its row index and its formula's length."""

    def __init__(self, lengths):
        self.lengths = np.asarray(lengths, np.float32)

    def __call__(self, feeds):
        batch = feeds["images"].shape[0]
        keys = np.zeros((batch, HEADS, 2, KEY_DIM), np.float32)
        keys[:, 0, 0, 0] = np.arange(batch)
        keys[:, 0, 1, 0] = self.lengths[:batch]
        return {"cross_keys_0": keys}


def _step(feeds):
    """Token = 3 + (row + sum of the row's cache) % 7 until the row's length, then <end>.

    The cache slot at `position` records the row index + 1: a cache or cross gathered for
    the wrong rows changes the sums, so the tokens, after a compaction.
    """
    cache, keys, position = feeds["cache_keys_0"], feeds["cross_keys_0"], int(feeds["position"])
    rows, lengths = keys[:, 0, 0, 0], keys[:, 0, 1, 0]
    token = 3 + (rows + cache.sum(axis=(1, 2, 3))).astype(int) % 7
    token = np.where(position >= lengths, END, token)
    logits = np.zeros((len(rows), 10), np.float32)
    logits[np.arange(len(rows)), token] = 1.0
    updated = cache.copy()
    updated[:, 0, position, 0] = rows + 1
    return {"logits": logits, "next_cache_keys_0": updated}


def _runner(lengths) -> ExportedRecognizer:
    runner = ExportedRecognizer.__new__(ExportedRecognizer)
    runner.manifest = {"encoder_outputs": ["cross_keys_0"]}
    runner.max_length, runner.start_id, runner.end_id, runner.pad_id = MAX_LENGTH, START, END, PAD
    runner.cache_shape = (HEADS, MAX_LENGTH, KEY_DIM)
    runner.cache_names = ["cache_keys_0"]
    runner.encoder, runner.step = _Encoder(lengths), _step
    return runner


@pytest.mark.parametrize("lengths", [[1, 9, 2, 2, 7, 0, 11, 3], [5, 5, 5], [0], [12, 1, 1, 1, 1]])
def test_dropping_finished_rows_keeps_every_row_s_tokens(lengths):
    runner = _runner(lengths)
    images = np.zeros((len(lengths), 4, 4, 1), np.float32)
    compacted = runner.greedy_ids(images)
    whole = runner.greedy_ids(images, logits=[])  # logits requested: the batch stays whole
    assert compacted == whole
    assert [len(ids) for ids in compacted] == [min(n, MAX_LENGTH) for n in lengths]
    # Row 1 alone gives the tokens it gets inside the batch.
    alone = _runner([lengths[0]]).greedy_ids(images[:1])
    assert alone[0] == compacted[0]
