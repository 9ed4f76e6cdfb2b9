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
