"""Train a `FormulaRecognizer` on handwritten CROHME expressions: resumable, scored, saved.

The run folder holds ``checkpoint/``, ``history.csv``, ``curves.png``, ``metrics.json``,
``model_card.md`` and the trained ``recognizer/`` preset (`FormulaRecognizer.save_to_preset`,
its vocabulary and drawing settings included).

Example:
>>> result = train_handwritten("../shared/data/crohme/train", "runs/formulas",
...                            captions="../shared/data/crohme/train_caption.txt",
...                            eval_folders=["../shared/data/crohme/test2016"])  # doctest: +SKIP
>>> result["metrics"]["test2016"]["greedy"]["exprate"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from im2latex_encoder._deprecation import renamed_arguments
from im2latex_encoder.formulas.handwritten import (
    ExpressionAugment,
    read_crohme_expressions,
)
from im2latex_encoder.formulas.tokenizer import Vocabulary
from im2latex_encoder.recognizer.batches import ExpressionBatches
from im2latex_encoder.recognizer.evaluation import evaluate_expressions
from im2latex_encoder.recognizer.preprocessor import DrawSettings
from im2latex_encoder.recognizer.vocabulary import crohme_vocabulary, expression_targets

#: Stroke augmentation used by `train_handwritten` unless told otherwise.
DEFAULT_AUGMENT = {
    "rotation": 3.0,
    "slant": 0.15,
    "aspect": 0.1,
    "scale": 0.1,
    "stroke_shift": 0.03,
    "line_width": [1.5, 3.0],
}


def held_out_mask(keys: Sequence[str], fraction: float, seed: int) -> np.ndarray:
    """Held-out mask: a key is held when its hash falls under `fraction`; equal keys go together.

    With at least two distinct keys, both sides get one: if no key falls under `fraction`
    the one with the smallest hash is held, and if all do, the largest is trained on.
    """
    from im2latex_encoder.data.ink import unit_hash

    hashes = {key: unit_hash(f"{seed}:{key}") for key in keys}
    held = {key: value < fraction for key, value in hashes.items()}
    if len(hashes) >= 2 and len(set(held.values())) == 1:
        pick = (min if not any(held.values()) else max)(hashes, key=hashes.__getitem__)
        held[pick] = not held[pick]
    return np.array([held[key] for key in keys], bool)


@renamed_arguments(train_dir="folders", eval_dirs="eval_folders")
def train_handwritten(
    folders,
    out,
    *,
    captions=None,
    dictionary=None,
    preset: str | None = "crohme101",
    freeze_encoder: bool = False,
    epochs: int = 20,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    hidden_dim: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_dim: int = 256,
    dropout: float = 0.1,
    max_length: int = 100,
    symbol_size: float | None = None,
    validation_split: float = 0.05,
    augment: dict | None = None,
    eval_folders: Sequence = (),
    beam: int | None = None,
    seed: int = 0,
    strategy: str = "default",
    max_train: int | None = None,
    progress: bool = True,
    command: str = "",
) -> dict:
    """Train a `FormulaRecognizer` on CROHME expressions; resumable; scores every eval folder.

    Every epoch is checkpointed atomically (`RunCheckpoint`); run the same call again after
    an interruption (even ``kill -9``) and it resumes after the last finished epoch. Choices
    are made on `validation_split` of the training expressions, split by formula (a hash of
    the target tokens: every writer's copy of a formula lands on the same side); folders in
    `eval_folders` are only scored, at the end.

    Args:
        folders: CROHME folder(s) of training expressions (``train_dir=`` is its deprecated
            spelling, removed in 0.3.0).
        out: run folder (``checkpoint/``, ``history.csv``, ``curves.png``, ``metrics.json``,
            ``recognizer/``).
        captions: caption file (stem → tokens) for the training targets, or None to use
            each file's normalised ``truth``.
        dictionary: CROHME ``dictionary.txt`` for the vocabulary, or None for the tokens of
            the training targets.
        preset: symbol encoder preset for the encoder's weights, or None (random, "scratch").
        freeze_encoder: bool. Keep the pretrained conv stages fixed.
        epochs, batch_size, learning_rate: training.
        hidden_dim, num_layers, num_heads, intermediate_dim, dropout, max_length: the model.
        symbol_size: float or None. Pixels of a typical symbol; None: the size the preset's
            symbols were drawn at (`DrawSettings.for_image_size`), 36.4 without a preset.
        validation_split: float in (0, 1).
        augment: dict of `ExpressionAugment` fields, or None for `DEFAULT_AUGMENT`.
        eval_folders: CROHME folders to score at the end (targets: normalised truths);
            ``eval_dirs=`` is its deprecated spelling (removed in 0.3.0).
        beam: int or None. Also score with beam search of this width.
        seed: int.
        strategy: `"default"` or `"mirrored"` (tf.distribute, as `pretrain --strategy`).
        max_train: int or None. Use only this many training expressions (smoke runs).
        progress: bool. Progress bars.
        command: str. The command line, recorded in the model card.

    Returns:
        dict with `metrics` (per folder: greedy, and beam when asked) and `history`.

    Example:
    >>> train_handwritten("crohme/train", "runs/f", epochs=1)  # doctest: +SKIP
    """
    from im2latex_encoder import SymbolEncoder
    from im2latex_encoder.formulas.crohme_truth import read_crohme_captions
    from im2latex_encoder.recognizer.formula_recognizer import FormulaRecognizer
    from im2latex_encoder.recognizer.training import compile_recognizer
    from im2latex_encoder.training.checkpoint import RunCheckpoint
    from im2latex_encoder.training.data_sources import cache_path
    from im2latex_encoder.training.distribute import make_strategy

    if not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must lie in (0, 1). Received: {validation_split!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sources = [
        os.fspath(d) for d in ([folders] if isinstance(folders, (str, os.PathLike)) else folders)
    ]
    expressions = read_crohme_expressions(
        sources, progress=progress, cache=cache_path("crohme-expressions", sources, ".npz")
    )
    caption_map = read_crohme_captions(captions) if captions else None
    targets, skipped = expression_targets(expressions, caption_map)
    vocabulary = (
        crohme_vocabulary(dictionary)
        if dictionary
        else Vocabulary(sorted({t for target in targets if target for t in target}))
    )
    usable = [
        i
        for i, t in enumerate(targets)
        if t is not None
        and len(t) + 2 <= max_length + 1
        and all(token in vocabulary for token in t)
    ]
    for i, t in enumerate(targets):
        if t is not None and i not in set(usable):
            skipped[expressions.names[i]] = (
                "longer than max_length"
                if len(t) + 2 > max_length + 1
                else "tokens outside the vocabulary"
            )
    if max_train:
        usable = usable[:max_train]
    # Split by formula, not by file: half of CROHME's training expressions share their formula
    # with another writer's, and a held-out copy of a trained formula measures memory.
    held = held_out_mask([" ".join(targets[i]) for i in usable], validation_split, seed)
    train_index = [i for i, h in zip(usable, held) if not h]
    validation_index = [i for i, h in zip(usable, held) if h]
    if not train_index or not validation_index:
        raise ValueError(
            f"Need training and validation expressions. Received: {len(train_index)} "
            f"and {len(validation_index)} (of {len(expressions)} read, {len(skipped)} skipped)"
        )

    settings = DrawSettings() if symbol_size is None else DrawSettings(float(symbol_size))
    if symbol_size is None and preset:
        from im2latex_encoder import SymbolClassifier

        try:
            size = SymbolClassifier.from_preset(preset).image_size
            settings = DrawSettings.for_image_size(size[0]) if size else settings
        except Exception:  # noqa: BLE001 - an encoder-only preset has no image size
            pass
    augment_fields = dict(DEFAULT_AUGMENT if augment is None else augment)
    if "line_width" in augment_fields:
        augment_fields["line_width"] = tuple(augment_fields["line_width"])
    augmentation = ExpressionAugment(**augment_fields)
    ids = {i: vocabulary.encode(target) for i, target in enumerate(targets) if target is not None}
    train_data = expressions.subset(train_index)
    validation_data = expressions.subset(validation_index)
    train_batches = ExpressionBatches(
        train_data,
        [ids[i] for i in train_index],
        batch_size,
        settings,
        augment=augmentation,
        seed=seed,
    )
    validation_batches = ExpressionBatches(
        validation_data, [ids[i] for i in validation_index], batch_size, settings, shuffle=False
    )

    keras.utils.set_random_seed(seed)
    distribution = make_strategy(strategy)
    with distribution.scope():
        if preset:
            model = FormulaRecognizer.from_preset(
                preset,
                vocabulary_size=len(vocabulary),
                hidden_dim=hidden_dim,
                freeze_encoder=freeze_encoder,
                num_layers=num_layers,
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                max_length=max_length,
                dropout=dropout,
            )
        else:
            # The default neck: projection to hidden_dim, layer norm, positional encoding.
            model = FormulaRecognizer(
                SymbolEncoder(),
                len(vocabulary),
                hidden_dim=hidden_dim,
                num_layers=num_layers,
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                max_length=max_length,
                dropout=dropout,
            )
        compile_recognizer(model, learning_rate=learning_rate, jit_compile=False)
    record = {
        "train": sources,
        "preset": preset,
        "freeze_encoder": freeze_encoder,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "hidden_dim": hidden_dim,
        "num_layers": num_layers,
        "num_heads": num_heads,
        "intermediate_dim": intermediate_dim,
        "dropout": dropout,
        "max_length": max_length,
        "draw": settings.to_dict(),
        "augment": {k: list(v) if isinstance(v, tuple) else v for k, v in augment_fields.items()},
        "validation_split": validation_split,
        "validation_by": "formula",
        "seed": seed,
        "max_train": max_train,
        "captions": os.fspath(captions) if captions else None,
    }
    run_file = out / "run.json"
    if run_file.is_file():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        # `epochs` may grow (a constant learning rate: more epochs extend the same run).
        changed = sorted(
            k
            for k in set(previous) | set(record)
            if k != "epochs" and previous.get(k) != record.get(k)
        )
        if changed:
            raise ValueError(
                f"{out} holds a run with other settings ({changed}); resume it with the "
                "same arguments or choose another --out"
            )
    from im2latex_encoder._atomic import atomic_write_text

    atomic_write_text(run_file, json.dumps(record, indent=1))
    checkpoint = RunCheckpoint(out / "checkpoint", history_csv=out / "history.csv")
    # Build the model's variables before restoring (one small batch, not trained on).
    (images, prefix), _ = validation_batches[0]
    model((images[:1], prefix[:1]))
    initial_epoch = checkpoint.restore(model)
    train_batches.set_epoch(initial_epoch)
    started = time.perf_counter()
    if initial_epoch < epochs:
        model.fit(
            train_batches.as_tf_dataset(),
            validation_data=validation_batches.as_tf_dataset(),
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=[checkpoint],
            verbose=1 if progress else 2,
            shuffle=False,  # ExpressionBatches regroups every epoch itself (seeded, resumable)
        )
    training_seconds = time.perf_counter() - started
    history = checkpoint.history

    metrics = {
        "validation": _score(
            model,
            vocabulary,
            settings,
            validation_data,
            [targets[i] for i in validation_index],
            beam,
            progress,
        )
    }
    for folder in eval_folders:
        data = read_crohme_expressions(
            folder,
            progress=progress,
            cache=cache_path("crohme-expressions", [os.fspath(folder)], ".npz"),
        )
        folder_targets, folder_skipped = expression_targets(data)
        metrics[Path(folder).name] = _score(
            model,
            vocabulary,
            settings,
            data,
            folder_targets,
            beam,
            progress,
            extra_skipped=folder_skipped,
        )
    _write_outputs(
        out,
        model,
        vocabulary,
        settings,
        record,
        history,
        metrics,
        skipped,
        len(train_index),
        training_seconds,
        command,
    )
    return {"metrics": metrics, "history": history}


def _score(model, vocabulary, settings, data, targets, beam, progress, extra_skipped=None) -> dict:
    scores: dict = {
        "greedy": evaluate_expressions(
            model, vocabulary, settings, data, targets, progress=progress
        )
    }
    if beam and beam > 1:
        scores["beam"] = evaluate_expressions(
            model, vocabulary, settings, data, targets, beam=beam, progress=progress
        )
    if extra_skipped:
        scores["unreadable"] = len(extra_skipped)
    return scores


def _write_outputs(
    out: Path,
    model,
    vocabulary,
    settings,
    record,
    history,
    metrics,
    skipped,
    trained_on,
    training_seconds,
    command,
) -> None:
    from im2latex_encoder._atomic import atomic_write_text
    from im2latex_encoder.training.model_card import CROHME_LICENCE

    _plot_curves(history, out / "curves.png")
    summary = {
        name: {
            kind: {k: v for k, v in score.items() if k not in ("skipped_reasons", "examples")}
            for kind, score in scores.items()
            if isinstance(score, dict)
        }
        for name, scores in metrics.items()
    }
    atomic_write_text(
        out / "metrics.json",
        json.dumps(
            {
                "metrics": metrics,
                "training_seconds": training_seconds,
                "trained_on": trained_on,
                "skipped_training_expressions": skipped,
            },
            indent=1,
        ),
    )
    lines = [
        f"# Model card: handwritten formula recognizer ({out.name})",
        "",
        "Reads a handwritten expression (CROHME InkML drawn to an image, or an image) and writes "
        "its LaTeX tokens (CROHME's caption form).",
        "",
        "## Data",
        "",
        CROHME_LICENCE,
        "",
        f"- Training: {trained_on} expressions of {', '.join(record['train'])} "
        f"({len(skipped)} skipped: no caption, too long or unknown tokens); "
        f"{record['validation_split']:.0%} of the expressions held out for validation.",
        f"- Encoder: {'preset ' + repr(record['preset']) if record['preset'] else 'random (scratch)'}"
        f"{', frozen' if record['freeze_encoder'] else ''}; typical symbol drawn "
        f"{settings.symbol_size} px tall.",
        "",
        "## Results",
        "",
        "| data | decoding | ExpRate | ≤1 | ≤2 | token error rate | n | skipped |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, scores in summary.items():
        for kind, score in scores.items():
            lines.append(
                f"| {name} | {kind} | {100 * score['exprate']:.2f}% | {100 * score['exprate_1']:.2f}% | "
                f"{100 * score['exprate_2']:.2f}% | {100 * score['token_error_rate']:.2f}% | "
                f"{score['n']} | {score['skipped']} |"
            )
    lines += [
        "",
        "## Training",
        "",
        f"- {len(history)} epochs, {training_seconds:.0f} s in this process "
        "(an interrupted run's earlier epochs are in history.csv).",
        f"- Command: `{command or 'train_handwritten(...)'}`",
        f"- Settings: `{json.dumps(record)}`",
        "",
    ]
    card = "\n".join(lines)
    atomic_write_text(out / "model_card.md", card)
    # The vocabulary and drawing settings are the model's: saved in its preset with it.
    model.vocabulary, model.draw_settings = vocabulary, settings
    model.save_to_preset(
        os.fspath(out / "recognizer"),
        extra_files={"model_card.md": card, "metrics.json": json.dumps(summary, indent=1)},
        metadata={
            "metrics": summary,
            "training": {
                "command": command,
                "trained_on": trained_on,
                "seconds": training_seconds,
                "settings": record,
            },
        },
    )


def _plot_curves(history, path) -> None:
    if not history:
        return
    from im2latex_encoder.training.plots import plot_history

    plot_history(
        history,
        path,
        metric="token_accuracy",
        title="Token accuracy (teacher-forced)",
        validation_label="validation expressions",
    )
