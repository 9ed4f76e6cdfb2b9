"""The notes of a model found by running the notebook, and discovery's reasons, said in the report's language.

The sandboxed worker (harness/workers/discover.py) imports nothing of the grader: it stores its notes in
English, and harness/ingest/discovery.py adds its reasons in English too. The report says them again in
French through ``Translator.stored`` and the ``why_disc_*`` templates of templates/i18n. The worker's notes
are read from its source, so that a new note without a template fails here.
"""

from __future__ import annotations

import ast
import itertools
import json
from pathlib import Path

import pytest
from conftest import run_info

import harness.workers
from harness.ingest.discovery import apply_discovery, record_from_events
from harness.ingest.read import ingest_path
from harness.report.render import render_student
from harness.results import DiscoveredModel, Score, SubmissionResult
from harness.util.i18n import Translator

FR, EN = Translator("fr"), Translator("en")
WORKER = Path(harness.workers.__file__).parent / "discover.py"
SAMPLE = "7"  # what each {value} of an f-string note is given

# a word each French template says, that its English does not
FRENCH_WORD = {
    "why_disc_fitted_again": "réglages",
    "why_disc_tf_data": "lots",
    "why_disc_python_generator": "générateur",
    "why_disc_preprocessing_function": "reproduite",
    "why_disc_file_callback": "fichiers",
    "why_disc_custom_callback": "personnalisé",
    "why_disc_schedule": "planification",
    "why_disc_built_again": "même façon",
    "why_disc_too_many": "non noté(s)",
    "why_disc_sparse_loss": "entropie croisée",
    "why_disc_sparse_loss_logits": "sur les logits",
    "why_disc_optimizer": "à la place",
    "why_disc_own_loop": "boucle propre",
    "why_disc_own_loop_protocol_loss": "perte du protocole",
    "why_disc_not_rebuilt": "reconstruit",
    "why_disc_no_model": "aucun modèle",
    "why_disc_no_model_cell_failed": "a échoué",
    "why_disc_ended_early": "prématurément",
    "why_disc_ended_early_tail": "prématurément",
    "why_disc_deadline": "a pris plus de",
    "why_disc_not_reached": "non exécutée",
    "why_disc_worker_stopped": "processus",
    "why_disc_no_factory": "Exécution du notebook",
}


def _texts(node: ast.expr, assigned: dict[str, list[ast.expr]]) -> list[str]:
    """Every text `node` can make: f-string values given SAMPLE, both sides of a conditional, and a
    dictionary entry (``settings["loss_note"]``) as each of the values the source assigns to it."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        parts = [[v.value] if isinstance(v, ast.Constant) else [SAMPLE] for v in node.values]
        return ["".join(p) for p in itertools.product(*parts)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [a + b for a, b in itertools.product(_texts(node.left, assigned), _texts(node.right, assigned))]
    if isinstance(node, ast.IfExp):
        return _texts(node.body, assigned) + _texts(node.orelse, assigned)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and node.slice.value in assigned:
        return [text for value in assigned[node.slice.value] for text in _texts(value, assigned)]
    raise AssertionError(f"a note this test cannot read, in {WORKER.name}: {ast.unparse(node)}")


def worker_notes() -> list[str]:
    """What the worker can append to a model's notes (``notes.append(...)``, ``info["notes"].append(...)``)."""
    tree = ast.parse(WORKER.read_text(encoding="utf-8"))
    assigned: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
                    assigned.setdefault(target.slice.value, []).append(node.value)
    notes = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "append"
            and "notes" in ast.unparse(node.func.value)
        ):
            notes += _texts(node.args[0], assigned)
    return notes


def discovery_reasons(tmp_path: Path) -> list[str]:
    """What harness/ingest/discovery.py says of a run that found nothing, built by its own functions."""
    path = tmp_path / "sans_modele.ipynb"
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None}
    cells = [{**cell, "source": "x = 1"}, {**cell, "source": "y = x"}]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4}), "utf-8")
    ingest = ingest_path(path)
    failed = {"event": "cell_done", "cell": 1, "status": "error", "error_name": "NameError", "error_message": "z"}
    deadline = "running the notebook took more than 300 s"  # discover_models's deadline (its `watch`)
    reasons = []
    for events, stopped in (
        ([], None),
        ([{"event": "models", "models": []}], None),
        ([failed, {"event": "models", "models": []}], None),
        ([], deadline),
    ):
        record = record_from_events(events, ingest, "bubblewrap", 1.0, stopped)
        reasons += [record.reason, *(c.error_message for c in record.cells if c.status == "not_run")]
        reasons.append(apply_discovery(ingest, record, "").reason)  # the ingest's own reason, then discovery's
    record = record_from_events([], ingest, "bubblewrap", 1.0, None, type("Outcome", (), {"log_tail": "Killed"}))
    return [*dict.fromkeys([*reasons, record.reason])]


def test_the_worker_s_notes_are_read_from_its_source():
    notes = worker_notes()
    assert len(notes) >= 13, notes
    assert f"{SAMPLE} callback not reproduced (custom or unsupported)" in notes
    assert any(n.endswith("(on logits, as the notebook's)") for n in notes)  # both sides of the loss note


@pytest.mark.parametrize("note", worker_notes())
def test_each_note_of_the_worker_is_said_in_french(note):
    said = FR.stored(note)
    assert said != note, f"no French for {note!r}: add a why_disc_* template to templates/i18n/*.toml"
    assert said.key.startswith("why_disc_"), f"{note!r} is said by {said.key}, not a discovery note's template"
    assert FRENCH_WORD[said.key] in said
    assert EN.stored(note) == note


def test_discovery_s_reasons_are_said_in_french(tmp_path):
    reasons = discovery_reasons(tmp_path)
    assert len(reasons) >= 8, reasons
    for reason in reasons:
        said = FR.stored(reason)
        assert said != reason and said.key.startswith("why_disc_"), reason
        assert FRENCH_WORD[said.key] in said
        assert EN.stored(reason) == reason


def test_a_note_is_said_in_french_with_its_values():
    note = (
        "not graded: the model cannot be rebuilt from its configuration (ValueError: Unknown layer: 'Mine') "
        "— a subclassed model needs get_config, or write a factory function"
    )
    assert FR.stored(note) == (
        "non noté : le modèle ne peut pas être reconstruit à partir de sa configuration (ValueError: Unknown "
        "layer: 'Mine') — un modèle sous-classé doit définir get_config ; sinon, écrivez une fonction usine"
    )
    assert FR.stored("3 more fitted model(s) not graded (at most 8)") == (
        "3 autre(s) modèle(s) entraîné(s) non noté(s) (au plus 8)"
    )
    # a reason within a reason: the cell that did not run, and why
    assert FR.stored("not reached: running the notebook took more than 300 s") == (
        "non exécutée : l'exécution du notebook a pris plus de 300 s"
    )


def test_the_report_says_the_notes_in_its_language(tmp_path):
    notes = [
        "ModelCheckpoint callback not reproduced (it writes files; the harness saves the model itself)",
        "trained on a Python generator: not reproduced (the harness's own batches are used)",
    ]
    result = SubmissionResult(
        student="rey_lou",
        status="invalid",
        reason="running the notebook took more than 300 s",
        submission_sha256="0" * 64,
        source="rey_lou.ipynb",
        run=run_info(),
        score=Score(total=0, max_total=20, criteria=[], rubric="rubric.toml"),
        discovered_models=[DiscoveredModel(factory="create_baseline_model", role="baseline", notes=notes)],
    )
    french = render_student(tmp_path, result, FR).read_text(encoding="utf-8")
    assert "callback ModelCheckpoint non reproduit" in french and "générateur Python" in french
    assert "not reproduced" not in french
    english = render_student(tmp_path, result, EN).read_text(encoding="utf-8")
    assert all(note.replace("'", "&#39;") in english for note in notes)
