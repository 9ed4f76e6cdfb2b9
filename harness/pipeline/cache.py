"""Stage cache: a trained (and evaluated) model is stored under a key of everything it depends on.

The training key covers the model's code (the submission's extracted module and the factory
name), the protocol file, the profile, the seed, the data's content hash and the harness
version; the evaluation key adds what evaluation depends on (test images, suite). A class
graded again trains nothing that has not changed; one changed submission retrains only itself;
the reference is trained once per protocol, seed and data and shared by every student.

>>> cache = StageCache(Path("out/.cache"))                       # doctest: +SKIP
>>> key = cache.key("def create_baseline_model(): ...", "create_baseline_model", "run-key")  # doctest: +SKIP
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from harness.results import ModelResult

# Outcomes the same code, seed and data reproduce (an infinite loop times out again); a model
# killed from outside or skipped for lack of budget is retried on the next run.
CACHEABLE_STATUSES = {"ok", "invalid", "error", "timeout", "crashed", "out_of_memory"}


class StageCache:
    """Trained and evaluated models stored under ``ROOT/models/``, keyed by everything they depend on."""

    def __init__(self, root: Path, enabled: bool = True) -> None:
        self.root, self.enabled = Path(root), enabled

    @staticmethod
    def key(module_source: str, factory: str, run_key: str) -> str:
        """A model's training key: sha256 of its module source, factory name and the run's key (32 hex digits)."""
        digest = hashlib.sha256()
        for part in (module_source, factory, run_key):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")
        return digest.hexdigest()[:32]

    def _folder(self, key: str) -> Path:
        return self.root / "models" / key[:2] / key

    def load(self, key: str, evaluation_key: str, models_dir: Path) -> ModelResult | None:
        """The cached model (files copied into `models_dir`) or None; `from_cache` says which stages hit."""
        if not self.enabled:
            return None
        folder = self._folder(key)
        try:
            model = ModelResult.read(folder / "model.json")
        except (OSError, ValueError):
            return None
        evaluated = (
            model.status != "ok"
            or model.evaluation_key == evaluation_key
            and (model.predictions_file is None or (folder / model.predictions_file).exists())
        )
        kept = bool(model.model_file) and (folder / model.model_file).exists()
        if (model.model_file and not kept) or not (evaluated or kept):
            return None  # a model that must be evaluated again needs its file; without it, it is retrained
        models_dir.mkdir(parents=True, exist_ok=True)
        try:
            for name in (model.model_file, model.predictions_file if evaluated else None):
                if name:
                    shutil.copy2(folder / name, models_dir / name)
        except FileNotFoundError:  # another grader replaced the entry while it was read: a miss, not a crash
            return None
        if evaluated:
            return model.model_copy(update={"from_cache": ["train", "evaluate"]})
        return model.model_copy(
            update={
                "from_cache": ["train"],
                "test_accuracy": None,
                "test_errors": None,
                "predictions_file": None,
                "evaluation_key": None,
            }
        )

    def store(self, key: str, model: ModelResult, models_dir: Path, keep_model: bool = True) -> None:
        """Store atomically: a folder is built aside and renamed into place. Without `keep_model`, the
        entry holds the evaluation only (enough to reuse both stages while the evaluation key holds)."""
        if not self.enabled or model.status not in CACHEABLE_STATUSES:
            return
        final = self._folder(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
        try:
            if not keep_model:
                model = model.model_copy(update={"model_file": None})
            for name in (model.model_file, model.predictions_file):
                if name and (models_dir / name).exists():
                    shutil.copy2(models_dir / name, staging / name)
            model.model_copy(update={"from_cache": []}).write(staging / "model.json")
            _install(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _install(staging: Path, final: Path, attempts: int = 20) -> None:
    """Move the staged folder to `final`. An older entry is first renamed aside (one atomic rename)
    and deleted there, never in place, so that a reader sees a whole entry or none; when a concurrent
    grader installs its own entry in between, the rename is simply repeated. Deleting `final` and then
    renaming, as before, failed with "Directory not empty" when two graders stored the same key."""
    for _ in range(attempts):
        aside = Path(tempfile.mkdtemp(prefix=f".{final.name}.old.", dir=final.parent))
        try:
            try:
                os.replace(final, aside)  # onto our own empty folder: atomic, and fails if `final` is gone
            except FileNotFoundError:
                pass
            try:
                os.rename(staging, final)
                return
            except OSError as error:  # another grader's entry landed first: set it aside too
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
        finally:
            shutil.rmtree(aside, ignore_errors=True)
    raise OSError(f"could not install {final} after {attempts} attempts: other graders keep replacing it")
