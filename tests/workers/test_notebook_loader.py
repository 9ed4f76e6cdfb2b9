"""The loader injected before a student's cells run (discovery, --execute): MNIST from the mounted
file whichever way the notebook asks for it, never from the network."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from harness.workers.notebook import loader_source


@pytest.fixture(scope="module")
def mounted(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "subset.npz"
    np.savez(
        path,
        x_train=np.full((30, 28, 28), 7, np.uint8),
        y_train=np.arange(30, dtype=np.uint8) % 10,
        x_test=np.full((10, 28, 28), 9, np.uint8),
        y_test=np.arange(10, dtype=np.uint8),
    )
    return path


def _run(mounted, student_code: str) -> str:
    program = loader_source(mounted) + "\n" + textwrap.dedent(student_code)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_keras_loader_and_a_local_npz_path_both_read_the_mounted_file(mounted):
    out = _run(
        mounted,
        """
        import numpy as np
        from tensorflow.keras.datasets import mnist
        (x, y), (xt, yt) = mnist.load_data()
        with np.load("/home/student/Downloads/mnist.npz") as d:
            local = d["x_train"]
        print(x.shape[0], xt.shape[0], int(local[0, 0, 0]))
        """,
    )
    assert out == "30 10 7"


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn not installed")
def test_scikit_learn_fetch_openml_mnist_is_served_from_the_mounted_file(mounted):
    out = _run(
        mounted,
        """
        from sklearn.datasets import fetch_openml
        X, y = fetch_openml("mnist_784", version=1, return_X_y=True, as_frame=False)
        bunch = fetch_openml("mnist_784")
        print(X.shape[0], X.shape[1], y[0], bunch.data.shape[0], bunch.target.iloc[1])
        """,
    )
    assert out == "40 784 0 40 1"
