"""Rule ``code_quality``: the factories run, the code lints clean, is commented, well structured, not dead.

Five parts ("fonctionnel", lint, "commenté", "bien structuré", dead code), each scored by a
helper below that also writes its evidence; their thresholds are the parameters, documented in
``rubric/default.toml``. "Bien structuré" reads all the code, not only the factories
(:mod:`harness.scoring.readers.structure`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.ingest import legacy
from harness.ingest.read import blank_shell_and_magic_lines
from harness.results import ModelResult
from harness.scoring.evidence import Evidence, Notes, Verdict, component, excerpt, ratio
from harness.scoring.readers import code as rubric_code
from harness.scoring.readers.structure import Structure, read_structure
from harness.scoring.rules.registry import RuleParams, rule
from harness.scoring.thresholds import at_most
from harness.util.i18n import Translator


class CodeQualityParams(RuleParams):
    """The ``code_quality`` criterion's parameters (see ``rubric/default.toml``)."""

    runs_points: float = 1.0
    legacy_cost: float = 0.5
    legacy_shown: int = 4
    lint_points: float = 0.5
    lint_per_100_lines: float = 1.0
    lint_zero_per_100_lines: float = 5.0
    linter: str = "ruff"
    lint_select: list[str] = ["F", "E9", "B"]
    lint_ignore: list[str] = ["F401", "B905", "B028"]
    lint_shown: int = 8
    comments_points: float = 1.0
    comment_ratio: float = 0.10
    docstring_share: float = 0.5
    structure_points: float = 1.0
    structure_cost: float = 0.25
    duplication_similarity: float = 0.9
    duplication_min_lines: int = 4
    builder_copies: Literal["each", "once", "none"] = "once"  # what builders restating the layers cost
    function_share: float = 0.3
    long_function_lines: int = 60
    cryptic_share: float = 0.3
    cryptic_min: int = 5
    out_of_order_min: int = 2
    dead_code_points: float = 0.5
    dead_code_cost: float = 0.25
    min_own_lines: int = 20
    full_marks_min_own_lines: int = 0  # under this many lines of the student's own code, at most max - 0.5


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
    runs *= 1 - _legacy(ev, notes, t, p)
    own = _own_code(ev, notes, t, p)
    tool, findings, per_100, lint_share = _lint(ev, notes, t, p, own)
    comments_ratio, documented, functions, comment_share = _comments(ev, notes, t, p, own)
    structure, structure_share, structure_findings = _structure(ev, notes, t, p, own)
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
        component(
            t, "structure", p.structure_points * structure_share * s, p.structure_points, str(structure_findings)
        ),
        component(t, "dead_code", p.dead_code_points * dead_share * s, p.dead_code_points, str(len(dead))),
    ]
    components = _short_of_full_marks(components, own, notes, t, p)
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
        copies=len(structure.copies),
        structure=structure_findings,
    )
    return Verdict(reason, [c for c in components if c.max_points > 0], notes.items)


def _short_of_full_marks(components: list, own: _Own, notes: Notes, t: Translator, p: CodeQualityParams) -> list:
    """Full marks need the student's own work to show it: under `full_marks_min_own_lines` lines of their own
    code, the criterion stays half a point under its maximum, taken from "structure" (a short clean notebook
    is not "bien structuré" at its best: there is little to structure)."""
    total = sum(c.points for c in components)
    ceiling = sum(c.max_points for c in components) - 0.5
    if own.code_lines >= p.full_marks_min_own_lines or total <= ceiling:
        return components
    notes.add(t("rb_ev_short_of_full", own=own.code_lines, min=p.full_marks_min_own_lines), kind="flag")
    excess = total - ceiling
    return [
        c.model_copy(update={"points": max(0.0, c.points - excess)}) if c.id == "structure" else c for c in components
    ]


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


def _legacy(ev: Evidence, notes: Notes, t: Translator, p: CodeQualityParams) -> float:
    """The share of "fonctionnel" lost to Keras 2 idioms (`legacy_cost` if any): the harness adapts them
    to train the models, but the code as handed in does not run on the course's Keras 3."""
    # cell by cell: one cell that does not parse (prose typed into it) hides nothing in the others
    found = [
        (code.cell, idiom)
        for code in ev.ingest.code_cells
        for idiom in legacy.legacy_idioms(blank_shell_and_magic_lines(code.source, code.cell, []))
    ]
    if not found or p.legacy_cost <= 0:
        return 0.0
    notes.add(t("rb_ev_legacy", count=len(found), cost=round(100 * p.legacy_cost)), kind="flag")
    for cell, idiom in found[: p.legacy_shown]:
        reason = t(idiom.message.key, **idiom.message.values) if idiom.message else idiom.reason
        notes.add(
            t("rb_ev_legacy_line", before=idiom.before, after=idiom.after, reason=reason), cell, idiom.line, "flag"
        )
    if len(found) > p.legacy_shown:
        notes.add(t("rb_ev_more", n=len(found) - p.legacy_shown))
    return min(1.0, p.legacy_cost)


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
    if ev.ingest.kind == "notebook":  # a cell's last expression is shown by Jupyter, not useless
        shown = rubric_code.displayed_expressions(ev.ingest.code_cells)
        findings = [f for f in findings if not (f.code == "B018" and code.locate(f.line) in shown)]
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
    comment_part = min(1.0, per_line / p.comment_ratio)
    # no function of the student's own: nothing to document, the comments are the whole part
    doc_part = min(1.0, documented / functions / p.docstring_share) if functions else comment_part
    comment_share = 0.5 * comment_part + 0.5 * doc_part
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


def _structure(
    ev: Evidence, notes: Notes, t: Translator, p: CodeQualityParams, own: _Own
) -> tuple[Structure, float, int]:
    """ "bien structuré", over all the code: (what the structure reader found, the part's share, its findings),
    each finding noted where it is and costing `structure_cost` of the part. Training that validates on the
    test set is one: a methodological bug built into the code (harness/scoring/readers/methodology.py)."""
    code = ev.code
    structure = read_structure(
        ev.ingest.code_cells,
        _handout_code_lines(code, own),
        similarity=p.duplication_similarity,
        min_lines=p.duplication_min_lines,
        long_function=p.long_function_lines,
        module=ev.ingest.kind != "notebook",
    )
    each, builders = _copies(structure, p)
    for copy in each:
        notes.add(
            t(
                "rb_ev_copy",
                second=_block_name(t, code, copy.second),
                first=_block_name(t, code, copy.first),
                similarity=100 * copy.similarity,
                lines=copy.second.lines,
            ),
            *code.locate(copy.second.start),
            "flag",
        )
    if builders:
        names = t.join(", ", [_block_name(t, code, c.second) for c in builders])
        kind = "flag" if p.builder_copies == "once" else "info"
        notes.add(
            t("rb_ev_builder_copies", names=names, count=len(builders)), *code.locate(builders[0].second.start), kind
        )
    if structure.function_share < p.function_share:
        notes.add(
            t(
                "rb_ev_outside_functions",
                share=100 * structure.function_share,
                lines=structure.code_lines,
                least=100 * p.function_share,
            ),
            kind="flag",
        )
    if structure.training_on_import is not None:
        notes.add(t("rb_ev_training_on_import"), *code.locate(structure.training_on_import), "flag")
    for name, line, lines in structure.long_functions:
        notes.add(
            t("rb_ev_long_function", name=name, lines=lines, limit=p.long_function_lines), *code.locate(line), "flag"
        )
    if _out_of_order(structure, p):
        cells = ", ".join(str(cell) for cell in structure.out_of_order[:8])
        notes.add(t("rb_ev_out_of_order", count=len(structure.out_of_order), cells=cells), kind="flag")
    if _too_cryptic(structure, p):
        names = ", ".join(f"« {name} »" for name, _ in structure.cryptic[:10])
        notes.add(
            t("rb_ev_cryptic_names", count=len(structure.cryptic), total=structure.names, names=names), kind="flag"
        )
    hidden = {
        "global": "rb_ev_hidden_state_global",
        "input": "rb_ev_hidden_state_input",
        "widget": "rb_ev_hidden_state_widget",
    }
    for kind, line in structure.hidden_state:
        notes.add(t(hidden[kind]), *code.locate(line), "flag")
    on_test = ev.validation_on_test.calls
    if on_test:
        cell, line = on_test[0]
        notes.add(t("rb_ev_validation_on_test", count=len(on_test)), cell, line, "flag")
    findings = _findings(structure, p) + bool(on_test)
    if not findings:
        notes.add(t("rb_ev_well_structured", share=100 * structure.function_share), kind="found")
    return structure, max(0.0, 1 - p.structure_cost * findings), findings


def _findings(structure: Structure, p: CodeQualityParams) -> int:
    """How many structure findings cost points: each copy, long function and kind of hidden state, and each of
    the four flags."""
    flags = (
        structure.function_share < p.function_share,
        structure.training_on_import is not None,
        _too_cryptic(structure, p),
        _out_of_order(structure, p),
    )
    each, builders = _copies(structure, p)
    copies = len(each) + (min(1, len(builders)) if p.builder_copies == "once" else 0)
    return copies + len(structure.long_functions) + len(structure.hidden_state) + sum(flags)


def _copies(structure: Structure, p: CodeQualityParams) -> tuple[list, list]:
    """(the copies that are a finding each, the copies between builders that `builder_copies` groups): one
    builder per modification is the assignment's own form, so its restated layers cost once, or nothing."""
    if p.builder_copies == "each":
        return structure.copies, []
    return [c for c in structure.copies if not c.builders], [c for c in structure.copies if c.builders]


def _out_of_order(structure: Structure, p: CodeQualityParams) -> bool:
    return p.out_of_order_min > 0 and len(structure.out_of_order) >= p.out_of_order_min


def _too_cryptic(structure: Structure, p: CodeQualityParams) -> bool:
    count = len(structure.cryptic)
    return count >= p.cryptic_min and count >= p.cryptic_share * structure.names


def _handout_code_lines(code: rubric_code.StudentCode, own: _Own) -> set[int]:
    """The flattened code's lines that hold code and are not the student's: the handout's."""
    return rubric_code.code_line_numbers(code.source) - own.lines


def _block_name(t: Translator, code: rubric_code.StudentCode, block) -> str:
    """A block as the student finds it: the function's name, or the cell and line (the line in a module)."""
    if block.name:
        return t("rb_block_function", name=block.name)
    cell, line = code.locate(block.start)
    return t("rb_block_cell", cell=cell, line=line) if cell is not None else t("rb_block_line", line=line)


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
