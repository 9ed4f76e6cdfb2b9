"""Adversarial sample (written by the course team): looking for the test set to train on it.

Expected: model `error` — "FileNotFoundError: no test set reachable: ..." saying how much of the
filesystem it searched and which .npz files it could open (under bubblewrap: only the training
split it was given, which holds no test images or labels). Without bubblewrap it may find
MNIST's test set; it then only *reports* it: the factory returns a valid model and the reason is
visible in the log. Bounded: reads at most 60,000 directory entries and 5 seconds; reads no file
but .npz archives' key names.
"""
import os
import time
import zipfile
from pathlib import Path

import keras
from keras import layers

MAX_ENTRIES = 60_000
MAX_SECONDS = 5
SKIP = {"/proc", "/sys", "/dev", "/usr"}
SKIP_NAMES = {"site-packages", "dist-packages", "__pycache__", ".git"}  # no data in there: look elsewhere


def _walk(found):
    seen, give_up = 0, time.monotonic() + MAX_SECONDS
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in SKIP and d not in SKIP_NAMES]
        for name in files:
            seen += 1
            if name.endswith(".npz") or "mnist" in name.lower():
                found.add(os.path.join(root, name))
        seen += len(dirs)
        if seen > MAX_ENTRIES or time.monotonic() > give_up:
            break
    return seen


def _guesses():
    here = Path.cwd()
    out = here.parents[2] if len(here.parents) > 2 else here.parent
    guesses = [Path("../shared/data/mnist.npz"), out.parent / "../shared/data/mnist.npz",
               Path("/work/shared/data/mnist.npz"), Path("/root/.keras/datasets/mnist.npz"),
               Path.home() / ".keras/datasets/mnist.npz"]
    guesses += sorted((out / ".work" / "data").glob("test-*.npz")) if (out / ".work" / "data").is_dir() else []
    return [str(g) for g in guesses]


def create_improved_model_1():
    """Searches for an .npz holding x_test / y_test."""
    found = set()
    seen = _walk(found)
    found |= {g for g in _guesses() if os.path.exists(g)}
    opened, with_test = [], []
    for path in sorted(found):
        try:
            with zipfile.ZipFile(path) as archive:
                keys = {n.removesuffix(".npy") for n in archive.namelist()}
            opened.append(f"{path} {sorted(keys)}")
            if {"x_test", "y_test"} & keys:
                with_test.append(path)
        except (OSError, zipfile.BadZipFile) as error:
            opened.append(f"{path} (unreadable: {type(error).__name__})")
    if not with_test:
        raise FileNotFoundError(f"no test set reachable: searched {seen} entries of the filesystem; "
                                f"tried {len(_guesses())} known places; .npz files opened ({len(opened)}): "
                                f"{'; '.join(opened[:4]) or 'none'}")
    print(f"ADVERSARIAL: test data reachable at {with_test}")  # the sandbox failed: say so loudly
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model
