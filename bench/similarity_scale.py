"""Similarity at class scale: ``harness similarity OUT`` on a class of 300 stored submissions.

    python bench/similarity_scale.py [--students 300] [--test-images 10000] [--out /tmp/similarity-bench]

The class is the synthetic class of tests/fixtures/similarity/ (17 notebooks, ingested for real) handed in
again under new names until there are --students submissions, every notebook's names changed (a rename
hides nothing: the worst case, every copy shares its code with the others), every student's models given
their own learning rate (distinct designs) and predictions on --test-images images. Prints the wall and CPU time of
the whole command (reading every result, ingest and predictions file, fingerprinting, comparing, writing the
JSON and the page) and of the comparison alone; `--lsh` forces MinHash LSH candidates.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import time
from pathlib import Path

import numpy as np

from harness.pipeline.similarity import similarity
from harness.results import IngestResult, SubmissionResult

ROOT = Path(__file__).resolve().parent.parent


def _fixture_builder():
    spec = importlib.util.spec_from_file_location("similarity_class", ROOT / "tests" / "similarity" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(out: Path, students: int, test_images: int) -> Path:
    builder = _fixture_builder()
    builder.TEST_IMAGES = test_images
    seed = builder.build_class(out)
    originals = sorted(p.parent for p in seed.glob("*/result.json"))
    for n in range(students - len(originals)):
        source = originals[n % len(originals)]
        name = f"{source.name}_{n:03d}"
        folder = out / name
        shutil.copytree(source, folder)
        ingest = IngestResult.read(folder / "ingest.json")
        cells = [c.model_copy(update={"source": c.source.replace("model", f"model{n}")}) for c in ingest.code_cells]
        ingest.model_copy(update={"student": name, "code_cells": cells}).write(folder / "ingest.json")
        result = SubmissionResult.read(folder / "result.json")
        models = []
        for model in result.models:
            if model.role == "improved":
                spec = model.spec.model_copy(update={"learning_rate": 1e-4 * (n + 2)})
                model = model.model_copy(update={"spec": spec})
                path = folder / "models" / model.predictions_file
                np.savez(path, probabilities=builder.predictions(model, np.load(out.parent / "mnist.npz")["y_test"]))
            models.append(model)
        result.model_copy(update={"student": name, "models": models}).write(folder / "result.json")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--test-images", type=int, default=10000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/similarity-bench"))
    parser.add_argument("--lsh", action="store_true", help="candidate pairs from MinHash LSH whatever the size")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    out = build(args.out / "out", args.students, args.test_images)
    settings = None
    if args.lsh:
        settings = args.out / "lsh.toml"
        settings.write_text("[class]\nlsh_above = 1\n", encoding="utf-8")
    started, cpu = time.monotonic(), time.process_time()
    result = similarity(out, settings=settings)
    total, cpu = time.monotonic() - started, time.process_time() - cpu
    flagged = sum(1 for p in result.pairs if p.flagged)
    print(
        f"{len(result.submissions)} submissions, {result.compared_pairs} pairs ({result.candidates}), "
        f"{flagged} flagged, {len(result.clusters)} clusters: whole command {total:.1f} s ({cpu:.1f} s of CPU), comparison {result.seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
