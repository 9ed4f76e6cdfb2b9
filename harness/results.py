"""Typed, serialisable results of every stage: what one stage writes, the next one reads.

Each is a pydantic model; ``harness schema`` prints their JSON Schema. On disk, per student::

    OUT/<student>/ingest.json     IngestResult     (ingest)
    OUT/<student>/training.json   TrainingRecord   (train + evaluate)
    OUT/<student>/result.json     SubmissionResult (everything, with the score)

>>> ModelResult(name="create_improved_model_1", role="improved").status
'pending'
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

ModelStatus = Literal[
    "pending",        # not trained yet
    "ok",             # trained and evaluated
    "invalid",        # the factory returned something the protocol cannot train (not a model, wrong shape)
    "error",          # the student's code raised an exception
    "timeout",        # a wall-clock limit was passed and the worker was stopped
    "crashed",        # the worker died (segfault, abort)
    "out_of_memory",  # the worker hit its memory limit
    "killed",         # the worker was killed from outside
    "skipped",        # not run because the submission's total budget was spent
]
SubmissionStatus = Literal["ok", "partial", "failed", "invalid"]


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def write(self, path: Path) -> None:
        """Write atomically (temporary file, then rename): a reader never sees half a file."""
        write_json_atomic(path, self.model_dump(mode="json"))

    @classmethod
    def read(cls, path: Path):
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))


def write_json_atomic(path: Path, data: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- ingest

class CodeCell(_Result):
    cell: int | None = Field(description="notebook cell index; None for a .py module")
    source: str


class MarkdownCell(_Result):
    cell: int
    text: str


class DroppedStatement(_Result):
    cell: int | None
    line: int
    kind: str = Field(description="shell, magic, colab, training, evaluation, plotting, data, main, "
                                  "depends_on_dropped or statement")
    code: str
    reason: str


class Factory(_Result):
    name: str
    role: Literal["baseline", "improved"]
    cell: int | None
    line: int
    has_docstring: bool = False


class IgnoredItem(_Result):
    name: str
    reason: str


class IngestResult(_Result):
    schema_version: int = SCHEMA_VERSION
    student: str
    source: str
    kind: Literal["notebook", "module", "folder"]
    main_file: str
    sha256: str = Field(description="sha256 of the submission's files (names and bytes)")
    status: Literal["ok", "invalid"] = "ok"
    reason: str | None = None
    factories: list[Factory] = []
    ignored_functions: list[IgnoredItem] = []
    ignored_files: list[IgnoredItem] = []
    dropped: list[DroppedStatement] = []
    has_training_config: bool = False
    module_source: str = Field("", description="the code the worker imports: kept statements only")
    line_map: list[tuple[int | None, int]] = Field(
        [], description="for each line of module_source: (cell, line in that cell)")
    code_cells: list[CodeCell] = []
    markdown: list[MarkdownCell] = []


# --------------------------------------------------------------------------- train + evaluate

class LayerSpec(_Result):
    class_name: str
    config: dict[str, Any] = Field(default_factory=dict, description="the layer's salient settings")


class ModelSpec(_Result):
    """What the built model is, read from the model object: the evidence for 'modifications'."""

    layers: list[LayerSpec] = []
    optimizer: str | None = None
    learning_rate: float | None = None
    loss: str | None = None
    compiled_by: Literal["student", "harness"] = "student"


class TrainingSettings(_Result):
    """Declared by the student (TRAINING_CONFIG) and what the harness actually used."""

    declared: dict[str, Any] = {}
    epochs: int = 0
    batch_size: int = 0
    callbacks: list[str] = []
    augmentation: str | None = None
    ignored_keys: list[str] = []


class ModelResult(_Result):
    name: str
    role: Literal["baseline", "improved", "reference"]
    status: ModelStatus = "pending"
    reason: str | None = None
    traceback: str | None = None
    params: int | None = None
    spec: ModelSpec | None = None
    settings: TrainingSettings | None = None
    epochs_run: int = 0
    train_seconds: float | None = None
    stopped_by_budget: bool = False
    history: dict[str, list[float]] = {}
    val_accuracy: float | None = Field(None, description="last epoch's validation accuracy (Keras)")
    test_accuracy: float | None = Field(None, description="computed by the harness from the model's predictions")
    test_errors: int | None = None
    evaluated_with_student_code: bool = Field(
        False, description="the saved model could only be loaded with the student's own definitions")
    model_file: str | None = None
    predictions_file: str | None = None


class WorkerInfo(_Result):
    sandbox: str = Field(description="how student code was isolated")
    threads: int
    device: str = "cpu"
    restarts: int = 0


class TrainingRecord(_Result):
    schema_version: int = SCHEMA_VERSION
    student: str
    submission_sha256: str
    seed: int
    profile: str
    data_sha256: str
    models: list[ModelResult]
    worker: WorkerInfo
    wall_seconds: float


# --------------------------------------------------------------------------- score + final

class CriterionScore(_Result):
    id: str
    title: str
    points: float
    max_points: float
    reason: str
    evidence: list[str] = []
    instructor_points: float | None = None
    instructor_comment: str | None = None


class Score(_Result):
    total: float
    max_total: float
    criteria: list[CriterionScore]
    rubric: str = Field(description="rubric file name and sha256")


class RunInfo(_Result):
    harness_version: str
    profile: str
    seed: int
    protocol_sha256: str
    data_source: str
    data_sha256: str = Field(description="sha256 of the data file as read")
    data_content_sha256: str = Field(description="sha256 of the arrays' bytes (x_train, y_train, x_test, y_test)")
    versions: dict[str, str]
    language: str
    budgets: dict[str, float]
    started_at: str
    command: str


class ReferenceSummary(_Result):
    model: ModelResult
    trained_for: str = Field(description="cache key: protocol, profile, seed, data, harness version")


class SubmissionResult(_Result):
    schema_version: int = SCHEMA_VERSION
    student: str
    status: SubmissionStatus
    reason: str | None = None
    submission_sha256: str
    source: str
    factories_found: list[str] = []
    factories_ignored: list[IgnoredItem] = []
    dropped: list[DroppedStatement] = []
    ignored_files: list[IgnoredItem] = []
    models: list[ModelResult] = []
    reference: ReferenceSummary | None = None
    run: RunInfo
    worker: WorkerInfo | None = None
    score: Score | None = None

    def best_improved(self) -> ModelResult | None:
        trained = [m for m in self.models if m.role == "improved" and m.test_accuracy is not None]
        return max(trained, key=lambda m: m.test_accuracy, default=None)


def json_schema() -> dict[str, Any]:
    """JSON Schema of result.json (and, through $defs, of every stage's artifact)."""
    return SubmissionResult.model_json_schema()
