"""What a page says first: a student's "what cost you points", an instructor's "to review" list,
the class statistics, and neutral wording of how a run was isolated.

Computed from stored results (``result.json``), in the report's language; the templates only lay
them out.

>>> [p.title for p in to_progress(result)]  # doctest: +SKIP
['Amélioration mesurée', 'Analyse et conclusion']
"""

from __future__ import annotations

import csv
import io
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


# A doubt that could move the grade by less than this is folded under the "to review" list (a mark on a
# rounding threshold moves by one step): still listed, still in the "low-confidence" filter, not first.
MINOR_STAKE = 1.0
OVERRIDE_COLUMNS = "student,criterion,points,delta,clear_flags,comment"


@dataclass
class Review:
    """Why an instructor should open one student's report: one line per reason, how many points a look could
    move (`at_stake`), and a line for an overrides CSV on the criterion that could move most."""

    result: SubmissionResult
    reasons: list[str]
    at_stake: float = 0.0
    override: str = ""
    integrity: bool = False

    @property
    def minor(self) -> bool:
        """Only doubts that could move the grade by less than :data:`MINOR_STAKE` (never a failure or a flag)."""
        return not self.integrity and self.result.status == "ok" and self.at_stake < MINOR_STAKE


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
    are withheld until someone looks), then by how many points a look could move, most first."""
    reviews = []
    for result in results:
        found = findings(result, t)
        if not found:
            continue
        stakes = criterion_stakes(result)
        reviews.append(
            Review(
                result,
                [reason for _, reason in found],
                at_stake=_result_stake(result, stakes),
                override=_override_line(result, stakes),
                integrity=any(flag == "integrity" for flag, _ in found),
            )
        )
    return sorted(reviews, key=lambda v: (not v.integrity, -v.at_stake, v.result.student))


def criterion_stakes(result: SubmissionResult) -> dict[str, float]:
    """Per criterion, how many points a person's look could move its mark: the points withheld for an
    integrity flag; what a model the profile could not measure left unscored; for a doubt, one rounding
    step when the mark sits on a threshold, else a share of the criterion (:data:`DOUBT_SHARE`). Nothing
    once the instructor has set the criterion's points (it has been looked at)."""
    stakes = {}
    for criterion in result.score.criteria if result.score else []:
        if criterion.instructor_points is not None:
            continue
        stake = float(criterion.withheld_points or 0.0)
        if any(_key(item.messages.get("text")) == "rb_ev_not_measurable" for item in criterion.evidence):
            stake = max(stake, criterion.max_points - criterion.points)
        if low_confidence(criterion):
            doubts = criterion.messages.get("confidence_reasons", [])
            stake = max([stake, *(_doubt_stake(criterion, doubt) for doubt in doubts)])
        if stake > 0:
            stakes[criterion.id] = round(stake, 3)
    return stakes


# Share of a criterion a doubt could move. Inferred or discovered names decide which model is compared
# with which: the whole mark rests on them. Text read where or in a language the patterns see less of
# (a module's docstrings, English in a French course, a section found by its content) is still read.
DOUBT_SHARE = {"rb_doubt_names": 0.5}
TEXT_DOUBT_SHARE = 0.25


def _doubt_stake(criterion: CriterionScore, doubt) -> float:
    """A mark on a rounding threshold moves by one step (twice its distance to the boundary); inferred names
    by half the criterion; text read in an unexpected place or language by a quarter."""
    if _key(doubt) == "rb_doubt_threshold":
        marked = criterion.auto_points if criterion.auto_points is not None else criterion.points
        return 2 * abs(float(doubt.values.get("boundary", marked)) - marked)
    return criterion.max_points * DOUBT_SHARE.get(_key(doubt), TEXT_DOUBT_SHARE)


def _key(message) -> str | None:
    return getattr(message, "key", None)


def _result_stake(result: SubmissionResult, stakes: dict[str, float]) -> float:
    """A submission not graded has everything it did not earn at stake; otherwise its criteria's stakes."""
    if result.status != "ok":
        return (result.score.max_total - result.score.total) if result.score else 20.0
    return round(sum(stakes.values()), 3)


def _override_line(result: SubmissionResult, stakes: dict[str, float]) -> str:
    """One line for an overrides CSV (:data:`OVERRIDE_COLUMNS`) on the criterion that could move most: its
    current points to edit, or ``clear_flags`` where points are withheld for an integrity flag."""
    criteria = {c.id: c for c in result.score.criteria} if result.score else {}
    if not criteria:
        return ""
    chosen = (
        max(stakes, key=stakes.get)
        if stakes
        else max(criteria, key=lambda i: criteria[i].max_points - criteria[i].points)
    )
    criterion = criteria[chosen]
    if criterion.withheld_points:
        row = [result.student, chosen, "", "", "true", ""]
    else:
        row = [result.student, chosen, f"{criterion.points:g}", "", "", ""]
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(row)  # quoted as the overrides reader expects (a comma in a name)
    return line.getvalue()


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
