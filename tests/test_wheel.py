"""The wheel is the product: it holds every file the code reads, and works installed alone.

The editable install hides a missing data file (the source tree is on the path), so this test
builds the wheel from a copy of the package, checks its file list against the source tree, then
installs it into a bare folder and runs it from outside the repository.
"""

import ast
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from inkml_fixtures import build_inkml

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "im2latex_encoder"

pytestmark = pytest.mark.slow

# Offline: no index, no build isolation (setuptools and wheel come from the environment).
PIP_ENV = {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


def _package_files(pattern: str) -> list[str]:
    """Files of the source package matching `pattern`, as wheel paths."""
    return sorted(
        path.relative_to(REPO_ROOT).as_posix()
        for path in PACKAGE.glob(pattern)
        if path.is_file() and "__pycache__" not in path.parts
    )


def _data_directories() -> list[Path]:
    """The folders the code reads beside its own module: every ``Path(__file__).parent / "x"``.

    Found in the source (no import: this test needs no TensorFlow), so a new data folder is
    checked the day a module starts reading it.
    """
    found = []
    for module in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.BinOp)
                and isinstance(node.op, ast.Div)
                and isinstance(node.right, ast.Constant)
                and isinstance(node.right.value, str)
                and ast.unparse(node.left) == "Path(__file__).parent"
            ):
                found.append(module.parent / node.right.value)
    return sorted(set(found))


def _runtime_files() -> list[str]:
    """Everything the code reads at run time: its data folders' files, and the typing marker."""
    files = ["im2latex_encoder/py.typed"]
    for directory in _data_directories():
        assert directory.is_dir(), f"the code reads {directory}, which does not exist"
        files += _package_files(f"{directory.relative_to(PACKAGE).as_posix()}/**/*")
    return files


def _run(command, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, (
        f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # A copy, so a stale build/ beside the sources cannot put files into the wheel.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    shutil.copytree(
        PACKAGE, source / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    out = tmp_path_factory.mktemp("wheel")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "--check-build-dependencies",
            "--quiet",
            "-w",
            str(out),
        ],
        env={**os.environ, **PIP_ENV},
    )
    (built,) = out.glob("im2latex_encoder-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        env={**os.environ, **PIP_ENV},
    )
    return target


def test_wheel_holds_every_module_and_runtime_file(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {d.relative_to(PACKAGE).as_posix() for d in _data_directories()} >= {
        "shipped_presets",
        "training/configs",
    }
    runtime = _runtime_files()
    missing = sorted(set(runtime + _package_files("**/*.py")) - names)
    assert not missing, f"the wheel lacks files the code needs: {missing}"
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        assert "im2latex-encoder = im2latex_encoder.cli:main" in archive.read(entry_points).decode()


# Run from outside the repository with only the installed copy on PYTHONPATH: the package, the
# shipped preset and the configs must all come from there; the command line runs through the
# entry point the wheel declares (the one pip's console script calls), predicting a symbol.
_INSTALLED_CHECK = """
import contextlib, io, json, sys
from importlib.metadata import entry_points

import im2latex_encoder
from im2latex_encoder import SymbolClassifier, list_presets
from im2latex_encoder.presets import resolve_preset
from im2latex_encoder.training import load_config

classifier = SymbolClassifier.from_preset("crohme101")
(entry_point,) = entry_points(group="console_scripts", name="im2latex-encoder")
output = io.StringIO()
with contextlib.redirect_stdout(output):
    status = entry_point.load()(["predict", "--preset", "crohme101", "--top-k", "1",
                                 "--no-progress", sys.argv[2]])
print(json.dumps({
    "package": im2latex_encoder.__file__,
    "entry_point": sys.modules[entry_point.module].__file__,
    "presets": list(list_presets()),
    "crohme101": str(resolve_preset("crohme101").resolve()),
    "num_classes": classifier.head.num_classes,
    "configs": {name: load_config(name).name for name in json.loads(sys.argv[1])},
    "predict": [status, output.getvalue()],
}))
"""


def test_installed_wheel_runs_outside_the_repository(installed, tmp_path):
    target = installed.resolve()
    env = {
        **os.environ,
        "PYTHONPATH": str(target),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERAS_BACKEND": "tensorflow",
        "MPLBACKEND": "Agg",
    }
    configs = sorted(Path(name).stem for name in _package_files("training/configs/*.json"))
    symbol = tmp_path / "x.inkml"
    symbol.write_bytes(build_inkml([[(0, 0), (10, 10)], [(10, 0), (0, 10)]], ui="x_1"))
    result = _run(
        [sys.executable, "-c", _INSTALLED_CHECK, json.dumps(configs), str(symbol)],
        cwd=tmp_path,
        env=env,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("package", "entry_point", "crohme101"):
        assert Path(report[key]).resolve().is_relative_to(target), (key, report[key])
    shipped = sorted(p.name for p in (PACKAGE / "shipped_presets").iterdir() if p.is_dir())
    assert sorted(report["presets"]) == shipped
    assert report["num_classes"] == 101
    assert sorted(report["configs"]) == configs
    status, printed = report["predict"]
    assert status == 0 and printed.startswith(f"{symbol}\t"), report["predict"]

    # The console script pip wrote runs (without TensorFlow: --version imports no model).
    result = _run([str(target / "bin" / "im2latex-encoder"), "--version"], cwd=tmp_path, env=env)
    assert result.stdout.strip() == f"im2latex-encoder {_source_version()}"


def _source_version() -> str:
    namespace: dict = {}
    exec((PACKAGE / "version.py").read_text(), namespace)
    return namespace["__version__"]
