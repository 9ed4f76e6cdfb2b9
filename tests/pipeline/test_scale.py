"""Class scale: the stage cache, parallel workers, the Ray backend, progress lines.

Real TensorFlow workers on the ``tiny`` profile (conftest.py); a class of three small modules.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from harness.cli import build_parser, main
from harness.commands.grade import grade_options
from harness.pipeline import REFERENCE_DIR, GradeOptions, grade
from harness.resources import bundled
from harness.results import ReferenceSummary, SubmissionResult
from harness.util.progress import Progress

MODEL = """
import keras
from keras import layers


def create_baseline_model():
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Flatten(),
                              layers.Dense({units}, activation="relu"), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def create_improved_model_1():
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Conv2D(8, 3, activation="relu"),
                              layers.MaxPooling2D(), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam({lr}), loss="categorical_crossentropy", metrics=["accuracy"])
    return model
"""


def write_class(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, units, lr in (("ana", 32, 1e-3), ("bruno", 16, 2e-3), ("chloé", 24, 5e-4)):
        (folder / f"{name}.py").write_text(textwrap.dedent(MODEL.format(units=units, lr=lr)), encoding="utf-8")
    return folder


def options(paths, out: Path, protocol: Path, data: Path, cache: Path | None = None, **extra) -> GradeOptions:
    """The class graded on the tiny profile; without the students' reports unless asked (``reports=True``):
    these tests are about caches, workers and outputs, and the figures were most of each run's time."""
    lines: list[str] = []
    extra.setdefault("reports", False)
    return GradeOptions(
        paths=list(paths),
        out=out,
        profile="tiny",
        data=data,
        protocol=protocol,
        cache=cache,
        log=lines.append,
        progress=Progress(lines.append),
        **extra,
    )


def scores(out: Path) -> dict[str, tuple]:
    found = {}
    for path in sorted(out.glob("*/result.json")):
        if path.parent.name.startswith("_"):
            continue
        result = json.loads(path.read_text(encoding="utf-8"))
        found[result["student"]] = (
            result["score"]["total"],
            tuple((m["name"], m["test_accuracy"]) for m in result["models"]),
        )
    return found


@pytest.fixture(scope="module")
def cold_class(tmp_path_factory, protocol_path, mnist_npz):
    root = tmp_path_factory.mktemp("scale")
    classroom = write_class(root / "class")
    out = root / "out"
    summary = grade(options([classroom], out, protocol_path, mnist_npz, workers=1, reports=True))
    return classroom, out, summary


def test_a_rerun_on_an_unchanged_class_trains_nothing(cold_class, protocol_path, mnist_npz):
    classroom, out, first = cold_class
    assert all(m.from_cache == [] for r in first.results for m in r.models)
    stored = {p: p.read_bytes() for p in out.glob("*/result.json")}
    again = grade(options([classroom], out, protocol_path, mnist_npz, workers=1))
    assert sorted(again.kept) == ["ana", "bruno", "chloé"]
    assert {p: p.read_bytes() for p in out.glob("*/result.json")} == stored
    assert again.seconds < first.seconds / 2


def test_a_new_output_folder_sharing_the_cache_takes_every_stage_from_it(
    cold_class, tmp_path, protocol_path, mnist_npz
):
    classroom, out, first = cold_class
    again = grade(options([classroom], tmp_path / "out", protocol_path, mnist_npz, workers=1, cache=out / ".cache"))
    assert again.kept == []
    for result in again.results:
        assert result.models and all(m.from_cache == ["train", "evaluate"] for m in result.models), result.student
        assert result.worker.sandbox.startswith("none needed")
    assert scores(tmp_path / "out") == scores(out)


def test_no_reports_leaves_the_students_pages_to_harness_report(cold_class, tmp_path, protocol_path, mnist_npz):
    """``harness grade --no-reports``: the gradebook, the exports and the dashboard, no student's page;
    ``harness report OUT`` draws them from the stored results, trains nothing."""
    classroom, out, _ = cold_class
    args = build_parser().parse_args(["grade", str(classroom), "--out", str(tmp_path / "out"), "--no-reports"])
    assert grade_options(args).reports is False
    assert grade_options(build_parser().parse_args(["grade", str(classroom), "--out", "o"])).reports is True
    grade(options([classroom], tmp_path / "out", protocol_path, mnist_npz, workers=1, cache=out / ".cache"))
    assert (tmp_path / "out" / "grades.csv").is_file() and (tmp_path / "out" / "index.html").is_file()
    assert not list((tmp_path / "out").glob("*/report.html"))
    assert main(["report", str(tmp_path / "out")]) == 0
    assert sorted(p.parent.name for p in (tmp_path / "out").glob("*/report.html")) == ["ana", "bruno", "chloé"]


def test_a_new_folder_with_its_own_cache_takes_the_reference_from_the_users_cache(
    cold_class, tmp_path, protocol_path, mnist_npz
):
    # the per-user reference cache is $HARNESS_REFERENCE_CACHE (one folder for the test session, conftest.py)
    classroom, _, _ = cold_class
    summary = grade(
        options([classroom / "ana.py"], tmp_path / "out", protocol_path, mnist_npz, cache=tmp_path / "own-cache")
    )
    reference = ReferenceSummary.read(tmp_path / "out" / REFERENCE_DIR / "reference.json").model
    assert "train" in reference.from_cache
    assert all(m.from_cache == [] for m in summary.results[0].models)  # the student's own models: a new cache


def test_outputs_hold_no_model_file_unless_asked(cold_class, tmp_path, protocol_path, mnist_npz):
    classroom, out, _ = cold_class
    assert not list(out.rglob("*.keras"))  # neither the students' folders nor the stage cache
    for student in ("ana", "bruno", "chloé"):
        size = sum(f.stat().st_size for f in (out / student).rglob("*") if f.is_file())
        assert size < 2_000_000, (student, size)  # issue 16: at most 2 MB per student on the smoke profile
    grade(
        options([classroom / "ana.py"], tmp_path / "out", protocol_path, mnist_npz, keep_models=True, use_cache=False)
    )
    kept = sorted(p.name for p in (tmp_path / "out" / "ana" / "models").glob("*.keras"))
    assert kept == ["create_baseline_model.keras", "create_improved_model_1.keras"]
    assert all(m["model_file"] for m in json.loads((tmp_path / "out" / "ana" / "result.json").read_text())["models"])


def test_a_changed_submission_retrains_only_itself(cold_class, tmp_path, protocol_path, mnist_npz):
    classroom, out, _ = cold_class
    changed = tmp_path / "class"
    changed.mkdir()
    for file in classroom.iterdir():
        (changed / file.name).write_text(file.read_text(encoding="utf-8"), encoding="utf-8")
    source = (changed / "bruno.py").read_text(encoding="utf-8")
    (changed / "bruno.py").write_text(source.replace("Dense(16,", "Dense(20,"), encoding="utf-8")
    summary = grade(options([changed], tmp_path / "out", protocol_path, mnist_npz, workers=1, cache=out / ".cache"))
    by_student = {r.student: r for r in summary.results}
    baseline, improved = by_student["bruno"].models
    assert baseline.from_cache == [] and improved.from_cache == []  # the module changed: both keys change
    for student in ("ana", "chloé"):
        assert all(m.from_cache == ["train", "evaluate"] for m in by_student[student].models)


def test_no_cache_retrains_everything(cold_class, tmp_path, protocol_path, mnist_npz):
    classroom, out, _ = cold_class
    summary = grade(
        options(
            [classroom / "ana.py"], tmp_path / "out", protocol_path, mnist_npz, cache=out / ".cache", use_cache=False
        )
    )
    assert all(m.from_cache == [] for m in summary.results[0].models)


def test_two_workers_give_the_same_scores_as_one(cold_class, tmp_path, protocol_path, mnist_npz):
    classroom, out, _ = cold_class
    pair = [classroom / "ana.py", classroom / "bruno.py"]  # two at once is what the test is about
    grade(options(pair, tmp_path / "two", protocol_path, mnist_npz, workers=2, use_cache=False))
    assert scores(tmp_path / "two") == {s: v for s, v in scores(out).items() if s in ("ana", "bruno")}


def test_a_multi_node_ray_cluster_gives_the_same_scores(cold_class, tmp_path, protocol_path, mnist_npz):
    # a head that runs no task and two worker nodes with their own resources, as a real cluster would
    # be laid out (docs/scale.md); each node holds one submission at a time (2 CPUs, 2 threads a task)
    from ray.cluster_utils import Cluster  # ray is in the test extra, so CI always runs this

    classroom, out, _ = cold_class
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=2) for _ in range(2)]
    try:
        cluster.wait_for_nodes()
        summary = grade(
            options(
                [classroom / "ana.py", classroom / "bruno.py"],  # one per worker node
                tmp_path / "ray",
                protocol_path,
                mnist_npz,
                workers=2,
                backend="ray",
                address=cluster.address,
                use_cache=False,
                reports=True,  # drawn in the Ray tasks, as on a real cluster
            )
        )
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
    assert [r.status for r in summary.results] == ["ok"] * 2
    assert scores(tmp_path / "ray") == {s: v for s, v in scores(out).items() if s in ("ana", "bruno")}
    nodes = {r.worker.node for r in summary.results}
    assert nodes <= {node.node_id for node in workers} and len(nodes) == 2  # both worker nodes graded
    stored = SubmissionResult.read(tmp_path / "ray" / "ana" / "result.json")
    assert stored.worker.node in nodes


def test_progress_prints_plain_lines_when_not_on_a_terminal():
    lines: list[str] = []
    progress = Progress(lines.append)
    progress.start(2)
    on_event = progress.worker_event("ana")
    on_event({"event": "model", "name": "create_baseline_model", "phase": "train", "epochs": 3})
    on_event({"event": "epoch", "name": "create_baseline_model", "epoch": 1})
    progress.submission_done("ana", "ana: ok")
    assert lines == ["  ana: training create_baseline_model (3 epochs)", "[1/2] ana: ok"]


def test_threads_are_the_protocols_whatever_the_workers(tmp_path, protocol_path, mnist_npz):
    from harness.pipeline.session import open_session

    threads = {
        workers: open_session(options([], tmp_path / f"out-{workers}", protocol_path, mnist_npz, workers=workers))
        for workers in (1, 2, 8)
    }
    assert {w: s.threads for w, s in threads.items()} == {1: 2, 2: 2, 8: 2}  # [training] threads = 2
    assert len({s.run_key for s in threads.values()}) == 1 and len({s.evaluation_key for s in threads.values()}) == 1


def test_default_workers_fill_the_cores_at_the_protocols_threads(tmp_path):
    import os

    from harness.pipeline import default_workers

    text = bundled("reference", "protocol.toml").read_text(encoding="utf-8")
    one = tmp_path / "one-thread.toml"
    one.write_text(text.replace("\nthreads = 2\n", "\nthreads = 1\n"), encoding="utf-8")
    many = tmp_path / "all-cores.toml"
    many.write_text(text.replace("\nthreads = 2\n", f"\nthreads = {os.cpu_count()}\n"), encoding="utf-8")
    assert default_workers(many) == 1
    assert default_workers(one) >= default_workers() >= 1
