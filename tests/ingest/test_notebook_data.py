"""The MNIST subset written for notebooks run by the harness (discovery, --execute)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np

from harness.ingest.execution import notebook_data_file


def test_grading_threads_writing_the_subset_at_once_all_get_it(tmp_path, monkeypatch):
    """The bug this guards: every thread wrote `<name>.tmp.npz`, so the second rename found nothing
    (`[Errno 2] No such file or directory: '….tmp.npz' -> '….npz'`) and the whole batch stopped."""
    raw = SimpleNamespace(
        content_sha256="0" * 64,
        x_train=np.zeros((50, 28, 28), np.uint8),
        y_train=np.zeros(50, np.uint8),
        x_test=np.zeros((20, 28, 28), np.uint8),
        y_test=np.zeros(20, np.uint8),
    )
    barrier = threading.Barrier(4)
    real_savez = np.savez

    def slow_savez(*args, **kwargs):  # every writer has written before any of them renames
        real_savez(*args, **kwargs)
        barrier.wait(timeout=10)

    monkeypatch.setattr(np, "savez", slow_savez)
    errors, paths = [], []

    def write():
        try:
            paths.append(notebook_data_file(raw, tmp_path, 30, 10))
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(set(paths)) == 1 and sorted(p.name for p in tmp_path.iterdir()) == [paths[0].name]
    with np.load(paths[0]) as data:
        assert data["x_train"].shape == (30, 28, 28)


def test_student_code_run_by_the_harness_never_gets_a_test_image(tmp_path):
    """Discovery and --execute run the student's own cells: their "test set" comes from the training set."""
    raw = SimpleNamespace(
        content_sha256="1" * 64,
        x_train=np.full((100, 28, 28), 1, np.uint8),
        y_train=np.arange(100, dtype=np.uint8) % 10,
        x_test=np.full((50, 28, 28), 2, np.uint8),
        y_test=np.zeros(50, np.uint8),
    )
    with np.load(notebook_data_file(raw, tmp_path, 60, 20)) as data:
        assert data["x_test"].shape == (20, 28, 28) and not (data["x_test"] == 2).any()
        np.testing.assert_array_equal(data["y_test"], raw.y_train[-20:])
