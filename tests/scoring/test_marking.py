"""Marks an instructor would sign (issue 14): judgement from measured effects and extreme settings,
the student's own code, analysis by its substance, and each mark's confidence.

The unit tests score hand-built results (fast). ``marking`` grades ``tests/fixtures/marking/`` (the
three cases of the issue, with their fair ranges in ``expected.toml``) with real workers on the
``smoke`` profile and checks the harness lands inside every range.
"""

from __future__ import annotations

import functools
import tempfile
import tomllib
from pathlib import Path

import nbformat
import pytest
from conftest import REPO, run_grade
from nbformat.v4 import new_code_cell, new_markdown_cell
from test_rubric import BASE_LAYERS, FACTORIES, criterion, evidence, layer, model, notebook, with_bn

from harness.ingest.read import ingest_path
from harness.results import Factory, Robustness
from harness.scoring.engine import _on_threshold, score
from harness.scoring.readers import code as rubric_code
from harness.scoring.readers import effects as rubric_effects
from harness.scoring.readers import models as rubric_models
from harness.scoring.readers import substance as rubric_substance
from harness.scoring.readers import text as rubric_text
from harness.scoring.readers.models import features
from harness.scoring.rubric import load_rubric
from harness.scoring.rules.modifications import ModificationsParams
from harness.util.i18n import Translator

MARKING = REPO / "tests" / "fixtures" / "marking"
EXPECTED = tomllib.loads((MARKING / "expected.toml").read_text(encoding="utf-8"))
CASES = sorted(k for k, v in EXPECTED.items() if isinstance(v, dict))
FR, EN = Translator("fr"), Translator("en")
LIMITS = ModificationsParams().limits()


def _rubric_params(rule: str) -> dict:
    """The bundled rubric's parameters of a rule (patterns included)."""
    rubric = tomllib.loads((REPO / "rubric" / "default.toml").read_text(encoding="utf-8"))
    return next(c["params"] for c in rubric["criteria"] if c["rule"] == rule)


def _rubric_with(folder: Path, old: str, new: str):
    """The bundled rubric with one parameter line changed (`old` must be in it)."""
    text = (REPO / "rubric" / "default.toml").read_text(encoding="utf-8")
    assert old in text
    (folder / "rubric.toml").write_text(text.replace(old, new), encoding="utf-8")
    return load_rubric(folder / "rubric.toml")


@functools.cache
def _per_step_rubric():
    """The bundled rubric, each step's quality counted in full however few the steps (`quality_by_coverage`
    off): the tests of one step's justification, method and judgement."""
    folder = Path(tempfile.mkdtemp(prefix="per-step-rubric-"))
    text = (REPO / "rubric" / "default.toml").read_text(encoding="utf-8")
    assert "quality_by_coverage = true" in text
    (folder / "rubric.toml").write_text(text.replace("quality_by_coverage = true", "quality_by_coverage = false"))
    return load_rubric(folder / "rubric.toml")


# --------------------------------------------------------------------------- judgement


def _penalised(factor: float):
    """The reference's first convolution with an L2 penalty of `factor`."""
    config = {**BASE_LAYERS[0].config, "kernel_regularizer": {"class_name": "L2", "config": {"l2": factor}}}
    return BASE_LAYERS[0].model_copy(update={"config": config})


@pytest.mark.parametrize(
    ("changed", "key"),
    [
        ({"lr": 1e-6}, "rb_ex_lr"),
        ({"layers": [layer("Conv2D", filters=2, kernel_size=[3, 3]), *BASE_LAYERS[1:]]}, "rb_ex_filters"),
        ({"layers": [*BASE_LAYERS[:-1], layer("Dropout", rate=0.8), BASE_LAYERS[-1]]}, "rb_ex_dropout"),
        ({"declared": {"epochs": 500}}, "rb_ex_epochs"),
        ({"declared": {"batch_size": 1024}}, "rb_ex_batch"),
        ({"layers": [layer("RandomRotation", factor=[-0.5, 0.5]), *BASE_LAYERS]}, "rb_ex_rotation"),
        ({"layers": [layer("RandomFlip", mode="horizontal_and_vertical"), *BASE_LAYERS]}, "rb_ex_flip"),
        ({"augmentation": "ImageDataGenerator(rotation_range=90)"}, "rb_ex_rotation"),
        ({"augmentation": "ImageDataGenerator(rotation_range=10, vertical_flip=True)"}, "rb_ex_flip"),
        ({"layers": [_penalised(0.1), *BASE_LAYERS[1:]]}, "rb_ex_penalty"),
    ],
)
def test_settings_far_outside_what_works_are_harmful(changed, key):
    base = features(model("create_baseline_model", role="baseline"))
    new = features(model("create_improved_model_1", **changed))
    assert [k for k, _ in rubric_effects.extreme_settings(new, base, LIMITS)] == [key]
    # the same setting already in the model it changes is not this step's choice
    assert rubric_effects.extreme_settings(new, new, LIMITS) == []


def test_sensible_settings_are_not_flagged():
    base = features(model("create_baseline_model", role="baseline"))
    new = features(
        model(
            "create_improved_model_1",
            lr=5e-4,
            layers=[*BASE_LAYERS[:-1], layer("Dropout", rate=0.5), BASE_LAYERS[-1]],
            declared={"epochs": 15, "batch_size": 64},
            augmentation="ImageDataGenerator(rotation_range=10, width_shift_range=0.1)",
        )
    )
    assert rubric_effects.extreme_settings(new, base, LIMITS) == []
    sgd = features(model("create_improved_model_1", optimizer="SGD", lr=0.05))
    assert rubric_effects.extreme_settings(sgd, base, LIMITS) == []
    penalised = features(model("create_improved_model_1", layers=[_penalised(1e-3), *BASE_LAYERS[1:]]))
    assert rubric_effects.extreme_settings(penalised, base, LIMITS) == []


def test_a_step_the_student_s_own_run_shows_harmful_costs_judgement_where_this_profile_cannot_tell(tmp_path):
    """On smoke, the harness's numbers are shown, not scored: a step was judged on nothing although the
    student's own printed run (their full training) put it 1.5 points below their baseline, and their text
    called it an improvement (fr_extreme_succes_b21: modifications 4, fair 0.5-1.5)."""
    printed = nbformat.v4.new_output("stream", text="Référence : 98.93 %\nModèle 1 : 97.40 %\nModèle 2 : 99.10 %\n")
    cells = [new_code_cell(FACTORIES), new_code_cell("print(results)", outputs=[printed])]
    cells.append(new_markdown_cell("## Conclusion\n\nChaque modification améliore nettement le modèle."))
    ingest = ingest_path(notebook(tmp_path, cells))
    models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1", lr=5e-4)]
    models.append(model("create_improved_model_2", lr=2e-3))
    result = criterion(score(evidence(ingest, models, profile="smoke"), FR), "modifications")
    harmed = [e.text for e in result.evidence if "votre propre exécution affiche" in e.text]
    assert len(harmed) == 1 and "create_improved_model_1" in harmed[0] and "-1,53 points" in harmed[0]


def test_measured_drops_and_costs_against_the_parent():
    parent = model("create_baseline_model", role="baseline", accuracy=0.98)
    parent.params, parent.train_seconds = 100_000, 10.0
    parent.robustness = Robustness(suite_checksum="x", suite_sha256="x", clean_accuracy=0.98, noise_accuracy=0.97)
    worse = model("create_improved_model_1", accuracy=0.95)
    worse.test_errors = 500
    worse.robustness = Robustness(suite_checksum="x", suite_sha256="x", clean_accuracy=0.95, noise_accuracy=0.90)
    effect = rubric_effects.measure(worse, parent, False, LIMITS)
    assert effect.significant and not effect.helpful
    assert [k for k, _ in effect.harms] == ["rb_harm_accuracy", "rb_harm_noise"]
    costly = model("create_improved_model_1", accuracy=0.98)
    costly.params, costly.train_seconds = 5_000_000, 12.0
    assert [k for k, _ in rubric_effects.measure(costly, parent, False, LIMITS).costs] == ["rb_cost_params"]


def _modifications(tmp_path, text: str, lr: float):
    """A one-model notebook whose improved model sets `lr`, described by `text`."""
    tmp_path.mkdir(exist_ok=True)
    cells = [
        new_code_cell(FACTORIES.split("def create_improved_model_1")[0]),
        new_markdown_cell(text),
        new_code_cell("def create_improved_model_1():\n    return keras.Sequential()"),
    ]
    ingest = ingest_path(notebook(tmp_path, cells))
    models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1", lr=lr)]
    return criterion(score(evidence(ingest, models, rubric=_per_step_rubric()), FR), "modifications")


def test_a_harmful_change_loses_the_judgement_and_most_of_its_justification(tmp_path):
    reason = "Modèle 1 : la perte de validation oscille ; je baisse le taux d'apprentissage à {lr} afin de stabiliser."
    sound = {c.id: c for c in _modifications(tmp_path, reason.format(lr="0.0005"), 5e-4).components}
    extreme = _modifications(tmp_path / "x", reason.format(lr="0.000001"), 1e-6)
    parts = {c.id: c for c in extreme.components}
    assert sound["justification"].points == 1.5 and sound["judgement"].points == 2 * 0.25
    assert parts["judgement"].points == 0 and parts["justification"].points == 0  # presented as a success
    harmful = next(e for e in extreme.evidence if e.kind == "flag" and "1e-06" in e.text)
    assert "create_improved_model_1" in harmful.text and "MNIST" in harmful.text
    noticed = _modifications(tmp_path / "y", reason.format(lr="0.000001") + " La précision chute.", 1e-6)
    assert {c.id: c for c in noticed.components}["justification"].points == pytest.approx(1.5 * 0.25)
    # "worse", "drop" in the reason for the choice are not its harm noticed; with the effect quoted they are
    sold = reason.format(lr="0.000001") + " Adam is known to generalise worse than SGD; the more we drop, the better."
    assert {c.id: c for c in _modifications(tmp_path / "z", sold, 1e-6).components}["justification"].points == 0
    for folder, said in [("w", " The accuracy drops to 21.3 %."), ("v", " Le modèle perd 1,8 point.")]:
        noticed = _modifications(tmp_path / folder, reason.format(lr="0.000001") + said, 1e-6)
        assert {c.id: c for c in noticed.components}["justification"].points == pytest.approx(1.5 * 0.25)


# --------------------------------------------------------------------------- the student's own code


@pytest.mark.parametrize("runs", [4, 20])
def test_full_marks_in_code_quality_need_enough_of_the_student_s_own_code(tmp_path, runs):
    """A short, clean, commented notebook is not code "bien structuré" at its best: under
    `full_marks_min_own_lines` lines of the student's own code, half a point under the maximum; more own
    code of the same quality reaches it."""
    own = "".join(
        f"def experiment_{n}(x_train, y_train):\n"
        f'    """Experiment {n}: train the baseline for {n} epochs and return its history."""\n'
        f"    # one more epoch than the previous experiment, the rest unchanged\n"
        f"    model = create_baseline_model()\n"
        f"    history = model.fit(x_train, y_train, epochs={n}, batch_size=128)\n"
        f"    return {{'model': model, 'epochs': {n}, 'loss': history.history['loss'][-1]}}\n\n\n"
        for n in range(1, runs + 1)
    )
    data = "import numpy as np\n\nx_train, y_train = np.zeros((8, 28, 28, 1)), np.eye(10)[np.arange(8) % 10]\n"
    calls = data + "".join(f"result_{n} = experiment_{n}(x_train, y_train)\n" for n in range(1, runs + 1))
    ingest = ingest_path(notebook(tmp_path, [new_code_cell(FACTORIES), new_code_cell(own), new_code_cell(calls)]))
    models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1")]
    result = criterion(score(evidence(ingest, models), EN), "code_quality")
    assert result.points == (3.5 if runs == 4 else 4.0), [(c.id, c.points) for c in result.components]
    assert any("full marks need" in e.text for e in result.evidence) == (runs == 4)


@pytest.mark.parametrize("commented", [False, True])
def test_with_no_function_of_the_student_s_own_the_comments_are_the_whole_commented_part(tmp_path, commented):
    """Nothing to document is not documentation earned: without own functions, "commenté" is the comments."""
    handout = (REPO / "reference" / "handout.py").read_text(encoding="utf-8")
    own = "".join(
        (f"# run {n}: a Dropout of 0.{n} after the dense layer\n" if commented else "")
        + f"model_{n} = create_baseline_model()\nhistory_{n} = model_{n}.fit(x_train, y_train, epochs={n})\n"
        for n in range(1, 13)
    )
    ingest = ingest_path(notebook(tmp_path, [new_code_cell(handout), new_code_cell(own)]))
    models = [model("create_baseline_model", role="baseline")]
    parts = {c.id: c for c in criterion(score(evidence(ingest, models), EN), "code_quality").components}
    assert parts["comments"].points == (1.0 if commented else 0.0)


def test_the_handout_plus_one_line_earns_no_more_than_functional():
    ingest = ingest_path(MARKING / "handout_dropout.ipynb")
    code = rubric_code.student_code(ingest.code_cells)
    own = rubric_code.own_lines(code)
    lines = code.source.splitlines()
    assert [lines[n - 1].strip() for n in sorted(own)] == ["Dropout(0.3),"]  # the factory's name is the template's
    models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1")]
    result = criterion(score(evidence(ingest, models), EN), "code_quality")
    assert result.points <= 1.5  # the rubric's "runs_points": the floor for "fonctionnel"
    assert any("handout" in e.text and e.kind == "flag" for e in result.evidence)


KERAS_2_CELLS = [
    FACTORIES.replace("return keras.Sequential()", "return keras.Sequential()  # the layers"),
    "from keras.utils import np_utils\ny_train = np_utils.to_categorical(y_train, 10)\n",
    "opt = keras.optimizers.Adam(lr=1e-3)\nmodel = create_improved_model_1()\nmodel.fit_generator(gen, epochs=5)\n",
    "J'ai essayé plusieurs choses ici, voir plus bas.",  # prose typed into a code cell: it does not parse
]


@pytest.mark.parametrize("cost", [0.5, 0.0])
def test_code_written_for_keras_2_loses_part_of_functional_with_each_idiom_shown(tmp_path, cost):
    rubric = _rubric_with(tmp_path, "legacy_cost = 0.5", f"legacy_cost = {cost}")
    models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1")]
    parts = {}
    for name, sources in (("keras3", [KERAS_2_CELLS[0]]), ("keras2", KERAS_2_CELLS)):
        cells = [new_code_cell(source) for source in sources]
        ingest = ingest_path(notebook(tmp_path, cells, f"{name}.ipynb"))
        for lang, t in (("fr", FR), ("en", EN)):
            result = criterion(score(evidence(ingest, models, rubric=rubric), t), "code_quality")
            parts[name, lang] = ({c.id: c for c in result.components}["runs"], result.evidence)
    assert parts["keras3", "en"][0].points == 1.0
    assert parts["keras2", "en"][0].points == 1.0 - cost
    flags = [e.text for e in parts["keras2", "en"][1] if e.kind == "flag"]
    if cost:
        assert any("written for Keras 2: 3 idiom(s)" in f for f in flags)
        assert any(f.startswith("lr → learning_rate") for f in flags) and any("fit_generator" in f for f in flags)
        assert any("écrit pour Keras 2" in e.text for e in parts["keras2", "fr"][1])
    else:
        assert not any("Keras 2" in f for f in flags)


# --------------------------------------------------------------------------- analysis by substance


@pytest.mark.parametrize(
    ("marker", "sentence", "expected"),
    [
        ("error_patterns", "Le modèle confond souvent le 4 et le 9.", True),
        ("error_patterns", "Most mistakes are 7s read as 1s: digit 7 has the highest error rate.", True),
        ("error_patterns", "Le modèle fait encore quelques erreurs sur certains chiffres.", False),
        ("error_patterns", "Errors are the same pairs in both: **4 ↔ 9** (21 → 16) and **3 ↔ 5**.", True),
        ("robustness", "Sur les images bruitées, la précision chute à 91 %.", True),
        ("robustness", "The model is fairly robust to noise.", False),
        ("robustness", "A next step would be data augmentation, to make the model even more robust.", False),
        ("robustness", "With noise, model 2 is clearly more robust.", True),
        ("comparisons", "Le modèle 3 atteint 99,2 % contre 99,0 % pour la référence.", True),
        ("comparisons", "Le meilleur modèle est le modèle 3.", False),
        ("comparisons", "Seul M1 dépasse le bruit (±0,1 pt sur 10 000 images).", True),
        ("comparisons", "Only model 2 beats the baseline's 98.9.", True),
        ("comparisons", "Le modèle 2 utilise 64 filtres et 3 époques.", False),
        ("comparisons", "La référence fait 107 erreurs contre 78 pour le modèle régularisé.", True),
        ("causes", "The validation loss rises after epoch 3 because the model overfits.", True),
        ("limits", "Il faudrait tester l'augmentation de données sur de vrais formulaires.", True),
        ("limits", "Je n'ai fait qu'un seul entraînement par modèle, l'écart n'est donc pas sûr.", True),
        ("limits", "Ensuite viennent 7 → 2 (5 fois) et 9 → 7.", False),  # "ensuite": then, not a next step
        ("limits", "**Limit**: B trains 12 epochs vs 5, so its gain mixes augmentation and longer training.", True),
        ("limits", "One limit of this comparison is the single seed.", True),
        ("limits", "Dropout limits overfitting in the dense layer.", False),  # the verb, not a limit of the work
        ("causes", "Dropout fixed the 3/5 confusions (14 -> 5), consistent with it curbing memorised strokes.", True),
        ("causes", "Les confusions 3/5 baissent, ce qui confirme que le dropout limite la mémorisation.", True),
    ],
)
def test_substance_markers_in_french_and_english(marker, sentence, expected):
    markers = _rubric_params("analysis")["markers"]
    assert rubric_substance.shows(markers[marker], rubric_text.plain(sentence)) is expected


def test_a_heading_names_a_topic_and_shows_no_substance():
    """ "### 6.3 Robustesse" names a section: its "6.3" is no number of the analysis, and the heading
    discusses no robustness, as "### 8.4 Limites" states no limit; a sentence under them still does."""
    markers = {name: _rubric_params("analysis")["markers"][name] for name in ("robustness", "limits")}
    heading = rubric_text.Passage("### 6.3 Robustesse", 19, 23)
    limits = rubric_text.Passage("### 8.4 Limites", 19, 30)
    assert rubric_substance.earned(markers, [heading, limits], lambda p: True) == {}
    said = rubric_text.Passage("Sous rotation, la précision tombe à 96,1 % pour la référence.", 19, 24)
    assert rubric_substance.earned(markers, [heading, said], lambda p: True)["robustness"].line == 24


def test_a_recap_of_the_theory_is_not_the_analysis(tmp_path):
    """ "## 2. Rappels théoriques" explains overfitting in general: a textbook cause, about no model of the
    work; the same sentence under "## Analyse" proposes a cause."""
    theory = "Le surapprentissage apparaît parce que le réseau mémorise le bruit des images d'entraînement."
    found = {}
    for heading in ("2. Rappels théoriques", "6. Analyse"):
        cells = [new_code_cell(FACTORIES), new_markdown_cell(f"## {heading}\n\n{theory}")]
        (tmp_path / heading[0]).mkdir()
        ingest = ingest_path(notebook(tmp_path / heading[0], cells))
        result = criterion(score(evidence(ingest, [model("create_baseline_model", role="baseline")]), FR), "analysis")
        found[heading] = any("Le surapprentissage apparaît" in e.text for e in result.evidence)
    assert found == {"2. Rappels théoriques": False, "6. Analyse": True}


def test_a_report_a_module_writes_from_its_constants_is_its_text():
    """``report.md`` written from string constants: their lines are the module's text, at their lines; a
    short label and a printed sentence (read once, by the print rule) are not repeated."""
    source = (
        'TITLE = "Results"\n'
        'ANALYSIS = """## Error analysis\n'
        'The best model still confuses 4 and 9 (12 times) and 7 and 2, mostly badly written digits.\n"""\n'
        'print("The report is written to report.md for the company.")\n'
    )
    found = rubric_text.report_strings(source)
    assert found == [
        (5, "The report is written to report.md for the company."),
        (2, "## Error analysis"),
        (3, "The best model still confuses 4 and 9 (12 times) and 7 and 2, mostly badly written digits."),
    ]


def test_a_module_s_printed_sentences_count_as_its_report():
    source = 'print(f"Le modèle 2 confond le 4 et le 9 : {rate:.1f} %")\nprint("ok")\n'
    assert rubric_text.report_strings(source) == [(1, "Le modèle 2 confond le 4 et le 9 : %")]


# --------------------------------------------------------------------------- confidence


def test_confidence_is_low_for_module_text_in_another_language():
    ingest = ingest_path(REPO / "tests" / "fixtures" / "labelled_rubric" / "english_module.py")
    models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1")]
    result = score(evidence(ingest, models), FR)
    analysis = next(c for c in result.criteria if c.id == "analysis")
    assert analysis.confidence == "low"
    assert any("anglais" in r for r in analysis.confidence_reasons)
    assert any(".py" in r for r in analysis.confidence_reasons)
    code = next(c for c in result.criteria if c.id == "code_quality")
    assert code.confidence in ("high", "low") and all(isinstance(r, str) for r in code.confidence_reasons)


def test_a_mark_on_a_rounding_threshold_is_low_confidence_until_overridden(tmp_path):
    rubric = load_rubric()
    assert _on_threshold(1.27, 3, rubric, EN) and not _on_threshold(1.0, 3, rubric, EN)
    assert not _on_threshold(3, 3, rubric, EN)  # full marks: no step above
    overrides = tmp_path / "overrides.toml"
    overrides.write_text(
        '[[override]]\nstudent = "english_module"\ncriterion = "analysis"\npoints = 2\n', encoding="utf-8"
    )
    ingest = ingest_path(REPO / "tests" / "fixtures" / "labelled_rubric" / "english_module.py")
    models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1")]
    graded = score(evidence(ingest, models, rubric=load_rubric(overrides=overrides)), FR)
    analysis = next(c for c in graded.criteria if c.id == "analysis")
    assert analysis.points == 2 and analysis.confidence == "high" and analysis.confidence_reasons == []


# --------------------------------------------------------------------------- the three cases, graded


@pytest.fixture(scope="session")
def marking(tmp_path_factory, mnist_npz, protocol_path, stage_cache, suite_path):
    paths = [MARKING / EXPECTED[case]["file"] for case in CASES]
    return run_grade(
        paths,
        tmp_path_factory.mktemp("marking"),
        protocol=protocol_path,
        data=mnist_npz,
        cache=stage_cache,
        profile=EXPECTED["profile"],
        suite=suite_path,
        reports=False,  # the marks are read from result.json
    )


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_the_issue_s_cases_land_in_their_fair_ranges(marking, case):
    result = marking.result(case)
    points = {c.id: c.points for c in result.score.criteria}
    ranged = {k: v for k, v in EXPECTED[case].items() if isinstance(v, list)}  # not `file`, `summary`
    assert ranged and set(ranged) <= set(points), (case, ranged)
    for criterion_id, (low, high) in ranged.items():
        assert low <= points[criterion_id] <= high, (case, criterion_id, points[criterion_id], (low, high))
    for c in result.score.criteria:
        assert c.confidence in ("high", "low") and (c.confidence == "low") == bool(c.confidence_reasons)


# --------------------------------------------------------------------------- explored, judged, grounded


def _steps(tmp_path, models):
    """Modifications of a notebook with the template's factories and no text, for `models`."""
    tmp_path.mkdir(exist_ok=True)
    ingest = ingest_path(notebook(tmp_path, [new_code_cell(FACTORIES)]))
    result = criterion(
        score(
            evidence(ingest, [model("create_baseline_model", role="baseline"), *models], rubric=_per_step_rubric()), EN
        ),
        "modifications",
    )
    return result, {c.id: c for c in result.components}


def test_a_category_explored_only_by_a_harmful_or_tangled_step_counts_half(tmp_path):
    dropout = [*BASE_LAYERS[:-1], layer("Dropout", rate=0.5), BASE_LAYERS[-1]]
    sound = [model("create_improved_model_1", layers=dropout), model("create_improved_model_2", lr=5e-4)]
    assert _steps(tmp_path, sound)[1]["categories"].points == pytest.approx(2 * 2 / 3, abs=1e-3)
    # the same two categories, the learning rate far out of range: explored without a choice
    harmful = [model("create_improved_model_1", layers=dropout), model("create_improved_model_2", lr=1e-6)]
    result, parts = _steps(tmp_path / "h", harmful)
    assert parts["categories"].points == pytest.approx(2 * 1.5 / 3, abs=1e-3)
    assert any(
        e.kind == "flag" and "hyper-parameters: explored only by harmful" in e.text and "0.50" in e.text
        for e in result.evidence
    )
    # both in one model: neither is a choice the measurements can judge
    tangled = [model("create_improved_model_1", layers=dropout, lr=5e-4)]
    assert _steps(tmp_path / "t", tangled)[1]["categories"].points == pytest.approx(2 * 1 / 3, abs=1e-3)


def test_a_step_changing_several_categories_shares_its_judgement_among_them(tmp_path):
    dropout = [*BASE_LAYERS[:-1], layer("Dropout", rate=0.5), BASE_LAYERS[-1]]
    one = _steps(tmp_path, [model("create_improved_model_1", layers=dropout)])[1]
    assert one["judgement"].points == pytest.approx(2 * 0.25, abs=1e-3)  # neutral, not discussed
    result, parts = _steps(tmp_path / "t", [model("create_improved_model_1", layers=dropout, optimizer="SGD", lr=0.05)])
    assert parts["judgement"].points == pytest.approx(2 * 0.25 / 2, abs=1e-3)
    assert any(e.kind == "flag" and "2 changes measured together" in e.text for e in result.evidence)


def test_filters_and_kernel_size_changed_by_one_model_are_two_changes_at_once(tmp_path):
    """The assignment lists "modifier le nombre de filtres" and "changer la taille des noyaux" apart: one model
    changing both is not one change at a time, though both are its architecture; either alone is."""
    wide = [
        layer("Conv2D", filters=64, kernel_size=[3, 3], activation="relu", padding="valid"),
        BASE_LAYERS[1],
        layer("Conv2D", filters=128, kernel_size=[3, 3], activation="relu", padding="valid"),
        *BASE_LAYERS[3:],
    ]
    alone = _steps(tmp_path, [model("create_improved_model_1", layers=wide)])[1]
    assert alone["method"].points == 0.5
    both = [layer(x.class_name, **{**x.config, "kernel_size": [5, 5]}) if x.class_name == "Conv2D" else x for x in wide]
    result, parts = _steps(tmp_path / "b", [model("create_improved_model_1", layers=both)])
    assert parts["method"].points == 0 and parts["judgement"].points == pytest.approx(alone["judgement"].points / 2)
    assert any(e.kind == "flag" and "number of filters, kernel size" in e.text for e in result.evidence)


def test_fewer_changes_than_asked_earn_their_care_in_proportion(tmp_path):
    """One well-chosen change is a third of the work the grid asks for: its justification, method and
    judgement count a third; three changes count in full."""
    dropout = [*BASE_LAYERS[:-1], layer("Dropout", rate=0.5), BASE_LAYERS[-1]]
    ingest = ingest_path(notebook(tmp_path, [new_code_cell(FACTORIES)]))
    baseline = model("create_baseline_model", role="baseline")

    def parts(models, rubric=None):
        found = criterion(score(evidence(ingest, [baseline, *models], rubric=rubric), EN), "modifications")
        return found, {c.id: c.points for c in found.components}

    one = [model("create_improved_model_1", layers=dropout)]
    result, scaled = parts(one)
    full = parts(one, _per_step_rubric())[1]
    assert scaled["method"] == pytest.approx(full["method"] / 3, abs=1e-3) and full["method"] == 0.5
    assert (
        scaled["judgement"] == pytest.approx(full["judgement"] / 3, abs=1e-3)
        and scaled["categories"] == full["categories"]
    )
    assert any(e.kind == "flag" and "only 1 of the 3 categories" in e.text for e in result.evidence)
    three = [
        *one,
        model("create_improved_model_2", lr=5e-4),
        model("create_improved_model_3", declared={"batch_size": 64}),
    ]
    assert parts(three)[1]["method"] == 0.5
    # two categories changed by one model (batch 32 and one epoch more) explore one category's worth, as the
    # categories part counts them: their care counts a third, not two thirds
    tangled = [model("create_improved_model_1", declared={"batch_size": 32, "epochs": 6})]
    result, scaled = parts(tangled)
    full = parts(tangled, _per_step_rubric())[1]
    assert scaled["categories"] == pytest.approx(2 / 3, abs=1e-3)
    assert scaled["judgement"] == pytest.approx(full["judgement"] / 3, abs=1e-3) and full["judgement"] > 0
    # ... while four categories changed by one model cover what is asked: the tangle costs elsewhere
    four = [model("create_improved_model_1", layers=dropout, lr=5e-4, declared={"batch_size": 64, "epochs": 8})]
    assert not any("categories asked for" in e.text for e in parts(four)[0].evidence)


def _analysis(tmp_path, conclusion: str, errors: str = "Le modèle fait peu d'erreurs."):
    tmp_path.mkdir(exist_ok=True)
    cells = [
        new_code_cell(FACTORIES),
        new_markdown_cell("## Analyse des erreurs\n\n" + errors),
        new_markdown_cell("## Conclusion\n\n" + conclusion),
    ]
    ingest = ingest_path(notebook(tmp_path, cells))
    models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1")]
    result = criterion(score(evidence(ingest, models), FR), "analysis")
    return result, {c.id: c for c in result.components}


def test_a_results_section_without_a_number_is_incomplete(tmp_path):
    def documentation(folder, results):
        cells = [new_code_cell(FACTORIES), new_markdown_cell("## Results\n\n" + results)]
        ingest = ingest_path(notebook(tmp_path / folder, cells))
        models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1")]
        return criterion(score(evidence(ingest, models), EN), "documentation")

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    vague = documentation(
        "a", "The comparison table shows that every model reaches a good accuracy in a reasonable time."
    )
    # a number that points at a figure, a table or a model measures nothing
    pointing = documentation("c", "As we can see in Figure 2, model 3 converges faster (see Table 1 and cell 12).")
    assert any(e.kind == "missing" and "results without a number" in e.text for e in pointing.evidence)
    said = documentation("b", "Model 1 reaches 99.1 % against 98.9 % for the baseline, in about the same time.")
    assert any(e.kind == "missing" and "results without a number" in e.text for e in vague.evidence)
    assert not any("results without a number" in e.text for e in said.evidence)
    # its heading still counts: half of its seventh of the criterion
    assert vague.components[0].points == pytest.approx(0.5 / 7, abs=0.01)
    assert said.components[0].points > vague.components[0].points


def test_robustness_discussed_without_a_number_grounds_nothing(tmp_path):
    generic = "Le modèle 1 est meilleur parce qu'il est plus profond. Il faudrait tester plus d'époques."
    hypothetical = "Un modèle robuste devrait supporter le bruit sans chute de précision."
    parts = _analysis(tmp_path, generic, errors=hypothetical)[1]
    assert parts["marker_robustness"].points == 0.125  # robustness is discussed, but observed nothing: half ...
    assert parts["marker_causes"].points == pytest.approx(0.25, abs=1e-3)  # ... but nothing observed is explained
    observed = "Sur les images bruitées, la précision chute de 2 points."
    assert _analysis(tmp_path / "o", generic, errors=observed)[1]["marker_causes"].points == 0.5


@pytest.mark.parametrize(
    ("sentence", "grounds"),
    [
        ("Le modèle reste robuste face au bruit, ce qui est un point positif.", False),
        ("Robustness to noise is a key point of view for the company.", False),
        ("Sous rotation, il perd un point de plus que la référence.", True),
        ("On noise it loses half a point.", True),
    ],
)
def test_a_point_is_a_measure_not_a_figure_of_speech(sentence, grounds):
    evidence = _rubric_params("analysis")["grounding_evidence"]
    assert (rubric_text.matches_any(evidence, rubric_text.plain(sentence)) is not None) is grounds


def test_a_module_s_function_docstrings_describe_the_code_and_analyse_nothing(tmp_path):
    source = (
        '"""Rapport.\n\nAnalyse des erreurs\n-------------------\nLe modèle confond encore des chiffres."""\n'
        + FACTORIES
        + '\n\ndef robustesse(model):\n    """Évalue le modèle sur des images bruitées (sigma 0.1) et tournées (±15°)."""\n'
        "    return model\n"
    )
    (tmp_path / "student.py").write_text(source, encoding="utf-8")
    ingest = ingest_path(tmp_path / "student.py")
    docstring = source.splitlines().index(
        '    """Évalue le modèle sur des images bruitées (sigma 0.1) et tournées (±15°)."""'
    )
    assert rubric_text.description_lines(ingest) == {(None, docstring + 1)}
    models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1")]
    parts = {c.id: c for c in criterion(score(evidence(ingest, models), FR), "analysis").components}
    assert parts["marker_robustness"].points == 0  # the docstring says what the function does, not what it found


def test_causes_and_limits_explaining_nothing_observed_earn_half(tmp_path):
    generic = "Le modèle 1 est meilleur parce qu'il est plus profond. Il faudrait tester plus d'époques."
    result, parts = _analysis(tmp_path, generic)
    assert parts["marker_causes"].points == pytest.approx(0.25, abs=1e-3) and parts[
        "marker_limits"
    ].points == pytest.approx(0.125, abs=1e-3)
    assert any(e.kind == "flag" and "aucune phrase de l'analyse n'observe" in e.text for e in result.evidence)
    halved = parts["section_conclusion"].points
    assert any(e.kind == "flag" and "leurs mots comptent pour 0,50" in e.text for e in result.evidence)
    # a pattern named without a count observes nothing either: half, and it grounds nothing
    assert (
        _analysis(tmp_path / "n", generic, errors="Il confond encore le 4 et le 9.")[1]["marker_error_patterns"].points
        == 0.25
    )
    parts = _analysis(tmp_path / "o", generic, errors="Il confond encore le 4 et le 9 (12 fois).")[1]
    assert parts["marker_error_patterns"].points == 0.5
    assert parts["section_conclusion"].points == pytest.approx(2 * halved, abs=2e-3) and halved > 0
    assert parts["marker_causes"].points == 0.5 and parts["marker_limits"].points == 0.25


def test_every_analysis_section_written_earns_a_third_however_generic(tmp_path):
    """The grid asks for the error analysis, the robustness test and the conclusion: written, even
    generically, they earn a third of the criterion (issue 14's generic_analysis, fair 1-2, got 0.5 once the
    claim of a text that observes nothing counted half); two of them do not, nor a text its numbers discredit."""
    errors = (
        "Le modèle fait encore quelques erreurs sur certains chiffres. Les erreurs sont peu nombreuses et le modèle "
        "est globalement bon, certaines images sont difficiles à lire."
    )
    robustness = (
        "## Robustesse\n\nLe modèle est assez robuste face aux perturbations. Les images bruitées et tournées sont "
        "encore bien reconnues dans l'ensemble, ce qui est encourageant."
    )
    conclusion = (
        "Les modifications ont amélioré le modèle. Il est performant et robuste, et il pourra être utilisé par "
        "l'entreprise pour traiter ses formulaires."
    )

    def analysis(folder, *extra, conclusion=conclusion):
        (tmp_path / folder).mkdir()
        cells = [new_code_cell(FACTORIES), new_markdown_cell("## Analyse des erreurs\n\n" + errors)]
        cells += [new_markdown_cell(text) for text in extra] + [new_markdown_cell("## Conclusion\n\n" + conclusion)]
        ingest = ingest_path(notebook(tmp_path / folder, cells))
        models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1")]
        return criterion(score(evidence(ingest, models), FR), "analysis")

    three = analysis("three", robustness)
    assert three.points == 1 and any("rédigée" in e.text and "0,33" in e.text for e in three.evidence)
    assert analysis("two").points < 1  # no robustness section: the floor does not hold
    inflated = analysis("inflated", robustness, conclusion=conclusion + " Il atteint 99,95 % de précision.")
    assert inflated.points < 1  # an accuracy no such model reaches: its numbers are distrusted


def test_a_title_whose_words_describe_the_changes_does_not_keep_the_analysis_under_it_out(tmp_path):
    """ "## MNIST mini project" over a sentence listing the changes was found, by its content, to be the
    improvements section, and it ran to the end: every observation below it was a description
    (en_colab_keras2_messy_b19, analysis 0)."""
    title = (
        "## MNIST mini project\n\nBaseline from the handout then 3 changes: dropout, more filters, data augmentation."
    )
    observed = "Model 2 loses only 0.5 % under rotation where the baseline loses 2.1 %, since it saw rotated digits."
    cells = [new_code_cell(FACTORIES), new_markdown_cell(title), new_markdown_cell(observed)]
    ingest = ingest_path(notebook(tmp_path, cells))
    models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1")]
    result = criterion(score(evidence(ingest, models), EN), "analysis")
    parts = {c.id: c.points for c in result.components}
    assert parts["marker_robustness"] == 0.25 and parts["marker_causes"] == 0.5


def test_a_list_s_label_names_a_pattern_and_its_items_observe_it(tmp_path):
    """The first sentence that shows a marker used to earn it: a label ("Confusions dominantes (les 3
    modèles) :") that observes nothing hid the counted item under it, and the analysis counted as ungrounded."""
    errors = (
        "Confusions dominantes (mêmes paires pour les 3 modèles) :\n- 4 <-> 9 : 16 erreurs sur 107 pour la référence."
    )
    result, parts = _analysis(tmp_path, "Je recommande le modèle 1.", errors=errors)
    assert parts["marker_error_patterns"].points == 0.5
    assert any(e.kind == "found" and "16 erreurs sur 107" in e.text for e in result.evidence)


@pytest.mark.parametrize(
    "passage",
    [
        "Adam lr 3e-4: the validation loss oscillates at 1e-3.",
        "Taux d'apprentissage 0,0003 : la perte de validation stagne à 1e-3.",
        "Batches of 32: four times as many updates per epoch, to get further in the same 5 epochs.",
        "Random rotations up to 10°, to target the rotation test.",
        "M3 — rotations ±8° : cible directement la perte de 3 pts sous rotation.",
        # a purpose clause with "pour que", a consequence given as the reason
        "On ajoute une couche de convolution, pour que le réseau extraie des motifs plus complexes.",
        "La Batch Normalization normalise les activations. Cela rend l'entraînement plus stable.",
        "BatchNorm makes training faster and less sensitive to the initial weights.",
        # what a listed change is for, after a double dash or an arrow
        "* wide : 64/128 filters instead of 32/64 -- more stroke detectors.",
        "B. BatchNormalization apres chaque convolution -> stabilise les activations.",
    ],
)
def test_a_symptom_a_purpose_a_target_or_a_measured_quantity_is_a_reason(passage):
    params = _rubric_params("modifications")
    assert rubric_text.matches_any(params["reasons"], rubric_text.plain(passage))


@pytest.mark.parametrize(
    "passage", ["Model 1 — batch normalisation", "Modèle 3 – Dropout 0.5", "(conv -> BN -> relu)", "filtres 32 -> 64"]
)
def test_a_title_s_dash_or_a_layer_chain_is_not_a_reason(passage):
    params = _rubric_params("modifications")
    assert not rubric_text.matches_any(params["reasons"], rubric_text.plain(passage))


def test_three_modifications_in_two_categories_explore_more_than_two(tmp_path):
    """Dropout, then BatchNormalization, then EarlyStopping with more epochs, each alone: three of the
    assignment's modifications in two categories; the second regularisation technique counts
    `technique_share` of a category. The same Dropout twice at other rates is one technique."""
    factories = FACTORIES + "\ndef create_improved_model_3():\n    return keras.Sequential()\n"
    ingest = ingest_path(notebook(tmp_path, [new_code_cell(factories)]))
    dropout = [*BASE_LAYERS[:-1], layer("Dropout", rate=0.25), BASE_LAYERS[-1]]
    norm = [*BASE_LAYERS[:1], layer("BatchNormalization"), *BASE_LAYERS[1:]]
    models = [
        model("create_baseline_model", role="baseline"),
        model("create_improved_model_1", layers=dropout),
        model("create_improved_model_2", layers=norm),
        model("create_improved_model_3", declared={"epochs": 12}, callbacks=("EarlyStopping",)),
    ]
    share = _rubric_params("modifications")["technique_share"]
    assert share > 0
    result = criterion(score(evidence(ingest, models), EN), "modifications")
    categories = {c.id: c for c in result.components}["categories"]
    assert categories.points == pytest.approx(2 * (2 + share) / 3, abs=1e-3)
    assert any("BatchNormalization, Dropout, number of epochs" in e.text for e in result.evidence)
    twice = [
        *models[:2],
        model("create_improved_model_2", layers=[*dropout[:-1], layer("Dropout", rate=0.5), dropout[-1]]),
    ]
    result = criterion(score(evidence(ingest, twice + models[3:]), EN), "modifications")
    assert {c.id: c for c in result.components}["categories"].points == pytest.approx(2 * 2 / 3, abs=1e-3)
    # one model's redesign (wider filters, 5x5 kernels, one Dense less) is one architecture technique
    redesigned = [
        layer("Conv2D", filters=64, kernel_size=[5, 5], activation="relu", padding="valid"),
        *BASE_LAYERS[1:2],
        layer("Conv2D", filters=128, kernel_size=[5, 5], activation="relu", padding="valid"),
        *BASE_LAYERS[3:5],
        BASE_LAYERS[-1],
    ]
    one = [models[0], model("create_improved_model_1", layers=redesigned), models[2]]
    result = criterion(score(evidence(ingest, one), EN), "modifications")
    # ... changing the filters and the kernel size together, a tangle (separate_modifications): half a category
    unsound = _rubric_params("modifications")["unsound_category_share"]
    assert {c.id: c for c in result.components}["categories"].points == pytest.approx(2 * (1 + unsound) / 3, abs=1e-3)


def test_a_change_is_justified_by_a_passage_anywhere_that_quotes_its_value(tmp_path):
    report = "# Report\n\n1. Adam lr 3e-4: the validation loss oscillates at 1e-3."
    cells = [new_code_cell(FACTORIES), new_code_cell("history = None"), new_markdown_cell(report)]
    ingest = ingest_path(notebook(tmp_path, cells))
    models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1", lr=3e-4)]
    result = criterion(score(evidence(ingest, models, rubric=_per_step_rubric()), EN), "modifications")
    assert {c.id: c for c in result.components}["justification"].points == 1.5
    assert any("quotes the chosen value" in e.text for e in result.evidence)
    # the same passage does not justify a change to another value
    other = [models[0], model("create_improved_model_1", lr=5e-4)]
    result = criterion(score(evidence(ingest, other, rubric=_per_step_rubric()), EN), "modifications")
    assert {c.id: c for c in result.components}["justification"].points == 0


def test_an_accuracy_no_such_model_reaches_earns_no_marker_and_no_claim(tmp_path):
    assert rubric_text.implausible("Le modèle 3 garde 99,8 % sur les images tournées.", 0.997) == "99,8 %"
    assert rubric_text.implausible("Le modèle 3 atteint 99,4 % ; 100 % des 7 sont lus.", 0.997) is None
    # a class's recall, or the training set's accuracy, is not a test accuracy
    per_class = "classification_report du modèle final : rappel minimal 99,21 % (classe 9), maximal 99,91 % (classe 1)"
    assert rubric_text.implausible(per_class, 0.997) is None
    assert rubric_text.implausible("99,95 % on the training set but 99,1 % on the test set", 0.997) is None
    honest = "Le modèle 1 atteint 99,2 % contre 99,0 % pour la référence. Il faudrait tester plus d'époques."
    parts = _analysis(tmp_path, honest)[1]
    assert parts["marker_comparisons"].points == 0.25 and parts["claims"].points > 0
    assert parts["marker_limits"].points == 0.25
    result, parts = _analysis(tmp_path / "x", honest.replace("99,2 %", "99,9 %"))
    assert parts["marker_comparisons"].points == 0 and parts["claims"].points == 0
    # what such a text says it observed grounds nothing: its other markers earn a quarter (distrusted_share)
    assert parts["marker_limits"].points == pytest.approx(0.0625, abs=1e-3)
    assert any(e.kind == "flag" and "99,9 %" in e.text and "99,7" in e.text for e in result.evidence)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        # what a confidence threshold keeps, said far from the number in its sentence: not a test accuracy
        (
            "Sending the 0.71 % least-confident images to a human raises the accuracy on the automatically "
            "processed part to 99.84 %.",
            None,
        ),
        # the same threshold in the sentence before does not excuse a test accuracy of 99.84 %
        ("Low-confidence digits go to a human. The final model reaches 99.84 % on the test set.", "99.84 %"),
    ],
)
def test_a_percentage_is_read_with_what_its_own_sentence_says_it_is_of(text, found):
    assert rubric_text.implausible(text, 0.997) == found


@pytest.mark.parametrize(
    ("sentence", "found"),
    [
        (
            "Le modèle 3 ne fait plus que 10 erreurs sur 10 000, toutes sur des chiffres illisibles.",
            "10 erreurs sur 10 000",
        ),
        ("Model 3 makes only 20 errors, mostly 4 vs 9.", "only 20 errors"),
        ("v3 makes only about 25 errors.", "only about 25 errors"),
        ("25 errors out of 10,000 test images.", "25 errors out of 10,000"),
        ("M1 : 80 erreurs dont 26 entre 4 et 9.", None),  # a plausible count, and a part of it
        ("Only 12 errors on the 4/9 pair.", None),  # a part of the errors, not all of them
        ("Il ne reste que 3 erreurs sur 50 images tournées.", None),
        ("Only 11 errors are fixed by both, which is why their gains add up.", None),  # what two changes share
        ("Seulement 9 erreurs en commun entre M1 et M3.", None),
    ],
)
def test_a_count_of_errors_no_such_model_reaches_is_implausible(sentence, found):
    """A count of errors is an accuracy: no more than 30 of MNIST's 10,000 test images is beyond 99.7 %."""
    assert rubric_text.implausible(sentence, 0.997) == found


@pytest.mark.parametrize(
    ("printed", "contradicted"),
    [
        ("Modèle de référence 98.87\nModèle 1 97.38\nModèle 2 98.36\n", "le modèle de référence"),  # below the baseline
        ("Modèle de référence 98.87\nModèle 1 99.20\nModèle 2 98.36\n", "create_improved_model_1"),
        ("Modèle de référence 98.87\nModèle 1 98.80\nModèle 2 99.10\n", None),
    ],
)
def test_a_best_model_the_student_s_own_run_shows_worse_is_a_conclusion_the_work_contradicts(
    tmp_path, printed, contradicted
):
    cells = [
        new_code_cell(FACTORIES + "\ndef create_improved_model_2():\n    return keras.Sequential()\n"),
        new_code_cell("print(results)", outputs=[nbformat.v4.new_output("stream", text=printed)]),
        new_markdown_cell("## Conclusion\n\nLe meilleur modèle est donc le modèle 2 : c'est une vraie amélioration."),
    ]
    ingest = ingest_path(notebook(tmp_path, cells))
    models = [model("create_baseline_model", role="baseline")] + [model(f"create_improved_model_{n}") for n in (1, 2)]
    result = criterion(score(evidence(ingest, models), FR), "analysis")
    flags = [e.text for e in result.evidence if e.kind == "flag" and "comme le meilleur" in e.text]
    assert (flags[0].split("affiche ")[1].split(" à ")[0] if flags else None) == contradicted
    assert ({c.id: c for c in result.components}["claims"].points == 0) == bool(contradicted)


@pytest.mark.parametrize("quoted, discussed", [("99,16 %", True), ("99,70 %", False)])
def test_a_text_its_own_run_contradicts_discusses_no_effect(tmp_path, quoted, discussed):
    """A report whose numbers its own printed run contradicts (99,70 % written, 99.16 printed) quotes no
    effect it can be held to: none of its passages discusses a step's measured effect, not only the one
    holding the contradicted number."""
    cells = [
        new_code_cell(FACTORIES),
        new_code_cell(
            "print(results)", outputs=[nbformat.v4.new_output("stream", text="Modèle 1 99.16\nModèle 2 99.08\n")]
        ),
        new_markdown_cell(
            f"## Résultats\n\nLe modèle 1 (BatchNorm) fait {quoted}.\n\n"
            "Le modèle 2 (dropout) fait 99,08 %, mieux que la référence à 98,90 %."
        ),
    ]
    dropout = [*BASE_LAYERS[:-1], layer("Dropout", rate=0.3), BASE_LAYERS[-1]]
    models = [
        model("create_baseline_model", role="baseline", accuracy=0.989),
        model("create_improved_model_1", layers=with_bn(BASE_LAYERS), accuracy=0.9916),
        model("create_improved_model_2", layers=dropout, accuracy=0.9908),
    ]
    result = criterion(score(evidence(ingest_path(notebook(tmp_path, cells)), models), FR), "modifications")
    said = [e.text for e in result.evidence if e.text.startswith("create_improved_model_2 : effet discuté")]
    assert bool(said) == discussed


def test_a_table_s_number_is_read_with_its_column_s_header():
    rows = ["| config | test acc | train acc (last epoch) |", "|---|---|---|", "| batch_64 | 99.05 % | 99.71 % |"]
    passages = [rubric_text.Passage(row, 3, n) for n, row in enumerate(rows, 1)]
    headed = rubric_text.headed(passages)
    assert headed[2] == "| config: batch_64 | test acc: 99.05 % | train acc (last epoch): 99.71 % |"
    assert [rubric_text.implausible(text, 0.997) for text in headed] == [None, None, None]  # a training accuracy
    swapped = ["| train acc | test acc |", "|---|---|", "| 99.1 % | 99.8 % |"]
    headed = rubric_text.headed([rubric_text.Passage(row, 3, n) for n, row in enumerate(swapped, 1)])
    assert rubric_text.implausible(headed[2], 0.997) == "99.8 %"  # the test column, read alone


def _printed_then_said(tmp_path, sentence: str):
    """A notebook whose run printed 99.11 % for model 1 and 98.93 % for the reference, then says `sentence`
    under "Analyse": its ingest and its passages."""
    printed = nbformat.v4.new_output("stream", text="modèle 1 99.11\nréférence 98.93\n")
    cells = [
        new_code_cell(FACTORIES),
        new_code_cell("print(results)", outputs=[printed]),
        new_markdown_cell("## Analyse\n\n" + sentence),
    ]
    ingest = ingest_path(notebook(tmp_path, cells))
    return ingest, rubric_text.passages(rubric_text.prose_lines(ingest))


@pytest.mark.parametrize(
    "sentence",
    [
        "M1 converge plus vite (98,5 % de validation dès l'époque 1 contre 97,7 % pour la référence).",
        "M1 (BatchNorm seule) est le plus fragile (84,7 %, −14 pt) face au bruit fort.",
        "Model 1 reaches 99.8 % training accuracy.",
    ],
)
def test_a_validation_training_or_robustness_figure_does_not_contradict_the_printed_test_accuracy(tmp_path, sentence):
    ingest, passages = _printed_then_said(tmp_path, sentence)
    assert rubric_text.self_contradictions(ingest, passages, 0.5) == []
    said = rubric_text.Passage("Le modèle 1 atteint 97,0 % sur le test.", 3, 1)
    assert rubric_text.self_contradictions(ingest, [said], 0.5)  # the test accuracy itself still counts


@pytest.mark.parametrize(
    "sentence",
    [
        "Le modèle 1 passe de **98,93 %** à **99,11 %** (+0,18 point).",
        "Le modèle 1 atteint **99,11 %** sur le test (contre 98,93 %).",
        "Model 1 reaches 99.11 % on the test set (vs 98.93 % for the reference).",
    ],
)
def test_the_accuracy_a_sentence_gives_a_model_is_its_own_not_the_one_it_is_set_against(tmp_path, sentence):
    """ "from 98.93 % to 99.11 %" in bold, "99.11 % on the test (contre 98.93 %)": the model's accuracy is
    99.11 %, as its own run printed; reading the other model's number contradicted the report
    (fr_quatre_changements_fonctionnel_b22, its whole analysis distrusted)."""
    ingest, passages = _printed_then_said(tmp_path, sentence)
    quoted = rubric_text.quoted_accuracies(passages, ingest.factories, ingest.own_names)
    assert [(q.model, q.accuracy) for q in quoted] == [("create_improved_model_1", pytest.approx(0.9911))]
    assert rubric_text.self_contradictions(ingest, passages, 0.5) == []


def test_a_model_s_line_under_the_robustness_heading_does_not_contradict_its_test_accuracy(tmp_path):
    """ "Modèle 1 : 97,02 % (−2,31 pp)" listed under "## 6. Robustesse / Rotation ±15°" is its accuracy on
    rotated digits: it was read as the test accuracy its run printed (99,33 %), and the whole analysis was
    distrusted (fr_tfdata_config_b21, analysis 0.5, fair 2.5-3)."""
    printed = nbformat.v4.new_output("stream", text="modèle 1 : test = 99.33 %\nréférence : test = 98.93 %\n")
    robustness = "## 6. Robustesse\n\n### Rotation ±15°\n\n- modèle 1 : 97,02 % (−2,31 pp) ;\n- référence : 95,1 %"
    cells = [new_code_cell(FACTORIES), new_code_cell("print(results)", outputs=[printed])]
    cells += [new_markdown_cell("## 5. Résultats\n\nLe modèle 1 atteint 99,33 %."), new_markdown_cell(robustness)]
    ingest = ingest_path(notebook(tmp_path, cells))
    models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1")]
    ev = evidence(ingest, models)
    assert ev.contradicted(0.5) == []
    assert len(ev.clean_passages) < len(ev.passages)


def test_printed_robustness_and_per_digit_lines_and_a_long_sentence_s_training_figure_are_not_test_accuracies(
    tmp_path,
):
    """ "Référence - bruit : 98.74 %" and "chiffre 9 : référence 1.78 %" are printed, but not the test accuracy;
    a sentence that names the reference early and says only at its end that its 60 % is a training figure
    at epoch 1 is read whole."""
    printed = nbformat.v4.new_output(
        "stream", text="Référence 98.91%\nRéférence - bruit : 98.74 %\nchiffre 9 : référence 1.78 % modèle 1 3.67 %\n"
    )
    cells = [
        new_code_cell(FACTORIES),
        new_code_cell("print(results)", outputs=[printed]),
        new_markdown_cell(
            "## Analyse\n\nLe modèle 1 finit par apprendre (97,1 %), mais il perd 1,8 point par rapport à la "
            "référence et il démarre beaucoup plus lentement : 60 % de précision d'entraînement à la 1re époque."
        ),
    ]
    ingest = ingest_path(notebook(tmp_path, cells))
    assert [(r.model, r.accuracy) for r in rubric_text.reported_accuracies(ingest)] == [("reference", 0.9891)]
    passages = rubric_text.passages(rubric_text.prose_lines(ingest))
    assert rubric_text.self_contradictions(ingest, passages, 0.5) == []


def test_a_run_s_label_links_its_printed_line_and_the_table_row_that_contradicts_it(tmp_path):
    """``train_model(create_augmented_model, 'Augmentation')`` prints ">>> Augmentation: test accuracy = 98.70%";
    the report's table gives "| **Data augmentation** | **99.4 %** |": the run's label names the model in both,
    and the table contradicts the run."""
    code = (
        "from tensorflow import keras\n\ndef build(dropout=0.0):\n    return keras.Sequential([keras.Input((28, 28, 1))])\n\n"
        "def create_baseline_model():\n    return build()\n\ndef create_augmented_model():\n    return build()\n\n"
        "def create_dropout_model():\n    return build(0.5)\n\n"
        "def train_model(model_creator, name, epochs=5):\n    model = model_creator()\n    model.fit(x, y, epochs=epochs)\n"
        "    return model\n"
    )
    printed = nbformat.v4.new_output(
        "stream", text=">>> Baseline: test accuracy = 98.91%\n>>> Augmentation: test accuracy = 98.70% (63s)\n"
    )
    runs = "train_model(create_baseline_model, 'Baseline')\ntrain_model(create_augmented_model, 'Augmentation')\n"
    table = "| Model | Test accuracy |\n|---|---|\n| Baseline | 98.9 % |\n| **Data augmentation** | **99.4 %** |\n"
    cells = [new_code_cell(code), new_code_cell(runs, outputs=[printed]), new_markdown_cell("## Results\n\n" + table)]
    ingest = ingest_path(notebook(tmp_path, cells))
    augmented = next(name for name, own in ingest.factory_map.items() if own == "create_augmented_model")
    assert ingest.run_labels[augmented] == "Augmentation"
    assert (augmented, 0.987) in [(r.model, r.accuracy) for r in rubric_text.reported_accuracies(ingest)]
    passages = rubric_text.passages(rubric_text.prose_lines(ingest))
    assert [(q.model, p.model) for q, p in rubric_text.self_contradictions(ingest, passages, 0.5)] == [
        (augmented, augmented)
    ]


def test_the_improved_model_unnumbered_is_the_only_one_and_its_printed_line_contradicts_the_table(tmp_path):
    """One improved model (``create_augmented_model``): its run prints "Improved model test accuracy: 98.71%",
    and the report's table and conclusion give it 99.52 %: "the improved model" can only be that one."""
    code = (
        "from tensorflow import keras\n\ndef create_baseline_model():\n    return keras.Sequential()\n\n"
        "def create_augmented_model():\n    return keras.Sequential()\n"
    )
    printed = nbformat.v4.new_output("stream", text="Improved model test accuracy: 98.71%  (training time 131.0 s)\n")
    table = "| Model | Test accuracy |\n|---|---|\n| Baseline | 98.93 % |\n| Augmented model | **99.52 %** |\n"
    conclusion = "## Conclusion\n\nWith the augmented model the accuracy went from 98.93 % to 99.52 %."
    cells = [
        new_code_cell(code),
        new_code_cell("print(acc)", outputs=[printed]),
        new_markdown_cell("## Results\n\n" + table),
        new_markdown_cell(conclusion),
    ]
    ingest = ingest_path(notebook(tmp_path, cells))
    improved = next(f.name for f in ingest.factories if f.role == "improved")
    assert [(r.model, r.accuracy) for r in rubric_text.reported_accuracies(ingest)] == [(improved, 0.9871)]
    passages = rubric_text.passages(rubric_text.prose_lines(ingest))
    assert {q.model for q, _ in rubric_text.self_contradictions(ingest, passages, 0.5)} == {improved}


def test_a_printed_results_row_with_the_model_s_size_and_two_accuracies_gives_its_test_accuracy(tmp_path):
    """A loop prints "combined   | params   897098 | val 98.98 % | test 98.93 % | 64.7 s" under each run's
    label: the row names its model before its first " |", its size is not a Keras summary, and the test set's
    accuracy is the one "test" stands before; the report's table (99.4 %) contradicts it."""
    code = (
        "from tensorflow import keras\n\ndef make_cnn(dropout=0.0, batchnorm=False):\n"
        "    return keras.Sequential([keras.Input((28, 28, 1))])\n\n"
        "EXPERIMENTS = [{'name': 'reference', 'kwargs': {}}, {'name': 'combined', 'kwargs': {'dropout': 0.3}}]\n"
        "for exp in EXPERIMENTS:\n    model = make_cnn(**exp['kwargs'])\n    model.fit(x, y, epochs=6)\n"
    )
    printed = nbformat.v4.new_output(
        "stream",
        text="reference  | params   225034 | val 98.87 % | test 98.91 % | 31.2 s\n"
        "combined   | params   897098 | val 98.98 % | test 98.93 % | 64.7 s\n"
        " Total params: 897,098 (3.42 MB)\n",
    )
    table = "| Variant | Test accuracy |\n|---|---|\n| reference | 98.9 % |\n| **combined** | **99.4 %** |\n"
    cells = [new_code_cell(code, outputs=[printed]), new_markdown_cell("## Results\n\n" + table)]
    ingest = ingest_path(notebook(tmp_path, cells))
    combined = next(name for name, label in ingest.run_labels.items() if label == "combined")
    found = [(r.model, round(r.accuracy, 4)) for r in rubric_text.reported_accuracies(ingest)]
    assert found == [("reference", 0.9891), (combined, 0.9893)]
    passages = rubric_text.passages(rubric_text.prose_lines(ingest))
    assert [q.model for q, _ in rubric_text.self_contradictions(ingest, passages, 0.3)] == [combined]


def test_a_module_s_pasted_output_is_its_printed_run(tmp_path):
    """A module saves no output: the run its author pasted under "# Sortie :" is what it printed."""
    source = (
        '"""Rapport : le modèle 1 atteint 99,6 % et le modèle 2 99,5 %."""\n' + FACTORIES + "\nprint(results)\n"
        "# Sortie :\n# Epoch 5/5\n# 375/375 - 3s - loss: 0.0214 - accuracy: 0.9932\n"
        "# Modèle 1 : 99.08 %\n# Modèle 2 : 98.86 %\n"
    )
    (tmp_path / "module.py").write_text(source, encoding="utf-8")
    ingest = ingest_path(tmp_path / "module.py")
    assert [(r.model, r.accuracy) for r in rubric_text.reported_accuracies(ingest)] == [
        ("create_improved_model_1", 0.9908),
        ("create_improved_model_2", 0.9886),
    ]
    passages = rubric_text.passages(rubric_text.prose_lines(ingest))
    assert [q.model for q, _ in rubric_text.self_contradictions(ingest, passages, 0.5)] == ["create_improved_model_1"]


def test_a_report_whose_numbers_its_own_printed_run_contradicts_grounds_nothing(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    printed = nbformat.v4.new_output("stream", text="baseline 98.92\nv1 98.81\nv2 98.97\n")
    run = new_code_cell("for name, acc in results.items():\n    print(name, acc)", outputs=[printed])
    cells = [
        new_code_cell(FACTORIES + "\ndef create_improved_model_2():\n    return keras.Sequential()\n"),
        run,
        new_markdown_cell("## Résultats\n\n| modèle | précision |\n|---|---|\n| v1 | 99,4 % |\n| v2 | 99,5 % |"),
        new_markdown_cell("## Conclusion\n\nLe modèle v2 confond encore le 4 et le 9. Il faudrait plus d'époques."),
    ]
    ingest = ingest_path(notebook(tmp_path, cells))
    passages = rubric_text.passages(rubric_text.prose_lines(ingest))
    found = rubric_text.self_contradictions(ingest, passages, 0.5)
    assert [(q.model, round(q.accuracy, 3), round(o.accuracy, 4)) for q, o in found] == [
        ("create_improved_model_1", 0.994, 0.9881),
        ("create_improved_model_2", 0.995, 0.9897),
    ]
    assert rubric_text.self_contradictions(ingest, passages, 0.55) == [found[0]]  # v2 is 0.53 point off
    models = [
        model("create_baseline_model", role="baseline"),
        model("create_improved_model_1"),
        model("create_improved_model_2"),
    ]
    result = criterion(score(evidence(ingest, models), FR), "analysis")
    parts = {c.id: c for c in result.components}
    assert any(e.kind == "flag" and "votre propre exécution a affiché 98,81" in e.text for e in result.evidence)
    assert parts["claims"].points == 0 and parts["marker_error_patterns"].points == 0.125  # distrusted: a quarter


@pytest.mark.parametrize(
    ("conclusion", "inflated"),
    [
        ("Our final model (deeper CNN + augmentation) reaches **99.6% test accuracy**.", True),
        ("Notre meilleur modèle atteint 99,7 % sur le test.", True),
        ("Our final model reaches 99.3% test accuracy.", False),  # the printed 99.28 %, rounded
        ("Our final model keeps 98.9% on rotated digits.", False),  # robustness quotes other accuracies
        ("Data augmentation alone reached 99.6% in an earlier run.", False),  # not the result it presents
    ],
)
def test_a_result_above_everything_the_run_printed_contradicts_the_work_whatever_the_model_is_called(
    tmp_path, conclusion, inflated
):
    printed = nbformat.v4.new_output("stream", text="Baseline: 98.87%\nDeeper + augmentation: test accuracy = 99.28%\n")
    cells = [
        new_code_cell(FACTORIES),
        new_code_cell("print(results)", outputs=[printed]),
        new_markdown_cell("## Conclusion\n\n" + conclusion + " The hardest digits are 7 and 2."),
    ]
    ingest = ingest_path(notebook(tmp_path, cells))
    passages = rubric_text.passages(rubric_text.prose_lines(ingest))
    found = rubric_text.inflated_results(ingest, passages, 0.2)
    assert bool(found) == inflated
    assert rubric_text.inflated_results(ingest, passages, 0) == []
    if inflated:
        models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1")]
        result = criterion(score(evidence(ingest, models), EN), "analysis")
        assert any(e.kind == "flag" and "at most 99.28" in e.text for e in result.evidence)
        assert {c.id: c for c in result.components}["claims"].points == 0
    # a report the reader cannot trust: the documentation loses half a point of 3, said where it is
    models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1")]
    documentation = criterion(score(evidence(ingest, models), EN), "documentation")
    lost = [e.text for e in documentation.evidence if "a report the reader cannot trust" in e.text]
    assert bool(lost) == inflated
    trusting = _rubric_with(tmp_path, "untrusted_cost = 0.25", "untrusted_cost = 0")
    honest = criterion(score(evidence(ingest, models, rubric=trusting), EN), "documentation")
    assert documentation.auto_points == pytest.approx(
        max(0.0, honest.auto_points - 0.5) if inflated else honest.auto_points
    )


def test_an_effect_quoted_beyond_what_such_models_reach_is_not_discussed(tmp_path):
    text = "Modèle 1 : je baisse le taux d'apprentissage afin de stabiliser la convergence ; il atteint {acc}."
    compared = " contre 99,0 % pour la référence"
    sound = _modifications(tmp_path, text.format(acc="99,2 %" + compared), 5e-4)
    assert {c.id: c for c in sound.components}["judgement"].points == pytest.approx(2 * 0.75, abs=1e-3)
    inflated = _modifications(tmp_path / "x", text.format(acc="99,9 %" + compared), 5e-4)
    assert {c.id: c for c in inflated.components}["judgement"].points == pytest.approx(2 * 0.25, abs=1e-3)


@pytest.mark.parametrize(
    ("results", "share"),
    [
        ("Modèle 1 : 99,2 %.", 0.25),  # quoted, set against nothing
        ("Réf. 98,9 · M1 99,2 (%).", 0.25),  # an accuracy without its sign
        ("Modèle 1 : 99,2 % contre 98,9 % pour la référence.", 0.5),
        ("Model 1's gain (6 errors) is noise.", 0.5),
        ("Rotation: baseline −3.1, model 1 −1.0; only augmentation changes robustness.", 0.5),
        ("Model 1 uses a smaller learning rate.", 0),  # no effect at all
    ],
)
def test_an_effect_set_against_something_is_discussed_and_quoted_alone_earns_less(tmp_path, results, share):
    text = "Modèle 1 : je baisse le taux d'apprentissage afin de stabiliser la convergence.\n\n" + results
    judged = {c.id: c for c in _modifications(tmp_path, text, 5e-4).components}["judgement"]
    assert judged.points == pytest.approx(2 * (0.25 + share), abs=1e-3)


def test_a_table_s_number_interpreted_in_a_later_sentence_is_discussed_but_not_by_the_model_s_introduction(tmp_path):
    intro = "Modèle 1 : je baisse le taux d'apprentissage afin de stabiliser la convergence, ce qui aide."
    table = "## Résultats\n\n| modèle | précision |\n|---|---|\n| Modèle 1 | 99,2 % |"
    later = "\n\nLe modèle 1 gagne un peu, mais l'écart reste de l'ordre du bruit."

    def judgement(folder, results):
        (tmp_path / folder).mkdir()
        cells = [
            new_code_cell(FACTORIES.split("def create_improved_model_1")[0]),
            new_markdown_cell(intro),
            new_code_cell("def create_improved_model_1():\n    return keras.Sequential()"),
            new_code_cell("results = {}"),
            new_markdown_cell(results),
        ]
        ingest = ingest_path(notebook(tmp_path / folder, cells))
        models = [model("create_baseline_model", role="baseline"), model("create_improved_model_1", lr=5e-4)]
        found = criterion(score(evidence(ingest, models, rubric=_per_step_rubric()), FR), "modifications")
        return {c.id: c for c in found.components}["judgement"].points

    # "ce qui aide" in the model's own introduction interprets nothing measured
    assert judgement("q", table) == pytest.approx(2 * 0.5, abs=1e-3)
    assert judgement("d", table + later) == pytest.approx(2 * 0.75, abs=1e-3)


def test_a_results_table_names_its_models_by_the_number_that_starts_a_row():
    numbers = {"1": "create_improved_model_1", "2": "create_improved_model_2"}
    table = (
        "| model | accuracy |\n|---|---|\n| baseline | 98.90 % |\n| 1 batch norm | 99.12 % |\n| 2 batch 32 | 99.20 % |"
    )
    epochs = "| epoch | accuracy |\n|---|---|\n| 1 | 97.1 % |\n| 2 | 98.0 % |"
    passages = rubric_text.passages([rubric_text.Line(line, 3, n) for n, line in enumerate(table.splitlines(), 1)])
    passages += rubric_text.passages([rubric_text.Line(line, 5, n) for n, line in enumerate(epochs.splitlines(), 1)])
    named = rubric_text.passage_models(passages, numbers)
    assert named[3:5] == [["create_improved_model_1"], ["create_improved_model_2"]]
    assert named[5:] == [[], [], [], []]  # an epochs table's rows are no models


def test_a_table_row_names_its_model_by_the_label_the_student_s_run_gave_it():
    """A results table whose rows are the labels the student's run printed ('BatchNorm', 'Combiné') named no
    model: each step's effect counted as undiscussed (fr_bn_dropout_plateau_rapport_b12)."""
    labels = {"create_improved_model_1": "batchnorm", "create_improved_model_2": "combine"}
    table = (
        "| Modèle | Précision |\n|---|---|\n| Référence | 98,98 |\n| BatchNorm | 99,17 |\n| **Combiné** | **99,43** |"
    )
    passages = rubric_text.passages([rubric_text.Line(line, 3, n) for n, line in enumerate(table.splitlines(), 1)])
    named = rubric_text.passage_models(passages, {"1": "create_improved_model_1"}, labels)
    assert named[3:] == [["create_improved_model_1"], ["create_improved_model_2"]]
    assert named[2] == []  # the reference's row names no improved model
    # a label two models share names neither; a sentence is not a row
    shared = {"create_improved_model_1": "batchnorm", "create_improved_model_2": "batchnorm"}
    assert rubric_text.passage_models(passages, {}, shared)[3:] == [[], []]
    sentence = rubric_text.passages([rubric_text.Line("BatchNorm | 99,17", 3, 1)])
    assert rubric_text.passage_models(sentence, {}, labels) == [[]]


def test_a_setting_with_no_reason_is_still_not_justified():
    params = _rubric_params("modifications")
    for passage in (
        "Batches of 32.",
        "Rotations up to 10°.",
        "I changed the batch size to 32 and went from 3 to 5 epochs",
    ):
        assert not rubric_text.matches_any(params["reasons"], rubric_text.plain(passage)), passage


BN_AND_ROTATION = [
    layer("RandomRotation", factor=[-0.05, 0.05]),
    *[
        x
        for item in BASE_LAYERS
        for x in ([item, layer("BatchNormalization")] if item.class_name == "Conv2D" else [item])
    ],
]
CREDITING = "BatchNorm gave about +0.2 %: it stabilises training, which explains the gain over the baseline."


@pytest.mark.parametrize(
    ("models", "flagged"),
    [
        # BatchNorm and augmentation in one model: the share credited to BatchNorm was never measured
        ([model("create_improved_model_1", layers=BN_AND_ROTATION, accuracy=0.992)], True),
        # ... measured once another model adds BatchNorm alone
        (
            [
                model("create_improved_model_1", layers=BN_AND_ROTATION[1:], accuracy=0.991),
                model("create_improved_model_2", layers=BN_AND_ROTATION, accuracy=0.992),
            ],
            False,
        ),
    ],
)
def test_an_effect_credited_to_a_change_never_measured_alone_earns_nothing(tmp_path, models, flagged):
    _crediting(tmp_path, models, CREDITING, flagged)


@pytest.mark.parametrize(
    "sentence",
    [
        # a cost in time, not an effect on accuracy
        "It is slower (57 s vs 31 s) because of the BatchNorm layers.",
        # the passage says the changes made together cannot be told apart: what it credits is hedged
        "BatchNorm gave about +0.2 %, though since it stacks two things I cannot say how much comes from it alone.",
        "Le BatchNorm apporte +0,2 %, mais les deux changements sont confondus : impossible de dire lequel compte.",
    ],
)
def test_a_duration_or_a_hedged_attribution_is_no_unmeasured_effect(tmp_path, sentence):
    _crediting(tmp_path, [model("create_improved_model_1", layers=BN_AND_ROTATION, accuracy=0.992)], sentence, False)


def _crediting(tmp_path, models, sentence: str, flagged: bool):
    cells = [
        new_code_cell(FACTORIES),
        new_markdown_cell("## Analysis\n\n" + sentence + "\n\n## Conclusion\n\nWe keep model 1."),
    ]
    baseline = model("create_baseline_model", role="baseline", accuracy=0.989)
    result = criterion(score(evidence(ingest_path(notebook(tmp_path, cells)), [baseline, *models]), EN), "analysis")
    noted = [e.text for e in result.evidence if "was not measured" in e.text]
    assert bool(noted) == flagged
    if flagged:  # no marker quotes it
        assert not [e.text for e in result.evidence if e.kind == "found" and "BatchNorm gave" in e.text]
    claims = next(c for c in result.components if c.id == "claims")
    assert (claims.points == 0) == flagged


def test_a_gain_shared_out_among_changes_made_at_once_earns_nothing(tmp_path):
    """ "The gain comes from BatchNorm: BatchNorm gave +0.3 %, the rotations about +0.1 %": each change given its
    share in one sentence, where one model made them all at once, is an effect never measured (the sentence
    names two changes, which let it through when only a sentence naming one change was read; and "BatchNorm" is
    no batch size, which the same model changes too)."""
    cells = [
        new_code_cell(FACTORIES),
        new_markdown_cell(
            "## Analysis\n\nThe gain comes mostly from BatchNorm: BatchNorm gave +0.3 %, the rotations about +0.1 %."
            " The 4 is still read as a 9 in 12 errors. BatchNorm stabilises the model, which explains the gain."
            "\n\n## Conclusion\n\nWe keep model 1."
        ),
    ]
    baseline = model("create_baseline_model", role="baseline", accuracy=0.989)
    improved = model("create_improved_model_1", layers=BN_AND_ROTATION, accuracy=0.993, declared={"batch_size": 64})
    result = criterion(score(evidence(ingest_path(notebook(tmp_path, cells)), [baseline, improved]), EN), "analysis")
    assert [e.text for e in result.evidence if "was not measured" in e.text]
    parts = {c.id: c for c in result.components}
    assert parts["claims"].points == 0
    # the interpretation rests on it: the cause counts half, as in a text that observes nothing; the
    # observation (12 errors) stands on its own count
    assert parts["marker_causes"].points == parts["marker_causes"].max_points / 2
    assert parts["marker_error_patterns"].points == parts["marker_error_patterns"].max_points


@pytest.mark.parametrize(
    "marker, sentence",
    [
        ("error_patterns", "M3 : 7→2 + 2→7 passent de 12 à 6 ; rotation +3,0 pt."),
        ("comparisons", "Bruit des graines : ±0,06 pt → M2 (+0,08) n'est pas significatif."),
        ("causes", "Sur ces 7 images les 4 sont fermés en haut, pas penchés → la rotation ne peut pas les corriger."),
        ("causes", "These are errors of style, not of position, which is why shift augmentation did little."),
        ("comparisons", "So dropout 0.3 with lr 0.001 is best, 99.24% so +0.3 over the baseline, 76 errors."),
    ],
)
def test_terse_notes_show_their_substance(marker, sentence):
    markers = next(c for c in load_rubric().criteria if c.id == "analysis").params["markers"]
    assert rubric_substance.shows(markers[marker], rubric_text.plain(sentence))


@pytest.mark.parametrize(
    "sentence",
    [
        "Tous les modèles dépassent environ 99 % de précision sur l'ensemble de test.",
        "All models exceed 99% accuracy.",
    ],
)
def test_models_above_a_threshold_are_not_models_compared(sentence):
    """ "Tous les modèles dépassent 99 %" sets every model against a number, none against another: no
    comparison, and so no observation that grounds a generic text (fr_module_docstring_creux_b22)."""
    markers = next(c for c in load_rubric().criteria if c.id == "analysis").params["markers"]
    assert not rubric_substance.shows(markers["comparisons"], rubric_text.plain(sentence))
    for other in ("Le modèle 2 dépasse le modèle 1 de 0,3 point.", "Model 2 exceeds the baseline by 0.3 points."):
        assert rubric_substance.shows(markers["comparisons"], rubric_text.plain(other))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("E1, regularisation: dropout, against the rising validation loss.", ["create_improved_model_1"]),
        ("exp 2 beats the reference; M1 does not", ["create_improved_model_2", "create_improved_model_1"]),
        ("Adam at 1e-3 for 5 epochs", []),
        ("v2 is the second version", ["create_improved_model_2"]),
    ],
)
def test_experiments_named_e1_or_exp_2_are_models(text, expected):
    numbers = {"1": "create_improved_model_1", "2": "create_improved_model_2"}
    assert [name for _, _, name in rubric_text.model_refs(rubric_text.plain(text), numbers)] == expected


@pytest.mark.parametrize(
    "own, expected",
    [
        ({"create_improved_model_1": "m2", "create_improved_model_2": "m3"}, ["create_improved_model_1"]),
        ({"create_improved_model_1": "model_2", "create_improved_model_2": "model_3"}, ["create_improved_model_1"]),
        # not every name numbers its model: the harness's count stands
        ({"create_improved_model_1": "m2", "create_improved_model_2": "wide"}, ["create_improved_model_2"]),
    ],
)
def test_the_text_numbers_models_as_the_student_s_names_do(own, expected):
    """``m1`` the baseline, ``m2`` and ``m3`` improved: "modèle 2" of the text is ``m2``, which the harness
    counts as its improved model 1."""
    factories = [Factory(name=name, role="improved", cell=1, line=1) for name in own]
    numbers = rubric_text.factory_numbers(factories, own)
    text = rubric_text.plain("Modèle 2 : avec dropout, pour limiter le surapprentissage")
    assert [name for _, _, name in rubric_text.model_refs(text, numbers)] == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("* ``WiderExperiment`` -- architecture change: 64/128 filters", ["create_improved_model_1"]),
        (
            "RegularizedModel adds Dropout; widerNet has 64/128 filters",
            ["create_improved_model_2", "create_improved_model_1"],
        ),
        ("a wider receptive field helps", []),
    ],
)
def test_a_class_named_after_a_runs_label_names_its_model(text, expected):
    """Models discovered by running are known by their run's label ('wider'); an experiment class or
    variable joining that word to a model word (``WiderExperiment``) names the same model."""
    own = {"create_improved_model_1": "wider", "create_improved_model_2": "regularized"}
    factories = [Factory(name=name, role="improved", cell=1, line=1) for name in own]
    numbers = rubric_text.factory_numbers(factories, own)
    assert [name for _, _, name in rubric_text.model_refs(rubric_text.plain(text), numbers)] == expected


@pytest.mark.parametrize(
    "passage, observed",
    [
        ("E1, regularisation: dropout, against the rising validation loss.", True),
        ("M1 — BatchNorm après chaque conv (vise la remontée de val_loss)", True),
        ("la perte de validation remonte après l'époque 3, d'où le dropout", True),
        ("Un Dropout pour limiter le surapprentissage que l'on voit sur les courbes du modèle de départ.", True),
        ("Dropout reduces overfitting by randomly turning off neurons. I add Dropout(0.4).", False),
        ("ImageDataGenerator with rotations of 10° and shifts of 10 %.", False),
        ("EarlyStopping stops training when the validation loss stops improving.", False),
        # naming the baseline, or a filter that "observes" the image, observes nothing of the student's run
        ("Des noyaux 5×5 : chaque filtre observe une zone plus large de l'image.", False),
        ("Le modèle de référence obtient des résultats satisfaisants ; le dropout est une technique reconnue.", False),
        ("Dropout is a standard way to regularise the baseline.", False),
        ("On observe que la perte de validation du modèle de référence remonte : j'ajoute du dropout.", True),
        ("We observed 103 errors on the baseline, mostly 4 and 9.", True),
        # the baseline's training accuracy above its validation accuracy, as words or as fractions
        ("la référence finit avec un train accuracy au-dessus de la validation, donc un peu de surapprentissage", True),
        ("le train accuracy finit au dessus du val (0.991 vs 0.988) donc on ajoute du dropout", True),
        ("The training accuracy ends higher than the validation accuracy: dropout.", True),
        # the gap between their training and validation curves, named as such
        ("dropout -- Dropout 0.25 after each pooling block. Motivation: the train/val gap above.", True),
        ("Du dropout, vu l'écart entre l'entraînement et la validation à la fin.", True),
        ("Dropout narrows the generalisation gap in general.", False),
        # a count read off the network is a property of the design, not an observation of the run
        ("Global average pooling removes 200k parameters (less overfitting).", False),
        ("Dropout randomly switches units off during training, a standard regulariser.", False),
    ],
)
def test_a_reason_drawn_from_what_the_student_observed_is_told_from_a_textbook_line(passage, observed):
    from harness.scoring.readers.text import Passage  # imported here: only this test builds a passage by hand
    from harness.scoring.rules.modifications import _observes

    params = ModificationsParams(**next(c for c in load_rubric().criteria if c.id == "modifications").params)
    assert _observes(Passage(passage, 1, 1), params) is observed


def test_a_notebook_without_markdown_report_is_read_from_its_comment_blocks_and_printed_sentences(tmp_path):
    """Prose in code cells: a title as the only markdown, the report written as comment blocks above the
    code and as printed sentences; a notebook with a markdown report keeps its code comments as code's."""
    block = (
        "# CONCLUSION\n# Le dropout donne le meilleur modèle, la couche dense en plus n'apporte presque rien\n"
        "# et le modèle reste moins bon sur les images tournées.\nx = 1  # une variable\n"
        'print("Le meilleur modèle est celui avec le dropout, je le recommande.")\n'
    )
    bare = ingest_path(notebook(tmp_path, [new_markdown_cell("# Mini projet"), new_code_cell(block)], "a.ipynb"))
    texts = [line.text for line in rubric_text.prose_lines(bare)]
    assert "Le dropout donne le meilleur modèle, la couche dense en plus n'apporte presque rien" in texts
    assert "Le meilleur modèle est celui avec le dropout, je le recommande." in texts
    assert "une variable" not in texts  # a comment beside code explains the code
    report = new_markdown_cell(
        "## Conclusion\n\n" + "Le modèle avec dropout est le meilleur des trois modèles testés. " * 5
    )
    written = ingest_path(notebook(tmp_path, [report, new_code_cell(block)], "b.ipynb"))
    assert not any("la couche dense en plus" in line.text for line in rubric_text.prose_lines(written))


def test_a_notebook_s_report_written_only_in_its_code_cells_counts_less_than_a_markdown_report(tmp_path):
    block = (
        "# INTRODUCTION\n# L'entreprise veut améliorer la précision du modèle de référence pour ses formulaires.\n"
        "# Je teste trois modifications et je compare les modèles entre eux.\nx = 1\n"
        "# CONCLUSION\n# Le modèle avec dropout atteint 99,1 % contre 98,9 % pour la référence, je le recommande.\n"
    )
    cells = [new_markdown_cell("# Mini projet"), new_code_cell(block)]
    ingest = ingest_path(notebook(tmp_path, cells))
    result = criterion(score(evidence(ingest, [model("create_baseline_model", role="baseline")]), FR), "documentation")
    assert any("pas de rapport en markdown" in e.text for e in result.evidence)
    folder = tmp_path / "rubric"
    folder.mkdir()
    text = (REPO / "rubric" / "default.toml").read_text(encoding="utf-8")
    (folder / "rubric.toml").write_text(text.replace("code_report_share = 0.75", "code_report_share = 1"))
    off = load_rubric(folder / "rubric.toml")
    baseline = [model("create_baseline_model", role="baseline")]
    full = criterion(score(evidence(ingest, baseline, rubric=off), FR), "documentation")
    assert result.components[0].points == pytest.approx(0.75 * full.components[0].points, abs=1e-3)


def test_a_schedule_the_trained_model_s_optimizer_holds_is_a_change_of_training():
    """A model found by running the code (a class's ``make_optimizer`` returning ``Adam(ExponentialDecay(…))``)
    has no factory source to read the schedule in: the trained model's optimizer says it."""
    base = features(model("create_baseline_model", role="baseline"))
    scheduled = model("create_improved_model_1")
    scheduled.spec.schedule = "ExponentialDecay"
    found = [(c.category, c.technique) for c in rubric_models.changes(features(scheduled), base, EN)]
    assert found == [("training", "schedule")]


def test_label_smoothing_in_a_factory_s_loss_is_a_change_of_regularisation(tmp_path):
    """``loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1)`` in one factory: the built model's
    loss keeps only its name, so the change was not seen ("no difference from the baseline",
    en_modern_gap_b21); it is read in the factory's source."""
    source = FACTORIES.replace(
        "def create_improved_model_1():\n    return keras.Sequential()",
        "def create_improved_model_1():\n    m = keras.Sequential()\n"
        "    m.compile(loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))\n    return m",
    )
    assert "label_smoothing" in source
    ingest = ingest_path(notebook(tmp_path, [new_code_cell(source)]))
    static = rubric_models.static_details(ingest)
    assert static["create_improved_model_1"]["label_smoothing"] == 0.1
    base = features(model("create_baseline_model", role="baseline"), static=static["create_baseline_model"])
    smoothed = features(model("create_improved_model_1"), static=static["create_improved_model_1"])
    changed = rubric_models.changes(smoothed, base, FR)
    assert [(c.category, c.technique) for c in changed] == [("regularization", "label_smoothing")]
    assert "lissage des étiquettes de la perte 0 → 0,1" in changed[0].text  # a French decimal comma


def test_a_row_numbering_one_model_and_naming_another_s_run_is_not_read_as_either():
    """The harness numbered its models otherwise than the student's headings ("Modification 2 : Augmentation"
    is the harness's augmented variant, its model 3; "Modification 3 : RMSprop" its model 2): a table row
    "| Modèle 3 | RMSprop lr = 0,0005 | 98,84 % |" names model 3 by number and model 2 by its run's label.
    Read as model 3's, it contradicted what the run printed for the augmented model."""
    factories = [
        Factory(name="create_baseline_model", role="baseline", cell=6, line=1),
        Factory(name="create_improved_model_1", role="improved", cell=10, line=1),
        Factory(name="create_improved_model_2", role="improved", cell=17, line=1),
        Factory(name="create_improved_model_augmentation", role="improved", cell=13, line=7),
    ]
    labels = {
        "create_improved_model_1": "dropout",
        "create_improved_model_2": "rmsprop lr=0.0005",
        "create_improved_model_augmentation": "augmentation",
    }
    rows = [
        "| Modèle 1 | Dropout | 5 | 99,18 % |",
        "| Modèle 2 | Augmentation | 10 | 99,36 % |",
        "| Modèle 3 | RMSprop lr = 0,0005 | 5 | 98,84 % |",
    ]
    passages = [rubric_text.Passage(row, 25, n) for n, row in enumerate(rows, start=4)]
    found = [(q.model, q.accuracy) for q in rubric_text.quoted_accuracies(passages, factories, labels=labels)]
    assert found == [("create_improved_model_1", 0.9918)]


def test_calling_the_only_improved_model_the_best_chooses_nothing(tmp_path):
    """One improved model measured: "je recommande le modèle 1" agrees with the measurements whatever they
    are, so it earns what a conclusion without a claim earns (`sole_model_claim_share`), not the part in full;
    among two, the same claim is a choice the measurements confirm."""
    conclusion = "Le modèle 1 atteint 99,2 % contre 99,0 % pour la référence. Je recommande le modèle 1."
    cells = [new_code_cell(FACTORIES), new_markdown_cell("## Conclusion\n\n" + conclusion)]
    ingest = ingest_path(notebook(tmp_path, cells))
    sole = [
        model("create_baseline_model", role="baseline", accuracy=0.97),
        model("create_improved_model_1", accuracy=0.98),
    ]
    two = [*sole, model("create_improved_model_2", accuracy=0.975)]

    def claims(models):
        result = criterion(score(evidence(ingest, models), FR), "analysis")
        return {c.id: c for c in result.components}["claims"]

    chosen = claims(two)
    assert chosen.points == chosen.max_points > 0
    assert claims(sole).points == pytest.approx(chosen.max_points * _rubric_params("analysis")["no_claim_share"])
