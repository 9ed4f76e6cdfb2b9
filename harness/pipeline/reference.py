"""The company's baseline CNN: trained once per protocol, profile, seed and data, reused by everyone."""

from __future__ import annotations

import time

from harness.analysis import analyse as analysis
from harness.config.environment import REFERENCE_CACHE_ENV, user_cache_dir
from harness.pipeline.cache import StageCache
from harness.pipeline.models import seed_runs, train_and_evaluate
from harness.pipeline.session import REFERENCE_DIR, Session
from harness.resources import bundled
from harness.results import ModelResult, ReferenceSummary, SeedRun


def reference_cache(session: Session) -> StageCache:
    """The reference's stage cache, shared by every grading run of this user (``$HARNESS_REFERENCE_CACHE``,
    else ``~/.cache/harness/reference``, else the run's own cache): a second class, or a class graded
    into a new folder, does not train it again. Its key holds the protocol, profile, seed, data and
    harness version (:attr:`Session.run_key`); ``--no-cache`` retrains it like every model."""
    root = user_cache_dir("reference", REFERENCE_CACHE_ENV, session.cache.root)
    return StageCache(root, enabled=session.cache.enabled)


def reference_model(session: Session) -> ModelResult:
    """The company's baseline, trained once per protocol, profile, seed and data; reused by everyone."""
    source = bundled("reference", "baseline.py").read_text(encoding="utf-8")
    folder = session.options.out / REFERENCE_DIR
    cache = reference_cache(session)
    key = cache.key(source, "create_baseline_model", session.run_key)
    stored = folder / "reference.json"
    if stored.exists():
        summary = ReferenceSummary.read(stored)
        if summary.trained_for == key and summary.model.evaluation_key == session.evaluation_key:
            return summary.model
    session.options.log("reference model…")
    started = time.monotonic()
    models, _ = train_and_evaluate(
        session,
        source,
        [("create_baseline_model", "reference")],
        "_reference",
        folder / "models",
        student="reference",
        cache=cache,
        keep_models=True,  # in the per-user cache, once per profile: a changed suite re-evaluates it
    )
    model = models[0]
    if model.status != "ok":
        raise RuntimeError(f"the reference model failed to train: {model.reason}\n{model.traceback or ''}")
    ReferenceSummary(model=model, trained_for=key).write(stored)
    origin = "from the cache" if model.from_cache else f"trained in {time.monotonic() - started:.0f} s"
    session.options.log(f"reference: {100 * model.test_accuracy:.2f} % ({origin})")
    return model


def complete_reference(session: Session, model: ModelResult) -> ModelResult:
    """The reference with its runs on the other seeds and its own analysis (its corruption errors
    are every model's denominators), written back to reference.json."""
    folder = session.options.out / REFERENCE_DIR
    runs: list[SeedRun] = []
    if len(session.seeds) > 1:
        source = bundled("reference", "baseline.py").read_text(encoding="utf-8")
        extra = seed_runs(session, source, [("create_baseline_model", "reference")], "_reference", folder, "reference")
        runs = [analysis.seed_run(model, session.seed), *extra["create_baseline_model"]]
    model = analysis.analyze_reference(
        model.model_copy(update={"seed_runs": runs}),
        folder / "models",
        session.labels,
        session.suite,
        session.analysis_config,
    )
    analysis.write_gallery(folder / analysis.GALLERY_FILE, [model], session.raw.x_test[: len(session.labels)])
    stored = folder / "reference.json"
    ReferenceSummary(model=model, trained_for=ReferenceSummary.read(stored).trained_for).write(stored)
    if model.robustness is not None:
        rob = model.robustness
        session.options.log(
            f"reference robustness: clean {100 * rob.clean_accuracy:.2f} %, noise σ=0.1 {100 * (rob.noise_accuracy or 0):.2f} %, "
            f"rotation ±15° {100 * (rob.rotation_accuracy or 0):.2f} %, MNIST-C mean {100 * (rob.mnist_c_accuracy or 0):.2f} %"
            + (f" (suite predicted in {rob.predict_seconds:.1f} s)" if rob.predict_seconds else "")
        )
    return model
