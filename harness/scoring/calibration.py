"""Calibration: the harness's marks against an instructor's, and rubric parameters that fit them better.

An instructor marks a sample by hand (a CSV: ``student, criterion, points`` and an optional
``comment``; ``low`` and ``high`` when the mark is a range). ``agreement`` measures, per criterion,
the share of the harness's marks within ±0.5 point of the instructor's (and inside the range when
there is one), the mean absolute error and a linearly weighted Cohen's kappa on points binned to the
rubric's rounding step. ``fit`` proposes parameter values: each criterion's numeric parameters are
moved one at a time over a few candidates (best-move search, at most three changes), every candidate
re-scoring the stored evidence without retraining, and a move is proposed only when k-fold cross-validation over the
students says it lowers the error on students it was not fitted on. ``proposed_rubric_text`` writes
the proposal as a copy of the rubric file with those values changed: never applied silently.

>>> round(weighted_kappa([0, 1, 2, 2], [0, 1, 2, 1], step=1, max_points=2), 3)
0.714
"""

from __future__ import annotations

import csv
import math
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from harness.scoring.engine import _round
from harness.scoring.evidence import Evidence
from harness.scoring.rubric import Criterion, Rubric
from harness.scoring.rules import get_rule
from harness.util.i18n import Translator

TOLERANCE = 0.5  # "within half a point": the rubric's rounding step, what two graders call the same mark
FACTORS = (0.5, 0.75, 1.25, 1.5, 2.0)  # candidates around a parameter's value
SHARES = {"heading_share", "no_claim_share", "docstring_share", "duplication_similarity"}  # bounded by 1
MIN_GAIN = 0.05  # cross-validated MAE must drop by this (points) before a change is proposed
MAX_MOVES = 3  # parameter changes per criterion: a proposal an instructor can review


@dataclass(frozen=True)
class Mark:
    """One instructor mark: points for one criterion of one student, maybe a range and a comment."""

    student: str
    criterion: str
    points: float
    comment: str = ""
    low: float | None = None
    high: float | None = None


@dataclass
class Disagreement:
    """A mark where harness and instructor differ, with the harness's reason and evidence."""

    student: str
    criterion: str
    harness: float
    instructor: float
    comment: str
    reason: str
    evidence: list[str]

    @property
    def difference(self) -> float:
        """Harness minus instructor, in points."""
        return round(self.harness - self.instructor, 3)


@dataclass
class CriterionAgreement:
    """Agreement on one criterion over the marked students."""

    criterion: str
    max_points: float
    n: int
    within: float
    mae: float
    kappa: float | None
    in_range: float | None
    disagreements: list[Disagreement] = field(default_factory=list)
    # within ±0.5 among the marks the harness called low / high confidence, and how many each: whether
    # its doubts point at the marks a look would change
    low_confidence: tuple[int, float | None] = (0, None)
    high_confidence: tuple[int, float | None] = (0, None)


@dataclass
class Proposal:
    """A criterion's fitted parameters: the changes, and the cross-validated errors before and after."""

    criterion: str
    changes: dict[str, float]
    cv_mae_current: float
    cv_mae_fitted: float
    proposed: bool


# --------------------------------------------------------------------------- marks


def _number(text: str | None) -> float | None:
    text = (text or "").strip().replace(",", ".")
    return float(text) if text else None


def read_marks(path: Path) -> list[Mark]:
    """The marks CSV (``,`` or ``;``, with or without BOM); ValueError naming the line when one is bad."""
    text = Path(path).read_text(encoding="utf-8-sig")
    dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;")
    rows = list(csv.DictReader(text.splitlines(), dialect=dialect))
    missing = {"student", "criterion", "points"} - set(rows[0] if rows else {})
    if missing:
        raise ValueError(
            f"{path}: the marks CSV needs the columns student, criterion, points (missing: {sorted(missing)})"
        )
    marks = []
    for line, row in enumerate(rows, start=2):
        try:
            points = _number(row["points"])
            if points is None:
                raise ValueError("no points")
            marks.append(
                Mark(
                    student=row["student"].strip(),
                    criterion=row["criterion"].strip(),
                    points=points,
                    comment=(row.get("comment") or "").strip(),
                    low=_number(row.get("low")),
                    high=_number(row.get("high")),
                )
            )
        except ValueError as error:
            raise ValueError(f"{path}, line {line}: {error}") from error
    return marks


def marks_from_expectations(
    path: Path, half: str | None = None, criteria: Iterable[str] | None = None, profile: str | None = None
) -> list[Mark]:
    """A labelled corpus's expected ranges (``tests/fixtures/labelled/expectations.toml``) as marks:
    the range's midpoint, the range kept, the written reason as comment; only `half` when given. Where
    the class was graded on one of the corpus's ``full_protocol_profiles``, a submission's
    ``full_protocol`` ranges (judged for the full protocol's data) replace its own."""
    expected = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    names = list(criteria or expected.get("criteria", []))
    full = profile is not None and profile in expected.get("full_protocol_profiles", [])
    marks = []
    for student, entry in expected.items():
        if not isinstance(entry, dict) or (half and entry.get("half") != half):
            continue
        ranges, reasons = dict(entry), dict(entry.get("reasons", {}))
        if full and "full_protocol" in entry:
            on_full = {k: v for k, v in entry["full_protocol"].items() if k in names}
            ranges |= on_full
            reasons |= dict.fromkeys(on_full, entry["full_protocol"].get("reason", ""))
        for criterion in names:
            if criterion in ranges:
                low, high = ranges[criterion]
                reason = reasons.get(criterion, "")
                marks.append(Mark(student, criterion, (low + high) / 2, reason, float(low), float(high)))
    return marks


def write_marks(marks: list[Mark], path: Path) -> Path:
    """The marks as the CSV ``harness calibrate --marks`` reads (with ``low``/``high`` when known)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "criterion", "points", "comment", "low", "high"])
        for m in marks:
            writer.writerow([m.student, m.criterion, f"{m.points:g}", m.comment, _blank(m.low), _blank(m.high)])
    return path


def _blank(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


# --------------------------------------------------------------------------- agreement


def weighted_kappa(a: list[float], b: list[float], step: float, max_points: float) -> float | None:
    """Cohen's kappa with linear weights on points binned to multiples of `step` (0..max_points);
    None when it is undefined (both raters give one same mark to everyone)."""
    bins = int(round(max_points / step))
    x = [min(bins, max(0, int(_round(v, step) / step + 1e-9))) for v in a]
    y = [min(bins, max(0, int(_round(v, step) / step + 1e-9))) for v in b]
    if not x or len(set(x) | set(y)) == 1:  # one same mark everywhere: no disagreement to expect
        return None
    try:  # scikit-learn is the reference implementation; the formula below is the same
        from sklearn.metrics import cohen_kappa_score  # optional dependency, imported only when kappa is asked
    except ImportError:
        return _kappa(x, y, bins)
    value = cohen_kappa_score(x, y, labels=list(range(bins + 1)), weights="linear")
    return None if math.isnan(value) else float(value)


def _kappa(x: list[int], y: list[int], bins: int) -> float | None:
    """Linearly weighted kappa: 1 − observed ÷ expected disagreement, weights |i − j| ÷ bins."""
    n = len(x)
    observed = sum(abs(i - j) for i, j in zip(x, y, strict=True)) / (n * bins)
    px = [x.count(k) / n for k in range(bins + 1)]
    py = [y.count(k) / n for k in range(bins + 1)]
    expected = sum(px[i] * py[j] * abs(i - j) / bins for i in range(bins + 1) for j in range(bins + 1))
    return None if expected == 0 else 1 - observed / expected


def agreement(
    marks: list[Mark],
    harness: dict[tuple[str, str], float],
    rubric: Rubric,
    explain=None,
    shown: int = 3,
    confidence: dict[tuple[str, str], str] | None = None,
) -> list[CriterionAgreement]:
    """Per criterion of the rubric that the marks cover: within ±0.5, in range, MAE, kappa, the
    `shown` largest disagreements explained by `explain(student, criterion) -> (reason, evidence)`, and
    within ±0.5 apart for the marks of each `confidence` ("low" / "high", by student and criterion)."""
    step = rubric.rounding or TOLERANCE
    table = []
    for criterion in rubric.criteria:
        pairs = [(m, harness[(m.student, m.criterion)]) for m in marks if m.criterion == criterion.id]
        pairs = [(m, h) for m, h in pairs if h is not None]
        if not pairs:
            continue
        errors = [abs(h - m.points) for m, h in pairs]
        ranged = [(m, h) for m, h in pairs if m.low is not None and m.high is not None]
        worst = sorted(pairs, key=lambda p: (-abs(p[1] - p[0].points), p[0].student))[:shown]
        table.append(
            CriterionAgreement(
                criterion=criterion.id,
                max_points=criterion.max_points,
                n=len(pairs),
                within=sum(e <= TOLERANCE + 1e-9 for e in errors) / len(pairs),
                mae=sum(errors) / len(pairs),
                kappa=weighted_kappa([m.points for m, _ in pairs], [h for _, h in pairs], step, criterion.max_points),
                in_range=sum(m.low - 1e-9 <= h <= m.high + 1e-9 for m, h in ranged) / len(ranged) if ranged else None,
                disagreements=[_disagreement(m, h, explain) for m, h in worst if abs(h - m.points) > TOLERANCE],
                low_confidence=_within(pairs, confidence, "low"),
                high_confidence=_within(pairs, confidence, "high"),
            )
        )
    return table


def _within(pairs: list[tuple[Mark, float]], confidence: dict | None, level: str) -> tuple[int, float | None]:
    """(how many of the pairs have this confidence, the share of them within ±0.5)."""
    chosen = [abs(h - m.points) for m, h in pairs if (confidence or {}).get((m.student, m.criterion)) == level]
    return len(chosen), (sum(e <= TOLERANCE + 1e-9 for e in chosen) / len(chosen) if chosen else None)


def _disagreement(mark: Mark, harness: float, explain) -> Disagreement:
    reason, evidence = explain(mark.student, mark.criterion) if explain else ("", [])
    return Disagreement(mark.student, mark.criterion, harness, mark.points, mark.comment, reason, evidence)


# --------------------------------------------------------------------------- fitting


def criterion_points(evidence: Evidence, criterion: Criterion, params: dict, rounding: float, t: Translator) -> float:
    """One criterion's points under `params`, computed as the engine does (parts scaled to the
    criterion's points, clamped, rounded); nothing is retrained."""
    rule = get_rule(criterion.rule)
    verdict = rule(evidence, rule.params(**params), t)
    raw = sum(c.points for c in verdict.components)
    out_of = sum(c.max_points for c in verdict.components)
    points = raw * criterion.max_points / out_of if out_of > 0 else 0.0
    return _round(max(0.0, min(criterion.max_points, points)), rounding)


def candidates(criterion: Criterion) -> dict[str, list[float]]:
    """The values tried for each numeric parameter of the criterion (bools, lists and tables are kept)."""
    rule = get_rule(criterion.rule)
    current = rule.params(**criterion.params).model_dump()
    found = {}
    for name, value in current.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or name.endswith("_shown"):
            continue
        if isinstance(value, int):
            values = {max(0, value - 1), value + 1}
        elif value == 0:
            values = {0.25, 0.5}
        else:
            values = {round(value * f, 4) for f in FACTORS}
        if name in SHARES:
            values = {min(1.0, v) for v in values}
        found[name] = sorted(v for v in values - {value} if _valid(criterion, {**criterion.params, name: v}))
    return {name: values for name, values in found.items() if values}


def _valid(criterion: Criterion, params: dict) -> bool:
    try:
        get_rule(criterion.rule).params(**params)
    except (ValidationError, ValueError, TypeError):
        return False
    return True


Scorer = Callable[[dict], dict[str, float]]  # parameters -> points per student


def _mae(points: dict[str, float], target: dict[str, float], students: list[str]) -> float:
    return sum(abs(points[s] - target[s]) for s in students) / len(students)


def _search(score: Scorer, start: dict, grid: dict[str, list[float]], target: dict, students: list[str]) -> dict:
    """Best-move search: from `start`, at most MAX_MOVES times, take the one parameter change that
    lowers the MAE on `students` most (none when nothing lowers it). Few moves keep the proposal
    readable, and every fold starts from the same point, so the first round is shared (memoised)."""
    best, best_error = dict(start), _mae(score(start), target, students)
    for _ in range(MAX_MOVES):
        moves = [({**best, name: value}) for name, values in grid.items() for value in values]
        scored = [(_mae(score(trial), target, students), i, trial) for i, trial in enumerate(moves)]
        error, _, trial = min(scored, key=lambda item: item[:2]) if scored else (best_error, 0, best)
        if error >= best_error - 1e-9:
            break
        best, best_error = trial, error
    return best


def fit(criterion: Criterion, score: Scorer, target: dict[str, float], folds: int = 5) -> Proposal:
    """Fit one criterion's parameters to the instructor's `target` points (by student), with k-fold
    cross-validation over the students; proposed only when it lowers the held-out error by MIN_GAIN."""
    memo: dict[tuple, dict[str, float]] = {}

    def cached(params: dict) -> dict[str, float]:
        key = tuple(sorted((k, repr(v)) for k, v in params.items()))
        if key not in memo:
            memo[key] = score(params)
        return memo[key]

    students = sorted(target)
    start, grid = dict(criterion.params), candidates(criterion)
    k = max(2, min(folds, len(students)))
    current = fitted = 0.0
    for fold in range(k):
        held = students[fold::k]
        train = [s for s in students if s not in held]
        params = _search(cached, start, grid, target, train) if train else start
        current += _mae(cached(start), target, held) * len(held)
        fitted += _mae(cached(params), target, held) * len(held)
    current, fitted = current / len(students), fitted / len(students)
    final = _search(cached, start, grid, target, students)
    changes = {
        name: value for name, value in final.items() if criterion.params.get(name, _default(criterion, name)) != value
    }
    proposed = bool(changes) and fitted <= current - MIN_GAIN
    return Proposal(criterion.id, changes if proposed else {}, round(current, 3), round(fitted, 3), proposed)


def _default(criterion: Criterion, name: str):
    return get_rule(criterion.rule).params(**criterion.params).model_dump().get(name)


# --------------------------------------------------------------------------- the proposed rubric file


def proposed_rubric_text(text: str, proposals: list[Proposal], header: str) -> str:
    """The rubric file's text with each proposed value changed in its criterion's ``[criteria.params]``
    (comments kept; a parameter left to its default is added), and `header` as a comment on top."""
    blocks = re.split(r"(?m)^(?=\[\[criteria\]\])", text)
    for proposal in (p for p in proposals if p.proposed):
        for i, block in enumerate(blocks):
            if re.search(rf'(?m)^id\s*=\s*"{re.escape(proposal.criterion)}"', block):
                blocks[i] = _set_params(block, proposal.changes)
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + "".join(blocks)


def _set_params(block: str, changes: dict[str, float]) -> str:
    for name, value in changes.items():
        literal = f"{value:g}" if isinstance(value, float) else str(value)
        pattern = rf"(?m)^({re.escape(name)}\s*=\s*)[-+0-9.eE]+"
        if re.search(pattern, block):
            block = re.sub(pattern, lambda m, v=literal: m.group(1) + v, block, count=1)
        else:
            block = re.sub(r"(?m)^\[criteria\.params\]\n", f"[criteria.params]\n{name} = {literal}\n", block, count=1)
    return block
