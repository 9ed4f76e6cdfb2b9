"""Keras 2 and TensorFlow 1 code rewritten for the Keras 3 the harness trains with (harness/ingest/legacy.py):
what is rewritten runs under Keras 3, and the student's own names are left alone."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.ingest import legacy
from harness.ingest.legacy import modernise
from harness.util.i18n import Translator

TF1_SCRIPT = """import tensorflow as tf
import keras
from keras.preprocessing.image import ImageDataGenerator
from keras.preprocessing import image
tf.compat.v1.disable_eager_execution()
tf.set_random_seed(1)
tf.logging.set_verbosity(tf.logging.ERROR)
tf.compat.v1.keras.backend.set_session(tf.Session(config=tf.ConfigProto()))
adam = tf.compat.v1.train.AdamOptimizer(learning_rate=0.001, beta1=0.9)
momentum = tf.train.MomentumOptimizer(0.01, 0.9, use_nesterov=True)
rmsprop = tf.train.RMSPropOptimizer(0.001, decay=0.9)
attribute = keras.preprocessing.image.ImageDataGenerator(rotation_range=10)
imported = ImageDataGenerator(zoom_range=0.1)
flowing = image.ImageDataGenerator().flow
print(tf.executing_eagerly(), type(adam).__name__, momentum.nesterov, type(rmsprop).__name__, round(float(rmsprop.rho), 2),
      type(attribute).__name__, imported.zoom_range[1] > 1)
"""


@pytest.mark.slow  # starts its own TensorFlow process (about 5 s)
def test_tensorflow_1_and_image_generator_code_runs_under_keras_3_once_rewritten():
    source, edits = modernise(TF1_SCRIPT, 4)
    assert "tf.compat.v1.disable_eager_execution" not in source and "beta1" not in source
    assert {(e.before, e.after) for e in edits} >= {
        ("keras.preprocessing", "tensorflow.keras.preprocessing"),
        ("tf.compat.v1.disable_eager_execution()", "None"),
        ("tf.set_random_seed", "tf.random.set_seed"),
        ("tf.compat.v1.train.AdamOptimizer", "tf.keras.optimizers.Adam"),
        ("beta1", "beta_1"),
        ("keras.preprocessing", '__import__("tensorflow").keras.preprocessing'),
    }
    assert all(e.cell == 4 for e in edits)
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "Adam", "True", "RMSprop", "0.9", "ImageDataGenerator", "True"]


def test_a_call_replaced_whole_keeps_the_calls_inside_it_untouched():
    source, edits = modernise("K.set_session(tf.Session(config=tf.ConfigProto()))\n", 1)
    assert source == "None\n" and len(edits) == 1


def test_names_of_the_students_own_are_not_rewritten():
    code = "def train(lr=0.1):\n    return lr\nmy_tf.Session = 1\ntf.keras.preprocessing.image.ImageDataGenerator()\n"
    source, edits = modernise(code, None)
    assert source == code and edits == []


@pytest.mark.slow  # a TensorFlow process of its own: ~5 s, kept out of the fast tier
def test_np_utils_imported_from_keras_utils_is_bound_to_keras_utils():
    """``from keras.utils import np_utils`` (Keras 2's most copied import) fails under Keras 3."""
    code = "from keras.utils import np_utils\nfrom tensorflow.keras.utils import to_categorical, np_utils as nu\nY = np_utils.to_categorical([1, 2], 3)\nZ = nu.to_categorical([0], 2)\nprint(Y.shape, Z.shape)\n"
    source, edits = modernise(code, 2)
    assert [e.line for e in edits] == [1, 2] and "np_utils' functions" in edits[0].reason
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["(2,", "3)", "(1,", "2)"]


@pytest.mark.slow  # a TensorFlow process of its own: ~5 s, kept out of the fast tier
def test_callbacks_monitoring_keras_2_s_acc_monitor_keras_3_s_accuracy():
    """``EarlyStopping(monitor="val_acc")`` raises under Keras 3 (it cannot tell max from min)."""
    code = (
        "import keras, numpy as np\n"
        "stop = keras.callbacks.EarlyStopping(monitor='val_acc', patience=0)\n"
        'plateau = keras.callbacks.ReduceLROnPlateau(monitor="acc", factor=0.5)\n'
        "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation='softmax')])\n"
        "m.compile('adam', 'categorical_crossentropy', metrics=['accuracy'])\n"
        "x, y = np.ones((8, 4)), keras.utils.to_categorical(np.arange(8) % 3, 3)\n"
        "print(len(m.fit(x, y, epochs=2, validation_split=0.25, callbacks=[stop, plateau], verbose=0).history['loss']))\n"
    )
    source, edits = modernise(code, 1)
    assert [(e.line, e.before, e.after) for e in edits] == [
        (2, "'val_acc'", "'val_accuracy'"),
        (3, '"acc"', '"accuracy"'),
    ]
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


DECAYED = "opt = SGD(lr=0.01, decay=1e-2, momentum=0.9)\nother = keras.optimizers.Adam(decay=1e-4)\nkept = RMSprop(lr=0.001, decay=0.0)\n"


def test_keras_2_s_decay_becomes_the_schedule_keras_2_applied():
    """Keras 3 ignores ``decay=`` (the rate would stay constant); Keras 2 divided it by 1 + decay × iterations."""
    source, edits = modernise(DECAYED, 1)
    assert "InverseTimeDecay(0.01, 1, 1e-2), decay=None" in source
    assert 'Adam(learning_rate=__import__("keras").optimizers.schedules.InverseTimeDecay(0.001, 1, 1e-4))' in source
    assert "RMSprop(learning_rate=0.001, decay=0.0)" in source  # no decay to apply
    assert all("decay" in e.reason or e.before == "lr" or e.after == "None" for e in edits)


@pytest.mark.slow  # a TensorFlow process of its own: ~5 s, kept out of the fast tier
def test_the_rewritten_decay_gives_keras_2_s_rate_at_every_step():
    source, _ = modernise("import keras\nfrom keras.optimizers import SGD\n" + DECAYED.splitlines()[0], 1)
    program = source + "\nprint(*(round(float(opt.learning_rate(step)), 6) for step in (0, 100)))\n"
    program = program.replace("opt.learning_rate(step)", "opt._learning_rate(step)")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0.01", "0.005"]  # 0.01 / (1 + 0.01 × 100)


def test_rewrite_reasons_are_said_in_french_and_in_english_as_before():
    """The report is in French by default: a rewrite's reason is a message it says in French, and its English
    text (what result.json's readers and the reports of older results read) is the sentence it always was."""
    _, edits = modernise("opt = Adam(lr=0.01)\nstop = EarlyStopping(monitor='val_acc')\n", 1)
    french, english = Translator("fr"), Translator("en")
    assert [french.render(e.message) for e in edits] == [
        "Keras 3 appelle cet argument learning_rate",
        "Keras 3 appelle la métrique 'val_accuracy', comme le correcteur dans son appel à compile",
    ]
    assert [e.reason for e in edits] == [
        "Keras 3 names this argument learning_rate",
        "Keras 3 names the metric 'val_accuracy', as the harness's compile does",
    ]
    assert [english.render(e.message) for e in edits] == [e.reason for e in edits]


# One source that every rewriter of legacy.py edits.
EVERY_REWRITE = (
    TF1_SCRIPT
    + DECAYED
    + "from keras.layers.convolutional import Conv2D\nfrom keras.utils import np_utils\n"
    + "import tensorflow_addons as tfa\nstop = EarlyStopping(monitor='val_acc')\nconv = Conv2D(32, 3, 3)\n"
    + "model.fit_generator(flow, epochs=5)\n"
)


def test_every_rewrite_reason_is_translated_in_both_languages():
    """A key missing from a language would show the key itself (or the English) in that language's report."""
    keys_in_legacy = set(re.findall(r'"(rewrite_\w+)"', Path(legacy.__file__).read_text(encoding="utf-8")))
    edits = legacy.legacy_idioms(EVERY_REWRITE)
    assert {e.message.key for e in edits} == keys_in_legacy  # the source exercises every reason
    french, english = Translator("fr"), Translator("en")
    assert keys_in_legacy <= french.messages.keys() and keys_in_legacy <= english.messages.keys()
    for edit in edits:
        assert english.render(edit.message) == edit.reason
        assert french.render(edit.message) != edit.reason, edit.message.key


def test_what_does_not_run_as_written_on_keras_3_is_listed_and_the_students_own_names_are_not():
    source = (
        "from keras.utils import np_utils\n"
        "@dataclass\nclass Config:\n    lr: float = 1e-3\n"
        "cfg = Config(lr=1e-3)\n"
        "def build(lr=1e-3):\n    return Adam(lr=lr)\n"
        "model.fit_generator(gen, epochs=5)\n"
        "labels = model.predict_classes(x_test)\n"
        "model.fit(x, y)  # Keras 3's own\n"
    )
    found = [(e.line, e.before, e.after) for e in legacy.legacy_idioms(source)]
    assert found == [
        (1, "from keras.utils import np_utils", "from keras import utils as np_utils"),
        (7, "lr", "learning_rate"),
        (8, "fit_generator", "fit"),
        (9, "predict_classes", "predict"),
    ]
    assert legacy.legacy_idioms("model.fit(x, y, epochs=5)\nopt = Adam(learning_rate=1e-3)\n") == []
