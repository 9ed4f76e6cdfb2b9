"""Where submissions are graded: local worker threads, or tasks on a Ray cluster.

Both run the same `grade_one` (which starts the same sandboxed workers); a backend only
decides where and how many at once.

>>> backend = make_backend("local", workers=2)                 # doctest: +SKIP
>>> for student, result in backend.run(session, tasks): ...   # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from harness.results import ModelResult, SubmissionResult

Task = tuple[str, Path]  # (student id, submission path)


class LocalBackend:
    """N submissions at once on this machine, each in its own sandboxed worker process."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)

    def run(self, session, tasks: list[Task], reference: ModelResult, reference_key: str
            ) -> Iterator[tuple[str, SubmissionResult]]:
        from harness.pipeline.grade import grade_one

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = {pool.submit(grade_one, session, student, path, reference, reference_key): student
                       for student, path in tasks}
            for future in as_completed(futures):
                yield futures[future], future.result()


@functools.lru_cache(maxsize=4)
def _session_in_ray_worker(options_json: str):
    """A Ray worker process opens the grading session once and reuses it for its next tasks."""
    import json

    from harness.pipeline.grade import GradeOptions, open_session
    from harness.util.progress import Progress
    from harness.sandbox import Limits

    raw = json.loads(options_json)
    options = GradeOptions(**{**raw, "paths": [Path(p) for p in raw["paths"]], "out": Path(raw["out"]),
                              "limits": Limits(**raw["limits"]),
                              **{k: Path(raw[k]) if raw[k] else None for k in ("data", "rubric", "protocol", "cache")}},
                           log=lambda _: None, progress=Progress(lambda _: None))
    return open_session(options)


def _grade_in_ray(options_json: str, student: str, path: str, reference: dict, reference_key: str) -> dict:
    from harness.pipeline.grade import grade_one

    session = _session_in_ray_worker(options_json)
    result = grade_one(session, student, Path(path), ModelResult.model_validate(reference), reference_key)
    return result.model_dump(mode="json")


class RayBackend:
    """Each submission as a Ray task. OUT, the cache and the data must be on a filesystem every node sees."""

    name = "ray"

    def __init__(self, address: str | None = None, gpus_per_task: float | None = None) -> None:
        if importlib.util.find_spec("ray") is None:
            raise ValueError("the Ray backend needs Ray: pip install 'harness[ray]' (or pip install 'ray[default]')")
        self.address, self.gpus_per_task = address, gpus_per_task

    def run(self, session, tasks: list[Task], reference: ModelResult, reference_key: str
            ) -> Iterator[tuple[str, SubmissionResult]]:
        import json

        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, ignore_reinit_error=True, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        gpus = self.gpus_per_task
        if gpus is None:
            gpus = 0.25 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        threads = session.training_job("probe").threads
        options = dataclasses.asdict(dataclasses.replace(session.options, log=None, progress=None))
        options_json = json.dumps({k: v for k, v in options.items() if k not in ("log", "progress")}, default=str)
        remote = ray.remote(_grade_in_ray).options(num_cpus=threads, num_gpus=gpus, max_retries=1)
        pending = {remote.remote(options_json, student, str(path), reference.model_dump(mode="json"), reference_key):
                   student for student, path in tasks}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), SubmissionResult.model_validate(ray.get(ref))


def make_backend(name: str, workers: int, address: str | None = None, gpus_per_task: float | None = None):
    if name == "local":
        return LocalBackend(workers)
    if name == "ray":
        return RayBackend(address, gpus_per_task)
    raise ValueError(f"unknown backend {name!r}: choose local or ray")
