"""Rule ``code_quality``: the factories run, the code lints clean, is commented, not duplicated, not dead.

Five parts ("fonctionnel", lint, "commenté", "bien structuré", dead code), each scored by a
helper below that also writes its evidence; their thresholds are the parameters, documented in
``rubric/default.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.results import ModelResult
from harness.scoring.evidence import Evidence, Notes, Verdict, component, excerpt, ratio
from harness.scoring.readers import code as rubric_code
from harness.scoring.rules.registry import RuleParams, rule
from harness.scoring.thresholds import at_most
from harness.util.i18n import Translator


class CodeQualityParams(RuleParams):
    """The ``code_quality`` criterion's parameters (see ``rubric/default.toml``)."""

    runs_points: float = 1.25
    lint_points: float = 0.5
    lint_per_100_lines: float = 1.0
    lint_zero_per_100_lines: float = 5.0
    linter: str = "ruff"
    lint_select: list[str] = ["F", "E9", "B"]
    lint_ignore: list[str] = ["F401"]
    lint_shown: int = 8
    comments_points: float = 1.0
    comment_ratio: float = 0.10
    docstring_share: float = 0.5
    duplication_points: float = 0.75
    duplication_similarity: float = 0.9
    duplication_min_lines: int = 6
    dead_code_points: float = 0.5
    dead_code_cost: float = 0.25
    min_own_lines: int = 20


@dataclass(frozen=True)
class _Own:
    """The student's own code: the lines of the flattened code that are not the handout's."""

    lines: set[int]
    code_lines: int  # of them, lines that hold code (not only a comment)
    share: float  # min(1, code_lines / min_own_lines): how much of the parts other than "runs" it can earn


@rule("code_quality", params=CodeQualityParams)
def rule_code_quality(ev: Evidence, p: CodeQualityParams, t: Translator) -> Verdict:
    """Score code quality: each part's share of its points, the failed models and lint findings as evidence."""
    notes = Notes(t, ev)
    models = ev.models
    ok, runs = _runs(ev, notes, t)
    own = _own_code(ev, notes, t, p)
    tool, findings, per_100, lint_share = _lint(ev, notes, t, p, own)
    comments_ratio, documented, functions, comment_share = _comments(ev, notes, t, p, own)
    pairs, dup_share = _duplication(ev, notes, t, p)
    dead, dead_share = _dead_code(ev, notes, t, p, own)
    # the handout's code is nobody's work: every part but "fonctionnel" grows with the student's own code
    s = own.share
    components = [
        component(t, "runs", p.runs_points * runs, p.runs_points, ratio(t, len(ok), len(models))),
        component(t, "lint", p.lint_points * lint_share * s, p.lint_points, t("rb_detail_per_100", value=per_100)),
        component(
            t,
            "comments",
            p.comments_points * comment_share * s,
            p.comments_points,
            t("rb_detail_percent", value=100 * comments_ratio),
        ),
        component(t, "duplication", p.duplication_points * dup_share * s, p.duplication_points, str(len(pairs))),
        component(t, "dead_code", p.dead_code_points * dead_share * s, p.dead_code_points, str(len(dead))),
    ]
    reason = t(
        "rb_reason_code_quality",
        ok=len(ok),
        total=len(models),
        lint=len(findings),
        tool=tool,
        per_100=per_100,
        ratio=100 * comments_ratio,
        documented=documented,
        functions=functions,
        dead=len(dead),
        duplicates=len(pairs),
    )
    return Verdict(reason, [c for c in components if c.max_points > 0], notes.items)


def _runs(ev: Evidence, notes: Notes, t: Translator) -> tuple[list[ModelResult], float]:
    """ "fonctionnel": (the models that trained, their share); each failed model noted at its factory."""
    models = ev.models
    ok = [m for m in models if m.status == "ok"]
    for model in models:
        if model.status != "ok":
            factory = ev.factory(model.name)
            notes.add(
                t(
                    "rb_ev_model_failed",
                    model=model.name,
                    status=t(f"status_model_{model.status}"),
                    reason=excerpt(model.reason or "", 160),
                ),
                factory.cell if factory else None,
                factory.line if factory else None,
                "flag",
            )
    runs = len(ok) / len(models) if models else 0.0
    notes.add(t("ev_runs", ok=len(ok), total=len(models)), kind="found" if models and runs == 1 else "info")
    return ok, runs


def _own_code(ev: Evidence, notes: Notes, t: Translator, p: CodeQualityParams) -> _Own:
    """The student's own lines (not the handout's), noted with how many of the code's lines are the handout's."""
    code = ev.code
    lines = rubric_code.own_lines(code)
    source = code.source.splitlines()
    own_code = sum(1 for n in lines if not source[n - 1].strip().startswith("#"))
    handout = max(0, code.code_lines - own_code)
    share = min(1.0, own_code / max(1, p.min_own_lines))
    kind = "info" if share >= 1 else "flag"
    notes.add(t("rb_ev_own_code", own=own_code, handout=handout, total=code.code_lines, min=p.min_own_lines), kind=kind)
    return _Own(lines, own_code, share)


def _lint(ev: Evidence, notes: Notes, t: Translator, p: CodeQualityParams, own: _Own) -> tuple[str, list, float, float]:
    """Lint of the student's own lines: (the tool, its findings, findings per 100 own code lines,
    the part's share); the first `lint_shown` findings noted where they are."""
    code = ev.code
    tool, findings = rubric_code.lint(code.source, p.linter, p.lint_select, p.lint_ignore)
    findings = [f for f in findings if f.line in own.lines]
    per_100 = 100 * len(findings) / max(1, own.code_lines)
    span = max(1e-9, p.lint_zero_per_100_lines - p.lint_per_100_lines)
    lint_share = (
        1.0 if at_most(per_100, p.lint_per_100_lines) else max(0.0, 1 - (per_100 - p.lint_per_100_lines) / span)
    )
    notes.add(
        t(
            "rb_ev_lint",
            tool=tool,
            count=len(findings),
            lines=own.code_lines,
            per_100=per_100,
            limit=float(p.lint_per_100_lines),
        )
    )
    for finding in findings[: p.lint_shown]:
        cell, line = code.locate(finding.line)
        notes.add(t("rb_lint_finding", tool=tool, code=finding.code, message=finding.message), cell, line, "flag")
    if len(findings) > p.lint_shown:
        notes.add(t("rb_ev_more", n=len(findings) - p.lint_shown))
    return tool, findings, per_100, lint_share


def _comments(
    ev: Evidence, notes: Notes, t: Translator, p: CodeQualityParams, own: _Own
) -> tuple[float, int, int, float]:
    """ "commenté", on the student's own lines: (comment lines per code line, documented functions,
    functions, the part's share): half for the comment ratio, half for the docstring share."""
    code = ev.code
    comments, documented, functions = rubric_code.comment_stats(code.source, own.lines)
    per_line = comments / max(1, own.code_lines)
    doc_ratio = documented / functions if functions else 1.0
    comment_share = 0.5 * min(1.0, per_line / p.comment_ratio) + 0.5 * min(1.0, doc_ratio / p.docstring_share)
    notes.add(
        t(
            "rb_ev_comments",
            comments=comments,
            lines=own.code_lines,
            ratio=100 * per_line,
            documented=documented,
            functions=functions,
        )
    )
    return per_line, documented, functions, comment_share


def _duplication(ev: Evidence, notes: Notes, t: Translator, p: CodeQualityParams) -> tuple[list, float]:
    """ "bien structuré": (the near-copy factory pairs, the part's share); each pair noted at the copy."""
    pairs, n_factories = rubric_code.duplicated_factories(ev.ingest, p.duplication_similarity, p.duplication_min_lines)
    for pair in pairs:
        factory = ev.factory(pair.second)
        notes.add(
            t(
                "rb_ev_duplicate",
                first=pair.first,
                second=pair.second,
                similarity=100 * pair.similarity,
                lines=pair.lines,
            ),
            factory.cell if factory else None,
            factory.line if factory else None,
        )
    return pairs, 1 - len(pairs) / max(1, n_factories - 1)


def _dead_code(ev: Evidence, notes: Notes, t: Translator, p: CodeQualityParams, own: _Own) -> tuple[list, float]:
    """Dead code in the student's own lines: (the items found, the part's share), each item costing `dead_code_cost`."""
    code = ev.code
    dead = [d for d in rubric_code.dead_code(code.source, {f.name for f in ev.ingest.factories}) if d.line in own.lines]
    for item in dead:
        cell, line = code.locate(item.line)
        notes.add(t(f"rb_ev_dead_{item.kind}", name=item.name), cell, line, "flag")
    # a code cell that does not parse was skipped (ingest): code that cannot run, like dead code
    skipped = [d for d in ev.ingest.dropped if d.kind == "syntax_error"]
    for item in skipped:
        notes.add(t("rb_ev_dead_unparsable", name=item.code[:60]), item.cell, item.line, "flag")
    dead = [*dead, *skipped]
    dead_share = max(0.0, 1 - p.dead_code_cost * len(dead))
    if not dead:
        notes.add(t("rb_ev_no_dead_code"), kind="found")
    return dead, dead_share
