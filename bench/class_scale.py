"""Class-scale benchmark: throughput against notebook execution, regrade, efficiency, scaling.

    python bench/class_scale.py --data /path/to/mnist.npz [--profile smoke] [--out bench/results]
                                [--skip-nbclient] [--skip-ray]

Writes class_scale.json and class_scale.md into --out. Every ratio is measured within one run of
this script on the same machine. "The demo class" is every submission at the top of submissions/
(the notebooks, the module and the student folder; not adversarial/ or labelled/, which have
their own test suites). Sections:

* scaling — the demo class graded cold with ``--workers 1`` and with ``--workers 2`` (separate
  output folders, nothing cached), and the same through the Ray backend (a local Ray started for
  it); whether every grade (grades.csv) is identical between the runs.
* regrade — the ``--workers 1`` class graded again unchanged (every model must come from the
  cache), and ``harness score`` after a rubric threshold change, as fractions of the first run.
* throughput — the demo class's notebooks graded by the harness (default workers) vs executing
  each notebook top to bottom with nbclient, one after another (how nbgrader and otter-grader
  work). Both get the profile's data: the notebooks' ``mnist.load_data()`` is replaced, in a first
  injected cell, by a loader returning the same subset. The notebooks train with their own epochs
  and batch sizes; the harness with the protocol's, and it also trains the reference, evaluates
  the robustness suite, scores and draws the reports.
* efficiency — training FLOP/s achieved by the harness's worker on the reference CNN (graded with
  ``--efficiency-profile``, quick by default: enough images that the fit is not start-up; FLOPs
  counted from the layers, backward pass taken as twice the forward) vs the machine's float32 peak
  measured by a 4096×4096 TensorFlow matrix multiply.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = ROOT / "submissions"
NOT_THE_CLASS = {"README.md", "expected.toml"}


def demo_class() -> list[Path]:
    return sorted(p for p in SUBMISSIONS.iterdir() if p.name not in NOT_THE_CLASS)


def run(command: list[str], **kwargs) -> float:
    started = time.perf_counter()
    completed = subprocess.run(command, **kwargs)
    if completed.returncode not in (0, 1):  # 1: some submission failed (the demo's broken one)
        raise SystemExit(f"{command} failed with {completed.returncode}")
    return time.perf_counter() - started


def harness_grade(paths: list[Path], out: Path, profile: str, data: Path, *extra: str) -> float:
    return run(
        ["harness", "grade", *map(str, paths), "--out", str(out), "--profile", profile, "--data", str(data), *extra],
        stdout=subprocess.DEVNULL,
    )


def grades(out: Path) -> list[dict]:
    with open(out / "grades.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def stored_results(out: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in out.glob("*/result.json") if not p.parent.name.startswith(("_", "."))}


def rerun_unchanged(members: list[Path], out: Path, profile: str, data: Path) -> tuple[float, bool]:
    """`harness grade` again on an unchanged class: its time, and whether it trained nothing — every
    submission reported "unchanged since the last run, every stage from the cache" and every
    result.json kept byte for byte."""
    before = stored_results(out)
    started = time.perf_counter()
    done = subprocess.run(
        [
            "harness",
            "grade",
            *map(str, members),
            "--out",
            str(out),
            "--profile",
            profile,
            "--data",
            str(data),
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    unchanged = done.stdout.count("unchanged since the last run, every stage from the cache")
    return seconds, unchanged == len(before) and stored_results(out) == before


def loader_cell(data: Path, train_images: int, test_images: int) -> str:
    return f"""
import numpy as _np
import tensorflow.keras.datasets.mnist as _mnist
def _load_data(*args, **kwargs):
    with _np.load({str(data)!r}) as d:
        return (d["x_train"][:{train_images}], d["y_train"][:{train_images}]), (d["x_test"][:{test_images}], d["y_test"][:{test_images}])
_mnist.load_data = _load_data
import keras as _keras
_keras.datasets.mnist.load_data = _load_data
"""


def execute_notebooks(
    notebooks: list[Path], data: Path, train_images: int, test_images: int, timeout: int
) -> tuple[float, list[dict]]:
    import nbformat
    from nbclient import NotebookClient

    outcomes, started = [], time.perf_counter()
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        notebook.cells.insert(0, nbformat.v4.new_code_cell(loader_cell(data, train_images, test_images)))
        for cell in notebook.cells:  # Colab-only lines cannot run here either
            if cell.cell_type == "code":
                cell.source = "\n".join(
                    "pass" if line.strip().startswith(("!", "from google.colab", "drive.mount")) else line
                    for line in cell.source.splitlines()
                )
        one = time.perf_counter()
        client = NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            allow_errors=True,
            resources={"metadata": {"path": str(path.parent)}},
        )
        error = None
        try:
            client.execute()
        except Exception as exc:  # a notebook that fails still costs what it ran
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        outcomes.append(
            {"notebook": str(path.relative_to(SUBMISSIONS)), "seconds": time.perf_counter() - one, "error": error}
        )
    return time.perf_counter() - started, outcomes


def baseline_training_flops_per_image() -> float:
    """FLOPs to train the reference CNN on one image: forward counted per layer, backward = 2 × forward."""
    sys.path.insert(0, str(ROOT / "reference"))
    import keras
    from baseline import create_baseline_model

    model = create_baseline_model()
    forward = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, filters = layer.output.shape
            kernel_h, kernel_w = layer.kernel_size
            forward += 2 * height * width * filters * kernel_h * kernel_w * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            forward += 2 * layer.input.shape[-1] * layer.units
    return 3 * forward


def matmul_peak_flops(size: int = 4096, repeats: int = 5) -> float:
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    tf.linalg.matmul(a, b).numpy()  # warm up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def markdown(report: dict) -> str:
    s, r = report["scaling"], report["regrade"]
    rows = [
        ("scaling", "demo class, `--workers 1`, cold", f"{s['local_workers_1_s']:.0f} s"),
        ("scaling", "demo class, `--workers 2`, cold", f"{s['local_workers_2_s']:.0f} s"),
        ("scaling", "speed-up 2 workers ÷ 1", f"**{s['local_speedup_2_over_1']:.2f}×**"),
        ("scaling", "grades identical, 1 vs 2 workers", "yes" if s["identical_grades_local"] else "**no**"),
    ]
    if "ray_workers_1_s" in s:
        rows += [
            (
                "scaling",
                "Ray backend, 1 worker / 2 workers",
                f"{s['ray_workers_1_s']:.0f} s / {s['ray_workers_2_s']:.0f} s",
            ),
            ("scaling", "Ray speed-up 2 ÷ 1", f"**{s['ray_speedup_2_over_1']:.2f}×**"),
            ("scaling", "grades identical, Ray vs local", "yes" if s["identical_grades_ray"] else "**no**"),
        ]
    rows += [
        (
            "regrade",
            "unchanged class graded again",
            f"{r['unchanged_rerun_s']:.1f} s = **{100 * r['unchanged_rerun_fraction']:.1f} %** of the first run",
        ),
        ("regrade", "every model from the cache", "yes" if r["everything_from_cache"] else "**no**"),
        (
            "regrade",
            "`harness score` after a rubric change",
            f"{r['rescore_after_rubric_change_s']:.1f} s = **{100 * r['rescore_fraction']:.1f} %**",
        ),
    ]
    if "throughput" in report:
        t = report["throughput"]
        rows += [
            (
                "throughput",
                f"{len(t['notebooks'])} notebooks: harness (`--workers 2`) / nbclient one after another",
                f"{t['harness_s']:.0f} s / {t['nbclient_sequential_s']:.0f} s",
            ),
            ("throughput", "ratio nbclient ÷ harness", f"**{t['ratio_nbclient_over_harness']:.2f}**"),
        ]
    e = report["efficiency"]
    rows += [
        (
            "efficiency",
            f"reference CNN training ({e['profile']} profile, {e['images']:,} image-epochs in {e['train_seconds']:.1f} s)",
            f"{e['training_flops_per_s'] / 1e9:.1f} GFLOP/s",
        ),
        ("efficiency", "float32 matmul peak (4096²)", f"{e['matmul_peak_flops_per_s'] / 1e9:.1f} GFLOP/s"),
        ("efficiency", "ratio", f"**{e['ratio']:.2f}**"),
    ]
    head = (
        f"Profile `{report['profile']}`, {report['cpu_count']} cores, demo class of {len(report['demo_class'])} "
        f"submissions; load average {report['load_average_start']:.1f} at the start, "
        f"{report['load_average_end']:.1f} at the end.\n\n"
    )
    return (
        head
        + "\n".join(
            ["| section | measure | value |", "| --- | --- | --- |"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
        )
        + "\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=os.environ.get("HARNESS_MNIST_NPZ"))
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--efficiency-profile", default="quick")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--skip-nbclient", action="store_true")
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    if not args.data:
        raise SystemExit("give --data /path/to/mnist.npz (or set HARNESS_MNIST_NPZ)")
    sys.path.insert(0, str(ROOT))
    from harness.config.protocol import load_protocol

    profile = load_protocol().profile(args.profile)
    args.out.mkdir(parents=True, exist_ok=True)
    members = demo_class()
    notebooks = [
        p
        for member in members
        for p in ([member] if member.is_file() else sorted(member.rglob("*.ipynb")))
        if p.suffix == ".ipynb"
    ]
    report: dict = {
        "profile": args.profile,
        "cpu_count": os.cpu_count(),
        "load_average_start": os.getloadavg()[0],
        "demo_class": [p.name for p in members],
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scaling: dict = {}
        for workers in (1, 2):
            scaling[f"local_workers_{workers}_s"] = harness_grade(
                members, tmp / f"w{workers}", args.profile, args.data, "--workers", str(workers), "--no-cache"
            )
        scaling["local_speedup_2_over_1"] = scaling["local_workers_1_s"] / scaling["local_workers_2_s"]
        scaling["identical_grades_local"] = grades(tmp / "w1") == grades(tmp / "w2")

        first = scaling["local_workers_1_s"]
        again, nothing_trained = rerun_unchanged(members, tmp / "w1", args.profile, args.data)
        rubric = tmp / "rubric.toml"
        text = (ROOT / "rubric" / "default.toml").read_text(encoding="utf-8")
        rubric.write_text(text.replace("min_gain_pp = 0.5,", "min_gain_pp = 0.6,"), encoding="utf-8")
        rescore = run(["harness", "score", str(tmp / "w1"), "--rubric", str(rubric)], stdout=subprocess.DEVNULL)
        report["regrade"] = {
            "first_run_s": first,
            "unchanged_rerun_s": again,
            "rescore_after_rubric_change_s": rescore,
            "unchanged_rerun_fraction": again / first,
            "rescore_fraction": rescore / first,
            "everything_from_cache": nothing_trained,
        }

        if not args.skip_ray:
            for workers in (1, 2):
                scaling[f"ray_workers_{workers}_s"] = harness_grade(
                    members,
                    tmp / f"ray{workers}",
                    args.profile,
                    args.data,
                    "--backend",
                    "ray",
                    "--workers",
                    str(workers),
                    "--no-cache",
                )
            scaling["ray_speedup_2_over_1"] = scaling["ray_workers_1_s"] / scaling["ray_workers_2_s"]
            scaling["identical_grades_ray"] = grades(tmp / "ray1") == grades(tmp / "w1") and grades(
                tmp / "ray2"
            ) == grades(tmp / "w2")
        report["scaling"] = scaling

        if not args.skip_nbclient:
            harness_seconds = harness_grade(
                notebooks, tmp / "notebooks", args.profile, args.data, "--workers", "2", "--no-cache"
            )
            nb_seconds, outcomes = execute_notebooks(
                notebooks, args.data, profile.train_images, profile.test_images, timeout=3600
            )
            report["throughput"] = {
                "harness_s": harness_seconds,
                "nbclient_sequential_s": nb_seconds,
                "ratio_nbclient_over_harness": nb_seconds / harness_seconds,
                "notebooks": outcomes,
            }

        efficiency_profile = load_protocol().profile(args.efficiency_profile)
        harness_grade(
            [SUBMISSIONS / "baseline_only.ipynb"],
            tmp / "efficiency",
            args.efficiency_profile,
            args.data,
            "--workers",
            "1",
            "--no-cache",
        )
        reference = json.loads((tmp / "efficiency" / "_reference" / "reference.json").read_text())["model"]
        images = int(efficiency_profile.train_images * 0.8) * reference["epochs_run"]
        achieved = baseline_training_flops_per_image() * images / reference["train_seconds"]
        peak = matmul_peak_flops()
        report["efficiency"] = {
            "profile": args.efficiency_profile,
            "images": images,
            "train_seconds": reference["train_seconds"],
            "training_flops_per_s": achieved,
            "matmul_peak_flops_per_s": peak,
            "ratio": achieved / peak,
        }
        shutil.rmtree(tmp, ignore_errors=True)
    report["load_average_end"] = os.getloadavg()[0]
    (args.out / "class_scale.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    text = markdown(report)
    (args.out / "class_scale.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
