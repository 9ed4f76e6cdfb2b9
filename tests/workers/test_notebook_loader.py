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


@pytest.mark.slow  # starts its own TensorFlow process (about 5 s)
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
@pytest.mark.slow  # starts its own TensorFlow process (about 5 s)
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


@pytest.mark.skipif(importlib.util.find_spec("tf_keras") is None, reason="tf_keras not installed")
def test_a_loader_imported_after_the_injected_cell_is_served_too(mounted):
    """tf_keras's loader is not imported by the harness: the import hook patches it when the student imports it."""
    out = _run(
        mounted,
        """
        import tf_keras
        (x, y), (xt, yt) = tf_keras.datasets.mnist.load_data()
        print(x.shape[0], xt.shape[0], int(xt[0, 0, 0]))
        """,
    )
    assert out == "30 10 9"


@pytest.mark.slow  # starts its own TensorFlow process (about 5 s)
def test_another_local_npz_name_is_served_but_an_existing_file_is_read_as_it_is(mounted, tmp_path):
    own = tmp_path / "mnist_own.npz"
    np.savez(own, x_train=np.zeros((3, 28, 28), np.uint8))
    out = _run(
        mounted,
        f"""
        import numpy as np
        served = np.load("C:/Users/eleve/Documents/MNIST_data.npz")["x_train"].shape[0]
        kept = np.load({str(own)!r})["x_train"].shape[0]
        print(served, kept)
        """,
    )
    assert out == "30 3"


@pytest.mark.skipif(importlib.util.find_spec("tensorflow_datasets") is not None, reason="the real package is installed")
@pytest.mark.slow  # starts its own TensorFlow process (about 5 s)
def test_tensorflow_datasets_mnist_is_served_without_the_package(mounted):
    out = _run(
        mounted,
        """
        import tensorflow_datasets as tfds
        (train, test), info = tfds.load("mnist", split=["train[:80%]", "test"], as_supervised=True, with_info=True)
        images, labels = next(iter(train.batch(64)))
        whole = tfds.as_numpy(tfds.load("mnist", split="train", batch_size=-1))
        print(len(list(train)), len(list(test)), tuple(images.shape), labels.dtype.name,
              info.splits["train"].num_examples, info.features["label"].num_classes, whole["image"].shape[0])
        """,
    )
    assert out == "24 10 (24, 28, 28, 1) int64 30 10 30"


@pytest.mark.skipif(importlib.util.find_spec("tensorflow_datasets") is not None, reason="the real package is installed")
@pytest.mark.slow  # starts its own TensorFlow process (about 5 s)
def test_tensorflow_datasets_other_than_mnist_names_the_missing_package(mounted):
    out = _run(
        mounted,
        """
        import tensorflow_datasets as tfds
        try:
            tfds.load("cifar10")
        except ModuleNotFoundError as error:
            print(error.name, "cifar10" in str(error))
        """,
    )
    assert out == "tensorflow_datasets True"


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas not installed")
@pytest.mark.slow  # starts its own TensorFlow process (about 5 s)
def test_an_mnist_csv_the_student_had_is_served_in_its_layout(mounted, tmp_path):
    """Kaggle's Digit Recognizer (label + pixel0…pixel783; test.csv without labels) and "MNIST in CSV"
    (label + 1x1…28x28); any other CSV, and one that exists, is read as it is."""
    own = tmp_path / "train.csv"
    own.write_text("a,b\n1,2\n", encoding="utf-8")
    out = _run(
        mounted,
        f"""
        import pandas as pd
        train = pd.read_csv("../input/digit-recognizer/train.csv")
        test = pd.read_csv("../input/digit-recognizer/test.csv")
        csv = pd.read_csv("/content/drive/MyDrive/mnist_test.csv")
        try:
            pd.read_csv("sales.csv")
        except FileNotFoundError:
            other = "missing"
        print(train.shape, list(train.columns[:2]), int(train["label"][3]), test.shape, test.columns[0],
              int(test.values[0, 0]), csv.shape, csv.columns[1], pd.read_csv({str(own)!r}).shape, other)
        """,
    )
    assert out == "(30, 785) ['label', 'pixel0'] 3 (10, 784) pixel0 9 (10, 785) 1x1 (1, 2) missing"


@pytest.mark.slow  # a TensorFlow process of its own: ~5 s, kept out of the fast tier
@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas not installed")
def test_colab_s_sample_data_csv_is_read_with_the_student_s_own_arguments(mounted):
    """Colab's ``sample_data/mnist_train_small.csv`` has no header: ``header=None`` gives columns 0…784, the
    label in column 0; ``names=`` and ``nrows=`` are honoured too."""
    out = _run(
        mounted,
        """
        import pandas as pd
        train = pd.read_csv("/content/sample_data/mnist_train_small.csv", header=None)
        named = pd.read_csv("sample_data/mnist_test.csv", names=["digit", *range(784)], nrows=4)
        print(train.shape, int(train[0][3]), train.drop(columns=0).shape, list(named.columns[:2]), named.shape)
        """,
    )
    assert out == "(30, 785) 3 (30, 784) ['digit', 0] (4, 785)"


HIDE_DISPLAY_PACKAGES = """
import importlib.machinery, sys
class _Hide:  # the grading machine without seaborn, plotly, tqdm: the real finder does not find them
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] in ("seaborn", "plotly", "tqdm"):
            return None
        return importlib.machinery.PathFinder.find_spec(name, path, target)
sys.meta_path[sys.meta_path.index(importlib.machinery.PathFinder)] = _Hide
for name in [n for n in sys.modules if n.split(".")[0] in ("seaborn", "plotly", "tqdm")]:
    del sys.modules[name]
"""


@pytest.mark.slow  # starts its own TensorFlow process (about 5 s)
def test_plotting_packages_missing_where_the_harness_grades_draw_nothing_instead_of_failing(mounted):
    """CI had no seaborn: a Kaggle-style script failed at its import cell and built no model (issue 13)."""
    program = (
        HIDE_DISPLAY_PACKAGES
        + loader_source(mounted)
        + textwrap.dedent(
            """
        import seaborn as sns
        import plotly.express as px
        from tqdm.auto import tqdm, trange
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots()
        sns.set_theme(style="whitegrid")
        sns.heatmap([[1, 2], [3, 4]], annot=True, ax=ax).set_title("confusion")
        grid = sns.FacetGrid(None, col="x")
        grid.map(plt.hist, "y").add_legend()
        px.line(x=[1, 2], y=[3, 4]).show()
        print(list(tqdm(range(3))), list(trange(2)), sns.__name__, "seaborn" in repr(type(sns)) or "Stub" in repr(type(sns)))
        """
        )
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[0, 1, 2] [0, 1] seaborn True"
    assert "seaborn is not installed where the harness grades" in done.stderr


@pytest.mark.slow  # a TensorFlow process of its own: ~5 s, kept out of the fast tier
@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="the real package is installed")
def test_experiment_tracking_missing_where_the_harness_grades_logs_nothing_and_its_callback_is_keras_s(mounted):
    """A notebook that logs its runs to Weights & Biases failed at its import cell: no model was found."""
    out = _run(
        mounted,
        """
        import keras, numpy as np, wandb
        from wandb.keras import WandbCallback
        from wandb.integration.keras import WandbMetricsLogger
        run = wandb.init(project="mnist", config={"epochs": 2})
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "categorical_crossentropy")
        callbacks = [WandbCallback(save_model=False), WandbMetricsLogger(log_freq=5)]
        history = model.fit(np.ones((4, 3)), np.eye(2)[[0, 1, 0, 1]], epochs=2, callbacks=callbacks, verbose=0)
        wandb.log({"loss": 1.0}); wandb.finish()
        print(len(history.history["loss"]), all(isinstance(c, keras.callbacks.Callback) for c in callbacks),
              type(callbacks[0]).__name__)
        """,
    )
    assert out == "2 True WandbCallback"


@pytest.mark.skipif(importlib.util.find_spec("seaborn") is None, reason="seaborn not installed")
def test_an_installed_plotting_package_is_the_real_one(mounted):
    out = _run(mounted, "import seaborn\nprint(hasattr(seaborn, '__version__'), type(seaborn).__name__)")
    assert out == "True module"
