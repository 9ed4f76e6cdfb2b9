"""``harness similarity OUT``: compare a graded class's submissions from its stored results (nothing retrained).

Reads ``OUT/<student>/ingest.json`` (code and report), ``result.json`` (models) and
``models/*.predictions.npz`` (clean-test probabilities), the reference's architecture (the handout's
model), and the test labels from the data the class was graded on (checked against its hash): without
them, error overlap is left out and said so. Writes ``OUT/similarity.json`` and ``OUT/similarity.html``.
Also run at the end of ``harness grade`` and ``harness report``.

>>> similarity(Path("out"), against=[Path("out-2025")])  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.config.similarity import load_similarity_config
from harness.errors import DataUnavailable
from harness.pipeline.data import load_mnist
from harness.pipeline.lock import output_lock
from harness.pipeline.rescore import stored_results
from harness.pipeline.session import REFERENCE_DIR
from harness.report.similarity import render_similarity
from harness.results import IngestResult, ReferenceSummary, SubmissionResult
from harness.similarity import SIMILARITY_FILE, SimilarityResult, compare_class, fingerprint
from harness.similarity.models import architecture_hash
from harness.util.i18n import Translator


def test_labels(results: list[SubmissionResult], data: Path | None) -> tuple[np.ndarray | None, list[str]]:
    """The test labels of the data the class was graded on (``data``, else the run's own file), or None and why."""
    runs = {(r.run.data_source, r.run.data_content_sha256) for r in results}
    if not runs:
        return None, []
    source, content = sorted(runs)[0]
    try:
        raw = load_mnist(data or (source if Path(source).is_file() else None))
    except DataUnavailable as error:
        return None, [f"test labels unavailable, error overlap left out: {error}"]
    if raw.content_sha256 != content:
        return None, [f"{raw.source} is not the data the class was graded on: error overlap left out"]
    return raw.y_test.astype(np.int64), []


def _probabilities(folder: Path, result: SubmissionResult) -> dict[str, np.ndarray]:
    """Each evaluated model's clean-test probabilities (only that array is read from its predictions file)."""
    found = {}
    for model in result.models:
        path = folder / "models" / (model.predictions_file or "")
        if model.status == "ok" and model.predictions_file and path.is_file():
            with np.load(path, allow_pickle=False) as npz:
                found[model.name] = npz["probabilities"]
    return found


def _handout_architecture(out: Path) -> str | None:
    stored = out / REFERENCE_DIR / "reference.json"
    return architecture_hash(ReferenceSummary.read(stored).model) if stored.is_file() else None


def _ingest(folder: Path) -> IngestResult | None:
    path = folder / "ingest.json"
    return IngestResult.read(path) if path.is_file() else None


def _earlier(other: Path):
    path = other / SIMILARITY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `harness similarity {other}` first")
    return [
        p.model_copy(update={"origin": str(other)}) for p in SimilarityResult.read(path).submissions if not p.origin
    ]


def similarity(
    out: Path,
    against: list[Path] = (),
    data: Path | None = None,
    language: str = "fr",
    settings: Path | None = None,
    log=None,
) -> SimilarityResult:
    """Fingerprint every stored submission of OUT, compare them (and with the earlier classes' stored
    fingerprints), write ``similarity.json`` and the instructor's page. The caller holds OUT's lock."""
    config = load_similarity_config(settings)
    stored = stored_results(out)
    labels, notes = test_labels([r for _, r in stored], data)
    handout = _handout_architecture(out)
    ingests, prints = {}, []
    for path, result in stored:
        try:
            ingest = _ingest(path.parent)
            probabilities = _probabilities(path.parent, result)
            prints.append(fingerprint(ingest, result, probabilities, labels, handout, config))
        except Exception as error:  # of any kind: one submission's stored files never stop the class's comparison
            reason = str(error).splitlines()[0][:160] if str(error) else ""
            notes.append(f"{result.student}: not compared ({type(error).__name__}: {reason})")
            continue
        ingests[result.student] = ingest
    for other in against:
        prints += _earlier(other)
    found = compare_class(prints, config, labels is not None, notes)
    found.write(out / SIMILARITY_FILE)
    render_similarity(out, found, ingests, Translator(language))
    for note in notes:
        if log is not None:
            log(f"warning: {note}")
    return found


def similarity_locked(out: Path, wait: bool = False, log=None, **options) -> SimilarityResult:
    """``similarity`` holding OUT's lock (the command run alone): `wait` queues behind another grader."""
    with output_lock(out, wait, log or print, create=False):
        return similarity(out, log=log, **options)


def refresh(out: Path, language: str, log, locked: bool = False, wait: bool = False) -> SimilarityResult | None:
    """The stage at the end of ``harness grade`` and ``harness report``: a failure is logged, never raised
    (similarity flags pairs for a look; it must not stop a class's grades). `locked`: the caller holds OUT's lock."""
    try:
        if locked:
            return similarity(out, language=language, log=log)
        return similarity_locked(out, wait=wait, log=log, language=language)
    except Exception as error:  # of any kind: the grades are written whatever happens here
        log(f"warning: similarity not computed ({type(error).__name__}: {error})")
        return None
