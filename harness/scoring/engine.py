"""Score stage: the rubric file's criteria applied to stored results, every point with its evidence.

Scoring reads only stored results (``ingest.json``, the models in ``result.json``, the reference),
so a rubric or override change re-scores a class in seconds without retraining anything. Each
criterion of the rubric file names a rule below and gives its parameters; a rule splits its
criterion into parts (components), each with points, and lists what it detected and where
(evidence). The instructor's overrides file then sets or adjusts any criterion; automatic and
instructor points are both kept.

The rules, their parameters and the heuristics are documented in ``rubric/default.toml`` and in
the README ("The rubric").

>>> rubric = load_rubric()
>>> [c.id for c in rubric.criteria]
['code_quality', 'modifications', 'improvement', 'analysis', 'documentation']
"""
from __future__ import annotations

import ast
import functools
import hashlib
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.scoring.readers import code as rubric_code
from harness.scoring.readers import models as rubric_models
from harness.scoring.readers import text as rubric_text
from harness.resources import bundled
from harness.util.i18n import Translator
from harness.scoring.overrides import Overrides, load_overrides
from harness.results import (
    ComponentScore,
    CriterionScore,
    EvidenceItem,
    IngestResult,
    ModelResult,
    Score,
    SubmissionResult,
)
from harness.scoring.readers.models import CATEGORIES
from harness.scoring.readers.text import Passage, plain

# --------------------------------------------------------------------------- the rubric file


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CodeQualityParams(_Params):
    runs_points: float = 1.5
    lint_points: float = 0.75
    lint_per_100_lines: float = 1.0
    lint_zero_per_100_lines: float = 5.0
    linter: str = "ruff"
    lint_select: list[str] = ["F", "E9", "B"]
    lint_ignore: list[str] = ["F401"]
    lint_shown: int = 8
    comments_points: float = 0.75
    comment_ratio: float = 0.10
    docstring_share: float = 0.5
    duplication_points: float = 0.25
    duplication_similarity: float = 0.9
    duplication_min_lines: int = 6
    dead_code_points: float = 0.75
    dead_code_cost: float = 0.25


class ModificationsParams(_Params):
    required_categories: int = 3
    categories_points: float = 3
    justification_points: float = 2
    method_points: float = 1
    max_categories_per_step: int = 1
    context_cells: int = 3
    vocabulary: dict[str, list[str]] = {}
    reasons: list[str] = []

    @field_validator("vocabulary")
    @classmethod
    def _known_categories(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = set(value) - set(CATEGORIES)
        if unknown:
            raise ValueError(f"unknown categories {sorted(unknown)}; the five are {', '.join(CATEGORIES)}")
        return value


class Threshold(_Params):
    min_gain_pp: float
    points: float


class ImprovementParams(_Params):
    thresholds: list[Threshold]
    use_significance: bool = True
    max_points_if_not_significant: float = 2
    points_if_significantly_worse: float = 0


class AnalysisParams(_Params):
    sections_points: dict[str, float] = {"errors": 1, "robustness": 1, "conclusion": 0.5}
    min_words: int = 30
    claims_points: float = 0.5
    claim_tolerance_pp: float = 0.3
    no_claim_share: float = 0.5
    reported_difference_pp: float = 1.0
    reported_numbers_points: float = 0.0


class DocumentationParams(_Params):
    sections: list[str] = ["introduction", "baseline", "improvements", "results", "errors", "robustness", "conclusion"]
    min_words: int = 20
    heading_share: float = 0.5


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    title: dict[str, str]
    max_points: float
    rule: str
    params: dict[str, Any] = {}


class SectionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    headings: list[str]
    content: list[str] = []
    min_content_hits: int = 2


class Rubric(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    rounding: float = 0.5
    comparable_profiles: list[str] = ["full"]
    criteria: list[Criterion]
    sections: dict[str, SectionSpec] = {}
    source: str = ""
    overrides: Overrides = Field(default_factory=Overrides)

    @field_validator("sections", mode="before")
    @classmethod
    def _section_lists(cls, value):
        """A section given as a plain list of patterns is a list of heading patterns."""
        return {name: {"headings": spec} if isinstance(spec, list) else spec for name, spec in (value or {}).items()}

    @property
    def max_total(self) -> float:
        return sum(c.max_points for c in self.criteria)

    def params(self, criterion: Criterion) -> _Params:
        return RULES[criterion.rule][1](**criterion.params)


def load_rubric(path: Path | None = None, overrides: Path | None = None) -> Rubric:
    """The rubric file (default: the bundled ``rubric/default.toml``) and, optionally, the
    instructor's overrides. Unknown rules, unknown parameters and bad values are errors that
    name the criterion."""
    path = Path(path) if path else bundled("rubric", "default.toml")
    raw = path.read_bytes()
    try:
        rubric = Rubric(**tomllib.loads(raw.decode("utf-8")))
    except ValidationError as error:
        raise ValueError(f"{path}: {_plain_errors(error)}") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from error
    for criterion in rubric.criteria:
        if criterion.rule not in RULES:
            raise ValueError(f"{path}: criterion {criterion.id!r} names unknown rule {criterion.rule!r}; "
                             f"known: {', '.join(RULES)}")
        try:
            rubric.params(criterion)
        except ValidationError as error:
            raise ValueError(f"{path}: criterion {criterion.id!r} (rule {criterion.rule}): "
                             f"{_plain_errors(error)}") from error
    ids = [c.id for c in rubric.criteria]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: criterion ids must be unique ({', '.join(ids)})")
    loaded = load_overrides(overrides, {c.id: c.max_points for c in rubric.criteria}) if overrides else Overrides()
    source = f"{path.name} sha256:{hashlib.sha256(raw).hexdigest()[:16]}"
    if loaded.source:
        source += f" + {loaded.source}"
    return rubric.model_copy(update={"source": source, "overrides": loaded})


def _plain_errors(error: ValidationError) -> str:
    """pydantic's errors in one line: "unknown parameter 'lint_pionts'; parameter 'rounding': …"."""
    parts = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"])
        parts.append(f"unknown parameter {name!r}" if item["type"] == "extra_forbidden"
                     else f"parameter {name!r}: {item['msg']}")
    return "; ".join(parts)


# --------------------------------------------------------------------------- what rules look at

@dataclass(frozen=True)
class Evidence:
    """What a rule may look at: the ingest, the trained models, the reference, the run's profile."""

    ingest: IngestResult
    models: list[ModelResult]
    reference: ModelResult | None
    rubric: Rubric
    protocol_epochs: int
    protocol_batch_size: int
    profile: str = "full"
    student: str = ""

    @functools.cached_property
    def prose(self) -> list[rubric_text.Line]:
        return rubric_text.prose_lines(self.ingest)

    @functools.cached_property
    def sections(self) -> dict[str, rubric_text.Section]:
        spec = {name: s.model_dump() for name, s in self.rubric.sections.items()}
        return rubric_text.find_sections(self.prose, spec)

    @functools.cached_property
    def code(self) -> rubric_code.StudentCode:
        return rubric_code.student_code(self.ingest.code_cells)

    @functools.cached_property
    def statics(self) -> dict[str, dict]:
        return rubric_models.static_details(self.ingest)

    @functools.cached_property
    def passages(self) -> list[Passage]:
        return rubric_text.passages(self.prose)

    @property
    def is_module(self) -> bool:
        """A .py submission: one code cell without a cell number."""
        return bool(self.ingest.code_cells) and self.ingest.code_cells[0].cell is None

    @property
    def comparable(self) -> bool:
        """Whether the harness trained like the student did (all images, declared epochs)."""
        return self.profile in self.rubric.comparable_profiles

    def factory(self, name: str):
        return next((f for f in self.ingest.factories if f.name == name), None)

    def accuracy(self, name: str) -> float | None:
        if name == "reference":
            own = next((m for m in self.models if m.role == "baseline"), None)
            model = own if own is not None and own.test_accuracy is not None else self.reference
        else:
            model = next((m for m in self.models if m.name == name), None)
        return model.test_accuracy if model is not None else None


@dataclass
class Verdict:
    reason: str
    components: list[ComponentScore]
    evidence: list[EvidenceItem] = field(default_factory=list)


class Notes:
    """Evidence items in the report's language, each with where it is."""

    def __init__(self, t: Translator, ev: Evidence) -> None:
        self.t, self.ev, self.items = t, ev, []

    def where(self, cell: int | None, line: int | None) -> str | None:
        if cell is not None:
            return self.t("cell", n=cell) + (f", {self.t('line')} {line}" if line and line > 1 else "")
        if line is not None and self.ev.is_module:
            return f"{self.t('line')} {line}"
        return None

    def add(self, text: str, cell: int | None = None, line: int | None = None, kind: str = "info") -> None:
        self.items.append(EvidenceItem(text=text, where=self.where(cell, line), cell=cell, line=line, kind=kind))


def _component(t: Translator, cid: str, points: float, max_points: float, detail: str = "") -> ComponentScore:
    return ComponentScore(id=cid, label=t(f"rb_part_{cid}"), points=round(max(0.0, min(max_points, points)), 3),
                          max_points=max_points, detail=detail)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def _excerpt(text: str, limit: int = 140) -> str:
    text = re.sub(r"\s+", " ", re.sub(r"\*\*|__|`|^#+\s*|^[-*]\s+", "", text)).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --------------------------------------------------------------------------- code quality

def rule_code_quality(ev: Evidence, p: CodeQualityParams, t: Translator) -> Verdict:
    notes = Notes(t, ev)
    models = ev.models
    ok = [m for m in models if m.status == "ok"]
    for model in models:
        if model.status != "ok":
            factory = ev.factory(model.name)
            notes.add(t("rb_ev_model_failed", model=model.name, status=t(f"status_model_{model.status}"),
                        reason=_excerpt(model.reason or "", 160)),
                      factory.cell if factory else None, factory.line if factory else None, "flag")
    runs = len(ok) / len(models) if models else 0.0
    notes.add(t("ev_runs", ok=len(ok), total=len(models)), kind="found" if models and runs == 1 else "info")

    code = ev.code
    tool, findings = rubric_code.lint(code.source, p.linter, p.lint_select, p.lint_ignore)
    per_100 = 100 * len(findings) / max(1, code.code_lines)
    span = max(1e-9, p.lint_zero_per_100_lines - p.lint_per_100_lines)
    lint_share = 1.0 if per_100 <= p.lint_per_100_lines else max(0.0, 1 - (per_100 - p.lint_per_100_lines) / span)
    notes.add(t("rb_ev_lint", tool=tool, count=len(findings), lines=code.code_lines, per_100=f"{per_100:.1f}",
                limit=f"{p.lint_per_100_lines:g}"))
    for finding in findings[:p.lint_shown]:
        cell, line = code.locate(finding.line)
        notes.add(f"{tool} {finding.code}: {finding.message}", cell, line, "flag")
    if len(findings) > p.lint_shown:
        notes.add(t("rb_ev_more", n=len(findings) - p.lint_shown))

    comments, documented, functions = rubric_code.comment_stats(code.source)
    ratio = comments / max(1, code.code_lines)
    doc_ratio = documented / functions if functions else 1.0
    comment_share = 0.5 * min(1.0, ratio / p.comment_ratio) + 0.5 * min(1.0, doc_ratio / p.docstring_share)
    notes.add(t("rb_ev_comments", comments=comments, lines=code.code_lines, ratio=f"{100 * ratio:.0f}",
                documented=documented, functions=functions))

    pairs, n_factories = rubric_code.duplicated_factories(ev.ingest, p.duplication_similarity, p.duplication_min_lines)
    for pair in pairs:
        factory = ev.factory(pair.second)
        notes.add(t("rb_ev_duplicate", first=pair.first, second=pair.second, similarity=f"{100 * pair.similarity:.0f}",
                    lines=pair.lines), factory.cell if factory else None, factory.line if factory else None)
    dup_share = 1 - len(pairs) / max(1, n_factories - 1)

    dead = rubric_code.dead_code(code.source, {f.name for f in ev.ingest.factories})
    for item in dead:
        cell, line = code.locate(item.line)
        notes.add(t(f"rb_ev_dead_{item.kind}", name=item.name), cell, line, "flag")
    dead_share = max(0.0, 1 - p.dead_code_cost * len(dead))
    if not dead:
        notes.add(t("rb_ev_no_dead_code"), kind="found")

    components = [
        _component(t, "runs", p.runs_points * runs, p.runs_points, f"{len(ok)}/{len(models)}"),
        _component(t, "lint", p.lint_points * lint_share, p.lint_points, f"{per_100:.1f}/100"),
        _component(t, "comments", p.comments_points * comment_share, p.comments_points, f"{100 * ratio:.0f} %"),
        _component(t, "duplication", p.duplication_points * dup_share, p.duplication_points, str(len(pairs))),
        _component(t, "dead_code", p.dead_code_points * dead_share, p.dead_code_points, str(len(dead))),
    ]
    reason = t("rb_reason_code_quality", ok=len(ok), total=len(models), lint=len(findings), tool=tool,
               per_100=f"{per_100:.1f}", ratio=f"{100 * ratio:.0f}", documented=documented, functions=functions,
               dead=len(dead), duplicates=len(pairs))
    return Verdict(reason, [c for c in components if c.max_points > 0], notes.items)


# --------------------------------------------------------------------------- modifications

def _node_passages(ev: Evidence, nodes: list[ast.AST]) -> list[Passage]:
    """Docstrings and comments of code nodes (a factory and the helpers it uses), with their cells."""
    cells = {c.cell: c.source for c in ev.ingest.code_cells}
    line_map = ev.ingest.line_map
    out: list[Passage] = []
    for node in nodes:
        if not hasattr(node, "lineno") or node.lineno - 1 >= len(line_map):
            continue
        cell, first = line_map[node.lineno - 1]
        _, last = line_map[min(len(line_map), node.end_lineno) - 1]
        source = cells.get(cell, "")
        lines = source.splitlines()
        above = first - 1
        while above >= 1 and lines[above - 1].strip().startswith("#"):
            above -= 1                      # the comment block right above a definition
        comments = [(n, text) for n, text in rubric_text.comment_lines(source) if above < n <= last and text]
        if comments:
            out.append(Passage(" ".join(text for _, text in comments), cell, comments[0][0]))
        doc = ast.get_docstring(node) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
        if doc:
            out.append(Passage(doc.replace("\n", " "), cell, first + 1))
    return out


def _markdown_near(ev: Evidence, cell: int | None, context: int) -> list[Passage]:
    """Markdown passages just before a code cell (back to the previous factory's cell, at most
    `context` cells) and the markdown cells right after it (up to the next code cell)."""
    if cell is None or not ev.ingest.markdown:
        return []
    factory_cells = sorted({f.cell for f in ev.ingest.factories if f.cell is not None})
    previous = max((c for c in factory_cells if c < cell), default=0)
    markdown = {m.cell for m in ev.ingest.markdown}
    code_cells = {c.cell for c in ev.ingest.code_cells}
    before = sorted(c for c in markdown if previous < c < cell)[-context:]
    after, next_cell = [], cell + 1
    while next_cell in markdown and len(after) < context:
        after.append(next_cell)
        next_cell += 1
        if next_cell in code_cells:
            break
    wanted = set(before) | set(after)
    return [passage for passage in ev.passages if passage.cell in wanted]


def nearby_passages(ev: Evidence, name: str, context: int, settings: bool = False) -> list[Passage]:
    """The student's text about one model: the markdown around its factory's cell, the factory's
    (and its helpers') docstrings and comments, and every passage whose first model mention is
    this model. With `settings`, also the text around its TRAINING_CONFIG entry."""
    factory = ev.factory(name)
    static = ev.statics.get(name, {})
    found: list[Passage] = []
    if factory is not None:
        found += _markdown_near(ev, factory.cell, context)
    found += _node_passages(ev, static.get("nodes", []))
    if settings:
        config_nodes = static.get("config_nodes", [])
        found += _node_passages(ev, config_nodes)
        if config_nodes and config_nodes[0].lineno - 1 < len(ev.ingest.line_map):
            found += _markdown_near(ev, ev.ingest.line_map[config_nodes[0].lineno - 1][0], context)
    numbers = rubric_text.factory_numbers(ev.ingest.factories)
    for passage in ev.passages:
        refs = rubric_text.model_refs(plain(passage.text), numbers)
        if refs and refs[0][2] == name:     # about this model (not one that merely starts from it)
            found.append(passage)
    unique: dict[tuple, Passage] = {}
    for passage in found:
        unique.setdefault((passage.cell, passage.line, passage.text), passage)
    return list(unique.values())


SETTINGS_CATEGORIES = {"augmentation", "training", "hyperparameters"}


def justification(passages: list[Passage], vocabulary: list[str], reasons: list[str]) -> Passage | None:
    """The passage that gives a reason and names the category most (its vocabulary's distinct
    words), first in document order on ties; None when no passage does both."""
    best, best_hits = None, 0
    for passage in passages:
        text = plain(passage.text)
        if not rubric_text.matches_any(reasons, text):
            continue
        hits = sum(1 for pattern in vocabulary if re.search(pattern, text))
        if hits > best_hits:
            best, best_hits = passage, hits
    return best


def rule_modifications(ev: Evidence, p: ModificationsParams, t: Translator) -> Verdict:
    notes = Notes(t, ev)
    improved = [m for m in ev.models if m.role == "improved"]
    own = next((m for m in ev.models if m.role == "baseline" and m.spec), None)
    base = own or ev.reference
    zero = [_component(t, "categories", 0, p.categories_points),
            _component(t, "justification", 0, p.justification_points),
            _component(t, "method", 0, p.method_points)]
    if not improved or base is None:
        return Verdict(t("reason_no_improved"), [c for c in zero if c.max_points > 0], notes.items)

    def feats(model: ModelResult) -> rubric_models.Features:
        return rubric_models.features(model, ev.protocol_epochs, ev.protocol_batch_size, ev.statics.get(model.name))

    base_f = feats(base)
    if own is not None and ev.reference is not None and ev.reference.spec is not None:
        changed = rubric_models.differences(base_f, feats(ev.reference), t)
        if changed:
            notes.add(t("rb_ev_own_baseline", changes="; ".join(x for items in changed.values() for x in items)),
                      *_at(ev, own.name))
    covered: set[str] = set()
    steps, good_steps, justified, to_justify = 0, 0, 0, 0
    previous_name, previous_f = None, base_f
    for model in improved:
        f = feats(model)
        vs_base = rubric_models.differences(f, base_f, t)
        vs_prev = rubric_models.differences(f, previous_f, t) if previous_name else vs_base
        step, against = (vs_prev, previous_name) if len(vs_prev) <= len(vs_base) else (vs_base, None)
        covered |= set(vs_base)
        cell, line = _at(ev, model.name)
        label = t("rb_against_previous", model=against) if against else t("rb_against_baseline")
        if not f.known:
            notes.add(t("rb_ev_not_built", model=model.name), cell, line, "flag")
        if not step:
            notes.add(t("ev_no_difference", model=model.name) + f" ({label})", cell, line, "flag")
        for category, items in step.items():
            notes.add(f"{model.name} — {label} — {t('cat_' + category)} : {'; '.join(items)}", cell, line, "found")
        if step:
            steps += 1
            if len(step) <= p.max_categories_per_step:
                good_steps += 1
                notes.add(t("rb_ev_one_step", model=model.name, count=len(step)), cell, line)
            else:
                notes.add(t("rb_ev_many_steps", model=model.name, count=len(step),
                            names=", ".join(t("cat_" + c) for c in step), max=p.max_categories_per_step),
                          cell, line, "flag")
        for category in step:
            to_justify += 1
            passages = nearby_passages(ev, model.name, p.context_cells, settings=category in SETTINGS_CATEGORIES)
            found = justification(passages, p.vocabulary.get(category, []), p.reasons)
            if found:
                justified += 1
                notes.add(t("rb_ev_justified", model=model.name, category=t("cat_" + category),
                            excerpt=_excerpt(found.text)), found.cell, found.line, "found")
            else:
                notes.add(t("rb_ev_not_justified", model=model.name, category=t("cat_" + category)),
                          cell, line, "missing")
        previous_name, previous_f = model.name, f
    category_share = min(1.0, len(covered) / max(1, p.required_categories))
    components = [
        _component(t, "categories", p.categories_points * category_share, p.categories_points,
                   f"{len(covered)}/{p.required_categories}"),
        _component(t, "justification", p.justification_points * (justified / to_justify if to_justify else 0),
                   p.justification_points, f"{justified}/{to_justify}"),
        _component(t, "method", p.method_points * (good_steps / steps if steps else 0), p.method_points,
                   f"{good_steps}/{steps}"),
    ]
    names = ", ".join(t("cat_" + c) for c in CATEGORIES if c in covered) or "—"
    reason = t("rb_reason_modifications", count=len(covered), required=p.required_categories, names=names,
               justified=justified, total=to_justify, good=good_steps, steps=steps)
    return Verdict(reason, [c for c in components if c.max_points > 0], notes.items)


def _at(ev: Evidence, name: str) -> tuple[int | None, int | None]:
    factory = ev.factory(name)
    return (factory.cell, factory.line) if factory else (None, None)


# --------------------------------------------------------------------------- improvement

def _significance(model: ModelResult) -> tuple[str | None, str]:
    """('beats' | 'not_significant' | 'worse' | None, the evidence in numbers)."""
    sig = model.significance
    if sig is None or sig.mcnemar is None:
        return None, ""
    test, seeds = sig.mcnemar, sig.seeds
    detail = f"McNemar p = {test.p_value:.3g} (b = {test.b}, c = {test.c}, n = {test.n})"
    if seeds is not None and seeds.low is not None and seeds.high is not None:
        detail += f"; {len(seeds.seeds)} seeds: [{100 * seeds.low:+.2f}, {100 * seeds.high:+.2f}] pp"
    if test.gain > 0 and test.significant and (seeds is None or seeds.low is None or seeds.low > 0):
        return "beats", detail
    if test.gain < 0 and test.significant and (seeds is None or seeds.high is None or seeds.high < 0):
        return "worse", detail
    return "not_significant", detail


def rule_improvement(ev: Evidence, p: ImprovementParams, t: Translator) -> Verdict:
    notes = Notes(t, ev)
    top = max((s.points for s in p.thresholds), default=0.0)
    trained = [m for m in ev.models if m.role == "improved" and m.test_accuracy is not None]
    reference = ev.reference
    if not trained or reference is None or reference.test_accuracy is None:
        return Verdict(t("reason_no_improved_trained"), [_component(t, "gain", 0, top)], notes.items)
    best = max(trained, key=lambda m: m.test_accuracy)
    gain = 100 * (best.test_accuracy - reference.test_accuracy)
    steps = sorted(p.thresholds, key=lambda s: -s.min_gain_pp)
    points = next((s.points for s in steps if gain >= s.min_gain_pp), 0.0)
    threshold = next((s for s in steps if gain >= s.min_gain_pp), None)
    notes.add(t("ev_reference", acc=_pct(reference.test_accuracy)))
    for model in trained:
        verdict, detail = _significance(model)
        text = t("rb_ev_model_gain", model=model.name, acc=_pct(model.test_accuracy),
                 gain=f"{100 * (model.test_accuracy - reference.test_accuracy):+.2f}")
        notes.add(text + (f" — {detail}" if detail else ""), *_at(ev, model.name), "found" if model is best else "info")
    verdict, detail = _significance(best)
    note = ""
    if p.use_significance and verdict == "not_significant" and points > p.max_points_if_not_significant:
        points, note = p.max_points_if_not_significant, t("rb_ev_capped", points=f"{p.max_points_if_not_significant:g}")
    elif p.use_significance and verdict == "worse":
        points, note = min(points, p.points_if_significantly_worse), t("rb_ev_worse")
    if verdict is None:
        notes.add(t("rb_ev_no_significance"))
    elif note:
        notes.add(note, kind="flag")
    notes.add(t("rb_ev_threshold", gain=f"{gain:+.2f}", threshold=f"{threshold.min_gain_pp:+g}" if threshold else "—",
                points=f"{points:g}", profile=ev.profile))
    status = t(f"rb_verdict_{verdict}") if verdict else t("rb_verdict_unknown")
    reason = t("rb_reason_improvement", model=best.name, acc=_pct(best.test_accuracy),
               ref=_pct(reference.test_accuracy),
               gain=f"{gain:+.2f}", verdict=status, profile=ev.profile)
    return Verdict(reason, [_component(t, "gain", points, top, f"{gain:+.2f} pp")], notes.items)


# --------------------------------------------------------------------------- analysis

def _section_share(ev: Evidence, notes: Notes, t: Translator, name: str, min_words: int,
                   heading_share: float = 0.0) -> float:
    section = ev.sections.get(name)
    label = t("section_" + name)
    if section is None:
        notes.add(t("ev_section_missing", section=label), kind="missing")
        return 0.0
    title = section.title or t("rb_no_heading")
    how = t("rb_found_by_content") if section.how == "content" else ""
    if section.words >= min_words:
        notes.add(t("rb_ev_section", section=label, heading=title, words=section.words) + how,
                  section.cell, section.line, "found")
    else:
        notes.add(t("rb_ev_section_short", section=label, heading=title, words=section.words, min=min_words) + how,
                  section.cell, section.line, "missing")
    return heading_share + (1 - heading_share) * min(1.0, section.words / max(1, min_words))


def rule_analysis(ev: Evidence, p: AnalysisParams, t: Translator) -> Verdict:
    notes = Notes(t, ev)
    components = []
    for name, weight in p.sections_points.items():
        share = _section_share(ev, notes, t, name, p.min_words)
        words = ev.sections[name].words if name in ev.sections else 0
        components.append(_component(t, f"section_{name}", weight * share, weight, f"{words}"))

    trained = {m.name: m.test_accuracy for m in ev.models if m.role == "improved" and m.test_accuracy is not None}
    measured = max(trained, key=trained.get) if trained else None
    claims = rubric_text.best_model_claims(ev.prose, ev.sections, ev.ingest.factories)
    claim = rubric_text.claimed_best(claims)
    for other in claims:
        if other is not claim:
            notes.add(t("rb_ev_claim_other", model=other.model, sentence=_excerpt(other.sentence)),
                      other.cell, other.line)
    agree = disagreement = None
    if not any(f.role == "improved" for f in ev.ingest.factories):
        share = 0.0
        notes.add(t("rb_ev_no_improved_claim"), kind="missing")
    elif claim is None:
        conclusion = ev.sections.get("conclusion")
        share = p.no_claim_share if conclusion is not None and conclusion.words > 0 else 0.0
        notes.add(t("rb_ev_no_claim"), kind="missing")
    elif measured is None or trained.get(claim.model) is None:
        share = p.no_claim_share
        notes.add(t("rb_ev_claim_unmeasured", model=claim.model, sentence=_excerpt(claim.sentence)),
                  claim.cell, claim.line)
    else:
        gap = 100 * (trained[measured] - trained[claim.model])
        agree = claim.model == measured or gap <= p.claim_tolerance_pp
        text = t("rb_ev_claim", model=claim.model, sentence=_excerpt(claim.sentence), measured=measured,
                 acc=_pct(trained[measured]), claimed_acc=_pct(trained[claim.model]), profile=ev.profile)
        if claim.model == measured:
            share = 1.0
            notes.add(t("rb_ev_claim_same", model=claim.model, sentence=_excerpt(claim.sentence),
                        acc=_pct(trained[measured]), profile=ev.profile), claim.cell, claim.line, "found")
        elif agree:
            share = 1.0
            notes.add(text + t("rb_ev_claim_agrees"), claim.cell, claim.line, "found")
        elif ev.comparable:
            share, disagreement = 0.0, True
            notes.add(text + t("rb_ev_claim_disagrees", gap=f"{gap:.2f}"), claim.cell, claim.line, "flag")
        else:
            share = 1.0
            notes.add(text + t("rb_ev_claim_not_comparable", gap=f"{gap:.2f}"), claim.cell, claim.line)
    components.append(_component(t, "claims", p.claims_points * share, p.claims_points))

    compared, flagged = _reported_numbers(ev, notes, t, p)
    if p.reported_numbers_points > 0:
        share = 1 - flagged / compared if compared else 1.0
        components.append(_component(t, "reported", p.reported_numbers_points * share, p.reported_numbers_points,
                                     f"{flagged}/{compared}"))
    written = [t("section_" + n) for n in p.sections_points if n in ev.sections and ev.sections[n].words >= p.min_words]
    reason = t("rb_reason_analysis", found=len(written), total=len(p.sections_points), names=", ".join(written) or "—",
               claim=(t("rb_claim_agrees") if agree else t("rb_claim_disagrees") if disagreement else
                      t("rb_claim_not_comparable", profile=ev.profile) if agree is False else
                      t("rb_claim_unchecked") if claim is not None else t("rb_claim_none")))
    return Verdict(reason, [c for c in components if c.max_points > 0], notes.items)


def _reported_numbers(ev: Evidence, notes: Notes, t: Translator, p: AnalysisParams) -> tuple[int, int]:
    """Accuracies the student printed, against the harness's: flagged when they differ by more
    than `reported_difference_pp` on a comparable profile. Returns (compared, flagged)."""
    last: dict[str, rubric_text.Reported] = {}
    for reported in rubric_text.reported_accuracies(ev.ingest):
        last[reported.model] = reported
    compared = flagged = 0
    for name, reported in last.items():
        measured = ev.accuracy(name)
        if measured is None:
            continue
        compared += 1
        label = t("rb_reference_label") if name == "reference" else name
        diff = 100 * (reported.accuracy - measured)
        text = t("rb_ev_reported", model=label, reported=_pct(reported.accuracy), measured=_pct(measured),
                 diff=f"{diff:+.2f}", line=_excerpt(reported.text, 80), profile=ev.profile)
        if not ev.comparable:
            notes.add(text + t("rb_ev_reported_not_comparable"), reported.cell)
        elif abs(diff) > p.reported_difference_pp:
            flagged += 1
            notes.add(text + t("rb_ev_reported_differs", limit=f"{p.reported_difference_pp:g}"), reported.cell,
                      kind="flag")
        else:
            notes.add(text, reported.cell, kind="found")
    return compared, flagged


# --------------------------------------------------------------------------- documentation

def rule_documentation(ev: Evidence, p: DocumentationParams, t: Translator) -> Verdict:
    notes = Notes(t, ev)
    shares = [_section_share(ev, notes, t, name, p.min_words, p.heading_share) for name in p.sections]
    total_words = sum(rubric_text.count_words(line.text) for line in ev.prose)
    source = t("rb_prose_module") if ev.is_module else t("rb_prose_markdown")
    notes.add(t("rb_ev_words", words=total_words, source=source))
    found = [n for n in p.sections if n in ev.sections]
    missing = [t("section_" + n) for n in p.sections if n not in ev.sections or ev.sections[n].words < p.min_words]
    share = sum(shares) / len(shares) if shares else 0.0
    reason = t("rb_reason_documentation", found=len(found), total=len(p.sections), words=total_words,
               missing=", ".join(missing) or "—")
    return Verdict(reason, [_component(t, "sections", share, 1.0, f"{len(found)}/{len(p.sections)}")], notes.items)


# --------------------------------------------------------------------------- engine

RULES: dict[str, tuple[Callable[[Evidence, Any, Translator], Verdict], type[_Params]]] = {
    "code_quality": (rule_code_quality, CodeQualityParams),
    "modifications": (rule_modifications, ModificationsParams),
    "improvement": (rule_improvement, ImprovementParams),
    "analysis": (rule_analysis, AnalysisParams),
    "documentation": (rule_documentation, DocumentationParams),
}


def _round(points: float, step: float) -> float:
    """To the nearest multiple of `step`, halves up (1.25 -> 1.5 with step 0.5), as graders round."""
    return math.floor(points / step + 0.5 + 1e-9) * step if step > 0 else round(points, 3)


def _apply_override(criterion: CriterionScore, rubric: Rubric, student: str, t: Translator) -> CriterionScore:
    override = rubric.overrides.for_student(student).get(criterion.id)
    if override is None:
        return criterion
    final = override.apply(criterion.auto_points or 0.0, criterion.max_points)
    evidence = [*criterion.evidence, EvidenceItem(
        text=t("rb_ev_override", change=override.describe(), auto=f"{criterion.auto_points:g}", final=f"{final:g}",
               comment=override.comment or "—"), kind="flag")]
    return criterion.model_copy(update={"points": final, "instructor_points": final,
                                        "instructor_comment": override.comment or None, "evidence": evidence})


def score(evidence: Evidence, t: Translator) -> Score:
    rubric = evidence.rubric
    criteria = []
    for criterion in rubric.criteria:
        function, _ = RULES[criterion.rule]
        verdict = function(evidence, rubric.params(criterion), t)
        raw = sum(c.points for c in verdict.components)
        out_of = sum(c.max_points for c in verdict.components)
        points = raw * criterion.max_points / out_of if out_of > 0 else 0.0
        points = _round(max(0.0, min(criterion.max_points, points)), rubric.rounding)
        result = CriterionScore(id=criterion.id, title=criterion.title.get(t.language, criterion.id), points=points,
                                max_points=criterion.max_points, reason=verdict.reason, evidence=verdict.evidence,
                                components=verdict.components, auto_points=points)
        criteria.append(_apply_override(result, rubric, evidence.student or evidence.ingest.student, t))
    return _total(criteria, rubric)


def _total(criteria: list[CriterionScore], rubric: Rubric) -> Score:
    return Score(total=round(sum(c.points for c in criteria), 3), max_total=rubric.max_total, criteria=criteria,
                 rubric=rubric.source, total_auto=round(sum(c.auto_points or 0.0 for c in criteria), 3),
                 overrides=rubric.overrides.source or None)


def failed_score(rubric: Rubric, reason: str, t: Translator, student: str = "") -> Score:
    """A submission the harness could not read: zero on every criterion, with the reason (the
    instructor's overrides still apply: they may grade it by hand)."""
    criteria = [_apply_override(CriterionScore(id=c.id, title=c.title.get(t.language, c.id), points=0.0,
                                               max_points=c.max_points, reason=reason, auto_points=0.0),
                                rubric, student, t)
                for c in rubric.criteria]
    return _total(criteria, rubric)


def score_result(rubric: Rubric, t: Translator, result: SubmissionResult, ingest: IngestResult,
                 protocol_epochs: int, protocol_batch_size: int) -> SubmissionResult:
    """(Re-)score one stored result: what `harness grade` and `harness score` both call."""
    if ingest.status != "ok":
        return result.model_copy(update={"score": failed_score(rubric, result.reason or ingest.reason or "", t,
                                                               result.student)})
    evidence = Evidence(ingest=ingest, models=result.models,
                        reference=result.reference.model if result.reference else None, rubric=rubric,
                        protocol_epochs=protocol_epochs, protocol_batch_size=protocol_batch_size,
                        profile=result.run.profile, student=result.student)
    return result.model_copy(update={"score": score(evidence, t)})

