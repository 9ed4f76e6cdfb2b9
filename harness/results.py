"""Typed, serialisable results of every stage: what one stage writes, the next one reads.

Each is a pydantic model; ``harness schema`` prints their JSON Schema. On disk, per student::

    OUT/<student>/ingest.json     IngestResult     (ingest)
    OUT/<student>/training.json   TrainingRecord   (train + evaluate)
    OUT/<student>/result.json     SubmissionResult (everything, with the score)

>>> ModelResult(name="create_improved_model_1", role="improved").status
'pending'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.util.atomic import write_json_atomic

SCHEMA_VERSION = 1

ModelStatus = Literal[
    "pending",  # not trained yet
    "ok",  # trained and evaluated
    "invalid",  # the factory returned something the protocol cannot train (not a model, wrong shape)
    "error",  # the student's code raised an exception
    "timeout",  # a wall-clock limit was passed and the worker was stopped
    "crashed",  # the worker died (segfault, abort)
    "out_of_memory",  # the worker hit its memory limit
    "killed",  # the worker was killed from outside
    "skipped",  # not run because the submission's total budget was spent
]
SubmissionStatus = Literal["ok", "partial", "failed", "invalid"]


class StoredRecord(BaseModel):
    """The base of every file a stage stores (result.json, similarity.json…): strict, written whole."""

    model_config = ConfigDict(extra="forbid")

    def write(self, path: Path) -> None:
        """Write atomically (temporary file, then rename): a reader never sees half a file."""
        write_json_atomic(path, self.model_dump(mode="json"))

    @classmethod
    def read(cls, path: Path):
        """The record stored at `path`, validated."""
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))


_Result = StoredRecord


# --------------------------------------------------------------------------- ingest


class CodeCell(_Result):
    """A code cell as ingest read it (or the whole .py module, cell None), with the notebook's saved text outputs."""

    cell: int | None = Field(description="notebook cell index; None for a .py module")
    source: str
    outputs: list[str] = Field(
        [],
        description="the notebook's saved text outputs of this cell (streams, "
        "text/plain results, errors), ANSI codes removed, long ones cut",
    )
    execution_count: int | None = Field(None, description="the notebook's saved execution count of this cell")


class MarkdownCell(_Result):
    """A markdown cell of the notebook, kept by ingest for the rubric (the student's explanations)."""

    cell: int
    text: str


class DroppedStatement(_Result):
    """A line left out of the code the worker runs (shell, magic, Colab, training...), where it was and why."""

    cell: int | None
    line: int
    kind: str = Field(
        description="shell, magic, colab, training, evaluation, plotting, data, main, depends_on_dropped, "
        "syntax_error (a cell that does not parse and defines nothing) or statement"
    )
    code: str
    reason: str


class Rewrite(_Result):
    """An edit of the code the worker runs: a Keras 2 idiom written as Keras 3 needs it (harness/ingest/legacy.py)."""

    cell: int | None
    line: int
    before: str
    after: str
    reason: str = Field(description="in English")
    message: Message | None = Field(None, description="the reason as a translation key and values")


class Factory(_Result):
    """A model factory found at ingest: its name, its role, and where it is defined (for a discovered model: built)."""

    name: str
    role: Literal["baseline", "improved"]
    cell: int | None
    line: int
    has_docstring: bool = False


class IgnoredItem(_Result):
    """Something ingest set aside (a function, a file, an archive entry), with the reason."""

    name: str
    reason: str


class IngestResult(_Result):
    """What ingest read from one submission (ingest.json): its code, the factories found, what it dropped or ignored."""

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
        [], description="for each line of module_source: (cell, line in that cell)"
    )
    code_cells: list[CodeCell] = []
    markdown: list[MarkdownCell] = []
    notebook_format: str | None = Field(None, description="nbformat version of the notebook as handed in, e.g. '4.5'")
    other_framework: str | None = Field(
        None, description="the deep-learning framework the code imports instead of Keras (PyTorch, JAX…), if any"
    )
    factory_source: Literal["functions", "mapped", "inferred", "discovered"] = Field(
        "functions",
        description="functions: the convention's names; mapped: --factory-map; inferred: the student's own "
        "model functions under other names, roles inferred (to check); discovered: models built at top level, "
        "found by running the notebook",
    )
    factory_map: dict[str, str] = Field(
        {}, description="harness factory name -> the student's function (--factory-map)"
    )
    candidates: list[IgnoredItem] = Field(
        [], description="functions that return a Keras model under another name (map them with --factory-map)"
    )
    rewrites: list[Rewrite] = Field([], description="Keras 2 idioms rewritten in the code the worker runs")
    local_modules: dict[str, str] = Field(
        {}, description="the student's own modules (a folder's other .py files) the kept code imports: file -> source"
    )
    discovery: DiscoveryRecord | None = Field(None, description="top-level model discovery (no factories)")
    run_labels: dict[str, str] = Field(
        {}, description="harness factory name -> the label the submission's own run gives it ('Augmentation')"
    )

    @property
    def own_names(self) -> dict[str, str]:
        """Harness factory name -> the student's own name for it: the function (``factory_map``), or for a
        model discovered at top level the name the notebook gave it (a config table's run, ``wide_bn``), else
        the variable that held it (``modele_b``): what the student's text uses."""
        found = {
            m.factory: m.name or m.variable
            for m in (self.discovery.models if self.discovery else [])
            if m.name or m.variable
        }
        return {**found, **self.factory_map}


# --------------------------------------------------------------------------- execute + discover
# harness/ingest/execution.py runs a whole notebook with nbclient; harness/ingest/discovery.py runs its code cells
# with Keras's training intercepted. Both in a sandboxed worker.


class CellRun(_Result):
    """One notebook cell in an execute or discover run: status, time, error, printed text."""

    cell: int = Field(description="notebook cell index, from 1 (markdown cells counted)")
    status: Literal["ok", "error", "timeout", "not_run"]
    seconds: float | None = None
    error_name: str | None = None
    error_message: str | None = None
    output: str = Field("", description="the text the cell printed (stdout, text results), truncated")


class PrintedAccuracy(_Result):
    """An accuracy a student's cell printed during `--execute`, read from the cell's output."""

    cell: int
    text: str = Field(description="the printed line")
    value: float = Field(description="as a fraction in [0, 1]")


class ExecutionRecord(_Result):
    """`--execute`: the notebook run top to bottom as handed in (not used to grade the models)."""

    status: Literal["ok", "failed", "timeout", "error"] = Field(
        description="ok: every code cell ran; failed: at least one raised; timeout: the notebook's deadline "
        "was reached; error: the notebook could not be started"
    )
    reason: str | None = None
    cells: list[CellRun] = []
    failed_cells: list[int] = []
    first_failure: int | None = None
    accuracies: list[PrintedAccuracy] = Field([], description="accuracies the student's cells printed")
    neutralised: list[DroppedStatement] = Field(
        [], description="lines replaced by `pass` before running (Colab, shell)"
    )
    data_note: str = Field("", description="how the notebook got MNIST (a first cell injected by the harness)")
    cell_timeout_s: float = 0
    deadline_s: float = 0
    seconds: float = 0
    sandbox: str = ""


class DiscoveredModel(_Result):
    """A model built at top level and fitted by the notebook, found by discovery and graded under a factory name."""

    factory: str = Field(description="the factory name the harness gave it")
    role: Literal["baseline", "improved"]
    variable: str | None = Field(None, description="the notebook variable holding the model when it was fitted")
    name: str | None = Field(
        None, description="the name the notebook gave the model (keras.Model(..., name='wide')); None for Keras's own"
    )
    built_cell: int | None = Field(None, description="cell that built the model")
    compiled_cell: int | None = None
    fitted_cell: int | None = None
    params: int | None = None
    fit: dict[str, Any] = Field({}, description="fit settings as recorded: epochs, batch_size, callbacks, generator")
    notes: list[str] = Field([], description="what could not be reproduced, and why")


class DiscoveryRecord(_Result):
    """Top-level model discovery: the notebook's code cells run with Keras training intercepted; the models found."""

    status: Literal["ok", "no_models", "error", "timeout"]
    reason: str | None = None
    models: list[DiscoveredModel] = []
    not_fitted: list[str] = Field([], description="models compiled but never fitted (not graded)")
    cells: list[CellRun] = []
    seconds: float = 0
    sandbox: str = ""


# --------------------------------------------------------------------------- train + evaluate


class LayerSpec(_Result):
    """One layer of a built model: its Keras class and salient settings."""

    class_name: str
    config: dict[str, Any] = Field(default_factory=dict, description="the layer's salient settings")


class ModelSpec(_Result):
    """What the built model is, read from the model object: the evidence for 'modifications'."""

    layers: list[LayerSpec] = []
    optimizer: str | None = None
    learning_rate: float | None = None
    schedule: str | None = Field(None, description="the LearningRateSchedule the optimizer was given (its class)")
    loss: str | None = None
    compiled_by: Literal["student", "harness"] = "student"
    loss_from: str | None = Field(
        None, description="the student's loss, where the harness trained with its equivalent for one-hot labels"
    )
    raw_pixels: str | None = Field(
        None,
        description="a rescaling written for 0–255 pixels (Rescaling layer, ImageDataGenerator rescale), as the "
        "student wrote it: the harness multiplied its scale by 255, its images being in [0, 1] already",
    )


class TrainingSettings(_Result):
    """Declared by the student (TRAINING_CONFIG) and what the harness actually used."""

    declared: dict[str, Any] = {}
    epochs: int = 0
    batch_size: int = 0
    callbacks: list[str] = []
    augmentation: str | None = None
    ignored_keys: list[str] = []
    # a tf.data map of the student's not reproduced: {"name", "why" (harness/workers/dataset_maps.py), "detail"}
    augmentation_notes: list[dict[str, str]] = []


# --------------------------------------------------------------------------- analysis (harness/analysis/)
# Computed by the grading process from the stored predictions (never by student code). Small on
# purpose: no per-image arrays except the galleries' test indices.


class ConfusedPair(_Result):
    """One (true digit, predicted digit) pair of the confusion matrix and how many test images fell in it."""

    true: int
    predicted: int
    count: int


class GalleryItem(_Result):
    """A misclassified test image shown in a report gallery: its index, true and predicted digits, confidence."""

    index: int = Field(description="position in the test set (the images are in OUT/<student>/gallery.npz)")
    true: int
    predicted: int
    confidence: float = Field(description="the probability the model gave its (wrong) prediction")


class ReliabilityBin(_Result):
    """One confidence bin of the reliability diagram."""

    low: float
    high: float
    count: int
    confidence: float | None = Field(None, description="mean confidence of the bin's images (None: empty bin)")
    accuracy: float | None = Field(None, description="fraction of them predicted correctly")


class Calibration(_Result):
    """How far the model's confidences are from its accuracy on the clean test set: ECE and the reliability diagram."""

    ece: float = Field(description="expected calibration error, in [0, 1]")
    n_bins: int
    binning: str = Field(description="how confidences were binned")
    bins: list[ReliabilityBin] = Field([], description="the reliability diagram's data")
    outputs: Literal["probabilities", "logits"] = Field(
        "probabilities", description="'logits': the model's outputs were not probabilities; softmax was applied"
    )


class OverfittingSignal(_Result):
    """Final-epoch train minus validation (Keras history): a positive accuracy gap is overfitting."""

    train_accuracy: float | None = None
    val_accuracy: float | None = None
    accuracy_gap: float | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    loss_gap: float | None = None
    epochs: int = 0


class ErrorAnalysis(_Result):
    """A model's errors on the clean test set: confusions, per-digit errors, galleries, calibration, overfitting."""

    n: int = Field(description="test images")
    errors: int
    confusion: list[list[int]] = Field(description="counts, confusion[true][predicted]")
    confusion_normalized: list[list[float | None]] = Field(
        description="row-normalised: fraction of the true digit's images predicted as each digit"
    )
    per_digit_error: list[float | None] = Field(
        description="error rate per true digit 0..9 (the assignment's bar chart)"
    )
    per_digit_count: list[int]
    most_confused: list[ConfusedPair] = []
    first_errors: list[GalleryItem] = Field(
        [], description="the first misclassified test images (the assignment's [:10])"
    )
    confident_errors: list[GalleryItem] = Field([], description="the errors the model was most sure about")
    calibration: Calibration | None = None
    overfitting: OverfittingSignal | None = None


class RobustnessEntry(_Result):
    """A model's accuracy on one perturbed set of the robustness suite."""

    name: str
    group: Literal["assignment", "mnist_c", "sweep"]
    perturbation: str
    family: str | None = None
    severity: float | None = None
    n: int = Field(description="test images (the first n)")
    accuracy: float
    mean_confidence: float | None = None
    relative_error: float | None = Field(
        None, description="corruption error relative to the reference, E_model / E_reference (MNIST-C entries)"
    )


class SeverityCurve(_Result):
    """A model's accuracy along one perturbation family's severity sweep."""

    family: str
    severities: list[float] = Field(description="0 (clean, same images) then the sweep's severities")
    accuracies: list[float]
    n: int


class Robustness(_Result):
    """A model's results on the robustness suite: accuracy per perturbed set, MNIST-C summary, severity curves."""

    suite_checksum: str = Field(description="sha256 over every perturbed set's checksum: same value, same images")
    suite_sha256: str = Field(description="sha256 of the suite file")
    clean_accuracy: float
    noise_accuracy: float | None = Field(None, description="the assignment's Gaussian noise sigma = 0.1")
    rotation_accuracy: float | None = Field(None, description="the assignment's random rotation in [-15, 15] degrees")
    mnist_c_accuracy: float | None = Field(None, description="mean accuracy over the MNIST-C corruptions")
    mean_corruption_error: float | None = Field(None, description="unnormalised mCE: mean error over MNIST-C")
    relative_mce: float | None = Field(
        None, description="mean over MNIST-C of E_model / E_reference (1: as robust as the reference, < 1: more)"
    )
    entries: list[RobustnessEntry] = []
    curves: list[SeverityCurve] = []
    images: int = Field(0, description="perturbed images predicted")
    predict_seconds: float | None = Field(None, description="time the evaluation worker spent predicting the suite")


class McNemarTest(_Result):
    """Exact McNemar test of a model against the reference on the same test images."""

    against: str = Field(description="the model compared with (the reference)")
    n: int
    b: int = Field(description="images the reference gets right and the model wrong")
    c: int = Field(description="images the model gets right and the reference wrong")
    p_value: float = Field(description="exact two-sided McNemar (binomial) test")
    gain: float = Field(description="model accuracy minus reference accuracy, = (c - b) / n")
    alpha: float
    significant: bool = Field(description="p_value < alpha")


class SeedRun(_Result):
    """One training run of a model with one seed (--seeds K)."""

    seed: int
    status: str
    test_accuracy: float | None = None
    val_accuracy: float | None = None
    train_seconds: float | None = None


class GainInterval(_Result):
    """A model's gain over the reference across seeds (--seeds K >= 2): per-seed gains, mean and confidence interval."""

    seeds: list[int]
    gains: list[float] = Field(description="per seed: model test accuracy minus the reference's on the same seed")
    mean: float
    std: float | None = None
    low: float | None = None
    high: float | None = None
    confidence: float


class Significance(_Result):
    """Is a model's gain over the reference real: McNemar on the test images and, with several seeds, the interval."""

    mcnemar: McNemarTest | None = None
    seeds: GainInterval | None = Field(None, description="with --seeds K >= 2")


class Message(_Result):
    """A sentence kept as its translation key and values, so that a report re-rendered in another
    language says it in that language (``Translator.render``); a list value is a list of messages,
    joined with commas."""

    key: str
    values: dict[str, str | int | float | Message | list[Message | str]] = Field(default_factory=dict)


class ProbeResult(_Result):
    """A model's accuracy on one invariance probe (``harness/workers/probes.py``) against the clean test set."""

    probe: str
    accuracy: float
    lost: int = Field(description="test images right on the clean set and wrong under the probe")
    gained: int = Field(description="wrong on the clean set and right under the probe")
    drop: float = Field(description="clean accuracy minus the probe's")


class PrivateCheck(_Result):
    """A model on the course's private check set (``harness/analysis/private_set.py``): test images
    rewritten by a secret seed, against the same images as published, and its control."""

    n: int = Field(description="private images: test images drawn and rewritten by the course's secret seed")
    public_accuracy: float = Field(description="on the same test images as published")
    private_accuracy: float
    changed: float = Field(
        description="share of the private images whose predicted digit differs from the published image's"
    )
    control_n: int = Field(0, description="validation images rewritten alike (the control)")
    control_changed: float | None = Field(None, description="share of them whose predicted digit changed")


class IntegrityFlag(_Result):
    """A signal for the instructor that a model's test accuracy looks implausible, and why."""

    rule: Literal["test_above_validation", "capacity", "invariance", "private_set"]
    reason: str = Field(description="in the language graded in")
    message: Message | None = Field(None, description="the reason as a translation key and values")


class BatchNormStatistics(_Result):
    """A model's BatchNormalization statistics: re-estimated after training where the profile says so
    (``bn_recalibration_images`` in ``reference/protocol.toml``, "precise BatchNorm")."""

    layers: int = Field(description="trainable BatchNormalization layers, nested ones included")
    recalibrated: bool
    images: int = Field(0, description="training images the statistics were re-estimated on")
    val_accuracy_moving: float | None = Field(
        None, description="validation accuracy with Keras's own moving averages, at the end of training"
    )
    val_accuracy_recalibrated: float | None = Field(None, description="with the re-estimated statistics (kept)")


class MeasurementNote(_Result):
    """Whether the profile measured a model's accuracy faithfully, and why not (``reference/analysis.toml``)."""

    rule: Literal["collapse", "still_learning", "batchnorm_statistics"]
    measurable: bool = Field(description="False: no criterion is scored from this model's accuracy")
    reason: str = Field(description="in the language graded in")
    message: Message


class ModelResult(_Result):
    """One model of a submission (baseline, improved, or the reference): how it was built, trained and evaluated."""

    name: str
    role: Literal["baseline", "improved", "reference"]
    status: ModelStatus = "pending"
    reason: str | None = None
    traceback: str | None = None
    params: int | None = None
    runtime: str | None = Field(None, description="what built and trained the model: Keras, TensorFlow, backend")
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
        False, description="the saved model could only be loaded with the student's own definitions"
    )
    model_file: str | None = None
    predictions_file: str | None = Field(
        None, description="<name>.predictions.npz: clean-test probabilities and the suite's predicted labels"
    )
    from_cache: list[str] = Field([], description="stages taken from the cache: train, evaluate")
    evaluation_key: str | None = Field(None, description="what the stored evaluation was computed against")
    error_analysis: ErrorAnalysis | None = None
    robustness: Robustness | None = None
    significance: Significance | None = Field(None, description="against the reference, on the same test images")
    integrity: list[IntegrityFlag] = Field([], description="signals for the instructor to look at")
    invariance: list[ProbeResult] = Field(
        [], description="the invariance probes: accuracy under changes no digit reader notices"
    )
    private_set: PrivateCheck | None = Field(None, description="the course's private check set (docs/integrity.md)")
    batchnorm: BatchNormStatistics | None = Field(None, description="None: the model has no BatchNormalization")
    measurement: MeasurementNote | None = Field(
        None, description="the profile could not measure this model faithfully, or needed help to (see its rule)"
    )
    seed_runs: list[SeedRun] = Field([], description="with --seeds K: one run per seed, the first is `seed`")

    @property
    def measurable(self) -> bool:
        """Whether the criteria that depend on accuracy may be scored from this model."""
        return self.measurement is None or self.measurement.measurable


class WorkerInfo(_Result):
    """The worker that ran the student's models: how it was isolated, its threads, device and restarts."""

    sandbox: str = Field(description="how student code was isolated")
    threads: int
    device: str = "cpu"
    restarts: int = 0
    node: str = Field("", description="the Ray node that graded the submission (its id); empty on the local backend")


class TrainingRecord(_Result):
    """What training and evaluation produced for one submission (training.json): its models and the worker."""

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


class EvidenceItem(_Result):
    """One thing a rule detected (or missed), where it is, in the report's language."""

    text: str
    where: str | None = Field(None, description="where it was found, in words: 'cellule 12', 'ligne 40'")
    cell: int | None = Field(None, description="notebook cell (numbered from 1)")
    line: int | None = Field(None, description="line in that cell, or in the .py module")
    kind: Literal["info", "found", "missing", "flag"] = Field(
        "info", description="flag: something shown to the student and the instructor (a disagreement, a problem)"
    )
    messages: dict[str, Message | list[Message]] = Field(
        {},
        description="`text` as messages (key and values), by field name: said again in the report's language "
        "at report time; absent in older results, whose text is shown as stored",
    )


class ComponentScore(_Result):
    """A part of a criterion (e.g. 'justification' of 'modifications'), with its own points."""

    id: str
    label: str
    points: float
    max_points: float
    detail: str = ""
    messages: dict[str, Message | list[Message]] = Field(
        {},
        description="`label` and `detail` as messages (key and values), by field name: said again in the report's language "
        "at report time; absent in older results, whose text is shown as stored",
    )


class CriterionScore(_Result):
    """Points for one rubric criterion: the reason, the evidence and components, and any instructor override."""

    id: str
    title: str
    points: float = Field(description="final points: the instructor's when set, else the automatic ones")
    max_points: float
    reason: str
    evidence: list[EvidenceItem] = []
    components: list[ComponentScore] = []
    auto_points: float | None = Field(None, description="points given by the rubric (None in older results: = points)")
    instructor_points: float | None = Field(None, description="points set by the instructor's overrides file")
    withheld_points: float | None = Field(
        None, description="automatic points held back until the instructor clears the integrity flags they rest on"
    )
    instructor_comment: str | None = None
    confidence: Literal["high", "low"] = Field(
        "high",
        description="low: a human look could change the mark (names inferred, text in an unexpected place or "
        "language, a mark on a threshold)",
    )
    confidence_reasons: list[str] = Field([], description="why the confidence is low, in the language graded in")
    messages: dict[str, Message | list[Message]] = Field(
        {},
        description="`reason` and `confidence_reasons` as messages (key and values), by field name: said again in the report's language "
        "at report time; absent in older results, whose text is shown as stored",
    )

    @field_validator("evidence", mode="before")
    @classmethod
    def _evidence_from_text(cls, value):
        """Older result.json files stored evidence as plain strings."""
        return [{"text": item} if isinstance(item, str) else item for item in value or []]


class Score(_Result):
    """The rubric's score of a submission: the total and each criterion, instructor overrides applied."""

    total: float = Field(description="final total, instructor overrides included")
    max_total: float
    criteria: list[CriterionScore]
    rubric: str = Field(description="rubric file name and sha256")
    total_auto: float | None = Field(None, description="total of the automatic points (None in older results)")
    overrides: str | None = Field(None, description="overrides file name and sha256, when one was applied")


class RunInfo(_Result):
    """How the grading run was made (versions, profile, seed, data, budgets, command, suite): what reproduces it."""

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
    suite_sha256: str | None = Field(None, description="sha256 of the robustness suite file")
    suite_checksum: str | None = Field(None, description="sha256 over every perturbed set's checksum")
    seeds: list[int] = Field([], description="training seeds (--seeds K), the first is `seed`")
    sandbox: str = Field(
        "",
        description="how student code was isolated in this run: 'bubblewrap', or 'none: <why>' "
        "(--no-sandbox, harness demo without bubblewrap, harness check); empty in results written before it",
    )
    fidelity: dict[str, int | str] = Field(
        {},
        description="how the profile stays faithful to the full protocol: images, BatchNorm statistics, collapse, still learning",
    )


class ReferenceSummary(_Result):
    """The reference model's result and the cache key it was trained for."""

    model: ModelResult
    trained_for: str = Field(description="cache key: protocol, profile, seed, data, harness version")


class AnalysisSummary(_Result):
    """Is the best improved model's gain over the reference real? (the report's plain sentence)"""

    best_model: str | None = None
    verdict: Literal["beats", "not_significant", "worse", "no_model"]
    verdict_text: str = Field(description="the sentence, in the run's language")
    gain: float | None = None
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    flagged: list[str] = Field([], description="models with integrity flags")
    gallery_file: str | None = Field(None, description="gallery.npz: the galleries' test images")


class InternalError(_Result):
    """A failure of the harness itself while grading one submission (not the student's error)."""

    stage: str = Field(description="ingest, discovery, execute, train, analyse, score, report or grade")
    error: str
    traceback: str


class SubmissionResult(_Result):
    """Everything about one submission (result.json): what ingest found, the models, the analysis and the score."""

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
    analysis: AnalysisSummary | None = None
    execution: ExecutionRecord | None = Field(None, description="--execute: the notebook run top to bottom")
    discovered_models: list[DiscoveredModel] = Field(
        [], description="models built at top level and found by running the notebook (which cell built each)"
    )
    candidates: list[IgnoredItem] = Field([], description="functions returning a Keras model under other names")
    factory_names: dict[str, str] = Field(
        {}, description="harness factory name -> the student's own function (or call), when the names differ"
    )
    names_inferred: bool = Field(False, description="factory_names were inferred by the harness: to check")
    rewrites: list[Rewrite] = Field([], description="Keras 2 idioms rewritten in the code the worker runs")
    internal_error: InternalError | None = Field(
        None, description="the harness failed while grading this submission (status failed): where and why"
    )

    def best_improved(self) -> ModelResult | None:
        """The improved model with the highest test accuracy, or None when none was evaluated."""
        trained = [m for m in self.models if m.role == "improved" and m.test_accuracy is not None]
        return max(trained, key=lambda m: m.test_accuracy, default=None)


def json_schema() -> dict[str, Any]:
    """JSON Schema of result.json (and, through $defs, of every stage's artifact)."""
    return SubmissionResult.model_json_schema()
