"""Whether a profile measured a model faithfully: the collapse signature and unconverged statistics."""

from __future__ import annotations

import pytest

from harness.analysis.analyse import measurement_note, verdict
from harness.config.analysis import load_analysis_config
from harness.config.protocol import load_protocol
from harness.results import BatchNormStatistics, ModelResult
from harness.util.i18n import Translator

SETTINGS = load_analysis_config().measurement
EN, FR = Translator("en"), Translator("fr")
PROFILES = load_protocol().profiles
QUICK, FULL = PROFILES["quick"], PROFILES["full"]


def trained(train: list[float], val: list[float], batchnorm=None, role="improved", **fields) -> ModelResult:
    history = {"accuracy": train, "val_accuracy": val}
    return ModelResult(
        name="create_improved_model_1",
        role=role,
        status="ok",
        history=history,
        batchnorm=batchnorm,
        test_accuracy=val[-1],
        **fields,
    )


def test_the_collapse_signature_makes_a_model_not_measurable_on_a_cheap_profile():
    model = trained([0.89, 0.97, 0.984], [0.11, 0.11, 0.11])
    note = measurement_note(model, SETTINGS, QUICK, EN)
    assert note.rule == "collapse" and not note.measurable
    assert "not measurable on the quick profile" in note.reason and "98.4" in note.reason and "11.0" in note.reason
    assert "non mesurable avec le profil quick" in measurement_note(model, SETTINGS, QUICK, FR).reason


def test_on_the_full_protocol_the_collapse_is_the_verdict():
    note = measurement_note(trained([0.9, 0.99], [0.1, 0.1]), SETTINGS, FULL, EN)
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
    assert measurement_note(trained(train, val), SETTINGS, QUICK, EN) is None


def test_reestimated_statistics_that_changed_the_measure_are_reported():
    stats = BatchNormStatistics(
        layers=3, recalibrated=True, images=4096, val_accuracy_moving=0.11, val_accuracy_recalibrated=0.983
    )
    note = measurement_note(trained([0.9, 0.99], [0.97, 0.983], stats), SETTINGS, QUICK, EN)
    assert note.rule == "batchnorm_statistics" and note.measurable and "4096" in note.reason
    converged = stats.model_copy(update={"val_accuracy_moving": 0.981})
    assert measurement_note(trained([0.9, 0.99], [0.97, 0.983], converged), SETTINGS, QUICK, EN) is None


def test_the_verdict_leaves_out_what_was_not_measured():
    collapsed = trained([0.9, 0.99], [0.1, 0.1])
    collapsed = collapsed.model_copy(update={"measurement": measurement_note(collapsed, SETTINGS, QUICK, EN)})
    reference = ModelResult(name="ref", role="reference", status="ok", test_accuracy=0.98)
    summary = verdict([collapsed], reference, EN)
    assert summary.verdict == "no_model" and "could be measured" in summary.verdict_text


def regularised(train: float, val: float, role: str = "improved") -> ModelResult:
    """A model whose one epoch ended at `train` (Keras's running average) and `val`."""
    return trained([train], [val], role=role)


REFERENCE = regularised(0.9295, 0.9784, role="reference")  # 4.9 points apart, as measured on quick


def test_a_model_stopped_much_further_from_convergence_than_the_reference_is_not_measurable_on_quick():
    note = measurement_note(regularised(0.7425, 0.9638), SETTINGS, QUICK, EN, REFERENCE)  # 22.1 points apart
    assert note.rule == "still_learning" and not note.measurable
    assert "74.2" in note.reason and "96.4" in note.reason and "22.1" in note.reason and "4.9" in note.reason
    french = measurement_note(regularised(0.7425, 0.9638), SETTINGS, QUICK, FR, REFERENCE)
    assert "non mesurable avec le profil quick" in french.reason and "22.1" in french.reason


@pytest.mark.parametrize(
    "train, val",
    [
        (0.9209, 0.9750),  # 5.4 points: regularised about as the reference
        (0.9718, 0.9871),  # learns faster than the reference
        (0.9000, 0.9680),  # 6.8 points: within the margin
    ],
)
def test_regularised_like_the_reference_is_measured(train, val):
    assert measurement_note(regularised(train, val), SETTINGS, QUICK, EN, REFERENCE) is None


def test_still_learning_only_where_the_profile_looks_for_it():
    far = regularised(0.7425, 0.9638)
    assert measurement_note(far, SETTINGS, FULL, EN, REFERENCE) is None
    said = QUICK.model_copy(update={"still_learning": "said"})
    assert measurement_note(far, SETTINGS, said, EN, REFERENCE).measurable
    assert measurement_note(far, SETTINGS, QUICK, EN, reference=None) is None
    stopped = far.model_copy(update={"stopped_by_budget": True})  # its last epoch is not a whole one
    assert measurement_note(stopped, SETTINGS, QUICK, EN, REFERENCE) is None
