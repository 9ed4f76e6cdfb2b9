"""Fidelity benchmark: does each cheaper profile reach the full protocol's verdict?

    python bench/fidelity.py --data /path/to/mnist.npz --out /tmp/fidelity \
        [--profiles full quick smoke check] [--workers 1] [PATHS ...]

Grades PATHS (default: the demo class, the labelled samples and the BatchNormalization fixtures,
copied into one class folder) once per profile into ``OUT/<profile>/`` — a profile whose folder
already holds a ``timing.json`` is not graded again, so an interrupted run resumes — and compares
every model (the students' baselines and improved models; not the reference) with the full
protocol's grading of the same model:

* verdict agreement: the model against the reference, "beats" / "not significant" / "worse"
  (exact McNemar at the analysis settings' alpha), the same on both profiles; a model the cheaper
  profile marks "not measurable" counts as a disagreement, and is also counted apart; and the
  agreement of the verdicts the profile did give (its measured models);
* Spearman's ρ of the models' test accuracies against the full protocol's;
* BatchNormalization models: the test accuracy within 1 point of the full protocol's, or marked
  "not measurable";
* time: the whole ``harness grade`` wall clock (the reference included) and the sum of the models'
  training seconds, as ratios to the full profile's.

Writes ``fidelity.json`` and ``fidelity.md`` into ``--results`` (default ``bench/results``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
NOT_THE_CLASS = {"README.md", "expected.toml", "broken.ipynb"}


def default_corpus() -> list[Path]:
    """The demo class (without its unreadable sample), the labelled samples and the BatchNorm fixtures."""
    demo = [p for p in (ROOT / "submissions").iterdir() if p.name not in NOT_THE_CLASS]
    labelled = [p for p in (ROOT / "tests" / "fixtures" / "labelled_rubric").iterdir() if p.suffix in (".ipynb", ".py")]
    batchnorm = sorted((ROOT / "tests" / "fixtures" / "batchnorm").iterdir())
    return sorted(demo) + sorted(labelled) + batchnorm


def gather(paths: list[Path], folder: Path) -> Path:
    """One class folder holding every path (names made unique), so that one command grades them."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for path in paths:
        target = folder / (path.name if not (folder / path.name).exists() else f"{path.parent.name}_{path.name}")
        (shutil.copytree if path.is_dir() else shutil.copy2)(path, target)
    return folder


def grade(corpus: Path, out: Path, profile: str, data: Path, workers: int) -> float:
    """Grade the corpus on `profile` unless already done; its wall-clock seconds."""
    timing = out / "timing.json"
    if timing.exists():
        return json.loads(timing.read_text())["seconds"]
    command = [sys.executable, "-m", "harness", "grade", str(corpus), "--out", str(out), "--profile", profile]
    command += ["--data", str(data), "--workers", str(workers)]
    started = time.perf_counter()
    completed = subprocess.run(command)
    seconds = time.perf_counter() - started
    if completed.returncode not in (0, 1):  # 1: a submission was not fully graded
        raise SystemExit(f"{' '.join(command)} failed with {completed.returncode}")
    timing.write_text(json.dumps({"seconds": seconds, "command": command}))
    return seconds


def models(out: Path) -> dict[tuple[str, str], dict]:
    """{(student, model): the stored model} of a graded folder, the reference left out."""
    found = {}
    for result in sorted(out.glob("*/result.json")):
        stored = json.loads(result.read_text())
        for model in stored.get("models", []):
            if model.get("role") != "reference" and model.get("status") == "ok":
                found[stored["student"], model["name"]] = model
    return found


def verdict(model: dict) -> str:
    """beats / not_significant / worse / not_measurable / unknown, against the reference."""
    if model.get("measurement") and not model["measurement"].get("measurable", True):
        return "not_measurable"
    test = (model.get("significance") or {}).get("mcnemar")
    if not test:
        return "unknown"
    if test["significant"]:
        return "beats" if test["gain"] > 0 else "worse"
    return "not_significant"


def compare(full: dict, cheaper: dict) -> dict:
    """Verdict agreement, ρ, and the BatchNormalization check of `cheaper` against `full`."""
    common = sorted(set(full) & set(cheaper))
    agree = [verdict(full[k]) == verdict(cheaper[k]) for k in common]
    measured = [k for k in common if verdict(cheaper[k]) != "not_measurable"]
    rho = spearmanr([full[k]["test_accuracy"] for k in measured], [cheaper[k]["test_accuracy"] for k in measured])
    per_model = [
        {
            "model": "/".join(k),
            "full": full[k]["test_accuracy"],
            "profile": cheaper[k]["test_accuracy"],
            "gap_pp": round(100 * (cheaper[k]["test_accuracy"] - full[k]["test_accuracy"]), 2),
            "verdicts": [verdict(full[k]), verdict(cheaper[k])],
            "batchnorm": bool(cheaper[k].get("batchnorm") or full[k].get("batchnorm")),
            "measurement": (cheaper[k].get("measurement") or {}).get("rule"),
        }
        for k in common
    ]
    batchnorm = [
        {"model": m["model"], "gap_pp": m["gap_pp"], "verdict": m["verdicts"][1]} for m in per_model if m["batchnorm"]
    ]
    return {
        "models": len(common),
        "agreement": sum(agree) / len(common) if common else None,
        # the verdicts the profile gave: how far a verdict it states can be trusted
        "agreement_measured": sum(verdict(full[k]) == verdict(cheaper[k]) for k in measured) / len(measured)
        if measured
        else None,
        "not_measurable": len(common) - len(measured),
        "per_model": per_model,
        "spearman_rho": float(rho.statistic) if len(measured) > 2 else None,
        "train_seconds": sum(cheaper[k].get("train_seconds") or 0 for k in common),
        "batchnorm": batchnorm,
        "disagreements": [
            {"model": "/".join(k), "full": verdict(full[k]), "profile": verdict(cheaper[k])}
            for k, same in zip(common, agree, strict=True)
            if not same
        ],
    }


def table(rows: dict) -> str:
    """The Markdown table of the docs."""
    lines = [
        "| profile | models | verdicts agreeing with full | of the verdicts it gives | not measurable | Spearman ρ "
        "| time ÷ full (whole command) | time ÷ full (training) | BatchNorm models within 1 point of full |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in rows.items():
        bn = row["batchnorm"]
        within = sum(abs(b["gap_pp"]) <= 1 or b["verdict"] == "not_measurable" for b in bn)
        lines.append(
            f"| {name} | {row['models']} | {100 * row['agreement']:.0f} % | {100 * row['agreement_measured']:.0f} % | "
            f"{row['not_measurable']} | "
            f"{row['spearman_rho']:.2f} | {row['time_ratio']:.2f} | {row['train_ratio']:.2f} | {within} / {len(bn)} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Grade, compare, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--profiles", nargs="+", default=["full", "quick", "smoke", "check"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    corpus = args.out / "corpus"
    if not corpus.exists():
        gather(args.paths or default_corpus(), corpus)
    seconds = {p: grade(corpus, args.out / p, p, args.data, args.workers) for p in args.profiles}
    full = models(args.out / "full")
    full_train = sum(m.get("train_seconds") or 0 for m in full.values())
    rows = {}
    for profile in args.profiles[1:]:
        row = compare(full, models(args.out / profile))
        row["time_ratio"] = seconds[profile] / seconds["full"]
        row["train_ratio"] = row["train_seconds"] / full_train
        rows[profile] = row
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "fidelity.json").write_text(json.dumps({"seconds": seconds, "profiles": rows}, indent=2))
    (args.results / "fidelity.md").write_text(table(rows) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
