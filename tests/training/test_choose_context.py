"""`pretrain.choose_context`: context settings scored with counts from other collections."""

import json

import pytest

from im2latex_encoder.training import PretrainConfig
from pretrain.choose_context import collections, main
from training_helpers import run_folder_answering


def test_collections_are_the_first_folder_and_a_flat_folder_is_refused():
    assert collections(["HAMEX/a.inkml", "KAIST/x/b.inkml"]) == ["HAMEX", "KAIST"]
    with pytest.raises(ValueError, match="collection sub-folders.*'a.inkml'"):
        collections(["HAMEX/b.inkml", "a.inkml"])


def test_the_context_is_scored_with_counts_from_the_other_collections(
    tmp_path, monkeypatch, capsys
):
    from inkml_fixtures import build_inkml, build_writer_folder

    monkeypatch.setenv("IM2LATEX_ENCODER_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "train"
    for shift, collection in enumerate("ABC"):  # each expression: an `x`, then a `1` beside it
        (data / collection).mkdir(parents=True)
        for index in range(12):
            x0 = shift + index  # no two files alike (a scan drops a file seen twice)
            traces = [
                [(x0, 0), (x0 + 10, 10)],
                [(x0 + 10, 0), (x0, 10)],
                [(x0 + 20, 0), (x0 + 20, 12)],
            ]
            (data / collection / f"e{index}.inkml").write_bytes(
                build_inkml(
                    traces,
                    ui=f"{collection}_{index}",
                    writer=f"{collection}{index % 4}",
                    groups=[("x", [0, 1]), ("1", [2])],
                )
            )
    config = PretrainConfig(
        image_size=24, validation_split=0.5, validation_by="writer", ink_augment={}, seed=2
    )
    run = run_folder_answering(tmp_path / "run", config)  # every class equally likely
    output = tmp_path / "choice.json"
    arguments = [run, "--data", f"crohme:{data}", "--weights", "0,0.3", "--prior-powers", "0.5"]
    assert main([*arguments, "--json", str(output)]) == 0
    result = json.loads(output.read_text())
    # Alone, every class is as likely as any other: none is read. Counted on the other
    # collections, `x` then `1` is all the context knows, and it reads every symbol.
    assert result["alone"] == 0.0
    by_weight = {row["weight"]: row["top1"] for row in result["grid"]}
    assert by_weight == {0.0: 0.0, 0.3: 100.0}
    assert result["best"] == {"weight": 0.3, "prior_power": 0.5, "smoothing": 10.0}
    assert result["cross_fit"]["points"] == 100.0 and result["cross_fit"]["low"] == 100.0
    assert set(result["chosen"]) <= {"A", "B", "C"} and len(result["chosen"]) >= 2
    printed = capsys.readouterr().out
    assert "cross-fit over collections, − alone: +100.00" in printed

    # A folder without collections, or a run that held nothing out, is refused, saying why.
    flat = build_writer_folder(tmp_path / "flat", [f"w{i % 4}" for i in range(8)])
    assert main([run, "--data", f"crohme:{flat}"]) == 2
    assert "collection sub-folders" in capsys.readouterr().err
    (tmp_path / "run" / "run.json").write_text(
        json.dumps({"config": config.replace(validation_split=0.0).to_dict()})
    )
    assert main([run, "--data", f"crohme:{data}"]) == 2
    assert "held nothing out" in capsys.readouterr().err
