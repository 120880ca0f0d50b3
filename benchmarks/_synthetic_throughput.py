"""Dev check: synthetic symbols per second in one process.

Run: ``python -m benchmarks._synthetic_throughput``.

Prints the one-off glyph-table start-up time and the steady-state images/s (wall clock and per
CPU-second, the latter being fairer when other jobs share the cores) of
`SyntheticSymbols.sample_batch` for each layout and ink at 128x128.
"""

from __future__ import annotations

import time

import numpy as np

from im2latex_encoder.data.synthetic import SyntheticSymbols


def main(batches: int = 20, batch_size: int = 256) -> None:
    started = time.perf_counter()
    _ = SyntheticSymbols().tables  # build every training font's glyph table
    print(f"glyph tables (train fonts): {time.perf_counter() - started:.2f} s")
    for layout, ink in (("fit", "pen"), ("baseline", "pen"), ("fit", "font")):
        source = SyntheticSymbols(image_size=128, layout=layout, ink=ink)
        rng = np.random.default_rng(0)
        source.sample_batch(batch_size, rng)  # warm-up
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(batches):
            source.sample_batch(batch_size, rng)
        count = batches * batch_size
        wall = count / (time.perf_counter() - started)
        cpu = count / (time.process_time() - cpu_started)  # fairer on a shared, busy machine
        print(
            f"layout={layout:8s} ink={ink:4s}: {wall:8.0f} images/s wall, "
            f"{cpu:8.0f} per CPU-second (128x128, one process)"
        )


if __name__ == "__main__":
    main()
