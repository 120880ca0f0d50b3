"""A short Markdown model card for a pretrained preset."""

from __future__ import annotations


def model_card(*, name: str, config: dict, data: list[str], metrics: dict, parameters: int,
               train_seconds: float, command: str) -> str:
    """Render the model card of a pretraining run.

    Args:
        name: str. The preset's name.
        config: dict. The run's `PretrainConfig.to_dict()`.
        data: list of str. What it was trained on, honestly described.
        metrics: dict. Evaluation name → result (`top1`, `top5`, `n`, `skipped`).
        parameters: int. Parameter count of encoder and head.
        train_seconds: float. Training wall time.
        command: str. The command that reproduces it.

    Example:
    >>> print(model_card(name="x", config={"name": "quick"}, data=["synthetic"], metrics={},
    ...                  parameters=10, train_seconds=1.0, command="make run")[:9])
    # Model c
    """
    lines = [
        f"# Model card: `{name}`",
        "",
        "A `SymbolClassifier` (a `SymbolEncoder` conv stack and a `ClassificationHead`) that",
        "recognises the 101 classes of CROHME's isolated handwritten-symbol task. Its encoder is",
        "meant to be moved into image-to-LaTeX models (`SymbolEncoder.from_preset`).",
        "",
        "## Training data",
        *[f"- {item}" for item in data],
        "",
        "## Recipe",
        f"- Configuration `{config.get('name')}`: {config.get('description', '')}",
        f"- Encoder filters {config.get('filters')}, normalization {config.get('normalization')}, "
        f"head pooling `{config.get('pooling')}`, hidden units {config.get('hidden_units')}.",
        f"- {config.get('optimizer')} lr {config.get('learning_rate')} ({config.get('schedule')}), "
        f"batch {config.get('batch_size')}, {config.get('epochs')} epochs × {config.get('steps_per_epoch')} steps, "
        f"label smoothing {config.get('label_smoothing')}, augmentation {config.get('augment') or 'none'}.",
        f"- {parameters:,} parameters; trained in {train_seconds / 60:.1f} min.",
        "",
        "## Evaluation",
        "| data | top-1 | top-5 | top-1, look-alike pairs merged | n | skipped |",
        "| --- | --- | --- | --- | --- | --- |",
        *[f"| {key} | {100 * m['top1']:.2f}% | {100 * m['top5']:.2f}% | "
          f"{'%.2f%%' % (100 * m['top1_merged']) if 'top1_merged' in m else 'n/a'} | {m['n']} | {m['skipped']} |"
          for key, m in metrics.items()],
        "",
        "Look-alike pairs: `c/C s/S v/V x/X o/0 p/P` have the same shape once a symbol is scaled",
        "to fit its image (as CROHME's renders are), so no image classifier can separate them",
        "without context; the merged column counts either member as right.",
        "",
        "## Intended use and limits",
        "- Input: grayscale `(H, W, 1)` float images, ink 1.0 on background 0.0, symbols rendered",
        "  from pen strokes scaled to fit the image (as `im2latex_encoder.data.render_strokes` does).",
        "- Trained on synthetic symbols drawn from fonts unless the data above says otherwise: real",
        "  handwriting is a shifted distribution, so expect lower accuracy on it (see the table).",
        "- Classes that CROHME itself cannot tell apart without context (`c`/`C`, `o`/`0`, `x`/`X`,",
        "  `1`/`|`, `COMMA`/`)`...) are confused most; a formula decoder resolves them from context.",
        "",
        "## Reproduce",
        f"```bash\n{command}\n```",
        "",
    ]
    return "\n".join(lines)
