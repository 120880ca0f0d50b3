"""`ExportedRecognizer.beam_ids`: Keras' `beam_search_decode`, token for token, on numpy graphs.

A fake recognizer whose next-token logits are a function of the image's seed and the whole
prefix, run two ways: as the export's step graph (the prefix read back from the key/value
cache the runner gathers along the kept beams) and as a Keras-side model whose
`decode_logits` sees the prefix itself (`beam_search_decode(..., use_cache=False)`). Its logits
are multiples of 0.5, so equal scores, and with them the tie-breaking, come up often; `<end>`
rises with the prefix's length past a per-image target, so the images stop at different steps
(one never does).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from im2latex_encoder.export import runner as recognizer_runner
from im2latex_encoder.export.runner import ExportedRecognizer
from im2latex_encoder.recognizer.decoding import beam_search_decode

START, END, PAD, VOCABULARY, MAX_LENGTH = 1, 2, 0, 9, 8
#: Each image's seed; its formula's target length is `_target(seed)`.
SEEDS = (0, 1, 2, 3, 4, 5, 6, 7)


def _target(seeds: np.ndarray) -> np.ndarray:
    """Tokens after which `<end>` leads: 1 to 6, and 11 (beyond `MAX_LENGTH`) for seed 7."""
    return np.where(seeds == 7, 11, 1 + seeds % 6)


def _logits(seeds: np.ndarray, prefixes: np.ndarray) -> np.ndarray:
    """`(rows, VOCABULARY)` float32 logits of each row's whole prefix (`<start>` first).

    A hash of the seed and the prefix picks each token's logit among 0, 0.5, 1 and 1.5 (ties);
    `<end>` gains 1 per token past the image's target, so it wins two tokens after it.
    """
    hashed = seeds.astype(np.int64) * 7919
    for column in prefixes.astype(np.int64).T:
        hashed = (hashed * 31 + column) % 1_000_003
    mixed = (hashed[:, None] * 7919 + np.arange(1, VOCABULARY + 1) * 104_729) % 10_007
    logits = (mixed * mixed % 10_007 % 4) / 2.0
    logits[:, END] += prefixes.shape[1] - _target(seeds)
    logits[:, [PAD, START]] = -5.0
    return logits.astype(np.float32)


class _KerasSide:
    """What `beam_search_decode(..., use_cache=False)` needs: `encode`, `decode_logits`."""

    max_length = MAX_LENGTH

    def encode(self, images):
        return np.asarray(images)[:, 0, :1, :1]  # (batch, 1, 1): the seed

    def decode_logits(self, memory, prefix):
        seeds = np.asarray(memory)[:, 0, 0]
        out = np.zeros((*prefix.shape, VOCABULARY), np.float32)
        out[:, -1] = _logits(seeds, np.asarray(prefix))
        return out


class _Step:
    """The step graph: the prefix is the cache's tokens before `position`, then `ids`."""

    def __init__(self):
        self.rows: list[int] = []

    def __call__(self, feeds):
        cache, ids, position = feeds["cache_keys_0"], feeds["ids"], int(feeds["position"])
        seeds = feeds["cross_keys_0"][:, 0, 0, 0]
        self.rows.append(len(ids))
        prefixes = np.concatenate([cache[:, 0, :position, 0], ids], axis=1)
        updated = cache.copy()
        updated[:, 0, position, 0] = ids[:, 0]
        return {"logits": _logits(seeds, prefixes), "next_cache_keys_0": updated}


def _encoder(feeds):
    return {"cross_keys_0": np.ascontiguousarray(feeds["images"][:, :1, :1, :1])}


def _runner() -> ExportedRecognizer:
    runner = ExportedRecognizer.__new__(ExportedRecognizer)
    runner.manifest = {"encoder_outputs": ["cross_keys_0"]}
    runner.max_length, runner.start_id, runner.end_id, runner.pad_id = MAX_LENGTH, START, END, PAD
    runner.cache_shape = (1, MAX_LENGTH, 1)
    runner.cache_names = ["cache_keys_0"]
    runner.encoder, runner.step = _encoder, _Step()
    return runner


def _images(seeds=SEEDS) -> np.ndarray:
    images = np.zeros((len(seeds), 4, 4, 1), np.float32)
    images[:, 0, 0, 0] = seeds
    return images


@pytest.mark.parametrize("beam_width", [1, 2, 3, 4, 12])
@pytest.mark.parametrize(
    "max_length,length_penalty", [(None, 0.0), (None, 1.0), (3, 0.0), (1, 0.5)]
)
def test_beam_ids_equal_keras_beam_search(beam_width, max_length, length_penalty):
    images = _images()
    expected = beam_search_decode(
        _KerasSide(),
        images,
        beam_width=beam_width,
        max_length=max_length,
        length_penalty=length_penalty,
        start_id=START,
        end_id=END,
        use_cache=False,
    )
    got = _runner().beam_ids(
        images, beam_width, max_length=max_length, length_penalty=length_penalty
    )
    assert got == expected
    if max_length is None:  # stopped at different lengths, one at the maximum
        assert len({len(ids) for ids in got}) >= 4 and max(map(len, got)) == MAX_LENGTH


@pytest.mark.parametrize("beam_width", [1, 3])
def test_views_are_averaged_as_keras_averages_them(beam_width):
    # Each image's three views in consecutive rows, of other seeds: other logits, other ends.
    seeds = np.stack([SEEDS, np.roll(SEEDS, 3), np.roll(SEEDS, 5)], axis=1).reshape(-1)
    images = _images(tuple(seeds))
    expected = beam_search_decode(
        _KerasSide(),
        images,
        beam_width=beam_width,
        start_id=START,
        end_id=END,
        use_cache=False,
        views=3,
    )
    runner = _runner()
    got = runner.beam_ids(images, beam_width, views=3)
    assert got == expected and len(got) == len(SEEDS)
    assert got != _runner().beam_ids(_images(), beam_width)  # the other views count
    assert min(runner.step.rows[2:]) < 3 * beam_width * len(SEEDS)  # finished images left
    with pytest.raises(ValueError, match="`views` must be a positive int that divides"):
        _runner().beam_ids(_images(), 2, views=3)


def test_beam_width_1_is_greedy_decoding():
    assert _runner().beam_ids(_images(), 1) == _runner().greedy_ids(_images())


def test_finished_images_leave_the_batch_with_the_same_tokens():
    runner = _runner()
    together = runner.beam_ids(_images(), 3)
    # The first step runs one row per image; then 3 per image until a quarter have finished.
    assert runner.step.rows[:2] == [len(SEEDS), 3 * len(SEEDS)]
    assert min(runner.step.rows[2:]) < 3 * len(SEEDS)
    assert together == [_runner().beam_ids(_images((seed,)), 3)[0] for seed in SEEDS]


def test_decode_with_a_beam_width_reads_beam_ids():
    runner = _runner()
    runner.tokens = [f"t{index}" for index in range(VOCABULARY)]
    latex = runner.decode(_images(), beam_width=3)
    assert latex == [runner.latex(ids) for ids in runner.beam_ids(_images(), 3)]
    assert runner.decode(_images(), beam_width=1) == runner.decode(_images())


@pytest.mark.parametrize("bad", [0, -2, 2.0, True, "4", None])
def test_bad_beam_widths_are_refused(bad):
    runner = _runner()
    message = f"`beam_width` must be a positive int. Received: beam_width={bad!r}"
    with pytest.raises(ValueError, match=re.escape(message)):
        runner.beam_ids(_images(), bad)
    with pytest.raises(ValueError, match="`beam_width` must be a positive int"):
        runner.decode(_images(), beam_width=bad)
    assert runner.step.rows == []  # refused before any graph ran


def test_cli_refuses_a_bad_beam_in_one_line(tmp_path, capsys):
    image = tmp_path / "image.npy"
    np.save(image, np.zeros((20, 30), np.uint8))
    # The width is checked before the export is loaded: no export is needed to see the error.
    status = recognizer_runner.main([str(image), "--folder", str(tmp_path), "--beam", "0"])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert captured.err.strip() == (
        "runner: error: `beam_width` must be a positive int. Received: beam_width=0"
    )
