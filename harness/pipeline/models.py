"""A submission's models trained and evaluated, each from the stage cache where its key matches.

Used alike for the reference and for every student: the same sandboxed training worker, the
same evaluation worker (started early, while the models train), the same cache.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from harness.analysis import analyse as analysis
from harness.pipeline.cache import StageCache
from harness.pipeline.session import Session
from harness.results import ModelResult, SeedRun, WorkerInfo
from harness.training.evaluate import EvaluationWorker, evaluate_models
from harness.training.train import train_submission


def train_and_evaluate(
    session: Session,
    module_source: str,
    factories: list[tuple[str, str]],
    scratch_name: str,
    models_dir: Path,
    student: str = "",
    local_modules: dict[str, str] | None = None,
    cache: StageCache | None = None,
    keep_models: bool | None = None,
) -> tuple[list[ModelResult], WorkerInfo]:
    """Models of one submission, each from the cache where its key matches, else trained and evaluated
    (`local_modules`: the student's own modules the code imports, part of what a model depends on;
    `cache`: another stage cache than the run's, as the reference's per-user one; `keep_models`: None
    follows ``--keep-models``)."""
    cache = cache or session.cache
    keep = session.options.keep_models if keep_models is None else keep_models
    job = session.training_job(scratch_name)
    depends_on = module_source + "".join(f"\n# {n}\n{s}" for n, s in sorted((local_modules or {}).items()))
    keys = {name: cache.key(depends_on, name, session.run_key) for name, _ in factories}
    models = {name: cache.load(keys[name], session.evaluation_key, models_dir) for name, _ in factories}
    to_train = [(name, role) for name, role in factories if models[name] is None]
    worker = WorkerInfo(sandbox="none needed: every model came from the cache", threads=0)
    early = None
    if to_train:
        # the evaluation worker starts TensorFlow and reads the suite while the models train
        early = EvaluationWorker(job, job.work_dir / "evaluate" / "safe", models_dir, session.test_data, session.suite)
        warm = session.warm.take() if session.warm is not None else None  # started during the previous submission
        try:
            trained, worker = train_submission(
                module_source,
                to_train,
                job,
                job.work_dir / "train",
                models_dir,
                on_event=session.progress.worker_event(student),
                local_modules=local_modules,
                warm=warm,
            )
        except BaseException:
            early.cancel()
            if warm is not None:
                warm.cancel()
            raise
        finally:
            if warm is not None:
                shutil.rmtree(warm.scratch, ignore_errors=True)
        models.update({m.name: m for m in trained})
    to_evaluate = [m for m in models.values() if m.status == "ok" and "evaluate" not in m.from_cache]
    if to_evaluate:
        module_path = job.work_dir / "train" / "submission.py"
        module_path.parent.mkdir(parents=True, exist_ok=True)
        module_path.write_text(module_source, encoding="utf-8")
        evaluated = evaluate_models(
            to_evaluate,
            job,
            job.work_dir / "evaluate",
            models_dir,
            session.test_data,
            session.labels,
            module_path=module_path,
            suite=session.suite,
            early=early,
        )
        models.update({m.name: m.model_copy(update={"evaluation_key": session.evaluation_key}) for m in evaluated})
    elif early is not None:
        early.cancel()
    for name, model in models.items():
        if "evaluate" not in model.from_cache:
            cache.store(keys[name], model, models_dir, keep_model=keep)
    shutil.rmtree(job.work_dir, ignore_errors=True)
    if not session.options.keep_models:
        models = {name: _without_model_file(model, models_dir) for name, model in models.items()}
    return [models[name] for name, _ in factories], worker


def _without_model_file(model: ModelResult, models_dir: Path) -> ModelResult:
    """The model once its evaluation is stored: its .keras file deleted from the output folder."""
    if model.model_file:
        (models_dir / model.model_file).unlink(missing_ok=True)
    return model.model_copy(update={"model_file": None})


def seed_runs(
    session: Session,
    module_source: str,
    factories: list[tuple[str, str]],
    scratch_name: str,
    folder: Path,
    student: str,
) -> dict[str, list[SeedRun]]:
    """--seeds K: every model trained again on the K-1 other seeds (clean test set only; the stage
    cache keeps each run), in `folder`/seeds/<seed>/models."""
    runs: dict[str, list[SeedRun]] = {name: [] for name, _ in factories}
    for seed in session.seeds[1:]:
        seeded = replace(session, seed=seed, suite=None)
        models, _ = train_and_evaluate(
            seeded,
            module_source,
            factories,
            f"{scratch_name}-seed-{seed}",
            folder / "seeds" / str(seed) / "models",
            student=student,
        )
        for model in models:
            runs[model.name].append(analysis.seed_run(model, seed))
    return runs
