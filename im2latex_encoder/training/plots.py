"""PNG plots of a run: learning curves, sample predictions, most-confused pairs."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from im2latex_encoder._atomic import atomic_path


@functools.cache
def mathtext_label(name: str) -> str:
    """A class name as matplotlib text: ``$latex$`` where mathtext can typeset it, else the name.

    Example:
    >>> mathtext_label("\\\\alpha"), mathtext_label("COMMA"), mathtext_label("junk")
    ('$\\\\alpha$', '$,$', 'junk')
    """
    from matplotlib.mathtext import MathTextParser

    from im2latex_encoder.symbols import symbol_to_latex

    try:
        latex = symbol_to_latex(name)
    except ValueError:
        latex = name
    if not latex:
        return name
    try:
        MathTextParser("path").parse(f"${latex}$")
    except ValueError:  # e.g. `\sqrt` without an argument
        return name
    return f"${latex}$"


def _figure(rows: int, cols: int, size: float):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=(cols * size, rows * size), squeeze=False)


def _save(figure, path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png")
    plt.close(figure)
    return Path(path)


def plot_history(
    history: Sequence[dict],
    path,
    *,
    metric: str = "accuracy",
    title: str = "Accuracy",
    validation_label: str = "validation (held-out fonts)",
) -> Path:
    """Accuracy and loss per epoch, training and validation (the seed's `plot_history`).

    Args:
        history: list of dict. Rows with `epoch`, `accuracy`, `loss`, `val_accuracy`,
            `val_loss` (as `RunCheckpoint` records them).
        path: str or Path. The PNG to write.
        metric: str. The history key plotted beside the loss (``val_`` + it for validation).
        title: str. That panel's title.
        validation_label: str. The legend of the validation curves.

    Example:
    >>> plot_history([{"epoch": 1, "accuracy": 0.5, "loss": 2.0}], "/tmp/h.png")  # doctest: +SKIP
    """
    figure, axes = _figure(1, 2, 4.5)
    epochs = [row["epoch"] for row in history]
    for ax, name, heading in ((axes[0, 0], metric, title), (axes[0, 1], "loss", "Loss")):
        for key, style, label in (
            (name, "-o", "training"),
            (f"val_{name}", "-s", validation_label),
        ):
            values = [row.get(key) for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, label=label, markersize=3)
        ax.set_title(heading)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    figure.tight_layout()
    return _save(figure, path)


def plot_predictions(
    images: np.ndarray,
    true_names: Sequence[str],
    predicted_names: Sequence[str],
    confidences: Sequence[float],
    path,
    columns: int = 6,
) -> Path:
    """A grid of images titled with prediction, confidence and truth (the seed's `plot_indices`).

    Correct predictions are titled in green, wrong ones in red.

    Example:
    >>> plot_predictions(np.zeros((1, 8, 8)), ["x"], ["x"], [0.9], "/tmp/p.png")  # doctest: +SKIP
    """
    count = len(images)
    rows = max(1, -(-count // columns))
    figure, axes = _figure(rows, columns, 1.9)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= count:
            continue
        ax.imshow(
            np.asarray(images[index]).squeeze(),
            cmap="gray_r",
            vmin=0,
            vmax=255 if images.dtype == np.uint8 else 1,
        )
        right = true_names[index] == predicted_names[index]
        ax.set_title(
            f"{mathtext_label(predicted_names[index])} {100 * confidences[index]:.0f}%\n"
            f"true {mathtext_label(true_names[index])}",
            color="green" if right else "red",
            fontsize=9,
        )
    figure.tight_layout()
    return _save(figure, path)


def plot_confusions(pairs: Sequence[Sequence], path, title: str = "Most-confused pairs") -> Path:
    """A bar chart of the most-confused (true → predicted) pairs.

    Args:
        pairs: list of `[true, predicted, count]`, as `evaluate_classifier` returns.
        path: str or Path.

    Example:
    >>> plot_confusions([["c", "C", 5]], "/tmp/c.png")  # doctest: +SKIP
    """
    figure, axes = _figure(1, 1, 5.0)
    ax = axes[0, 0]
    if pairs:
        names = [f"{mathtext_label(t)} → {mathtext_label(p)}" for t, p, _ in pairs][::-1]
        counts = [c for _, _, c in pairs][::-1]
        ax.barh(range(len(counts)), counts, color="tab:red")
        ax.set_yticks(range(len(counts)), names)
        ax.set_xlabel("mistakes (images)")
    else:
        ax.text(0.5, 0.5, "no confusions", ha="center", va="center")
        ax.axis("off")
    ax.set_title(title)
    figure.tight_layout()
    return _save(figure, path)
