"""`--strategy default|mirrored|multiworker`: tf.distribute strategies for pretraining."""

from __future__ import annotations

import json
import os

STRATEGIES = ("default", "mirrored", "multiworker")


def make_strategy(name: str = "default"):
    """Create a `tf.distribute` strategy by name (TensorFlow backend only).

    `multiworker` reads the cluster from the `TF_CONFIG` environment variable, as
    `tf.distribute.MultiWorkerMirroredStrategy` does; create it before any other TensorFlow
    work in the process.

    Args:
        name: str. `"default"`, `"mirrored"` (all local devices) or `"multiworker"`.

    Example:
    >>> make_strategy("default").num_replicas_in_sync
    1
    """
    if name not in STRATEGIES:
        raise ValueError(f"`--strategy` must be one of {STRATEGIES}. Received: {name!r}")
    import keras
    import tensorflow as tf

    if name != "default" and keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"--strategy {name} uses tf.distribute and needs KERAS_BACKEND=tensorflow. "
            f"Received: KERAS_BACKEND={keras.backend.backend()}"
        )
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if "TF_CONFIG" not in os.environ:
        raise ValueError(
            "--strategy multiworker needs the TF_CONFIG environment variable (cluster and task). "
            "Received: TF_CONFIG is not set"
        )
    return tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING
        )
    )


def is_chief() -> bool:
    """Whether this process writes the run's artifacts (worker 0, or a run without TF_CONFIG).

    Example:
    >>> is_chief()
    True
    """
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    task = json.loads(raw).get("task", {})
    return task.get("type") == "chief" or (
        task.get("type") == "worker" and int(task.get("index", 0)) == 0
    )
