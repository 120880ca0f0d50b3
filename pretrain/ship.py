"""Ship a run's preset inside the package: `python -m pretrain.ship RUN_PRESET NAME --version N`.

Copies a preset directory into `im2latex_encoder/shipped_presets/NAME`, records `name` and
`preset_version` in its `metadata.json`, titles its model card with NAME, and re-computes the
checksums of the files it changed. The copy is built beside the target and swapped in whole
(`atomic_directory`), so an interrupted ship leaves the previous preset.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

from im2latex_encoder._atomic import atomic_directory
from im2latex_encoder.presets import _SHIPPED_DIR, METADATA, _verify


def ship(source: str | Path, name: str, version: int, *, target_root: Path = _SHIPPED_DIR) -> Path:
    """Copy the preset at `source` to `target_root / name` as version `version`.

    Example:
    >>> ship("runs/crohme/preset", "crohme101", 4)  # doctest: +SKIP
    PosixPath('.../shipped_presets/crohme101')
    """
    source = Path(source)
    metadata = _verify(source)  # refuse to ship a corrupt preset
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"`version` must be a positive int. Received: version={version!r}")
    target = Path(target_root) / name
    with atomic_directory(target) as staging:
        for path in source.iterdir():
            if path.is_file():
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
        (staging / METADATA).write_text(
            json.dumps(metadata, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    _verify(target)
    return target


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pretrain.ship", description=__doc__.splitlines()[0]
    )
    parser.add_argument("source", help="a preset directory (a run's preset/)")
    parser.add_argument("name", help="the shipped preset's name, e.g. crohme101")
    parser.add_argument("--version", type=int, required=True, help="the preset's version number")
    args = parser.parse_args(argv)
    print(ship(args.source, args.name, args.version))


if __name__ == "__main__":
    main()
