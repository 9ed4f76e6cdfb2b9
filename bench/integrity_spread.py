"""How close honest models come to each integrity threshold, and what the probes cost, from graded output folders.

    python bench/integrity_spread.py OUT [OUT ...]

Reads every ``OUT/<student>/result.json`` (and its predictions files, for the timings) that a
``harness grade`` run wrote, with the thresholds of ``reference/analysis.toml``. Prints, per model,
the values behind each rule (test minus best validation accuracy, the probe's drop, the private
set's public and private accuracies and its excess of changed answers over the control) and its
flags; then, per rule, the spread and the model closest to its threshold (value / threshold: 1 is
flagged); then the probe and private set's share of the evaluation's CPU and wall time. Meant for
honest submissions: every flag it lists there is a false alarm to explain (docs/integrity.md).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from harness.config.analysis import IntegritySettings, load_analysis_config

TIMED = ("clean", "suite", "probe", "private")


def _sizes(result: dict, model: dict, settings: IntegritySettings) -> dict[str, int]:
    """The image counts each rule's noise term used: validation, test, probe, private, control."""
    train = min(int(result["run"]["fidelity"]["train_images"]), 60_000)
    n_test = int(model["error_analysis"]["n"])
    private = model.get("private_set") or {}
    return {
        "val": round(train * 0.2),
        "test": n_test,
        "probe": min(settings.invariance_images, n_test),
        "private": int(private.get("n") or 0),
        "control": int(private.get("control_n") or 0),
    }


def _ratios(model: dict, n: dict[str, int], settings: IntegritySettings) -> dict[str, float]:
    """Each rule's value over its threshold, as analyse.py computes them (1 or more: flagged)."""
    out = {}
    vals = [v for v in model["history"].get("val_accuracy", []) if v is not None]
    v = max(vals) if vals else model.get("val_accuracy")
    if v is not None:
        tolerance = max(settings.min_tolerance, settings.z * math.sqrt(v * (1 - v) * (1 / n["val"] + 1 / n["test"])))
        out["test_above_validation"] = (model["test_accuracy"] - v) / tolerance
    for probe in model.get("invariance") or []:
        margin = max(
            settings.invariance_min_drop,
            settings.invariance_z * math.sqrt(probe["lost"] + probe["gained"]) / n["probe"],
        )
        out["invariance"] = max(out.get("invariance", -math.inf), probe["drop"] / margin)
    private = model.get("private_set") or {}
    if private.get("control_changed") is not None and n["control"]:
        c, k = private["changed"], private["control_changed"]
        noise = settings.private_z * math.sqrt(c * (1 - c) / n["private"] + k * (1 - k) / n["control"])
        out["private_set"] = (c - k) / max(settings.private_min_excess, noise)
    return out


def _timings(folder: Path, model: dict) -> dict[str, dict[str, float]] | None:
    path = folder / "models" / (model.get("predictions_file") or "")
    if not model.get("predictions_file") or not path.exists():
        return None
    with np.load(path, allow_pickle=False) as npz:
        return {
            kind: {k: float(npz[f"{k}{suffix}"]) if f"{k}{suffix}" in npz.files else 0.0 for k in TIMED}
            for kind, suffix in (("wall", "_seconds"), ("cpu", "_cpu_seconds"))
        }


def _line(student: str, model: dict, ratios: dict[str, float]) -> str:
    vals = [v for v in model["history"].get("val_accuracy", []) if v is not None]
    v = max(vals) if vals else model.get("val_accuracy") or 0.0
    probes = " ".join(
        f"{p['probe']} {100 * p['drop']:+.2f} ({p['lost']} lost, {p['gained']} gained)"
        for p in model.get("invariance") or []
    )
    private = model.get("private_set") or {}
    text = (
        f"{student} / {model['name']}: test {100 * model['test_accuracy']:.2f} best val {100 * v:.2f}; probe {probes}"
    )
    if private:
        text += f"; private {100 * private['public_accuracy']:.1f} -> {100 * private['private_accuracy']:.1f}"
        if private.get("control_changed") is not None:
            text += f", changed {100 * private['changed']:.1f} vs control {100 * private['control_changed']:.1f}"
    close = ", ".join(f"{k} {r:.2f}" for k, r in ratios.items())
    flags = [f["rule"] for f in model.get("integrity") or []]
    return f"{text}; of threshold: {close}; flags {flags or 'none'}"


def _spread(name: str, values: list[float]) -> None:
    if values:
        print(
            f"{name}: {len(values)} models, {min(values):+.2f} to {max(values):+.2f} (median {np.median(values):+.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outs", nargs="+", type=Path)
    settings = load_analysis_config().integrity
    closest: dict[str, tuple[float, str]] = {}
    spreads: dict[str, list[float]] = {"test - best val": [], "probe drop": [], "private c - v": []}
    shares: dict[str, list[float]] = {"cpu": [], "wall": []}
    flagged = total = 0
    for out in parser.parse_args().outs:
        for path in sorted(out.glob("*/result.json")):
            result = json.loads(path.read_text(encoding="utf-8"))
            for model in result.get("models", []):
                if model.get("status") != "ok" or model.get("test_accuracy") is None or not model.get("error_analysis"):
                    continue
                total += 1
                flagged += bool(model.get("integrity"))
                ratios = _ratios(model, _sizes(result, model, settings), settings)
                print(_line(result["student"], model, ratios))
                for rule, ratio in ratios.items():
                    if rule not in closest or ratio > closest[rule][0]:
                        closest[rule] = (ratio, f"{result['student']} / {model['name']}")
                vals = [v for v in model["history"].get("val_accuracy", []) if v is not None]
                if vals:
                    spreads["test - best val"].append(100 * (model["test_accuracy"] - max(vals)))
                spreads["probe drop"] += [100 * p["drop"] for p in model.get("invariance") or []]
                private = model.get("private_set") or {}
                if private.get("control_changed") is not None:
                    spreads["private c - v"].append(100 * (private["changed"] - private["control_changed"]))
                timing = _timings(path.parent, model)
                for kind, seconds in (timing or {}).items():
                    if sum(seconds.values()) > 0:
                        shares[kind].append(100 * (seconds["probe"] + seconds["private"]) / sum(seconds.values()))
    print(f"\n{total} models, {flagged} with an integrity flag")
    for name, values in spreads.items():
        _spread(f"{name} (points)", values)
    for rule, (ratio, who) in closest.items():
        print(f"closest to the {rule} threshold: {ratio:.2f} of it ({who})")
    for kind, values in shares.items():
        _spread(f"probe + private set, share of the evaluation's {kind} time (%)", values)


if __name__ == "__main__":
    main()
