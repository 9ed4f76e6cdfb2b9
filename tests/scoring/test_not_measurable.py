"""A model the profile could not measure counts neither for nor against the student (issue 20)."""

from __future__ import annotations

import pytest
from nbformat.v4 import new_code_cell
from test_rubric import EN, FACTORIES, evidence, model, notebook

from harness.ingest.read import ingest_path
from harness.results import MeasurementNote, Message
from harness.scoring.rubric import load_rubric
from harness.scoring.rules import get_rule

RUBRIC = load_rubric()
IMPROVEMENT = next(c for c in RUBRIC.criteria if c.id == "improvement")
PARAMS = RUBRIC.params(IMPROVEMENT)
COLLAPSE = MeasurementNote(
    rule="collapse", measurable=False, reason="not measurable on the quick profile", message=Message(key="x")
)


@pytest.fixture(scope="module")
def ingest(tmp_path_factory):
    return ingest_path(notebook(tmp_path_factory.mktemp("measurable"), [new_code_cell(FACTORIES)]))


def improvement(ingest, *models):
    reference = model("ref", role="reference", accuracy=0.98)
    verdict = get_rule("improvement")(evidence(ingest, list(models), reference, "quick", RUBRIC), PARAMS, EN)
    return verdict, verdict.components[0].points


def test_a_collapsed_model_does_not_cost_the_points_of_a_sound_one(ingest):
    sound = model("create_improved_model_1", accuracy=0.985)
    collapsed = model("create_improved_model_2", accuracy=0.1135).model_copy(update={"measurement": COLLAPSE})
    _, with_collapsed = improvement(ingest, sound, collapsed)
    _, alone = improvement(ingest, sound)
    assert with_collapsed == alone > 0


def test_a_model_the_profile_could_not_measure_is_never_a_silent_zero(ingest):
    collapsed = model("create_improved_model_1", accuracy=0.1135).model_copy(update={"measurement": COLLAPSE})
    verdict, points = improvement(ingest, collapsed)
    assert points == 0
    assert "No improved model measurable on the quick profile" in verdict.reason
    assert any("create_improved_model_1 is left out" in item.text for item in verdict.evidence)


def test_an_unmeasurable_lookalike_of_the_best_never_earns_points(ingest):
    too_good = model("create_improved_model_1", accuracy=0.999).model_copy(update={"measurement": COLLAPSE})
    _, points = improvement(ingest, too_good, model("create_improved_model_2", accuracy=0.975))
    assert points == 0


def test_a_mark_below_the_top_says_an_unmeasured_model_may_be_the_best(ingest):
    unmeasured = model("create_improved_model_2", accuracy=0.975).model_copy(update={"measurement": COLLAPSE})
    verdict, points = improvement(ingest, model("create_improved_model_1", accuracy=0.981), unmeasured)
    assert 0 < points < 4
    assert any("create_improved_model_2 could not be measured" in d for d in verdict.doubts)
    # at the top mark no model left out could raise it: no doubt
    verdict, points = improvement(ingest, model("create_improved_model_1", accuracy=0.99), unmeasured)
    assert points == 4 and not verdict.doubts
