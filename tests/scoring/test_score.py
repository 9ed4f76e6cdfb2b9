"""Re-scoring and re-rendering a graded class from its stored results, without retraining anything.

(The rubric's rules themselves are unit-tested in test_rubric.py.)"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from conftest import FOLDER_STUDENT, copy_of

from harness.cli import main
from harness.pipeline.rescore import rescore
from harness.resources import bundled
from harness.results import SubmissionResult
from harness.scoring import failed_score, load_rubric
from harness.util.i18n import Translator

CRITERIA = ["code_quality", "modifications", "improvement", "analysis", "documentation"]
GENEROUS = [(-1000.0, 4)]  # any measured gain earns the 4 points
STRICT = [(1000.0, 4)]  # no gain can earn anything


def criterion(score, cid):
    return next(c for c in score.criteria if c.id == cid)


def rubric_with_thresholds(path: Path, thresholds: list[tuple[float, float]]) -> Path:
    """The bundled rubric with other improvement thresholds and without the significance cap, so
    that the points follow the thresholds alone."""
    text = bundled("rubric", "default.toml").read_text(encoding="utf-8")
    table = ", ".join(f"{{ min_gain_pp = {m}, points = {p} }}" for m, p in thresholds)
    text, replaced = re.subn(r"thresholds = \[.*?\n\]", f"thresholds = [{table}]", text, flags=re.S)
    assert replaced == 1
    text, replaced = re.subn(r"use_significance = true", "use_significance = false", text)
    assert replaced == 1
    path.write_text(text, encoding="utf-8")
    return path


def expected_improvement(result: SubmissionResult, thresholds: list[tuple[float, float]]) -> float:
    trained = [m for m in result.models if m.role == "improved" and m.test_accuracy is not None]
    if result.status == "invalid" or not trained:
        return 0.0
    gain = 100 * (max(m.test_accuracy for m in trained) - result.reference.model.test_accuracy)
    return next((points for minimum, points in sorted(thresholds, reverse=True) if gain >= minimum), 0.0)


def training_outputs(out: Path) -> dict[str, int]:
    """mtimes of what training and evaluation produced (training.json, models, predictions) and of the
    workers' scratch folder."""
    files = [
        *out.glob("*/training.json"),
        *out.glob("*/models/*"),
        *out.glob("_reference/**/*"),
        *out.glob(".work/**/*"),
    ]  # a worker started by re-scoring would leave files there
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in files if p.is_file()}


# --------------------------------------------------------------------------- the rubric file


def test_default_rubric_is_the_assignments_grid():
    rubric = load_rubric()
    assert [c.id for c in rubric.criteria] == CRITERIA
    assert [c.max_points for c in rubric.criteria] == [4, 6, 4, 3, 3] and rubric.max_total == 20
    assert rubric.source.startswith("default.toml")


def test_an_unreadable_submission_scores_zero_with_its_reason():
    score = failed_score(load_rubric(), "Syntax error in cell 3, line 2", Translator("en"))
    assert score.total == 0 and score.max_total == 20
    assert [(c.id, c.points, c.reason) for c in score.criteria] == [
        (cid, 0.0, "Syntax error in cell 3, line 2") for cid in CRITERIA
    ]


def test_modified_rubric_file_is_valid(tmp_path):
    rubric = load_rubric(rubric_with_thresholds(tmp_path / "generous.toml", GENEROUS))
    improvement = next(c for c in rubric.criteria if c.id == "improvement")
    assert improvement.params["thresholds"] == [{"min_gain_pp": -1000.0, "points": 4}]
    assert improvement.params["use_significance"] is False
    assert rubric.source.startswith("generous.toml")


# --------------------------------------------------------------------------- re-scoring a graded class


@pytest.fixture(scope="module")
def rescored(graded, tmp_path_factory):
    """A copy of the graded class, re-scored with generous improvement thresholds."""
    folder = tmp_path_factory.mktemp("rescored")
    out = copy_of(graded, folder / "out")
    before = {r.student: r for r in graded.summary.results}
    trained = training_outputs(out)
    results = rescore(out, rubric_path=rubric_with_thresholds(folder / "generous.toml", GENEROUS))
    return out, before, {r.student: r for r in results}, trained


@pytest.mark.slow
def test_rescore_applies_the_changed_threshold(rescored):
    out, before, after, _ = rescored
    assert set(after) == set(before) == {"baseline_only", "module_student", FOLDER_STUDENT, "broken"}
    for student, result in after.items():
        old = before[student]
        assert result.score.rubric.startswith("generous.toml")
        assert criterion(result.score, "improvement").points == expected_improvement(result, GENEROUS)
        for cid in ("code_quality", "modifications", "analysis", "documentation"):
            assert criterion(result.score, cid).points == criterion(old.score, cid).points, (student, cid)
        assert result.score.total == pytest.approx(sum(c.points for c in result.score.criteria))
        assert result.models == old.models  # nothing retrained or re-evaluated
        assert SubmissionResult.read(out / student / "result.json").score == result.score
    # students with a trained improved model get the 4 points; the others cannot
    assert criterion(after["module_student"].score, "improvement").points == 4
    assert criterion(after[FOLDER_STUDENT].score, "improvement").points == 4
    assert criterion(after["baseline_only"].score, "improvement").points == 0
    assert after["broken"].score.total == 0
    changed = after["module_student"].score.total - before["module_student"].score.total
    assert changed == pytest.approx(4 - criterion(before["module_student"].score, "improvement").points)


@pytest.mark.slow
def test_rescore_rewrites_grades_csv(rescored):
    out, _, after, _ = rescored
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    by_student = {row[0]: dict(zip(header, row)) for row in rows[1:]}
    for student, result in after.items():
        assert float(by_student[student]["total"]) == pytest.approx(result.score.total)
        assert float(by_student[student]["improvement"]) == criterion(result.score, "improvement").points


@pytest.mark.slow
def test_rescore_trains_nothing(rescored):
    out, _, _, trained = rescored
    assert any(name.endswith("training.json") for name in trained)
    assert training_outputs(out) == trained


@pytest.mark.slow
def test_the_protocol_graded_under_is_kept_for_rescoring(graded, protocol_path):
    """`harness score` reads OUT/protocol.toml (the tests grade with their own protocol file, not the
    bundled one): the file kept is the one graded under, as the results' protocol hash says."""
    import hashlib

    kept = (graded.out / "protocol.toml").read_bytes()
    assert kept == protocol_path.read_bytes()
    assert hashlib.sha256(kept).hexdigest() == graded.result("baseline_only").run.protocol_sha256
    assert (graded.out / "rubric.toml").read_bytes() == bundled("rubric", "default.toml").read_bytes()
    assert not list(graded.out.glob("overrides.*"))


@pytest.mark.slow
def test_a_rescored_class_keeps_its_rubric_for_the_next_score(rescored):
    """After `harness score OUT --rubric generous.toml`, a plain `harness score OUT` (an override
    added, say) keeps the generous rubric instead of going back to the bundled one."""
    out, _, after, _ = rescored
    assert (out / "rubric.toml").read_bytes() != bundled("rubric", "default.toml").read_bytes()
    again = {r.student: r for r in rescore(out)}
    assert {s: r.score.total for s, r in again.items()} == {s: r.score.total for s, r in after.items()}


@pytest.mark.slow
def test_cli_score_then_report(graded, tmp_path, capsys):
    out = copy_of(graded, tmp_path / "out")
    trained = training_outputs(out)
    strict = rubric_with_thresholds(tmp_path / "strict.toml", STRICT)
    assert main(["score", str(out), "--rubric", str(strict)]) == 1  # the broken notebook is still unreadable
    assert "nothing retrained" in capsys.readouterr().out
    for path in out.glob("*/result.json"):
        result = SubmissionResult.read(path)
        assert criterion(result.score, "improvement").points == 0
        assert result.score.rubric.startswith("strict.toml")
    (out / "index.html").unlink()
    (out / "module_student" / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "index.html").is_file() and (out / "module_student" / "report.html").is_file()
    page = (out / "module_student" / "report.html").read_text(encoding="utf-8")
    assert 'lang="fr"' in page and "module_student" in page
    assert "module_student/report.html" in (out / "index.html").read_text(encoding="utf-8")
    assert training_outputs(out) == trained


def test_cli_score_on_a_folder_without_results_exits_2(tmp_path, capsys):
    assert main(["score", str(tmp_path)]) == 2
    assert "no stored results" in capsys.readouterr().err
