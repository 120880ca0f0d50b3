"""Run the real command line in subprocesses; make tiny `pretrain` run folders."""

import json
import os
import subprocess
import sys


def cli_command(*args):
    """The installed command line, run with this interpreter."""
    return [sys.executable, "-m", "im2latex_encoder.cli", *map(str, args)]


def run_cli(*args, env=None, timeout=600):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", **(env or {}))
    return subprocess.run(
        cli_command(*args), capture_output=True, text=True, env=environment, timeout=timeout
    )


def run_folder_answering(folder, config, label=None):
    """A `pretrain` run folder (`run.json`, `preset/`) whose classifier answers `label` for
    every image, or gives every class the same probability when `label` is None."""
    import numpy as np

    from im2latex_encoder import ClassificationHead, SymbolClassifier, SymbolEncoder
    from im2latex_encoder.symbols import CROHME_SYMBOLS

    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"config": config.to_dict()}))
    classifier = SymbolClassifier(
        SymbolEncoder(filters=(4, 4, 4)),
        ClassificationHead(len(CROHME_SYMBOLS)),
        image_size=config.image_size,
    )
    logits = classifier.head.classifier
    bias = np.zeros(len(CROHME_SYMBOLS), "float32")
    if label is not None:
        bias[CROHME_SYMBOLS.index(label)] = 10.0
    logits.set_weights([np.zeros_like(logits.get_weights()[0]), bias])
    classifier.save_to_preset(str(folder / "preset"))
    return str(folder)
