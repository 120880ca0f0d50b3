"""`pretrain`: one resumable pretraining run that leaves a preset, plots and a model card."""

from __future__ import annotations

import json
import shlex
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from im2latex_encoder._atomic import atomic_write_text
from im2latex_encoder.symbols import CROHME_SYMBOLS
from im2latex_encoder.training.config import PretrainConfig
from im2latex_encoder.training.data_sources import (
    DataSpec,
    LabelledImages,
    load_labelled,
    parse_data_spec,
    split_crohme_folders,
)

RUN_RECORD = "run.json"
THRESHOLDS = (0.90, 0.95, 0.98)


def pretrain(
    config: PretrainConfig,
    out_dir,
    *,
    data: Sequence[str] = ("synthetic",),
    eval_data: Sequence[str] = (),
    strategy: str = "default",
    progress: bool = True,
    command: str | None = None,
    teachers: Sequence[str] = (),
    distillation_weight: float = 0.5,
    distillation_temperature: float = 1.0,
    initial_preset: str | None = None,
) -> dict:
    """Pretrain a `SymbolClassifier` and leave every artifact in `out_dir`.

    `out_dir` receives: `preset/` (the classifier, with metrics in its metadata), `history.csv`,
    `plots/` (learning curves, sample predictions, most-confused pairs), `tensorboard/`,
    `model_card.md`, `metrics.json`, and `checkpoint/` (the last completed epoch). Running the
    same call again after a crash, even `kill -9`, resumes from the last completed epoch and ends
    with the same artifacts as an uninterrupted run; a finished run is not retrained.

    Args:
        config: PretrainConfig. The recipe.
        out_dir: str or Path. The run directory.
        data: sequence of str. Training data: `"synthetic"`, `"crohme:DIR"` (train folders, with
            `val*`/`test*` sub-folders used for evaluation) or a prepared `.npz`; several mix,
            synthetic taking `config.synthetic_share` of each batch.
        eval_data: sequence of str. Extra evaluation sets (e.g. a real CROHME sample).
        strategy: str. `"default"`, `"mirrored"` or `"multiworker"` (`TF_CONFIG`).
        progress: bool. Progress bars.
        command: str or None. The command line to record in the model card.
        teachers: sequence of str. Trained presets to distil: the student also learns the
            average of their predictions on each training batch (`EnsembleDistiller`). They
            must draw the config's images (size, `context_scale`) and predict its classes, and
            the config may not use image-space `augment` (the teachers would see other images).
        distillation_weight: float in [0, 1]. With teachers: share of the loss on their
            predictions (the rest on the labels).
        distillation_temperature: float. With teachers: the softmax temperature of the match.
        initial_preset: str or None. Start from this `SymbolClassifier` preset's weights (same
            architecture as the config's) instead of random ones.

    Returns:
        The metrics dict (also in `metrics.json`).

    Example:
    >>> from im2latex_encoder.training import load_config
    >>> pretrain(load_config("quick"), "runs/quick")  # doctest: +SKIP
    """
    import keras

    from im2latex_encoder.training.distribute import is_chief, make_strategy

    distribution = make_strategy(strategy)  # must come before any other TensorFlow work
    chief = is_chief()
    out = Path(out_dir)
    specs = [parse_data_spec(item) for item in data]
    eval_specs = [parse_data_spec(item) for item in eval_data]
    if not specs:
        raise ValueError("`data` must name at least one source. Received: none")
    if (config.ink_augment is not None or config.validation_split > 0) and not any(
        spec.kind == "crohme" for spec in specs
    ):
        raise ValueError(
            f"The {config.name!r} config trains on real handwriting (ink_augment / validation_split) "
            "and needs a CROHME folder: add --data crohme:DIR (e.g. crohme:../shared/data/crohme/train). "
            f"Received: --data {' '.join(str(s) for s in specs)}"
        )
    if teachers and config.augment:
        # Image-space augmentation runs inside the student: teachers would see other images.
        raise ValueError(
            f"Distillation needs the images the student sees: the {config.name!r} config's image "
            f"augmentation (augment={config.augment}) runs inside the student. Use ink_augment "
            "instead, or train without --teacher."
        )
    # Teachers and the starting preset are checked before the run directory is claimed, so a
    # wrong one leaves nothing behind that would refuse the corrected command.
    teacher_models: Sequence = ()
    if teachers:
        from im2latex_encoder.training.distillation import check_distillation, load_teachers

        check_distillation(distillation_weight, distillation_temperature)
        with distribution.scope():  # under a strategy, the teachers' variables are mirrored too
            teacher_models = load_teachers(
                teachers,
                labels=CROHME_SYMBOLS,
                image_size=config.image_size,
                context_scale=config.context_scale,
            )
    start_weights = (
        _initial_weights(config, CROHME_SYMBOLS, initial_preset)
        if initial_preset is not None
        else None
    )
    record: dict = {"config": config.to_dict(), "data": [str(s) for s in specs]}
    if teachers:
        record["distillation"] = {
            "teachers": [str(t) for t in teachers],
            "weight": distillation_weight,
            "temperature": distillation_temperature,
        }
    if initial_preset is not None:
        record["initial_preset"] = str(initial_preset)
    _claim_run_dir(out, record, chief)

    keras.utils.set_random_seed(config.seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(_policy(config.mixed_precision))
    try:
        labels = CROHME_SYMBOLS
        size = config.image_size
        source, extra_evals, data_notes, validation, layouts = training_source(
            specs, config, labels, progress
        )
        if validation is None or any(spec.kind == "synthetic" for spec in specs):
            synthetic_validation = load_labelled(
                DataSpec("synthetic"),
                labels=labels,
                image_size=size,
                split="validation",
                per_class=config.validation_per_class,
                seed=config.seed + 1,
                synthetic_options=config.synthetic,
                progress=progress,
            )
            synthetic_validation.name = "synthetic_validation"
            if validation is None:
                validation = synthetic_validation
            else:
                extra_evals.insert(0, synthetic_validation)
        for spec in eval_specs:
            evaluation = load_labelled(
                spec,
                labels=labels,
                image_size=size,
                progress=progress,
                context_scale=config.context_scale,
            )
            received = tuple(int(n) for n in evaluation.images.shape[1:3])
            if len(evaluation.images) and received != (size, size):
                # A prepared .npz keeps the size it was drawn at; the model takes `size` only.
                raise ValueError(
                    f"--eval {spec}: expected {size}×{size} images, the {config.name!r} "
                    f"config's image_size. Received: {received[0]}×{received[1]} images. "
                    f"Prepare the data again with `im2latex-encoder prepare ... --image-size {size}`."
                )
            extra_evals.append(evaluation)

        if teachers:
            data_notes.append(
                f"Distilled: the loss puts {distillation_weight:g} on matching the averaged "
                f"predictions (temperature {distillation_temperature:g}) of {len(teachers)} "
                f"trained presets on the same augmented images ({', '.join(map(str, teachers))}), "
                f"{1 - distillation_weight:g} on the labels."
            )
        if initial_preset is not None:
            data_notes.append(f"Started from the weights of the preset {initial_preset}.")
        with distribution.scope():
            trainer, classifier = build_trainer(
                config,
                labels,
                teachers=teacher_models,
                distillation_weight=distillation_weight,
                distillation_temperature=distillation_temperature,
            )
            if start_weights is not None:
                classifier.set_weights(start_weights)
            if strategy != "default":
                _build_without_consuming_data(
                    trainer, size, len(labels), multiworker=strategy == "multiworker"
                )
        from im2latex_encoder.data.pipeline import make_dataset
        from im2latex_encoder.training.checkpoint import RunCheckpoint

        checkpoint = RunCheckpoint(out / "checkpoint", history_csv=out / "history.csv", write=chief)
        initial_epoch = checkpoint.restore(trainer)
        if initial_epoch:
            print(f"Resuming {out} after epoch {initial_epoch} of {config.epochs}.", flush=True)
        if initial_epoch < config.epochs:
            steps = config.steps_per_epoch
            dataset = make_dataset(
                source,
                initial_epoch * steps,
                (config.epochs - initial_epoch) * steps,
                (size, size),
                one_hot=len(labels),
            )
            val_x = validation.images.astype(np.float32)[..., None] / 255.0
            val_y = keras.utils.to_categorical(validation.labels, len(labels))
            callbacks = [checkpoint]
            if chief:
                callbacks.append(keras.callbacks.TensorBoard(str(out / "tensorboard")))
            trainer.fit(
                dataset,
                epochs=config.epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=steps,
                validation_data=(val_x, val_y),
                callbacks=callbacks,
                # 256 at 64×64, fewer for larger images: activations dominate peak memory.
                validation_batch_size=max(32, 256 * 64 * 64 // (size * size)),
                shuffle=False,
                verbose=1 if progress and sys.stdout.isatty() else 2,
            )
        elif config.ema_momentum:
            # `fit` swaps the averaged weights in when it ends; a run killed after its last
            # checkpoint but before the preset was written resumes here with the raw ones.
            trainer.optimizer.finalize_variable_values(trainer.trainable_weights)
        if not chief:
            return {}
        return _finalize(
            out,
            config,
            classifier,
            checkpoint.history,
            validation,
            extra_evals,
            [str(s) for s in specs],
            data_notes,
            command,
            layouts,
        )
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def held_out_seed(config: PretrainConfig) -> int:
    """The seed that picks the held-out slice: `split_seed`, else the training `seed`."""
    return config.seed if config.split_seed is None else config.split_seed


def hold_out(ink, spec, folders, config: PretrainConfig) -> tuple:
    """``(kept, held_out, note)``: `config.validation_split` of the expressions or writers."""
    split_seed = held_out_seed(config)
    share = config.validation_split
    if config.validation_by == "expression":
        kept, held = ink.split_by_group(share, seed=split_seed)
        return (
            kept,
            held,
            f"{spec}: {len(held)} symbols of {len(set(held.groups.tolist()))} expressions held "
            f"out for validation ({share:.0%} of the expressions, split by a hash of the file "
            f"name and split seed {split_seed}); never trained on.",
        )
    from im2latex_encoder.training.data_sources import crohme_writers, spec_path

    writers = crohme_writers(folders or [spec_path(spec)], ink.group_names)
    named = sorted({w for w in writers if w is not None})
    if not named:
        raise ValueError(
            f"validation_by='writer' needs CROHME files that name their writer (<annotation "
            f'type="writer">). Received: none of the {len(writers)} files of {spec} does; use '
            "validation_by='expression'"
        )
    kept, held = ink.split_by_group(share, seed=split_seed, keys=writers)
    per_writer = Counter(writers[g] for g in held.groups.tolist())
    held_writers = set(per_writer)
    anonymous = sum(w is None for w in writers)
    if not held_writers:
        raise ValueError(
            f"validation_split={share} holds out none of the {len(named)} writers of {spec}: "
            "expected at least one. Use a larger validation_split or another split_seed"
        )
    return (
        kept,
        held,
        f"{spec}: {len(held)} symbols of {len(set(held.groups.tolist()))} expressions by "
        f"{len(held_writers)} of {len(named)} writers held out for validation (every expression "
        f"of {share:.0%} of the writers, by a hash of the writer annotation and split seed "
        f"{split_seed}; the {anonymous} files without one always train); never trained on. "
        + _writer_weights(sorted(per_writer.values(), reverse=True)),
    )


def _writer_weights(sizes: list[int]) -> str:
    """How evenly the held-out writers weigh: a few large ones make a slice's figure noisy."""
    largest = min(3, len(sizes))
    return (
        f"Its writers hold {sizes[-1]} to {sizes[0]} symbols each; the largest {largest}, "
        f"{sum(sizes[:largest]) / sum(sizes):.0%} of them."
    )


def _build_without_consuming_data(
    trainer, size: int, num_classes: int, *, multiworker: bool
) -> None:
    """Work around Keras 3.15's symbolic build under tf.distribute strategies.

    Under a strategy, `fit` first takes one batch off the iterator and reduces the whole
    `(images, labels)` structure of per-replica values in one call, which
    `MultiWorkerMirroredStrategy` refuses ("Attempt to convert a value (PerReplica...)"), and
    which would also drop that batch from training. The build only needs shapes, so build from
    an example of the right shapes instead. Its `"auto"` reduction of the logged metrics also
    fails under multi-worker collectives (it reduces scalars along axis 0), so there the steps
    return each metric as a vector of one, which that reduction turns back into a scalar; gradients
    are all-reduced by the strategy as usual. A single-machine `MirroredStrategy` averages
    replicas element-wise and keeps scalars (the TensorBoard callback refuses vectors), so its
    steps are left alone.
    """
    import types

    import numpy as np
    from keras import ops

    example = (np.zeros((1, size, size, 1), np.float32), np.zeros((1, num_classes), np.float32))

    def build(self, iterator=None, data_batch=None):
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=example)

    trainer._maybe_symbolic_build = types.MethodType(build, trainer)
    if not multiworker:
        return
    for name in ("train_step", "test_step"):
        step = getattr(trainer, name)

        def as_vectors(self, data, step=step):
            return {key: ops.reshape(value, (1,)) for key, value in step(data).items()}

        setattr(trainer, name, types.MethodType(as_vectors, trainer))


def _initial_weights(config: PretrainConfig, labels: Sequence[str], preset: str) -> list:
    """The weights of `preset`, checked against the classifier `config` builds."""
    from im2latex_encoder import SymbolClassifier

    start = SymbolClassifier.from_preset(preset)
    classifier = build_classifier(config, labels)
    classifier(np.zeros((1, config.image_size, config.image_size, 1), np.float32))
    ours = [tuple(w.shape) for w in classifier.weights]
    theirs = [tuple(w.shape) for w in start.weights]
    if ours != theirs or list(start.labels) != list(classifier.labels):
        raise ValueError(
            f"--initial-preset {preset}: expected a classifier with the config's architecture and "
            f"classes (weights {ours[:4]}..., {len(classifier.labels)} classes). Received: weights "
            f"{theirs[:4]}..., {len(start.labels)} classes."
        )
    return start.get_weights()


def build_classifier(config: PretrainConfig, labels: Sequence[str] = CROHME_SYMBOLS):
    """The `SymbolClassifier` a config describes (untrained).

    Example:
    >>> from im2latex_encoder.training import load_config
    >>> build_classifier(load_config("seed")).head.hidden_units
    25
    """
    from im2latex_encoder import ClassificationHead, SymbolClassifier, SymbolEncoder

    encoder = SymbolEncoder(
        filters=config.filters, normalization=config.normalization, padding=config.padding
    )
    head = ClassificationHead(
        len(labels),
        pooling=config.pooling,
        hidden_units=config.hidden_units,
        dropout=config.dropout,
    )
    # The size is recorded even for size-agnostic heads: evaluate and predict render at it.
    return SymbolClassifier(
        encoder,
        head,
        labels=labels,
        image_size=(config.image_size, config.image_size),
        context_scale=config.context_scale,
    )


def build_optimizer(config: PretrainConfig):
    """The optimizer and learning-rate schedule a config describes.

    Example:
    >>> from im2latex_encoder.training import load_config
    >>> type(build_optimizer(load_config("quick"))).__name__
    'AdamW'
    """
    import keras

    rate = config.learning_rate
    if config.schedule == "cosine":
        warmup = int(config.warmup_fraction * config.total_steps)
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else config.learning_rate,
            decay_steps=max(config.total_steps - warmup, 1),
            alpha=0.0,
            warmup_target=config.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    ema = {"use_ema": True, "ema_momentum": config.ema_momentum} if config.ema_momentum else {}
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=config.weight_decay, **ema)
    return keras.optimizers.Adam(rate, **ema)


def build_trainer(
    config: PretrainConfig,
    labels: Sequence[str] = CROHME_SYMBOLS,
    *,
    policy: str | None = None,
    teachers: Sequence = (),
    distillation_weight: float = 0.5,
    distillation_temperature: float = 1.0,
):
    """The compiled model `pretrain` trains for a config: input, augmentation, classifier.

    ``keras.Sequential([Input((S, S, 1)), augmentation_layers(...), classifier])`` compiled
    with `build_optimizer`'s optimizer, `CategoricalCrossentropy` (the config's label
    smoothing) and the ``accuracy`` and ``top5`` metrics. `pretrain` builds its model with
    this; the training benchmarks call it too, so they time the model a run trains. Build it
    inside a distribution strategy's scope to train under that strategy.

    Args:
        config: PretrainConfig. The recipe (image size, model, optimizer, augmentation).
        labels: sequence of str. The class names (default: the 101 CROHME symbols).
        policy: str or None. A Keras dtype policy (``"float32"``, ``"mixed_bfloat16"``) to
            build under, the global policy being restored afterwards; None uses the global one.
        teachers: sequence of keras.Model. Trained classifiers to distil: the Sequential is
            then wrapped in an `EnsembleDistiller`, which is what is compiled and returned.
        distillation_weight: float. With teachers: `EnsembleDistiller`'s weight.
        distillation_temperature: float. With teachers: `EnsembleDistiller`'s temperature.

    Returns:
        ``(trainer, classifier)``: the compiled `keras.Sequential` (or, with teachers, the
        `EnsembleDistiller` around it) and its `SymbolClassifier`
        (the trainer's last layer, sharing its weights).

    Example:
    >>> from im2latex_encoder.training import load_config
    >>> trainer, classifier = build_trainer(load_config("seed"))
    >>> trainer.layers[-1] is classifier, trainer.loss.name
    (True, 'categorical_crossentropy')
    """
    import keras

    from im2latex_encoder.data.pipeline import augmentation_layers

    previous = keras.mixed_precision.global_policy()
    if policy is not None:
        keras.mixed_precision.set_global_policy(policy)
    try:
        size = config.image_size
        classifier = build_classifier(config, labels)
        augmentation = augmentation_layers(**config.augment, seed=config.seed)
        # Keras cannot build an empty Sequential, so a recipe without augmentation (the
        # seed's) leaves the block out.
        trainer = keras.Sequential(
            [
                keras.Input((size, size, 1)),
                *([augmentation] if augmentation.layers else []),
                classifier,
            ],
            name="trainer",
        )
        if teachers:
            from im2latex_encoder.training.distillation import EnsembleDistiller

            trainer = EnsembleDistiller(
                trainer,
                teachers,
                weight=distillation_weight,
                temperature=distillation_temperature,
                name="distiller",
            )
        trainer.compile(
            optimizer=build_optimizer(config),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
            metrics=[
                keras.metrics.CategoricalAccuracy(name="accuracy"),
                keras.metrics.TopKCategoricalAccuracy(5, name="top5"),
            ],
        )
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return trainer, classifier


def _policy(mixed_precision: str) -> str:
    if mixed_precision == "bfloat16":
        return "mixed_bfloat16"
    if mixed_precision == "auto" and _cpu_has_bf16():
        import keras

        if keras.backend.backend() == "tensorflow":
            return "mixed_bfloat16"
    return "float32"


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def training_source(specs, config, labels, progress):
    """Batches for training, evaluation sets from CROHME validation folders, data notes, the
    validation set `fit` reports (held-out CROHME expressions, or None: synthetic), and the
    training ink whose expressions the classifier's `ExpressionContext` is counted on."""
    from im2latex_encoder.data.ink import InkAugment, InkBatches
    from im2latex_encoder.data.pipeline import ArrayBatches, MixedBatches, SyntheticBatches
    from im2latex_encoder.data.synthetic import SyntheticSymbols, synthetic_fonts

    arrays: list = []
    evals: list[LabelledImages] = []
    notes: list[str] = []
    held_out: list[LabelledImages] = []
    layouts: list = []  # training ink read with its layout, for the expression context
    has_synthetic = any(spec.kind == "synthetic" for spec in specs)
    for spec in specs:
        if spec.kind == "synthetic":
            from im2latex_encoder.data.synthetic import GENERATOR_VERSION

            options = SyntheticSymbols(
                "train", config.image_size, config.seed, **config.synthetic
            ).get_config()
            notes.append(
                "Synthetic symbols rendered by `im2latex_encoder.data.synthetic` (generator version "
                f"{GENERATOR_VERSION}, layout {options['layout']!r}, ink {options['ink']!r}, distortion "
                f"{options['distortion']}) from the fonts {list(synthetic_fonts('train'))}, fresh images "
                f"every step; validation on the held-out fonts {list(synthetic_fonts('validation'))}. "
                "No real handwriting."
            )
            continue
        folders = None
        if spec.kind == "crohme":
            folders, validation_folders = split_crohme_folders(spec.path)
            if validation_folders:
                evals.append(
                    load_labelled(
                        spec,
                        labels=labels,
                        image_size=config.image_size,
                        progress=progress,
                        folders=validation_folders,
                        context_scale=config.context_scale,
                    )
                )
                evals[-1].name = f"{spec} (validation folders)"
        if spec.kind == "crohme" and (
            config.ink_augment is not None or config.validation_split > 0
        ):
            from im2latex_encoder.training.data_sources import load_ink_labelled

            ink, skipped, report = load_ink_labelled(
                spec, labels=labels, progress=progress, folders=folders
            )
            if config.validation_split > 0:
                ink, validation_ink, note = hold_out(ink, spec, folders, config)
                by_writer = config.validation_by == "writer"
                held_out.append(
                    LabelledImages(
                        validation_ink.render(
                            config.image_size, context_scale=config.context_scale
                        ),
                        validation_ink.labels,
                        f"{spec} (held-out {'writers' if by_writer else 'expressions'})",
                        0,
                        {},
                        boxes=validation_ink.boxes,
                        groups=validation_ink.groups,
                    )
                )
                notes.append(note)
            layouts.append(ink)
            if config.ink_augment is not None:
                augment = InkAugment.from_dict(config.ink_augment)
                arrays.append(("ink", ink, augment))
                notes.append(
                    f"{spec}: {len(ink)} real handwritten symbols from {len(set(ink.groups.tolist()))} "
                    f"expressions (skipped {skipped}), kept as strokes and augmented before drawing "
                    f"({augment.to_dict()})."
                )
                continue
            loaded = LabelledImages(
                ink.render(config.image_size, context_scale=config.context_scale),
                ink.labels,
                str(spec),
                skipped,
                report,
            )
        else:
            loaded = load_labelled(
                spec,
                labels=labels,
                image_size=config.image_size,
                progress=progress,
                folders=folders,
                context_scale=config.context_scale,
            )
        if loaded.images.shape[1:] != (config.image_size, config.image_size):
            height, width = loaded.images.shape[1:]
            raise ValueError(
                f"{spec} has {height}×{width} images; the config trains on {config.image_size}×"
                f"{config.image_size}. Prepare it with --image-size {config.image_size}."
            )
        if len(loaded) == 0:
            raise ValueError(f"{spec}: no usable training samples (skipped {loaded.skipped}).")
        arrays.append(loaded)
        notes.append(f"{spec}: {len(loaded)} real samples (skipped {loaded.skipped}).")
    share = (
        config.synthetic_share if (has_synthetic and arrays) else (1.0 if has_synthetic else 0.0)
    )
    sources = []
    synthetic_batch = round(config.batch_size * share)
    if has_synthetic:
        sources.append(
            SyntheticBatches(
                SyntheticSymbols("train", config.image_size, config.seed, **config.synthetic),
                synthetic_batch,
                seed=config.seed,
            )
        )
    remaining = config.batch_size - synthetic_batch
    for index, loaded in enumerate(arrays):
        size = remaining // len(arrays) + (1 if index < remaining % len(arrays) else 0)
        if not size:
            continue
        if isinstance(loaded, tuple):
            _, ink, augment = loaded
            sources.append(
                InkBatches(
                    ink,
                    size,
                    config.image_size,
                    augment,
                    steps_per_epoch=config.steps_per_epoch,
                    seed=config.seed + index,
                    context_scale=config.context_scale,
                )
            )
        else:
            sources.append(
                ArrayBatches(
                    loaded.images,
                    loaded.labels,
                    size,
                    steps_per_epoch=config.steps_per_epoch,
                    seed=config.seed + index,
                )
            )
    validation = None
    if held_out:
        # Each source's expressions get their own group numbers.
        offsets = np.cumsum([0] + [int(h.groups.max(initial=-1)) + 1 for h in held_out])
        validation = LabelledImages(
            np.concatenate([h.images for h in held_out]),
            np.concatenate([h.labels for h in held_out]),
            "crohme_validation",
            0,
            {},
            boxes=np.concatenate([h.boxes for h in held_out]),
            groups=np.concatenate([h.groups + o for h, o in zip(held_out, offsets)]),
        )
    batches = sources[0] if len(sources) == 1 else MixedBatches(sources)
    return batches, evals, notes, validation, layouts


def _claim_run_dir(out: Path, record: dict, chief: bool) -> None:
    """Refuse to resume a run directory that holds a different run."""
    path = out / RUN_RECORD
    if path.is_file():
        existing = json.loads(path.read_text(encoding="utf-8"))
        try:
            # A record written before a config field existed holds that field's default.
            existing["config"] = PretrainConfig(**existing["config"]).to_dict()
        except (TypeError, ValueError):
            pass  # compared as written; the difference is reported below
        if existing != record:
            changed = sorted(
                k
                for k in set(existing["config"]) | set(record["config"])
                if existing["config"].get(k) != record["config"].get(k)
            )
            if existing.get("data") != record["data"]:
                changed.append("data")
            raise ValueError(
                f"{out} holds a run with different settings ({', '.join(changed)}). "
                "Use another --out, or delete that folder to start over."
            )
        return
    if chief:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True))


def _time_to(history: list[dict], threshold: float):
    elapsed = 0.0
    for row in history:
        elapsed += row.get("seconds", 0.0)
        if row.get("val_accuracy", 0.0) >= threshold:
            return {"epoch": row["epoch"], "seconds": round(elapsed, 1)}
    return None


def _finalize(
    out: Path,
    config,
    classifier,
    history,
    validation,
    extra_evals,
    data,
    data_notes,
    command,
    layouts=(),
):
    from im2latex_encoder.data.synthetic import FIT_AMBIGUOUS_PAIRS
    from im2latex_encoder.training.evaluation import evaluate_classifier, summarize
    from im2latex_encoder.training.model_card import model_card
    from im2latex_encoder.training.plots import plot_confusions, plot_history, plot_predictions

    classifier = _local_float32_copy(classifier)
    if layouts:
        from im2latex_encoder.context import ExpressionContext

        counts = np.sum([ExpressionContext.fit(ink).transitions for ink in layouts], axis=0)
        classifier.context = ExpressionContext(classifier.labels, counts)
        data_notes = [
            *data_notes,
            "Expression context (`classifier.context`, context.json): which symbol follows "
            f"which, and where, counted over the {sum(len(ink) for ink in layouts)} training "
            "symbols in reading order.",
        ]
    results = {}
    for item in [validation, *extra_evals]:
        results[item.name] = evaluate_classifier(
            classifier,
            item.images,
            item.labels,
            skipped=item.skipped,
            equivalent_pairs=FIT_AMBIGUOUS_PAIRS,
            boxes=item.boxes,
            groups=item.groups,
        )
    metrics = {
        name: {k: r[k] for k in ("top1", "top5", "top1_merged", "n", "skipped") if k in r}
        for name, r in results.items()
    }
    for name, result in results.items():
        if "in_context" in result:
            metrics[name]["in_context"] = {
                k: result["in_context"][k] for k in ("top1", "top5", "top1_merged")
            }
    for name, result in results.items():
        print(summarize(result, name), flush=True)
        if "in_context" in result:
            shown = summarize(result["in_context"], f"{name}, each symbol with its neighbours")
            print(shown, flush=True)
    train_seconds = sum(row.get("seconds", 0.0) for row in history)
    summary = {
        "metrics": metrics,
        "train_seconds": round(train_seconds, 1),
        "epochs": len(history),
        "time_to_accuracy": {f"{t:.2f}": _time_to(history, t) for t in THRESHOLDS},
        "per_class": {name: r["per_class"] for name, r in results.items()},
        "confused_pairs": {name: r["confused_pairs"] for name, r in results.items()},
    }
    plots = out / "plots"
    plot_history(history, plots / "history.png")
    picks = np.random.default_rng(config.seed).choice(
        len(validation.labels), size=min(24, len(validation.labels)), replace=False
    )
    main = results[validation.name]
    names = classifier.labels
    plot_predictions(
        validation.images[picks],
        [names[i] for i in validation.labels[picks]],
        [names[main["predictions"][i]] for i in picks],
        [main["confidences"][i] for i in picks],
        plots / "predictions.png",
    )
    plot_confusions(
        main["confused_pairs"],
        plots / "confusions.png",
        title=(
            "Most-confused pairs, held-out-font synthetic validation"
            if validation.name == "synthetic_validation"
            else "Most-confused pairs, held-out CROHME expressions"
        ),
    )
    for index, item in enumerate(extra_evals):
        result = results[item.name]
        count = min(24, len(item.labels))
        plot_predictions(
            item.images[:count],
            [names[i] for i in item.labels[:count]],
            [names[p] for p in result["predictions"][:count]],
            result["confidences"][:count],
            plots / f"predictions-eval{index + 1}.png",
        )
        plot_confusions(
            result["confused_pairs"],
            plots / f"confusions-eval{index + 1}.png",
            title=f"Most-confused pairs, {item.name}",
        )
    command = command or "im2latex-encoder pretrain " + shlex.join(sys.argv[1:])
    real_data = any(item.startswith("crohme:") for item in data)
    details = {name: r for name, r in results.items() if name != "synthetic_validation"}
    card = model_card(
        name=out.name,
        config=config.to_dict(),
        data=data_notes,
        metrics=metrics,
        parameters=classifier.count_params(),
        train_seconds=train_seconds,
        command=command,
        details=details,
        real_data=real_data,
    )
    atomic_write_text(out / "model_card.md", card)
    classifier.save_to_preset(
        out / "preset",
        metadata={
            "training": {
                "config": config.to_dict(),
                "data": data,
                "data_notes": data_notes,
                "train_seconds": round(train_seconds, 1),
                "epochs": len(history),
                "command": command,
            },
            "metrics": metrics,
        },
        extra_files={"model_card.md": card},
    )
    atomic_write_text(out / "metrics.json", json.dumps(summary, indent=2))
    print(
        f"Preset: {out / 'preset'}\nPlots: {plots}\nModel card: {out / 'model_card.md'}", flush=True
    )
    return summary


def _local_float32_copy(classifier):
    """A copy outside any distribution strategy, with float32 weights and policy.

    Evaluating the trained classifier itself would run collectives under a multi-worker
    strategy after the other workers have left, and would keep a mixed-precision policy in the
    shipped preset.
    """
    import keras

    config = json.dumps(keras.saving.serialize_keras_object(classifier)).replace(
        '"mixed_bfloat16"', '"float32"'
    )
    copy = keras.saving.deserialize_keras_object(json.loads(config))
    copy.set_weights([np.asarray(w, np.float32) for w in classifier.get_weights()])
    return copy
