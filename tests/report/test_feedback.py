"""What the pages say first, from real stored results (the session's graded class, conftest.py): the
student's "what cost you points", the instructor's "to review" list, class statistics, and the
translator's French numbers and stored-reason translations."""

from __future__ import annotations

import statistics

from harness.report.feedback import (
    BINS,
    MAX_ITEMS,
    class_statistics,
    distribution,
    findings,
    review_flags,
    to_progress,
    to_review,
    unsandboxed,
)
from harness.util.i18n import Translator

FR = Translator("fr")
NO_SANDBOX = (
    "plain process, NO SANDBOX (bubblewrap not available): no filesystem or network isolation, student code can "
    "read and write what the grading user can and open network connections"
)


def test_progress_lists_each_criterion_that_lost_points_costliest_first(graded):
    result = graded.result("baseline_only")
    progress = to_progress(result)
    lost = {c.id: c.max_points - c.points for c in result.score.criteria if c.points < c.max_points}
    assert [p.id for p in progress] == sorted(lost, key=lambda i: -lost[i])
    by_id = {c.id: c for c in result.score.criteria}
    for p in progress:
        assert p.lost == lost[p.id] and 1 <= len(p.items) <= MAX_ITEMS
        criterion = by_id[p.id]
        costly = [e.text for e in criterion.evidence if e.kind in ("missing", "flag")]
        assert [i.text for i in p.items] == costly[:MAX_ITEMS] or not costly  # what is missing or wrong first


def test_an_unreadable_submission_has_no_progress_list_but_is_to_review(graded):
    broken = graded.result("broken")
    assert broken.status == "invalid" and to_progress(broken) == []
    reviews = {r.result.student: r.reasons for r in to_review(graded.summary.results, FR)}
    assert reviews["broken"][0].startswith(FR("status_invalid"))
    assert "Syntax error" not in reviews["broken"][0]  # the stored English reason, in French


def test_review_flags_integrity_no_sandbox_and_low_confidence_marks(graded):
    result = graded.result("baseline_only")
    first = result.score.criteria[0]
    uncertain = first.model_copy(update={"confidence": "low", "confidence_reasons": ["peu de texte à lire"]})
    changed = result.model_copy(
        update={
            "worker": result.worker.model_copy(update={"sandbox": NO_SANDBOX}),
            "score": result.score.model_copy(update={"criteria": [uncertain, *result.score.criteria[1:]]}),
        }
    )
    assert review_flags(changed, FR) == ["no-sandbox", "low-confidence"]
    reasons = [reason for _, reason in findings(changed, FR)]
    assert FR("review_no_sandbox") in reasons and not any("NO SANDBOX" in r for r in reasons)
    assert f"{FR('review_low_confidence', criterion=first.title)} — peu de texte à lire" in reasons
    # as stored: flagged exactly when the rubric marked a criterion low-confidence (older results: never),
    # and as run without a sandbox when this machine has no bubblewrap (a fresh clone on macOS)
    marked = any(getattr(c, "confidence", None) == "low" for c in result.score.criteria)
    expected = (["no-sandbox"] if unsandboxed(result) else []) + (["low-confidence"] if marked else [])
    assert review_flags(result, FR) == expected


def test_class_statistics_over_the_scored_students(graded):
    results = graded.summary.results
    stats = class_statistics(results)
    totals = [r.score.total for r in results if r.score]
    assert stats[0].title == "total" and stats[0].n == len(totals)
    assert stats[0].mean == statistics.fmean(totals) and stats[0].median == statistics.median(totals)
    assert [s.title for s in stats[1:]] == [c.title for c in results[0].score.criteria]


def test_each_statistic_has_its_distribution_in_bars_from_zero_to_the_maximum(graded):
    results = graded.summary.results
    for stat in class_statistics(results):
        assert len(stat.bins) == BINS and stat.bins[0].low == 0 and stat.bins[-1].high == stat.max_points
        assert sum(b.n for b in stat.bins) == stat.n and max(b.share for b in stat.bins) == 1.0
    # a full mark counts in the last bar, nought in the first
    bars = distribution([0, 0, 1.5, 4, 4, 4], 4)
    assert [b.n for b in bars] == [2, 0, 0, 1, 0, 0, 0, 3] and bars[-1].share == 1.0 and bars[0].share == 2 / 3


def test_french_numbers_and_plurals():
    assert FR.percent(0.659) == "65,90\u00a0%" and Translator("en").percent(0.659) == "65.90 %"
    assert FR.integer(1000) == "1\u202f000" and Translator("en").integer(1000) == "1,000"
    assert FR.points(17.5) == "17,5" and FR.points(20.0) == "20"
    assert FR.plural("n_epochs", 1) == "1 époque" and FR.plural("n_epochs", 5) == "5 époques"
    assert Translator("en").plural("n_epochs", 1) == "1 epoch"


def test_stored_english_reasons_are_translated_with_their_values():
    stored = "calls create_baseline_model at top level: the harness calls factories itself"
    assert FR.stored(stored) == (
        "appelle create_baseline_model au premier niveau : le correcteur appelle lui-même les fonctions usines"
    )
    syntax = (
        "Syntax error in cell 8, line 12: bad. The harness cannot read code that does not parse; "
        "fix it and run the cell again."
    )
    assert FR.stored(syntax).startswith("Erreur de syntaxe (cellule 8, ligne 12) : bad.")
    assert FR.stored("something no template knows") == "something no template knows"
    assert Translator("en").stored(stored) == stored


def test_the_review_list_puts_integrity_first_then_what_a_look_could_change_most(graded):
    """Issue 14: sorted by how much a human look could change the grade, each entry with a line for an
    overrides CSV; doubts worth less than a point (a mark on a rounding threshold) are folded under it."""
    from harness.results import IntegrityFlag, Message

    base = graded.result("baseline_only")

    def changed(student, criterion_id, **update):
        sure = {"confidence": "high", "withheld_points": None, "instructor_points": None}
        criteria = [
            c.model_copy(update={**sure, **update}) if c.id == criterion_id else c.model_copy(update=sure)
            for c in base.score.criteria
        ]
        return base.model_copy(
            update={"student": student, "score": base.score.model_copy(update={"criteria": criteria})}
        )

    def doubt(key, **values):
        return {"confidence": "low", "messages": {"confidence_reasons": [Message(key=key, values=values)]}}

    modifications = next(c for c in base.score.criteria if c.id == "modifications")
    threshold = changed(
        "seuil", "analysis", auto_points=1.5, points=1.5, **doubt("rb_doubt_threshold", exact=1.72, boundary=1.75)
    )
    names = changed("noms", "modifications", **doubt("rb_doubt_names", how="x"))
    looked_at = changed("vu", "modifications", instructor_points=4.0, **doubt("rb_doubt_names", how="x"))
    flagged = changed("signal", "improvement", withheld_points=2.0, points=0.0)
    flagged = flagged.model_copy(
        update={
            "models": [flagged.models[0].model_copy(update={"integrity": [IntegrityFlag(rule="capacity", reason="r")]})]
        }
    )
    reviews = to_review([threshold, looked_at, names, flagged], FR)
    order = [(v.result.student, v.at_stake, v.minor) for v in reviews]
    assert order[:2] == [("signal", 2.0, False), ("noms", modifications.max_points / 2, False)]
    assert {(s, stake, minor) for s, stake, minor in order[2:]} >= {("seuil", 0.5, True)}
    by_student = {v.result.student: v for v in reviews}
    assert by_student["signal"].override == "signal,improvement,,,true,"
    assert by_student["noms"].override == f"noms,modifications,{modifications.points:g},,,"
    assert "vu" not in by_student or by_student["vu"].at_stake <= 0.5  # the instructor has set those points
