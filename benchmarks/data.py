"""Data preparation: InkML parse + render symbols/s, library vs the seed's way; synthetic images/s.

- **InkML → image** (symbols/s, one process): the library's `read_symbol_strokes` +
  `render_strokes(strokes, image_size=128)` vs the seed notebook's way, one file at a time:
  parse with `xml.etree`, plot the traces on a matplotlib figure, save it as PNG, read the PNG
  back and resize it to 128×128. Both read the same generated files: synthetic strokes in
  CROHME's isolated-symbol layout (namespace, traceFormat, UI annotation, traces of 20–60
  ``X Y`` points, a traceGroup), written to a temporary folder. Interleaved rounds; target
  library / seed ≥ 20×.
- **prepare crohme** (symbols/s, every CPU): the real CROHME training set (8,836 expressions,
  85,802 symbols) into a fresh 32×32 image cache and a fresh ink cache, when the data is there
  (`benchmarks.time_to_accuracy.crohme_folder`); floor: 3,000 symbols/s.
- **Synthetic symbols** (images/s) from `im2latex_encoder.data.synthetic`, when it exists.
"""

from __future__ import annotations

import inspect
import io
import os
import tempfile

import numpy as np

from benchmarks._harness import Options, Result, interleave, rate_figure, rates, ratio, timed

_INKML_HEAD = (
    '<ink xmlns="http://www.w3.org/2003/InkML">\n'
    '<traceFormat>\n<channel name="X" type="decimal"/>\n'
    '<channel name="Y" type="decimal"/>\n</traceFormat>\n'
    '<annotation type="UI">{ui}</annotation>\n'
)


def synthetic_strokes(rng: np.random.Generator) -> list:
    """Return 1–3 smooth pen strokes of 20–60 points in CROHME-like pixel coordinates.

    Example:
    >>> strokes = synthetic_strokes(np.random.default_rng(0))
    >>> all(s.shape[1] == 2 for s in strokes)
    True
    """
    strokes = []
    start = rng.uniform(100, 300, size=2)
    for _ in range(int(rng.integers(1, 4))):
        n = int(rng.integers(20, 61))
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.25, n))
        steps = np.stack([np.cos(heading), np.sin(heading)], axis=1) * rng.uniform(2, 6)
        stroke = start + np.cumsum(steps, axis=0)
        strokes.append(np.round(stroke, 2))
        start = stroke[-1] + rng.normal(0, 15, size=2)
    return strokes


def inkml_text(strokes: list, ui: str, label: str = "x") -> str:
    """Write strokes as a CROHME isolated-symbol InkML document.

    Example:
    >>> inkml_text([np.array([[0.0, 1.0], [2.0, 3.0]])], "s_0").count("<trace ")
    1
    """
    parts = [_INKML_HEAD.format(ui=ui)]
    for index, stroke in enumerate(strokes):
        points = ", ".join(f"{x:g} {y:g}" for x, y in stroke)
        parts.append(f'<trace id="{index}">\n{points}\n</trace>\n')
    views = "".join(f'<traceView traceDataRef="{i}"/>' for i in range(len(strokes)))
    parts.append(
        f'<traceGroup xml:id="{len(strokes)}"><annotation type="Truth">From ITF'
        f'</annotation><traceGroup xml:id="{len(strokes) + 1}">'
        f'<annotation type="truth">{label}</annotation>{views}</traceGroup>'
        f"</traceGroup>\n</ink>\n"
    )
    return "".join(parts)


def write_inkml_files(folder: str, count: int, seed: int = 0) -> list:
    """Write `count` synthetic isolated-symbol InkML files into `folder`; return their paths.

    Example:
    >>> len(write_inkml_files(tempfile.mkdtemp(), 3))
    3
    """
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        path = os.path.join(folder, f"iso{index}.inkml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(inkml_text(synthetic_strokes(rng), f"bench_{index}"))
        paths.append(path)
    return paths


def seed_way(path: str) -> np.ndarray:
    """The seed notebook's InkML → 128×128 image: matplotlib figure → PNG → read → resize.

    Example:
    >>> seed_way(write_inkml_files(tempfile.mkdtemp(), 1)[0]).shape  # doctest: +SKIP
    (128, 128)
    """
    import xml.etree.ElementTree as ElementTree

    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root = ElementTree.parse(path).getroot()
    figure = plt.figure(figsize=(2, 2), dpi=100)
    axes = figure.add_axes([0, 0, 1, 1])
    axes.axis("off")
    for trace in root.iter("{http://www.w3.org/2003/InkML}trace"):
        points = np.array(
            [[float(v) for v in point.split()[:2]] for point in trace.text.strip().split(",")]
        )
        axes.plot(points[:, 0], -points[:, 1], color="black", linewidth=2)
    buffer = io.BytesIO()  # the seed wrote a file; an in-memory PNG is its lower bound
    figure.savefig(buffer, format="png")
    plt.close(figure)
    png = cv2.imdecode(np.frombuffer(buffer.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)
    image = cv2.resize(png, (128, 128), interpolation=cv2.INTER_AREA)
    return 1.0 - image.astype(np.float32) / 255.0


def _synthetic_candidate(batch: int):
    """Return (callable, description) for the synthetic generator's API, or raise why not."""
    from im2latex_encoder.data import synthetic

    rng = np.random.default_rng(0)
    if hasattr(synthetic, "SyntheticSymbols"):
        parameters = inspect.signature(synthetic.SyntheticSymbols).parameters
        generator = synthetic.SyntheticSymbols(
            **({"image_size": 128} if "image_size" in parameters else {})
        )
        if hasattr(generator, "sample_batch"):
            return (
                lambda: generator.sample_batch(batch, rng),
                f"SyntheticSymbols().sample_batch({batch}, rng)",
            )
    if hasattr(synthetic, "generate_synthetic_symbols"):
        function = synthetic.generate_synthetic_symbols
        kwargs = {"progress": False} if "progress" in inspect.signature(function).parameters else {}
        return (lambda: function(1, **kwargs), "generate_synthetic_symbols(1) (one per class)")
    raise AttributeError("neither SyntheticSymbols.sample_batch nor generate_synthetic_symbols")


def run(options: Options) -> Result:
    """Measure data preparation (see the module docstring).

    Example:
    >>> run(Options(quick=True)).status  # doctest: +SKIP
    'ok'
    """
    from benchmarks._harness import require

    inkml = require("im2latex_encoder.data.inkml", "the library's InkML reader")
    render = require("im2latex_encoder.data.render", "the library's stroke renderer")
    result = Result("data")
    rounds = options.rounds(7)
    library_files = QUICK_LIBRARY_FILES if options.quick else 300
    seed_files = QUICK_SEED_FILES if options.quick else 20

    with tempfile.TemporaryDirectory(prefix="bench-inkml-") as folder:
        paths = write_inkml_files(folder, library_files)
        for path in paths[:3]:  # both ways must read every file before either is timed
            seed_way(path)
            render.render_strokes(inkml.read_symbol_strokes(path)[1], image_size=128)

        def library():
            for path in paths:
                render.render_strokes(inkml.read_symbol_strokes(path)[1], image_size=128)

        def seed():
            for path in paths[:seed_files]:
                seed_way(path)

        times = interleave({"library": timed(library), "seed": timed(seed)}, rounds)
    result.figures += [
        rate_figure(
            "library: read_symbol_strokes + render_strokes",
            times["library"],
            library_files,
            "symbols/s",
            f"{library_files} files per round",
        ),
        rate_figure(
            "seed: xml.etree + matplotlib PNG + resize",
            times["seed"],
            seed_files,
            "symbols/s",
            f"{seed_files} files per round",
        ),
    ]
    result.ratios.append(
        ratio(
            "library / seed symbols/s",
            rates(times["library"], library_files),
            rates(times["seed"], seed_files),
            target=20.0,
        )
    )
    result.notes.append(
        "Seed way: one matplotlib figure (2×2 in, 100 dpi) per file, PNG "
        "encoded in memory (the seed wrote it to disk: slower still), decoded "
        "with OpenCV, resized to 128×128 with INTER_AREA."
    )

    if PREPARE_CROHME:
        _crohme_preparation(result, options)
    else:
        result.notes.append("prepare crohme: left out in tiny mode (the whole training set)")

    batch = SYNTHETIC_BATCH
    try:
        generate, description = _synthetic_candidate(batch)
    except ModuleNotFoundError:
        result.notes.append("synthetic: unavailable until `im2latex_encoder.data.synthetic` exists")
        return result
    except AttributeError as error:
        result.notes.append(f"synthetic: unavailable: API not recognised ({error})")
        return result
    generate()  # font discovery and glyph tables are built once, not per batch
    times = interleave({"synthetic": timed(generate)}, rounds)
    work = batch if "sample_batch" in description else _per_class_count()
    result.figures.append(
        rate_figure("synthetic symbols", times["synthetic"], work, "images/s", description)
    )
    return result


#: symbols/s `prepare crohme` must reach over the CROHME training set on this machine.
PREPARE_TARGET = 3000.0
#: Files per round in a quick run (library, seed way); images per synthetic batch.
QUICK_LIBRARY_FILES, QUICK_SEED_FILES, SYNTHETIC_BATCH = 50, 5, 64
#: Whether to time `prepare crohme` over the real training set (when the data is there).
PREPARE_CROHME = True
#: `Options(tiny=True)`'s sizes (see `benchmarks._harness.tiny_sizes`).
TINY = {
    "QUICK_LIBRARY_FILES": 4,
    "QUICK_SEED_FILES": 2,
    "SYNTHETIC_BATCH": 4,
    "PREPARE_CROHME": False,
}


def _crohme_preparation(result: Result, options: Options) -> None:
    """`prepare crohme` over the real CROHME training set (images and ink), when it is there.

    Each round writes a fresh cache (no reuse), every CPU working, as the command line does.
    """
    from benchmarks.time_to_accuracy import crohme_folder

    folder = crohme_folder()
    if folder is None:
        result.notes.append("prepare crohme: skipped (no CROHME data; set IM2LATEX_CROHME)")
        return
    from im2latex_encoder.data.crohme_preparer import prepare_crohme
    from im2latex_encoder.data.ink import prepare_crohme_ink

    train = os.path.join(folder, "train")
    counts = {}
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as out:

        def images():
            counts["images"] = len(
                prepare_crohme(
                    train, tempfile.mktemp(suffix=".npz", dir=out), image_size=32, progress=False
                )
            )

        def ink():
            counts["ink"] = len(
                prepare_crohme_ink(train, tempfile.mktemp(suffix=".npz", dir=out), progress=False)
            )

        times = interleave({"images": timed(images), "ink": timed(ink)}, 1 if options.quick else 3)
    for kind, description in (("images", "32×32 images"), ("ink", "strokes (ink cache)")):
        result.figures.append(
            rate_figure(
                f"prepare crohme train → {description}",
                times[kind],
                counts[kind],
                "symbols/s",
                f"{counts[kind]:,} symbols of 8,836 files, every CPU",
            )
        )
        result.ratios.append(
            ratio(
                f"prepare crohme ({kind}) symbols/s / {PREPARE_TARGET:,.0f}",
                rates(times[kind], counts[kind]),
                [PREPARE_TARGET] * len(times[kind]),
                target=1.0,
                note="against the issue's fixed floor, not a peer",
            )
        )


def _per_class_count() -> int:
    from im2latex_encoder.symbols import CROHME_SYMBOLS

    return len(CROHME_SYMBOLS)
