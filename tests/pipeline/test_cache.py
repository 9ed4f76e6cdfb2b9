"""The stage cache under concurrent graders: every store lands whole, no reader or writer crashes."""

from __future__ import annotations

import threading

from harness.pipeline.cache import StageCache
from harness.results import ModelResult

KEY = "ab" * 16


def _model() -> ModelResult:
    return ModelResult(name="create_baseline_model", role="baseline", status="ok", model_file="m.keras")


def test_graders_storing_and_loading_one_key_at_once_never_fail(tmp_path):
    # removing the old entry and then renaming the new one into place failed with "Directory not
    # empty" (and readers with FileNotFoundError) when two graders stored the same model at once
    cache = StageCache(tmp_path / "cache")
    errors: list[BaseException] = []

    def grader(index: int) -> None:
        models = tmp_path / f"grader{index}"
        models.mkdir()
        (models / "m.keras").write_bytes(bytes([index]) * 100_000)
        for _ in range(30):
            try:
                cache.store(KEY, _model(), models)
                cache.load(KEY, "", tmp_path / f"loaded{index}")
            except BaseException as error:
                errors.append(error)

    threads = [threading.Thread(target=grader, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    loaded = cache.load(KEY, "", tmp_path / "last")
    assert loaded is not None and len((tmp_path / "last" / "m.keras").read_bytes()) == 100_000
    # no staging or set-aside folder is left behind
    assert [p.name for p in (tmp_path / "cache" / "models" / KEY[:2]).iterdir()] == [KEY]


def _evaluated(models, evaluation_key: str = "eval-1") -> ModelResult:
    (models / "m.keras").write_bytes(b"k" * 1000)
    (models / "m.predictions.npz").write_bytes(b"p" * 100)
    return _model().model_copy(update={"predictions_file": "m.predictions.npz", "evaluation_key": evaluation_key})


def test_an_entry_stored_without_its_model_file_serves_only_its_own_evaluation(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    cache = StageCache(tmp_path / "cache")
    cache.store(KEY, _evaluated(models), models, keep_model=False)
    assert not list((tmp_path / "cache").rglob("*.keras"))  # the default: outputs sized for a class
    hit = cache.load(KEY, "eval-1", tmp_path / "out")
    assert hit is not None and hit.from_cache == ["train", "evaluate"] and hit.model_file is None
    assert (tmp_path / "out" / "m.predictions.npz").exists()
    # another suite or test set: the evaluation must be redone, and without the model file it cannot
    assert cache.load(KEY, "eval-2", tmp_path / "other") is None


def test_an_entry_stored_with_its_model_file_is_evaluated_again_from_it(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    cache = StageCache(tmp_path / "cache")
    cache.store(KEY, _evaluated(models), models, keep_model=True)
    again = cache.load(KEY, "eval-2", tmp_path / "other")
    assert again is not None and again.from_cache == ["train"] and (tmp_path / "other" / "m.keras").exists()
