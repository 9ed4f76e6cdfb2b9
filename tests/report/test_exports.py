"""Gradebook exports read back the way Moodle's and Canvas's CSV importers read them (their documented
formats), from the session's graded class with a sample roster (conftest.py)."""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
from pathlib import Path

import pytest
from conftest import copy_of

from harness.cli import main
from harness.report.exports import CANVAS_HEADER, MOODLE_HEADER, OVERRIDES_TEMPLATE, TEMPLATE_HEADER, canvas_rows
from harness.results import SubmissionResult

ROSTER = (
    "student;email;id_number;username;canvas_id;sis_user_id;sis_login_id;section\n"
    "baseline_only;b.only@example.edu;B001;bonly;1001;S-B001;bonly;G1\n"
    "broken;broken@example.edu;B002;broken;1002;S-B002;broken;G1\n"
)


@pytest.fixture(scope="module")
def exported(graded, tmp_path_factory):
    """The graded class re-rendered in French with a roster (semicolons, BOM: as a spreadsheet saves it)."""
    out = copy_of(graded, tmp_path_factory.mktemp("exports") / "out")
    roster = out / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8-sig")
    capture = io.StringIO()
    with contextlib.redirect_stderr(capture):
        assert main(["report", str(out), "--roster", str(roster)]) == 0
    return out, capture.getvalue()


def read(path: Path, **options) -> list[list[str]]:
    with open(path, newline="", encoding=options.pop("encoding", "utf-8")) as handle:
        return list(csv.reader(handle, **options))


def results(out: Path) -> dict[str, SubmissionResult]:
    return {p.parent.name: SubmissionResult.read(p) for p in out.glob("*/result.json")}


def test_moodle_file_matches_users_and_leaves_ungraded_blank(exported):
    out, _ = exported
    rows = read(out / "moodle_grades.csv")
    header, body = rows[0], {row[0]: dict(zip(rows[0], row)) for row in rows[1:]}
    # the grade column is named as the grade item (the course's default name, in the report's language)
    assert header[:4] == MOODLE_HEADER and header[4] == "Mini-projet MNIST" and header[5] == "Feedback"
    assert all(len(row) == len(header) for row in rows)
    graded = results(out)
    assert set(body) == set(graded)
    assert body["baseline_only"]["Email address"] == "b.only@example.edu"
    assert body["baseline_only"]["ID number"] == "B001" and body["baseline_only"]["Username"] == "bonly"
    for student, result in graded.items():
        grade = body[student][header[4]]
        if result.status in ("failed", "invalid"):
            assert grade == "" and body[student]["Feedback"].startswith("Pas de note"), student
        else:
            assert 0 <= float(grade) <= 20 and float(grade) == result.score.total
            assert "rapport :" in body[student]["Feedback"]  # in the report's language


def test_canvas_file_has_the_gradebook_layout_and_updates_an_existing_assignment(exported):
    out, _ = exported
    rows = read(out / "canvas_grades.csv")
    assert rows[0][:5] == CANVAS_HEADER and rows[1][0] == "Points Possible" and float(rows[1][5]) == 20
    body = {row[0]: row for row in rows[2:]}
    assert body["baseline_only"][1:5] == ["1001", "S-B001", "bonly", "G1"]
    assert body["broken"][5] == ""  # unreadable: no grade, the gradebook cell is left alone
    # with the assignment's Canvas id, the column is "Name (id)": Canvas updates it instead of creating one
    graded = list(results(out).values())
    header = canvas_rows(graded, {}, "Mini-projet MNIST", "4242", 20)[0]
    assert header[5] == "Mini-projet MNIST (4242)"


def test_excel_variant_has_a_bom_semicolons_and_decimal_commas(exported):
    out, _ = exported
    raw = (out / "moodle_grades_excel.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = read(out / "moodle_grades_excel.csv", encoding="utf-8-sig", delimiter=";")
    plain = read(out / "moodle_grades.csv")
    assert [row[0] for row in rows] == [row[0] for row in plain]
    assert any("é" in row[0] for row in rows[1:])  # the accented student reads back whole
    for excel, comma in zip(rows[1:], plain[1:]):
        assert excel[4] == comma[4].replace(".", ",")


def test_students_missing_from_the_roster_are_reported(exported):
    out, warnings = exported
    unmatched = {p.parent.name for p in out.glob("*/result.json")} - {"baseline_only", "broken"}
    assert unmatched and "absent(s) du fichier d'inscrits" in warnings
    assert all(student in warnings for student in unmatched)
    assert "baseline_only" not in warnings.split("inscrits", 1)[1]


def test_assignment_name_and_id_are_options_kept_for_the_next_runs(exported, tmp_path):
    out = copy_of_folder(exported[0], tmp_path / "out")
    assert main(["report", str(out), "--assignment", "Projet MNIST (groupe B)", "--assignment-id", "4242"]) == 0
    assert main(["report", str(out), "--lang", "en"]) == 0  # a later run without the options keeps them
    canvas = read(out / "canvas_grades.csv")
    assert canvas[0] == [*CANVAS_HEADER, "Projet MNIST (groupe B) (4242)"]  # Canvas updates assignment 4242
    assert canvas[1][0] == "Points Possible" and float(canvas[1][5]) == 20
    moodle = read(out / "moodle_grades.csv")
    assert moodle[0] == [*MOODLE_HEADER, "Projet MNIST (groupe B)", "Feedback"]  # Moodle's grade item
    assert read(out / "moodle_grades_excel.csv", encoding="utf-8-sig", delimiter=";")[0][4] == "Projet MNIST (groupe B)"


def copy_of_folder(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, copy_function=shutil.copy2)
    return dest


def test_the_overrides_template_lists_the_class_and_applies_once_edited(exported, tmp_path):
    out = copy_of_folder(exported[0], tmp_path / "out")
    assert OVERRIDES_TEMPLATE in (out / "index.html").read_text(encoding="utf-8")  # linked from the dashboard
    with open(out / OVERRIDES_TEMPLATE, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    graded = results(out)
    expected = {(s, c.id): c.points for s, r in graded.items() if r.score for c in r.score.criteria}
    assert list(rows[0])[: len(TEMPLATE_HEADER)] == TEMPLATE_HEADER
    assert {(r["student"], r["criterion"]): float(r["current_points"]) for r in rows} == expected
    assert all(r["points"] == r["delta"] == r["comment"] == "" for r in rows)  # nothing overridden yet
    # the instructor fills in one row and leaves the others as they are
    student = "baseline_only"
    row = next(r for r in rows if r["student"] == student and r["criterion"] == "analysis")
    row["points"], row["comment"] = "2,5", "Analyse relue : bonne"  # a French decimal comma, as typed
    edited = tmp_path / "overrides.csv"
    with open(edited, "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=";")  # as a French spreadsheet saves it
        writer.writeheader()
        writer.writerows(rows)
    assert main(["score", str(out), "--overrides", str(edited)]) in (0, 1)  # 1: the unreadable notebook
    after = results(out)
    analysis = next(c for c in after[student].score.criteria if c.id == "analysis")
    assert analysis.points == 2.5 and analysis.instructor_comment == "Analyse relue : bonne"
    others = {(s, c.id): c.points for s, r in after.items() if r.score for c in r.score.criteria}
    assert {k: v for k, v in others.items() if k != (student, "analysis")} == {
        k: v for k, v in expected.items() if k != (student, "analysis")
    }
    # the next template carries the override, so that editing it again keeps it
    with open(out / OVERRIDES_TEMPLATE, newline="", encoding="utf-8-sig") as handle:
        again = {(r["student"], r["criterion"]): r for r in csv.DictReader(handle)}
    assert again[(student, "analysis")]["points"] == "2.5" and again[(student, "analysis")]["current_points"] == "2.5"
