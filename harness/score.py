"""Score stage: the rubric file's criteria applied to stored results, every point with its reason.

Scoring reads only ``ingest.json`` and ``training.json`` (and the reference), so a rubric
change re-scores a class in seconds without retraining anything. Each criterion names a rule
below; its thresholds come from the rubric file.

>>> rubric = load_rubric()
>>> [c.id for c in rubric.criteria]
['code_quality', 'modifications', 'improvement', 'analysis', 'documentation']
"""
from __future__ import annotations

import hashlib
import io
import re
import tomllib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from pyflakes.api import check
from pyflakes.reporter import Reporter

from harness.config import bundled
from harness.i18n import Translator
from harness.ingest import python_source
from harness.results import CriterionScore, IngestResult, ModelResult, Score

CATEGORIES = ("architecture", "regularization", "hyperparameters", "augmentation", "training")
STRUCTURAL_LAYERS = {"Conv2D", "Conv1D", "SeparableConv2D", "DepthwiseConv2D", "Dense", "MaxPooling2D",
                     "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten"}
REGULARIZATION_LAYERS = {"Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "BatchNormalization",
                         "LayerNormalization", "ActivityRegularization", "AlphaDropout"}
AUGMENTATION_LAYER = re.compile(r"^Random\w+$")
SCHEDULE_CALLBACKS = {"LearningRateScheduler", "ReduceLROnPlateau"}


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    title: dict[str, str]
    max_points: float
    rule: str
    params: dict[str, Any] = {}


class Rubric(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    criteria: list[Criterion]
    sections: dict[str, list[str]] = {}
    source: str = ""

    @property
    def max_total(self) -> float:
        return sum(c.max_points for c in self.criteria)


def load_rubric(path: Path | None = None) -> Rubric:
    path = Path(path) if path else bundled("rubric", "default.toml")
    raw = path.read_bytes()
    rubric = Rubric(**tomllib.loads(raw.decode("utf-8")))
    unknown = [c.rule for c in rubric.criteria if c.rule not in RULES]
    if unknown:
        raise ValueError(f"{path}: unknown rule(s) {', '.join(unknown)}; known: {', '.join(RULES)}")
    return rubric.model_copy(update={"source": f"{path.name} sha256:{hashlib.sha256(raw).hexdigest()[:16]}"})


@dataclass(frozen=True)
class Evidence:
    """What a rule may look at: the ingest, the trained models, the reference."""

    ingest: IngestResult
    models: list[ModelResult]
    reference: ModelResult | None
    rubric: Rubric
    protocol_epochs: int
    protocol_batch_size: int


Verdict = tuple[float, str, list[str]]  # points, reason, evidence


# --------------------------------------------------------------------------- text analysis

def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def _words(text: str) -> int:
    return len(re.findall(r"[^\W\d_]{2,}", text))


def _heading(line: str, next_line: str) -> str | None:
    stripped = line.strip()
    if stripped.startswith("#"):
        return stripped.lstrip("#").strip()
    if re.fullmatch(r"\*\*[^*]{2,80}\*\*:?", stripped):
        return stripped.strip("*: ")
    if stripped and re.fullmatch(r"[-=~]{3,}", next_line.strip()) and len(stripped.split()) <= 8:
        return stripped
    if re.fullmatch(r"\d{1,2}[.)]\s+\S.{0,70}", stripped) and len(stripped.split()) <= 8:
        return stripped
    return None


def report_blocks(ingest: IngestResult) -> list[tuple[int | None, str]]:
    """The student's prose: markdown cells, or a module's docstrings and comments, with locations."""
    if ingest.markdown:
        return [(m.cell, m.text) for m in ingest.markdown]
    import ast

    source = ingest.code_cells[0].source if ingest.code_cells else ""
    blocks: list[tuple[int | None, str]] = []
    try:
        tree = ast.parse(source)
    except SyntaxError:
        tree = None
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node)
                if doc:
                    blocks.append((getattr(node, "lineno", 1), doc))
    comments = [line.strip().lstrip("#").strip() for line in source.splitlines() if line.strip().startswith("#")]
    if comments:
        blocks.append((None, "\n".join(comments)))
    return blocks


def find_sections(ingest: IngestResult, patterns: dict[str, list[str]]) -> dict[str, dict]:
    """For each deliverable section: its heading, where it is, and the words of prose under it.

    A section runs from its heading to the next heading, across cells. When several headings
    match one section (a title that mentions "amélioration", then "3. Améliorations
    proposées"), the one with the most prose under it is kept.
    """
    candidates: list[dict] = []
    current: dict | None = None
    for where, text in report_blocks(ingest):
        lines = text.splitlines()
        for index, line in enumerate(lines):
            title = _heading(line, lines[index + 1] if index + 1 < len(lines) else "")
            if title is not None:
                plain = _plain(title)
                section = next((name for name, regexes in patterns.items()
                                if any(re.search(r, plain) for r in regexes)), None)
                current = {"section": section, "where": where, "heading": title, "words": 0}
                candidates.append(current)
            elif current is not None:
                current["words"] += _words(line)
    found: dict[str, dict] = {}
    for candidate in candidates:
        name = candidate.pop("section")
        if name and (name not in found or candidate["words"] > found[name]["words"]):
            found[name] = candidate
    return found


def _where(t: Translator, where: int | None) -> str:
    return t("cell", n=where) if where is not None else t("module_text")


# --------------------------------------------------------------------------- model comparison

def _structure(model: ModelResult) -> list[str]:
    if not model.spec:
        return []
    out = []
    for layer in model.spec.layers:
        if layer.class_name in STRUCTURAL_LAYERS:
            c = layer.config
            detail = c.get("filters") or c.get("units") or ""
            kernel = c.get("kernel_size")
            out.append(f"{layer.class_name}({detail}{', ' + 'x'.join(map(str, kernel)) if kernel else ''})")
    return out


def _count(model: ModelResult, predicate: Callable[[str], bool]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for layer in (model.spec.layers if model.spec else []):
        if predicate(layer.class_name):
            counts[layer.class_name] = counts.get(layer.class_name, 0) + 1
    return counts


def _regularizers(model: ModelResult) -> int:
    return sum(1 for layer in (model.spec.layers if model.spec else []) if layer.config.get("kernel_regularizer"))


def model_differences(model: ModelResult, baseline: ModelResult, epochs: int, batch_size: int,
                      t: Translator) -> dict[str, list[str]]:
    """Category -> the exact differences between `model` and `baseline`, read from the built models."""
    found: dict[str, list[str]] = {c: [] for c in CATEGORIES}
    mine, theirs = _structure(model), _structure(baseline)
    if mine != theirs:
        convs_m = sum(1 for s in mine if s.startswith("Conv"))
        convs_b = sum(1 for s in theirs if s.startswith("Conv"))
        found["architecture"].append(t("diff_architecture", before=" → ".join(theirs) or "—",
                                       after=" → ".join(mine) or "—", convs_before=convs_b, convs_after=convs_m))
    reg_m, reg_b = _count(model, REGULARIZATION_LAYERS.__contains__), _count(baseline, REGULARIZATION_LAYERS.__contains__)
    for name, count in sorted(reg_m.items()):
        if count > reg_b.get(name, 0):
            found["regularization"].append(t("diff_adds_layer", layer=name, count=count - reg_b.get(name, 0)))
    if _regularizers(model) > _regularizers(baseline):
        found["regularization"].append(t("diff_regularizer", count=_regularizers(model)))
    aug = _count(model, lambda n: bool(AUGMENTATION_LAYER.match(n)))
    if aug:
        found["augmentation"].append(t("diff_adds_layer", layer=", ".join(sorted(aug)), count=sum(aug.values())))
    settings = model.settings
    if settings and settings.augmentation:
        found["augmentation"].append(t("diff_augmentation", what=settings.augmentation))
    if model.spec and baseline.spec:
        if model.spec.optimizer != baseline.spec.optimizer:
            found["hyperparameters"].append(t("diff_optimizer", before=baseline.spec.optimizer, after=model.spec.optimizer))
        lr_m, lr_b = model.spec.learning_rate, baseline.spec.learning_rate
        if lr_m and lr_b and abs(lr_m - lr_b) > 1e-9 * max(lr_m, lr_b):
            found["hyperparameters"].append(t("diff_learning_rate", before=f"{lr_b:g}", after=f"{lr_m:g}"))
    if settings:
        declared = settings.declared
        if declared.get("batch_size") and declared["batch_size"] != batch_size:
            found["hyperparameters"].append(t("diff_batch_size", before=batch_size, after=declared["batch_size"]))
        if declared.get("epochs") and declared["epochs"] != epochs:
            found["training"].append(t("diff_epochs", before=epochs, after=declared["epochs"]))
        for callback in settings.callbacks:
            if callback == "EarlyStopping" or callback in SCHEDULE_CALLBACKS:
                found["training"].append(t("diff_callback", callback=callback))
    return {c: v for c, v in found.items() if v}


# --------------------------------------------------------------------------- rules

def rule_code_quality(ev: Evidence, p: dict, t: Translator) -> Verdict:

    trained = [m for m in ev.models if m.status == "ok"]
    runs = p["runs_points"] * (len(trained) / len(ev.models) if ev.models else 0)
    out, err = io.StringIO(), io.StringIO()
    source = python_source(ev.ingest.code_cells)
    check(source, "submission", Reporter(out, err))
    findings = [line for line in out.getvalue().splitlines() if line.strip()]
    code_lines = sum(1 for c in ev.ingest.code_cells for line in c.source.splitlines() if line.strip())
    per_100 = 100 * len(findings) / max(1, len(source.splitlines()))
    lint = p["lint_points"] * (1.0 if per_100 <= p["lint_per_100_lines"] else
                               max(0.0, 1 - (per_100 - p["lint_per_100_lines"]) / (4 * p["lint_per_100_lines"])))
    comment_lines = sum(1 for c in ev.ingest.code_cells for line in c.source.splitlines()
                        if line.strip().startswith("#"))
    docstrings = sum(1 for f in ev.ingest.factories if f.has_docstring)
    ratio = (comment_lines + docstrings) / max(1, code_lines)
    comments = p["comments_points"] * min(1.0, ratio / p["comment_ratio"])
    points = runs + lint + comments
    evidence = [t("ev_runs", ok=len(trained), total=len(ev.models)),
                t("ev_lint", count=len(findings), per_100=f"{per_100:.1f}"),
                *[f"pyflakes: {line.split(':', 1)[-1].strip()}" for line in findings[:5]],
                t("ev_comments", comments=comment_lines, docstrings=docstrings, ratio=f"{100 * ratio:.0f}")]
    reason = t("reason_code_quality", ok=len(trained), total=len(ev.models), lint=len(findings),
               ratio=f"{100 * ratio:.0f}")
    return points, reason, evidence


def rule_modifications(ev: Evidence, p: dict, t: Translator) -> Verdict:
    improved = [m for m in ev.models if m.role == "improved" and m.spec]
    baseline = next((m for m in ev.models if m.role == "baseline" and m.spec), None) or ev.reference
    if not improved or baseline is None:
        return 0.0, t("reason_no_improved"), []
    covered: set[str] = set()
    evidence = []
    for model in improved:
        diffs = model_differences(model, baseline, ev.protocol_epochs, ev.protocol_batch_size, t)
        covered |= set(diffs)
        for category, items in diffs.items():
            evidence.append(f"{model.name} — {t('cat_' + category)}: {'; '.join(items)}")
        if not diffs:
            evidence.append(t("ev_no_difference", model=model.name))
    points = min(p["points_per_category"] * len(covered), 1e9)
    names = ", ".join(t("cat_" + c) for c in CATEGORIES if c in covered) or "—"
    reason = t("reason_modifications", count=len(covered), required=p["required_categories"], names=names)
    return points, reason, evidence


def rule_improvement(ev: Evidence, p: dict, t: Translator) -> Verdict:
    trained = [m for m in ev.models if m.role == "improved" and m.test_accuracy is not None]
    if not trained or ev.reference is None or ev.reference.test_accuracy is None:
        return 0.0, t("reason_no_improved_trained"), []
    best = max(trained, key=lambda m: m.test_accuracy)
    gain = 100 * (best.test_accuracy - ev.reference.test_accuracy)
    points = next((step["points"] for step in p["thresholds"] if gain >= step["min_gain_pp"]), 0.0)
    evidence = [f"{m.name}: {100 * m.test_accuracy:.2f} %" for m in trained]
    evidence.append(t("ev_reference", acc=f"{100 * ev.reference.test_accuracy:.2f}"))
    reason = t("reason_improvement", model=best.name, acc=f"{100 * best.test_accuracy:.2f}",
               ref=f"{100 * ev.reference.test_accuracy:.2f}", gain=f"{gain:+.2f}")
    return points, reason, evidence


def _section_rule(ev: Evidence, p: dict, t: Translator, reason_key: str) -> Verdict:
    sections = find_sections(ev.ingest, ev.rubric.sections)
    wanted = p["sections"]
    credited, evidence = 0, []
    for name in wanted:
        info = sections.get(name)
        if info is None:
            evidence.append(t("ev_section_missing", section=t("section_" + name)))
        elif info["words"] < p["min_words"]:
            evidence.append(t("ev_section_short", section=t("section_" + name), heading=info["heading"],
                              where=_where(t, info["where"]), words=info["words"], min=p["min_words"]))
        else:
            credited += 1
            evidence.append(t("ev_section_found", section=t("section_" + name), heading=info["heading"],
                              where=_where(t, info["where"]), words=info["words"]))
    missing = [t("section_" + n) for n in wanted if n not in sections or sections[n]["words"] < p["min_words"]]
    return credited, t(reason_key, found=credited, total=len(wanted), missing=", ".join(missing) or "—"), evidence


def rule_analysis(ev: Evidence, p: dict, t: Translator) -> Verdict:
    credited, reason, evidence = _section_rule(ev, p, t, "reason_analysis")
    return credited / len(p["sections"]), reason, evidence  # scaled to max_points by score()


def rule_documentation(ev: Evidence, p: dict, t: Translator) -> Verdict:
    credited, reason, evidence = _section_rule(ev, p, t, "reason_documentation")
    return credited / len(p["sections"]), reason, evidence


RULES: dict[str, tuple[Callable[[Evidence, dict, Translator], Verdict], bool]] = {
    # rule -> (function, whether it returns a fraction of max_points rather than points)
    "code_quality": (rule_code_quality, False),
    "modifications": (rule_modifications, False),
    "improvement": (rule_improvement, False),
    "analysis": (rule_analysis, True),
    "documentation": (rule_documentation, True),
}


def _round_half(points: float) -> float:
    return round(points * 2) / 2


def score(evidence: Evidence, t: Translator) -> Score:
    criteria = []
    for criterion in evidence.rubric.criteria:
        function, fractional = RULES[criterion.rule]
        points, reason, details = function(evidence, criterion.params, t)
        if fractional:
            points *= criterion.max_points
        points = _round_half(max(0.0, min(criterion.max_points, points)))
        criteria.append(CriterionScore(id=criterion.id, title=criterion.title.get(t.language, criterion.id),
                                       points=points, max_points=criterion.max_points, reason=reason,
                                       evidence=details))
    return Score(total=sum(c.points for c in criteria), max_total=evidence.rubric.max_total,
                 criteria=criteria, rubric=evidence.rubric.source)


def failed_score(rubric: Rubric, reason: str, t: Translator) -> Score:
    """A submission the harness could not read: zero on every criterion, with the reason."""
    criteria = [CriterionScore(id=c.id, title=c.title.get(t.language, c.id), points=0.0, max_points=c.max_points,
                               reason=reason) for c in rubric.criteria]
    return Score(total=0.0, max_total=rubric.max_total, criteria=criteria, rubric=rubric.source)
