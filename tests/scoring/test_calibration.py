"""Calibration against an instructor's marks (harness/scoring/calibration.py, ``harness calibrate``).

Hand-computed agreement measures (fast); ``harness calibrate`` on a copy of the session's graded
class (``graded`` in conftest.py, graded once per session); and, marked slow, the labelled corpus
of issue 14 (``tests/fixtures/labelled/``) graded on the smoke profile, its held-out half measured.
"""

from __future__ import annotations

import json
import tomllib

import pytest
from conftest import FIXTURES, copy_of

from harness.cli import main
from harness.resources import bundled
from harness.scoring import calibration, load_rubric
from harness.scoring.calibration import Mark, Proposal, agreement, weighted_kappa

CORPUS = FIXTURES / "labelled"
EXPECTATIONS = CORPUS / "expectations.toml"
HAND_MARKED = ["code_quality", "modifications", "analysis", "documentation"]


# --------------------------------------------------------------------------- measures, by hand


def test_weighted_kappa_matches_a_hand_computed_case():
    # bins 0,1,2; observed disagreement 1/8; expected 0.4375 (margins .25/.25/.5 and .25/.5/.25)
    assert weighted_kappa([0, 1, 2, 2], [0, 1, 2, 1], step=1, max_points=2) == pytest.approx(1 - 0.125 / 0.4375)


def test_weighted_kappa_bins_half_points_and_agrees_with_the_fallback():
    # step 0.5 on 3 points: 7 bins; the harness's own formula gives what scikit-learn gives
    a, b = [0, 0.5, 1.5, 3], [0, 1, 1.5, 2.5]
    assert weighted_kappa(a, b, step=0.5, max_points=3) == pytest.approx(
        calibration._kappa([0, 1, 3, 6], [0, 2, 3, 5], 6)
    )
    assert weighted_kappa([2, 2, 2], [2, 2, 2], step=0.5, max_points=3) is None  # undefined, not 1 or nan


def test_agreement_counts_within_half_a_point_mae_and_ranges():
    rubric = load_rubric()
    marks = [
        Mark("a", "analysis", 2.0, low=1.5, high=2.5),
        Mark("b", "analysis", 1.0, "trop court", low=0.5, high=1.5),
        Mark("c", "analysis", 0.0, low=0, high=0),
    ]
    harness = {("a", "analysis"): 2.5, ("b", "analysis"): 3.0, ("c", "analysis"): 0.0}
    [row] = agreement(marks, harness, rubric, explain=lambda s, c: (f"reason {s}", ["ev"]))
    assert (row.criterion, row.n) == ("analysis", 3)
    assert row.within == pytest.approx(2 / 3)  # a is 0.5 away (within), b is 2 away
    assert row.mae == pytest.approx((0.5 + 2 + 0) / 3)
    assert row.in_range == pytest.approx(2 / 3)
    [worst] = row.disagreements
    assert (worst.student, worst.difference, worst.comment, worst.reason) == ("b", 2.0, "trop court", "reason b")


def test_agreement_says_how_often_the_harness_s_doubts_point_at_the_marks_it_gets_wrong():
    marks = [Mark(s, "analysis", 2.0) for s in "abcd"]
    harness = {("a", "analysis"): 2.0, ("b", "analysis"): 3.0, ("c", "analysis"): 0.5, ("d", "analysis"): 2.5}
    confidence = {("a", "analysis"): "low", ("b", "analysis"): "low", ("c", "analysis"): "high"}
    [row] = agreement(marks, harness, load_rubric(), confidence=confidence)
    assert row.low_confidence == (2, 0.5) and row.high_confidence == (1, 0.0)  # d has none: in neither
    [row] = agreement(marks, harness, load_rubric())
    assert row.low_confidence == (0, None) and row.high_confidence == (0, None)


def test_marks_csv_is_read_with_semicolons_bom_and_decimal_commas(tmp_path):
    path = tmp_path / "marks.csv"
    path.write_text("\ufeffstudent;criterion;points;comment\nZoé;analysis;2,5;bien vu\nLéo;documentation;1;\n", "utf-8")
    assert calibration.read_marks(path) == [
        Mark("Zoé", "analysis", 2.5, "bien vu"),
        Mark("Léo", "documentation", 1.0, ""),
    ]
    path.write_text("student,criterion,points\nZoé,analysis,\n", "utf-8")
    with pytest.raises(ValueError, match="line 2"):
        calibration.read_marks(path)


def test_the_corpus_expectations_become_midpoint_marks(tmp_path):
    expected = tomllib.loads(EXPECTATIONS.read_text(encoding="utf-8"))
    students = [k for k, v in expected.items() if isinstance(v, dict)]
    held = calibration.marks_from_expectations(EXPECTATIONS, half="heldout")
    assert len(students) >= 24 and {m.student for m in held} == {
        s for s in students if expected[s]["half"] == "heldout"
    }
    first = next(m for m in held if m.criterion == "modifications" and m.student == "fr_extreme_honest")
    assert (first.low, first.high, first.points) == (1.5, 3.5, 2.5) and first.comment
    again = calibration.read_marks(calibration.write_marks(held, tmp_path / "m.csv"))
    assert again == held


def test_on_the_full_protocols_data_the_corpus_marks_improvement_against_its_full_protocol_ranges():
    expected = tomllib.loads(EXPECTATIONS.read_text(encoding="utf-8"))
    entry = expected["en_handout_batch"]
    for profile, table in (("smoke", entry), ("quick", entry["full_protocol"]), ("full", entry["full_protocol"])):
        marks = calibration.marks_from_expectations(EXPECTATIONS, half="heldout", profile=profile)
        mark = next(m for m in marks if m.student == "en_handout_batch" and m.criterion == "improvement")
        assert [mark.low, mark.high] == table["improvement"], profile
        other = next(m for m in marks if m.student == "en_handout_batch" and m.criterion == "analysis")
        assert [other.low, other.high] == entry["analysis"]  # the other criteria hold on every profile
    assert entry["full_protocol"]["improvement"] != entry["improvement"]  # the test can tell them apart
    for value in (v for v in expected.values() if isinstance(v, dict)):
        low, high = value["full_protocol"]["improvement"]
        assert 0 <= low <= high <= 4 and value["full_protocol"]["reason"]


def test_the_corpus_is_split_in_two_halves_that_cover_every_case():
    expected = tomllib.loads(EXPECTATIONS.read_text(encoding="utf-8"))
    entries = [v for v in expected.values() if isinstance(v, dict)]
    for half in ("tune", "heldout"):
        assert {e["case"] for e in entries if e["half"] == half} == {e["case"] for e in entries}
        assert {e["lang"] for e in entries if e["half"] == half} == {"fr", "en"}
        assert {e["file"].rsplit(".", 1)[1] for e in entries if e["half"] == half} == {"ipynb", "py"}
    for entry in entries:
        assert (CORPUS / entry["file"]).is_file()
        for criterion in expected["criteria"]:
            low, high = entry[criterion]
            assert 0 <= low <= high and entry["reasons"][criterion]


def _first_candidate(criterion_id: str):
    criterion = next(c for c in load_rubric().criteria if c.id == criterion_id)
    name, values = next(iter(calibration.candidates(criterion).items()))
    return criterion, name, values[0]


def test_fit_proposes_a_value_only_when_cross_validation_confirms_it():
    criterion, name, wanted = _first_candidate("code_quality")
    target = {f"s{i}": 0.0 for i in range(6)}
    # a stand-in for re-scoring: the instructor's marks are met exactly by one candidate value
    exact = calibration.fit(criterion, lambda p: {s: 0.0 if p.get(name) == wanted else 1.0 for s in target}, target, 3)
    assert exact.proposed and exact.changes == {name: wanted}
    assert (exact.cv_mae_current, exact.cv_mae_fitted) == (1.0, 0.0)
    flat = calibration.fit(criterion, lambda p: dict.fromkeys(target, 0.5), target, folds=3)
    assert not flat.proposed and flat.changes == {} and flat.cv_mae_current == flat.cv_mae_fitted == 0.5


def test_the_proposed_rubric_changes_only_the_proposed_values(tmp_path):
    text = bundled("rubric", "default.toml").read_text(encoding="utf-8")
    (_, a_name, a_value), (quality, q_name, q_value) = (
        _first_candidate("analysis"),
        _first_candidate("code_quality"),
    )
    proposals = [
        Proposal("analysis", {a_name: a_value}, 1.0, 0.5, True),
        Proposal("code_quality", {q_name: q_value}, 1.0, 1.0, False),
    ]
    path = tmp_path / "proposed.toml"
    path.write_text(calibration.proposed_rubric_text(text, proposals, "proposed\nfor a test"), encoding="utf-8")
    params = {c.id: c.params for c in load_rubric(path).criteria}
    assert params["analysis"][a_name] == a_value
    assert params["code_quality"].get(q_name) == quality.params.get(q_name)  # not proposed: unchanged
    assert path.read_text(encoding="utf-8").startswith("# proposed\n# for a test\n")


def test_a_parameter_left_to_its_default_is_added_to_its_criterion():
    text = '[[criteria]]\nid = "a"\n[criteria.params]\nx = 1\n\n[[criteria]]\nid = "b"\n[criteria.params]\nx = 1\n'
    changed = calibration.proposed_rubric_text(text, [Proposal("b", {"y": 0.25, "x": 2}, 1, 0, True)], "h")
    assert (
        changed
        == '# h\n[[criteria]]\nid = "a"\n[criteria.params]\nx = 1\n\n[[criteria]]\nid = "b"\n[criteria.params]\ny = 0.25\nx = 2\n'
    )


# --------------------------------------------------------------------------- harness calibrate on a graded class


@pytest.fixture(scope="module")
def calibrated(graded, tmp_path_factory):
    """A copy of the session's graded class, calibrated through the command line against hand marks."""
    out = copy_of(graded, tmp_path_factory.mktemp("calibrate") / "out")
    students = sorted(r.student for r in graded.summary.results)
    marks = out.parent / "marks.csv"
    rows = ["student,criterion,points,comment"]
    for student in students:
        rows += [f"{student},documentation,0,rien à noter", f"{student},code_quality,2,"]
    rows.append("Inconnu,analysis,1,")
    marks.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code = main(["calibrate", str(out), "--marks", str(marks), "--folds", "2", "--lang", "en"])
    return out, code, json.loads((out / "calibration" / "calibration.json").read_text(encoding="utf-8"))


def test_calibrate_writes_the_agreement_json_and_page(calibrated):
    out, code, report = calibrated
    assert code == 0
    rows = {row["criterion"]: row for row in report["agreement"]}
    assert set(rows) == {"code_quality", "documentation"}
    for row in rows.values():
        assert 0 <= row["within"] <= 1 and row["mae"] >= 0 and row["n"] >= 2
    assert report["unknown"] == ["Inconnu"]
    page = (out / "calibration" / "index.html").read_text(encoding="utf-8")
    assert "weighted kappa" in page and "http://" not in page and "https://" not in page
    assert "high confidence (n)" in page
    for row in rows.values():  # every mark the harness gave has a confidence, low or high
        assert row["low_confidence"][0] + row["high_confidence"][0] == row["n"]


def test_calibrate_never_applies_its_proposal(calibrated, graded):
    out, _, report = calibrated
    assert {p["criterion"] for p in report["proposals"]} <= {"code_quality", "documentation"}
    assert (out / "rubric.toml").read_bytes() == (graded.out / "rubric.toml").read_bytes()  # kept rubric untouched
    proposed = report["proposed_rubric"]
    if proposed is not None:  # a proposal is a separate file that loads as a rubric
        assert load_rubric(proposed).criteria
        assert proposed.endswith("rubric-proposed.toml")


def test_calibrate_answers_in_french_by_default(graded, tmp_path, capsys):
    out = copy_of(graded, tmp_path / "out")
    student = graded.summary.results[0].student
    (tmp_path / "m.csv").write_text(f"student,criterion,points\n{student},analysis,1\n", encoding="utf-8")
    assert main(["calibrate", str(out), "--marks", str(tmp_path / "m.csv"), "--no-fit"]) == 0
    printed = capsys.readouterr().out
    assert "écart moyen" in printed and "Rapport écrit" in printed


# The held-out half's agreement is a measurement, not a test: grading the 26-submission corpus takes
# longer than the whole suite may. Commands: docs/calibration.md.
