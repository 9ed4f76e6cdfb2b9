"""Notebooks that build their models at top level: found by running the notebook with Keras training
intercepted, then retrained by the harness like any factory."""

from __future__ import annotations

import shutil
import subprocess
import sys

import nbformat
import pytest
from conftest import SAMPLES, run_grade

from harness.ingest.discovery import DiscoverOptions, apply_discovery, discover_models
from harness.ingest.execution import notebook_data_file
from harness.ingest.read import ingest_path, needs_discovery
from harness.pipeline.data import load_mnist

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graded_top_level(tmp_path_factory, mnist_npz, protocol_path, stage_cache):
    folder = tmp_path_factory.mktemp("top-level")
    shutil.copy2(SAMPLES / "top_level_models.ipynb", folder / "top_level_models.ipynb")
    return run_grade(
        [folder / "top_level_models.ipynb"],
        folder / "out",
        protocol=protocol_path,
        data=mnist_npz,
        cache=stage_cache,
        workers=1,
        robustness=False,
    )


def test_a_notebook_with_only_top_level_models_is_graded(graded_top_level):
    result = graded_top_level.result("top_level_models")
    assert result.status == "ok", result.reason
    assert [(m.name, m.role, m.status) for m in result.models] == [
        ("create_baseline_model", "baseline", "ok"),
        ("create_improved_model_1", "improved", "ok"),
        ("create_improved_model_2", "improved", "ok"),
    ]
    assert all(m.test_accuracy is not None and m.epochs_run == 1 for m in result.models)  # retrained, evaluated
    found = {m.factory: m for m in result.discovered_models}
    assert [(m.variable, m.built_cell, m.fitted_cell) for m in found.values()] == [
        ("model", 5, 6),
        ("model_reg", 8, 8),
        ("model_aug", 10, 10),
    ]
    # the fit settings became the protocol's training settings
    reg, aug = result.models[1], result.models[2]
    assert reg.settings.declared["batch_size"] == 64 and reg.settings.declared["epochs"] == 10
    assert reg.settings.callbacks == ["EarlyStopping"]
    assert reg.spec.learning_rate == pytest.approx(5e-4) and reg.spec.compiled_by == "student"
    assert aug.settings.augmentation == "ImageDataGenerator"
    assert "validation_split" in found["create_baseline_model"].fit["ignored"]
    ingest = graded_top_level.out / "top_level_models" / "ingest.json"
    assert '"factory_source": "discovered"' in ingest.read_text(encoding="utf-8")
    html = (graded_top_level.out / "top_level_models" / "report.html").read_text(encoding="utf-8")
    assert "model_reg" in html and "ImageDataGenerator" in html


EDGE_CASES = [
    (
        "code",
        "import math\nimport keras\nfrom keras import layers\n"
        "(x, y), (xt, yt) = keras.datasets.mnist.load_data()\nprint(len(x))",
    ),
    (
        "code",
        "def small():\n    return keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(),\n"
        "                              layers.Dense(10, activation='softmax')])",
    ),
    # fitted twice (continued training), sparse labels, a checkpoint and a schedule
    (
        "code",
        "base_model = small()\nbase_model.compile(optimizer=keras.optimizers.SGD(0.05), "
        "loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n"
        "base_model.fit(x, y, epochs=3, batch_size=32, callbacks=[\n"
        "    keras.callbacks.ModelCheckpoint('best.keras'),\n"
        "    keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * math.exp(-0.1))])\n"
        "base_model.fit(x, y, epochs=1)",
    ),
    # compiled, never fitted
    ("code", "spare = small()\nspare.compile(optimizer='adam', loss='categorical_crossentropy')"),
    # a subclassed model: rebuilt from its class and configuration (harness/workers/subclassing.py)
    (
        "code",
        "class Net(keras.Model):\n    def __init__(self):\n        super().__init__()\n"
        "        self.flat = layers.Flatten()\n        self.out = layers.Dense(10, activation='softmax')\n"
        "    def call(self, inputs):\n        return self.out(self.flat(inputs))\n"
        "net = Net()\nnet.compile(optimizer='adam', loss='categorical_crossentropy')\n"
        "net.fit(x[:10], keras.utils.to_categorical(y[:10], 10), epochs=2)",
    ),
    ("code", "raise RuntimeError('a cell that fails')"),
    (
        "code",
        "scores = base_model.evaluate(xt, yt)\nprint('accuracy', scores[1])\n"
        "predictions = base_model.predict(xt)\nprint(predictions.shape)",
    ),
]


def test_discovery_records_what_it_cannot_reproduce(tmp_path, mnist_npz):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for _, source in EDGE_CASES]
    path = tmp_path / "edge.ipynb"
    nbformat.write(notebook, path)
    ingest = ingest_path(path)
    assert needs_discovery(ingest)
    data = notebook_data_file(load_mnist(mnist_npz), tmp_path / "data", 200, 50)
    record, source = discover_models(ingest, path, data, tmp_path / "scratch", DiscoverOptions())
    assert record.status == "ok", record.reason
    cells = {c.cell: c for c in record.cells}
    assert cells[1].output.strip() == "200"  # the mounted MNIST subset
    assert cells[6].status == "error" and cells[6].error_name == "RuntimeError"
    assert cells[7].status == "ok" and "(50, 10)" in cells[7].output  # evaluate/predict answered at once
    base, net = record.models
    assert (base.factory, base.role, base.built_cell, base.fitted_cell) == ("create_baseline_model", "baseline", 3, 3)
    assert base.fit["epochs"] == 3 and base.fit["callbacks"] == ["ModelCheckpoint", "LearningRateScheduler"]
    notes = " ".join(base.notes)
    assert "fitted again in cell 3" in notes and "ModelCheckpoint" in notes and "sparse" in notes
    assert net.factory == "create_improved_model_1" and not any(n.startswith("not graded") for n in net.notes)
    assert record.not_fitted == ["spare (compiled in cell 4)"]
    updated = apply_discovery(ingest, record, source)
    assert updated.status == "ok"
    assert [f.name for f in updated.factories] == ["create_baseline_model", "create_improved_model_1"]
    assert "LearningRateScheduler" in source and "SGD" in source and "categorical_crossentropy" in source
    compile(source, "synthesised.py", "exec")


def test_discovery_can_be_turned_off(tmp_path, mnist_npz, protocol_path, stage_cache):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("import keras\nmodel = keras.Sequential([keras.Input((28, 28, 1))])")]
    nbformat.write(notebook, tmp_path / "nothing.ipynb")
    graded = run_grade(
        [tmp_path / "nothing.ipynb"],
        tmp_path / "out",
        protocol=protocol_path,
        data=mnist_npz,
        cache=stage_cache,
        workers=1,
        discover_models="never",
        robustness=False,
    )
    result = graded.result("nothing")
    assert result.status == "invalid" and "No factory found" in result.reason and not result.discovered_models


CUSTOM = [
    "import keras\nfrom keras import layers\n(x, y), _ = keras.datasets.mnist.load_data()\n"
    "x = x.reshape(-1, 28, 28, 1) / 255.0\ny = keras.utils.to_categorical(y, 10)",
    "def perte_lissee(y_true, y_pred):\n    return keras.losses.categorical_crossentropy(y_true, y_pred, label_smoothing=0.1)\n\n\n"
    "def swish_maison(t):\n    return t * keras.ops.sigmoid(t)",
    "model = keras.Sequential([layers.Input((28, 28, 1)), layers.Flatten(), layers.Dense(8, activation=swish_maison),"
    " layers.Dense(10, activation='softmax')])\nmodel.compile(optimizer='adam', loss=perte_lissee)\n"
    "model.fit(x, y, epochs=1)",
]


def test_a_top_level_model_with_the_notebook_s_own_loss_and_activation_is_rebuilt(tmp_path, mnist_npz):
    """The synthesised factory resolves the notebook's functions (a loss, an activation), not only its classes:
    a model compiled with a loss written in the notebook failed with "Could not locate function"."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CUSTOM]
    path = tmp_path / "custom.ipynb"
    nbformat.write(notebook, path)
    ingest = ingest_path(path)
    data = notebook_data_file(load_mnist(mnist_npz), tmp_path / "data", 200, 50)
    record, source = discover_models(ingest, path, data, tmp_path / "scratch", DiscoverOptions())
    assert record.status == "ok" and not any(n.startswith("not graded") for n in record.models[0].notes), record
    module = tmp_path / "synthesised.py"
    built = f"\nm = {record.models[0].factory}()\nprint(m.loss.__name__, m.layers[1].activation.__name__)\n"
    module.write_text(source + built)
    done = subprocess.run([sys.executable, str(module)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["perte_lissee", "swish_maison"]


LOGITS = [
    "import tensorflow as tf\n(x, y), _ = tf.keras.datasets.mnist.load_data()\nx = x / 255.0",
    "model = tf.keras.models.Sequential([tf.keras.layers.Flatten(input_shape=(28, 28)), tf.keras.layers.Dense(10)])\n"
    "loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)\n"
    "model.compile(optimizer='adam', loss=loss_fn, metrics=['accuracy'])\nmodel.fit(x, y, epochs=1)",
]


def test_the_quickstart_s_sparse_loss_on_logits_stays_on_logits(tmp_path, mnist_npz):
    """TensorFlow's quickstart compiles Dense(10) logits with SparseCategoricalCrossentropy(from_logits=True): the
    one-hot loss the harness trains with must be on logits too (probabilities' cross-entropy on logits does not
    train)."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in LOGITS]
    path = tmp_path / "quickstart.ipynb"
    nbformat.write(notebook, path)
    data = notebook_data_file(load_mnist(mnist_npz), tmp_path / "data", 200, 50)
    record, source = discover_models(ingest_path(path), path, data, tmp_path / "scratch", DiscoverOptions())
    (model,) = record.models
    assert any("on logits" in note for note in model.notes), model.notes
    module = tmp_path / "synthesised.py"
    module.write_text(
        source + f"\nm = {model.factory}()\nprint(type(m.loss).__name__, m.loss.get_config()['from_logits'])\n"
    )
    done = subprocess.run([sys.executable, str(module)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["CategoricalCrossentropy", "True"]


CONFIG_TABLE_MODULE = '''
import sys
import keras
from keras import layers

EXPERIMENTS = [dict(name="baseline", filters=(32, 64), dropout=0.0)] + [
    dict(name=name, filters=(8 * k, 16), dropout=rate)
    for k, (name, rate) in enumerate([("dropout", 0.25), ("d1", 0.0), ("d2", 0.0), ("d3", 0.0), ("d4", 0.0),
                                      ("d5", 0.0), ("d6", 0.0), ("d7", 0.0), ("d8", 0.0), ("d9", 0.0),
                                      ("d10", 0.0), ("d11", 0.0), ("last", 0.5)], start=1)
]


def build_from_config(cfg):
    """The CNN a config describes."""
    model = keras.Sequential([keras.Input((28, 28, 1))], name=cfg["name"])
    for n in cfg["filters"]:
        model.add(layers.Conv2D(n, 3, activation="relu"))
        model.add(layers.MaxPooling2D())
    if cfg["dropout"]:
        model.add(layers.Dropout(cfg["dropout"]))
    model.add(layers.Flatten())
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def main(selected=None):
    (x, y), _ = keras.datasets.mnist.load_data()
    x, y = x.reshape(-1, 28, 28, 1) / 255.0, keras.utils.to_categorical(y, 10)
    for cfg in [c for c in EXPERIMENTS if not selected or c["name"] in selected]:
        for seed in (0, 1):
            keras.utils.set_random_seed(seed)
            build_from_config(cfg).fit(x, y, epochs=1, batch_size=128)


if __name__ == "__main__":
    main(sys.argv[1:])
'''


def _discovered(tmp_path, mnist_npz, name: str, text: str, train_images: int = 200):
    """A module `text` written as `name`, which needs discovery, run by discovery: (ingest, record, source)."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    ingest = ingest_path(path)
    assert needs_discovery(ingest)
    data = notebook_data_file(load_mnist(mnist_npz), tmp_path / "data", train_images, 50)
    record, source = discover_models(ingest, path, data, tmp_path / "scratch", DiscoverOptions())
    assert record.status == "ok", record.reason
    return ingest, record, source


def test_a_module_run_as_a_script_sees_a_command_line_without_arguments(tmp_path, mnist_npz):
    """`python experiments.py` gives the script no argument: a module that picks its runs from ``sys.argv[1:]``
    (run them all when there is none) must not be handed the worker's own job file, which filtered every run
    out ("running the notebook built no model"). A config table run on two seeds is one model per config."""
    ingest, record, source = _discovered(tmp_path, mnist_npz, "experiments.py", CONFIG_TABLE_MODULE)
    # 14 set-ups fitted twice each (two seeds): one of each graded, the cap counting set-ups, not fits, and the
    # run named "dropout" (like the first Dropout layer Keras names) read as the same set-up on both seeds
    assert len(record.models) == 12, [m.notes for m in record.models]
    assert all("built again" in " ".join(m.notes) for m in record.models)
    assert "2 more fitted model(s) not graded" in " ".join(record.models[-1].notes)
    # the model the student named "baseline" is the baseline, though its layers are not the handout's
    assert [m.role for m in record.models] == ["baseline"] + ["improved"] * 11
    updated = apply_discovery(ingest, record, source)
    assert updated.status == "ok"
    # each run's label is the name its model was given: the student's text names the runs so
    assert updated.run_labels["create_improved_model_1"] == "dropout" == updated.own_names["create_improved_model_1"]


# A module that never calls fit: a subclassed model built from a table of configurations, trained by the
# student's own GradientTape loop over a shuffled tf.data dataset (en_subclass_gradienttape_b21's form).
OWN_LOOP = """
import time
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers

(x_train, y_train), _ = keras.datasets.mnist.load_data()
x_train = x_train.reshape(-1, 28, 28, 1).astype("float32") / 255.0
train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(10000).batch(32)


class Net(keras.Model):
    def __init__(self, units=16, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.flat = layers.Flatten()
        self.hidden = layers.Dense(units, activation="relu")
        self.drop = layers.Dropout(dropout)
        self.out = layers.Dense(10, activation="softmax")

    def call(self, x, training=False):
        return self.out(self.drop(self.hidden(self.flat(x)), training=training))


loss_fn = keras.losses.SparseCategoricalCrossentropy()


def train(model, epochs, lr):
    optimizer = keras.optimizers.Adam(learning_rate=lr)

    @tf.function
    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    for epoch in range(epochs):
        for xb, yb in train_ds:
            step(xb, yb)
        print("epoch", epoch, flush=True)


if __name__ == "__main__":
    configs = {"baseline": dict(units=16), "wide_dropout": dict(units=32, dropout=0.3)}
    for name, cfg in configs.items():
        started = time.time()
        model = Net(**cfg)
        train(model, 50, 3e-4)
        print(name, "trained in", round(time.time() - started, 1), "s")
"""


def test_a_training_loop_of_the_student_s_own_is_found_without_training(tmp_path, mnist_npz):
    ingest, record, source = _discovered(tmp_path, mnist_npz, "own_loop.py", OWN_LOOP, train_images=60000)
    assert [c.status for c in record.cells] == ["ok"], record.cells  # 50 epochs of 60,000 images: not run
    base, wide = record.models
    assert (base.factory, base.role, wide.factory, wide.role) == (
        "create_baseline_model",
        "baseline",
        "create_improved_model_1",
        "improved",
    )
    assert "own loop" in " ".join(base.notes) and not any(n.startswith("not graded") for n in base.notes + wide.notes)
    assert not any("not serialisable" in n for n in base.notes)  # the loop's Adam, read eagerly
    assert "0.0003" in source and "categorical_crossentropy" in source
    updated = apply_discovery(ingest, record, source)
    assert [f.name for f in updated.factories] == ["create_baseline_model", "create_improved_model_1"]


TF_DATA_SCRIPT = """
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers

(x_train, y_train), _ = keras.datasets.mnist.load_data()
augmenter = keras.Sequential([layers.RandomRotation(0.05)])


def shift(image, label):
    image = tf.image.resize_with_crop_or_pad(tf.cast(image[..., None], tf.float32) / 255.0, 32, 32)
    return tf.image.random_crop(image, size=[28, 28, 1]), label


train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(1000).map(shift).batch(32)
train_ds = train_ds.map(lambda x, y: (augmenter(x, training=True), y)).prefetch(2)
for width in (8, 16):
    model = keras.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(width, 3, activation="relu"),
                              layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(train_ds, epochs=2)
"""


def test_a_tf_data_pipeline_s_maps_are_found_and_reach_the_training_settings(tmp_path, mnist_npz):
    """Models built and trained at top level on a tf.data pipeline: its maps (a function before ``.batch``, a
    lambda after it) are the models' augmentation, named again in the synthesised module."""
    ingest, record, source = _discovered(tmp_path, mnist_npz, "tfdata.py", TF_DATA_SCRIPT)
    assert len(record.models) == 2
    for model in record.models:
        assert [(m["name"], m["batched"]) for m in model.fit["dataset_maps"]] == [("shift", False), ("lambda", True)]
        assert not any("tf.data" in n for n in model.notes), model.notes
    assert "'augmentation': [{'map': globals().get('shift'), 'batched': False, 'name': 'shift'}, " in source
    assert "{'map': lambda x, y: (augmenter(x, training=True), y), 'batched': True, 'name': 'lambda'}]" in source
