"""`predict` over 10,000 files holds one chunk at a time; `prepare crohme` a few chunks of files.

`predict` is checked in-process, on the invariant itself: every image the loader returns and
every batch handed to the model is counted while it is alive (`weakref.finalize`, with the
garbage collector off so that only references keep an array alive), and the most ever alive at
once must be one chunk. The count does not depend on the machine, on TensorFlow's allocator or
on other processes, so the test cannot pass or fail by chance; a version that loads every file
before predicting, or keeps earlier chunks, holds 10,000 images and fails it.

`prepare crohme` is checked the same way: every file's record is counted while it is alive as
it reaches the parent's scan, in this process and with two workers, and the most ever alive is
bounded by the chunks in flight, not by the number of files. The full-size memory figures
(100,000 files, measured from outside) are in `tests/reliability/README.md`.
"""

import gc
import time
import weakref

import pytest

from im2latex_encoder.data.cache import load_prepared
from inkml_fixtures import build_inkml
from reliability_helpers import save_tiny_preset, write_crohme_folder

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


@pytest.mark.slow  # about 10 s: 5,000 files read, checked and drawn by two worker processes
@pytest.mark.timeout(600)
@pytest.mark.parametrize("workers", [1, 2])
def test_prepare_crohme_holds_a_bounded_number_of_files_at_once(tmp_path, monkeypatch, workers):
    from im2latex_encoder.data import crohme_preparer
    from im2latex_encoder.data.crohme import CrohmeScan, FileRecord

    count, size, chunk = 5_000, 18, 64
    write_crohme_folder(tmp_path / "big", count, build_inkml, padding=2_000)
    # Every file's record is counted from the moment it exists in this process (made here,
    # or unpickled from a worker's reply, which may then wait in a future) until it is
    # freed. A preparer that read every file before drawing, sent every chunk out at once, or
    # kept the records would hold all 5,000; streaming holds at most the chunks in flight
    # (two per worker) and the one being consumed.
    alive = _Alive()
    if workers == 1:
        add = CrohmeScan.add

        def counted_add(self, record):
            alive.track("record", record)
            return add(self, record)

        monkeypatch.setattr(CrohmeScan, "add", counted_add)
    else:

        def counted_setstate(self, state):
            self.__dict__.update(state)
            alive.track("record", self)

        monkeypatch.setattr(FileRecord, "__setstate__", counted_setstate, raising=False)
        # A parent slower than its workers (a slow disk for the output, a busy machine): the
        # replies then wait, and only the preparer's window keeps them from piling up.
        add = CrohmeScan.add

        def slow_add(self, record):
            time.sleep(0.0005)
            return add(self, record)

        monkeypatch.setattr(CrohmeScan, "add", slow_add)
    gc.disable()
    try:
        dataset = crohme_preparer.prepare_crohme(
            [tmp_path / "big"],
            tmp_path / "b.npz",
            image_size=size,
            progress=False,
            workers=workers,
            chunk_size=chunk,
        )
    finally:
        gc.enable()
    assert dataset.images.shape == (count, size, size) and dataset.images.max() > 128
    assert len(dataset.labels) == count
    in_flight = chunk * (1 if workers == 1 else 2 * workers + 1)
    assert 0 < alive.most["record"] <= in_flight, (alive.most, in_flight)
    assert alive.now["record"] == 0, "no record is kept once the dataset is written"
    # The cache on disk is the same dataset.
    again = load_prepared(tmp_path / "b.npz")
    assert again.images.shape == dataset.images.shape and (again.labels == dataset.labels).all()
