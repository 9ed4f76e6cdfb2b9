"""Full-protocol benchmark: the reference's accuracy, reproducibility, and the harness's overhead.

    python bench/full_protocol.py --data /path/to/mnist.npz [--out bench/results]

1. grades submissions/baseline_only.ipynb with the `full` profile (trains the reference and
   the student's baseline) into a fresh folder;
2. grades it again into a second folder that reuses the first one's reference, timing the
   submission alone, and checks that every test accuracy is identical;
3. runs the assignment's own plain Keras code for the same model on the same data, in the
   same run, and reports the ratio of the harness's time to it.
Writes full_protocol.json and full_protocol.md into --out.
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
SUBMISSION = ROOT / "submissions" / "baseline_only.ipynb"


def grade(out: Path, data: Path) -> float:
    started = time.perf_counter()
    # One worker with every core's threads, like the plain script (the default, one worker per
    # core, keeps the thread count, and so the numbers, the same whatever the class size).
    subprocess.run(["harness", "grade", str(SUBMISSION), "--profile", "full", "--data", str(data), "--out", str(out),
                    "--workers", "1"], check=True)
    return time.perf_counter() - started


def phases(out: Path, student: str) -> dict:
    """Where the submission's time went, from what the harness stored: both workers' wall time
    (training.json: the training and the evaluation worker), and the predictions (test set, suite)."""
    import numpy as np

    training = json.loads((out / "baseline_only" / "training.json").read_text())
    with np.load(out / "baseline_only" / "models" / f"{student}.predictions.npz") as npz:
        clean, suite = float(npz["clean_seconds"]), float(npz["suite_seconds"]) if "suite_seconds" in npz else 0.0
    return {"workers_wall_s": training["wall_seconds"], "predict_clean_s": clean, "predict_suite_s": suite}


def models(out: Path) -> dict:
    result = json.loads((out / "baseline_only" / "result.json").read_text())
    found = {m["name"]: m for m in result["models"]}
    found["reference"] = result["reference"]["model"]
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        first, second = Path(tmp) / "first", Path(tmp) / "second"
        load_before = os.getloadavg()[0]
        first_seconds = grade(first, args.data)
        shutil.copytree(first / "_reference", second / "_reference")
        second_seconds = grade(second, args.data)
        plain = json.loads(subprocess.run([sys.executable, str(ROOT / "bench" / "assignment_baseline.py"),
                                           str(args.data)], check=True, capture_output=True, text=True)
                           .stdout.strip().splitlines()[-1])
        a, b = models(first), models(second)
        split = phases(second, "create_baseline_model")
    student = "create_baseline_model"
    report = {
        "load_average (start, end)": f"{load_before:.1f}, {os.getloadavg()[0]:.1f}",
        "reference_test_accuracy": a["reference"]["test_accuracy"],
        "student_baseline_test_accuracy": [a[student]["test_accuracy"], b[student]["test_accuracy"]],
        "identical_on_regrade": a[student]["test_accuracy"] == b[student]["test_accuracy"],
        "first_run_seconds (reference + submission)": first_seconds,
        "submission_seconds (harness grade, reference cached)": second_seconds,
        "harness_train_seconds": b[student]["train_seconds"],
        "plain_keras_fit_seconds": plain["fit_seconds"],
        "plain_keras_wall_seconds": plain["wall_seconds"],
        "plain_keras_test_accuracy": plain["test_accuracy"],
        "ratio_wall (harness submission / plain script)": second_seconds / plain["wall_seconds"],
        "ratio_fit (harness fit / plain fit)": b[student]["train_seconds"] / plain["fit_seconds"],
        "harness workers wall seconds (training and evaluation workers: starts, fit, save, predictions, cache)": split["workers_wall_s"],
        "harness suite prediction seconds (90,000 perturbed images; the script has none)": split["predict_suite_s"],
        "harness clean test prediction seconds": split["predict_clean_s"],
        "ratio_wall without the suite (harness submission - suite prediction) / plain script":
            (second_seconds - split["predict_suite_s"]) / plain["wall_seconds"],
    }
    (args.out / "full_protocol.json").write_text(json.dumps(report, indent=1))
    lines = ["| measure | value |", "| --- | --- |"] + [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |"
                                                    for k, v in report.items()]
    (args.out / "full_protocol.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
