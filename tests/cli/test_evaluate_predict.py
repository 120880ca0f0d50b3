"""`im2latex-encoder evaluate` and `predict` on a small preset made here."""

import json

import numpy as np
import pytest

from im2latex_encoder import ClassificationHead, SymbolClassifier, SymbolEncoder
from im2latex_encoder.cli import main


@pytest.fixture(scope="module")
def preset_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("preset") / "tiny"
    classifier = SymbolClassifier(
        SymbolEncoder(filters=(8, 16, 16)), ClassificationHead(101), image_size=32
    )
    classifier.save_to_preset(path)
    return path


def test_evaluate_prints_accuracy_and_writes_json(preset_dir, tmp_path, capsys):
    out = tmp_path / "result.json"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(preset_dir),
                "--data",
                "synthetic",
                "--per-class",
                "1",
                "--json",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "top-1" in printed and "per-class top-1 (worst first)" in printed
    result = json.loads(out.read_text())
    assert result["n"] == 101 and result["skipped"] == 0
    assert 0 <= result["top1"] <= result["top5"] <= 1 and "top1_merged" in result
    assert set(result["per_class"]) == set(SymbolClassifier.from_preset(str(preset_dir)).labels)


def test_evaluate_on_a_prepared_cache_counts_unknown_labels_as_skipped(
    preset_dir, tmp_path, capsys
):
    from im2latex_encoder.data.cache import PreparedDataset, save_prepared

    images = np.zeros((3, 32, 32), np.uint8)
    images[:, 10:20, 15:17] = 255
    save_prepared(
        tmp_path / "d.npz",
        PreparedDataset(
            images,
            np.array([0, 1, 2], np.int32),
            ("1", "junk", "x"),
            {"image_size": [32, 32]},
            "h",
            {},
        ),
    )
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(preset_dir),
                "--data",
                str(tmp_path / "d.npz"),
                "--json",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["n"] == 2 and result["skipped"] == 1


def _save_cache(path, size, labels=("1", "x", "y")):
    from im2latex_encoder.data.cache import PreparedDataset, save_prepared

    images = np.zeros((len(labels), size, size), np.uint8)
    images[:, size // 4 : size // 2, size // 2 : size // 2 + 2] = 255
    save_prepared(
        path,
        PreparedDataset(
            images,
            np.arange(len(labels), dtype=np.int32),
            tuple(labels),
            {"image_size": [size, size]},
            "h",
            {},
        ),
    )
    return path


@pytest.mark.parametrize("size", [48, 24])
def test_evaluate_refuses_a_cache_of_another_image_size(preset_dir, tmp_path, capsys, size):
    # The tiny preset's head pools, so these sizes would run and give a meaningless accuracy.
    data = _save_cache(tmp_path / f"d{size}.npz", size)
    out = tmp_path / "r.json"
    status = main(["evaluate", "--model", str(preset_dir), "--data", str(data), "--json", str(out)])
    captured = capsys.readouterr()
    assert status == 2
    (line,) = captured.err.strip().splitlines()
    assert line == (
        f"im2latex-encoder evaluate: error: {data}: expected 32×32 images, the input size of "
        f"the preset {str(preset_dir)!r} (classifier.image_size). Received: {size}×{size} "
        "images. Prepare the data again with `im2latex-encoder prepare ... --image-size 32`."
    )
    assert "top-1" not in captured.out and not out.exists(), "nothing evaluated, nothing written"


def test_evaluate_refuses_a_cache_a_flatten_head_cannot_take(tmp_path, capsys):
    # A flatten head fails inside Keras on another size: the check speaks first, in sizes.
    preset = tmp_path / "flatten"
    SymbolClassifier(
        SymbolEncoder(filters=(8, 16, 16)),
        ClassificationHead(101, pooling="flatten"),
        image_size=24,
    ).save_to_preset(preset)
    data = _save_cache(tmp_path / "d.npz", 32)
    assert main(["evaluate", "--model", str(preset), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert (
        "expected 24×24 images" in err
        and "Received: 32×32 images" in err
        and "--image-size 24" in err
    )
    assert "Traceback" not in err


def test_evaluate_takes_a_cache_of_the_presets_size(preset_dir, tmp_path, capsys):
    data = _save_cache(tmp_path / "d.npz", 32)
    assert main(["evaluate", "--model", str(preset_dir), "--data", str(data)]) == 0
    assert "(n=3, skipped=0)" in capsys.readouterr().out


def test_predict_inkml_and_images(preset_dir, tmp_path, capsys, make_inkml):
    from PIL import Image

    inkml = tmp_path / "a.inkml"
    inkml.write_bytes(make_inkml([[(0, 0), (10, 10), (20, 0)]], ui="a_1"))
    paper = np.full((40, 30), 255, np.uint8)
    paper[5:35, 14:17] = 0  # dark ink on white paper
    Image.fromarray(paper).save(tmp_path / "one.png")
    out = tmp_path / "p.jsonl"
    assert (
        main(
            [
                "predict",
                "--model",
                str(preset_dir),
                "--top-k",
                "2",
                "--json",
                str(out),
                str(inkml),
                str(tmp_path / "one.png"),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(len(line.split("\t")) == 3 for line in lines)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(r["top"]) for r in records] == [2, 2]


def test_predict_lists_bad_files_and_exits_2(preset_dir, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    status = main(
        [
            "predict",
            "--model",
            str(preset_dir),
            str(tmp_path / "notes.txt"),
            str(tmp_path / "broken.png"),
            str(tmp_path / "missing.inkml"),
        ]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert "expected an .inkml file or an image" in err and "Received: .txt" in err
    assert "not a readable image" in err and "no such file" in err
    assert "3 of 3 files skipped" in err and "Traceback" not in err


def test_evaluate_reads_crohme_symbols_alone_and_with_their_neighbours(
    tmp_path, capsys, monkeypatch
):
    from im2latex_encoder.context import ExpressionContext
    from im2latex_encoder.data.ink import prepare_crohme_ink
    from inkml_fixtures import build_inkml

    monkeypatch.setenv("IM2LATEX_ENCODER_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "crohme"
    data.mkdir()
    for index in range(6):  # `2 x` then `1 -`: a digit, a letter; a digit, a bar
        traces = [[(0, 0), (8, 10)], [(12, 0), (22, 10)], [(22, 0), (12, 10)]]
        (data / f"e{index}.inkml").write_bytes(
            build_inkml(traces, ui=f"em_{index}", groups=[("2", [0]), ("x", [1, 2])])
        )
    classifier = SymbolClassifier(
        SymbolEncoder(filters=(8, 16)),
        ClassificationHead(101),
        image_size=32,
        context_scale=0.8,
    )
    ink = prepare_crohme_ink(data, tmp_path / "ink.npz", progress=False, workers=1)
    from im2latex_encoder.training.data_sources import load_ink_labelled, parse_data_spec

    mapped, _, _ = load_ink_labelled(parse_data_spec(f"crohme:{data}"), progress=False)
    classifier.context = ExpressionContext.fit(mapped, weight=1.0, prior_power=1.0)
    classifier.save_to_preset(tmp_path / "preset")
    out = tmp_path / "result.json"
    arguments = ["evaluate", "--model", str(tmp_path / "preset"), "--data", f"crohme:{data}"]
    assert main([*arguments, "--json", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "(each symbol alone)" in printed and "(each symbol with its neighbours" in printed
    result = json.loads(out.read_text())
    assert result["n"] == len(ink) == 12
    # Untrained weights: the context alone knows every expression is `2 x`.
    assert result["in_context"]["top1"] == 1.0
    assert set(result["in_context"]) >= {"top1", "top5", "per_class", "confused_pairs"}
    assert main([*arguments, "--json", str(out), "--no-progress", "--no-context"]) == 0
    assert "in_context" not in json.loads(out.read_text())
    assert "with its neighbours" not in capsys.readouterr().out
