"""The notebook run (discovery) prepares MNIST at its full size on every profile, so its memory is the full
profile's at least (harness/pipeline/submission.py); its other limits stay the run's."""

from __future__ import annotations

from types import SimpleNamespace

from harness.config.protocol import load_protocol
from harness.ingest.discovery import DISCOVERY_TEST_IMAGES, DISCOVERY_TRAIN_IMAGES
from harness.pipeline.submission import discovery_limits
from harness.sandbox import Limits


def test_the_notebook_run_gets_mnist_s_own_sizes_and_the_full_profile_s_memory():
    assert (DISCOVERY_TRAIN_IMAGES, DISCOVERY_TEST_IMAGES) == (60000, 10000)  # x_train.reshape(60000, 28, 28, 1)
    protocol = load_protocol()
    full = Limits.from_table(protocol.limits_table("full"))
    smoke = Limits.from_table(protocol.limits_table("smoke"))
    raised = discovery_limits(SimpleNamespace(protocol=protocol), smoke)
    assert (
        (raised.memory_mb, raised.resident_mb)
        == (full.memory_mb, full.resident_mb)
        > (smoke.memory_mb, smoke.resident_mb)
    )
    assert raised.cpu_seconds_per_thread == smoke.cpu_seconds_per_thread and raised.output_mb == smoke.output_mb
    larger = smoke.replace(memory_mb=16384, resident_mb=8192)  # an instructor's --memory-mb above the full profile's
    assert discovery_limits(SimpleNamespace(protocol=protocol), larger) == larger
