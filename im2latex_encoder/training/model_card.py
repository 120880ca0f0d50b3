"""A short Markdown model card for a pretrained preset."""

from __future__ import annotations

#: What a model trained on CROHME ink must say about its data's terms.
CROHME_LICENCE = (
    "Trained on CROHME data (the CROHME 2014/2016 training expressions, real handwriting), which "
    "is distributed for non-commercial research use only; these weights inherit that "
    "restriction. The CROHME 2016 test expressions were used for evaluation only, never for "
    "training or for choices (those were made on held-out training expressions)."
)


#: What a card says about a real-ink model refit on every training expression.
REFIT_NOTE = (
    "No training expressions were held out (`validation_split` 0), as when a recipe already "
    "chosen on held-out expressions is refit on all of them (`crohme101` is; "
    "`pretrain/RECORD.md`). `synthetic_validation` scores synthetic renders, a check that "
    "training ran, not a measure on ink."
)

#: What a card says about a model trained with `context_scale`.
CONTEXT_SCALE_NOTE = (
    "- Symbols drawn at their size in their expression (`context_scale`): a symbol smaller than "
    "its expression's typical symbol is drawn that much smaller instead of filling the image, "
    "so draw inputs the same way (`InkDataset.render(context_scale=...)` with the preset's value; `evaluate` does)."
)
#: Added when `context_scale` is a share of the image rather than True.
CONTEXT_SHARE_NOTE = (
    "- The expression's typical symbol fills {share} of the image (`context_scale={share}`), so "
    "a symbol larger than typical is drawn larger too (an `X` larger than an `x`)."
)


CONTEXT_NOTE = (
    'Rows "with neighbours" read each symbol with the others of its expression: the\n'
    "preset's `context.json` (`classifier.context`, an `ExpressionContext`) counts which symbol\n"
    "follows which in the training expressions, and where it sits, and `decode` combines those\n"
    "counts with the classifier's probabilities. The other rows read each image alone, as\n"
    "CROHME's isolated-symbol task does."
)


def model_card(
    *,
    name: str,
    config: dict,
    data: list[str],
    metrics: dict,
    parameters: int,
    train_seconds: float,
    command: str,
    details: dict | None = None,
    real_data: bool = False,
) -> str:
    """Render the model card of a pretraining run.

    Args:
        name: str. The preset's name.
        config: dict. The run's `PretrainConfig.to_dict()`.
        data: list of str. What it was trained on, honestly described.
        metrics: dict. Evaluation name → result (`top1`, `top5`, `n`, `skipped`).
        parameters: int. Parameter count of encoder and head.
        train_seconds: float. Training wall time.
        command: str. The command that reproduces it.
        details: dict or None. Evaluation name → `evaluate_classifier` result, for the
            evaluations whose per-class accuracy and most-confused pairs the card lists.
        real_data: bool. Trained on CROHME ink: the card carries `CROHME_LICENCE`.

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
        *(["", "**Licence of the data.** " + CROHME_LICENCE] if real_data else []),
        "",
        "## Recipe",
        f"- Configuration `{config.get('name')}`: {config.get('description', '')}",
        f"- Encoder filters {config.get('filters')}, normalization {config.get('normalization')}, "
        f"head pooling `{config.get('pooling')}`, hidden units {config.get('hidden_units')}.",
        f"- {config.get('optimizer')} lr {config.get('learning_rate')} ({config.get('schedule')}), "
        f"batch {config.get('batch_size')}, {config.get('epochs')} epochs × {config.get('steps_per_epoch')} steps, "
        f"label smoothing {config.get('label_smoothing')}, augmentation "
        f"{config.get('augment') or config.get('ink_augment') or 'none'}"
        f"{' (on the ink, before drawing)' if config.get('ink_augment') else ''}.",
        *([CONTEXT_SCALE_NOTE] if config.get("context_scale") else []),
        *(
            [CONTEXT_SHARE_NOTE.format(share=config["context_scale"])]
            if not isinstance(config.get("context_scale"), bool) and config.get("context_scale")
            else []
        ),
        f"- {parameters:,} parameters; trained in {train_seconds / 60:.1f} min.",
        "",
        "## Evaluation",
        "| data | top-1 | top-5 | top-1, look-alike pairs merged | n | skipped |",
        "| --- | --- | --- | --- | --- | --- |",
        *[
            f"| {key}{label} | {100 * m['top1']:.2f}% | {100 * m['top5']:.2f}% | "
            f"{'%.2f%%' % (100 * m['top1_merged']) if 'top1_merged' in m else 'n/a'} | {n} | {skipped} |"
            for key, whole in metrics.items()
            for label, m, n, skipped in [
                ("", whole, whole["n"], whole["skipped"]),
                *(
                    [(", with neighbours", whole["in_context"], whole["n"], whole["skipped"])]
                    if "in_context" in whole
                    else []
                ),
            ]
        ],
        "",
        *([CONTEXT_NOTE, ""] if any("in_context" in m for m in metrics.values()) else []),
        *(
            [REFIT_NOTE, ""]
            if real_data
            and "synthetic_validation" in metrics
            and not config.get("validation_split")
            else []
        ),
        "Look-alike pairs: `c/C s/S v/V x/X o/0 p/P` have the same shape once a symbol is scaled",
        "to fit its image (as CROHME's renders are), so no image classifier can separate them",
        "without context; the merged column counts either member as right.",
        "",
        *_details(details or {}),
        "## Intended use and limits",
        "- Input: grayscale `(H, W, 1)` float images, ink 1.0 on background 0.0, symbols rendered",
        *(
            [
                "  from pen strokes at their size in their expression, as it was trained (Recipe,",
                "  above: `InkDataset.render(context_scale=...)`); a symbol scaled to fit the image",
                "  loses the size cue that tells `x` from `X` and `COMMA` from `1`.",
            ]
            if config.get("context_scale")
            else [
                "  from pen strokes scaled to fit the image (as "
                "`im2latex_encoder.data.render_strokes` does).",
            ]
        ),
        *(
            [
                "- Trained on real handwriting (above): other pens, scanners or writing styles are a",
                "  shifted distribution; measure on your own data before relying on the figures.",
            ]
            if real_data
            else [
                "- Trained on synthetic symbols drawn from fonts: real handwriting is a shifted",
                "  distribution, so expect lower accuracy on it (see the table).",
            ]
        ),
        "- Classes that CROHME itself cannot tell apart without context (`c`/`C`, `o`/`0`, `x`/`X`,",
        (
            "  `1`/`|`, `COMMA`/`)`...) are confused most when read alone; the expression context "
            'settles many of them (the rows "with neighbours"), a formula decoder more.'
            if any("in_context" in m for m in metrics.values())
            else "  `1`/`|`, `COMMA`/`)`...) are confused most; a formula decoder resolves them "
            "from context."
        ),
        "",
        "## Reproduce",
        f"```bash\n{command}\n```",
        "",
    ]
    return "\n".join(lines)


def _details(details: dict) -> list[str]:
    """Per-class accuracy (worst first) and the most-confused pairs of each detailed evaluation."""
    lines = []
    for key, result in details.items():
        per_class = sorted(result["per_class"].items(), key=lambda item: (item[1]["top1"], item[0]))
        lines += [
            f"### Per class: {key}",
            "",
            "Every class with its accuracy and count, worst first:",
            "",
            " ".join(
                f"`{label}` {100 * v['top1']:.0f}% ({v['n']})"
                + ("," if i < len(per_class) - 1 else "")
                for i, (label, v) in enumerate(per_class)
            ),
            "",
            f"### Most-confused pairs: {key}",
            "",
            "| true | predicted | count |",
            "| --- | --- | --- |",
            *[f"| {_cell(t)} | {_cell(p)} | {c} |" for t, p, c in result["confused_pairs"][:15]],
            "",
        ]
    return lines


def _cell(label: str) -> str:
    """A label as a Markdown table cell: code, with a `|` escaped so it does not split the row."""
    return "`" + label.replace("|", "\\|") + "`"
