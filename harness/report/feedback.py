"""What a page says first: a student's "what cost you points", an instructor's "to review" list,
the class statistics, and neutral wording of how a run was isolated.

Computed from stored results (``result.json``), in the report's language; the templates only lay
them out.

>>> [p.title for p in to_progress(result)]  # doctest: +SKIP
['Amélioration mesurée', 'Analyse et conclusion']
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from harness.results import CriterionScore, SubmissionResult
from harness.util.i18n import Translator

MAX_ITEMS = 3  # more than three items per criterion and a student stops reading
# evidence that says what is missing or wrong, before evidence that only informs
_COSTLY_KINDS = ("missing", "flag")


@dataclass
class Item:
    """One thing that cost points: its text and where it is in the submission (None: nowhere in particular)."""

    text: str
    where: str | None = None


@dataclass
class Progress:
    """A criterion that lost points: how many, and the items that cost them."""

    id: str
    title: str
    lost: float
    max_points: float
    items: list[Item] = field(default_factory=list)


def _costly_items(criterion: CriterionScore) -> list[Item]:
    """The evidence that says what is missing or wrong; else the parts short of their points; else the reason."""
    items = [Item(e.text, e.where) for e in criterion.evidence if e.kind in _COSTLY_KINDS]
    if not items:
        items = [
            Item(f"{part.label}{f' ({part.detail})' if part.detail else ''}")
            for part in criterion.components
            if part.points < part.max_points
        ]
    return (items or [Item(criterion.reason)])[:MAX_ITEMS]


def to_progress(result: SubmissionResult) -> list[Progress]:
    """Per criterion that lost points, most points lost first: the one to three items that cost them."""
    if result.score is None or result.status == "invalid":
        return []  # one reason costs every point: "what failed" says it once
    lost = [c for c in result.score.criteria if c.points < c.max_points]
    return [
        Progress(c.id, c.title, c.max_points - c.points, c.max_points, _costly_items(c))
        for c in sorted(lost, key=lambda c: c.points - c.max_points)
    ]


def isolation_key(sandbox: str | None) -> str:
    """The translation key of how the student's code was isolated, from the worker's own description."""
    if not sandbox:
        return "isolation_unknown"
    if sandbox.startswith("bubblewrap"):
        return "isolation_sandbox"
    if sandbox.startswith("none needed"):
        return "isolation_cache"
    return "isolation_plain"


def unsandboxed(result: SubmissionResult) -> bool:
    """The student's code ran without bubblewrap: said by the run (--no-sandbox, the demo without bubblewrap),
    which holds even when every model came from the cache, or by the worker (results written before run.sandbox)."""
    if result.run.sandbox.startswith("none"):
        return True
    return bool(result.worker) and isolation_key(result.worker.sandbox) == "isolation_plain"


def low_confidence(criterion: CriterionScore) -> bool:
    """The rubric marked this criterion's points as uncertain (``confidence`` from issue 14; absent: certain)."""
    return getattr(criterion, "confidence", None) == "low"


@dataclass
class Review:
    """Why an instructor should open one student's report: one line per reason."""

    result: SubmissionResult
    reasons: list[str]


def findings(result: SubmissionResult, t: Translator) -> list[tuple[str, str]]:
    """(flag, reason) for everything in one result that a person should check before publishing the grade;
    the flag is the dashboard's filter tag ("status" for a failure, which the status filter covers)."""
    found = []
    if result.status != "ok":
        status = t("status_" + result.status)
        found.append(("status", f"{status} — {t.stored(result.reason)}" if result.reason else status))
    for model in result.models:
        for flag in model.integrity:
            said = t.render(flag.message) if flag.message else flag.reason
            found.append(("integrity", f"{t('integrity_flag')} ({model.name}){t('colon')} {said}"))
        if not model.measurable:  # the profile could not measure it: a human, or the full protocol, decides
            said = t.render(model.measurement.message)
            found.append(("not-measurable", f"{t('measurement_collapse')} ({model.name}){t('colon')} {said}"))
    if result.names_inferred:
        found.append(("inferred", t("names_inferred_look", n=len(result.factory_names))))
    if unsandboxed(result):
        found.append(("no-sandbox", t("review_no_sandbox")))
    for criterion in result.score.criteria if result.score else []:
        if low_confidence(criterion):
            why = "; ".join(getattr(criterion, "confidence_reasons", None) or [])
            found.append(
                ("low-confidence", t("review_low_confidence", criterion=criterion.title) + (f" — {why}" if why else ""))
            )
    return found


def to_review(results: list[SubmissionResult], t: Translator) -> list[Review]:
    """The students whose result a person should check, with why: integrity flags first (their points
    are withheld until someone looks), then in the class's order."""
    found = [(r, findings(r, t)) for r in results]
    reviews = [
        (any(flag == "integrity" for flag, _ in f), Review(r, [reason for _, reason in f])) for r, f in found if f
    ]
    return [review for _, review in sorted(reviews, key=lambda item: not item[0])]


def review_flags(result: SubmissionResult, t: Translator) -> list[str]:
    """The dashboard's filter tags of one result (integrity, not-measurable, inferred, no-sandbox,
    low-confidence), once each."""
    return list(dict.fromkeys(flag for flag, _ in findings(result, t) if flag != "status"))


BINS = 8  # bars of a distribution: enough to see its shape, narrow enough for a table cell on a phone


@dataclass
class Bin:
    """One bar of a distribution: the students whose points fall in [low, high) (the last bar includes high)."""

    low: float
    high: float
    n: int
    share: float  # n over the tallest bar's n: the bar's height


@dataclass
class Stat:
    """Summary statistics of one column of points over the graded students, and its distribution."""

    title: str
    max_points: float
    n: int
    mean: float | None
    median: float | None
    low: float | None
    high: float | None
    bins: list[Bin] = field(default_factory=list)


def distribution(values: list[float], max_points: float, bins: int = BINS) -> list[Bin]:
    """`values` counted in `bins` equal bars from 0 to `max_points` (a full mark in the last one)."""
    if max_points <= 0:
        return []
    width = max_points / bins
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, max(0, int(value / width + 1e-9)))] += 1
    tallest = max(counts) or 1
    return [Bin(i * width, (i + 1) * width, n, n / tallest) for i, n in enumerate(counts)]


def _stat(title: str, max_points: float, values: list[float]) -> Stat:
    if not values:
        return Stat(title, max_points, 0, None, None, None, None)
    return Stat(
        title,
        max_points,
        len(values),
        statistics.fmean(values),
        statistics.median(values),
        min(values),
        max(values),
        distribution(values, max_points),
    )


def class_statistics(results: list[SubmissionResult]) -> list[Stat]:
    """The total first, then each criterion: mean, median, minimum and maximum over the scored students."""
    scored = [r.score for r in results if r.score]
    if not scored:
        return []
    stats = [_stat("total", scored[0].max_total, [s.total for s in scored])]
    for index, criterion in enumerate(scored[0].criteria):
        values = [s.criteria[index].points for s in scored if len(s.criteria) > index]
        stats.append(_stat(criterion.title, criterion.max_points, values))
    return stats
