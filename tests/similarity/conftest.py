"""A graded class built without training: the synthetic class of tests/fixtures/similarity/ ingested for
real (static ingest), its models and predictions made from models.toml.

Predictions come from a seed derived from each model's design (the harness retrains the same design under
the same seed into the same model), errors drawn on images of shared difficulty (some digits are hard for
every model), so independent models overlap as real ones do.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import numpy as np
import pytest

from harness.ingest import ingest_path
from harness.pipeline.data import content_sha256
from harness.results import (
    LayerSpec,
    ModelResult,
    ModelSpec,
    ReferenceSummary,
    RunInfo,
    SubmissionResult,
    TrainingSettings,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "similarity"
TEST_IMAGES = 1000
SIZE_KEY = {"Conv2D": "filters", "Dense": "units", "Dropout": "rate", "SpatialDropout2D": "rate"}


def _layers(text: str) -> list[LayerSpec]:
    found = []
    for item in text.split():
        name, _, size = item.partition(":")
        config = {SIZE_KEY.get(name, "size"): float(size) if "." in size else int(size)} if size else {}
        found.append(LayerSpec(class_name=name, config=config))
    return found


def model_result(name: str, role: str, entry: dict) -> ModelResult:
    spec = ModelSpec(
        layers=_layers(entry["layers"]),
        optimizer=entry["optimizer"],
        learning_rate=entry["learning_rate"],
        loss="categorical_crossentropy",
    )
    settings = TrainingSettings(
        epochs=entry.get("epochs", 5), batch_size=entry.get("batch_size", 128), callbacks=entry.get("callbacks", [])
    )
    return ModelResult(
        name=name, role=role, status="ok", spec=spec, settings=settings, predictions_file=f"{name}.predictions.npz"
    )


def _difficulty() -> np.ndarray:
    return np.random.default_rng(0).beta(0.3, 6.0, TEST_IMAGES)


def predictions(model: ModelResult, labels: np.ndarray) -> np.ndarray:
    """Probabilities of a model: the same design always gives the same ones."""
    seed = int.from_bytes(
        hashlib.sha256(model.spec.model_dump_json().encode() + model.settings.model_dump_json().encode()).digest()[:8],
        "little",
    )
    rng = np.random.default_rng(seed)
    difficulty = _difficulty()
    errors = int(rng.integers(15, 40))
    chance = difficulty / difficulty.sum() * errors * 1.0
    wrong = rng.random(TEST_IMAGES) < np.clip(chance, 0, 1)
    predicted = np.where(wrong, (labels + rng.integers(1, 10, TEST_IMAGES)) % 10, labels)
    probabilities = rng.random((TEST_IMAGES, 10)).astype(np.float32) * 0.1
    probabilities[np.arange(TEST_IMAGES), predicted] = 0.9
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def write_mnist(path: Path) -> tuple[np.ndarray, str]:
    """A stand-in for MNIST with the class's test labels (the stage reads only the labels)."""
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": np.zeros((10, 28, 28), np.uint8),
        "y_train": np.arange(10, dtype=np.uint8),
        "x_test": np.zeros((TEST_IMAGES, 28, 28), np.uint8),
        "y_test": rng.integers(0, 10, TEST_IMAGES).astype(np.uint8),
    }
    np.savez(path, **arrays)
    return arrays["y_test"].astype(np.int64), content_sha256(arrays)


def run_info(data: Path, content: str) -> RunInfo:
    return RunInfo(
        harness_version="test",
        profile="smoke",
        seed=1,
        protocol_sha256="",
        data_source=str(data),
        data_sha256="",
        data_content_sha256=content,
        versions={},
        language="fr",
        budgets={},
        started_at="2026-01-01T00:00:00+00:00",
        command="tests/similarity/conftest.py",
    )


def write_student(out: Path, path: Path, entries: list[dict], handout: dict, labels, run: RunInfo) -> None:
    student = path.stem
    folder = out / student
    (folder / "models").mkdir(parents=True)
    ingest_path(path, student).write(folder / "ingest.json")
    models = [model_result("create_baseline_model", "baseline", handout)]
    models += [model_result(f"create_improved_model_{n}", "improved", e) for n, e in enumerate(entries, 1)]
    for model in models:
        np.savez(folder / "models" / model.predictions_file, probabilities=predictions(model, labels))
    SubmissionResult(
        student=student, status="ok", submission_sha256="", source=str(path), models=models, run=run
    ).write(folder / "result.json")


def build_class(out: Path, folder: Path = FIXTURES / "class") -> Path:
    """OUT as `harness grade` would leave it, for the synthetic class (no model trained)."""
    out.mkdir(parents=True)
    described = tomllib.loads((FIXTURES / "models.toml").read_text(encoding="utf-8"))
    labels, content = write_mnist(out.parent / "mnist.npz")
    run = run_info(out.parent / "mnist.npz", content)
    reference = model_result("create_baseline_model", "reference", described["handout"])
    (out / "_reference").mkdir()
    ReferenceSummary(model=reference, trained_for="test").write(out / "_reference" / "reference.json")
    for path in sorted(folder.glob("*.ipynb")):
        write_student(out, path, described["students"][path.stem], described["handout"], labels, run)
    return out


@pytest.fixture(scope="session")
def synthetic_class(tmp_path_factory) -> Path:
    return build_class(tmp_path_factory.mktemp("similarity") / "out")


@pytest.fixture(scope="session")
def expected() -> dict:
    return tomllib.loads((FIXTURES / "expected.toml").read_text(encoding="utf-8"))
