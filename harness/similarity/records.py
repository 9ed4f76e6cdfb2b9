"""The similarity stage's typed results, written to ``OUT/similarity.json`` (docs/similarity.md).

Two parts: each submission's **fingerprints** (hashes with where they come from, never the code or the
text itself), so that a later class can be compared with this one (``--against``) from this file
alone; and the **pairs** ranked by a combined score, with each signal and the regions that match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field

from harness.results import StoredRecord as _Result

SIMILARITY_FILE = "similarity.json"
SIMILARITY_PAGE = "similarity.html"

# [hash, cell (None in a module), first line, last line]: a fingerprint and the lines it covers
Located = tuple[int, int | None, int, int]


class ModelPrint(_Result):
    """One trained model of a submission as the similarity stage compares it."""

    name: str = Field(description="the harness's factory name")
    label: str = Field(description="the student's own name for it")
    architecture: str = Field(description="sha256 of the layers, optimizer, learning rate and loss")
    design: str = Field(description="sha256 of the architecture and the training settings")
    summary: str = Field(description="the layers in a few words, for the page")
    handout: bool = Field(description="the handout's own model (the reference CNN's architecture): never evidence")
    test_accuracy: float | None = None
    n: int = Field(0, description="test images the errors are counted on (0: not evaluated)")
    errors: list[int] = Field([], description="indices of the misclassified test images")
    predictions_sha256: str | None = Field(None, description="sha256 of every predicted digit and rounded probability")


class SubmissionPrint(_Result):
    """What the stage keeps of one submission: its fingerprints, language and models."""

    student: str
    origin: str = Field("", description="'' for this class; the output folder of an earlier class (--against)")
    code: list[Located] = Field([], description="winnowed fingerprints of the normalised code, handout removed")
    report: list[Located] = Field([], description="word shingles of the report, the assignment's own removed")
    concepts: list[Located] = Field([], description="concept shingles of the report (the cross-language signal)")
    language: Literal["fr", "en", "unknown"] = "unknown"
    models: list[ModelPrint] = []
    data_sha256: str | None = Field(None, description="the test set the errors refer to (data_content_sha256)")


class Region(_Result):
    """Lines of one side that match the other side: a cell (None in a module) and a line range."""

    cell: int | None
    first: int
    last: int


class ModelMatch(_Result):
    """Two models (one per submission) that are the same design, or whose errors overlap beyond the usual."""

    a: str
    b: str
    kind: Literal["same_predictions", "same_design", "error_overlap"]
    shared_errors: int | None = None
    errors_a: int | None = None
    errors_b: int | None = None
    expected_independent: float | None = Field(
        None, description="shared errors expected if the models were independent"
    )
    ratio_independent: float | None = None
    p_independent: float | None = Field(None, description="hypergeometric test against independence")
    excess: float | None = Field(None, description="shared errors / what the class's model pairs usually share")
    p_class: float | None = Field(None, description="binomial test against the class's usual overlap")
    design_count: int = Field(0, description="submissions of the compared classes with this design")


class Signal(_Result):
    """One signal of a pair: its strength in [0, 1], whether it passes its threshold, and its numbers."""

    strength: float = 0.0
    flagged: bool = False
    shared: int = 0
    containment_ab: float = Field(0.0, description="share of a's fingerprints found in b")
    containment_ba: float = 0.0
    jaccard: float = 0.0
    regions_a: list[Region] = []
    regions_b: list[Region] = []


class PairResult(_Result):
    """Two submissions compared: the combined score, each signal and why it is flagged."""

    a: str
    b: str
    b_origin: str = Field("", description="'' when b is of this class; else the earlier class's output folder")
    score: float = Field(description="1 - prod(1 - weight * strength) over the signals")
    flagged: bool
    code: Signal = Signal()
    report: Signal = Signal()
    translated: Signal = Field(Signal(), description="the concept shingles, for reports in two languages")
    models: list[ModelMatch] = []
    model_strength: float = 0.0
    model_flagged: bool = False


class Cluster(_Result):
    """Three or more submissions linked by flagged pairs."""

    students: list[str]
    pairs: int


class SimilarityResult(_Result):
    """``OUT/similarity.json``: the settings used, every submission's fingerprints, the ranked pairs, the clusters."""

    schema_version: int = 1
    settings_sha256: str
    candidates: Literal["all_pairs", "lsh"]
    compared_pairs: int
    seconds: float
    labels: bool = Field(description="the test labels were available: error overlap was computed")
    notes: list[str] = []
    submissions: list[SubmissionPrint]
    pairs: list[PairResult] = Field(description="flagged pairs first, by score; then the highest unflagged ones")
    detailed: int = Field(0, description="the first flagged pairs, shown side by side (their regions kept)")
    clusters: list[Cluster] = []


def read_summary(out: Path) -> dict | None:
    """What the dashboard says of the similarity page: flagged pairs, pairs compared, clusters (None: the stage
    has not run in OUT). Read as plain JSON: the dashboard needs three numbers, not every fingerprint typed."""
    path = out / SIMILARITY_FILE
    if not path.is_file() or not (out / SIMILARITY_PAGE).is_file():
        return None
    stored = json.loads(path.read_text(encoding="utf-8"))
    return {
        "flagged": sum(1 for pair in stored.get("pairs", []) if pair.get("flagged")),
        "compared": stored.get("compared_pairs", 0),
        "clusters": len(stored.get("clusters", [])),
    }
