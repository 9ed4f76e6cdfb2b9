"""CI mode: summary.json, JUnit XML, exit codes, and the example workflow for a course repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import FIXTURES, REPO, SAMPLES, needs_bwrap, run_info

from harness.cli import main
from harness.pipeline import BatchSummary
from harness.report.ci import EXIT_FAILED, EXIT_PASSED, Expectation, load_expectations, write_ci
from harness.results import CriterionScore, ModelResult, Score, SubmissionResult

WORKFLOW = REPO / "docs" / "ci-example.yml"
ADVERSARIAL = FIXTURES / "adversarial"
EXPECTED_FILES = (SAMPLES / "expected.toml", ADVERSARIAL / "expected.toml")


def result(student: str, status: str, total: float, models: list[tuple[str, str, float | None]]) -> SubmissionResult:
    criteria = [CriterionScore(id="code_quality", title="Code", points=total, max_points=20, reason="r")]
    return SubmissionResult(
        student=student,
        status=status,
        submission_sha256="x",
        source=f"{student}.ipynb",
        run=run_info(profile="tiny", language="en", started_at="now", command="harness"),
        reason=None if status == "ok" else "something went wrong",
        score=Score(total=total, max_total=20, criteria=criteria, rubric="default"),
        models=[
            ModelResult(
                name=name,
                role="baseline" if name.startswith("create_baseline") else "improved",
                status=model_status,
                test_accuracy=accuracy,
                train_seconds=1.5,
                reason=None if model_status == "ok" else "boom",
            )
            for name, model_status, accuracy in models
        ],
    )


def batch() -> BatchSummary:
    return BatchSummary(
        results=[
            result("alice", "ok", 15, [("create_baseline_model", "ok", 0.98), ("create_improved_model_1", "ok", 0.99)]),
            result(
                "bob", "partial", 9, [("create_baseline_model", "ok", 0.97), ("create_improved_model_1", "error", None)]
            ),
            result("broken", "invalid", 0, []),
        ],
        reference=ModelResult(name="reference", role="reference", status="ok", test_accuracy=0.985),
        seconds=12.0,
    )


def test_summary_and_junit_have_one_case_per_submission_and_model(tmp_path, monkeypatch):
    step_summary = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    code, document = write_ci(batch(), tmp_path, expectations={"broken": Expectation("invalid")})
    assert code == EXIT_FAILED == document["exit_code"]  # bob is partial, expected ok
    by_student = {e["student"]: e for e in document["submissions"]}
    assert by_student["alice"]["passed"] and by_student["broken"]["passed"]
    assert not by_student["bob"]["passed"] and "expected ok" in by_student["bob"]["problems"][0]
    assert document["counts"]["passed"] == 2 and document["counts"]["partial"] == 1
    assert (tmp_path / "ci" / "summary.json").is_file()
    root = ET.parse(tmp_path / "ci" / "junit.xml").getroot()
    cases = [(c.get("classname"), c.get("name"), c.find("failure") is not None) for c in root.iter("testcase")]
    assert cases == [
        ("alice", "submission", False),
        ("alice", "create_baseline_model", False),
        ("alice", "create_improved_model_1", False),
        ("bob", "submission", True),
        ("bob", "create_baseline_model", False),
        ("bob", "create_improved_model_1", True),
        ("broken", "submission", False),
    ]
    assert root.get("tests") == "7" and root.get("failures") == "2"
    assert "| bob | partial | ok |" in step_summary.read_text()


def test_exit_codes_follow_expectations_and_the_minimum_score(tmp_path):
    summary = batch()
    summary.results = summary.results[:1]  # alice only: 15/20
    assert write_ci(summary, tmp_path)[0] == EXIT_PASSED
    assert write_ci(summary, tmp_path, min_score=15)[0] == EXIT_PASSED
    code, document = write_ci(summary, tmp_path, min_score=16)
    assert code == EXIT_FAILED and "below the minimum of 16" in document["submissions"][0]["problems"][0]
    code, document = write_ci(summary, tmp_path, expectations={"alice": Expectation("ok"), "zoe": Expectation("ok")})
    assert code == EXIT_FAILED and document["missing"][0]["student"] == "zoe"  # an expected student is missing
    root = ET.parse(tmp_path / "ci" / "junit.xml").getroot()
    assert any(c.get("classname") == "zoe" and c.find("failure") is not None for c in root.iter("testcase"))


def test_expectations_file(tmp_path):
    path = tmp_path / "expected.toml"
    path.write_text(
        '[students]\nbroken = "invalid"\n"Zoé Martin" = { status = "ok", min_score = 8 }\n', encoding="utf-8"
    )
    assert load_expectations(path) == {"broken": Expectation("invalid"), "Zoé Martin": Expectation("ok", 8)}
    path.write_text('[students]\nbroken = "kaput"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="broken"):
        load_expectations(path)
    # a bad expectations file stops `harness grade --ci` with exit 2 before anything is trained
    assert (
        main(["grade", str(SAMPLES / "broken.ipynb"), "--ci", "--expect", str(path), "--out", str(tmp_path / "o")]) == 2
    )
    assert not (tmp_path / "o").exists()
    assert load_expectations(SAMPLES / "expected.toml")["broken"] == Expectation("invalid")
    path.write_text('[students]\nx = { status = "failed", models = { f = "exploded" } }\n', encoding="utf-8")
    with pytest.raises(ValueError, match="out_of_memory"):
        load_expectations(path)


def test_model_expectations_check_how_a_submission_failed(tmp_path):
    """A hostile sample that fails for the wrong reason (an error instead of a timeout) does not pass."""
    summary = batch()
    summary.results = summary.results[1:2]  # bob: baseline ok, improved_1 error
    right = Expectation("partial", models={"create_improved_model_1": "error"})
    assert write_ci(summary, tmp_path, expectations={"bob": right})[0] == EXIT_PASSED
    wrong = Expectation("partial", models={"create_improved_model_1": "timeout", "create_improved_model_2": "ok"})
    code, document = write_ci(summary, tmp_path, expectations={"bob": wrong})
    assert code == EXIT_FAILED
    assert document["submissions"][0]["problems"] == [
        "create_improved_model_1: error, expected timeout: boom",
        "create_improved_model_2: expected ok, not graded",
    ]


# --------------------------------------------------------------------------- the example workflow


def workflow_steps() -> tuple[dict, list[dict]]:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    job = workflow["jobs"]["grade"]
    return workflow.get("env", {}), job["steps"]


def test_example_workflow_is_well_formed():
    env, steps = workflow_steps()
    assert {"HARNESS_PROFILE", "SOLUTION", "SAMPLES", "MIN_SOLUTION_SCORE"} <= set(env)
    runs = [s["run"] for s in steps if "run" in s]
    grading = [r for r in runs if "harness grade" in r]
    assert len(grading) == 2 and all("--ci" in r for r in grading)
    assert any("--min-score" in r for r in grading) and any("--expect" in r for r in grading)
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["with"]["path"] == "grading/"


# The workflow test grades a few of each kind, not all 19: the demo class and the hostile samples are
# each graded in full by their own tests (conftest.py's `graded`, tests/sandbox/test_adversarial.py).
WORKFLOW_DEMO = ["baseline_only.ipynb", "broken.ipynb", "top_level_models.ipynb", "README.md"]
WORKFLOW_HOSTILE = ["adv_network.py", "adv_wrong_outputs.py", "not_json"]


def course_samples(folder: Path) -> dict[str, Expectation]:
    """Demo students with hostile samples in a subfolder, as a course's submissions/ folder, and one
    expected.toml for both, limited to those students (the workflow reads $SAMPLES/expected.toml)."""
    folder.mkdir(parents=True)
    for source, names, dest in (
        (SAMPLES, WORKFLOW_DEMO, folder),
        (ADVERSARIAL, WORKFLOW_HOSTILE, folder / "adversarial"),
    ):
        dest.mkdir(exist_ok=True)
        for name in names:
            copy = shutil.copytree if (source / name).is_dir() else shutil.copy2
            copy(source / name, dest / name)
    present = {Path(n).stem for n in WORKFLOW_DEMO + WORKFLOW_HOSTILE}
    lines = ["[students]"]
    for path in EXPECTED_FILES:
        for student, entry in tomllib.loads(path.read_text(encoding="utf-8"))["students"].items():
            if student in present:
                lines.append(f"{json.dumps(student)} = {_inline_toml(entry)}")
    (folder / "expected.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_expectations(folder / "expected.toml")


def _inline_toml(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_inline_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def test_every_expected_student_is_in_its_folder():
    """The expectations follow the samples they describe (the hostile ones moved out of submissions/)."""
    for path in EXPECTED_FILES:
        students = {p.stem for p in path.parent.iterdir() if p.suffix in (".ipynb", ".py") or p.is_dir()}
        assert set(load_expectations(path)) <= students, path


@pytest.mark.slow
@needs_bwrap  # hostile samples: never run them unsandboxed
def test_example_workflow_runs_as_written(tmp_path, mnist_arrays):
    """The workflow's `harness grade` steps, verbatim, with its env block, in a course repository laid out
    as it documents: solution/ (a sample notebook) and submissions/, a copy of this repository's demo
    class plus the hostile samples, with their expected.toml. The set-up steps (checkout, apt-get,
    pip install, caches) are GitHub's; MNIST comes from a local subset."""
    env_block, steps = workflow_steps()
    repo = tmp_path / "course"
    (repo / "solution").mkdir(parents=True)
    shutil.copy2(SAMPLES / "failing_cell.ipynb", repo / "solution" / "solution.ipynb")
    expected = course_samples(repo / "submissions")
    data = tmp_path / "mnist-subset.npz"
    np.savez(
        data,
        x_train=mnist_arrays["x_train"][:1000],
        y_train=mnist_arrays["y_train"][:1000],
        x_test=mnist_arrays["x_test"][:300],
        y_test=mnist_arrays["y_test"][:300],
    )
    env = {
        **os.environ,
        **{k: str(v) for k, v in env_block.items()},
        "HARNESS_MNIST_NPZ": str(data),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    grading = [s for s in steps if "harness grade" in s.get("run", "")]
    for step in grading:
        done = subprocess.run(
            ["bash", "-e", "-c", step["run"]], cwd=repo, env=env, capture_output=True, text=True, timeout=3000
        )
        assert done.returncode == 0, (
            f"{step['name']}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    solution = yaml.safe_load((repo / "grading" / "solution" / "ci" / "summary.json").read_text())
    assert solution["passed"] and solution["submissions"][0]["status"] == "ok"
    assert solution["submissions"][0]["total"] >= float(env_block["MIN_SOLUTION_SCORE"])
    samples = yaml.safe_load((repo / "grading" / "samples" / "ci" / "summary.json").read_text())
    statuses = {e["student"]: e["status"] for e in samples["submissions"]}
    assert len(statuses) == 6 and all(e["passed"] for e in samples["submissions"]), samples["submissions"]
    assert {s: statuses[s] for s in expected} == {s: e.status for s, e in expected.items()}
    assert statuses["baseline_only"] == statuses["top_level_models"] == "ok"
    wrong = next(e for e in samples["submissions"] if e["student"] == "adv_wrong_outputs")
    assert [m["status"] for m in wrong["models"]] == ["invalid"] * 4
    assert any(i["name"].endswith("expected.toml") for i in samples["ignored"])
    junit = ET.parse(repo / "grading" / "samples" / "ci" / "junit.xml").getroot()
    models = sum(len(e["models"]) for e in samples["submissions"])
    assert int(junit.get("tests")) == len(statuses) + models and junit.get("failures") == "0"
    assert "harness grade: passed" in (tmp_path / "step-summary.md").read_text()
