"""Gradebook exports for Moodle and Canvas, written beside ``grades.csv``.

Students are matched to LMS accounts through an optional roster CSV (``--roster FILE``) with a
``student`` column (the harness's student id: file or folder name) and any of ``email``,
``id_number``, ``username``, ``canvas_id``, ``sis_user_id``, ``sis_login_id``, ``section``.
Without a roster the identity columns are left empty and the name is the student id.

* ``moodle_grades.csv`` — for Moodle's *Grades › Import › CSV file*: ``Full name``,
  ``Email address``, ``ID number``, ``Username``, then the grade column (out of the rubric's
  maximum) and ``Feedback``. In the import form, map one identity column ("Email address" is
  the usual choice) to the matching user field and the grade column to the assignment.
* ``canvas_grades.csv`` — Canvas's gradebook import layout: ``Student``, ``ID``,
  ``SIS User ID``, ``SIS Login ID``, ``Section``, then one column named after the assignment
  (Canvas creates the assignment when the header is new, or use ``Name (id)`` of an existing one),
  and a first data row ``Points Possible``. Canvas matches rows on ID, SIS User ID or SIS Login ID.

>>> write_lms_exports(Path("out"), results, assignment="Mini-projet MNIST")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
from pathlib import Path

from harness.results import SubmissionResult

MOODLE_HEADER = ["Full name", "Email address", "ID number", "Username"]
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
ROSTER_COLUMNS = {"student", "email", "id_number", "username", "canvas_id", "sis_user_id", "sis_login_id", "section"}


def read_roster(path: Path | None) -> dict[str, dict[str, str]]:
    """student id -> identity fields, from a roster CSV (UTF-8, comma separated)."""
    if path is None:
        return {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "student" not in reader.fieldnames:
            raise ValueError(
                f"{path}: a roster needs a 'student' column (and any of "
                f"{', '.join(sorted(ROSTER_COLUMNS - {'student'}))})"
            )
        return {
            row["student"].strip(): {k: (v or "").strip() for k, v in row.items() if k in ROSTER_COLUMNS}
            for row in reader
            if row.get("student")
        }


def _feedback(result: SubmissionResult) -> str:
    if result.score is None:
        return result.reason or ""
    parts = [f"{c.title}: {c.points:g}/{c.max_points:g}" for c in result.score.criteria]
    return "; ".join(parts) + f" — report: {result.student}/report.html"


def write_lms_exports(
    out: Path,
    results: list[SubmissionResult],
    assignment: str = "MNIST mini-project",
    roster: dict[str, dict[str, str]] | None = None,
) -> tuple[Path, Path]:
    """Write ``OUT/moodle_grades.csv`` and ``OUT/canvas_grades.csv`` (totals, roster columns); return their paths."""
    roster = roster or {}
    maximum = next((r.score.max_total for r in results if r.score), 20.0)
    moodle, canvas = out / "moodle_grades.csv", out / "canvas_grades.csv"
    with open(moodle, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*MOODLE_HEADER, f"{assignment} (/{maximum:g})", "Feedback"])
        for result in results:
            who = roster.get(result.student, {})
            writer.writerow(
                [
                    result.student,
                    who.get("email", ""),
                    who.get("id_number", ""),
                    who.get("username", ""),
                    f"{result.score.total:g}" if result.score else "0",
                    _feedback(result),
                ]
            )
    with open(canvas, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*CANVAS_HEADER, assignment])
        writer.writerow(["Points Possible", "", "", "", "", f"{maximum:g}"])
        for result in results:
            who = roster.get(result.student, {})
            writer.writerow(
                [
                    result.student,
                    who.get("canvas_id", ""),
                    who.get("sis_user_id", ""),
                    who.get("sis_login_id", ""),
                    who.get("section", ""),
                    f"{result.score.total:g}" if result.score else "0",
                ]
            )
    return moodle, canvas
