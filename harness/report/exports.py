"""Gradebook exports for Moodle and Canvas, written beside ``grades.csv``.

Students are matched to LMS accounts through an optional roster CSV (``--roster FILE``) with a
``student`` column (the harness's student id: file or folder name) and any of ``email``,
``id_number``, ``username``, ``canvas_id``, ``sis_user_id``, ``sis_login_id``, ``section``.
Without a roster the identity columns are left empty and the name is the student id; with one,
every graded student missing from it is named in a warning (the LMS could not match them).

* ``moodle_grades.csv`` — for Moodle's *Grades › Import › CSV file*: ``Full name``,
  ``Email address``, ``ID number``, ``Username``, then the grade column (out of the rubric's
  maximum) and ``Feedback``. In the import form, map one identity column ("Email address" is
  the usual choice) to the matching user field and the grade column to the assignment.
* ``canvas_grades.csv`` — Canvas's gradebook import layout: ``Student``, ``ID``,
  ``SIS User ID``, ``SIS Login ID``, ``Section``, then one column named ``Name (id)`` when the
  assignment's Canvas id is given (Canvas then updates that assignment; a header without its id
  creates a new one), and a first data row ``Points Possible``. Canvas matches rows on ID,
  SIS User ID or SIS Login ID.
* ``moodle_grades_excel.csv`` — the Moodle file for a spreadsheet in French: UTF-8 with a byte-order
  mark (else Excel reads "ZoÃ©"), ``;`` between fields and decimal commas.

A submission that was not graded (unreadable, or no model trained) gets an empty grade, never 0: the
LMS leaves the gradebook cell as it was, and the feedback says why.

>>> write_lms_exports(Path("out"), results, Translator("fr"), assignment="Mini-projet MNIST")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from harness.results import SubmissionResult
from harness.util.i18n import Translator

MOODLE_HEADER = ["Full name", "Email address", "ID number", "Username"]
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
ROSTER_COLUMNS = {"student", "email", "id_number", "username", "canvas_id", "sis_user_id", "sis_login_id", "section"}
UNGRADED = ("failed", "invalid")  # no grade to publish: the cell stays empty


@dataclass(frozen=True)
class Dialect:
    """How one CSV file is written: encoding, field separator, decimal mark."""

    encoding: str = "utf-8"
    delimiter: str = ","
    decimal: str = "."


PLAIN = Dialect()
EXCEL_FR = Dialect(encoding="utf-8-sig", delimiter=";", decimal=",")


def read_roster(path: Path | None) -> dict[str, dict[str, str]]:
    """student id -> identity fields, from a roster CSV (UTF-8, with or without BOM; comma or semicolon)."""
    if path is None:
        return {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        text = handle.read()
    header = text.splitlines()[0] if text else ""
    # an LMS or a French spreadsheet may export with ";"
    reader = csv.DictReader(text.splitlines(), delimiter=";" if header.count(";") > header.count(",") else ",")
    if not reader.fieldnames or "student" not in reader.fieldnames:
        raise ValueError(
            f"{path}: a roster needs a 'student' column (and any of {', '.join(sorted(ROSTER_COLUMNS - {'student'}))})"
        )
    return {
        row["student"].strip(): {k: (v or "").strip() for k, v in row.items() if k in ROSTER_COLUMNS}
        for row in reader
        if row.get("student")
    }


def unmatched(results: list[SubmissionResult], roster: dict[str, dict[str, str]]) -> list[str]:
    """Graded students without a roster entry (none when there is no roster: nothing to match)."""
    return [r.student for r in results if roster and r.student not in roster]


def _grade(result: SubmissionResult, dialect: Dialect) -> str:
    if result.score is None or result.status in UNGRADED:
        return ""
    return f"{result.score.total:g}".replace(".", dialect.decimal)


def _feedback(result: SubmissionResult, t: Translator) -> str:
    """One line in the report's language: the points per criterion, or why there is no grade."""
    if result.score is None or result.status in UNGRADED:
        return t("export_not_graded", reason=t.stored(result.reason) or t("status_" + result.status))
    parts = [f"{c.title}{t('colon')} {t.points(c.points)}/{t.points(c.max_points)}" for c in result.score.criteria]
    return "; ".join(parts) + " — " + t("export_report", path=f"{result.student}/report.html")


def _write(path: Path, rows: list[list[str]], dialect: Dialect) -> Path:
    with open(path, "w", newline="", encoding=dialect.encoding) as handle:
        csv.writer(handle, delimiter=dialect.delimiter).writerows(rows)
    return path


def moodle_rows(results, roster, t: Translator, assignment: str, maximum: float, dialect=PLAIN) -> list[list[str]]:
    """Moodle's CSV grade import: identity columns, the grade out of ``maximum``, the feedback."""
    rows = [[*MOODLE_HEADER, f"{assignment} (/{maximum:g})", "Feedback"]]
    for result in results:
        who = roster.get(result.student, {})
        identity = [result.student, who.get("email", ""), who.get("id_number", ""), who.get("username", "")]
        rows.append([*identity, _grade(result, dialect), _feedback(result, t)])
    return rows


def canvas_rows(results, roster, assignment: str, assignment_id: str | None, maximum: float) -> list[list[str]]:
    """Canvas's gradebook import: identity columns, one assignment column, the Points Possible row."""
    column = f"{assignment} ({assignment_id})" if assignment_id else assignment
    rows = [[*CANVAS_HEADER, column], ["Points Possible", "", "", "", "", f"{maximum:g}"]]
    for result in results:
        who = roster.get(result.student, {})
        keys = ("canvas_id", "sis_user_id", "sis_login_id", "section")
        rows.append([result.student, *(who.get(k, "") for k in keys), _grade(result, PLAIN)])
    return rows


def write_lms_exports(
    out: Path,
    results: list[SubmissionResult],
    t: Translator,
    assignment: str = "MNIST mini-project",
    roster: dict[str, dict[str, str]] | None = None,
    assignment_id: str | None = None,
) -> list[str]:
    """Write the Moodle file (plain and Excel), the Canvas file; return the warnings (unmatched students)."""
    roster = roster or {}
    maximum = next((r.score.max_total for r in results if r.score), 20.0)
    _write(out / "moodle_grades.csv", moodle_rows(results, roster, t, assignment, maximum), PLAIN)
    _write(out / "moodle_grades_excel.csv", moodle_rows(results, roster, t, assignment, maximum, EXCEL_FR), EXCEL_FR)
    _write(out / "canvas_grades.csv", canvas_rows(results, roster, assignment, assignment_id, maximum), PLAIN)
    missing = unmatched(results, roster)
    return [t("export_unmatched", n=len(missing), students=", ".join(missing))] if missing else []
