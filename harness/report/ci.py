"""``harness grade --ci``: a machine-readable summary and exit codes a course repository's CI gates on.

Written to ``OUT/ci/`` after grading:

* ``summary.json`` — one entry per submission (status, total, points per criterion, each model's
  status and test accuracy, whether it passed and why not), the files that were not graded and
  why, and the overall verdict;
* ``junit.xml`` — JUnit XML, one test case per submission (``<student>``/``submission``) and one
  per model (``<student>``/``<factory>``): CI systems show them as tests.

On GitHub Actions (``$GITHUB_STEP_SUMMARY`` set) a Markdown table is appended to the job summary.

A submission **passes** when its status is the one expected (``ok`` unless an expectations file
says otherwise, e.g. a sample that is broken on purpose) and, when it is expected ``ok``, its total
is at least ``--min-score``. Exit codes: ``0`` every submission passed; ``1`` at least one did not
(or an expected submission is missing); ``2`` the run could not start (usage or data error, as for
every command).

Expectations file (TOML)::

    # status expected per student id; the others are expected "ok"
    [students]
    broken = "invalid"
    "Zoé Martin" = { status = "ok", min_score = 8 }
    # and, optionally, the status of named models (a hostile sample must fail the right way)
    adv_infinite_loop = { status = "failed", models = { create_improved_model_1 = "timeout" } }

>>> code = write_ci(summary, Path("grading"), min_score=10)   # doctest: +SKIP
"""

from __future__ import annotations

import os
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

from harness import __version__
from harness.results import ModelStatus, SubmissionResult
from harness.util.atomic import write_json_atomic

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
CI_DIR = "ci"
STATUSES = ("ok", "partial", "failed", "invalid")
MODEL_STATUSES = get_args(ModelStatus)


@dataclass(frozen=True)
class Expectation:
    """A submission's expected outcome in CI: its status, its own minimum total, and the status of named models."""

    status: str = "ok"
    min_score: float | None = None
    models: dict[str, str] = field(default_factory=dict)  # factory -> expected model status


def load_expectations(path: Path | None) -> dict[str, Expectation]:
    """Expected outcome per student id, from a TOML file (see the module docstring)."""
    if path is None:
        return {}
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    table = data.get("students", {})
    if not isinstance(table, dict):
        raise ValueError(f"{path}: [students] must be a table of student id = status")
    expectations = {}
    for student, value in table.items():
        if isinstance(value, str):
            value = {"status": value}
        if not isinstance(value, dict) or value.get("status", "ok") not in STATUSES:
            raise ValueError(
                f"{path}: students.{student!r} must be one of {', '.join(STATUSES)} "
                "or {{ status = ..., min_score = ... }}"
            )
        unknown = set(value) - {"status", "min_score", "models"}
        if unknown:
            raise ValueError(f"{path}: students.{student!r}: unknown key(s) {', '.join(sorted(unknown))}")
        models = value.get("models", {})
        if not isinstance(models, dict) or any(status not in MODEL_STATUSES for status in models.values()):
            raise ValueError(
                f"{path}: students.{student!r}.models must map factory names to one of {', '.join(MODEL_STATUSES)}"
            )
        expectations[student] = Expectation(value.get("status", "ok"), value.get("min_score"), dict(models))
    return expectations


def judge(result: SubmissionResult, expected: Expectation, min_score: float | None) -> list[str]:
    """Why `result` does not pass (empty: it passes)."""
    problems = []
    if result.status != expected.status:
        problems.append(
            f"status {result.status}, expected {expected.status}" + (f": {result.reason}" if result.reason else "")
        )
    threshold = expected.min_score if expected.min_score is not None else min_score
    if (
        expected.status == "ok"
        and threshold is not None
        and result.score is not None
        and result.score.total < threshold
    ):
        problems.append(f"total {result.score.total:g} below the minimum of {threshold:g}")
    statuses = {m.name: m for m in result.models}
    for name, status in expected.models.items():
        model = statuses.get(name)
        if model is None:
            problems.append(f"{name}: expected {status}, not graded")
        elif model.status != status:
            problems.append(
                f"{name}: {model.status}, expected {status}" + (f": {model.reason}" if model.reason else "")
            )
    return problems


def ci_summary(
    summary, out: Path, min_score: float | None = None, expectations: dict[str, Expectation] | None = None
) -> dict:
    """The summary.json document for a grading run (`summary`: harness.pipeline.BatchSummary)."""
    expectations = expectations or {}
    entries = []
    for result in summary.results:
        expected = expectations.get(result.student, Expectation())
        problems = judge(result, expected, min_score)
        entries.append(
            {
                "student": result.student,
                "source": result.source,
                "status": result.status,
                "expected_status": expected.status,
                "passed": not problems,
                "problems": problems,
                "reason": result.reason,
                "total": result.score.total if result.score else None,
                "max_total": result.score.max_total if result.score else None,
                "criteria": {c.id: c.points for c in result.score.criteria} if result.score else {},
                "models": [
                    {
                        "name": m.name,
                        "role": m.role,
                        "status": m.status,
                        "reason": m.reason,
                        "test_accuracy": m.test_accuracy,
                        "train_seconds": m.train_seconds,
                    }
                    for m in result.models
                ],
                "factory_source": "discovered" if result.discovered_models else "functions",
                "execution": (
                    {
                        "status": result.execution.status,
                        "failed_cells": result.execution.failed_cells,
                        "reason": result.execution.reason,
                    }
                    if result.execution
                    else None
                ),
                "report": f"{result.student}/report.html",
            }
        )
    graded = {r.student for r in summary.results}
    missing = sorted(set(expectations) - graded)
    passed = all(e["passed"] for e in entries) and not missing
    run = summary.results[0].run if summary.results else None
    return {
        "harness_version": __version__,
        "out": str(out),
        "profile": run.profile if run else None,
        "seed": run.seed if run else None,
        "started_at": run.started_at if run else None,
        "reference_test_accuracy": summary.reference.test_accuracy if summary.reference else None,
        "min_score": min_score,
        "passed": passed,
        "exit_code": EXIT_PASSED if passed else EXIT_FAILED,
        "counts": {
            "submissions": len(entries),
            "passed": sum(e["passed"] for e in entries),
            "failed": sum(not e["passed"] for e in entries),
            "missing": len(missing),
            **{status: sum(e["status"] == status for e in entries) for status in STATUSES},
        },
        "missing": [{"student": s, "problem": "expected in the expectations file but not found"} for s in missing],
        "submissions": entries,
        "ignored": [{"name": i.name, "reason": i.reason} for i in getattr(summary, "ignored", [])],
        "seconds": round(summary.seconds, 1),
    }


def junit_xml(document: dict) -> ET.ElementTree:
    """One test case per submission and per model; failures carry the reasons."""
    suite = ET.Element("testsuite", name="harness grade")
    if document.get("started_at"):
        suite.set("timestamp", document["started_at"])
    cases = failures = skipped = 0
    for entry in document["submissions"]:
        student = entry["student"]
        case = ET.SubElement(
            suite,
            "testcase",
            classname=student,
            name="submission",
            time=f"{sum((m['train_seconds'] or 0) for m in entry['models']):.1f}",
        )
        cases += 1
        ET.SubElement(case, "system-out").text = (
            f"status {entry['status']} (expected {entry['expected_status']}); total "
            f"{entry['total']}/{entry['max_total']}; " + ", ".join(f"{k} {v:g}" for k, v in entry["criteria"].items())
        )
        if not entry["passed"]:
            failures += 1
            ET.SubElement(
                case, "failure", message="; ".join(entry["problems"])[:500], type=entry["status"]
            ).text = "\n".join(entry["problems"])
        for model in entry["models"]:
            case = ET.SubElement(
                suite, "testcase", classname=student, name=model["name"], time=f"{model['train_seconds'] or 0:.1f}"
            )
            cases += 1
            accuracy = model["test_accuracy"]
            ET.SubElement(case, "system-out").text = f"{model['role']}: {model['status']}" + (
                f", test accuracy {100 * accuracy:.2f} %" if accuracy is not None else ""
            )
            if model["status"] == "skipped":
                skipped += 1
                ET.SubElement(case, "skipped", message=model["reason"] or "skipped")
            elif model["status"] != "ok" and entry["expected_status"] == "ok":
                failures += 1
                ET.SubElement(
                    case, "failure", message=f"{model['status']}: {model['reason']}"[:500], type=model["status"]
                ).text = model["reason"] or ""
    for item in document["missing"]:
        case = ET.SubElement(suite, "testcase", classname=item["student"], name="submission", time="0")
        cases += 1
        failures += 1
        ET.SubElement(case, "failure", message=item["problem"], type="missing")
    if document["ignored"]:
        ET.SubElement(suite, "system-out").text = "\n".join(
            f"ignored {i['name']}: {i['reason']}" for i in document["ignored"]
        )
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    suite.set("time", str(document["seconds"]))
    root = ET.Element("testsuites", name="harness", tests=str(cases), failures=str(failures))
    root.append(suite)
    ET.indent(root)
    return ET.ElementTree(root)


def markdown_table(document: dict) -> str:
    """The CI summary as a Markdown table, one row per submission (and per missing one), for the GitHub job summary."""
    verdict = "passed" if document["passed"] else "FAILED"
    lines = [
        f"### harness grade: {verdict} ({document['counts']['passed']}/{document['counts']['submissions']} "
        f"submissions as expected, profile {document['profile']})",
        "",
        "| student | status | expected | total | passed |",
        "| --- | --- | --- | --- | --- |",
    ]
    for entry in document["submissions"]:
        total = f"{entry['total']:g}/{entry['max_total']:g}" if entry["total"] is not None else "—"
        lines.append(
            f"| {entry['student']} | {entry['status']} | {entry['expected_status']} | {total} | "
            f"{'yes' if entry['passed'] else 'no: ' + '; '.join(entry['problems'])[:200]} |"
        )
    for item in document["missing"]:
        lines.append(f"| {item['student']} | missing | — | — | no |")
    return "\n".join(lines) + "\n"


def write_ci(
    summary,
    out: Path,
    min_score: float | None = None,
    expectations: dict[str, Expectation] | None = None,
    folder: Path | None = None,
) -> tuple[int, dict]:
    """Write OUT/ci/summary.json and junit.xml (and the GitHub job summary); return (exit code, document)."""
    document = ci_summary(summary, out, min_score, expectations)
    folder = Path(folder) if folder else Path(out) / CI_DIR
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "summary.json", document)
    junit_xml(document).write(folder / "junit.xml", encoding="utf-8", xml_declaration=True)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as handle:
                handle.write(markdown_table(document))
        except OSError:
            pass
    return document["exit_code"], document


def print_summary(document: dict, log=print) -> None:
    """Log one PASS/FAIL line per submission and per missing one, then the overall verdict."""
    for entry in document["submissions"]:
        mark = "PASS" if entry["passed"] else "FAIL"
        total = f"{entry['total']:g}/{entry['max_total']:g}" if entry["total"] is not None else "—"
        log(
            f"{mark} {entry['student']}: {entry['status']} (expected {entry['expected_status']}), {total}"
            + (f" — {'; '.join(entry['problems'])}" if entry["problems"] else "")
        )
    for item in document["missing"]:
        log(f"FAIL {item['student']}: {item['problem']}")
    log(
        f"ci: {'passed' if document['passed'] else 'FAILED'} — {document['counts']['passed']}/"
        f"{document['counts']['submissions']} submission(s) as expected; summary.json and junit.xml in "
        f"{Path(document['out']) / CI_DIR}"
    )
