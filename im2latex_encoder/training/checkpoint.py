"""`RunCheckpoint`: epoch checkpoints that survive `kill -9` at any moment."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import keras

from im2latex_encoder._atomic import atomic_path, atomic_write_text, remove_stale_temporaries

STATE_FILE = "state.json"


class RunCheckpoint(keras.callbacks.Callback):
    """Save the whole training state after every epoch, atomically, and restore it.

    The weights (model, optimizer, augmentation random state) go to a new
    `epoch-N.weights.h5`; then `state.json`, which names that file and holds the history so
    far, is replaced in one rename: that rename is the commit point. A kill before it leaves
    the previous epoch's state; a kill after it, the new one. Keras' `BackupAndRestore` writes
    the weights and the epoch number as two separate, non-atomic writes, so a kill between them
    resumes from a mismatched state: hence this callback.

    Args:
        directory: str or Path. Where the checkpoint lives (e.g. `RUN_DIR/checkpoint`).
        history_csv: str, Path or None. Also rewrite this CSV of the history every epoch.
        write: bool. False on non-chief workers of a multi-worker run: they only restore.

    Example:
    >>> checkpoint = RunCheckpoint("/tmp/run/checkpoint")  # doctest: +SKIP
    >>> initial_epoch = checkpoint.restore(model)  # doctest: +SKIP
    >>> model.fit(data, initial_epoch=initial_epoch, callbacks=[checkpoint])  # doctest: +SKIP
    """

    def __init__(self, directory, history_csv=None, write: bool = True):
        super().__init__()
        self.directory = Path(directory)
        self.history_csv = Path(history_csv) if history_csv else None
        self.write = write
        self.history: list[dict] = []
        self._epoch_started = 0.0

    def read_state(self) -> dict | None:
        """The committed state (`epoch`, `weights`, `history`), or None before the first epoch."""
        path = self.directory / STATE_FILE
        if not path.is_file():
            return None
        state = json.loads(path.read_text(encoding="utf-8"))
        if not (self.directory / state["weights"]).is_file():
            raise FileNotFoundError(
                f"{path} names {state['weights']}, which is missing: the checkpoint folder was "
                "modified by hand. Delete the folder to start over."
            )
        return state

    def restore(self, model) -> int:
        """Load the last committed epoch into `model` (compiled); return the epoch to start at.

        A writing checkpoint first removes what a killed predecessor left half-written (the
        hidden temporaries of `state.json`, the epoch weights and the history CSV), whatever
        their age: the run directory has one writer, and it is this run now.
        """
        if self.write:
            self._remove_leftovers()
        state = self.read_state()
        if state is None:
            return 0
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self.directory / state["weights"])
        _set_seed_states(model, state.get("seed_states", []))
        self.history = list(state["history"])
        return int(state["epoch"])

    def _remove_leftovers(self) -> None:
        targets = [self.directory / STATE_FILE]
        if self.history_csv is not None:
            targets.append(self.history_csv)
        if self.directory.is_dir():
            # `.epoch-0003.weights.h5.tmp-k2j4x9ab.weights.h5` is epoch-0003.weights.h5's.
            for leftover in self.directory.glob(".epoch-*.weights.h5.tmp-*"):
                targets.append(self.directory / leftover.name[1:].split(".tmp-")[0])
        for target in targets:
            remove_stale_temporaries(target, max_age=0)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1}
        row.update({key: float(value) for key, value in (logs or {}).items()})
        row["seconds"] = time.perf_counter() - self._epoch_started
        self.history.append(row)
        if not self.write:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        weights_name = f"epoch-{epoch + 1:04d}.weights.h5"
        with atomic_path(self.directory / weights_name, suffix=".weights.h5") as temporary:
            self.model.save_weights(temporary)
        state = {
            "epoch": epoch + 1,
            "weights": weights_name,
            "history": self.history,
            "seed_states": _seed_states(self.model),
        }
        atomic_write_text(self.directory / STATE_FILE, json.dumps(state, indent=1))
        for old in self.directory.glob("epoch-*.weights.h5"):
            if old.name != weights_name:
                old.unlink(missing_ok=True)
        if self.history_csv is not None:
            atomic_write_text(self.history_csv, history_to_csv(self.history))


def _seed_generators(model) -> list:
    # Random layers (augmentation) keep their state in SeedGenerators, which `save_weights`
    # leaves out; without it a resumed run would replay the first epochs' augmentations.
    return [
        generator
        for layer in model._flatten_layers(include_self=True)
        for generator in getattr(layer, "_seed_generators", [])
    ]


def _seed_states(model) -> list:
    return [keras.ops.convert_to_numpy(g.state).tolist() for g in _seed_generators(model)]


def _set_seed_states(model, states: list) -> None:
    generators = _seed_generators(model)
    if len(generators) != len(states):
        raise ValueError(
            f"The checkpoint has {len(states)} random-layer states, the model {len(generators)}."
        )
    for generator, value in zip(generators, states):
        generator.state.assign(keras.ops.convert_to_tensor(value, dtype=generator.state.dtype))


def history_to_csv(rows: list[dict]) -> str:
    """Render history rows (dicts) as CSV text, columns in first-seen order.

    Example:
    >>> print(history_to_csv([{"epoch": 1, "loss": 0.5}]), end="")
    epoch,loss
    1,0.5
    """
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
