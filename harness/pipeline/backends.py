"""Where submissions are graded: local worker threads, or tasks on a Ray cluster.

Both grade with the same :func:`harness.pipeline.submission.grade_safely` (which starts the same
sandboxed workers) and draw with :func:`~harness.pipeline.submission.draw_report`; a backend only
decides where and how many at once. Backends are a plug-in
point: a class decorated with ``@backend("name")`` whose ``run(session, tasks, reference,
reference_key)`` yields ``(student, result)`` as each submission finishes (docs/extending.md).

>>> backend = make_backend("local", workers=2)                 # doctest: +SKIP
>>> for student, result in backend.run(session, tasks): ...   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Protocol

from harness.errors import Interrupted
from harness.pipeline import ray_reaper
from harness.pipeline.session import GradeOptions, Session, open_session
from harness.pipeline.submission import draw_report, grade_and_draw, grade_safely, internal_failure
from harness.results import ModelResult, ReferenceSummary, SubmissionResult
from harness.sandbox import Limits
from harness.sandbox.interrupt import workers_stopped
from harness.util.progress import Progress

Task = tuple[str, Path]  # (student id, submission path)


class Backend(Protocol):
    """What the batch needs of a backend."""

    name: str

    def run(
        self, session: Session, tasks: list[Task], reference: ModelResult, reference_key: str
    ) -> Iterator[tuple[str, SubmissionResult]]:
        """Grade `tasks`, yielding each (student, result) as it finishes."""


BACKENDS: dict[str, Callable[..., Backend]] = {}


def backend(name: str) -> Callable[[type], type]:
    """Register a backend class under `name` (``--backend name``)."""

    def register(cls: type) -> type:
        BACKENDS[name] = cls
        return cls

    return register


@backend("local")
class LocalBackend:
    """N submissions at once on this machine, each in its own sandboxed worker process."""

    name = "local"

    def __init__(self, workers: int, address: str | None = None, gpus_per_task: float | None = None) -> None:
        self.workers = max(1, workers)

    def run(
        self, session: Session, tasks: list[Task], reference: ModelResult, reference_key: str
    ) -> Iterator[tuple[str, SubmissionResult]]:
        """Grade `tasks` in a pool of `workers` threads, each driving its own sandboxed processes; the
        reports are drawn by one more thread, so that a grading thread starts its next submission while
        the last one's report is drawn (drawing is serialised anyway: matplotlib is not thread-safe).
        Interrupted (Ctrl-C, SIGTERM), it kills every running worker, drops the submissions not started and
        returns once every thread has: the results already written stay, the others are not written."""
        with ThreadPoolExecutor(max_workers=self.workers) as pool, ThreadPoolExecutor(max_workers=1) as drawing:

            def graded(student: str, path: Path) -> Future:
                """Graded in this thread, its report queued for drawing: the thread is free for the next one."""
                return drawing.submit(_drawn, session, grade_safely(session, student, path, reference, reference_key))

            futures = {pool.submit(graded, student, path): student for student, path in tasks}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result().result()
            except (KeyboardInterrupt, Interrupted):
                with workers_stopped():  # else leaving the pool would wait for every submission to finish
                    pool.shutdown(wait=True, cancel_futures=True)
                raise


def _drawn(session: Session, result: SubmissionResult) -> SubmissionResult:
    draw_report(session, result)
    return result


@functools.lru_cache(maxsize=4)
def _session_in_ray_worker(options_json: str) -> Session:
    """A Ray worker process opens the grading session once and reuses it for its next tasks."""
    raw = json.loads(options_json)
    options = GradeOptions(
        **{
            **raw,
            "paths": [Path(p) for p in raw["paths"]],
            "out": Path(raw["out"]),
            "limits": Limits(**raw["limits"]),
            **{k: Path(raw[k]) if raw[k] else None for k in ("data", "rubric", "protocol", "cache")},
        },
        log=lambda _: None,
        progress=Progress(lambda _: None),
    )
    return open_session(options)


def _grade_in_ray(options_json: str, student: str, path: str, reference: dict, reference_key: str) -> dict:
    import ray  # an optional extra, already imported in a Ray task

    session = _session_in_ray_worker(options_json)
    result = grade_and_draw(session, student, Path(path), ModelResult.model_validate(reference), reference_key)
    if result.worker is not None:  # which machine of the cluster graded it: the instructor's first question
        node = ray.get_runtime_context().get_node_id()
        result = result.model_copy(update={"worker": result.worker.model_copy(update={"node": node})})
        result.write(session.options.out / student / "result.json")
    return result.model_dump(mode="json")


@backend("ray")
class RayBackend:
    """Each submission as a Ray task. OUT, the cache and the data must be on a filesystem every node sees."""

    name = "ray"

    def __init__(self, workers: int = 1, address: str | None = None, gpus_per_task: float | None = None) -> None:
        if importlib.util.find_spec("ray") is None:
            raise ValueError("the Ray backend needs Ray: pip install 'harness[ray]' (or pip install 'ray[default]')")
        self.address, self.gpus_per_task = address, gpus_per_task

    def run(
        self, session: Session, tasks: list[Task], reference: ModelResult, reference_key: str
    ) -> Iterator[tuple[str, SubmissionResult]]:
        """Submit every task to the cluster; yield results as Ray returns them."""
        import ray  # an optional extra, and a slow import: only when this backend is chosen

        reaper, starting = None, not ray.is_initialized()
        own: dict = {}
        if starting and self.address is None:  # a cluster of our own on this machine: it dies with the grader
            folder = tempfile.mkdtemp(prefix="harness-ray-")  # short: Ray's socket paths live in it
            reaper = ray_reaper.start(folder)  # before the cluster, so a kill while it starts is covered
            own = {"_temp_dir": folder}
        try:  # a cluster that fails to start is cleaned up too
            if starting:
                ray.init(
                    address=self.address,
                    ignore_reinit_error=True,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                    **own,
                )
            yield from self._submitted(ray, session, tasks, reference, reference_key)
        finally:
            if reaper is not None:
                ray.shutdown()
                ray_reaper.stop(reaper)

    def _submitted(
        self, ray, session: Session, tasks: list[Task], reference: ModelResult, reference_key: str
    ) -> Iterator[tuple[str, SubmissionResult]]:
        """Every task submitted to the cluster; their results as Ray returns them."""
        gpus = self.gpus_per_task
        if gpus is None:
            gpus = 0.25 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        threads = session.training_job("probe").threads
        options = dataclasses.asdict(dataclasses.replace(session.options, log=None, progress=None))
        options_json = json.dumps({k: v for k, v in options.items() if k not in ("log", "progress")}, default=str)
        remote = ray.remote(_grade_in_ray).options(num_cpus=threads, num_gpus=gpus, max_retries=1)
        paths = dict(tasks)
        pending = {
            remote.remote(options_json, student, str(path), reference.model_dump(mode="json"), reference_key): student
            for student, path in tasks
        }
        try:
            yield from _ray_results(session, pending, paths, reference, reference_key)
        except (KeyboardInterrupt, Interrupted):
            for ref in pending:  # their Ray worker processes killed, and the sandboxed workers with them
                ray.cancel(ref, force=True)
            raise


def _ray_results(
    session: Session, pending: dict, paths: dict[str, Path], reference: ModelResult, reference_key: str
) -> Iterator[tuple[str, SubmissionResult]]:
    """Each submission's result as Ray returns it (`pending`: task reference → student, emptied as they end)."""
    import ray  # an optional extra, already imported by RayBackend.run

    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            student = pending.pop(ref)
            try:
                result = SubmissionResult.model_validate(ray.get(ref))
            except ray.exceptions.RayError as error:  # the task's process died: this submission fails alone
                summary = ReferenceSummary(model=reference, trained_for=reference_key)
                result = internal_failure(session, student, paths[student], summary, error)
            yield student, result


def make_backend(name: str, workers: int, address: str | None = None, gpus_per_task: float | None = None) -> Backend:
    """The backend registered as `name`, set up for `workers` concurrent submissions."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose {' or '.join(sorted(BACKENDS))}")
    return BACKENDS[name](workers, address=address, gpus_per_task=gpus_per_task)
