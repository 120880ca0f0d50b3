"""The model card says how a preset was trained, including when nothing was held out."""

from __future__ import annotations

import pytest

from im2latex_encoder.training.model_card import CROHME_LICENCE, REFIT_NOTE, model_card

SCORE = {"top1": 0.9, "top5": 0.99, "n": 10, "skipped": 0}


def card(
    *,
    validation_split,
    real_data=True,
    evaluations=("synthetic_validation", "crohme:t"),
    **fields,
):
    return model_card(
        name="crohme101",
        config={"name": "crohme", "validation_split": validation_split, **fields},
        data=["crohme:train: 10 symbols"],
        metrics={name: SCORE for name in evaluations},
        parameters=10,
        train_seconds=60.0,
        command="im2latex-encoder pretrain --config crohme --validation-split 0",
        real_data=real_data,
    )


def test_a_real_ink_refit_on_every_expression_says_its_validation_is_synthetic():
    text = card(validation_split=0.0)
    assert REFIT_NOTE in text and CROHME_LICENCE in text
    # The note sits under the evaluation table it explains.
    assert text.index("| synthetic_validation |") < text.index(REFIT_NOTE)


@pytest.mark.parametrize(
    "settings",
    [
        {"validation_split": 0.05, "evaluations": ("crohme_validation", "crohme:t")},
        {"validation_split": 0.0, "real_data": False},
    ],
    ids=["held-out-expressions", "synthetic-only-training"],
)
def test_no_refit_note_where_held_out_ink_or_synthetic_training_is_the_measure(settings):
    assert REFIT_NOTE not in card(**settings)


@pytest.mark.parametrize("context_scale", [None, 0.8])
def test_the_input_line_asks_for_the_drawing_the_preset_was_trained_on(context_scale):
    text = card(validation_split=0.05, context_scale=context_scale)
    intended = text[text.index("## Intended use") :]
    assert ("scaled to fit the image (as" in intended) == (context_scale is None)
    assert ("at their size in their expression" in intended) == (context_scale is not None)
