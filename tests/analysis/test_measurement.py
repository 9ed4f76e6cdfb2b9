"""Whether a profile measured a model faithfully: the collapse signature and unconverged statistics."""

from __future__ import annotations

import pytest

from harness.analysis.analyse import measurement_note, verdict
from harness.config.analysis import load_analysis_config
from harness.results import BatchNormStatistics, ModelResult
from harness.util.i18n import Translator

SETTINGS = load_analysis_config().measurement
EN, FR = Translator("en"), Translator("fr")


def trained(train: list[float], val: list[float], batchnorm=None, **fields) -> ModelResult:
    history = {"accuracy": train, "val_accuracy": val}
    return ModelResult(
        name="create_improved_model_1",
        role="improved",
        status="ok",
        history=history,
        batchnorm=batchnorm,
        test_accuracy=val[-1],
        **fields,
    )


def test_the_collapse_signature_makes_a_model_not_measurable_on_a_cheap_profile():
    model = trained([0.89, 0.97, 0.984], [0.11, 0.11, 0.11])
    note = measurement_note(model, SETTINGS, "not_measurable", "quick", EN)
    assert note.rule == "collapse" and not note.measurable
    assert "not measurable on the quick profile" in note.reason and "98.4" in note.reason and "11.0" in note.reason
    assert (
        "non mesurable avec le profil quick" in measurement_note(model, SETTINGS, "not_measurable", "quick", FR).reason
    )


def test_on_the_full_protocol_the_collapse_is_the_verdict():
    note = measurement_note(trained([0.9, 0.99], [0.1, 0.1]), SETTINGS, "measured", "full", EN)
    assert note.rule == "collapse" and note.measurable


@pytest.mark.parametrize(
    "train, val",
    [
        ([0.90, 0.99, 0.999], [0.97, 0.98, 0.985]),  # ordinary training
        ([0.40, 0.95], [0.10, 0.93]),  # slow start, then fine: not from the first epoch
        ([0.92, 0.99], [0.90, 0.30]),  # diverged at the end only: a measured failure, not a collapse
        ([0.11, 0.11], [0.10, 0.10]),  # does not learn at all: measured as such
    ],
)
def test_no_false_alarm(train, val):
    assert measurement_note(trained(train, val), SETTINGS, "not_measurable", "quick", EN) is None


def test_reestimated_statistics_that_changed_the_measure_are_reported():
    stats = BatchNormStatistics(
        layers=3, recalibrated=True, images=4096, val_accuracy_moving=0.11, val_accuracy_recalibrated=0.983
    )
    note = measurement_note(trained([0.9, 0.99], [0.97, 0.983], stats), SETTINGS, "not_measurable", "quick", EN)
    assert note.rule == "batchnorm_statistics" and note.measurable and "4096" in note.reason
    converged = stats.model_copy(update={"val_accuracy_moving": 0.981})
    assert measurement_note(trained([0.9, 0.99], [0.97, 0.983], converged), SETTINGS, "x", "quick", EN) is None


def test_the_verdict_leaves_out_what_was_not_measured():
    collapsed = trained([0.9, 0.99], [0.1, 0.1])
    collapsed = collapsed.model_copy(
        update={"measurement": measurement_note(collapsed, SETTINGS, "not_measurable", "quick", EN)}
    )
    reference = ModelResult(name="ref", role="reference", status="ok", test_accuracy=0.98)
    summary = verdict([collapsed], reference, EN)
    assert summary.verdict == "no_model" and "could be measured" in summary.verdict_text
