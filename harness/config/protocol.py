"""Protocol and profiles, read from ``reference/protocol.toml``.

>>> protocol = load_protocol()
>>> protocol.profile("smoke").train_images
2000
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.resources import bundled


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainingProtocol(_Strict):
    """The protocol's ``[training]`` defaults: optimizer, loss, batch size, epochs, validation split, seed."""

    optimizer: str = "adam"
    loss: str = "categorical_crossentropy"
    batch_size: int = 128
    epochs: int = 5
    validation_split: float = 0.2
    seed: int = 0
    # Threads of every training and evaluation: a protocol constant, since TensorFlow's CPU kernels sum
    # in a thread-dependent order and the last digits of an accuracy move with it. `--workers` runs
    # several such trainings at once; it never changes a number.
    threads: int = Field(default=2, ge=1)


class Profile(_Strict):
    """A grading profile (smoke, full...): how many images, how many epochs, and the time budgets."""

    name: str
    description: str = ""
    train_images: int
    test_images: int
    epochs: int | None = None
    max_epochs: int
    model_budget_s: float
    submission_budget_s: float
    import_timeout_s: float
    build_timeout_s: float
    # Precise BatchNorm (docs/fidelity.md): training images the BatchNormalization statistics are
    # re-estimated on after training and before each validation pass; 0 leaves Keras's own.
    bn_recalibration_images: int = 0
    # A model showing the collapse signature: "not_measurable" (no criterion scored from its
    # accuracy: this profile cannot tell) or "measured" (the full protocol: it is the verdict).
    collapse: Literal["not_measurable", "measured"] = "not_measurable"
    # A model stopped much further from convergence than the reference (docs/fidelity.md): "not_measurable",
    # "said" (measured, the result says so) or "off" (not looked for: the full protocol is the verdict).
    still_learning: Literal["not_measurable", "said", "off"] = "off"
    # Images per robustness set that uses a subset of the test set (the suite file's `subset`),
    # capped for this profile; None: the suite's own. The assignment's two tests keep the whole set.
    suite_images: int | None = Field(default=None, gt=0)
    # measured by bench/fidelity.py against the full protocol (docs/fidelity.md); `harness check` says them
    verdict_agreement: float | None = None
    accuracy_rho: float | None = None

    def effective_epochs(self, declared: int | None, default: int) -> int:
        """Epochs a model trains for: the student's choice (or the protocol's), capped."""
        wanted = self.epochs if self.epochs is not None else (declared or default)
        return max(1, min(int(wanted), self.max_epochs))


# pip distribution name -> the module students import, where they differ
IMPORT_NAMES = {"scikit-learn": "sklearn", "opencv-python-headless": "cv2", "opencv-python": "cv2", "pillow": "PIL"}


class Environment(_Strict):
    """``[environment]``: the packages student code may import besides TensorFlow and Keras."""

    packages: list[str] = []

    @property
    def modules(self) -> list[str]:
        """The import names of the declared packages (``scikit-learn`` → ``sklearn``)."""
        return [IMPORT_NAMES.get(p.lower(), p.lower().replace("-", "_")) for p in self.packages]


class Protocol(_Strict):
    """``reference/protocol.toml`` as read: the training defaults, the profiles by name, the file's sha256."""

    training: TrainingProtocol
    profiles: dict[str, Profile]
    environment: Environment = Environment()
    limits: dict[str, dict[str, object]] = {}  # [limits.*] as written: harness.sandbox.Limits checks the values
    source_sha256: str = ""

    def limits_table(self, profile: str) -> dict[str, object]:
        """The worker limits of `profile`: its ``[limits.<profile>]`` over ``[limits.default]``."""
        return {**self.limits.get("default", {}), **self.limits.get(profile, {})}

    def profile(self, name: str) -> Profile:
        """The profile called ``name``; ValueError naming the known ones when there is none."""
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            raise ValueError(f"unknown profile {name!r}; known profiles: {known}") from None


def load_protocol(path: Path | None = None) -> Protocol:
    """Read the protocol (default: the bundled ``reference/protocol.toml``), with its sha256."""
    path = Path(path) if path else bundled("reference", "protocol.toml")
    raw = path.read_bytes()
    data = tomllib.loads(raw.decode("utf-8"))
    profiles = {name: Profile(name=name, **spec) for name, spec in data.get("profiles", {}).items()}
    return Protocol(
        training=TrainingProtocol(**data.get("training", {})),
        profiles=profiles,
        environment=Environment(**data.get("environment", {})),
        limits=data.get("limits", {}),
        source_sha256=hashlib.sha256(raw).hexdigest(),
    )
