"""Ship a preset inside the package: `python -m pretrain.ship SOURCE NAME --version N`.

SOURCE is a run's preset directory (a classifier's `RUN/preset`, a recognizer's
`RUN/recognizer`, vocabulary and drawing settings included) or an older recognizer folder
(`model.keras`, `vocabulary.json`, `recognizer.json`, or that `.keras` file), which is first
converted to a recognizer preset (`load_formula_recognizer` then `save_to_preset`, its model
card and metrics kept).
The preset is copied into `im2latex_encoder/shipped_presets/NAME`, with `name` and
`preset_version` recorded in its `metadata.json`, its model card titled with NAME, and the
checksums of the files it changed re-computed. A preset of `MAX_SHIPPED_BYTES` or more is
refused (the wheel carries it) and nothing is written. The copy is built beside the target and
swapped in whole (`atomic_directory`), so an interrupted ship leaves the previous preset.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from im2latex_encoder import presets
from im2latex_encoder._atomic import atomic_directory
from im2latex_encoder.presets import METADATA, preset_metadata

#: The largest preset the package ships (10 MB): every install downloads it.
MAX_SHIPPED_BYTES = 10_000_000
#: An older recognizer folder's files that travel into its preset (besides the model's).
_CARRIED_FILES = ("model_card.md", "metrics.json")
#: The licence of the code, recorded in every shipped preset beside the weights' (LICENSE).
CODE_LICENCE = "Apache-2.0"
#: What may cover a shipped preset's weights, by `--weights-licence`. Weights trained on CROHME
#: data inherit its non-commercial research terms; that is the default, since a wrong "free"
#: is the costly mistake.
WEIGHTS_LICENCES = {
    "crohme": "CROHME data's terms: non-commercial research use only (trained on CROHME "
    "handwriting)",
    "apache-2.0": "Apache-2.0, as the code (trained without CROHME data)",
}


def ship(
    source: str | Path,
    name: str,
    version: int,
    *,
    target_root: str | Path | None = None,
    weights_licence: str = "crohme",
) -> Path:
    """Copy the preset at `source` to `target_root / name` as version `version`.

    An older recognizer folder (or its `.keras` file) is converted to a recognizer preset
    first, in a scratch directory outside `target_root`.

    Args:
        source: str or Path. A preset directory, or an older recognizer folder or `.keras` file.
        name: str. The shipped preset's name (`crohme101`, `crohme-formulas`).
        version: int. Its version number, from 1.
        target_root: str, Path or None. Where to ship; None: the package's `shipped_presets/`.
        weights_licence: str. A key of `WEIGHTS_LICENCES`: `"crohme"` (the default) for weights
            trained on CROHME data, `"apache-2.0"` for weights trained without it. Recorded in
            `metadata.json` as `licence` (`code` and `weights`).

    Raises:
        ValueError: for a bad `version`, or a preset of `MAX_SHIPPED_BYTES` or more.
        PresetError: if the preset fails its checksums.
        FileNotFoundError: if `source` is neither a preset nor a recognizer folder.

    Example:
    >>> ship("runs/crohme/preset", "crohme101", 4)  # doctest: +SKIP
    PosixPath('.../shipped_presets/crohme101')
    >>> ship("runs/formulas/recognizer", "crohme-formulas", 1)  # doctest: +SKIP
    PosixPath('.../shipped_presets/crohme-formulas')
    """
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"`version` must be a positive int. Received: version={version!r}")
    if weights_licence not in WEIGHTS_LICENCES:
        raise ValueError(
            f"`weights_licence` must be one of {', '.join(map(repr, WEIGHTS_LICENCES))}. "
            f"Received: weights_licence={weights_licence!r}"
        )
    licence = {"code": CODE_LICENCE, "weights": WEIGHTS_LICENCES[weights_licence]}
    source = Path(source)
    target_root = Path(presets.SHIPPED_DIR if target_root is None else target_root)
    if (source / METADATA).is_file():
        return _ship_preset(source, name, version, target_root, licence)
    if not ((source / "model.keras").is_file() or (source.is_file() and source.suffix == ".keras")):
        raise FileNotFoundError(
            f"Nothing to ship at {source}. Expected a preset directory (with {METADATA}) or an "
            "older recognizer folder (model.keras, vocabulary.json, recognizer.json) or its "
            f".keras file. Received: {_describe(source)}"
        )
    with tempfile.TemporaryDirectory(prefix="ship-") as scratch:
        converted = _recognizer_preset_from_folder(source, Path(scratch) / "preset")
        return _ship_preset(converted, name, version, target_root, licence)


def _ship_preset(source: Path, name: str, version: int, target_root: Path, licence: dict) -> Path:
    metadata = preset_metadata(source)  # refuse to ship a corrupt preset
    files = [path for path in source.iterdir() if path.is_file()]
    size = sum(path.stat().st_size for path in files)
    if size >= MAX_SHIPPED_BYTES:
        raise ValueError(
            f"{source} is {size / 1e6:.2f} MB; a shipped preset must stay under "
            f"{MAX_SHIPPED_BYTES / 1e6:g} MB (every install of the package carries it). "
            "Ship a smaller model, or publish this one outside the package. "
            f"Received: {size:,} bytes in {len(files)} files"
        )
    carrying = _dataset_examples(source, metadata)
    if carrying:
        raise ValueError(
            f"{source} carries examples of its data ({', '.join(carrying)}: `examples` with "
            "targets and predictions). Expected a preset without them: a shipped preset goes "
            "into every install, and training data such as CROHME's may not be redistributed. "
            "Remove the `examples` entries and ship again."
        )
    target = target_root / name
    with atomic_directory(target) as staging:
        for path in files:
            shutil.copy2(path, staging / path.name)
        card = staging / "model_card.md"
        if card.is_file():
            lines = card.read_text(encoding="utf-8").splitlines()
            if lines and lines[0].startswith("# Model card:"):
                lines[0] = f"# Model card: `{name}` (version {version})"
            card.write_text("\n".join(lines) + "\n", encoding="utf-8")
            metadata["files"]["model_card.md"] = hashlib.sha256(card.read_bytes()).hexdigest()
        metadata["name"] = name
        metadata["preset_version"] = version
        metadata["licence"] = licence
        (staging / METADATA).write_text(
            json.dumps(metadata, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    preset_metadata(target)
    return target


def _dataset_examples(source: Path, metadata: dict) -> list[str]:
    """Where the preset holds `examples` (evaluation samples: a dataset's own targets)."""

    def holds(value) -> bool:
        if isinstance(value, dict):
            return "examples" in value or any(holds(v) for v in value.values())
        if isinstance(value, list):
            return any(holds(v) for v in value)
        return False

    found = [METADATA] if holds(metadata) else []
    for path in sorted(source.glob("*.json")):
        if path.name == METADATA:
            continue
        try:
            if holds(json.loads(path.read_text(encoding="utf-8"))):
                found.append(path.name)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
    return found


def _describe(path: Path) -> str:
    if path.is_dir():
        return f"a folder holding {sorted(p.name for p in path.iterdir())[:8] or 'nothing'}"
    return "a file" if path.exists() else "no such file or folder"


def _recognizer_preset_from_folder(source: Path, preset_dir: Path) -> Path:
    """Convert an older recognizer folder (`model.keras` + JSON files) to a recognizer preset."""
    from im2latex_encoder.recognizer.saving import load_formula_recognizer

    model = load_formula_recognizer(source)  # safe_mode=True; its vocabulary and settings set
    folder = source.parent if source.suffix == ".keras" else source
    carried = {
        name: (folder / name).read_text(encoding="utf-8")
        for name in _CARRIED_FILES
        if (folder / name).is_file()
    }
    metadata = {"converted_from": "model.keras folder"}
    if "metrics.json" in carried:
        try:
            metadata["metrics"] = json.loads(carried["metrics.json"])
        except json.JSONDecodeError:
            pass  # still shipped as a file, checksummed; only the metadata copy is skipped
    model.save_to_preset(os.fspath(preset_dir), metadata=metadata, extra_files=carried)
    return preset_dir


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pretrain.ship", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "source",
        help="a preset directory (a run's preset/ or recognizer/), or an older recognizer "
        "folder with model.keras",
    )
    parser.add_argument("name", help="the shipped preset's name, e.g. crohme101 or crohme-formulas")
    parser.add_argument("--version", type=int, required=True, help="the preset's version number")
    parser.add_argument(
        "--weights-licence",
        default="crohme",
        choices=sorted(WEIGHTS_LICENCES),
        help="what covers the weights: crohme (trained on CROHME data: non-commercial research "
        "only; the default) or apache-2.0 (trained without it)",
    )
    args = parser.parse_args(argv)
    try:
        print(ship(args.source, args.name, args.version, weights_licence=args.weights_licence))
    except (ValueError, FileNotFoundError) as error:  # PresetError is a ValueError
        parser.exit(2, f"{parser.prog}: error: {error}\n")


if __name__ == "__main__":
    main()
