"""A public test set is not a secret (issue 18): models that recognise the MNIST test images are
flagged by the invariance probes and the private check set, and the points a flag concerns are
withheld until the instructor clears it.

The hostile fixtures (tests/fixtures/integrity/, written by make_hostile.py) carry public facts
about the first test images: a lookup table keyed on an exact hash of the pixels, a layer that
recognises a known batch and answers by position, and a nearest-neighbour memory of
shift-invariant signatures that the probe does not shake.
"""

from __future__ import annotations

import pytest
from conftest import FIXTURES, run_grade

from harness.config.environment import PRIVATE_SEED_ENV
from harness.pipeline import rescore

pytestmark = [pytest.mark.slow]
CAUGHT_BY_THE_PROBE = ["lookup_table", "batch_position"]
HOSTILE = [*CAUGHT_BY_THE_PROBE, "nearest_neighbour"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, mnist_npz, protocol_path, stage_cache, suite_path):
    out = tmp_path_factory.mktemp("integrity") / "out"
    paths = [FIXTURES / "integrity" / f"{name}.py" for name in HOSTILE]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PRIVATE_SEED_ENV, "18")  # one private set, whatever the machine: the same verdicts
        graded = run_grade(
            paths, out, protocol=protocol_path, data=mnist_npz, cache=stage_cache, suite=suite_path, reports=False
        )
    return out, {r.student: r for r in graded.summary.results}


def improvement(result):
    return next(c for c in result.score.criteria if c.id == "improvement")


def hostile_model(results, student):
    return next(m for m in results[student].models if m.name == "create_improved_model_1")


@pytest.mark.parametrize("student", CAUGHT_BY_THE_PROBE)
def test_each_trick_is_caught_by_the_probe(hostile, student):
    _, results = hostile
    model = hostile_model(results, student)
    assert model.test_accuracy == 1.0  # it does "reach 100 %"
    flags = [f for f in model.integrity if f.rule == "invariance"]
    assert any(f.message.values["probe"][0].key == "probe_unnoticeable" for f in flags), model.integrity


def test_a_memory_the_probe_does_not_shake_is_caught_by_the_private_set(hostile):
    _, results = hostile
    model = hostile_model(results, "nearest_neighbour")
    assert model.test_accuracy == 1.0
    assert model.invariance[0].drop == 0.0  # robust to ±1/255 and a one-pixel move: the probe sees nothing
    assert model.private_set.public_accuracy == 1.0 and model.private_set.private_accuracy < 0.9
    (flag,) = [f for f in model.integrity if f.rule == "private_set"]
    assert "jeu de contrôle privé" in flag.reason, flag.reason


def test_the_honest_baselines_beside_them_are_not_flagged(hostile):
    _, results = hostile
    for student in HOSTILE:
        baseline = next(m for m in results[student].models if m.name == "create_baseline_model")
        flags = [f for f in baseline.integrity if f.rule in ("invariance", "private_set")]
        assert baseline.private_set is not None and not flags, (student, baseline.private_set, flags)


@pytest.mark.parametrize("student", HOSTILE)
def test_the_improvement_points_are_withheld_and_said(hostile, student):
    _, results = hostile
    criterion = improvement(results[student])
    assert criterion.points == 0 and criterion.withheld_points and criterion.withheld_points > 0
    assert criterion.confidence == "low"
    assert "retenu" in criterion.evidence[0].text


def test_an_override_clearing_the_flags_gives_the_points_back(hostile, tmp_path):
    out, results = hostile
    cleared = ["lookup_table", "nearest_neighbour"]
    withheld = {student: improvement(results[student]).withheld_points for student in cleared}
    overrides = tmp_path / "overrides.csv"
    overrides.write_text(
        "student,criterion,points,delta,clear_flags,comment\n"
        + "".join(f"{student},improvement,,,true,vu : à revoir avec l'étudiant\n" for student in cleared),
        encoding="utf-8",
    )
    rescored = {r.student: r for r in rescore(out, overrides=overrides)}
    for student in cleared:
        assert improvement(rescored[student]).points == withheld[student]
    assert improvement(rescored["batch_position"]).points == 0  # not cleared


def test_no_honest_model_is_flagged_by_the_probes(graded):
    for result in graded.summary.results:
        for model in result.models:
            flags = [f for f in model.integrity if f.rule in ("invariance", "private_set")]
            assert not flags, (result.student, model.name, flags)
