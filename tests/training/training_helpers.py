"""Run the real command line in subprocesses."""

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
