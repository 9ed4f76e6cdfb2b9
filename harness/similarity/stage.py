"""The similarity stage: fingerprint each graded submission, then compare a class (and earlier classes).

Reads nothing but what it is given; ``harness/pipeline/similarity.py`` reads the stored results and
predictions of ``OUT`` and writes ``OUT/similarity.json``. Similarity never changes a grade.
"""

from __future__ import annotations

import time

import numpy as np

from harness.config.similarity import SimilarityConfig
from harness.results import IngestResult, SubmissionResult
from harness.similarity import code, compare, prose
from harness.similarity.models import model_print
from harness.similarity.records import SimilarityResult, SubmissionPrint


def fingerprint(
    ingest: IngestResult | None,
    result: SubmissionResult,
    probabilities: dict[str, np.ndarray],
    labels: np.ndarray | None,
    handout_architecture: str | None,
    config: SimilarityConfig,
) -> SubmissionPrint:
    """One submission's fingerprints: code, report, concepts, and every trained model.

    ``probabilities``: model name -> its clean-test probabilities; ``handout_architecture``: the
    reference CNN's architecture hash (the handout's model, every student's baseline)."""
    names = {**{m.factory: m.variable for m in result.discovered_models if m.variable}, **result.factory_names}
    models = [
        model_print(m, names.get(m.name, m.name), probabilities.get(m.name), labels, handout_architecture)
        for m in result.models
        if m.status == "ok"
    ]
    found = SubmissionPrint(student=result.student, models=models, data_sha256=result.run.data_content_sha256)
    if ingest is None or ingest.status != "ok":
        return found
    return found.model_copy(
        update={
            "code": code.fingerprints(ingest.code_cells, config.code.k, config.code.window),
            "report": prose.report_shingles(ingest, config.report.k),
            "concepts": prose.concept_shingles(ingest, config.report.concept_k, config.concepts()),
            "language": prose.language(ingest),
        }
    )


def compare_class(
    prints: list[SubmissionPrint], config: SimilarityConfig, labels: bool, notes: list[str] | None = None
) -> SimilarityResult:
    """Every pair worth comparing, ranked: flagged pairs first by combined score, then the highest others."""
    started = time.monotonic()
    lsh = len(prints) > config.class_.lsh_above
    prepared = compare.prepare(prints, config)
    matches = compare.model_matches(prints, config)
    candidates = compare.candidate_pairs(prepared, config, lsh) | set(matches)
    pairs = [compare.pair_result(prepared, i, j, matches.get((i, j), []), config) for i, j in sorted(candidates)]
    located = {(p.a, p.b, p.b_origin): ij for p, ij in zip(pairs, sorted(candidates))}
    flagged = sorted((p for p in pairs if p.flagged), key=lambda p: (-p.score, p.a, p.b))
    others = sorted((p for p in pairs if not p.flagged), key=lambda p: (-p.score, p.a, p.b))
    shown = flagged + others[: config.class_.shown_unflagged]
    detailed = set(map(id, flagged[: config.class_.detailed] + others[: config.class_.shown_unflagged]))
    shown = [
        compare.with_regions(prepared, p, *located[p.a, p.b, p.b_origin]) if id(p) in detailed else p for p in shown
    ]
    ours = sum(1 for p in prints if not p.origin)
    total = ours * (ours - 1) // 2 + ours * (len(prints) - ours)  # earlier classes are not compared among themselves
    return SimilarityResult(
        settings_sha256=config.sha256,
        candidates="lsh" if lsh else "all_pairs",
        compared_pairs=len(candidates) if lsh else total,
        seconds=round(time.monotonic() - started, 3),
        labels=labels,
        notes=notes or [],
        submissions=prints,
        pairs=shown,
        detailed=min(len(flagged), config.class_.detailed),
        clusters=compare.clusters(flagged),
    )
