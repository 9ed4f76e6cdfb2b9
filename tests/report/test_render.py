"""Reports as people see them: re-rendered from stored results, opened in headless Chromium,
parsed strictly, exported to gradebooks. Uses the session's graded class (conftest.py)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import html5lib
import pytest
from conftest import copy_of

from harness.cli import main

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']\s*(?:https?:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module")
def rendered(graded, tmp_path_factory) -> Path:
    """A copy of the graded class, re-rendered in English by `harness report` (nothing retrained)."""
    out = copy_of(graded, tmp_path_factory.mktemp("reports") / "out")
    roster = out / "roster.csv"
    roster.write_text(
        "student,email,id_number,canvas_id,sis_user_id,sis_login_id,section\n"
        "baseline_only,b.only@example.edu,B001,1001,S-B001,bonly,G1\n",
        encoding="utf-8",
    )
    models_before = {p: p.stat().st_mtime_ns for p in out.rglob("*.keras")}
    assert main(["report", str(out), "--lang", "en", "--roster", str(roster)]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.keras")} == models_before
    return out


def pages(out: Path) -> list[Path]:
    return [out / "index.html", *sorted(out.glob("*/report.html"))]


def test_every_page_parses_and_refers_to_nothing_external(rendered):
    for page in pages(rendered):
        text = page.read_text(encoding="utf-8")
        parser = html5lib.HTMLParser(strict=True)
        parser.parse(text)  # raises on any parse error
        assert not EXTERNAL.search(text), page
        assert "<img" not in text or all(
            src.startswith("data:image/") for src in re.findall(r'<img[^>]*\ssrc="([^"]*)"', text)
        ), page


def test_pages_render_in_chromium_without_errors_and_every_image_loads(rendered):
    from harness.report.screenshots import check_pages

    student = rendered / "baseline_only" / "report.html"
    checks = check_pages([rendered / "index.html", student], rendered / "screenshots")
    for check in checks:
        assert check.console_errors == [], (check.page, check.console_errors)
        assert check.broken_images == [], (check.page, check.broken_images)
        assert check.external_requests == [], (check.page, check.external_requests)
        assert check.screenshot.stat().st_size > 10_000
    # each page at desktop and phone width
    assert sorted(c.screenshot.name for c in checks if c.page == student) == [
        "baseline_only-report-phone.png",
        "baseline_only-report.png",
    ]
    assert all(c.images >= 2 for c in checks if c.page == student)  # the comparison bars and the learning curves


def test_the_dashboard_table_sorts_when_a_heading_is_clicked(rendered):
    from playwright.sync_api import sync_playwright

    from harness.report.screenshots import CHROMIUM_FLAGS, chromium_path

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.goto((rendered / "index.html").as_uri())
        column = "Array.from(document.querySelectorAll('#students tbody tr')).map(r => r.cells[0].textContent.trim())"
        page.click("#students th >> nth=0")
        ascending = page.evaluate(column)
        in_order = page.evaluate(
            f"(names => names.every((n, i) => i == 0 || names[i - 1].localeCompare(n) <= 0))({column})"
        )
        page.click("#students th >> nth=0")
        descending = page.evaluate(column)
        browser.close()
    assert in_order, ascending  # sorted by the browser's own collation
    assert descending == list(reversed(ascending)) != ascending


def test_english_reports_and_french_by_default(rendered, graded):
    assert '<html lang="en">' in (rendered / "index.html").read_text(encoding="utf-8")
    assert '<html lang="fr">' in (graded.out / "index.html").read_text(encoding="utf-8")


def test_gradebook_exports_have_the_lms_layouts(rendered):
    with open(rendered / "moodle_grades.csv", encoding="utf-8") as handle:
        moodle = list(csv.reader(handle))
    assert moodle[0][:4] == ["Full name", "Email address", "ID number", "Username"]
    # the grade item's name: the course's default in the report's language (English here)
    assert moodle[0][4] == "MNIST mini-project" and moodle[0][5] == "Feedback"
    rows = {row[0]: row for row in moodle[1:]}
    with open(rendered / "grades.csv", encoding="utf-8") as handle:
        grades = {row["student"]: row for row in csv.DictReader(handle)}
    assert set(rows) == set(grades)
    assert rows["baseline_only"][1:3] == ["b.only@example.edu", "B001"]
    assert float(rows["baseline_only"][4]) == float(grades["baseline_only"]["total"])
    with open(rendered / "canvas_grades.csv", encoding="utf-8") as handle:
        canvas = list(csv.reader(handle))
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert canvas[1][0] == "Points Possible" and float(canvas[1][5]) == 20
    assert {row[0] for row in canvas[2:]} == set(grades)
    assert next(row for row in canvas if row[0] == "baseline_only")[1:5] == ["1001", "S-B001", "bonly", "G1"]
