"""Class-scale benchmark: throughput against notebook execution, regrade, efficiency, scaling.

    python bench/class_scale.py --data /path/to/mnist.npz [--profile quick] [--out bench/results]
                                [--skip-nbclient] [--skip-ray]

Writes class_scale.json and class_scale.md into --out. Every ratio is measured within one run
of this script on the same machine. Sections:

* throughput — the demo class (submissions/*.ipynb, the notebooks only) graded by the harness
  vs executing each notebook top to bottom with nbclient, one after another (how nbgrader and
  otter-grader work). Both get the profile's data: the notebooks' `mnist.load_data()` is
  replaced, in a first injected cell, by a loader returning the same subset. The notebooks
  train with their own epochs and batch sizes; the harness with the protocol's.
* regrade — a second `harness grade` on the unchanged class, and `harness score` after a
  rubric threshold change, as fractions of the first run.
* efficiency — training FLOP/s achieved on the baseline CNN (the reference's training, FLOPs
  counted from its layers, backward pass taken as twice the forward) vs the machine's float32
  peak measured by a 4096×4096 TensorFlow matrix multiply.
* scaling — the whole demo class with --workers 1 vs --workers 2 (no cache), and the same
  through the Ray backend (a local Ray started for it).
"""
from __future__ import annotations

import argparse
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
PROTOCOL_EPOCHS = 5


def run(command: list[str], **kwargs) -> float:
    started = time.perf_counter()
    completed = subprocess.run(command, **kwargs)
    if completed.returncode not in (0, 1):  # 1: some submission failed (the demo's broken one)
        raise SystemExit(f"{command} failed with {completed.returncode}")
    return time.perf_counter() - started


def harness_grade(paths: list[Path], out: Path, profile: str, data: Path, *extra: str) -> float:
    return run(["harness", "grade", *map(str, paths), "--out", str(out), "--profile", profile, "--data", str(data),
                *extra], stdout=subprocess.DEVNULL)


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


def execute_notebooks(notebooks: list[Path], data: Path, train_images: int, test_images: int,
                      timeout: int) -> tuple[float, list[dict]]:
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
                    for line in cell.source.splitlines())
        one = time.perf_counter()
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(path.parent)}})
        error = None
        try:
            client.execute()
        except Exception as exc:  # a notebook that fails still costs what it ran
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        outcomes.append({"notebook": path.name, "seconds": time.perf_counter() - one, "error": error})
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=os.environ.get("HARNESS_MNIST_NPZ"))
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--skip-nbclient", action="store_true")
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    if not args.data:
        raise SystemExit("give --data /path/to/mnist.npz (or set HARNESS_MNIST_NPZ)")
    sys.path.insert(0, str(ROOT))
    from harness.config import load_protocol

    profile = load_protocol().profile(args.profile)
    args.out.mkdir(parents=True, exist_ok=True)
    notebooks = sorted(p for p in SUBMISSIONS.rglob("*.ipynb") if "adversarial" not in p.parts and p.name != "broken.ipynb")
    report: dict = {"profile": args.profile, "cpu_count": os.cpu_count(), "notebooks": [str(p.relative_to(ROOT)) for p in notebooks]}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # throughput + regrade: one class of notebooks, graded cold, then again, then re-scored
        first = harness_grade(notebooks, tmp / "class", args.profile, args.data, "--workers", "1")
        again = harness_grade(notebooks, tmp / "class", args.profile, args.data, "--workers", "1")
        rubric = tmp / "rubric.toml"
        text = (ROOT / "rubric" / "default.toml").read_text(encoding="utf-8")
        rubric.write_text(text.replace("min_gain_pp = 0.5,", "min_gain_pp = 0.6,"), encoding="utf-8")
        rescore = run(["harness", "score", str(tmp / "class"), "--rubric", str(rubric)], stdout=subprocess.DEVNULL)
        report["regrade"] = {"first_run_s": first, "unchanged_rerun_s": again, "rescore_after_rubric_change_s": rescore,
                             "unchanged_rerun_fraction": again / first, "rescore_fraction": rescore / first}
        reference = json.loads((tmp / "class" / "_reference" / "reference.json").read_text())["model"]
        if not args.skip_nbclient:
            nb_seconds, outcomes = execute_notebooks(notebooks, args.data, profile.train_images,
                                                     profile.test_images, timeout=3600)
            report["throughput"] = {"harness_s": first, "nbclient_sequential_s": nb_seconds,
                                    "ratio_nbclient_over_harness": nb_seconds / first, "notebooks": outcomes}
        images = int(profile.train_images * 0.8) * reference["epochs_run"]
        achieved = baseline_training_flops_per_image() * images / reference["train_seconds"]
        peak = matmul_peak_flops()
        report["efficiency"] = {"training_flops_per_s": achieved, "matmul_peak_flops_per_s": peak,
                                "ratio": achieved / peak}
        # scaling: the whole demo class, nothing cached
        scaling = {}
        for workers in (1, 2):
            out = tmp / f"w{workers}"
            scaling[f"local_workers_{workers}_s"] = harness_grade([SUBMISSIONS], out, args.profile, args.data,
                                                                  "--workers", str(workers), "--no-cache")
        scaling["local_speedup_2_over_1"] = scaling["local_workers_1_s"] / scaling["local_workers_2_s"]
        if not args.skip_ray:
            for workers in (1, 2):
                out = tmp / f"ray{workers}"
                scaling[f"ray_workers_{workers}_s"] = harness_grade([SUBMISSIONS], out, args.profile, args.data,
                                                                    "--backend", "ray", "--workers", str(workers),
                                                                    "--no-cache")
            scaling["ray_speedup_2_over_1"] = scaling["ray_workers_1_s"] / scaling["ray_workers_2_s"]
        report["scaling"] = scaling
        shutil.rmtree(tmp, ignore_errors=True)
    (args.out / "class_scale.json").write_text(json.dumps(report, indent=1))
    lines = ["| section | measure | value |", "| --- | --- | --- |"]
    for section in ("regrade", "throughput", "efficiency", "scaling"):
        for key, value in report.get(section, {}).items():
            if isinstance(value, (int, float)):
                lines.append(f"| {section} | {key} | {value:.4g} |")
    (args.out / "class_scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
