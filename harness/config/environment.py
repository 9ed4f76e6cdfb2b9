"""The environment variables the harness reads, named once, and the per-user cache folders they choose."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "HARNESS_MNIST_NPZ"  # a local MNIST .npz (no network needed)
SUITE_CACHE_ENV = "HARNESS_SUITE_CACHE"  # where built robustness suites are cached (default: per user)
REFERENCE_CACHE_ENV = "HARNESS_REFERENCE_CACHE"  # where the trained reference models are cached (default: per user)
PRIVATE_SEED_ENV = "HARNESS_PRIVATE_SEED"  # the private check set's seed (default: OUT/.private/seed)
WARM_WORKERS_ENV = "HARNESS_WARM_WORKERS"  # "0": no training worker started ahead (saves ~0.4 GB; default on)


def warm_workers_wanted() -> bool:
    """Whether a local batch starts each submission's training worker during the one before."""
    return os.environ.get(WARM_WORKERS_ENV, "1").strip().lower() not in ("0", "no", "false", "off")


def user_cache_dir(kind: str, env: str, fallback: Path) -> Path:
    """A cache shared by every grading run of this user: ``$<env>`` if set, else
    ``$XDG_CACHE_HOME/harness/<kind>`` (``~/.cache/harness/<kind>``), else, where that cannot be
    written (no home folder, a read-only one), `fallback`.

    >>> user_cache_dir("suites", "UNSET_VARIABLE", Path("out/.work/suite")).name   # doctest: +SKIP
    'suites'
    """
    chosen = os.environ.get(env)
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    shared = Path(base).expanduser() / "harness" / kind
    try:
        shared.mkdir(parents=True, exist_ok=True)
        if os.access(shared, os.W_OK | os.X_OK):
            return shared
    except (OSError, RuntimeError):  # no home folder, or a read-only one
        pass
    return fallback
