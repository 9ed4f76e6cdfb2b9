"""Robustness suite benchmark: building it, and evaluating one saved model on all of it.

    python bench/suite_evaluation.py OUT/_reference/models/create_baseline_model.keras \
        [--profile full] [--data mnist.npz] [--repeat 3]

1. builds the suite (reference/robustness_suite.toml) from the profile's test images into a fresh
   cache folder, then loads it again from that cache (checksums verified), timing both;
2. runs the evaluation worker (sandboxed, as `harness grade` does) on the saved model `--repeat`
   times with the cached suite, and reports the worker's wall time (process start, TensorFlow
   import, model loading, predictions) and the time spent predicting the clean test set and the
   whole suite, as the worker measured them, and the worker's CPU time (user + sys, all threads:
   independent of other jobs on the machine; on idle cores the wall time is about CPU / threads plus
   the single-threaded start); checks that every repeat gives the same predictions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from harness.analysis.analyse import load_predictions, prepare_suite
from harness.config.protocol import load_protocol
from harness.pipeline.data import held_out_test_set, load_mnist
from harness.results import ModelResult
from harness.training.evaluate import evaluate_models
from harness.training.train import TrainingJob


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a saved .keras model (e.g. OUT/_reference/models/...)")
    parser.add_argument("--profile", default="full")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=load_protocol().training.threads)
    args = parser.parse_args()

    protocol = load_protocol()
    profile = protocol.profile(args.profile)
    raw = load_mnist(args.data)
    x_test, labels = held_out_test_set(raw, profile.test_images)
    work = Path(tempfile.mkdtemp(prefix="suite-bench-"))
    try:
        started = time.perf_counter()
        suite = prepare_suite(x_test, work / "cache")
        built_s = time.perf_counter() - started
        started = time.perf_counter()
        suite = prepare_suite(x_test, work / "cache")
        loaded_s = time.perf_counter() - started
        assert suite.from_cache
        print(
            f"suite: {len(suite)} sets, {suite.n_images:,} images, checksum {suite.checksum[:12]}; "
            f"built in {built_s:.1f} s, loaded and verified from the cache in {loaded_s:.2f} s"
        )
        test_data = work / "test.npz"
        np.savez(test_data, x_test=x_test)
        models_dir = work / "models"
        models_dir.mkdir()
        shutil.copy2(args.model, models_dir / "model.keras")
        job = TrainingJob(
            protocol=protocol,
            profile=profile,
            seed=protocol.training.seed,
            train_data=test_data,
            work_dir=work,
            threads=args.threads,
        )
        first = None
        for repeat in range(args.repeat):
            model = ModelResult(name="model", role="reference", status="ok", model_file="model.keras")
            started = time.perf_counter()
            (model,) = evaluate_models([model], job, work / "evaluate", models_dir, test_data, labels, suite=suite)
            wall = time.perf_counter() - started
            assert model.status == "ok", model.reason
            predictions = load_predictions(models_dir / model.predictions_file)
            same = first is None or all(np.array_equal(predictions.suite[k][0], first.suite[k][0]) for k in first.suite)
            first = first or predictions
            cpu = predictions.cpu_seconds
            print(
                f"run {repeat + 1}: evaluation worker {wall:.1f} s wall, {cpu.get('worker', 0):.1f} s CPU "
                f"(predicting: clean {predictions.clean_seconds:.1f} s wall / {cpu.get('clean', 0):.1f} s CPU "
                f"for {len(labels):,} images, suite {predictions.suite_seconds:.1f} s wall / "
                f"{cpu.get('suite', 0):.1f} s CPU for {suite.n_images:,} images); "
                f"test accuracy {100 * model.test_accuracy:.2f} %; same predictions as run 1: {same}; "
                f"load average {os.getloadavg()[0]:.1f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
