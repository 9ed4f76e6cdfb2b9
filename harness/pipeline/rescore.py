"""``harness score`` and ``harness report``: rerun the last stages from stored results only.

No model is trained or evaluated: scoring reads ``ingest.json`` and ``result.json``, with the
protocol, rubric and overrides the class was graded under (``harness/pipeline/provenance.py``).

>>> rescore(Path("out"), rubric_path=Path("rubric/strict.toml"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from harness.config.protocol import load_protocol
from harness.pipeline import provenance
from harness.pipeline.lock import output_lock
from harness.pipeline.session import REFERENCE_DIR
from harness.pipeline.submission import score_submission
from harness.report.render import render_all
from harness.results import IngestResult, ReferenceSummary, SubmissionResult
from harness.scoring import failed_score, load_rubric
from harness.util.i18n import Translator


def result_paths(out: Path) -> list[Path]:
    """Each stored ``OUT/<student>/result.json`` (not the reference's, the suite's or the work folders')."""
    return [p for p in sorted(out.glob("*/result.json")) if not p.parent.name.startswith((".", "_"))]


def stored_results(out: Path) -> list[tuple[Path, SubmissionResult]]:
    """Each stored ``OUT/<student>/result.json``, read, with its path; FileNotFoundError when there is none."""
    found = [(path, SubmissionResult.read(path)) for path in result_paths(out)]
    if not found:
        raise FileNotFoundError(f"no stored results (*/result.json) in {out}: run `harness grade` first")
    return found


def _reference(out: Path):
    stored = out / REFERENCE_DIR / "reference.json"
    return ReferenceSummary.read(stored).model if stored.exists() else None


def _scorer(out: Path, rubric_path: Path | None, overrides: Path | None, language: str):
    """The rubric, and a function scoring one stored result (its folder's ingest.json) in `language`
    under the protocol the class was graded under."""
    rubric, translator = load_rubric(rubric_path, overrides), Translator(language)
    protocol = load_protocol(provenance.kept(out).protocol)

    def score(path: Path, result: SubmissionResult) -> SubmissionResult:
        if result.internal_error is not None:  # the harness failed on it: nothing to score but the overrides
            return result.model_copy(
                update={"score": failed_score(rubric, result.reason or "", translator, result.student)}
            )
        return score_submission(rubric, translator, result, IngestResult.read(path.parent / "ingest.json"), protocol)

    return rubric, score


def rescore(
    out: Path,
    rubric_path: Path | None = None,
    language: str = "fr",
    overrides: Path | None = None,
    log=None,
    roster: Path | None = None,
    wait: bool = False,
    reports: bool = True,
) -> list[SubmissionResult]:
    """Score every stored result again with `rubric_path` (default: the rubric the class was last
    scored with) and the instructor's `overrides`, then re-render the gradebook, the dashboard and (unless
    not `reports`) the students' reports: reads ingest.json and result.json only, trains and evaluates
    nothing. The rubric and overrides are kept in OUT. Holds OUT's lock (harness/pipeline/lock.py): `wait`
    queues behind another grader instead of stopping."""
    with output_lock(out, wait, log or print, create=False):
        return _rescore(out, rubric_path, language, overrides, log, roster, reports)


def _rescore(out, rubric_path, language, overrides, log, roster, reports=True) -> list[SubmissionResult]:
    rubric_path = rubric_path or provenance.kept(out).rubric
    rubric, score = _scorer(out, rubric_path, overrides, language)
    stored = stored_results(out)
    unknown = rubric.overrides.unknown_students([result.student for _, result in stored])
    if unknown and log is not None:
        log(f"warning: the overrides name student(s) not in {out}: {', '.join(unknown)}")
    results = []
    for path, result in stored:
        result = score(path, result)
        result.write(path)
        results.append(result)
    provenance.keep_scoring(out, rubric_path, overrides)
    _render(out, results, language, roster, log, reports)
    return results


def _render(
    out: Path, results: list[SubmissionResult], language: str, roster: Path | None, log, reports: bool = True
) -> None:
    if not reports:  # a report left from the last scoring would show marks the gradebook no longer has
        for result in results:
            (out / result.student / "report.html").unlink(missing_ok=True)
    for problem in render_all(out, results, _reference(out), Translator(language), roster=roster, students=reports):
        if log is not None:
            log(f"warning: {problem}")


def _points(result: SubmissionResult) -> list[float] | None:
    return [c.points for c in result.score.criteria] if result.score else None


def in_language(
    out: Path, stored: list[tuple[Path, SubmissionResult]], language: str, log=None
) -> list[SubmissionResult]:
    """The stored results with every scoring reason in `language`: scored again, in memory, with the
    rubric and overrides kept in OUT. A result whose points would change (kept files missing or
    edited, another harness version) is shown as stored."""
    kept = provenance.kept(out)
    if kept.rubric is None:
        return [result for _, result in stored]
    _, score = _scorer(out, kept.rubric, kept.overrides, language)
    results = []
    for path, result in stored:
        if result.run.language == language or result.score is None:
            results.append(result)
            continue
        again = score(path, result)
        if _points(again) != _points(result) or again.score.total != result.score.total:
            if log is not None:
                log(
                    f"warning: {result.student}: scoring again in {language} would change its points: "
                    "its reasons are shown as stored"
                )
            results.append(result)
            continue
        results.append(again.model_copy(update={"run": again.run.model_copy(update={"language": language})}))
    return results


def rerender(
    out: Path, language: str = "fr", roster: Path | None = None, log=None, wait: bool = False
) -> list[SubmissionResult]:
    """Every report, the dashboard and the exports again, in `language` (points unchanged; nothing is
    written to result.json). Holds OUT's lock, as `rescore` does."""
    with output_lock(out, wait, log or print, create=False):
        results = in_language(out, stored_results(out), language, log)
        _render(out, results, language, roster, log)
        return results
