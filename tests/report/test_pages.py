"""What a person sees: the pages of the session's graded class opened in real Chromium (computed
styles, phone width, print), triage on the dashboard, the student report's order, the preview's
ranges, and French all the way. Uses the session's graded class (conftest.py)."""

from __future__ import annotations

import re
import tomllib
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import copy_of

from harness.cli import main
from harness.report.checklist import CriterionEstimate
from harness.report.feedback import findings, review_flags
from harness.report.preview import write_preview
from harness.resources import bundled
from harness.results import SubmissionResult
from harness.util.i18n import Translator

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
STUDENT = "baseline_only"

# English that must never reach a French page: the harness's own vocabulary (labels, statuses,
# units, sandbox wording) and the words that leaked before (issue 19).
ENGLISH = [
    "accuracy", "callbacks", "thread", "threads", "content", "sandbox", "NO SANDBOX", "epochs", "epoch",
    "pending", "failed", "invalid", "Syntax error", "cannot", "seeds", "Reference", "Baseline",
    "Improved model", "Noise", "Validation loss", "Training", "Precision", "rotated",
    "Misclassified", "learning curves", "Error analysis", "What was read", "yes", "no model",
]  # fmt: skip


@pytest.fixture(scope="module")
def french(graded, tmp_path_factory) -> Path:
    """A copy of the graded class re-rendered by `harness report` in French (the default)."""
    out = copy_of(graded, tmp_path_factory.mktemp("pages") / "out")
    assert main(["report", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def preview(graded, tmp_path_factory) -> Path:
    """`harness check`'s preview of one graded result, with real estimates of each criterion."""
    result = SubmissionResult.read(graded.out / STUDENT / "result.json")
    estimates = [
        CriterionEstimate(
            c.id, c.title, c.max_points, c.points, max(0.0, c.points - 1), min(c.max_points, c.points + 1)
        )
        for c in result.score.criteria
    ]
    low, high = sum(e.low for e in estimates), sum(e.high for e in estimates)
    out = copy_of(graded, tmp_path_factory.mktemp("preview") / "out")
    return write_preview(out, result, Translator("fr"), 600, estimates, low, high)


@contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    from harness.report.screenshots import CHROMIUM_FLAGS, chromium_path

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, path: Path, viewport=DESKTOP):
    page = browser.new_page(viewport=viewport)
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page


def pages(out: Path) -> list[Path]:
    return [out / "index.html", *sorted(out.glob("*/report.html"))]


# --------------------------------------------------------------------------- what a person sees


def test_the_stylesheet_applies_sans_serif_and_score_bars_have_width(french):
    with chromium() as browser:
        for path in pages(french):
            page = open_page(browser, path)
            font = page.evaluate("getComputedStyle(document.body).fontFamily")
            assert font.rstrip().endswith("sans-serif") and "Arial" in font, (path, font)
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(246, 247, 249)", path
        page = open_page(browser, french / STUDENT / "report.html")
        widths = page.evaluate(
            "Array.from(document.querySelectorAll('.bar > span')).map(s => s.getBoundingClientRect().width)"
        )
    result = SubmissionResult.read(french / STUDENT / "result.json")
    earned = [c.points > 0 for c in result.score.criteria]
    assert len(widths) == len(earned)
    assert all((width > 0) == positive for width, positive in zip(widths, earned)), widths
    assert any(earned)


def test_no_page_scrolls_sideways_on_a_phone_and_charts_stay_legible(french, preview):
    with chromium() as browser:
        for path in [*pages(french), preview]:
            page = open_page(browser, path, PHONE)
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")  # every figure shown
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, (path, overflow)
            # a chart is shown at most 40 % smaller than drawn: its text stays at a readable size
            scales = page.evaluate(
                "Array.from(document.querySelectorAll('.fig img')).map(i => i.getBoundingClientRect().width"
                " / i.naturalWidth)"
            )
            assert all(scale >= 0.6 for scale in scales), (path, scales)


def test_print_layout_hides_folded_sections_and_controls(french):
    with chromium() as browser:
        report = open_page(browser, french / STUDENT / "report.html")
        report.emulate_media(media="print")
        shown = report.evaluate(
            "Array.from(document.querySelectorAll('details.section')).map(d => getComputedStyle(d).display)"
        )
        assert shown and set(shown) == {"none"}, shown  # folded: not printed
        assert report.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
        short = len(re.findall(rb"/Type\s*/Page[^s]", report.pdf(format="A4")))
        report.evaluate("document.querySelectorAll('details.section').forEach(d => d.open = true)")
        full = len(re.findall(rb"/Type\s*/Page[^s]", report.pdf(format="A4")))
        assert 1 <= short <= 3 < full, (short, full)  # the printed summary is short; opened, it all prints
        dashboard = open_page(browser, french / "index.html")
        dashboard.emulate_media(media="print")
        assert dashboard.evaluate("getComputedStyle(document.querySelector('.filters')).display") == "none"


# --------------------------------------------------------------------------- the student report


def visible_text(html: str) -> str:
    """The text a reader sees: no style, script, code or traceback."""

    class Text(HTMLParser):
        skip = 0
        parts: list[str] = []

        def handle_starttag(self, tag, attrs):
            self.skip += tag in ("style", "script", "code", "pre")

        def handle_endtag(self, tag):
            self.skip -= tag in ("style", "script", "code", "pre")

        def handle_data(self, data):
            if not self.skip:
                self.parts.append(data)

    parser = Text()
    parser.parts = []
    parser.feed(html)
    return " ".join(parser.parts)


def test_the_report_starts_with_the_grade_then_what_cost_points(french):
    html = (french / STUDENT / "report.html").read_text(encoding="utf-8")
    result = SubmissionResult.read(french / STUDENT / "result.json")
    grade, progress, details = html.index('class="grade"'), html.index('id="progress"'), html.index("criterion-")
    assert grade < progress < details
    section = html[progress : html.index("</section>", progress)]
    lost = [c for c in result.score.criteria if c.points < c.max_points]
    assert section.count('<li><a href="#criterion-') == len(lost) > 0
    for criterion in lost:
        items = section.split(f'href="#criterion-{criterion.id}"', 1)[1].split("</ul>", 1)[0]
        assert 1 <= items.count("<li>") <= 3, criterion.id
    # figures and statistics are folded below; one-epoch runs draw no learning curves
    first_figure = html.index("<img")
    assert html.rindex('<details class="section"', 0, first_figure) > details
    assert "Courbes d&#39;apprentissage" not in html


def test_instructor_details_are_folded_and_worded_neutrally(french, graded):
    html = (french / STUDENT / "report.html").read_text(encoding="utf-8")
    folded = html.index('<details class="section" id="instructor">')
    source = SubmissionResult.read(french / STUDENT / "result.json").source
    assert html.index(source) > folded  # the server path only inside the instructor's section
    assert "NO SANDBOX" not in html and "can read and write" not in html
    assert "limits: address space" not in html


def test_the_preview_shows_predicted_ranges_and_never_one_total(preview):
    html = preview.read_text(encoding="utf-8")
    assert 'id="harness-check"' in html and "ce n'est pas la note" in html
    assert 'class="grade"' not in html and "Corrigé" not in html
    text = visible_text(html)
    result = SubmissionResult.read(preview.parent / "result.json")
    assert f"{Translator('fr').points(result.score.total)} / 20" not in text
    assert re.search(r"\d+(,\d+)?–\d+(,\d+)? / 20", text), text[:500]  # the overall range
    assert "Points estimés" in text


# --------------------------------------------------------------------------- French all the way


def test_no_english_word_in_a_french_page(french):
    for path in pages(french):
        text = visible_text(path.read_text(encoding="utf-8"))
        text = re.sub(r"«[^»]*»", "", text)  # the student's own sentences, quoted, are theirs to write
        found = [w for w in ENGLISH if re.search(rf"(?<![\w/.-]){re.escape(w)}(?![\w/-])", text, re.IGNORECASE)]
        assert not found, (path.relative_to(french), found)


# A number written the English way: a decimal point (65.90, -1.90), or thousands with commas before a count
# ("1,000 images"; a French decimal "1,000" alone is legitimate).
ENGLISH_NUMBER = re.compile(
    r"(?<![\w.,])(?:[-+−]?\d+\.\d+|[1-9]\d{0,2}(?:,\d{3})+(?=\s(?:images|paramètres|mots|lignes|exemples)))(?![\w.])"
)
CODE_NOTATION = re.compile(r"[A-Za-z_]\w*\([^()]*\)")  # Dropout(0.25), L2(0.0001): the student's code, as written


def english_numbers(text: str) -> list[str]:
    """English-formatted numbers in a French page's text, the student's quoted words and code aside."""
    text = CODE_NOTATION.sub("", re.sub(r"«[^»]*»", "", text))
    return [text[max(0, m.start() - 50) : m.end() + 10] for m in ENGLISH_NUMBER.finditer(text)]


def test_english_numbers_are_found():
    """The check itself: it catches what leaked before, and leaves French numbers and code alone."""
    assert english_numbers("Meilleur modèle m : 64.00 % contre 65.90 %, soit -1.90 points")
    assert english_numbers("sur les mêmes 1,000 images de test")
    assert not english_numbers("64,00\u00a0% ; 1\u202f000 images ; ECE 1,000 ; Dropout(0.25) ; « j'ai 98.5 % »")


def test_french_numbers_in_french_pages(french):
    """Every sentence of a French page, the rubric's reasons and the analysis's verdict included: decimal
    commas, never "65.90 %" or "1,000 images"."""
    for path in pages(french):
        found = english_numbers(visible_text(path.read_text(encoding="utf-8")))
        assert not found, (path.relative_to(french), found[:5])
    report = (french / STUDENT / "report.html").read_text(encoding="utf-8")
    assert re.search(r"\d+,\d\d\u00a0%", report)  # 65,90 %
    assert re.search(r"\d\u202f\d\d\d", report)  # 225 034 parameters


def test_every_message_key_exists_in_both_languages():
    catalogs = {
        language: tomllib.loads(bundled("templates", f"i18n/{language}.toml").read_text(encoding="utf-8"))
        for language in ("fr", "en")
    }
    assert set(catalogs["fr"]) - set(catalogs["en"]) == set()
    assert set(catalogs["en"]) - set(catalogs["fr"]) == set()
    for key in catalogs["fr"]:  # the same placeholders in both, so neither fails to format
        names = [set(re.findall(r"{(\w+)(?::[^}]*)?}", catalogs[lang][key])) for lang in ("fr", "en")]
        assert names[0] == names[1], key


def test_every_key_the_templates_use_exists():
    used = set()
    for template in bundled("templates").glob("*.j2"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_0-9-]+)["']\s*[,)]""", template.read_text(encoding="utf-8")))
    catalog = Translator("fr").messages
    assert used and sorted(used - set(catalog)) == []


# --------------------------------------------------------------------------- dashboard triage


def test_dashboard_sorts_by_keyboard_with_aria_sort_and_missing_values_last(french):
    with chromium() as browser:
        page = open_page(browser, french / "index.html")
        total = page.locator("#students thead th", has_text="Total")
        total.locator("button").focus()
        page.keyboard.press("Enter")
        assert total.get_attribute("aria-sort") == "ascending"
        values = "Array.from(document.querySelectorAll('#students tbody tr')).map(r => r.cells[3].dataset.sort)"
        ascending = page.evaluate(values)
        page.keyboard.press("Enter")
        assert total.get_attribute("aria-sort") == "descending"
        descending = page.evaluate(values)
        others = page.evaluate(
            "Array.from(document.querySelectorAll('#students thead th[aria-sort]')).map(t => t.getAttribute('aria-sort'))"
        )
    numbers = [float(v) for v in ascending if v != ""]
    assert numbers == sorted(numbers) and [float(v) for v in descending if v != ""] == sorted(numbers, reverse=True)
    for order in (ascending, descending):  # missing values last, whatever the direction
        assert order[len(numbers) :] == [""] * (len(order) - len(numbers))
    assert others.count("descending") == 1 and set(others) <= {"none", "descending"}


def test_dashboard_search_and_filters_narrow_the_table(french):
    with chromium() as browser:
        page = open_page(browser, french / "index.html")
        visible = "Array.from(document.querySelectorAll('#students tbody tr')).filter(r => !r.hidden).map(r => r.cells[0].textContent.trim())"
        everyone = page.evaluate(visible)
        page.fill("#search", "BASELINE")
        assert page.evaluate(visible) == ["baseline_only"]
        page.fill("#search", "")
        page.select_option("#status-filter", "invalid")
        assert page.evaluate(visible) == ["broken"]
        page.select_option("#status-filter", "")
        page.select_option("#flag-filter", "review")
        to_review = page.evaluate(visible)
        page.select_option("#flag-filter", "not-measurable")
        not_measurable = page.evaluate(visible)
    # each filter shows exactly the students whose results carry that flag: which ones do depends on the
    # marks of the session's class (a mark on a rounding threshold is a doubt), never on the page
    results = [SubmissionResult.read(path) for path in sorted(french.glob("*/result.json"))]
    t = Translator("fr")
    assert len(everyone) >= 4 and "broken" in to_review
    assert set(to_review) == {r.student for r in results if findings(r, t)}
    assert set(not_measurable) == {r.student for r in results if "not-measurable" in review_flags(r, t)}


def test_dashboard_has_class_statistics_one_reference_row_and_a_review_list(french):
    html = (french / "index.html").read_text(encoding="utf-8")
    assert 'id="statistics"' in html and "Médiane" in html
    # a distribution per row (the total, then each criterion), drawn in CSS, its counts said to a screen reader
    labels = re.findall(r'<div class="dist" role="img" aria-label="([^"]*)">', html)
    criteria = SubmissionResult.read(french / STUDENT / "result.json").score.criteria
    assert len(labels) == 1 + len(criteria)
    assert all(f"« {c.title} »" in label for c, label in zip(criteria, labels[1:])), labels
    with chromium() as browser:
        page = open_page(browser, french / "index.html", PHONE)
        bars = page.evaluate(
            "Array.from(document.querySelectorAll('.dist')).map(d => Array.from(d.children).map(b => b.getBoundingClientRect().height))"
        )
        visible = page.evaluate("document.querySelector('.dist').getBoundingClientRect().right <= window.innerWidth")
    assert all(max(row) > 10 for row in bars) and visible  # tallest bar drawn; seen on a phone without scrolling
    ranking = html[html.index('id="ranking"') :]
    assert ranking.count("Référence (entreprise)</td>") == 1
    review = html[html.index('id="review"') : html.index('id="students-title"')]
    assert "broken/report.html" in review
