"""One submission never stops the batch: an exception of the harness's own, in any stage, becomes that
submission's ``failed`` result (stage, error and traceback kept) and the others are graded."""

from __future__ import annotations

import shutil

import pytest
from conftest import FIXTURES, run_grade

from harness.analysis import analyse
from harness.pipeline import submission
from harness.report import render

VICTIM = "bruno"


def _tiny_class(tmp_path):
    """Three students handing in the same tiny submission (a baseline and one improved model)."""
    klass = tmp_path / "class"
    klass.mkdir()
    for student in ("ada", VICTIM, "chloe"):
        shutil.copy2(FIXTURES / "tiny_submission.py", klass / f"{student}.py")
    return klass


def _raise_for_victim(original, is_victim):
    def patched(*args, **kwargs):
        if is_victim(*args, **kwargs):
            raise RuntimeError("injected fault")
        return original(*args, **kwargs)

    return patched


# (stage, module, attribute, how to tell the victim's call from the arguments)
INJECTIONS = [
    ("ingest", submission, "ingest_path", lambda path, student, **_: student == VICTIM),
    ("train", submission, "train_and_evaluate", lambda *a, **k: k.get("student") == VICTIM),
    ("analyse", analyse, "analyze_models", lambda models, models_dir, *a, **k: VICTIM in models_dir.parts),
    ("score", submission, "score_result", lambda rubric, t, result, *a, **k: result.student == VICTIM),
]


@pytest.mark.slow
@pytest.mark.parametrize("stage, module, attribute, is_victim", INJECTIONS, ids=[i[0] for i in INJECTIONS])
def test_an_exception_in_any_stage_leaves_the_others_graded(
    stage, module, attribute, is_victim, monkeypatch, tmp_path, mnist_npz, protocol_path, stage_cache, suite_path
):
    klass = _tiny_class(tmp_path)
    monkeypatch.setattr(module, attribute, _raise_for_victim(getattr(module, attribute), is_victim))
    graded = run_grade(
        [klass],
        tmp_path / "out",
        protocol=protocol_path,
        data=mnist_npz,
        cache=stage_cache,
        suite=suite_path,
        workers=2,
    )
    results = graded.by_student()
    assert {s: r.status for s, r in results.items()} == {"ada": "ok", "bruno": "failed", "chloe": "ok"}
    victim = graded.result(VICTIM)
    assert victim.internal_error is not None and victim.internal_error.stage == stage
    assert "injected fault" in victim.internal_error.traceback and "injected fault" in victim.reason
    assert victim.score is not None and victim.score.total == 0
    grades = (graded.out / "grades.csv").read_text(encoding="utf-8").splitlines()
    assert len(grades) == 4 and any(line.startswith("bruno,failed") for line in grades)
    assert (graded.out / VICTIM / "report.html").is_file() and (graded.out / "index.html").is_file()


@pytest.mark.slow
def test_a_report_that_cannot_be_drawn_costs_only_itself(
    monkeypatch, tmp_path, mnist_npz, protocol_path, stage_cache, suite_path
):
    klass = _tiny_class(tmp_path)
    original = render.render_student

    def failing(out, result, *args, **kwargs):
        if result.student == VICTIM:
            raise RuntimeError("injected drawing fault")
        return original(out, result, *args, **kwargs)

    monkeypatch.setattr(render, "render_student", failing)
    monkeypatch.setattr(submission, "render_student", failing)
    graded = run_grade(
        [klass],
        tmp_path / "out",
        protocol=protocol_path,
        data=mnist_npz,
        cache=stage_cache,
        suite=suite_path,
        workers=2,
    )
    assert {r.status for r in graded.summary.results} == {"ok"}
    assert (graded.out / "grades.csv").is_file() and (graded.out / "index.html").is_file()
    assert any("bruno: report not drawn" in line for line in graded.log)
