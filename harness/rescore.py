"""``harness score`` and ``harness report``: rerun the last stages from stored results only.

No model is trained or evaluated: scoring reads ``ingest.json`` and ``result.json``.

>>> rescore(Path("out"), rubric_path=Path("rubric/strict.toml"))  # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path

from harness.config import load_protocol
from harness.grade import PROTOCOL_FILE, REFERENCE_DIR, score_submission
from harness.i18n import Translator
from harness.report import render_all
from harness.results import IngestResult, ReferenceSummary, SubmissionResult
from harness.score import load_rubric


def stored_results(out: Path) -> list[tuple[Path, SubmissionResult]]:
    found = []
    for path in sorted(out.glob("*/result.json")):
        if path.parent.name.startswith((".", "_")):
            continue
        found.append((path, SubmissionResult.read(path)))
    if not found:
        raise FileNotFoundError(f"no stored results (*/result.json) in {out}: run `harness grade` first")
    return found


def _reference(out: Path):
    stored = out / REFERENCE_DIR / "reference.json"
    return ReferenceSummary.read(stored).model if stored.exists() else None


def rescore(out: Path, rubric_path: Path | None = None, language: str = "fr", overrides: Path | None = None,
            log=None, roster: Path | None = None) -> list[SubmissionResult]:
    """Score every stored result again with `rubric_path` and the instructor's `overrides`, then
    re-render the reports: reads ingest.json and result.json only, trains and evaluates nothing."""
    rubric, translator = load_rubric(rubric_path, overrides), Translator(language)
    protocol = load_protocol(out / PROTOCOL_FILE if (out / PROTOCOL_FILE).is_file() else None)
    stored = stored_results(out)
    unknown = rubric.overrides.unknown_students([result.student for _, result in stored])
    if unknown and log is not None:
        log(f"warning: the overrides name student(s) not in {out}: {', '.join(unknown)}")
    results = []
    for path, result in stored:
        ingest = IngestResult.read(path.parent / "ingest.json")
        result = score_submission(rubric, translator, result, ingest, protocol)
        result.write(path)
        results.append(result)
    render_all(out, results, _reference(out), translator, roster=roster)
    return results


def rerender(out: Path, language: str = "fr", roster: Path | None = None) -> list[SubmissionResult]:
    results = [result for _, result in stored_results(out)]
    render_all(out, results, _reference(out), Translator(language), roster=roster)
    return results
