"""The instructor's overrides: set or adjust any criterion of any student, with a comment.

Two formats, the same content (see the README, "Instructor overrides")::

    # overrides.toml
    [[override]]
    student = "Camille Dupont"
    criterion = "analysis"
    points = 3                       # set the criterion's points…
    comment = "Très bonne analyse des confusions 4/9, au-delà de ce que l'outil détecte."

    [[override]]
    student = "Zoé Martin"
    criterion = "modifications"
    delta = -1                       # …or adjust the automatic points
    comment = "Modèle 2 : deux changements à la fois, non justifiés."

    # overrides.csv
    student,criterion,points,delta,comment
    Camille Dupont,analysis,3,,Très bonne analyse des confusions 4/9
    Zoé Martin,modifications,,-1,Modèle 2 : deux changements à la fois

``harness report`` writes ``OUT/overrides_template.csv``, this CSV with one row per student and criterion
and informative columns (title, current points) that are not read back: a row whose ``points``,
``delta``, ``clear_flags`` and ``comment`` are all empty changes nothing. A spreadsheet may save it with
``;`` between fields.

An integrity flag (docs/integrity.md) holds back the points of the criteria it concerns; the
instructor who has looked gives them with ``clear_flags = true`` (CSV: a ``clear_flags`` column
holding ``true``), alone or with ``points``/``delta``.

The automatic points are kept; the final points are the instructor's (clamped to the criterion's
range). Applying overrides never retrains anything: ``harness score OUT --overrides FILE``.

>>> Override(student="a", criterion="analysis", points=2).describe()
'= 2'
"""

from __future__ import annotations

import csv
import hashlib
import tomllib
import unicodedata
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

DECISIONS = ("points", "delta", "clear_flags", "comment")  # a CSV row with none of them filled decides nothing


class Override(BaseModel):
    """One instructor decision: a criterion of a student set to `points`, or moved by `delta`."""

    model_config = ConfigDict(extra="forbid")
    student: str
    criterion: str
    points: float | None = None
    delta: float | None = None
    clear_flags: bool = False  # the instructor looked at the integrity flags: the withheld points are given
    comment: str = ""

    @model_validator(mode="after")
    def _one_of(self):
        if (
            self.points is not None
            and self.delta is not None
            or (self.points is None and self.delta is None and not self.clear_flags)
        ):
            raise ValueError(
                f"override for {self.student!r} / {self.criterion!r}: give exactly one of "
                "`points` (set) or `delta` (adjust), or `clear_flags = true`"
            )
        self.student = unicodedata.normalize("NFC", self.student).strip()
        return self

    def apply(self, automatic: float, max_points: float) -> float:
        """The criterion's points after this override, kept within 0 and `max_points`."""
        value = self.points if self.points is not None else automatic + (self.delta or 0.0)
        return max(0.0, min(max_points, value))

    def describe(self) -> str:
        """The override as shown in reports: ``= 3``, ``+0.5`` or ``✓`` (flags cleared, the withheld points given)."""
        if self.points is not None:
            return f"= {self.points:g}"
        return f"{self.delta:+g}" if self.delta is not None else "✓"


class Overrides(BaseModel):
    """Every override of an instructor's file, with the file's name and sha256 (`source`)."""

    model_config = ConfigDict(extra="forbid")
    items: list[Override] = []
    source: str = ""

    def for_student(self, student: str) -> dict[str, Override]:
        """criterion id -> the override (the last one given for a criterion wins)."""
        student = unicodedata.normalize("NFC", student).strip()
        return {o.criterion: o for o in self.items if o.student == student}

    def unknown_students(self, students: list[str]) -> list[str]:
        """Students named by an override but not in the class (a typo, or a student not graded)."""
        known = {unicodedata.normalize("NFC", s).strip() for s in students}
        return sorted({o.student for o in self.items if o.student not in known})


def _number(value: str, where: str) -> float | None:
    value = (value or "").strip().replace(",", ".")
    if not value:
        return None
    try:
        return float(value)
    except ValueError as error:
        raise ValueError(f"{where}: {value!r} is not a number") from error


def load_overrides(path: Path | None, criteria: dict[str, float] | None = None) -> Overrides:
    """Read an overrides file (.toml or .csv); `criteria` (id -> max points) checks the ids and values."""
    if path is None:
        return Overrides()
    path = Path(path)
    raw = path.read_bytes()
    items: list[Override] = []
    if path.suffix.lower() == ".csv":
        text = raw.decode("utf-8-sig")
        header = text.splitlines()[0] if text else ""
        # a French spreadsheet saves the template with ";"
        reader = csv.DictReader(text.splitlines(), delimiter=";" if header.count(";") > header.count(",") else ",")
        missing = {"student", "criterion"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(
                f"{path}: the header must name student, criterion, points and/or delta, comment "
                f"(missing {', '.join(sorted(missing))})"
            )
        for number, row in enumerate(reader, start=2):
            if not any((row.get(k) or "").strip() for k in DECISIONS):
                continue  # a template row left as it is, or a blank line
            where = f"{path}:{number}"
            try:
                items.append(
                    Override(
                        student=row["student"],
                        criterion=(row["criterion"] or "").strip(),
                        points=_number(row.get("points", ""), where),
                        delta=_number(row.get("delta", ""), where),
                        clear_flags=(row.get("clear_flags") or "").strip().lower() in ("1", "true", "yes", "oui", "x"),
                        comment=(row.get("comment") or "").strip(),
                    )
                )
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from error
    else:
        data = tomllib.loads(raw.decode("utf-8"))
        unknown = set(data) - {"override"}
        if unknown:
            raise ValueError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}; use [[override]] entries")
        try:
            items = [Override(**entry) for entry in data.get("override", [])]
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
    if criteria is not None:
        for item in items:
            if item.criterion not in criteria:
                raise ValueError(
                    f"{path}: override for {item.student!r} names unknown criterion {item.criterion!r}; "
                    f"the rubric's criteria are {', '.join(criteria)}"
                )
            if item.points is not None and not 0 <= item.points <= criteria[item.criterion]:
                raise ValueError(
                    f"{path}: override for {item.student!r} sets {item.criterion} to {item.points:g}, "
                    f"outside 0–{criteria[item.criterion]:g}"
                )
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return Overrides(items=items, source=f"{path.name} sha256:{digest}")
