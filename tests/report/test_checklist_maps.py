"""`harness check` says which of a student's tf.data maps the harness did not reproduce, and why, in the
student's language (harness/report/checklist.py; the reasons come from harness/workers/dataset_maps.py)."""

from __future__ import annotations

import pytest
from conftest import run_info

from harness.config.protocol import load_protocol
from harness.report.checklist import CheckReport, _Context, _models
from harness.results import ModelResult, SubmissionResult, TrainingSettings
from harness.util.i18n import Translator
from harness.workers.dataset_maps import UNFIT

NOTES = [{"name": "normalise", "why": "scale", "detail": "0..0.004"}, {"name": "lambda", "why": "fails", "detail": ""}]


def _lines(language: str, notes: list[dict]) -> list[str]:
    settings = TrainingSettings(epochs=1, batch_size=64, augmentation="map(shift)", augmentation_notes=notes)
    model = ModelResult(name="create_improved_model_1", role="improved", status="ok", settings=settings)
    result = SubmissionResult(
        student="s", status="ok", submission_sha256="x", source="s.ipynb", models=[model], run=run_info()
    )
    protocol = load_protocol()
    report = CheckReport(student="s", exit_code=0, reasons=[], result=result, estimates=[])
    context = _Context(report, None, Translator(language), protocol.profile("smoke"), protocol, "ok", "bad", "!")
    return _models(context)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("fr", ["fonction normalise de la chaîne tf.data non reproduite (elle met les pixels", "échoue"]),
        ("en", ["tf.data map normalise not reproduced (it puts the pixels", "it fails on the harness's images"]),
    ],
)
def test_a_map_left_out_is_said_with_its_reason(language, expected):
    text = "\n".join(_lines(language, NOTES))
    assert "map(shift)" in text
    for words in expected:
        assert words in text, text


def test_every_reason_a_map_is_left_out_is_worded_in_both_languages():
    for language in ("fr", "en"):
        text = "\n".join(_lines(language, [{"name": f"f_{why}", "why": why, "detail": ""} for why in UNFIT]))
        assert "map_unfit_" not in text and text.count("f_") == len(UNFIT), text
