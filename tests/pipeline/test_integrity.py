"""A public test set is not a secret (issue 18): models that recognise the MNIST test images are
flagged by the invariance probes, and the points a flag concerns are withheld until the
instructor clears it.

The hostile fixtures (tests/fixtures/integrity/, written by make_hostile.py) carry public facts
about the first test images: a lookup table keyed on an exact hash of the pixels, and a layer
that recognises a known batch and answers by position.
"""

from __future__ import annotations

import pytest
from conftest import FIXTURES, run_grade

from harness.pipeline import rescore

pytestmark = [pytest.mark.slow]
HOSTILE = ["lookup_table", "batch_position"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, mnist_npz, protocol_path, stage_cache, suite_path):
    out = tmp_path_factory.mktemp("integrity") / "out"
    paths = [FIXTURES / "integrity" / f"{name}.py" for name in HOSTILE]
    graded = run_grade(paths, out, protocol=protocol_path, data=mnist_npz, cache=stage_cache, suite=suite_path)
    return out, {r.student: r for r in graded.summary.results}


def improvement(result):
    return next(c for c in result.score.criteria if c.id == "improvement")


@pytest.mark.parametrize("student", HOSTILE)
def test_each_trick_is_caught_by_the_probe(hostile, student):
    _, results = hostile
    model = next(m for m in results[student].models if m.name == "create_improved_model_1")
    assert model.test_accuracy == 1.0  # it does "reach 100 %"
    flags = [f for f in model.integrity if f.rule == "invariance"]
    assert any(f.message.values["probe"][0].key == "probe_unnoticeable" for f in flags), model.integrity


@pytest.mark.parametrize("student", HOSTILE)
def test_the_improvement_points_are_withheld_and_said(hostile, student):
    _, results = hostile
    criterion = improvement(results[student])
    assert criterion.points == 0 and criterion.withheld_points and criterion.withheld_points > 0
    assert criterion.confidence == "low"
    assert "retenu" in criterion.evidence[0].text


def test_an_override_clearing_the_flags_gives_the_points_back(hostile, tmp_path):
    out, results = hostile
    withheld = improvement(results["lookup_table"]).withheld_points
    overrides = tmp_path / "overrides.csv"
    overrides.write_text(
        "student,criterion,points,delta,clear_flags,comment\n"
        "lookup_table,improvement,,,true,vu : à revoir avec l'étudiant\n",
        encoding="utf-8",
    )
    rescored = {r.student: r for r in rescore(out, overrides=overrides)}
    assert improvement(rescored["lookup_table"]).points == withheld
    assert improvement(rescored["batch_position"]).points == 0  # not cleared


def test_no_honest_model_is_flagged_by_the_probes(graded):
    for result in graded.summary.results:
        for model in result.models:
            assert not [f for f in model.integrity if f.rule == "invariance"], (result.student, model.name)
