"""Reasons stored as messages at the source: a class scored in French is said in English at report time
(harness/report/localize.py), the same words as scoring it in English; older results keep their text."""

from __future__ import annotations

import json

import pytest

from harness.config.protocol import load_protocol
from harness.pipeline.submission import score_submission
from harness.report.localize import localized
from harness.results import IngestResult, SubmissionResult
from harness.scoring import load_rubric
from harness.util.i18n import Translator

STUDENTS = ["baseline_only", "module_student"]


def said(result: SubmissionResult) -> list:
    """Every sentence the score shows, in order."""
    return [
        [c.reason, *c.confidence_reasons, *(e.text for e in c.evidence), *(e.where or "" for e in c.evidence)]
        + [f"{part.label} {part.detail}" for part in c.components]
        for c in result.score.criteria
    ]


def scored(graded, student: str, language: str, protocol_path) -> SubmissionResult:
    folder = graded.out / student
    result = SubmissionResult.read(folder / "result.json")
    ingest = IngestResult.read(folder / "ingest.json")
    return score_submission(load_rubric(None), Translator(language), result, ingest, load_protocol(protocol_path))


@pytest.mark.parametrize("student", STUDENTS)
def test_a_score_in_french_is_said_in_english_as_if_scored_in_english(graded, protocol_path, student):
    french = scored(graded, student, "fr", protocol_path)
    stored = SubmissionResult.model_validate_json(french.model_dump_json())  # through result.json
    english = scored(graded, student, "en", protocol_path)
    assert said(localized(stored, Translator("en"))) == said(english)
    assert said(localized(stored, Translator("fr"))) == said(french)
    assert said(english) != said(french)


def test_numbers_are_stored_as_numbers_and_written_in_the_language(graded, protocol_path):
    french = scored(graded, "module_student", "fr", protocol_path)
    improvement = next(c for c in french.score.criteria if c.id == "improvement")
    message = improvement.messages["reason"]
    assert message.key == "rb_reason_improvement" and isinstance(message.values["acc"], float)
    assert "\u00a0%" in improvement.reason and "," in improvement.reason  # 28,80 %
    english = localized(french, Translator("en"))
    assert " %" in next(c for c in english.score.criteria if c.id == "improvement").reason


def test_results_without_messages_keep_their_stored_text(graded):
    """result.json written before the messages: the text is shown as stored (backward compatible)."""
    data = json.loads((graded.out / "baseline_only" / "result.json").read_text(encoding="utf-8"))
    for criterion in data["score"]["criteria"]:
        criterion.pop("messages", None)
        for item in criterion["evidence"] + criterion["components"]:
            item.pop("messages", None)
    old = SubmissionResult.model_validate(data)
    assert said(localized(old, Translator("en"))) == said(old)
