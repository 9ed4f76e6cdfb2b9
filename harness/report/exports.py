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
* ``overrides_template.csv`` — the instructor's overrides file (harness/scoring/overrides.py) pre-filled
  with the class: one row per student and criterion with its current points, the columns to fill
  empty (or holding the overrides already applied); rows left as they are change nothing.

The assignment's name (Moodle's grade item, Canvas's column) and Canvas id are options of ``harness
grade`` and ``harness report`` (``--assignment``, ``--assignment-id``), kept in ``OUT/lms.toml`` so that
``harness score`` and a later ``harness report`` write the same columns.
* ``moodle_grades_excel.csv`` — the Moodle file for a spreadsheet in French: UTF-8 with a byte-order
  mark (else Excel reads "ZoÃ©"), ``;`` between fields and decimal commas.

A submission that was not graded (unreadable, or no model trained) gets an empty grade, never 0: the
LMS leaves the gradebook cell as it was, and the feedback says why.

>>> write_lms_exports(Path("out"), results, Translator("fr"), assignment="Mini-projet MNIST")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.results import SubmissionResult
from harness.util.i18n import Translator

MOODLE_HEADER = ["Full name", "Email address", "ID number", "Username"]
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
ROSTER_COLUMNS = {"student", "email", "id_number", "username", "canvas_id", "sis_user_id", "sis_login_id", "section"}
UNGRADED = ("failed", "invalid")  # no grade to publish: the cell stays empty
LMS_FILE = "lms.toml"  # the assignment's name and Canvas id, kept between runs
OVERRIDES_TEMPLATE = "overrides_template.csv"
# what harness/scoring/overrides.py reads, after columns that only inform (they are not read back)
TEMPLATE_HEADER = ["student", "criterion", "title", "max_points", "current_points", "auto_points"]
TEMPLATE_EDITED = ["points", "delta", "clear_flags", "comment"]


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


def moodle_rows(results, roster, t: Translator, assignment: str, dialect=PLAIN) -> list[list[str]]:
    """Moodle's CSV grade import: identity columns, the grade column named as the grade item (the instructor
    maps it to that item in the import form), the feedback."""
    rows = [[*MOODLE_HEADER, assignment, "Feedback"]]
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


def keep_assignment(out: Path, name: str | None = None, assignment_id: str | None = None) -> None:
    """Remember the assignment's name and Canvas id in ``OUT/lms.toml`` (what is not given is kept as it was)."""
    kept = {k: v for k, v in _kept_assignment(out).items() if v}
    kept.update({k: v for k, v in (("name", name), ("canvas_id", assignment_id)) if v})
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in sorted(kept.items())]
    (out / LMS_FILE).write_text(
        "# harness --assignment / --assignment-id\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )


def _kept_assignment(out: Path) -> dict[str, str]:
    path = out / LMS_FILE
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def assignment_of(out: Path, t: Translator) -> tuple[str, str | None]:
    """(the assignment's name, its Canvas id or None): as kept in ``OUT/lms.toml``, else the course's default name."""
    kept = _kept_assignment(out)
    return kept.get("name") or t("export_assignment"), kept.get("canvas_id") or None


def write_lms_exports(
    out: Path,
    results: list[SubmissionResult],
    t: Translator,
    assignment: str | None = None,
    roster: dict[str, dict[str, str]] | None = None,
    assignment_id: str | None = None,
) -> list[str]:
    """Write the Moodle file (plain and Excel), the Canvas file; return the warnings (unmatched students).
    The assignment's name and id default to those kept in ``OUT/lms.toml``."""
    roster = roster or {}
    kept_name, kept_id = assignment_of(out, t)
    assignment, assignment_id = assignment or kept_name, assignment_id or kept_id
    maximum = next((r.score.max_total for r in results if r.score), 20.0)
    _write(out / "moodle_grades.csv", moodle_rows(results, roster, t, assignment), PLAIN)
    _write(out / "moodle_grades_excel.csv", moodle_rows(results, roster, t, assignment, EXCEL_FR), EXCEL_FR)
    _write(out / "canvas_grades.csv", canvas_rows(results, roster, assignment, assignment_id, maximum), PLAIN)
    missing = unmatched(results, roster)
    return [t("export_unmatched", n=len(missing), students=", ".join(missing))] if missing else []


def _template_row(student: str, criterion) -> list[str]:
    """One student's criterion: what informs (title, points), then the override already applied, if any."""
    auto = criterion.auto_points if criterion.auto_points is not None else criterion.points
    overridden = criterion.instructor_points is not None
    informs = [
        student,
        criterion.id,
        criterion.title,
        *(f"{v:g}" for v in (criterion.max_points, criterion.points, auto)),
    ]
    applied = (
        [f"{criterion.instructor_points:g}", "", "", criterion.instructor_comment or ""] if overridden else [""] * 4
    )
    return informs + applied


def write_overrides_template(out: Path, results: list[SubmissionResult]) -> Path:
    """``OUT/overrides_template.csv``: one row per student and criterion with the current points, ready for
    ``harness score OUT --overrides``. Overrides already applied are filled in, so that the edited template
    keeps them (an overrides file replaces the previous one); UTF-8 with a BOM, for spreadsheets."""
    rows = [[*TEMPLATE_HEADER, *TEMPLATE_EDITED]]
    for result in results:
        for criterion in result.score.criteria if result.score else []:
            rows.append(_template_row(result.student, criterion))
    return _write(out / OVERRIDES_TEMPLATE, rows, Dialect(encoding="utf-8-sig"))
