"""Pairs of submissions: candidate pairs, each signal, the combined score, the ranking and the clusters.

Fingerprints found in many submissions (``[class] common_share``: boilerplate every student writes) are
removed before comparing. Up to ``lsh_above`` submissions every pair is compared (shared fingerprints are
counted for all pairs at once, a sparse matrix product); above it, as when several years are compared
together, candidate pairs come from MinHash LSH (``datasketch``) on each kind of fingerprint, and only they
are compared.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash, MinHashLSH
from scipy import sparse

from harness.config.similarity import SimilarityConfig
from harness.similarity.models import error_overlaps, identical
from harness.similarity.records import Cluster, Located, ModelMatch, PairResult, Region, Signal, SubmissionPrint

KINDS = ("code", "report", "concepts")


@dataclass
class Prepared:
    """The submissions' fingerprint sets with the common ones removed, per kind."""

    prints: list[SubmissionPrint]
    sets: dict[str, list[frozenset[int]]]


def prepare(prints: list[SubmissionPrint], config: SimilarityConfig) -> Prepared:
    """Each submission's sets of fingerprints per kind, minus those found in a common share of them."""
    common = config.class_.common_count(len(prints))
    sets = {}
    for kind in KINDS:
        raw = [frozenset(h for h, *_ in getattr(p, kind)) for p in prints]
        frequency = Counter(h for s in raw for h in s)
        frequent = {h for h, count in frequency.items() if count >= common}
        sets[kind] = [s - frequent for s in raw]
    return Prepared(prints, sets)


def _comparable(prints: list[SubmissionPrint], i: int, j: int) -> bool:
    return not (prints[i].origin and prints[j].origin)  # two submissions of earlier classes: not this class's business


def _sparse(sets: list[frozenset[int]]) -> sparse.csr_matrix:
    columns: dict[int, int] = {}
    rows, cols = [], []
    for row, items in enumerate(sets):
        for item in items:
            rows.append(row)
            cols.append(columns.setdefault(item, len(columns)))
    data = np.ones(len(rows), dtype=np.int32)
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(sets), max(1, len(columns))))


def _sharing_pairs(sets: list[frozenset[int]]) -> set[tuple[int, int]]:
    """Every pair sharing at least one fingerprint, from one sparse product (all pairs at once)."""
    matrix = _sparse(sets)
    shared = sparse.triu(matrix @ matrix.T, k=1).tocoo()
    return set(zip(shared.row.tolist(), shared.col.tolist()))


def _lsh_pairs(sets: list[frozenset[int]], config: SimilarityConfig) -> set[tuple[int, int]]:
    """Candidate pairs from MinHash LSH: pairs likely above ``lsh_threshold`` Jaccard similarity."""
    permutations = config.class_.lsh_permutations
    lsh = MinHashLSH(threshold=config.class_.lsh_threshold, num_perm=permutations)
    sketches = {}
    for index, items in enumerate(sets):
        if not items:
            continue
        sketch = MinHash(num_perm=permutations)
        sketch.update_batch([item.to_bytes(8, "little") for item in items])
        sketches[index] = sketch
        lsh.insert(index, sketch)
    pairs = set()
    for index, sketch in sketches.items():
        pairs.update((min(index, o), max(index, o)) for o in lsh.query(sketch) if o != index)
    return pairs


def candidate_pairs(prepared: Prepared, config: SimilarityConfig, lsh: bool) -> set[tuple[int, int]]:
    """The pairs worth comparing: sharing any fingerprint (all pairs), or found by LSH."""
    pairs: set[tuple[int, int]] = set()
    for kind in KINDS:
        pairs |= _lsh_pairs(prepared.sets[kind], config) if lsh else _sharing_pairs(prepared.sets[kind])
    return {(i, j) for i, j in pairs if _comparable(prepared.prints, i, j)}


# --------------------------------------------------------------------------- signals


def regions(located: list[Located], shared: set[int]) -> list[Region]:
    """The lines of one side covered by shared fingerprints, merged into ranges per cell."""
    spans = sorted(((cell if cell is not None else -1), first, last) for h, cell, first, last in located if h in shared)
    merged: list[list[int]] = []
    for cell, first, last in spans:
        if merged and merged[-1][0] == cell and first <= merged[-1][2] + 1:
            merged[-1][2] = max(merged[-1][2], last)
        else:
            merged.append([cell, first, last])
    return [Region(cell=None if cell == -1 else cell, first=first, last=last) for cell, first, last in merged]


def signal(a: frozenset[int], b: frozenset[int], min_shared: int, min_containment: float) -> Signal:
    """Shared fingerprints, containment both ways and Jaccard; strength is the larger containment."""
    shared = len(a & b)
    if not shared:
        return Signal()
    ab, ba = shared / len(a), shared / len(b)
    strength = max(ab, ba) if shared >= min_shared else 0.0
    return Signal(
        strength=round(strength, 4),
        flagged=shared >= min_shared and strength >= min_containment,
        shared=shared,
        containment_ab=round(ab, 4),
        containment_ba=round(ba, 4),
        jaccard=round(shared / len(a | b), 4),
    )


def _with_regions(found: Signal, a: SubmissionPrint, b: SubmissionPrint, kind: str, sa, sb) -> Signal:
    shared = set(sa & sb)
    return found.model_copy(
        update={"regions_a": regions(getattr(a, kind), shared), "regions_b": regions(getattr(b, kind), shared)}
    )


def _model_strength(matches: list[ModelMatch], min_excess: float) -> float:
    strengths = [1.0 if m.kind != "error_overlap" else min(1.0, 0.5 * (m.excess or 0) / min_excess) for m in matches]
    return max(strengths, default=0.0)


def pair_result(prepared: Prepared, i: int, j: int, matches: list[ModelMatch], config: SimilarityConfig) -> PairResult:
    """Every signal of one pair, the combined score and whether any signal passes its threshold."""
    a, b = prepared.prints[i], prepared.prints[j]
    sets = prepared.sets
    code = signal(sets["code"][i], sets["code"][j], config.code.min_shared, config.code.min_containment)
    report = signal(sets["report"][i], sets["report"][j], config.report.min_shared, config.report.min_containment)
    translated = Signal()
    if {a.language, b.language} == {"fr", "en"}:
        translated = signal(
            sets["concepts"][i],
            sets["concepts"][j],
            config.report.concept_min_shared,
            config.report.concept_min_containment,
        )
    model = _model_strength(matches, config.model.min_excess)
    weights = config.class_.weights
    strengths = {"code": code.strength, "report": max(report.strength, translated.strength), "model": model}
    score = 1.0 - float(np.prod([1.0 - weights.get(k, 1.0) * v for k, v in strengths.items()]))
    flagged = code.flagged or report.flagged or translated.flagged or bool(matches)
    return PairResult(
        a=a.student,
        b=b.student,
        b_origin=b.origin,
        score=round(score, 4),
        flagged=flagged,
        code=code,
        report=report,
        translated=translated,
        models=matches,
        model_strength=round(model, 4),
        model_flagged=bool(matches),
    )


def with_regions(prepared: Prepared, pair: PairResult, i: int, j: int) -> PairResult:
    """The pair with the matching lines of each signal located on both sides (for the side-by-side view)."""
    a, b, sets = prepared.prints[i], prepared.prints[j], prepared.sets
    update = {
        "code": _with_regions(pair.code, a, b, "code", sets["code"][i], sets["code"][j]),
        "report": _with_regions(pair.report, a, b, "report", sets["report"][i], sets["report"][j]),
    }
    if pair.translated.shared:
        update["translated"] = _with_regions(
            pair.translated, a, b, "concepts", sets["concepts"][i], sets["concepts"][j]
        )
    return pair.model_copy(update=update)


# --------------------------------------------------------------------------- models, ranking, clusters


def model_matches(prints: list[SubmissionPrint], config: SimilarityConfig) -> dict[tuple[int, int], list[ModelMatch]]:
    """(i, j) -> the models two submissions share: same predictions or design, or errors beyond the usual."""
    key = lambda p: f"{p.origin}\0{p.student}"
    index = {key(p): n for n, p in enumerate(prints)}
    owned = [(key(p), m) for p in prints for m in p.models]
    design_count = Counter(d for p in prints for d in {m.design for m in p.models if not m.handout})
    common = max(2, int(config.model.common_share * len(prints) + 0.999))
    found: dict[tuple[int, int], list[ModelMatch]] = {}
    by_value: dict[str, list[tuple[str, object]]] = {}
    for owner, model in owned:
        for value in {model.design, model.predictions_sha256} - {None}:
            by_value.setdefault(value, []).append((owner, model))
    for group in by_value.values():
        for (oa, ma), (ob, mb) in itertools.combinations(group, 2):
            i, j = sorted((index[oa], index[ob]))
            if i != j and _comparable(prints, i, j) and (match := identical(ma, mb, design_count, common)):
                if index[oa] > index[ob]:
                    match = match.model_copy(update={"a": match.b, "b": match.a})
                if all((m.a, m.b) != (match.a, match.b) for m in found.get((i, j), [])):
                    found.setdefault((i, j), []).append(match)
    for oa, ob, match in error_overlaps(owned, config.model):
        i, j = index[oa], index[ob]
        if _comparable(prints, i, j):
            if i > j:
                i, j, match = j, i, match.model_copy(update={"a": match.b, "b": match.a})
            found.setdefault((i, j), []).append(match)
    return found


def clusters(pairs: list[PairResult]) -> list[Cluster]:
    """Groups of three or more submissions linked by flagged pairs (connected components)."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    flagged = [p for p in pairs if p.flagged]
    for pair in flagged:
        parent[root(pair.a)] = root(_name(pair))
    groups: dict[str, set[str]] = {}
    for pair in flagged:
        groups.setdefault(root(pair.a), set()).update({pair.a, _name(pair)})
    return sorted(
        (
            Cluster(students=sorted(members), pairs=sum(1 for p in flagged if p.a in members))
            for members in groups.values()
            if len(members) >= 3
        ),
        key=lambda c: (-len(c.students), c.students),
    )


def _name(pair: PairResult) -> str:
    return f"{pair.b} ({pair.b_origin})" if pair.b_origin else pair.b
