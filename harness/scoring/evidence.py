"""What the rules look at and what they hand back: the evidence, a verdict, its notes, shared helpers.

``Evidence`` gathers one submission's stored results (ingest, trained models, reference) with the
rubric and the run's profile, and derives lazily what several rules read (the prose, its sections,
the student's code, the built models' static details). A rule returns a ``Verdict``: its reason,
its parts (components) and the evidence items it wrote through ``Notes``. The helpers below are
the ones more than one rule uses, or that a new rule would (the passages about a model).
"""

from __future__ import annotations

import ast
import functools
import numbers
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.results import ComponentScore, EvidenceItem, IngestResult, Message, ModelResult
from harness.scoring.readers import code as rubric_code
from harness.scoring.readers import methodology as rubric_methodology
from harness.scoring.readers import models as rubric_models
from harness.scoring.readers import text as rubric_text
from harness.scoring.readers.text import Passage, plain
from harness.util.i18n import CONCAT, Said, Translator

if TYPE_CHECKING:
    # Only an annotation: rubric.py imports the rule registry, whose rules import this module.
    from harness.scoring.rubric import Rubric


FRENCH_WORDS = frozenset("le la les des est et une un du pour que dans sur avec pas plus ce qui au".split())
ENGLISH_WORDS = frozenset("the is and of to with that for this on are it was as by not".split())


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
        """The student's prose, line by line (a notebook's markdown, a module's docstrings)."""
        return rubric_text.prose_lines(self.ingest)

    @functools.cached_property
    def sections(self) -> dict[str, rubric_text.Section]:
        """The deliverable's sections found in the prose, by the rubric's section name."""
        spec = {name: s.model_dump() for name, s in self.rubric.sections.items()}
        return rubric_text.find_sections(self.prose, spec)

    @functools.cached_property
    def code(self) -> rubric_code.StudentCode:
        """The student's code cells joined into one source, with a map back to cells and lines."""
        return rubric_code.student_code(self.ingest.code_cells)

    @functools.cached_property
    def never_tested(self) -> tuple[int | None, int] | None:
        """Where the code names a test split it never scores a model on (cell, line); None when it does."""
        return rubric_methodology.never_tested(self.ingest.code_cells)

    @functools.cached_property
    def validation_on_test(self) -> rubric_methodology.ValidationOnTest:
        """The training calls that validate on the test set (``validation_data=(x_test, y_test)``)."""
        return rubric_methodology.validation_on_test(self.ingest.code_cells)

    @functools.cached_property
    def statics(self) -> dict[str, dict]:
        """What the code says of each factory without running it, by factory name."""
        return rubric_models.static_details(self.ingest)

    @functools.cached_property
    def passages(self) -> list[Passage]:
        """The prose cut into passages (paragraphs, list items, table rows), each with its cell and line."""
        return rubric_text.passages(self.prose)

    @functools.cached_property
    def best_claims(self) -> list[rubric_text.Claim]:
        """The sentences that name the student's best (or recommended) model, read once per scoring."""
        return rubric_text.best_model_claims(
            self.prose, self.sections, self.ingest.factories, self.ingest.own_names, self.run_labels, self.naming_words
        )

    @functools.cached_property
    def naming_words(self) -> dict[str, set[str]]:
        """Each improved model's naming words: the techniques it adds to the student's baseline (the
        reference's when theirs was not built), as a report names the model ("the dropout model")."""
        own = next((m for m in self.models if m.role == "baseline" and m.spec), None)
        base = own or self.reference
        if base is None:
            return {}
        base_f = self.features(base)
        return {
            m.name: rubric_models.naming_words(self.features(m), base_f) for m in self.models if m.role == "improved"
        }

    @functools.cached_property
    def run_labels(self) -> dict[str, str]:
        """The improved models' run labels, plain (``'label_smoothing'``, ``'augmentation'``)."""
        return rubric_text.improved_labels(self.ingest)

    @functools.cached_property
    def passage_models(self) -> list[list[str]]:
        """For each passage, the improved models it names in order (by name, or by a results table's row)."""
        return rubric_text.passage_models(
            self.passages,
            rubric_text.factory_numbers(
                self.ingest.factories, self.ingest.own_names, self.run_labels, self.naming_words
            ),
            self.run_labels,
        )

    @functools.cached_property
    def reported(self) -> list[rubric_text.Reported]:
        """The accuracies the student's own run printed (its saved outputs), read once per scoring."""
        return rubric_text.reported_accuracies(self.ingest)

    @functools.cached_property
    def clean_passages(self) -> list[Passage]:
        """The passages outside the robustness section: those under it quote accuracies on noisy or rotated
        images ("dropout_bn : 97.02 % (−2.31 pp)" under "Rotation ±15°"), not the test set's."""
        section_of = rubric_text.section_ranges(self.prose, self.sections)
        return [x for x in self.passages if section_of(x.cell, x.line) != "robustness"]

    def contradicted(self, tolerance_pp: float) -> list[tuple[rubric_text.Reported, rubric_text.Reported]]:
        """(quoted, printed) accuracies of the text that the student's own printed run contradicts by more
        than `tolerance_pp` points (``rubric_text.self_contradictions``), read once per tolerance."""
        cache = self.__dict__.setdefault("_contradicted", {})
        if tolerance_pp not in cache:
            cache[tolerance_pp] = rubric_text.self_contradictions(
                self.ingest, self.clean_passages, tolerance_pp, self.reported
            )
        return cache[tolerance_pp]

    @functools.cached_property
    def language(self) -> str | None:
        """The prose's language, "fr" or "en", by its commonest short words; None without enough prose."""
        words = re.findall(r"[a-z']+", plain(" ".join(line.text for line in self.prose)))
        french = sum(1 for w in words if w in FRENCH_WORDS)
        english = sum(1 for w in words if w in ENGLISH_WORDS)
        if french + english < 20:
            return None
        return "fr" if french >= english else "en"

    @property
    def is_module(self) -> bool:
        """A .py submission: one code cell without a cell number."""
        return bool(self.ingest.code_cells) and self.ingest.code_cells[0].cell is None

    @property
    def comparable(self) -> bool:
        """Whether the harness trained like the student did (all images, declared epochs)."""
        return self.profile in self.rubric.comparable_profiles

    def features(self, model: ModelResult) -> rubric_models.Features:
        """A model's comparable features, its declared settings read against the protocol's."""
        return rubric_models.features(
            model, self.protocol_epochs, self.protocol_batch_size, self.statics.get(model.name)
        )

    def factory(self, name: str):
        """The factory called ``name``, or None."""
        return next((f for f in self.ingest.factories if f.name == name), None)

    def accuracy(self, name: str) -> float | None:
        """The measured test accuracy of a model by name; ``"reference"`` is the student's own
        baseline when it trained, the course's reference otherwise."""
        if name == "reference":
            own = next((m for m in self.models if m.role == "baseline"), None)
            model = own if own is not None and own.test_accuracy is not None else self.reference
        else:
            model = next((m for m in self.models if m.name == name), None)
        return model.test_accuracy if model is not None else None


def as_message(text: str) -> Message:
    """What a rule wrote, as a message to store: a translated text (:class:`Said`) with its key and values,
    anything else (a tool's output, the student's words) as a text that stays as it is in every language."""
    if isinstance(text, Said):
        return Message(key=text.key, values={name: _message_value(v) for name, v in text.values.items()})
    return Message(key=CONCAT, values={"parts": [str(text)]})


def _message_value(value):
    """A message's value as stored: texts said again, numbers kept as numbers (the template writes them)."""
    if isinstance(value, Said):
        return as_message(value)
    if isinstance(value, (list, tuple)):
        return [as_message(part) if isinstance(part, Said) else str(part) for part in value]
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return "—" if value is None else str(value)


@dataclass
class Verdict:
    """What a rule found: the criterion's reason, its parts and the evidence items, in order."""

    reason: str
    components: list[ComponentScore]
    evidence: list[EvidenceItem] = field(default_factory=list)
    doubts: list[str] = field(default_factory=list)  # why a human look could change the mark (translated)


class Notes:
    """Evidence items in the report's language, each with where it is."""

    def __init__(self, t: Translator, ev: Evidence) -> None:
        self.t, self.ev, self.items = t, ev, []

    def where(self, cell: int | None, line: int | None) -> str | None:
        """ "cell 4, line 2" (the line only past a cell's first), "line 12" in a module, or None."""
        if cell is not None:
            return self.t("cell", n=cell) + (", " + self.t("line") + f" {line}" if line and line > 1 else "")
        if line is not None and self.ev.is_module:
            return self.t("line") + f" {line}"
        return None

    def add(self, text: str, cell: int | None = None, line: int | None = None, kind: str = "info") -> None:
        """Append one evidence item; ``kind`` is found, missing, info or flag."""
        where = self.where(cell, line)
        messages = {"text": as_message(text), **({"where": as_message(where)} if where else {})}
        self.items.append(EvidenceItem(text=text, where=where, cell=cell, line=line, kind=kind, messages=messages))


# --------------------------------------------------------------------------- small helpers


def component(t: Translator, cid: str, points: float, max_points: float, detail: str = "") -> ComponentScore:
    """One part of a criterion, its points clamped to [0, max_points] and rounded to 3 decimals."""
    label = t(f"rb_part_{cid}")
    return ComponentScore(
        id=cid,
        label=label,
        points=round(max(0.0, min(max_points, points)), 3),
        max_points=max_points,
        detail=detail,
        messages={"label": as_message(label), **({"detail": as_message(detail)} if detail else {})},
    )


def ratio(t: Translator, done: float, total: float) -> Said:
    """A part's detail "3/4" (or "1,5/3": a part justified in part), in the report's language."""
    return t("rb_detail_ratio", done=float(done) if done != int(done) else int(done), total=total)


def excerpt(text: str, limit: int = 140) -> str:
    """The student's text on one line, without markdown emphasis, cut to ``limit`` characters."""
    text = re.sub(r"\s+", " ", re.sub(r"\*\*|__|`|^#+\s*|^[-*]\s+", "", text)).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def factory_at(ev: Evidence, name: str) -> tuple[int | None, int | None]:
    """(cell, line) of the factory called ``name``, (None, None) when there is none."""
    factory = ev.factory(name)
    return (factory.cell, factory.line) if factory else (None, None)


def section_share(
    ev: Evidence, notes: Notes, t: Translator, name: str, min_words: int, heading_share: float = 0.0
) -> float:
    """How much of a section is there (0 to 1): ``heading_share`` for finding it, the rest for
    its words up to ``min_words``. Notes what was found (or not) and where."""
    section = ev.sections.get(name)
    label = t("section_" + name)
    if section is None:
        notes.add(t("ev_section_missing", section=label), kind="missing")
        return 0.0
    title = section.title or t("rb_no_heading")
    how = t("rb_found_by_content") if section.how == "content" else ""
    if not_done(ev, name):
        notes.add(
            t("rb_ev_section_not_done", section=label, heading=title, excerpt=excerpt(section.text)) + how,
            section.cell,
            section.line,
            "missing",
        )
        return 0.0
    if section.words >= min_words:
        notes.add(
            t("rb_ev_section", section=label, heading=title, words=section.words) + how,
            section.cell,
            section.line,
            "found",
        )
    else:
        notes.add(
            t("rb_ev_section_short", section=label, heading=title, words=section.words, min=min_words) + how,
            section.cell,
            section.line,
            "missing",
        )
    return heading_share + (1 - heading_share) * min(1.0, section.words / max(1, min_words))


def not_done(ev: Evidence, name: str) -> bool:
    """Whether the section `name` is there and only says its work was not done: a `not_done` pattern of the
    rubric, no number, and few words (a section that reports results beside a part left undone is a section)."""
    section, rubric = ev.sections.get(name), ev.rubric
    if section is None:
        return False
    text = rubric_text.plain(section.text)
    return (
        section.words <= rubric.not_done_max_words
        and not re.search(r"\d", text)
        and rubric_text.matches_any(rubric.not_done, text) is not None
    )


# --------------------------------------------------------------------------- the student's text about a model


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
            above -= 1  # the comment block right above a definition
        comments = [(n, text) for n, text in rubric_text.comment_lines(source) if above < n <= last and text]
        if comments:
            out.append(Passage(" ".join(text for _, text in comments), cell, comments[0][0]))
        doc = ast.get_docstring(node) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
        if doc:
            out.append(Passage(doc.replace("\n", " "), cell, first + 1))
    return out


def _node_cell(ev: Evidence, node: ast.AST) -> int | None:
    """The notebook cell a code node of the module comes from."""
    line_map = ev.ingest.line_map
    return line_map[node.lineno - 1][0] if hasattr(node, "lineno") and node.lineno - 1 < len(line_map) else None


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


def nearby_passages(
    ev: Evidence, name: str, context: int, settings: bool = False, naming: bool = True
) -> list[Passage]:
    """The student's text about one model: the markdown around its factory's cell, the factory's
    (and its helpers') docstrings and comments, and (with `naming`) every passage whose first model
    mention is this model. With `settings`, also the text around its TRAINING_CONFIG entry."""
    factory = ev.factory(name)
    static = ev.statics.get(name, {})
    found: list[Passage] = []
    if factory is not None:
        found += _markdown_near(ev, factory.cell, context)
    nodes = static.get("nodes", [])
    found += _node_passages(ev, nodes)
    # a model built by a builder defined elsewhere (``build_net('dropout')`` run in a later cell): the
    # markdown that presents the builder's options presents this model's change
    for cell in {_node_cell(ev, node) for node in nodes} - {None, factory.cell if factory else None}:
        found += _markdown_near(ev, cell, context)
    if settings:
        config_nodes = static.get("config_nodes", [])
        found += _node_passages(ev, config_nodes)
        if config_nodes:
            found += _markdown_near(ev, _node_cell(ev, config_nodes[0]), context)
    for passage, models in zip(ev.passages, ev.passage_models, strict=True):
        if naming and models and models[0] == name:  # about this model (not one that merely starts from it)
            found.append(passage)
    unique: dict[tuple, Passage] = {}
    for passage in found:
        unique.setdefault((passage.cell, passage.line, passage.text), passage)
    return list(unique.values())


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


# --------------------------------------------------------------------------- confidence


def model_doubts(ev: Evidence, t: Translator) -> list[str]:
    """Why a mark read from the models may be wrong: the harness inferred which function is which model."""
    if ev.ingest.factory_source in ("inferred", "discovered"):
        return [t("rb_doubt_names", how=t(f"rb_doubt_how_{ev.ingest.factory_source}"))]
    return []


def text_doubts(ev: Evidence, t: Translator, sections: list[str] = ()) -> list[str]:
    """Why a mark read from the student's text may be wrong: the text is in a module's docstrings and
    comments or in another language than the course's, or one of `sections` was found by its content."""
    doubts = []
    if ev.is_module:
        doubts.append(t("rb_doubt_module_text"))
    if ev.language is not None and ev.language != ev.rubric.expected_language:
        doubts.append(t("rb_doubt_language", language=t("language_" + ev.language)))
    by_content = [t("section_" + n) for n in sections if n in ev.sections and ev.sections[n].how == "content"]
    if by_content:
        doubts.append(t("rb_doubt_by_content", sections=", ".join(by_content)))
    return doubts
