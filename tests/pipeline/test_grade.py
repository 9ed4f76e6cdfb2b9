"""Grading end to end with real TensorFlow workers on the tiny profile: outputs, failures, budgets,
reproducibility, reuse of unchanged submissions, and the CLI's exit codes."""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import json
import shutil
import urllib.parse
from importlib import metadata
from pathlib import Path

import html5lib
import numpy as np
import pytest
from conftest import (
    BUDGET,
    BUDGET_MODEL_S,
    BUILD_TIMEOUT_S,
    FOLDER_STUDENT,
    SAMPLES,
    TINY,
    TINY_TEST_IMAGES,
    copy_of,
    run_grade,
)

from harness.cli import main
from harness.config.protocol import load_protocol
from harness.pipeline import REFERENCE_DIR
from harness.pipeline.data import DATA_ENV, load_mnist, training_split
from harness.resources import bundled
from harness.results import SubmissionResult
from harness.sandbox import bubblewrap_available
from harness.training.train import TrainingJob, train_submission

# `harness grade` refuses to run without bubblewrap; the repository's own samples may, as an instructor's
# trusted code may, with --no-sandbox (the library calls in conftest.py fall back the same way)
NO_SANDBOX_WHERE_ABSENT = [] if bubblewrap_available() else ["--no-sandbox"]

CSV_HEADER = ["student", "status", "total", "code_quality", "modifications", "improvement", "analysis", "documentation"]
OK_STUDENTS = {"baseline_only", "module_student", FOLDER_STUDENT}
STUDENTS = OK_STUDENTS | {"broken"}


def predictions(folder: Path, model) -> np.ndarray:
    """The test-set probabilities the harness stored for a model (.npy, or .npz with `probabilities`)."""
    path = folder / "models" / model.predictions_file
    if path.suffix == ".npz":
        with np.load(path) as npz:
            return npz["probabilities"]
    return np.load(path)


def assert_self_contained(path: Path):
    """No resource from the network; every image is an inline PNG. Returns the parsed tree."""
    raw = path.read_bytes()
    document = html5lib.parse(raw, namespaceHTMLElements=False)
    images = 0
    for element in document.iter():
        for attribute in ("src", "href", "srcset", "data", "poster", "action"):
            value = (element.get(attribute) or "").strip().lower()
            assert not value.startswith(("http://", "https://", "//")), (
                f"{path.name}: <{element.tag} {attribute}={value[:80]}>"
            )
        if element.tag == "img":
            images += 1
            src = element.get("src")
            assert src.startswith("data:image/png;base64,"), src[:60]
            assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        if element.tag in ("script", "link", "iframe"):
            assert not element.get("src") and not element.get("href"), element.tag
    text = raw.decode("utf-8").lower()
    assert "url(http" not in text and "url(//" not in text and "@import" not in text
    return document, images


def text_of(document) -> str:
    return " ".join("".join(document.itertext()).split())


# --------------------------------------------------------------------------- outputs of one class


@pytest.mark.slow
def test_outputs_exist(graded):
    out = graded.out
    for name in ("index.html", "grades.csv", "class.json"):
        assert (out / name).is_file(), name
    for student in STUDENTS:
        assert (out / student / "report.html").is_file(), student
        assert (out / student / "result.json").is_file(), student
        assert (out / student / "ingest.json").is_file(), student
    assert {r.student for r in graded.summary.results} == STUDENTS
    assert any("README.md" in line and "ignored" in line for line in graded.log), graded.log


@pytest.mark.slow
def test_grades_csv(graded):
    with open(graded.out / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][: len(CSV_HEADER)] == CSV_HEADER  # further columns (e.g. automatic points) may follow
    by_student = {row[0]: row for row in rows[1:]}
    assert set(by_student) == STUDENTS and len(rows) == 1 + len(STUDENTS)
    for student, row in by_student.items():
        result = graded.result(student)
        assert row[1] == result.status
        assert float(row[2]) == result.score.total
        points = {c.id: c.points for c in result.score.criteria}
        criteria = row[3 : len(CSV_HEADER)]
        assert [float(v) for v in criteria] == [points[c] for c in CSV_HEADER[3:]]
        assert sum(float(v) for v in criteria) == pytest.approx(float(row[2]))
    assert by_student["broken"][1:3] == ["invalid", "0.0"]


@pytest.mark.slow
def test_result_json_documented_fields(graded, protocol_path, mnist_npz, mnist_arrays):
    labels = mnist_arrays["y_test"][:TINY_TEST_IMAGES]
    seed = load_protocol(protocol_path).training.seed
    for student in OK_STUDENTS:
        folder = graded.out / student
        data = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        assert data["status"] == "ok" and data["student"] == student
        assert data["run"]["seed"] == seed and data["run"]["profile"] == TINY
        assert data["run"]["data_sha256"] == hashlib.sha256(mnist_npz.read_bytes()).hexdigest()
        assert data["run"]["versions"]["tensorflow"] == metadata.version("tensorflow")
        assert {"python", "harness", "keras", "numpy"} <= set(data["run"]["versions"])
        reference = data["reference"]["model"]
        assert reference["role"] == "reference" and reference["status"] == "ok"
        assert reference["test_accuracy"] == graded.summary.reference.test_accuracy
        assert data["models"], student
        for model in data["models"]:
            assert model["status"] == "ok", (student, model["name"], model["reason"])
            assert 0.0 <= model["test_accuracy"] <= 1.0
            assert model["train_seconds"] > 0 and model["params"] > 0
            assert model["epochs_run"] == 1  # the tiny profile caps every model at one epoch
            assert set(model["history"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
            assert all(len(values) == 1 for values in model["history"].values())
            # the evaluation is stored; the trained model file is not, unless --keep-models
            assert model["model_file"] is None and not list((folder / "models").glob("*.keras"))
            assert (folder / "models" / model["predictions_file"]).is_file()
        score = data["score"]
        assert [c["id"] for c in score["criteria"]] == CSV_HEADER[3:]
        assert score["max_total"] == 20
        for criterion in score["criteria"]:
            assert 0 <= criterion["points"] <= criterion["max_points"]
            assert (2 * criterion["points"]).is_integer()  # half points
            assert criterion["reason"].strip()
        assert score["total"] == pytest.approx(sum(c["points"] for c in score["criteria"]))
    # test accuracy is the harness's own, from the stored predictions, on the first test images
    for student in OK_STUDENTS:
        result = graded.result(student)
        for model in result.models:
            probabilities = predictions(graded.out / student, model)
            assert probabilities.shape == (TINY_TEST_IMAGES, 10)
            errors = int((probabilities.argmax(axis=1) != labels).sum())
            assert model.test_errors == errors
            assert model.test_accuracy == pytest.approx(1 - errors / TINY_TEST_IMAGES)


@pytest.mark.slow
def test_reference_is_trained_on_real_data_and_matches_the_same_code(graded):
    reference = graded.summary.reference
    assert reference.test_accuracy > 0.3  # 480 real images, one epoch: well above chance (0.1)
    baseline = graded.result("baseline_only").models[0]
    # baseline_only's factory is the reference's code: same seed, same data -> the same numbers
    assert baseline.name == "create_baseline_model" and baseline.params == reference.params
    assert baseline.test_accuracy == reference.test_accuracy
    assert baseline.history == reference.history


@pytest.mark.slow
def test_broken_submission_is_invalid_with_the_syntax_error(graded):
    result = graded.result("broken")
    assert result.status == "invalid"
    assert "Syntax error in cell 8, line 12" in result.reason
    assert result.models == [] and not (graded.out / "broken" / "training.json").exists()
    assert result.score.total == 0
    assert all(c.points == 0 and "Syntax error" in c.reason for c in result.score.criteria)
    document, _ = assert_self_contained(graded.out / "broken" / "report.html")
    assert "Erreur de syntaxe (cellule 8, ligne 12)" in text_of(document)  # the stored reason, in the report's French


@pytest.mark.slow
def test_exit_code_is_1_only_because_of_the_broken_submission(graded):
    assert graded.summary.exit_code == 1
    assert {r.student for r in graded.summary.results if r.status != "ok"} == {"broken"}


@pytest.fixture(scope="module")
def regraded_without_broken(graded, class_dir, tmp_path_factory, mnist_npz, protocol_path, stage_cache, suite_path):
    """`harness grade` on the same class minus the broken notebook, into a copy of the first output."""
    out = copy_of(graded, tmp_path_factory.mktemp("regrade") / "out")
    mtimes = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/training.json")}
    paths = [class_dir / "baseline_only.ipynb", class_dir / "module_student.py", class_dir / FOLDER_STUDENT]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(
            [
                "grade",
                *map(str, paths),
                "--out",
                str(out),
                "--profile",
                TINY,
                "--protocol",
                str(protocol_path),
                "--data",
                str(mnist_npz),
                "--cache",
                str(stage_cache),
                "--suite",
                str(suite_path),
                "--workers",
                "2",
                *NO_SANDBOX_WHERE_ABSENT,
            ]
        )
    return code, printed.getvalue(), out, mtimes


@pytest.mark.slow
def test_without_the_broken_submission_exit_code_is_0(regraded_without_broken, graded):
    code, printed, out, _ = regraded_without_broken
    assert code == 0, printed
    for student in OK_STUDENTS:
        result = SubmissionResult.read(out / student / "result.json")
        assert result.status == "ok"
        assert result.score.total == graded.result(student).score.total
    # the broken notebook, not graded this time, keeps its stored result in the gradebook
    assert gradebook_students(out) == STUDENTS


def gradebook_students(out: Path) -> set[str]:
    """The students listed in grades.csv, after checking that class.json (the dashboard's list) and
    the Canvas export list the same."""
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        students = {row[0] for row in list(csv.reader(handle))[1:]}
    with open(out / "canvas_grades.csv", newline="", encoding="utf-8") as handle:
        assert {row[0] for row in list(csv.reader(handle))[2:]} == students  # after the "Points Possible" row
    assert {s["student"] for s in json.loads((out / "class.json").read_text(encoding="utf-8"))["students"]} == students
    return students


@pytest.mark.slow
@pytest.mark.parametrize("only_these", [False, True])
def test_a_late_submission_graded_into_the_class_folder_keeps_the_class(
    graded, tmp_path, only_these, mnist_npz, protocol_path, stage_cache, suite_path
):
    # grading one late submission into the class folder used to rewrite grades.csv, the exports and
    # the dashboard with that one student; --only-these asks for exactly that
    out = copy_of(graded, tmp_path / "out")
    late = shutil.copy(SAMPLES / "broken.ipynb", tmp_path / "late.ipynb")  # unreadable: nothing to train
    run_grade(
        [late], out, protocol=protocol_path, data=mnist_npz, cache=stage_cache, suite=suite_path, only_these=only_these
    )
    assert gradebook_students(out) == ({"late"} if only_these else STUDENTS | {"late"})
    assert ("module_student" in (out / "moodle_grades.csv").read_text(encoding="utf-8")) is not only_these
    assert (out / "module_student" / "result.json").exists()  # stored results are never removed


@pytest.mark.slow
def test_unchanged_submissions_are_not_retrained(regraded_without_broken):
    _, printed, out, mtimes = regraded_without_broken
    assert set(mtimes) == OK_STUDENTS
    after = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/training.json")}
    assert after == mtimes
    assert printed.count("unchanged") == len(OK_STUDENTS), printed
    assert "training create_" not in printed  # no worker reported a model in training


@pytest.mark.slow
def test_reports_are_self_contained(graded):
    for student in STUDENTS:
        document, images = assert_self_contained(graded.out / student / "report.html")
        assert student in text_of(document)
        if student in OK_STUDENTS:
            assert images >= 2  # the comparison chart and at least one learning curve
    document, images = assert_self_contained(graded.out / "index.html")
    assert images >= 1
    links = [a.get("href") for a in document.iter("a") if a.get("href")]
    targets = {urllib.parse.unquote(href) for href in links if href.endswith("report.html")}
    assert {f"{s}/report.html" for s in STUDENTS} <= targets
    for target in targets:
        assert (graded.out / target).is_file(), target


@pytest.mark.slow
def test_folder_submission_keeps_its_accented_id(graded):
    result = graded.result(FOLDER_STUDENT)
    assert result.status == "ok" and result.student == "Élodie Brûlé"
    assert (graded.out / "Élodie Brûlé" / "report.html").is_file()
    assert [i.name for i in result.ignored_files] == ["notes.txt"]
    assert {d.kind for d in result.dropped} >= {"shell", "colab", "magic", "depends_on_dropped"}
    assert result.factories_found == ["create_baseline_model", "create_improved_model_1"]
    assert [m.status for m in result.models] == ["ok", "ok"]
    document, _ = assert_self_contained(graded.out / FOLDER_STUDENT / "report.html")
    assert "notes.txt" in text_of(document)


@pytest.mark.slow
def test_module_student_training_settings_and_scores(graded):
    result = graded.result("module_student")
    assert result.status == "ok"
    assert "main" in {d.kind for d in result.dropped}
    models = {m.name: m for m in result.models}
    assert models["create_improved_model_2"].settings.batch_size == 64
    assert models["create_improved_model_2"].settings.declared["epochs"] == 8
    assert models["create_improved_model_2"].settings.epochs == 1  # capped by the profile
    third = models["create_improved_model_3"]
    assert third.settings.augmentation == "ImageDataGenerator"
    assert third.settings.callbacks == ["EarlyStopping", "ReduceLROnPlateau"]
    assert third.spec.optimizer == "RMSprop"
    points = {c.id: c for c in result.score.criteria}
    categories = {c.id: c for c in points["modifications"].components}["categories"]
    assert categories.points == categories.max_points  # all five categories explored (three required)
    assert points["modifications"].reason.startswith("5 ")
    assert "create_improved_model" in points["improvement"].reason


@pytest.mark.slow
def test_baseline_only_has_no_improvement_points(graded):
    result = graded.result("baseline_only")
    points = {c.id: c.points for c in result.score.criteria}
    assert points["modifications"] == 0 and points["improvement"] == 0
    assert points["code_quality"] > 0


# --------------------------------------------------------------------------- failures


def models_of(run, student):
    return {m.name: m for m in run.result(student).models}


@pytest.mark.slow
def test_failing_submissions_are_graded_partially(failing):
    assert failing.summary.exit_code == 1
    assert {r.student: r.status for r in failing.summary.results} == {"misbehaving": "partial", "crashing": "failed"}
    for result in failing.summary.results:
        assert result.score is not None and result.score.max_total == 20
        document, _ = assert_self_contained(failing.out / result.student / "report.html")
        assert "create_improved_model_1" in text_of(document)
    assert (failing.out / "index.html").is_file()


@pytest.mark.slow
def test_a_factory_that_raises_is_an_error(failing):
    model = models_of(failing, "misbehaving")["create_improved_model_1"]
    assert model.status == "error"
    assert model.reason == "ValueError: boom from the student"
    assert "boom from the student" in model.traceback and model.test_accuracy is None


@pytest.mark.slow
def test_a_factory_that_returns_no_model_is_invalid(failing):
    model = models_of(failing, "misbehaving")["create_improved_model_2"]
    assert model.status == "invalid"
    assert "returned str, not a Keras model" in model.reason


@pytest.mark.slow
def test_a_wrong_output_shape_is_invalid(failing):
    model = models_of(failing, "misbehaving")["create_improved_model_3"]
    assert model.status == "invalid"
    assert "output has shape" in model.reason and "5" in model.reason and "10" in model.reason


@pytest.mark.slow
def test_a_wrong_input_shape_is_invalid(failing):
    model = models_of(failing, "misbehaving")["create_improved_model_4"]
    assert model.status == "invalid"
    assert "does not accept images of shape (28, 28, 1)" in model.reason


@pytest.mark.slow
def test_a_hanging_factory_times_out_and_the_next_one_still_trains(failing):
    result = failing.result("misbehaving")
    models = models_of(failing, "misbehaving")
    hang = models["create_improved_model_5"]
    assert hang.status == "timeout"
    assert f"did not return a model within {BUILD_TIMEOUT_S} s" in hang.reason
    after = models["create_improved_model_6"]
    assert after.status == "ok" and after.test_accuracy is not None
    assert models["create_baseline_model"].status == "ok"
    assert result.worker.restarts >= 1
    assert list(models) == ["create_baseline_model"] + [f"create_improved_model_{n}" for n in range(1, 7)]


@pytest.mark.slow
def test_os_exit_and_segfault_are_crashes(failing):
    models = models_of(failing, "crashing")
    assert list(models) == ["create_improved_model_1", "create_improved_model_2"]
    exited, segfault = models["create_improved_model_1"], models["create_improved_model_2"]
    assert exited.status == "crashed" and "code 3" in exited.reason
    assert segfault.status == "crashed"
    result = failing.result("crashing")
    assert result.worker.restarts == 1  # a fresh worker for the model after the one that killed the first
    assert "create_improved_model_1: crashed" in result.reason and "create_improved_model_2: crashed" in result.reason


@pytest.mark.slow
def test_a_segfault_is_reported_as_one(failing):
    # under bubblewrap a signalled worker exits with 128 + signal: still reported as the signal
    segfault = models_of(failing, "crashing")["create_improved_model_2"]
    assert "SIGSEGV" in segfault.reason
    assert "code 3" not in segfault.reason


@pytest.mark.slow
def test_a_model_stops_cleanly_at_its_budget(tmp_path, mnist_npz, protocol_path):
    protocol = load_protocol(protocol_path)
    profile = protocol.profile(BUDGET)
    split = training_split(load_mnist(mnist_npz), profile.train_images, protocol.training.validation_split)
    data = tmp_path / "train.npz"
    np.savez(data, x_train=split.x_train, y_train=split.y_train, x_val=split.x_val, y_val=split.y_val)
    source = bundled("reference", "baseline.py").read_text(encoding="utf-8")
    source += '\n\nTRAINING_CONFIG = {"create_baseline_model": {"batch_size": 16}}\n'  # 100 batches an epoch
    job = TrainingJob(
        protocol=protocol,
        profile=profile,
        seed=protocol.training.seed,
        train_data=data,
        work_dir=tmp_path / "work",
        threads=2,
    )
    models, worker = train_submission(
        source, [("create_baseline_model", "baseline")], job, tmp_path / "work" / "train", tmp_path / "models"
    )
    (model,) = models
    assert model.status == "ok", model.reason
    assert model.stopped_by_budget
    assert model.settings.epochs == 3 and model.epochs_run == 1
    assert len(model.history["loss"]) == 1
    assert model.train_seconds < BUDGET_MODEL_S + 30
    assert (tmp_path / "models" / model.model_file).is_file()
    assert worker.restarts == 0


# --------------------------------------------------------------------------- reproducibility


@pytest.fixture(scope="module")
def regraded_from_scratch(graded, class_dir, tmp_path_factory, mnist_npz, protocol_path, suite_path):
    """baseline_only graded again into a new folder, no cache: its model is trained again.
    (The reference is reused from the first run's _reference/ to save a training.)"""
    out = tmp_path_factory.mktemp("repro") / "out"
    shutil.copytree(graded.out / REFERENCE_DIR, out / REFERENCE_DIR)
    return run_grade(
        [class_dir / "baseline_only.ipynb"],
        out,
        protocol=protocol_path,
        data=mnist_npz,
        cache=None,
        use_cache=False,
        suite=suite_path,
    )


@pytest.mark.slow
def test_same_seed_gives_identical_results(graded, regraded_from_scratch):
    first, second = graded.result("baseline_only"), regraded_from_scratch.result("baseline_only")
    (a,), (b,) = first.models, second.models
    assert not getattr(b, "from_cache", [])  # really retrained
    assert b.test_accuracy == a.test_accuracy
    assert b.history == a.history
    np.testing.assert_array_equal(
        predictions(regraded_from_scratch.out / "baseline_only", b), predictions(graded.out / "baseline_only", a)
    )
    assert second.score.total == first.score.total


# --------------------------------------------------------------------------- CLI


def test_cli_missing_data_exits_2_with_the_data_message(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    code = main(
        [
            "grade",
            str(SAMPLES / "baseline_only.ipynb"),
            "--out",
            str(tmp_path / "out"),
            "--profile",
            "smoke",
            "--data",
            str(tmp_path / "missing.npz"),
            "--no-sandbox",  # past the sandbox check, which comes first where bubblewrap is absent
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "No MNIST file" in err and str(tmp_path / "missing.npz") in err
    assert DATA_ENV in err and "--data" in err


def test_cli_data_from_env_that_does_not_exist(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nowhere.npz"))
    sample = str(SAMPLES / "baseline_only.ipynb")
    assert main(["grade", sample, "--out", str(tmp_path / "out"), "--profile", "smoke", "--no-sandbox"]) == 2
    assert "nowhere.npz" in capsys.readouterr().err


def test_cli_unknown_profile_exits_2(tmp_path, capsys, mnist_npz):
    assert (
        main(
            [
                "grade",
                str(SAMPLES / "baseline_only.ipynb"),
                "--out",
                str(tmp_path / "out"),
                "--profile",
                "gigantic",
                "--data",
                str(mnist_npz),
                "--no-sandbox",  # past the sandbox check, which comes first where bubblewrap is absent
            ]
        )
        == 2
    )
    assert "unknown profile" in capsys.readouterr().err


@pytest.mark.slow  # starts its own TensorFlow process (about 5 s)
def test_an_evaluation_worker_started_early_ends_when_nothing_is_sent(tmp_path, protocol_path):
    """Started while models train; when none comes out of training it is told so, and exits."""
    from harness.training.evaluate import EvaluationWorker

    protocol = load_protocol(protocol_path)
    test_data = tmp_path / "test.npz"
    np.savez(test_data, x_test=np.zeros((4, 28, 28, 1), "float32"))
    job = TrainingJob(
        protocol=protocol,
        profile=protocol.profile(TINY),
        seed=protocol.training.seed,
        train_data=test_data,
        work_dir=tmp_path / "work",
        threads=1,
    )
    worker = EvaluationWorker(job, tmp_path / "work" / "safe", tmp_path / "models", test_data)
    assert worker.thread.is_alive()
    worker.cancel()
    assert not worker.thread.is_alive()
    events = [e["event"] for e in worker.outcome.events]
    assert worker.outcome.returncode == 0 and "go" in events and events[-1] == "done", worker.outcome.log_tail
    assert worker.predict([]) == {}  # a second word changes nothing
