"""TensorFlow Addons code under Keras 3 (harness/workers/addons_keras3.py, harness/ingest/legacy.py): the
import is rewritten, the served names train as TensorFlow Addons' did, any other name fails with a
reason. Run in a subprocess: the served modules are registered for the whole process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from harness.ingest.legacy import modernise

STUDENT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow_addons as tfa
    from tensorflow_addons.layers import GroupNormalization
    from tensorflow_addons import optimizers

    # TensorFlow Addons' AdamW subtracts weight_decay * w per step, whatever the learning rate: with a zero
    # gradient (Adam's own step is then zero) one step leaves w * (1 - weight_decay)
    w = __import__("keras").Variable(np.ones((3,), "float32"))
    opt = tfa.optimizers.AdamW(weight_decay=1e-2, learning_rate=1e-3)
    opt.apply_gradients([(np.zeros((3,), "float32"), w)])
    sgd = optimizers.SGDW(weight_decay=1e-2, learning_rate=0.1, momentum=0.9)
    v = __import__("keras").Variable(np.ones((3,), "float32"))
    sgd.apply_gradients([(np.zeros((3,), "float32"), v)])
    print(round(float(w.numpy()[0]), 6), round(float(v.numpy()[0]), 6), type(GroupNormalization(groups=2)).__name__)

    image = np.zeros((3, 3), "float32")
    image[0, 2] = 1.0  # top right corner
    turned = np.asarray(tfa.image.rotate(image[None, :, :, None], np.pi / 2))[0, :, :, 0]
    moved = np.asarray(tfa.image.translate(image[:, :, None], [-1, 1]))[:, :, 0]
    print(np.argwhere(turned > 0.5).tolist(), np.argwhere(moved > 0.5).tolist())
    try:
        tfa.optimizers.Lookahead
    except AttributeError as error:
        print("refused:", error)
    """
)


def _run_rewritten(code: str) -> subprocess.CompletedProcess:
    source, _ = modernise(code, 1)
    program = "from harness.workers import addons_keras3\naddons_keras3.install()\n" + source
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)


def test_the_import_is_rewritten_on_its_own_lines_and_recorded():
    source, edits = modernise(STUDENT, 3)
    assert "import tensorflow_addons_keras3 as tfa" in source
    assert "from tensorflow_addons_keras3.layers import GroupNormalization" in source
    assert [(e.line, e.before, e.after) for e in edits] == [
        (3, "tensorflow_addons", "tensorflow_addons_keras3"),
        (4, "tensorflow_addons", "tensorflow_addons_keras3"),
        (5, "tensorflow_addons", "tensorflow_addons_keras3"),
    ]
    assert "Keras 3" in edits[0].reason


@pytest.mark.slow  # a TensorFlow process of its own: ~5 s, kept out of the fast tier
def test_served_names_behave_like_tensorflow_addons_and_others_are_refused_with_a_reason():
    done = _run_rewritten(STUDENT)
    assert done.returncode == 0, done.stderr[-3000:]
    decayed, positions, refused = done.stdout.strip().splitlines()
    # AdamW: 1 - 1e-2; SGDW: the same decay per step (momentum and learning rate do not scale it)
    assert decayed.split() == ["0.99", "0.99", "GroupNormalization"]
    # a quarter turn counterclockwise moves the top-right corner to the top left; [-1, 1] moves it left and down
    assert positions == "[[0, 0]] [[1, 1]]"
    assert refused.startswith("refused: tensorflow_addons.optimizers.Lookahead") and "Keras 3" in refused
