"""`predict` over 10,000 files and `prepare crohme` over 20,000 run in bounded memory.

Peak memory is the largest resident set of the command's process tree, read with
`getrusage(RUSAGE_CHILDREN)` in a fresh interpreter. Each bound is computed from the sizes:
it is half of what holding every input (or every image) at once would add, so a version that
loads first and works after fails it, while the streamed one stays far below.
The full-size figures (100,000 files) are in `tests/reliability/README.md`.
"""

import numpy as np
import pytest
from inkml_fixtures import build_inkml
from reliability_helpers import cli, peak_rss, save_tiny_preset, write_crohme_folder

from im2latex_encoder.data.cache import load_prepared

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

MIB = 2**20


def test_predict_streams_10000_files_in_bounded_memory(tmp_path):
    size, count = 64, 10_000
    save_tiny_preset(tmp_path / "preset", image_size=size)
    write_crohme_folder(tmp_path / "ink", count, build_inkml)
    files = sorted(str(p) for p in (tmp_path / "ink").glob("*.inkml"))
    assert len(files) == count

    code, small, out, err = peak_rss(cli("predict", "--preset", tmp_path / "preset", *files[:10]), tmp_path)
    assert code == 0 and len(out.splitlines()) == 10, err[-2000:]
    code, peak, out, err = peak_rss(cli("predict", "--preset", tmp_path / "preset", *files), tmp_path)
    assert code == 0, err[-2000:]
    lines = out.splitlines()
    assert len(lines) == count and lines[0].startswith(files[0] + "\t")
    assert all(len(line.split("\t")) == 4 for line in lines)  # name + top 3
    assert f"{count}/{count}" in err, "a progress bar for long runs"

    all_at_once = count * size * size * np.dtype(np.float32).itemsize  # every image in memory
    growth = peak - small
    print(f"predict {count} files: peak RSS {peak / MIB:.0f} MiB, {growth / MIB:.0f} MiB over 10 files; "
          f"all images at once would add {all_at_once / MIB:.0f} MiB")
    assert growth < all_at_once / 2


def test_prepare_crohme_streams_20000_files_in_bounded_memory(tmp_path):
    count, size, padding = 20_000, 18, 8_000
    source_bytes = write_crohme_folder(tmp_path / "big", count, build_inkml, padding=padding)
    write_crohme_folder(tmp_path / "small", 200, build_inkml, padding=padding)

    code, small, _, err = peak_rss(cli("prepare", "crohme", tmp_path / "small", "--out", tmp_path / "s.npz",
                                       "--image-size", size), tmp_path)
    assert code == 0, err[-2000:]
    code, peak, out, err = peak_rss(cli("prepare", "crohme", tmp_path / "big", "--out", tmp_path / "b.npz",
                                        "--image-size", size), tmp_path)
    assert code == 0, err[-2000:]
    assert f"used {count} samples" in out and "skipped nothing" in out
    assert "prepare crohme: 100%" in err and f"{count}/{count}" in err, "a progress bar"
    dataset = load_prepared(tmp_path / "b.npz")
    assert dataset.images.shape == (count, size, size) and dataset.images.max() > 128

    output_bytes = dataset.images.nbytes + dataset.labels.nbytes
    bound = source_bytes / 2 + 2 * output_bytes
    growth = peak - small
    print(f"prepare crohme {count} files ({source_bytes / MIB:.0f} MiB): peak RSS {peak / MIB:.0f} MiB, "
          f"{growth / MIB:.0f} MiB over 200 files; bound {bound / MIB:.0f} MiB")
    assert source_bytes > 8 * output_bytes, "the bound only tells streaming apart if the input is large"
    assert growth < bound
