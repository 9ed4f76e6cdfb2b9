"""Scoring: the rubric's rules on hand-made evidence, the report sections of the samples, and
re-scoring / re-rendering a graded class without retraining anything."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.config import bundled
from harness.i18n import Translator
from harness.ingest import ingest_path
from harness.rescore import rescore
from harness.results import LayerSpec, ModelResult, ModelSpec, SubmissionResult, TrainingSettings
from harness.score import Evidence, failed_score, find_sections, load_rubric, model_differences, score
from conftest import SAMPLES, copy_of

FR, EN = Translator("fr"), Translator("en")
CRITERIA = ["code_quality", "modifications", "improvement", "analysis", "documentation"]


@pytest.fixture(scope="module")
def rubric():
    return load_rubric()


@pytest.fixture(scope="module")
def baseline_ingest():
    return ingest_path(SAMPLES / "baseline_only.ipynb")


def layers(*names_and_configs) -> list[LayerSpec]:
    return [LayerSpec(class_name=name, config=config) for name, config in names_and_configs]


BASELINE_LAYERS = layers(("Conv2D", {"filters": 32, "kernel_size": [3, 3]}), ("MaxPooling2D", {}),
                         ("Conv2D", {"filters": 64, "kernel_size": [3, 3]}), ("MaxPooling2D", {}),
                         ("Flatten", {}), ("Dense", {"units": 128}), ("Dense", {"units": 10}))


def model(name: str, role: str = "improved", accuracy: float | None = 0.9, status: str = "ok",
          extra_layers=(), optimizer="Adam", lr=1e-3, settings: TrainingSettings | None = None) -> ModelResult:
    spec = ModelSpec(layers=BASELINE_LAYERS[:-1] + list(extra_layers) + BASELINE_LAYERS[-1:],
                     optimizer=optimizer, learning_rate=lr, loss="categorical_crossentropy")
    return ModelResult(name=name, role=role, status=status, test_accuracy=accuracy if status == "ok" else None,
                       spec=spec if status in ("ok",) else None, settings=settings or TrainingSettings(epochs=1))


def evidence(rubric, ingest, models, reference_accuracy=0.9) -> Evidence:
    reference = model("create_baseline_model", role="reference", accuracy=reference_accuracy)
    return Evidence(ingest=ingest, models=models, reference=reference, rubric=rubric,
                    protocol_epochs=5, protocol_batch_size=128)


def criterion(result_score, cid):
    return next(c for c in result_score.criteria if c.id == cid)


# --------------------------------------------------------------------------- rubric and rules

def test_default_rubric(rubric):
    assert [c.id for c in rubric.criteria] == CRITERIA
    assert rubric.max_total == 20
    assert rubric.source.startswith("default.toml sha256:")


def test_unknown_rule_is_rejected(tmp_path):
    text = bundled("rubric", "default.toml").read_text(encoding="utf-8").replace('rule = "analysis"', 'rule = "vibes"')
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="unknown rule.*vibes"):
        load_rubric(path)


@pytest.mark.parametrize("gain_pp, points", [(0.9, 4), (0.3, 3), (0.1, 2), (0.0, 1), (-0.2, 1), (-0.4, 0), (-5, 0)])
def test_improvement_thresholds(rubric, baseline_ingest, gain_pp, points):
    models = [model("create_baseline_model", role="baseline", accuracy=0.5),
              model("create_improved_model_1", accuracy=0.6 + gain_pp / 100),
              model("create_improved_model_2", accuracy=0.55)]
    result = score(evidence(rubric, baseline_ingest, models, reference_accuracy=0.6), FR)
    improvement = criterion(result, "improvement")
    assert improvement.points == points
    assert "create_improved_model_1" in improvement.reason  # the best improved model is the one named
    assert f"{gain_pp:+.2f}" in improvement.reason


def test_improvement_without_a_trained_improved_model(rubric, baseline_ingest):
    models = [model("create_baseline_model", role="baseline", accuracy=0.99),
              model("create_improved_model_1", status="error")]
    improvement = criterion(score(evidence(rubric, baseline_ingest, models), EN), "improvement")
    assert improvement.points == 0 and "No improved model trained" in improvement.reason


def test_modifications_are_read_from_the_built_models(rubric, baseline_ingest):
    baseline = model("create_baseline_model", role="baseline")
    dropout = model("create_improved_model_1", extra_layers=layers(("Dropout", {"rate": 0.3})))
    slower = model("create_improved_model_2", lr=5e-4)
    longer = model("create_improved_model_3", settings=TrainingSettings(
        declared={"epochs": 12}, epochs=1, callbacks=["EarlyStopping"]))
    one = criterion(score(evidence(rubric, baseline_ingest, [baseline, dropout]), EN), "modifications")
    assert one.points == 2 and "regularisation" in one.reason
    assert any("Dropout" in e for e in one.evidence)
    three = criterion(score(evidence(rubric, baseline_ingest, [baseline, dropout, slower, longer]), EN), "modifications")
    assert three.points == 6
    assert "3 modification categories" in three.reason
    diffs = model_differences(longer, baseline, 5, 128, EN)
    assert set(diffs) == {"training"} and any("EarlyStopping" in d for d in diffs["training"])
    same = criterion(score(evidence(rubric, baseline_ingest, [baseline, model("create_improved_model_1")]), EN),
                     "modifications")
    assert same.points == 0 and any("no difference" in e for e in same.evidence)


def test_code_quality_counts_the_models_that_ran(rubric, baseline_ingest):
    all_ok = [model("create_baseline_model", role="baseline"), model("create_improved_model_1")]
    half = [model("create_baseline_model", role="baseline"), model("create_improved_model_1", status="timeout")]
    full = criterion(score(evidence(rubric, baseline_ingest, all_ok), EN), "code_quality")
    partial = criterion(score(evidence(rubric, baseline_ingest, half), EN), "code_quality")
    assert full.points - partial.points == pytest.approx(1.0)  # runs_points 2 x (1 - 1/2)
    assert "1/2 models" in partial.reason


def test_totals_are_sums_of_half_points_within_the_maxima(rubric, baseline_ingest):
    models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1", accuracy=0.95)]
    result = score(evidence(rubric, baseline_ingest, models), FR)
    assert [c.id for c in result.criteria] == CRITERIA
    assert result.total == sum(c.points for c in result.criteria) and result.max_total == 20
    for c in result.criteria:
        assert 0 <= c.points <= c.max_points and (2 * c.points).is_integer()
        assert c.title == next(k.title["fr"] for k in rubric.criteria if k.id == c.id)


def test_failed_score_is_zero_everywhere_with_the_reason(rubric):
    result = failed_score(rubric, "Syntax error in cell 3", EN)
    assert result.total == 0 and result.max_total == 20
    assert [(c.id, c.points, c.reason) for c in result.criteria] == [(i, 0.0, "Syntax error in cell 3") for i in CRITERIA]


# --------------------------------------------------------------------------- report sections

def test_sections_of_the_samples(rubric):
    def sections(name):
        return find_sections(ingest_path(SAMPLES / name), rubric.sections)

    all_seven = {"introduction", "baseline", "improvements", "results", "errors", "robustness", "conclusion"}
    assert set(sections("Camille Dupont.ipynb")) == all_seven
    module = sections("module_student.py")  # English, in the module docstring
    assert set(module) == all_seven and all(info["where"] == 1 for info in module.values())
    zoe = sections("Zoé Martin")
    assert set(zoe) == all_seven - {"errors"}
    assert set(sections("baseline_only.ipynb")) <= {"baseline", "introduction"}


def test_documentation_and_analysis_follow_the_sections(rubric):
    camille = ingest_path(SAMPLES / "Camille Dupont.ipynb")
    models = [model("create_baseline_model", role="baseline")]
    result = score(evidence(rubric, camille, models), EN)
    assert criterion(result, "documentation").points == 3 and criterion(result, "analysis").points == 3
    zoe = score(evidence(rubric, ingest_path(SAMPLES / "Zoé Martin"), models), EN)
    assert criterion(zoe, "analysis").points < 3
    assert any('"Error analysis" not found' in e for e in criterion(zoe, "analysis").evidence)


# --------------------------------------------------------------------------- re-scoring a graded class

def expected_improvement(result: SubmissionResult, thresholds: list[tuple[float, float]]) -> float:
    trained = [m for m in result.models if m.role == "improved" and m.test_accuracy is not None]
    if not trained:
        return 0.0
    gain = 100 * (max(m.test_accuracy for m in trained) - result.reference.model.test_accuracy)
    return next((points for minimum, points in thresholds if gain >= minimum), 0.0)


def rubric_with_thresholds(path: Path, thresholds: list[tuple[float, float]]) -> Path:
    text = bundled("rubric", "default.toml").read_text(encoding="utf-8")
    table = ", ".join(f"{{ min_gain_pp = {m}, points = {p} }}" for m, p in thresholds)
    text, count = re.subn(r"thresholds = \[.*?\n\]", f"thresholds = [{table}]", text, flags=re.S)
    assert count == 1
    path.write_text(text, encoding="utf-8")
    return path


DEFAULT_THRESHOLDS = [(0.5, 4), (0.25, 3), (0.05, 2), (-0.25, 1)]
GENEROUS = [(-1000.0, 4)]


def snapshot(out: Path) -> dict[str, int]:
    """mtimes of what training produced: training.json and the stored models and predictions."""
    files = list(out.glob("*/training.json")) + list(out.glob("*/models/*"))
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in files}


@pytest.fixture()
def rescored(graded, tmp_path):
    out = copy_of(graded, tmp_path / "out")
    before = {r.student: r for r in graded.summary.results}
    trained = snapshot(out)
    results = rescore(out, rubric_path=rubric_with_thresholds(tmp_path / "generous.toml", GENEROUS))
    return out, before, {r.student: r for r in results}, trained


def test_graded_improvement_follows_the_default_thresholds(graded):
    for result in graded.summary.results:
        if result.status == "ok":
            assert criterion(result.score, "improvement").points == expected_improvement(result, DEFAULT_THRESHOLDS)


def test_rescore_applies_a_changed_threshold(rescored):
    out, before, after, _ = rescored
    assert set(after) == set(before)
    for student, result in after.items():
        old = before[student]
        assert result.score.rubric.startswith("generous.toml sha256:")
        expected = expected_improvement(result, GENEROUS) if result.status == "ok" else 0.0
        assert criterion(result.score, "improvement").points == expected
        for cid in ("code_quality", "modifications", "analysis", "documentation"):
            assert criterion(result.score, cid).points == criterion(old.score, cid).points
        assert result.score.total == sum(c.points for c in result.score.criteria)
        assert result.models == old.models  # nothing retrained or re-evaluated
        assert SubmissionResult.read(out / student / "result.json").score == result.score
    assert criterion(after["module_student"].score, "improvement").points == 4
    assert criterion(after["Zoé Martin"].score, "improvement").points == 4
    assert criterion(after["baseline_only"].score, "improvement").points == 0  # no improved model at all
    assert after["broken"].score.total == 0
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = {row[0]: row for row in list(csv.reader(handle))[1:]}
    assert float(rows["module_student"][2]) == after["module_student"].score.total
    assert float(rows["module_student"][5]) == 4


def test_rescore_trains_nothing(rescored):
    out, _, _, trained = rescored
    assert trained and snapshot(out) == trained
    assert not any((out / ".work").glob("*/train")), "a training worker was started"


def test_cli_score_and_report(graded, tmp_path, capsys):
    out = copy_of(graded, tmp_path / "out")
    trained = snapshot(out)
    rubric_path = rubric_with_thresholds(tmp_path / "strict.toml", [(1000.0, 4)])
    assert main(["score", str(out), "--rubric", str(rubric_path)]) == 1  # the broken notebook is still unreadable
    assert "nothing retrained" in capsys.readouterr().out
    for result in (SubmissionResult.read(p) for p in out.glob("*/result.json")):
        assert criterion(result.score, "improvement").points == 0
    (out / "index.html").unlink()
    (out / "module_student" / "report.html").unlink()
    assert main(["report", str(out), "--lang", "en"]) == 0
    assert (out / "index.html").is_file() and (out / "module_student" / "report.html").is_file()
    page = (out / "module_student" / "report.html").read_text(encoding="utf-8")
    assert 'lang="en"' in page and "Grading report" in page
    assert snapshot(out) == trained


def test_cli_score_on_an_empty_folder_exits_2(tmp_path, capsys):
    assert main(["score", str(tmp_path)]) == 2
    assert "no stored results" in capsys.readouterr().err
