"""`predict` over 10,000 files holds one chunk at a time; `prepare crohme` over 20,000 runs in bounded memory.

`predict` is checked in-process, on the invariant itself: every image the loader returns and
every batch handed to the model is counted while it is alive (`weakref.finalize`, with the
garbage collector off so that only references keep an array alive), and the most ever alive at
once must be one chunk. The count does not depend on the machine, on TensorFlow's allocator or
on other processes, so the test cannot pass or fail by chance; a version that loads every file
before predicting, or keeps earlier chunks, holds 10,000 images and fails it.

`prepare crohme` is measured from outside: the largest resident set of the command's process
tree, read with `getrusage(RUSAGE_CHILDREN)` in a fresh interpreter, against a bound of half of
what holding every input at once would add. The full-size figures (100,000 files) are in
`tests/reliability/README.md`.
"""

import gc
import weakref

import pytest

from im2latex_encoder.data.cache import load_prepared
from inkml_fixtures import build_inkml
from reliability_helpers import cli, peak_rss, save_tiny_preset, write_crohme_folder

MIB = 2**20


class _Alive:
    """Counts the objects of each kind alive now, and the most ever alive at once."""

    def __init__(self):
        self.now: dict[str, int] = {}
        self.most: dict[str, int] = {}

    def track(self, kind: str, obj) -> None:
        self.now[kind] = self.now.get(kind, 0) + 1
        self.most[kind] = max(self.most.get(kind, 0), self.now[kind])
        weakref.finalize(obj, self._release, kind)

    def _release(self, kind: str) -> None:
        self.now[kind] -= 1


@pytest.mark.slow  # about 8 s: 10,000 files read, rendered and classified
@pytest.mark.timeout(300)
def test_predict_streams_10000_files_one_chunk_at_a_time(tmp_path, monkeypatch, capsys):
    from im2latex_encoder import SymbolClassifier
    from im2latex_encoder.cli import main
    from im2latex_encoder.cli import predict as predict_command
    from im2latex_encoder.data import symbol_files

    size, count, chunk = 24, 10_000, predict_command._CHUNK
    assert count >= 10 * chunk, "ten chunks or more, or there is nothing to stream"
    save_tiny_preset(tmp_path / "preset", image_size=size)
    write_crohme_folder(tmp_path / "ink", count, build_inkml)
    files = sorted(str(p) for p in (tmp_path / "ink").glob("*.inkml"))
    assert len(files) == count

    alive, batch_sizes = _Alive(), []
    load_symbol_file, predict_labels = (
        symbol_files.load_symbol_file,
        SymbolClassifier.predict_labels,
    )

    def counted_load(*args, **kwargs):
        image = load_symbol_file(*args, **kwargs)
        alive.track("image", image)
        return image

    def counted_predict(self, images, *args, **kwargs):
        alive.track("batch", images)
        batch_sizes.append(len(images))
        return predict_labels(self, images, *args, **kwargs)

    # `predict` imports the loader when it runs, so patching the module's attribute reaches it.
    monkeypatch.setattr(symbol_files, "load_symbol_file", counted_load)
    monkeypatch.setattr(SymbolClassifier, "predict_labels", counted_predict)
    gc.collect()
    gc.disable()  # an array is released when its last reference goes, never at a collector's whim
    try:
        status = main(["predict", "--preset", str(tmp_path / "preset"), *files])
    finally:
        gc.enable()
    out, err = capsys.readouterr()
    assert status == 0, err[-2000:]
    lines = out.splitlines()
    assert len(lines) == count and lines[0].startswith(files[0] + "\t")
    assert all(len(line.split("\t")) == 4 for line in lines)  # name + top 3
    assert f"{count}/{count}" in err, "a progress bar for long runs"

    # Every file went through the counted loader and model, in chunks of `chunk` files ...
    assert sum(batch_sizes) == count
    assert batch_sizes == [chunk] * (count // chunk) + [count % chunk]
    # ... and no more than one chunk was ever held: its images, then the batch stacked from them.
    assert alive.most == {"image": chunk, "batch": 1}, alive.most
    assert alive.now == {"image": 0, "batch": 0}, "nothing is kept once the command returns"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_prepare_crohme_streams_20000_files_in_bounded_memory(tmp_path):
    count, size, padding = 20_000, 18, 8_000
    source_bytes = write_crohme_folder(tmp_path / "big", count, build_inkml, padding=padding)
    write_crohme_folder(tmp_path / "small", 200, build_inkml, padding=padding)

    code, small, _, err = peak_rss(
        cli(
            "prepare",
            "crohme",
            tmp_path / "small",
            "--out",
            tmp_path / "s.npz",
            "--image-size",
            size,
        ),
        tmp_path,
    )
    assert code == 0, err[-2000:]
    code, peak, out, err = peak_rss(
        cli(
            "prepare", "crohme", tmp_path / "big", "--out", tmp_path / "b.npz", "--image-size", size
        ),
        tmp_path,
    )
    assert code == 0, err[-2000:]
    assert f"used {count} samples" in out and "skipped nothing" in out
    assert "prepare crohme: 100%" in err and f"{count}/{count}" in err, "a progress bar"
    dataset = load_prepared(tmp_path / "b.npz")
    assert dataset.images.shape == (count, size, size) and dataset.images.max() > 128

    output_bytes = dataset.images.nbytes + dataset.labels.nbytes
    bound = source_bytes / 2 + 2 * output_bytes
    growth = peak - small
    print(
        f"prepare crohme {count} files ({source_bytes / MIB:.0f} MiB): peak RSS {peak / MIB:.0f} MiB, "
        f"{growth / MIB:.0f} MiB over 200 files; bound {bound / MIB:.0f} MiB"
    )
    assert source_bytes > 8 * output_bytes, (
        "the bound only tells streaming apart if the input is large"
    )
    assert growth < bound
