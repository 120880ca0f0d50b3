"""`im2latex-encoder show`: a labelled grid of samples from a prepared ``.npz`` cache."""

from __future__ import annotations

import argparse
import os

from im2latex_encoder._atomic import atomic_path
from im2latex_encoder.cli import CLIError, check_out_folder

_IMAGE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def register(subparsers) -> None:
    """Add the `show` subcommand to the CLI's subparsers.

    Args:
        subparsers: the object `argparse.ArgumentParser.add_subparsers()` returned.

    Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> register(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["show", "c.npz", "--out", "s.png"]).rows
    4
    """
    parser = subparsers.add_parser(
        "show",
        help="draw a labelled grid of samples from a prepared .npz",
        description="Draw ROWS x COLS random samples of a prepared dataset, each titled with "
        "its label typeset as LaTeX (plain text where mathtext cannot parse it).",
    )
    parser.add_argument("dataset", metavar="FILE.npz", help="a prepared dataset")
    parser.add_argument("--out", required=True, help="image to write (.png, .pdf, .svg, .jpg)")
    parser.add_argument("--rows", type=int, default=4, help="grid rows")
    parser.add_argument("--cols", type=int, default=6, help="grid columns")
    parser.add_argument("--seed", type=int, default=0, help="which samples (random seed)")
    parser.set_defaults(func=run)


def label_title(name: str) -> str:
    """A class name as a plot title: the rule of the run's plots (`training.plots`).

    Imported when called: `training.plots` pulls in matplotlib, which `--help` must not wait for.

    Example:
    >>> label_title("COMMA")
    '$,$'
    """
    from im2latex_encoder.training.plots import mathtext_label

    return mathtext_label(name)


def draw_samples(dataset, out: str, *, rows: int = 4, cols: int = 6, seed: int = 0) -> list:
    """Draw a labelled grid of random samples of `dataset` into `out`, atomically.

    Args:
        dataset: PreparedDataset.
        out: str. The image file (its suffix picks the format).
        rows, cols: int. Grid shape; fewer cells are filled when the dataset is smaller.
        seed: int. Random seed for the choice of samples.

    Returns:
        The indices drawn, in grid order.

    Example:
    >>> draw_samples(load_prepared("c.npz"), "sheet.png", rows=3, cols=3)  # doctest: +SKIP
    [12, 4, ...]
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rng = np.random.default_rng(seed)
    count = min(rows * cols, len(dataset))
    indices = sorted(rng.choice(len(dataset), size=count, replace=False).tolist())
    figure, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    try:
        for cell, axis in enumerate(axes.flat):
            axis.axis("off")
            if cell >= count:
                continue
            index = indices[cell]
            axis.imshow(dataset.images[index], cmap="gray_r", vmin=0, vmax=255)
            name = dataset.label_names[int(dataset.labels[index])]
            axis.set_title(label_title(name), fontsize=12)
        figure.tight_layout()
        suffix = os.path.splitext(out)[1]
        with atomic_path(out) as temporary:
            figure.savefig(temporary, format=suffix.lstrip(".").replace("jpg", "jpeg"), dpi=100)
    finally:
        plt.close(figure)
    return indices


def run(args: argparse.Namespace) -> int:
    """Run `show`: load the dataset, draw the grid, print what was written.

    Args:
        args: argparse.Namespace with `dataset`, `out`, `rows`, `cols`, `seed`.

    Returns:
        0 on success; user errors raise `CLIError`/`CacheError` (one line, exit status 2).

    Example:
    >>> from im2latex_encoder.cli import main
    >>> main(["show", "c.npz", "--out", "sheet.png"])  # doctest: +SKIP
    0
    """
    if not args.out.lower().endswith(_IMAGE_SUFFIXES):
        raise CLIError(
            f"--out must end with one of {', '.join(_IMAGE_SUFFIXES)}. Received: {args.out!r}"
        )
    check_out_folder(args.out)
    for name in ("rows", "cols"):
        if not 1 <= getattr(args, name) <= 50:
            raise CLIError(f"--{name} must lie in [1, 50]. Received: {getattr(args, name)}")
    from im2latex_encoder.data.cache import load_prepared

    dataset = load_prepared(args.dataset)
    if len(dataset) == 0:
        raise CLIError(f"{args.dataset} holds no images")
    indices = draw_samples(dataset, args.out, rows=args.rows, cols=args.cols, seed=args.seed)
    print(f"wrote {args.out}: {len(indices)} samples of {args.dataset}")
    return 0
