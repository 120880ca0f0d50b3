"""Dev check: synthetic symbols per second in one process.

Run: ``python -m benchmarks._synthetic_throughput``.

Prints the one-off glyph-table start-up time and the steady-state images/s of
`SyntheticSymbols.sample_batch` for each layout and ink at 128x128.
"""

from __future__ import annotations

import time

import numpy as np

from im2latex_encoder.data.synthetic import SyntheticSymbols


def main(batches: int = 20, batch_size: int = 256) -> None:
    started = time.perf_counter()
    SyntheticSymbols().tables  # build every training font's glyph table
    print(f"glyph tables (train fonts): {time.perf_counter() - started:.2f} s")
    for layout, ink in (("fit", "pen"), ("baseline", "pen"), ("fit", "font")):
        source = SyntheticSymbols(image_size=128, layout=layout, ink=ink)
        rng = np.random.default_rng(0)
        source.sample_batch(batch_size, rng)  # warm-up
        started = time.perf_counter()
        for _ in range(batches):
            source.sample_batch(batch_size, rng)
        rate = batches * batch_size / (time.perf_counter() - started)
        print(f"layout={layout:8s} ink={ink:4s}: {rate:8.0f} images/s (128x128, one process)")


if __name__ == "__main__":
    main()
