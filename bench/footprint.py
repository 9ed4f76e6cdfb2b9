"""What grading a class costs beyond training: per-submission overhead, output size, Ray on several nodes.

    python bench/footprint.py --data /path/to/mnist.npz [--profile smoke] [--out bench/results] [--skip-ray]

Writes footprint.json and footprint.md into --out. "The demo class" is every submission in
submissions/ (README.md and expected.toml aside). Sections:

* overhead — the demo class graded cold with ``--workers 1``, the reference already in its
  per-user cache (a first run on one submission trains it): the wall time minus the models'
  training (``train_seconds``) and prediction (clean set, probes and robustness suite, as the
  predictions files time them), per submission. What is left is TensorFlow's start in the sandboxed
  workers, ingest, discovery, analysis, scoring and the report.
* outputs — the bytes each student's folder holds, and the whole output folder (stage cache,
  reference, dashboard, exports) divided by the number of students.
* warm — the same overhead with and without warm training workers (``HARNESS_WARM_WORKERS=0``), the
  class graded ``--pairs`` times each way into fresh folders, alternating which goes first: the median
  of each and the grades of both (identical: a warm worker changes nothing but when TensorFlow starts).
* ray — the same class through a Ray cluster of one machine laid out as a real one
  (``ray.cluster_utils.Cluster``: a head with no CPU, two worker nodes of 2 CPUs each), nothing
  cached but the reference (a fresh output folder): wall time, grades identical to the local run,
  submissions per hour per physical core, and the projected wall time of 300 students on N such nodes (linear in nodes: each submission
  is an independent task; the reference is trained once, on the head, before them).
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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = ROOT / "submissions"
NOT_THE_CLASS = {"README.md", "expected.toml"}


def demo_class() -> list[Path]:
    return sorted(p for p in SUBMISSIONS.iterdir() if p.name not in NOT_THE_CLASS)


def grade(paths: list[Path], out: Path, profile: str, data: Path, *extra: str, env: dict | None = None) -> float:
    started = time.perf_counter()
    command = ["harness", "grade", *map(str, paths), "--out", str(out), "--profile", profile, "--data", str(data)]
    completed = subprocess.run([*command, *extra], env=env)
    if completed.returncode not in (0, 1):  # 1: some submission failed (a demo student may)
        raise SystemExit(f"{command} failed with {completed.returncode}")
    return time.perf_counter() - started


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def students(out: Path) -> list[Path]:
    return sorted(p.parent for p in out.glob("*/result.json") if not p.parent.name.startswith("_"))


def prediction_seconds(models_dir: Path) -> float:
    total = 0.0
    for path in models_dir.glob("*.predictions.npz"):
        with np.load(path, allow_pickle=False) as npz:
            total += sum(float(npz[k]) for k in ("clean_seconds", "probe_seconds", "suite_seconds") if k in npz.files)
    return total


def overhead(out: Path, wall: float) -> dict:
    folders = students(out)
    train = predict = 0.0
    for folder in folders:
        result = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        train += sum(m.get("train_seconds") or 0.0 for m in result["models"])
        predict += prediction_seconds(folder / "models")
    n = len(folders)
    return {
        "submissions": n,
        "wall_s": round(wall, 1),
        "train_s": round(train, 1),
        "predict_s": round(predict, 1),
        "overhead_per_submission_s": round((wall - train - predict) / n, 2),
    }


def outputs(out: Path) -> dict:
    folders = students(out)
    per_student = {f.name: folder_bytes(f) for f in folders}
    return {
        "per_student_mb": {k: round(v / 1e6, 2) for k, v in per_student.items()},
        "largest_student_mb": round(max(per_student.values()) / 1e6, 2),
        "output_folder_mb": round(folder_bytes(out) / 1e6, 2),
        "output_folder_per_student_mb": round(folder_bytes(out) / 1e6 / len(folders), 2),
    }


def grades(out: Path) -> list[dict]:
    with open(out / "grades.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def ray_cluster(paths: list[Path], out: Path, profile: str, data: Path, env: dict) -> dict:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(2):
        cluster.add_node(num_cpus=2)
    try:
        cluster.wait_for_nodes()
        wall = grade(paths, out, profile, data, "--backend", "ray", "--address", cluster.address, env=env)
    finally:
        cluster.shutdown()
    n = len(students(out))
    per_core_hour = n / wall * 3600 / (os.cpu_count() or 1)
    return {
        "nodes": 2,
        "cpus_per_node": 2,
        "physical_cores": os.cpu_count(),
        "wall_s": round(wall, 1),
        "submissions_per_hour_per_core": round(per_core_hour, 1),
        "projected_300_students_h": {
            f"{nodes} nodes x 8 cores": round(300 / (per_core_hour * 8 * nodes), 2) for nodes in (1, 4, 16)
        },
    }


def warm_vs_cold(paths: list[Path], work: Path, profile: str, data: Path, env: dict, pairs: int) -> dict:
    """The overhead per submission with warm training workers and without, `pairs` runs each, alternating."""
    runs: dict[str, list[float]] = {"warm": [], "cold": []}
    same = True
    for pair in range(pairs):
        for way in ("warm", "cold") if pair % 2 == 0 else ("cold", "warm"):
            out = work / f"{way}-{pair}"
            wall = grade(
                paths,
                out,
                profile,
                data,
                "--workers",
                "1",
                env={**env, "HARNESS_WARM_WORKERS": str(int(way == "warm"))},
            )
            runs[way].append(overhead(out, wall)["overhead_per_submission_s"])
            same = same and grades(out) == grades(work / "warm-0")
    return {
        "pairs": pairs,
        "overhead_per_submission_s": {way: sorted(values) for way, values in runs.items()},
        "median_warm_s": float(np.median(runs["warm"])),
        "median_cold_s": float(np.median(runs["cold"])),
        "grades_identical": same,
    }


def markdown(report: dict) -> str:
    o, s = report["overhead"], report["outputs"]
    lines = [
        f"# Footprint ({report['profile']} profile, {report['when']}, load average {report['load_start']} → "
        f"{report['load_end']})",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| demo class, cold, `--workers 1`, reference cached | {o['wall_s']} s for {o['submissions']} submissions |",
        f"| of which training / prediction | {o['train_s']} s / {o['predict_s']} s |",
        f"| **overhead per submission** (the rest ÷ submissions) | **{o['overhead_per_submission_s']} s** |",
        f"| largest student folder | {s['largest_student_mb']} MB |",
        f"| **output folder per student** (cache, reference, dashboard included) | "
        f"**{s['output_folder_per_student_mb']} MB** ({s['output_folder_mb']} MB in all) |",
    ]
    if "warm" in report:
        w = report["warm"]
        lines.append(
            f"| overhead per submission, warm / cold training workers (median of {w['pairs']} each, alternating) | "
            f"{w['median_warm_s']:.2f} s / {w['median_cold_s']:.2f} s; grades identical: {w['grades_identical']} |"
        )
    if "ray" in report:
        r = report["ray"]
        projection = ", ".join(f"{k}: {v} h" for k, v in r["projected_300_students_h"].items())
        lines += [
            f"| Ray, {r['nodes']} worker nodes × {r['cpus_per_node']} CPUs on {r['physical_cores']} physical cores, "
            f"reference cached | {r['wall_s']} s; grades identical to local: {report['ray_identical']} |",
            f"| submissions per hour per physical core | {r['submissions_per_hour_per_core']} |",
            f"| 300 students, projected | {projection} |",
        ]
    lines += ["", "Per student (MB): " + ", ".join(f"{k} {v}" for k, v in s["per_student_mb"].items()), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("HARNESS_MNIST_NPZ"))
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--pairs", type=int, default=0, help="warm against cold training workers, this many runs each")
    args = parser.parse_args()
    if not args.data:
        parser.error("--data (or HARNESS_MNIST_NPZ) is needed")
    paths = demo_class()
    report = {"profile": args.profile, "when": time.strftime("%Y-%m-%d %H:%M"), "load_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "HARNESS_REFERENCE_CACHE": str(work / "reference-cache")}
        grade(paths[:1], work / "warm", args.profile, args.data, env=env)  # the reference, into its cache
        wall = grade(paths, work / "local", args.profile, args.data, "--workers", "1", env=env)
        report["overhead"] = overhead(work / "local", wall)
        report["outputs"] = outputs(work / "local")
        if args.pairs:
            report["warm"] = warm_vs_cold(paths, work, args.profile, args.data, env, args.pairs)
        if not args.skip_ray:
            report["ray"] = ray_cluster(paths, work / "ray", args.profile, args.data, env)
            report["ray_identical"] = grades(work / "ray") == grades(work / "local")
        shutil.rmtree(work, ignore_errors=True)
    report["load_end"] = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "footprint.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / "footprint.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
