"""Warm training workers (harness/training/warm.py): started before their submission, one submission each."""

from __future__ import annotations

import numpy as np
import pytest

from harness.config.protocol import load_protocol
from harness.pipeline.data import load_mnist, training_split
from harness.resources import bundled
from harness.training.train import TrainingJob, train_submission
from harness.training.warm import WarmPool


@pytest.fixture
def job(tmp_path, mnist_npz, protocol_path) -> TrainingJob:
    protocol = load_protocol(protocol_path)
    profile = protocol.profile(
        "tiny"
    )  # tests/conftest.py's test profile (by name: tests/similarity has a conftest too)
    split = training_split(load_mnist(mnist_npz), profile.train_images, protocol.training.validation_split)
    data = tmp_path / "train.npz"
    np.savez(data, x_train=split.x_train, y_train=split.y_train, x_val=split.x_val, y_val=split.y_val)
    return TrainingJob(
        protocol=protocol, profile=profile, seed=protocol.training.seed, train_data=data, work_dir=tmp_path / "w"
    )


@pytest.mark.slow  # starts TensorFlow in three workers, trains one tiny model twice
def test_a_warm_worker_trains_the_submission_it_is_handed_and_gives_the_same_model(job, tmp_path):
    """The worker imports TensorFlow before the submission is known (``ready`` before ``go``), trains it
    as a cold worker would (the same history), serves that submission only, and the pool's idle worker
    ends when the pool closes."""
    source = bundled("reference", "baseline.py").read_text(encoding="utf-8")
    factories = [("create_baseline_model", "baseline")]
    pool = WarmPool(job, tmp_path / "warm")
    warm = pool.take()
    second = pool.idle  # the next submission's, started now
    assert warm is not None and second is not None and second.scratch != warm.scratch
    (hot,), _ = train_submission(source, factories, job, tmp_path / "unused", tmp_path / "hot", warm=warm)
    events = [e["event"] for e in warm.outcome.events]
    assert events.index("ready") < events.index("go") < events.index("imported"), events
    assert not (tmp_path / "unused").exists()  # the warm worker's own scratch folder served
    (cold,), _ = train_submission(source, factories, job, tmp_path / "cold-work", tmp_path / "cold")
    assert hot.status == cold.status == "ok", (hot.reason, cold.reason)
    assert hot.history == cold.history
    pool.close()
    assert not second.thread.is_alive() and second.outcome.returncode == 0
    assert [e["event"] for e in second.outcome.events][-2:] == ["go", "done"]  # told to stop, trained nothing
    assert pool.take() is None


@pytest.mark.slow  # starts TensorFlow twice, trains one tiny model
def test_a_warm_worker_that_ended_before_its_submission_is_replaced_by_a_cold_one(job, tmp_path, monkeypatch):
    """A warm worker stopped while it waited (here its idle limit; in life the OOM killer, a stray signal)
    never saw the submission: the submission is trained by a cold worker, not failed."""
    from harness.training import warm as warm_module  # only this test shortens the idle limit

    monkeypatch.setattr(warm_module, "IDLE_LIMIT_S", 0.0)
    monkeypatch.setattr(warm_module, "IDLE_SLACK_S", 0.5)
    warm = warm_module.WarmTrainer(job, tmp_path / "warm-1")
    warm.thread.join(timeout=120)
    assert not warm.thread.is_alive() and "waited more than" in (warm.outcome.stopped_because or "")
    source = bundled("reference", "baseline.py").read_text(encoding="utf-8")
    (model,), worker = train_submission(
        source, [("create_baseline_model", "baseline")], job, tmp_path / "unused", tmp_path / "models", warm=warm
    )
    assert model.status == "ok", model.reason
    assert worker.restarts == 0
