"""`im2latex-encoder predict`: top labels of InkML or image files, streamed in batches."""

from __future__ import annotations

import json
import sys

_CHUNK = 256  # files per inference batch: memory stays bounded however many files are given


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify InkML or image files",
        description="Print the top labels with probabilities for each file (one line per file).",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help=".inkml files or images")
    parser.add_argument(
        "--preset", default="crohme101", help="preset name or directory (default: crohme101)"
    )
    parser.add_argument("--top-k", type=int, default=3, help="labels per file (default: 3)")
    parser.add_argument("--json", default=None, metavar="OUT", help="also write JSON lines here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    import numpy as np
    import tqdm

    from im2latex_encoder import SymbolClassifier
    from im2latex_encoder._atomic import atomic_path
    from im2latex_encoder.data.errors import DataError
    from im2latex_encoder.data.symbol_files import load_symbol_file

    if args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1. Received: {args.top_k}")
    classifier = SymbolClassifier.from_preset(args.preset)
    size = classifier.image_size[0] if classifier.image_size else 128
    failures: list[str] = []
    json_handle = None
    with atomic_path(args.json, suffix=".jsonl") if args.json else _no_file() as json_path:
        if json_path is not None:
            json_handle = open(json_path, "w", encoding="utf-8")
        try:
            bar = tqdm.tqdm(
                total=len(args.files),
                unit="file",
                disable=args.no_progress or len(args.files) < _CHUNK,
                file=sys.stderr,
            )
            for start in range(0, len(args.files), _CHUNK):
                names, images = [], []
                for name in args.files[start : start + _CHUNK]:
                    try:
                        images.append(load_symbol_file(name, size))
                        names.append(name)
                    except DataError as error:
                        failures.append(str(error))
                        print(f"im2latex-encoder predict: skipped {error}", file=sys.stderr)
                if images:
                    top = classifier.predict_labels(np.stack(images), top_k=args.top_k)
                    for name, row in zip(names, top):
                        print(name + "\t" + "\t".join(f"{label} {p:.3f}" for label, p in row))
                        if json_handle:
                            json_handle.write(json.dumps({"file": name, "top": row}) + "\n")
                bar.update(min(_CHUNK, len(args.files) - start))
            bar.close()
        finally:
            if json_handle:
                json_handle.close()
    if failures:
        print(
            f"im2latex-encoder predict: {len(failures)} of {len(args.files)} files skipped",
            file=sys.stderr,
        )
        return 2
    return 0


class _no_file:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
