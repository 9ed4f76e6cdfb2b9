"""``harness calibrate``: the stored marks of a graded class against an instructor's, and a fitted rubric.

Reads ``OUT/<student>/result.json`` and ``ingest.json`` only (nothing is trained or evaluated): the
agreement uses the stored automatic points and their evidence; the fit re-scores the stored
evidence with candidate parameters (``harness/scoring/calibration.py``). Writes
``OUT/calibration/calibration.json``, ``index.html`` and ``rubric-proposed.toml`` — the proposal is
never applied: the instructor passes it to ``harness score OUT --rubric`` if they agree.

>>> calibrate(Path("out"), marks=Path("marks.csv"))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from harness.config.protocol import load_protocol
from harness.pipeline import provenance
from harness.pipeline.rescore import stored_results
from harness.report.calibration import render_calibration, text_table
from harness.resources import bundled
from harness.results import IngestResult, SubmissionResult
from harness.scoring import calibration, load_rubric
from harness.scoring.evidence import Evidence
from harness.scoring.rubric import Rubric
from harness.util.atomic import write_text_atomic
from harness.util.i18n import Translator

FOLDER = "calibration"
EVIDENCE_SHOWN = 4  # evidence items quoted per disagreement: the reason and the first few findings


@dataclass
class CalibrationReport:
    """What ``harness calibrate`` prints and writes."""

    out: Path
    rubric: str
    marks: str
    students: list[str]
    unmarked: list[str]
    unknown: list[str]
    agreement: list[calibration.CriterionAgreement]
    proposals: list[calibration.Proposal]
    proposed_rubric: Path | None
    folder: Path

    def to_json(self) -> dict:
        """The report as JSON (paths as strings)."""
        data = dataclasses.asdict(self)
        for key in ("out", "proposed_rubric", "folder"):
            data[key] = str(data[key]) if data[key] is not None else None
        return data


def calibrate(
    out: Path,
    marks: Path | None = None,
    expectations: Path | None = None,
    half: str | None = None,
    language: str = "fr",
    fit: bool = True,
    folds: int = 5,
) -> CalibrationReport:
    """Compare the stored marks of `out` with the instructor's (a marks CSV, or a labelled corpus's
    `expectations` file turned into midpoint marks, only its `half` when given); fit the rubric's
    parameters with cross-validation when `fit`; write the JSON, the HTML page and the proposed rubric."""
    folder = out / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    stored = {result.student: (path, result) for path, result in stored_results(out)}
    if expectations is not None:
        # the ranges for the profile the class was graded on (a corpus may judge the full protocol apart)
        profile = next((result.run.profile for _, result in stored.values()), None)
        marks = calibration.write_marks(
            calibration.marks_from_expectations(expectations, half, profile=profile),
            folder / f"marks-{half or 'all'}.csv",
        )
    if marks is None:
        raise ValueError("calibrate needs --marks FILE.csv or --expectations FILE.toml")
    rubric_path = provenance.kept(out).rubric or bundled("rubric", "default.toml")
    rubric, t = load_rubric(rubric_path), Translator(language)
    given = calibration.read_marks(marks)
    known = [m for m in given if m.student in stored and _auto(stored[m.student][1], m.criterion) is not None]
    harness = {(m.student, m.criterion): _auto(stored[m.student][1], m.criterion) for m in known}
    confidence = {(m.student, m.criterion): _confidence(stored[m.student][1], m.criterion) for m in known}
    table = calibration.agreement(
        known, harness, rubric, explain=lambda s, c: _explain(stored[s][1], c), confidence=confidence
    )
    proposals = _fit(out, rubric, stored, known, t, folds) if fit else []
    proposed = _write_rubric(folder, rubric_path, proposals, marks) if any(p.proposed for p in proposals) else None
    report = CalibrationReport(
        out=out,
        rubric=rubric.source,
        marks=str(marks),
        students=sorted({m.student for m in known}),
        unmarked=sorted(set(stored) - {m.student for m in given}),
        unknown=sorted({m.student for m in given} - set(stored)),
        agreement=table,
        proposals=proposals,
        proposed_rubric=proposed,
        folder=folder,
    )
    write_text_atomic(folder / "calibration.json", json.dumps(report.to_json(), ensure_ascii=False, indent=2) + "\n")
    write_text_atomic(folder / "index.html", render_calibration(report, t))
    return report


def _auto(result: SubmissionResult, criterion: str) -> float | None:
    """The rubric's automatic points for `criterion` (before any override), None when not scored."""
    for c in result.score.criteria if result.score else []:
        if c.id == criterion:
            return c.auto_points if c.auto_points is not None else c.points
    return None


def _confidence(result: SubmissionResult, criterion: str) -> str | None:
    """The harness's confidence in its mark for `criterion` ("low" / "high")."""
    return next((c.confidence for c in (result.score.criteria if result.score else []) if c.id == criterion), None)


def _explain(result: SubmissionResult, criterion: str) -> tuple[str, list[str]]:
    """The criterion's reason and first evidence items, as the report shows them."""
    for c in result.score.criteria if result.score else []:
        if c.id == criterion:
            items = [f"{e.text}" + (f" ({e.where})" if e.where else "") for e in c.evidence[:EVIDENCE_SHOWN]]
            return c.reason, items
    return "", []


def _fit(out: Path, rubric: Rubric, stored: dict, marks: list, t: Translator, folds: int) -> list:
    """One proposal per marked criterion, each re-scoring the stored evidence of the marked students."""
    protocol = load_protocol(provenance.kept(out).protocol)
    students = sorted({m.student for m in marks})
    evidence = {s: _evidence(rubric, stored[s], protocol) for s in students}
    evidence = {s: e for s, e in evidence.items() if e is not None}
    proposals = []
    for criterion in rubric.criteria:
        target = {m.student: m.points for m in marks if m.criterion == criterion.id and m.student in evidence}
        if len(target) < 2:
            continue

        def score(params: dict, criterion=criterion, target=target) -> dict[str, float]:
            return {s: calibration.criterion_points(evidence[s], criterion, params, rubric.rounding, t) for s in target}

        proposals.append(calibration.fit(criterion, score, target, folds))
    return proposals


def _evidence(rubric: Rubric, stored: tuple[Path, SubmissionResult], protocol) -> Evidence | None:
    """What the rules read for one stored result (None when it was not scored from evidence)."""
    path, result = stored
    ingest_file = path.parent / "ingest.json"
    if result.internal_error is not None or not ingest_file.exists():
        return None
    ingest = IngestResult.read(ingest_file)
    if ingest.status != "ok":
        return None
    return Evidence(
        ingest=ingest,
        models=result.models,
        reference=result.reference.model if result.reference else None,
        rubric=rubric,
        protocol_epochs=protocol.training.epochs,
        protocol_batch_size=protocol.training.batch_size,
        profile=result.run.profile,
        student=result.student,
    )


def _write_rubric(folder: Path, rubric_path: Path, proposals: list, marks: Path) -> Path:
    """The rubric file with the proposed values; loaded back so a bad proposal fails here, not later."""
    header = (
        f"Proposed by `harness calibrate` from {Path(marks).name} (cross-validated; see calibration.json).\n"
        f"Based on {Path(rubric_path).name}. Not applied: review, then `harness score OUT --rubric` this file."
    )
    target = folder / "rubric-proposed.toml"
    write_text_atomic(
        target, calibration.proposed_rubric_text(rubric_path.read_text(encoding="utf-8"), proposals, header)
    )
    load_rubric(target)
    return target


def calibration_text(report: CalibrationReport, t: Translator) -> str:
    """The agreement table and proposals as the command prints them."""
    return text_table(report, t)
