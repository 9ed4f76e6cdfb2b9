"""The rubric file: its criteria, the sections the rules look for, and its loading with clear errors.

Each criterion of the rubric file names a rule (``harness/scoring/rules/``) and gives its
parameters; loading checks every rule name and every parameter against the rule registry, so a
typo stops the run with a message naming the criterion. The rules, their parameters and the
heuristics are documented in ``rubric/default.toml`` and in ``docs/rubric.md``.

>>> rubric = load_rubric()
>>> [c.id for c in rubric.criteria]
['code_quality', 'modifications', 'improvement', 'analysis', 'documentation']
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.resources import bundled
from harness.scoring.overrides import Overrides, load_overrides
from harness.scoring.rules import RULES, RuleParams, get_rule


class Criterion(BaseModel):
    """One ``[[criteria]]`` entry: its id (a grades.csv column), titles by language, points, rule and parameters."""

    model_config = ConfigDict(extra="forbid")
    id: str
    title: dict[str, str]
    max_points: float
    rule: str
    params: dict[str, Any] = {}


class SectionSpec(BaseModel):
    """How to find one section of the deliverable: heading patterns, then content patterns."""

    model_config = ConfigDict(extra="forbid")
    headings: list[str]
    content: list[str] = []
    min_content_hits: int = 2
    # what the section must say to be complete (a results section without a number is not): its words
    # count for documentation only when one of these patterns is in its text
    needs: list[str] = []
    # headings a content-found section may not sit under: a piece the student titled "Analyse" is not the
    # description of the changes, however many of their words it repeats
    not_under: list[str] = []


class Rubric(BaseModel):
    """A loaded rubric file, with where it came from (``source``) and the instructor's overrides."""

    model_config = ConfigDict(extra="forbid")
    name: str
    rounding: float = 0.5
    comparable_profiles: list[str] = ["full"]
    # confidence: a mark within `confidence_margin` points of a rounding step is on a threshold; text
    # in another language than `expected_language` (the course's) is read by patterns tuned on less of it
    confidence_margin: float = 0.1
    expected_language: str = "fr"
    # integrity flags on a model (docs/integrity.md): "withhold" the points of `integrity_criteria`
    # until an instructor clears the flags, "cap" them at `integrity_cap` of the criterion, or "flag" only
    integrity_policy: Literal["withhold", "cap", "flag"] = "withhold"
    integrity_criteria: list[str] = ["improvement"]
    integrity_cap: float = Field(0.5, ge=0, le=1)
    criteria: list[Criterion]
    sections: dict[str, SectionSpec] = {}
    # a section that says its work was not done ("je n'ai pas eu le temps", "not done yet"), without a number
    # and in at most `not_done_max_words` words, is a heading over nothing: it counts as missing
    not_done: list[str] = []
    not_done_max_words: int = 80
    source: str = ""
    overrides: Overrides = Field(default_factory=Overrides)

    @field_validator("sections", mode="before")
    @classmethod
    def _section_lists(cls, value):
        """A section given as a plain list of patterns is a list of heading patterns."""
        return {name: {"headings": spec} if isinstance(spec, list) else spec for name, spec in (value or {}).items()}

    @property
    def max_total(self) -> float:
        """The grade's maximum: the sum of the criteria's maximum points."""
        return sum(c.max_points for c in self.criteria)

    def params(self, criterion: Criterion) -> RuleParams:
        """The criterion's parameters as its rule's parameters model (defaults filled in)."""
        return get_rule(criterion.rule).params(**criterion.params)


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
            raise ValueError(
                f"{path}: criterion {criterion.id!r} names unknown rule {criterion.rule!r}; known: {', '.join(RULES)}"
            )
        try:
            rubric.params(criterion)
        except ValidationError as error:
            raise ValueError(
                f"{path}: criterion {criterion.id!r} (rule {criterion.rule}): {_plain_errors(error)}"
            ) from error
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
        parts.append(
            f"unknown parameter {name!r}" if item["type"] == "extra_forbidden" else f"parameter {name!r}: {item['msg']}"
        )
    return "; ".join(parts)
