"""Presets and model files from elsewhere: refused with a clear message, never executed.

The attacker here controls the whole preset directory, so `metadata.json`'s checksums are
re-computed after every change (`_reseal`): what must stop the attack is safe deserialization
and the type checks, not the checksum. The last tests check the checksum's own job.
"""

import ast
import hashlib
import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from im2latex_encoder import PresetError, SymbolClassifier, SymbolEncoder
from im2latex_encoder.cli import main
from reliability_helpers import save_tiny_preset

PACKAGE = Path(__file__).resolve().parents[2] / "im2latex_encoder"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("presets")
    save_tiny_preset(root / "a", seed=1)
    save_tiny_preset(root / "b", seed=2)
    return root


@pytest.fixture
def preset(saved, tmp_path):
    return Path(shutil.copytree(saved / "a", tmp_path / "preset"))


def _reseal(directory: Path) -> None:
    metadata = json.loads((directory / "metadata.json").read_text())
    for name in metadata["files"]:
        metadata["files"][name] = hashlib.sha256((directory / name).read_bytes()).hexdigest()
    (directory / "metadata.json").write_text(json.dumps(metadata))


def _edit_json(path: Path, change) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def test_a_keras_file_with_a_lambda_layer_is_refused(tmp_path, capsys):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="Lambda.*arbitrary code execution"):
        keras.saving.load_model(tmp_path / "lambda.keras")
    # The command line takes preset directories only; a model file is refused before loading.
    assert (
        main(["predict", "--preset", str(tmp_path / "lambda.keras"), str(tmp_path / "x.png")]) == 2
    )
    err = capsys.readouterr().err
    assert "not a preset directory" in err and "Received: preset=" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "module, class_name",
    [
        ("evil_module", "Evil"),  # importable, with a side effect at import
        ("os", "system"),
        ("builtins", "eval"),
        ("subprocess", "Popen"),
        ("im2latex_encoder.data.cache", "PreparedDataset"),  # in the package but not a model
        ("im2latex_encoder.classifier", "NotRegistered"),
    ],
)
def test_task_json_naming_a_foreign_class_is_refused_without_importing_it(
    preset, tmp_path, monkeypatch, module, class_name
):
    marker = tmp_path / "imported"
    (tmp_path / "evil_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "class Evil:\n    @classmethod\n    def from_config(cls, config):\n        return cls()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    _edit_json(
        preset / "task.json",
        lambda c: dict(c, module=module, class_name=class_name, registered_name=None),
    )
    _reseal(preset)
    with pytest.raises(PresetError, match="cannot rebuild the model from its configuration"):
        SymbolClassifier.from_preset(str(preset))
    assert not marker.exists(), "loading a preset imported a module it named"


def test_configs_naming_the_wrong_package_class_are_refused(preset):
    encoder_config, task_config = (
        (preset / "config.json").read_text(),
        (preset / "task.json").read_text(),
    )
    (preset / "task.json").write_text(encoder_config)
    _reseal(preset)
    with pytest.raises(
        PresetError, match="task.json must describe a SymbolClassifier. Received: a SymbolEncoder"
    ):
        SymbolClassifier.from_preset(str(preset))
    (preset / "config.json").write_text(task_config)
    _reseal(preset)
    with pytest.raises(
        PresetError, match="config.json must describe a SymbolEncoder. Received: a SymbolClassifier"
    ):
        SymbolEncoder.from_preset(str(preset))


@pytest.mark.parametrize("name", ["../model.weights.h5", "/etc/passwd", "sub/../../x", "..", "."])
def test_metadata_listing_paths_outside_the_preset_is_refused(preset, name):
    (preset.parent / "model.weights.h5").write_bytes((preset / "model.weights.h5").read_bytes())
    _edit_json(
        preset / "metadata.json", lambda m: dict(m, files=dict(m["files"], **{name: "0" * 64}))
    )
    with pytest.raises(PresetError, match="outside the preset|is missing"):
        SymbolEncoder.from_preset(str(preset))


def test_a_file_left_out_of_the_checksums_is_refused(preset):
    # Dropping task.json from the table must not let a modified task.json load unchecked.
    _edit_json(
        preset / "metadata.json",
        lambda m: dict(m, files={k: v for k, v in m["files"].items() if k != "task.json"}),
    )
    _edit_json(
        preset / "task.json", lambda c: {**c, "config": {**c["config"], "labels": ["evil"] * 101}}
    )
    with pytest.raises(PresetError, match="metadata.json does not list task.json"):
        SymbolClassifier.from_preset(str(preset))


def test_weights_swapped_for_another_valid_preset_are_refused(saved, preset):
    other = saved / "b"
    SymbolClassifier.from_preset(str(other))  # the swapped-in files are valid weights
    for name in ("model.weights.h5", "task.weights.h5"):
        shutil.copyfile(other / name, preset / name)
        with pytest.raises(PresetError, match=f"refused: {name} has sha256 .* records"):
            SymbolClassifier.from_preset(str(preset))
        shutil.copyfile(saved / "a" / name, preset / name)
    np.testing.assert_array_equal(
        SymbolClassifier.from_preset(str(preset)).get_weights()[0],
        SymbolClassifier.from_preset(str(saved / "a")).get_weights()[0],
    )


def test_a_tampered_preset_is_one_line_and_exit_2_on_the_command_line(preset, tmp_path, capsys):
    (preset / "task.json").write_text((preset / "config.json").read_text())
    _reseal(preset)
    image = tmp_path / "x.inkml"
    image.write_bytes(b"<ink><trace>0 0, 1 1</trace></ink>")
    assert main(["predict", "--model", str(preset), str(image)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "must describe a SymbolClassifier" in err


# === static: nothing in the package can unpickle ===

_BANNED_MODULES = {
    "pickle",
    "cPickle",
    "_pickle",
    "dill",
    "cloudpickle",
    "joblib",
    "shelve",
    "marshal",
}


def _unsafe_loads(source: str, filename: str = "<string>") -> list[str]:
    """Every pickle import, `allow_pickle=True`, `safe_mode=False`, and `np.load(`/`torch.load(`
    call without `allow_pickle=False`/`weights_only=True`, as 'file:line: what'."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            found += [
                f"{filename}:{node.lineno}: imports {n}"
                for n in names
                if n.split(".")[0] in _BANNED_MODULES
            ]
        if not isinstance(node, ast.Call):
            continue
        keywords = {k.arg: getattr(k.value, "value", k.value) for k in node.keywords}
        for key, unsafe in (("allow_pickle", True), ("safe_mode", False), ("weights_only", False)):
            if key in keywords and keywords[key] is unsafe:
                found.append(f"{filename}:{node.lineno}: {key}={unsafe}")
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "load"
            and isinstance(func.value, ast.Name)
        ):
            if func.value.id in ("np", "numpy") and keywords.get("allow_pickle") is not False:
                found.append(f"{filename}:{node.lineno}: np.load without allow_pickle=False")
            if func.value.id == "torch" and keywords.get("weights_only") is not True:
                found.append(f"{filename}:{node.lineno}: torch.load without weights_only=True")
            if func.value.id == "yaml":
                found.append(f"{filename}:{node.lineno}: yaml.load")
    return found


def test_the_checker_finds_unsafe_loads():
    bad = (
        "import pickle\nfrom joblib import load\nimport numpy as np\nnp.load('a')\n"
        "np.load('a', allow_pickle=True)\ntorch.load('m')\nkeras.saving.load_model('m', safe_mode=False)\n"
    )
    assert len(_unsafe_loads(bad)) == 7
    assert _unsafe_loads("import numpy as np\nnp.load('a', allow_pickle=False)\n") == []


def test_no_pickle_anywhere_in_the_package():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    found = [
        hit
        for path in files
        for hit in _unsafe_loads(path.read_text(), str(path.relative_to(PACKAGE)))
    ]
    assert found == []
