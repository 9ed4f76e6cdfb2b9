"""Cheap profiles reach the full protocol's verdict on BatchNormalization models (issue 20).

A few dozen training steps leave Keras's moving averages near their initial values: without
re-estimated statistics these models predict at chance level on validation and test images
although they trained well. The test grades a BatchNormalization fixture on such a profile and
checks, in the same run, both what Keras's own averages would have given and what is measured.
"""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES, run_grade

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def graded_batchnorm(tmp_path_factory, mnist_npz, protocol_path, stage_cache, suite_path):
    out = tmp_path_factory.mktemp("fidelity") / "out"
    run_grade(
        [FIXTURES / "batchnorm" / "bn_dense_schedule_colab.ipynb"],
        out,
        protocol=protocol_path,
        data=mnist_npz,
        cache=stage_cache,
        suite=suite_path,
        profile="tiny_bn",
        reports=False,  # the verdicts are read from result.json; the reports are tests/report/'s
    )
    return json.loads((out / "bn_dense_schedule_colab" / "result.json").read_text(encoding="utf-8"))


def batchnorm_models(result: dict) -> list[dict]:
    return [m for m in result["models"] if m["batchnorm"]]


def test_batchnorm_models_are_measured_not_at_chance(graded_batchnorm):
    models = batchnorm_models(graded_batchnorm)
    assert len(models) == 2
    for model in models:
        assert model["status"] == "ok"
        assert model["batchnorm"]["recalibrated"] and model["batchnorm"]["images"] == 1024
        assert model["test_accuracy"] > 0.5, model["name"]  # chance is 0.1


def test_keras_own_averages_would_have_measured_far_lower_and_the_result_says_so(graded_batchnorm):
    for model in batchnorm_models(graded_batchnorm):
        stats = model["batchnorm"]
        assert stats["val_accuracy_recalibrated"] > stats["val_accuracy_moving"] + 0.05, stats
        assert model["measurement"]["rule"] == "batchnorm_statistics" and model["measurement"]["measurable"]
        assert "ré-estimées" in model["measurement"]["reason"]


def test_the_validation_curve_is_the_models_real_one(graded_batchnorm):
    for model in batchnorm_models(graded_batchnorm):
        assert model["history"]["val_accuracy"][-1] == pytest.approx(model["batchnorm"]["val_accuracy_recalibrated"])


def test_the_model_without_batchnorm_is_untouched(graded_batchnorm):
    (baseline,) = [m for m in graded_batchnorm["models"] if m["role"] == "baseline"]
    assert baseline["batchnorm"] is None and baseline["measurement"] is None
