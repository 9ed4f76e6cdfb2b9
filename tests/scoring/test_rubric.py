"""The rubric engine: unit tests on hand-built results (fast), and the labelled samples graded for real.

``labelled`` grades ``tests/fixtures/labelled_rubric/`` once per session with real workers on the ``smoke``
profile (a two-entry robustness suite keeps the evaluation short) and checks every criterion of
every sample against ``tests/fixtures/labelled_rubric/expected.toml``; the re-scoring tests work on copies
of that output and must not retrain anything.
"""

from __future__ import annotations

import csv
import re
import shutil
import textwrap
import time
import tomllib
from pathlib import Path

import nbformat
import pytest
from conftest import ASSIGNMENT_TESTS, REPO, run_grade, small_suite
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from harness.ingest.read import ingest_path
from harness.pipeline.rescore import rescore
from harness.results import (
    CriterionScore,
    DiscoveredModel,
    DiscoveryRecord,
    Factory,
    IngestResult,
    LayerSpec,
    McNemarTest,
    ModelResult,
    ModelSpec,
    Significance,
    SubmissionResult,
    TrainingSettings,
)
from harness.scoring.engine import _round, score
from harness.scoring.evidence import Evidence
from harness.scoring.overrides import load_overrides
from harness.scoring.readers import code as rubric_code
from harness.scoring.readers import models as rubric_models
from harness.scoring.readers import text as rubric_text
from harness.scoring.readers.models import differences, features
from harness.scoring.readers.structure import read_structure
from harness.scoring.rubric import load_rubric
from harness.scoring.rules import RULES, UnknownRuleError, get_rule
from harness.util.i18n import Translator

LABELLED = REPO / "tests" / "fixtures" / "labelled_rubric"
EXPECTED = tomllib.loads((LABELLED / "expected.toml").read_text(encoding="utf-8"))
SAMPLES = sorted(k for k, v in EXPECTED.items() if isinstance(v, dict))
CRITERIA = ["code_quality", "modifications", "improvement", "analysis", "documentation"]
FR, EN = Translator("fr"), Translator("en")


# --------------------------------------------------------------------------- builders


def layer(name: str, **config) -> LayerSpec:
    return LayerSpec(class_name=name, config=config)


BASE_LAYERS = [
    layer("Conv2D", filters=32, kernel_size=[3, 3], activation="relu", padding="valid"),
    layer("MaxPooling2D", pool_size=[2, 2]),
    layer("Conv2D", filters=64, kernel_size=[3, 3], activation="relu", padding="valid"),
    layer("MaxPooling2D", pool_size=[2, 2]),
    layer("Flatten"),
    layer("Dense", units=128, activation="relu"),
    layer("Dense", units=10, activation="softmax"),
]


def model(
    name: str,
    layers=None,
    optimizer="Adam",
    lr=0.001,
    accuracy=None,
    declared=None,
    callbacks=(),
    augmentation=None,
    role="improved",
    status="ok",
    significance=None,
) -> ModelResult:
    declared = dict(declared or {})
    settings = TrainingSettings(
        declared=declared,
        epochs=1,
        batch_size=declared.get("batch_size", 128),
        callbacks=list(callbacks),
        augmentation=augmentation,
    )
    spec = (
        None
        if layers is False
        else ModelSpec(
            layers=list(layers or BASE_LAYERS), optimizer=optimizer, learning_rate=lr, loss="categorical_crossentropy"
        )
    )
    return ModelResult(
        name=name,
        role=role,
        status=status,
        spec=spec,
        settings=settings,
        test_accuracy=accuracy,
        significance=significance,
    )


def with_bn(layers: list[LayerSpec]) -> list[LayerSpec]:
    out = []
    for item in layers:
        out.append(item)
        if item.class_name == "Conv2D":
            out.append(layer("BatchNormalization", momentum=0.99))
    return out


def notebook(tmp_path: Path, cells: list, name: str = "student.ipynb") -> Path:
    path = tmp_path / name
    nbformat.write(new_notebook(cells=cells), path)
    return path


def evidence(ingest, models, reference=None, profile="full", rubric=None) -> Evidence:
    return Evidence(
        ingest=ingest,
        models=models,
        reference=reference or model("ref", role="reference", accuracy=0.90),
        rubric=rubric or load_rubric(),
        protocol_epochs=5,
        protocol_batch_size=128,
        profile=profile,
        student=ingest.student,
    )


def criterion(result_score, cid: str) -> CriterionScore:
    return next(c for c in result_score.criteria if c.id == cid)


def sections_of(lines) -> dict:
    """The deliverable's sections the default rubric finds in `lines` of prose."""
    return rubric_text.find_sections(lines, {name: s.model_dump() for name, s in load_rubric().sections.items()})


def read_sections(tmp_path, cells) -> tuple:
    """(the prose lines, the sections found, the line -> section function) of a notebook of `cells`."""
    lines = rubric_text.prose_lines(ingest_path(notebook(tmp_path, cells)))
    found = sections_of(lines)
    return lines, found, rubric_text.section_ranges(lines, found)


def module_sections(tmp_path, source: str, name: str = "module.py") -> dict:
    """The sections found in a module written with `source`."""
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return sections_of(rubric_text.prose_lines(ingest_path(path)))


FACTORIES = """
from tensorflow import keras

def create_baseline_model():
    return keras.Sequential()

def create_improved_model_1():
    return keras.Sequential()

def create_improved_model_2():
    return keras.Sequential()
"""


# --------------------------------------------------------------------------- model differences


def test_differences_read_every_category_from_the_built_model():
    base = features(model("base", role="baseline"))
    bn = differences(features(model("m", layers=with_bn(BASE_LAYERS))), base, EN)
    assert list(bn) == ["regularization"]
    assert "adds BatchNormalization ×2 after each Conv2D" in bn["regularization"][0]

    wider = [
        layer("Conv2D", filters=64, kernel_size=[5, 5], activation="relu", padding="same"),
        *BASE_LAYERS[1:5],
        layer("Dense", units=256, activation="relu"),
        BASE_LAYERS[-1],
    ]
    arch = differences(features(model("m", layers=wider)), base, EN)["architecture"]
    assert any("filters 32, 64 → 64, 64" in a for a in arch) and any("5×5" in a for a in arch)
    assert any("hidden dense layers 128 → 256" in a for a in arch) and any("padding" in a for a in arch)

    separable = [
        *BASE_LAYERS[:2],
        layer("SeparableConv2D", filters=64, kernel_size=[3, 3], activation="relu"),
        *BASE_LAYERS[3:],
    ]
    kinds = differences(features(model("m", layers=separable)), base, EN)
    assert kinds == {"architecture": ["convolution types Conv2D ×2 → Conv2D, SeparableConv2D"]}

    hyper = differences(features(model("m", optimizer="SGD", lr=0.01, declared={"batch_size": 64})), base, EN)
    assert list(hyper) == ["hyperparameters"]
    assert hyper["hyperparameters"] == ["optimizer Adam → SGD", "learning rate 0.001 → 0.01", "batch size 128 → 64"]

    augmented = [layer("RandomRotation", factor=[-0.05, 0.05]), *BASE_LAYERS]
    aug = differences(features(model("m", layers=augmented)), base, EN)
    assert list(aug) == ["augmentation"] and "RandomRotation(±0.05)" in aug["augmentation"][0]
    generator = features(model("m", augmentation="ImageDataGenerator"), static={"generator": "rotation_range=10"})
    declared = differences(generator, base, EN)
    assert "ImageDataGenerator(rotation_range=10)" in declared["augmentation"][0]

    training = differences(features(model("m", declared={"epochs": 15}, callbacks=["EarlyStopping"])), base, EN)
    assert list(training) == ["training"]
    assert training["training"] == ["epochs 5 → 15 (declared)", "adds EarlyStopping"]

    regularized = [
        BASE_LAYERS[0].model_copy(
            update={
                "config": {
                    **BASE_LAYERS[0].config,
                    "kernel_regularizer": {"class_name": "L2", "config": {"l2": 0.0001}},
                }
            }
        ),
        *BASE_LAYERS[1:],
    ]
    assert "L2(0.0001)" in differences(features(model("m", layers=regularized)), base, EN)["regularization"][0]
    assert differences(features(model("m")), base, EN) == {}
    # the same weight decay on a separable convolution's kernels: only the convolution's type changed
    l2 = {"class_name": "L2", "config": {"l2": 0.0001}}
    separable = layer(
        "SeparableConv2D", **{**BASE_LAYERS[0].config, "depthwise_regularizer": l2, "pointwise_regularizer": l2}
    )
    changed = differences(
        features(model("m", layers=[separable, *BASE_LAYERS[1:]])), features(model("r", layers=regularized)), EN
    )
    assert list(changed) == ["architecture"]


def test_the_markdown_presenting_a_shared_builder_justifies_the_models_it_builds(tmp_path):
    """``build_net(batchnorm=True)`` run in a later cell than the builder: the markdown that presents the
    builder's options is this model's text too (it was out of reach, behind the baseline's cell)."""
    cells = [
        new_markdown_cell(
            "## Construction\n\n- `batchnorm=True` ajoute une BatchNormalization après chaque convolution, "
            "ce qui normalise les activations et accélère l'apprentissage."
        ),
        new_code_cell(
            "from tensorflow import keras\n\n"
            "def build_net(batchnorm=False):\n    model = keras.Sequential()\n"
            "    model.compile(optimizer='adam', loss='categorical_crossentropy')\n    return model"
        ),
        new_code_cell("reference = train(build_net(), 5)"),
        new_code_cell("normalised = train(build_net(batchnorm=True), 5)"),
    ]
    ingest = ingest_path(notebook(tmp_path, cells))
    assert ingest.factory_source == "inferred"
    base = model("create_baseline_model", role="baseline")
    one = model("create_improved_model_1", layers=with_bn(BASE_LAYERS))
    result = criterion(score(evidence(ingest, [base, one]), EN), "modifications")
    assert any("justified" in e.text and "accélère" in e.text for e in result.evidence)


def test_modifications_counts_categories_method_and_justification(tmp_path):
    cells = [
        new_markdown_cell("# Projet"),
        new_code_cell(FACTORIES.split("def create_improved_model_1")[0]),
        new_markdown_cell(
            "Modèle 1 : la perte de validation du modèle de base oscille ; j'ajoute de la Batch Normalization "
            "après chaque convolution afin de stabiliser l'apprentissage."
        ),
        new_code_cell("def create_improved_model_1():\n    return keras.Sequential()"),
        new_markdown_cell("Modèle 2 : optimiseur SGD et 20 époques."),
        new_code_cell("def create_improved_model_2():\n    return keras.Sequential()"),
    ]
    ingest = ingest_path(notebook(tmp_path, cells))
    base = model("create_baseline_model", role="baseline")
    one = model("create_improved_model_1", layers=with_bn(BASE_LAYERS))
    two = model("create_improved_model_2", layers=with_bn(BASE_LAYERS), optimizer="SGD", declared={"epochs": 20})
    result = criterion(score(evidence(ingest, [base, one, two]), EN), "modifications")
    parts = {c.id: c for c in result.components}
    # reg, and hyper + training changed together by model 2: explored, but each counts half
    assert parts["categories"].points == pytest.approx(4 / 3, abs=1e-3) and parts["categories"].detail == "2/3"
    assert parts["justification"].detail == "1/3"  # only the BatchNormalization is explained
    assert parts["method"].detail == "1/2"  # model 2 changes hyper-parameters AND training
    texts = [e.text for e in result.evidence]
    assert any("justified" in t and "oscille" in t for t in texts)
    flagged = [e for e in result.evidence if e.kind == "flag"]
    assert any("create_improved_model_2 changes 2 categories" in e.text and e.cell == 6 for e in flagged)
    # no accuracy measured and no effect discussed: each step is neutral (a quarter of the judgement),
    # model 2's quarter shared between its two categories
    assert parts["judgement"].points == pytest.approx(2 * (0.25 + 0.125) / 2, abs=1e-3)
    assert result.points == _round(4 / 3 + 1.5 / 3 + 0.5 / 2 + 2 * (0.25 + 0.125) / 2, 0.5)
    # the same reason without what the student observed: a textbook line, worth half
    cells[2] = new_markdown_cell("Modèle 1 : j'ajoute de la Batch Normalization afin de stabiliser l'apprentissage.")
    textbook_ingest = ingest_path(notebook(tmp_path, cells, "textbook.ipynb"))
    textbook = criterion(score(evidence(textbook_ingest, [base, one, two]), EN), "modifications")
    assert {c.id: c for c in textbook.components}["justification"].detail == "0.5/3"
    assert any("textbook reasons" in e.text and e.kind == "flag" for e in textbook.evidence)

    # Independent variants of the baseline: each changes one thing against the BASELINE.
    independent = model("create_improved_model_2", optimizer="SGD")
    result = criterion(score(evidence(ingest, [base, one, independent]), EN), "modifications")
    parts = {c.id: c for c in result.components}
    assert parts["method"].detail == "2/2"


def test_one_change_at_a_time_then_their_combination_is_the_method_the_handout_asks(tmp_path):
    """BatchNorm, then Dropout (compared with the baseline, from which it differs by one change, not with the
    BatchNorm model, from which it differs by two), then an optimizer, each alone; the last model combines
    the three: a combination of what was measured, judged against the baseline, not three changes at once."""
    ingest = ingest_path(notebook(tmp_path, [new_code_cell(FACTORIES)]))
    dropout = [*BASE_LAYERS[:-1], layer("Dropout", rate=0.5), BASE_LAYERS[-1]]
    steps = [
        model("create_baseline_model", role="baseline"),
        model("create_improved_model_1", layers=with_bn(BASE_LAYERS)),
        model("create_improved_model_2", layers=dropout),
        model("create_improved_model_3", optimizer="RMSprop"),
        model("create_improved_model_4", layers=with_bn(dropout), optimizer="RMSprop"),
    ]
    result = criterion(score(evidence(ingest, steps), EN), "modifications")
    parts = {c.id: c for c in result.components}
    assert parts["method"].detail == "4/4"
    said = [e.text for e in result.evidence]
    assert any(t.startswith("create_improved_model_2 — against the baseline — regularisation") for t in said)
    assert any("create_improved_model_4 combines changes each tested alone" in t for t in said)
    assert not any("measured together" in t for t in said)
    # the same combination with nothing tested alone before it: changes at once
    alone = criterion(score(evidence(ingest, [steps[0], steps[4]]), EN), "modifications")
    assert {c.id: c for c in alone.components}["method"].detail == "0/1"
    assert any("measured together" in e.text for e in alone.evidence)


def test_a_model_that_could_not_be_built_is_no_parent_of_the_next_step(tmp_path):
    """A MobileNetV2 on 32×32×3 images never builds on MNIST: the Dropout model defined after it is read
    against the baseline (one regularisation change), not against a model of unknown layers (no change)."""
    ingest = ingest_path(notebook(tmp_path, [new_code_cell(FACTORIES)]))
    dropout = [*BASE_LAYERS[:-1], layer("Dropout", rate=0.5), BASE_LAYERS[-1]]
    steps = [
        model("create_baseline_model", role="baseline"),
        model("create_improved_model_1", layers=False, status="invalid"),
        model("create_improved_model_2", layers=dropout),
    ]
    result = criterion(score(evidence(ingest, steps), EN), "modifications")
    said = [e.text for e in result.evidence]
    assert any(t.startswith("create_improved_model_2 — against the baseline — regularisation") for t in said), said
    assert {c.id: c for c in result.components}["categories"].detail == "1/3"


def test_modifications_without_improved_model_scores_zero(tmp_path):
    ingest = ingest_path(notebook(tmp_path, [new_code_cell(FACTORIES.split("def create_improved_model_1")[0])]))
    result = criterion(score(evidence(ingest, [model("create_baseline_model", role="baseline")]), FR), "modifications")
    assert result.points == 0 and "Aucun modèle amélioré" in result.reason


# --------------------------------------------------------------------------- improvement


def mcnemar(gain: float, p: float) -> Significance:
    return Significance(
        mcnemar=McNemarTest(
            against="reference",
            n=1000,
            b=40,
            c=40 + int(gain * 1000),
            p_value=p,
            gain=gain,
            alpha=0.05,
            significant=p < 0.05,
        )
    )


@pytest.mark.parametrize(
    "accuracy, significance, expected",
    [
        (0.91, mcnemar(0.01, 0.001), 4),  # +1 pp, beyond noise
        (0.91, mcnemar(0.01, 0.4), 2),  # +1 pp, not beyond noise: capped
        (0.91, None, 4),  # no test stored: the thresholds alone
        (0.9030, None, 3),  # +0.30 pp
        (0.8990, None, 1),  # -0.10 pp
        (0.85, mcnemar(-0.05, 0.001), 0),  # significantly worse
        (0.85, None, 0),
    ],
)
def test_improvement_thresholds_and_significance(tmp_path, accuracy, significance, expected):
    ingest = ingest_path(notebook(tmp_path, [new_code_cell(FACTORIES)]))
    models = [
        model("create_improved_model_1", accuracy=0.80),
        model("create_improved_model_2", accuracy=accuracy, significance=significance),
    ]
    result = criterion(score(evidence(ingest, models), EN), "improvement")
    assert result.points == expected, result.evidence
    assert "create_improved_model_2" in result.reason


def test_changing_one_threshold_in_the_rubric_file_changes_the_points(tmp_path):
    ingest = ingest_path(notebook(tmp_path, [new_code_cell(FACTORIES)]))
    models = [model("create_improved_model_1", accuracy=0.9040)]
    assert criterion(score(evidence(ingest, models), EN), "improvement").points == 3
    text = (REPO / "rubric" / "default.toml").read_text(encoding="utf-8")
    changed = tmp_path / "changed.toml"
    changed.write_text(
        text.replace("{ min_gain_pp = 0.5, points = 4 }", "{ min_gain_pp = 0.4, points = 4 }"), encoding="utf-8"
    )
    rubric = load_rubric(changed)
    assert rubric.source.startswith("changed.toml sha256:")
    assert criterion(score(evidence(ingest, models, rubric=rubric), EN), "improvement").points == 4


def test_rubric_file_errors_name_the_criterion(tmp_path):
    text = (REPO / "rubric" / "default.toml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("lint_points = 0.5", "lint_pionts = 0.5"), encoding="utf-8")
    with pytest.raises(ValueError, match="code_quality.*lint_pionts"):
        load_rubric(bad)
    bad.write_text(text.replace('rule = "analysis"', 'rule = "analyse"'), encoding="utf-8")
    with pytest.raises(ValueError, match="unknown rule 'analyse'"):
        load_rubric(bad)


def test_the_rule_registry_holds_the_rubric_s_rules_and_names_an_unknown_one():
    rubric = load_rubric()
    assert list(RULES) == [c.rule for c in rubric.criteria] == [c.id for c in rubric.criteria]
    assert get_rule("improvement").params.__name__ == "ImprovementParams"
    with pytest.raises(
        UnknownRuleError,
        match="unknown rule 'analyse'; known: code_quality, modifications, improvement, analysis, documentation",
    ):
        get_rule("analyse")


def test_points_round_half_up():
    assert [_round(x, 0.5) for x in (0.24, 0.25, 1.25, 2.5, 3.74)] == [0.0, 0.5, 1.5, 2.5, 3.5]
    assert _round(1.2345, 0) == 1.234 or _round(1.2345, 0) == 1.235


# --------------------------------------------------------------------------- analysis: sections, claims, numbers

REPORT = [
    (
        "## 5. Analyse des erreurs",
        "Le modèle confond surtout les 4 et les 9, et les 7 avec les 1 : des chiffres aux "
        "traits fins ou coupés, ambigus même pour un humain, qui restent mal classés. Les "
        "zéros et les uns ne posent presque jamais de problème au réseau.",
    ),
    (
        "## 6. Test de robustesse",
        "Avec du bruit la précision baisse peu ; avec des rotations de quinze degrés la "
        "référence perd trois points, le meilleur modèle un seul, grâce à l'augmentation "
        "de données qui lui a montré des chiffres penchés pendant l'entraînement.",
    ),
    (
        "## 7. Conclusion",
        "Le meilleur modèle est le modèle 1 : je recommande de le déployer après une validation "
        "sur de vrais formulaires scannés par l'entreprise, avec un contrôle humain des chiffres "
        "dont la prédiction est incertaine.",
    ),
]


def claims_ingest(tmp_path, outputs=()):
    cells = [new_code_cell(FACTORIES, outputs=[new_output("stream", name="stdout", text=o) for o in outputs])]
    cells += [new_markdown_cell(f"{heading}\n\n{text}") for heading, text in REPORT]
    return ingest_path(notebook(tmp_path, cells))


def test_claims_that_disagree_with_the_harness_are_flagged_on_a_comparable_profile(tmp_path):
    ingest = claims_ingest(tmp_path)
    models = [model("create_improved_model_1", accuracy=0.95), model("create_improved_model_2", accuracy=0.97)]
    full = criterion(score(evidence(ingest, models, profile="full"), EN), "analysis")
    parts = {c.id: c.points for c in full.components if not c.id.startswith("marker_")}
    assert parts == {"section_errors": 0.25, "section_robustness": 0.25, "section_conclusion": 0.25, "claims": 0}
    flag = next(e for e in full.evidence if e.kind == "flag" and "create_improved_model_1" in e.text)
    assert "create_improved_model_2" in flag.text and flag.cell == 4
    assert "not the one the harness measures" in full.reason
    smoke = criterion(score(evidence(ingest, models, profile="smoke"), EN), "analysis")
    assert {c.id: c.points for c in smoke.components}["claims"] == 0.5
    assert not any(e.kind == "flag" and "create_improved_model" in e.text for e in smoke.evidence)
    agree = [model("create_improved_model_1", accuracy=0.97), model("create_improved_model_2", accuracy=0.95)]
    agreed = criterion(score(evidence(ingest, agree), EN), "analysis")
    assert {c.id: c.points for c in agreed.components}["claims"] == 0.5


def test_printed_accuracies_are_compared_with_the_harness(tmp_path):
    ingest = claims_ingest(
        tmp_path,
        outputs=[
            "Epoch 1/5 - accuracy: 0.9000 - val_accuracy: 0.9900\n"
            "Modèle de référence - Précision: 98.90%\n"
            "Modèle amélioré 1 - Précision: 99.40%\n",
            "Modèle               Précision   Temps (s)\nM2 - régularisation       99.34           74.86\n",
        ],
    )
    found = {r.model: r.accuracy for r in rubric_text.reported_accuracies(ingest)}
    assert found == pytest.approx(
        {"reference": 0.989, "create_improved_model_1": 0.994, "create_improved_model_2": 0.9934}
    )
    models = [model("create_improved_model_1", accuracy=0.95), model("create_improved_model_2", accuracy=0.99)]
    reference = model("ref", role="reference", accuracy=0.988)
    full = criterion(score(evidence(ingest, models, reference=reference), FR), "analysis")
    flags = [e.text for e in full.evidence if e.kind == "flag" and "affiche" in e.text]
    assert len(flags) == 1 and "99,40\u00a0%" in flags[0] and "95,00\u00a0%" in flags[0]  # written the French way
    smoke = criterion(score(evidence(ingest, models, reference=reference, profile="smoke"), FR), "analysis")
    assert not [e for e in smoke.evidence if e.kind == "flag" and "affiche" in e.text]


@pytest.mark.parametrize(
    "headings, expected",
    [
        (
            [
                "## Introduction",
                "## Modèle de référence",
                "## Améliorations proposées",
                "## Résultats comparatifs",
                "## Analyse des erreurs",
                "## Test de robustesse",
                "## Conclusion",
            ],
            7,
        ),
        (
            [
                "# Context and goals",
                "# Baseline model",
                "# Experiments",
                "# Comparison of the models",
                "# Error analysis",
                "# Robustness to noise",
                "# Summary and recommendations",
            ],
            7,
        ),
        (
            [
                "**1. Contexte**",
                "2) Point de départ",
                "### Essais et modifications",
                "Tableau récapitulatif\n---",
                "## Matrice de confusion",
                "## Images bruitées",
                "## Bilan",
            ],
            7,
        ),
        (
            [
                "## Q1. What was asked?",
                "## Q2. What does the baseline get wrong?",
                "## Q3. What I changed, and why",
                "## Q4. Did it work?",
                "## Q5. Where does the best model still fail?",
                "## Q6. How robust is it?",
                "## Q7. What should the company do?",
            ],
            7,
        ),
        (["## Introduction", "**So what should the company do?**"], 2),
        (["## Introduction", "## Que retenir ?"], 2),
        (["## Partie A", "## Partie B"], 0),
    ],
)
def test_sections_are_found_in_french_english_and_variations(tmp_path, headings, expected):
    words = " ".join(["mot"] * 25)
    cells = [new_code_cell(FACTORIES)] + [new_markdown_cell(f"{h}\n\n{words}") for h in headings]
    ingest = ingest_path(notebook(tmp_path, cells))
    result = criterion(score(evidence(ingest, [model("create_improved_model_1", accuracy=0.9)]), EN), "documentation")
    assert result.components[0].detail == f"{expected}/7", [e.text for e in result.evidence]


def test_a_title_does_not_stand_for_a_section_and_content_finds_unusual_headings(tmp_path):
    cells = [
        new_markdown_cell("# Mes expériences sur MNIST"),
        new_code_cell(FACTORIES),
        new_markdown_cell("## Point de départ\n\nLe modèle fourni par l'entreprise, tel quel."),
        new_markdown_cell("## Trois idées\n\nDu dropout, puis de l'augmentation et un learning rate plus faible."),
        new_markdown_cell(
            "## Quand il se trompe\n\nLe réseau confond les 4 et les 9 : ces chiffres mal classés "
            "ont des traits coupés."
        ),
        new_markdown_cell("## Bilan\n\nJe recommande le modèle 2."),
    ]
    found = sections_of(rubric_text.prose_lines(ingest_path(notebook(tmp_path, cells))))
    assert found["improvements"].title == "Trois idées" and found["improvements"].how == "content"
    assert found["errors"].title == "Quand il se trompe" and found["errors"].how == "heading"
    assert found["baseline"].title == "Point de départ" and found["conclusion"].title == "Bilan"


def test_prose_the_student_titled_analysis_is_never_taken_for_the_description_of_the_changes(tmp_path):
    """An "## Analysis" that names Dropout, early stopping and augmentation as next steps is the analysis:
    found by content as "improvements", its sentences were hidden from the analysis criterion."""
    cells = [
        new_markdown_cell("# MNIST mini-project\n\nI kept the handout code and trained for 12 epochs."),
        new_code_cell(FACTORIES),
        new_markdown_cell(
            "## Analysis\n\n- 12 epochs: 99.04 % vs 98.93 %, within run-to-run noise.\n"
            "- Errors are the same pairs in both: 4 ↔ 9 and 3 ↔ 5.\n\n"
            "**Next step:** the overfitting calls for Dropout or early stopping, the rotation drop for data augmentation."
        ),
    ]
    _, found, section_of = read_sections(tmp_path, cells)
    assert "improvements" not in found or found["improvements"].title != "Analysis"
    assert section_of(3, 5) not in ("introduction", "baseline", "improvements")


def test_a_run_in_label_in_a_notebook_that_introduces_a_list_heads_that_list_only(tmp_path):
    """ "I tried 3 changes:" opening a "## Results" cell heads its list; the results after it are the
    results (they were hidden from the analysis as the description of the changes)."""
    cells = [
        new_code_cell(FACTORIES),
        new_markdown_cell(
            "## Results\n\nI tried 3 changes:\n- model 1: dropout, to reduce overfitting\n- model 2: more filters\n\n"
            "| model | test acc |\n|---|---|\n| baseline | 98.84 |\n\n"
            "Most errors of the best model are 4 predicted as 9 (7) and 7 predicted as 2 (6)."
        ),
    ]
    lines, found, section_of = read_sections(tmp_path, cells)
    at = {line.text[:12]: section_of(line.cell, line.line) for line in lines}
    assert at["- model 1: d"] == "improvements" and at["Most errors "] == "results"
    assert "Most errors" not in found["improvements"].text


RUN_IN_REPORT = '''"""Mini-projet MNIST : trois modifications, une à la fois.

Référence : 98,92 % sur le test ; la perte de validation remonte après l'époque 3.

Erreurs (M3, 82) : 4→9 (11), 7→2 (7) ; les chiffres décentrés ont presque disparu.

Robustesse (bruit σ 0,2 / rotation ±15°), même perturbation pour tous :
    référence 96,9 / 95,8 ; M3 97,2 / 96,4

Note : M1 ≈ M2 ≈ M3 sur le test propre.

Recommandation : M3, puis des rotations de ±10°.
"""
from tensorflow import keras


def create_baseline_model():
    return keras.Sequential()
'''


def test_a_long_title_underlined_to_its_length_is_a_heading_and_a_divider_under_a_paragraph_is_not():
    title = "Results (full output at the bottom of the file)"
    assert rubric_text.heading_level(title, "-" * len(title)) == (2, title)
    sentence = "The improved model is better everywhere and I cannot say which change matters most here."
    assert rubric_text.heading_level(sentence, "---") is None


def test_a_bold_label_closed_by_a_period_opens_its_section_and_a_short_version_is_the_introduction(tmp_path):
    cells = [
        new_markdown_cell(
            "# Digit reader for paper forms — pushing the handout CNN past 99.5 %\n\n"
            "**Short version.** The handout CNN gets 98.96 % on the MNIST test set; BatchNorm and Dropout help "
            "the company's form reader, augmentation alone does nothing in five epochs.\n\n## Setup"
        ),
        new_code_cell(FACTORIES),
        new_markdown_cell("## Results\n\n| model | accuracy |\n| --- | --- |\n| baseline | 98.96 % |"),
    ]
    found = sections_of(rubric_text.prose_lines(ingest_path(notebook(tmp_path, cells))))
    assert found["introduction"].title == "Short version" and "98.96 %" in found["introduction"].text
    assert rubric_text.RUN_IN.match("**Results.** 98.96 % for the baseline")
    assert not rubric_text.RUN_IN.match("**Note.**")  # a label with no text after it on its line


def test_a_heading_that_names_no_section_ends_the_section_before_it(tmp_path):
    cells = [
        new_code_cell(FACTORIES),
        new_markdown_cell("**What I changed and why**\n\nDropout after each block, because the baseline overfits."),
        new_markdown_cell("**The scoreboard**\n\n| model | accuracy |\n| --- | --- |\n| baseline | 98.9 % |"),
        new_markdown_cell(
            "**Where it still trips up**\n\nA third of the 80 errors are 4s taken for 9s; these are errors of "
            "style, not of position, which is why shift augmentation did little for them."
        ),
    ]
    lines, _, section_of = read_sections(tmp_path, cells)
    where = {line.text[:12]: section_of(line.cell, line.line) for line in lines if not line.text.startswith("**")}
    assert where["Dropout afte"] == "improvements"
    assert where["| baseline |"] != "improvements" and where["A third of t"] != "improvements"
    # a section found by its content under a heading of its own is bounded by that heading
    assert where["| baseline |"] == "results"
    result = criterion(
        score(evidence(ingest_path(notebook(tmp_path, cells)), [model("create_improved_model_1")]), EN), "analysis"
    )
    causes = next(e for e in result.evidence if e.text.startswith("causes proposed"))
    assert "which is why" in causes.text


def test_a_paragraph_s_run_in_label_is_a_section_heading(tmp_path):
    found = module_sections(tmp_path, RUN_IN_REPORT)
    assert {n: s.title for n, s in found.items() if s.how == "heading"} == {
        "baseline": "Référence",
        "errors": "Erreurs",
        "robustness": "Robustesse, même perturbation pour tous",
        "conclusion": "Recommandation",
    }
    # a run-in section is its paragraph, the label's line included; "Note :" names no section
    assert found["errors"].text.startswith("Erreurs (M3, 82) : 4→9") and "Recommandation" not in found["errors"].text
    assert "96,9" in found["robustness"].text and "Note" in found["robustness"].text


def test_a_label_given_only_a_number_is_a_row_of_results_not_a_heading(tmp_path):
    """ "baseline (handout, 5 epochs): 98.94%" in a script's closing string is a result, not the heading of a
    "baseline" section: read as one, it took every sentence after it (the comparison, the causes, the
    confusions) out of the analysis."""
    source = (
        "from tensorflow import keras\n\n"
        "def create_baseline_model():\n    return keras.Sequential()\n\n"
        '"""\nRESULTS (8 epochs each, batch 128)\n\nbaseline (handout, 5 epochs): 98.94%\n\n'
        "dropout  lr      test acc\n0.3      1e-3    99.24   <- best\n0.7      1e-3    98.71\n\n"
        "So dropout 0.3 is best, 99.24% so +0.3 over the baseline, 76 errors.\n"
        "Most errors are 4/9 and 7/2 when I looked at some of them.\n"
        '"""\n'
    )
    found = module_sections(tmp_path, source)
    assert "baseline" not in found or found["baseline"].how != "heading"
    assert rubric_text.RUN_IN.match("Référence : 98,92 % sur le test ; la perte de validation remonte")
    assert not rubric_text.run_in_label("baseline (handout, 5 epochs): 98.94%")
    assert not rubric_text.run_in_label("Test accuracy : 99,1 %")


def test_a_section_found_by_its_words_alone_must_say_what_it_is_there_to_say(tmp_path):
    """Course theory on augmentation ("rotations, décalages", "L1 ou L2", "Ioffe et Szegedy en 2015") is no
    robustness test: found by its words, with no measure (a citation's year and a name's digit are none), it
    is not the section; the same words with a measure are."""
    theory = (
        "4. Les techniques de régularisation\n\nLa normalisation par batch, proposée par Ioffe et Szegedy en 2015, "
        "stabilise l'apprentissage. La régularisation L1 ou L2 pénalise les poids. L'augmentation ajoute des "
        "rotations, des décalages et du bruit aux images pour rendre le modèle plus robuste aux perturbations.\n"
    )
    changes = "3. Modifications\n\nDropout 0.3, BatchNorm et une augmentation légère, un changement à la fois.\n\n"
    source = f'"""Mini-projet MNIST\n\n{changes}{theory}"""\nfrom tensorflow import keras\n'
    assert "robustness" not in module_sections(tmp_path, source)
    measured = source.replace("aux perturbations.", "aux perturbations : sous un bruit de 0,2 il perd 3 points.")
    assert module_sections(tmp_path, measured)["robustness"].how == "content"


def test_a_text_that_observes_nothing_earns_half_of_the_claims_part(tmp_path):
    """ "We keep model 2, it is the best" in a text quoting no measure chose its best model on nothing it shows."""
    conclusion = "## Conclusion\n\nModel 2 is the best model, it generalises better, so we recommend it to the company."
    observed = conclusion + " It reaches 99.2 % against 98.9 % for the baseline."
    parts = {}
    for text in (conclusion, observed):
        cells = [new_code_cell(FACTORIES), new_markdown_cell(text)]
        models = [model("create_improved_model_1", accuracy=0.991), model("create_improved_model_2", accuracy=0.992)]
        result = criterion(score(evidence(ingest_path(notebook(tmp_path, cells)), models), EN), "analysis")
        parts[text] = next(c for c in result.components if c.id == "claims").points
    assert parts[observed] == 0.5 and parts[conclusion] == 0.25


def test_a_run_in_label_in_a_notebook_heads_its_cell_not_the_cells_after_it(tmp_path):
    """A notebook with no markdown report keeps it in comments: "# change 3: augmentation …" opens the
    improvements in its cell, and the closing cell's comments ("9 is the worst class …") are the analysis."""
    cells = [
        new_markdown_cell("# MNIST mini-project"),
        new_code_cell(FACTORIES),
        new_code_cell(
            "# change 1: batch 128 -> 32, nothing else. 4x more updates per epoch, noisier gradients\n"
            "m1 = run(create_improved_model_1, bs=32)\n\n"
            "# change 3: augmentation, a harder task, so 10 epochs instead of 5\n"
            "m3 = run(create_improved_model_3, epochs=10)\n"
        ),
        new_code_cell(
            "# dropout: train < val, val_loss still falling at epoch 5, so more epochs would help\n"
            "# 9 is the worst class in all 4 models, 4<->9 (7 errors) and 7->2 (6) dominate\n"
            "# single seed: differences under 0.1 point are not reliable\n"
            "print(gains)\n"
        ),
    ]
    lines, _, section_of = read_sections(tmp_path, cells)
    where = {line.text[:12]: section_of(line.cell, line.line) for line in lines if line.text}
    assert where["change 3: au"] == "improvements"
    assert where["9 is the wor"] is None and where["single seed:"] is None
    result = criterion(
        score(evidence(ingest_path(notebook(tmp_path, cells)), [model("create_improved_model_1")]), EN), "analysis"
    )
    errors = next(e for e in result.evidence if e.text.startswith("errors named"))
    assert "4<->9" in errors.text


def test_module_prose_is_its_docstrings_and_comments_with_lines(tmp_path):
    path = tmp_path / "student.py"
    path.write_text(
        textwrap.dedent('''\
        """Report.

        Conclusion
        ==========
        The best model is model 2, because it overfits less.
        """
        from tensorflow import keras


        def create_improved_model_2():
            """Adds Dropout to reduce overfitting."""
            return keras.Sequential()  # a comment
        '''),
        encoding="utf-8",
    )
    ingest = ingest_path(path)
    lines = rubric_text.prose_lines(ingest)
    by_text = {line.text: line.line for line in lines}
    assert by_text["Conclusion"] == 3 and by_text["Adds Dropout to reduce overfitting."] == 11
    assert by_text["a comment"] == 12
    claims = rubric_text.best_model_claims(lines, {}, ingest.factories)
    assert [(c.model, c.line) for c in claims] == [("create_improved_model_2", 5)]


def test_a_module_s_commented_out_code_is_not_its_prose_but_a_results_table_in_comments_is(tmp_path):
    """``# m2b = Sequential([...])  # dropout 0.5 -> worse`` is code set aside, not a sentence that can
    justify a change; ``# baseline   98.93   24s`` is the student's own table of results."""
    path = tmp_path / "student.py"
    path.write_text(
        "from tensorflow import keras\n"
        "# dropout turns neurons off at random to fight overfitting\n"
        "# m2b = keras.Sequential([...])  # dropout 0.5 everywhere -> worse\n"
        "# m2b.fit(x, y, epochs=5, batch_size=128)\n"
        "# v1 baseline      98.93      24s\n",
        encoding="utf-8",
    )
    texts = [line.text for line in rubric_text.prose_lines(ingest_path(path)) if line.text]
    assert texts == ["dropout turns neurons off at random to fight overfitting", "v1 baseline      98.93      24s"]


def test_a_notebook_s_prose_includes_a_report_written_as_a_string_or_a_comment_cell(tmp_path):
    """A conclusion pasted as a bare string in a code cell, or a cell of comment sentences, is the report; a
    label string, commented-out code and comments beside code are not."""
    notebook = new_notebook()
    notebook.cells = [
        new_markdown_cell("# Projet"),
        new_code_cell(
            "import keras\n\ndef create_baseline_model():\n    return keras.Sequential()  # le modèle du prof"
        ),
        new_code_cell(
            '"""\nCONCLUSION\nle meilleur c\'est le modèle 1 (99.3 % contre 98.9), surtout des 4 et des 9.\n"""'
        ),
        new_code_cell("# j'ai essayé un taux plus petit mais ça apprenait trop lentement\n# donc je reste à 1e-3"),
        new_code_cell("# model.fit(x, y, epochs=3)\n# model.evaluate(x, y)"),
        new_code_cell('"résultats"\nprint(1)'),
    ]
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook, path)
    lines = rubric_text.prose_lines(ingest_path(path))
    assert [(line.cell, line.line, line.text[:20]) for line in lines] == [
        (1, 1, "# Projet"),
        (3, 2, "CONCLUSION"),
        (3, 3, "le meilleur c'est le"),
        (4, 1, "j'ai essayé un taux "),
        (4, 2, "donc je reste à 1e-3"),
    ]


def test_a_model_is_named_by_the_student_s_own_function_or_its_distinctive_word():
    factories = [Factory(name="create_baseline_model", role="baseline", cell=1, line=1)] + [
        Factory(name=f"create_improved_model_{n}", role="improved", cell=1, line=1) for n in (1, 2)
    ]
    own = {
        "create_baseline_model": "modele_base",
        "create_improved_model_1": "modele_dropout",
        "create_improved_model_2": "modele_final",
    }
    numbers = rubric_text.factory_numbers(factories, own)
    refs = lambda text: [r[2][-1] for r in rubric_text.model_refs(text, numbers)]  # noqa: E731
    assert refs("le meilleur c'est le final (99.36 %)") == ["2"]
    assert refs("modele_dropout puis the final model") == ["1", "2"]
    assert refs("final : 0.99, on finit la") == []  # a word alone is not a model's name
    lines = [rubric_text.Line("Le meilleur est le final, mieux que le dropout.", 2, 1)]
    assert [c.model for c in rubric_text.best_model_claims(lines, {}, factories, own)] == ["create_improved_model_2"]
    passages = rubric_text.passages([rubric_text.Line("pas mieux que le dropout, le final gagne", 2, 1)])
    assert rubric_text.passage_models(passages, numbers) == [["create_improved_model_2", "create_improved_model_1"]]


def test_a_model_is_named_by_the_label_of_its_name_and_a_discovered_model_by_its_variable():
    factories = [Factory(name="create_baseline_model", role="baseline", cell=1, line=1)] + [
        Factory(name=f"create_improved_model_{n}", role="improved", cell=1, line=n) for n in (1, 2, 3)
    ]
    discovered = [
        DiscoveredModel(factory=f.name, role=f.role, variable=f"modele_{letter}")
        for f, letter in zip(factories, "abcd", strict=True)
    ]
    ingest = IngestResult(
        student="s",
        source="s.py",
        kind="module",
        main_file="s.py",
        sha256="0" * 64,
        status="ok",
        factories=factories,
        factory_source="discovered",
        discovery=DiscoveryRecord(status="ok", models=discovered),
    )
    numbers = rubric_text.factory_numbers(factories, ingest.own_names)
    refs = lambda text: [r[2][-1] for r in rubric_text.model_refs(rubric_text.plain(text), numbers)]  # noqa: E731
    assert refs("Modèle B : un bloc de convolution en plus") == ["1"]
    assert refs("le modèle D, la référence avec SGD ; modele_c gagne") == ["3", "2"]
    assert refs("il a b c d") == []  # a letter alone is not a model's name
    own = {"create_baseline_model": "build_model_v1", "create_improved_model_1": "build_model_v2"}
    numbers = rubric_text.factory_numbers(factories[:3], {**own, "create_improved_model_2": "build_model_v3"})
    # the student's v2 is the harness's model 1: their label decides over the number in it
    assert refs("v2 dropout 99.14, v3 bn+dropout 99.26") == ["1", "2"]
    configured = {
        "create_improved_model_1": "build_model(Config('dropout_0.25', dropout=0.25))",
        "create_improved_model_2": "build_model(Config('batchnorm', batchnorm=True))",
    }
    numbers = rubric_text.factory_numbers(factories[:3], configured)  # a model built from a configuration: its label
    assert refs("dropout_0.25 gains +0.19; the batchnorm model +0.15 (borderline)") == ["1", "2"]
    # a label followed by what the model is ("modele_b_batchnorm": "b"), named by the list item it opens
    own = {"create_improved_model_1": "modele_a_dropout", "create_improved_model_2": "modele_b_batchnorm"}
    numbers = rubric_text.factory_numbers(factories[:3], own)
    assert refs("B. BatchNormalization apres chaque convolution -> stabilise") == ["2"]
    assert refs("* B (BatchNorm) : 99,18 %") == ["2"] and refs("A : Dropout 0.25") == ["1"]
    assert refs("a b c, then a dropout") == []
    lines = [rubric_text.Line(text, None, n) for n, text in enumerate(["  A. Dropout 0.25", "  B. BatchNorm"], 1)]
    assert [x.text for x in rubric_text.passages(lines)] == ["A. Dropout 0.25", "B. BatchNorm"]


def test_a_model_is_named_by_its_run_s_label_when_the_label_is_one_name():
    """``CONFIGS = {"gap": (cnn_gap, 15), "label_smoothing": (cnn_ls, 15)}``: the student's name for each run
    names its model in the text ("(b) ``gap`` -- Architecture : …"), as a word of the function's name would."""
    factories = [Factory(name=f"create_improved_model_{n}", role="improved", cell=1, line=n) for n in (1, 2, 3)]
    own = {
        "create_improved_model_1": "cnn_gap",
        "create_improved_model_2": "cnn_ls",
        "create_improved_model_3": "cnn_x",
    }
    labels = {
        "create_improved_model_1": "gap",
        "create_improved_model_2": "label_smoothing",
        "create_improved_model_3": "combined all",
    }
    numbers = rubric_text.factory_numbers(factories, own, labels)
    refs = lambda text: [r[2][-1] for r in rubric_text.model_refs(rubric_text.plain(text), numbers)]  # noqa: E731
    assert refs("(b) ``gap`` -- Architecture : GlobalAveragePooling2D") == ["1"]
    assert refs("label_smoothing : meilleur changement isolé") == ["2"]
    assert refs("a gap of 0.2 points") == []  # a word alone is not a model's name
    assert "combined all" not in numbers  # a label of several words names no model on its own
    # without the labels, the three-letter word of ``cnn_gap`` names nothing
    assert rubric_text.model_refs("(b) gap -- architecture", rubric_text.factory_numbers(factories, own)) == []


def test_a_model_is_named_by_the_technique_only_it_adds():
    """Students mostly call a model by its change ("le modèle avec BatchNormalization", "the dropout model",
    "BatchNorm gives the best accuracy"): a technique that sets one improved model apart names it; one that
    two models add (a combined model beside the dropout one) names neither."""
    factories = [Factory(name=f"create_improved_model_{n}", role="improved", cell=1, line=n) for n in (1, 2, 3)]
    base = rubric_models.Features(convs=("32 3×3",), optimizer="Adam")
    dropout = rubric_models.Features(convs=("32 3×3",), dropout=("Dropout(0.3)",), optimizer="Adam")
    bn = rubric_models.Features(convs=("32 3×3",), norms=("BatchNormalization",), optimizer="Adam")
    sgd = rubric_models.Features(convs=("32 3×3",), optimizer="SGD", callbacks=("ReduceLROnPlateau",))
    assert rubric_models.naming_words(bn, base) >= {"batchnorm", "batchnormalization", "bn"}
    assert rubric_models.naming_words(base, dropout) == set()  # a removal names nothing
    techniques = {
        "create_improved_model_1": rubric_models.naming_words(dropout, base),
        "create_improved_model_2": rubric_models.naming_words(bn, base),
        "create_improved_model_3": rubric_models.naming_words(sgd, base),
    }
    numbers = rubric_text.factory_numbers(factories, None, None, techniques)
    refs = lambda text: [r[2][-1] for r in rubric_text.model_refs(rubric_text.plain(text), numbers)]  # noqa: E731
    assert refs("je recommande le modèle avec BatchNormalization") == ["2"]
    assert refs("BatchNorm gives the best accuracy; the dropout model is close") == ["2", "1"]
    assert refs("the model with SGD and ReduceLROnPlateau") == ["3"]
    assert refs("la normalisation des entrées aide, le dropout aussi") == ["1"]
    assert refs("BatchNorm normalise les activations") == []  # a technique explained, not a model named
    lines = [rubric_text.Line("Conclusion : je recommande le modèle avec BatchNormalization.", 2, 1)]
    claims = rubric_text.best_model_claims(lines, {}, factories, None, None, techniques)
    assert [c.model for c in claims] == ["create_improved_model_2"]
    techniques["create_improved_model_3"] = rubric_models.naming_words(
        rubric_models.Features(dropout=("Dropout(0.3)",), norms=("BatchNormalization",), optimizer="Adam"), base
    )
    shared = rubric_text.factory_numbers(factories, None, None, techniques)
    assert rubric_text.model_refs("le modele avec dropout", shared) == []


def test_a_model_is_named_with_its_version_and_as_what_the_text_recommends():
    factories = [Factory(name=f"create_improved_model_{n}", role="improved", cell=1, line=n) for n in (1, 2)]
    own = {"create_improved_model_1": "make_mobilenet", "create_improved_model_2": "make_cnn_dropout"}
    numbers = rubric_text.factory_numbers(factories, own)
    refs = lambda text: [r[2][-1] for r in rubric_text.model_refs(rubric_text.plain(text), numbers)]  # noqa: E731
    assert refs("My recommendation to the company is to move to MobileNetV2.") == ["1"]
    assert refs("je recommande le mobilenet ; the MobileNet model") == ["1", "1"]
    assert refs("mobilenetwork") == []  # a longer word is not the name


# --------------------------------------------------------------------------- code quality

MESSY = """
import os
from tensorflow import keras


def create_baseline_model():
    model = keras.Sequential([keras.layers.Dense(10)])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def create_improved_model_1():
    model = keras.Sequential([keras.layers.Dense(10)])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model
    print("never")


def helper_never_called(x=[]):
    unused = 3
    # model.add(keras.layers.Dense(5))
    # print(model.summary())
    # This is a sentence, not code
    return x
"""


def test_a_ruff_that_fails_is_not_read_as_clean_code(tmp_path, monkeypatch):
    """ruff exits 2 when it fails (no thread to spawn on a loaded machine): its empty output is no verdict,
    and the lint falls back to pyflakes."""
    failing = tmp_path / "ruff"
    failing.write_text("#!/bin/sh\necho 'error: Resource temporarily unavailable' >&2\nexit 2\n", encoding="utf-8")
    failing.chmod(0o755)
    monkeypatch.setattr(rubric_code, "_ruff_binary", lambda: str(failing))
    tool, findings = rubric_code.lint("def f():\n    unused = 3\n", "ruff", ["F"], [])
    assert tool == "pyflakes" and [f.code for f in findings] == ["UnusedVariable"]


def test_a_cell_s_last_expression_is_shown_by_jupyter_not_useless(tmp_path):
    """``results`` alone at the end of a cell displays it (ruff's B018 reads the flattened cells as one file);
    the same name in the middle of a cell is a useless expression still."""
    cells = [
        new_code_cell(FACTORIES),
        new_code_cell("results = {'a': 1}\nresults"),
        new_code_cell("drop_rate = 0.4\ndrop_rate\nprint(drop_rate)"),
    ]
    ingest = ingest_path(notebook(tmp_path, cells))
    result = criterion(score(evidence(ingest, [model("create_improved_model_1")]), EN), "code_quality")
    flagged = [(e.cell, e.line) for e in result.evidence if "B018" in e.text]
    assert flagged == [(3, 2)]


def test_code_findings_lint_dead_code_and_duplicates(tmp_path):
    path = tmp_path / "messy.py"
    path.write_text(MESSY, encoding="utf-8")
    ingest = ingest_path(path)
    code = rubric_code.student_code(ingest.code_cells)
    tool, findings = rubric_code.lint(code.source, "ruff", ["F", "E9", "B"], ["F401"])
    assert tool == "ruff" and {f.code for f in findings} == {"F841", "B006"}
    tool, findings = rubric_code.lint(code.source, "pyflakes", [], ["UnusedImport"])
    assert tool == "pyflakes" and [f.code for f in findings] == ["UnusedVariable"]
    factories = {"create_baseline_model", "create_improved_model_1"}
    dead = {(d.kind, d.line) for d in rubric_code.dead_code(code.source, factories)}
    assert dead == {("unreachable", 16), ("unused_function", 19), ("commented_code", 21)}
    # the commented-out lines are dead code, not comments: only the sentence counts
    assert rubric_code.comment_stats(code.source, set(range(19, 25)))[0] == 1
    copies = read_structure(ingest.code_cells, set(), min_lines=2).copies
    assert [(c.first.name, c.second.name) for c in copies] == [("create_baseline_model", "create_improved_model_1")]
    result = criterion(
        score(
            evidence(
                ingest,
                [
                    model("create_baseline_model", role="baseline"),
                    model("create_improved_model_1", status="error", layers=False),
                ],
            ),
            EN,
        ),
        "code_quality",
    )
    parts = {c.id: c.points for c in result.components}
    # a short module: every part but "runs" is earned in proportion to its own lines, full at 20
    source = code.source.splitlines()
    own = sum(1 for n in rubric_code.own_lines(code) if not source[n - 1].strip().startswith("#"))
    assert 0 < own < 20
    assert parts["runs"] == 1.0 / 2 and parts["dead_code"] == pytest.approx(
        0.5 * 0.25 * own / 20, abs=1e-3
    )  # dead_code_points 0.5, 3 items
    assert parts["structure"] == pytest.approx(1.0 * own / 20, abs=1e-3)  # bodies under duplication_min_lines
    where = {e.text.split(":")[0]: e.line for e in result.evidence if e.kind == "flag"}
    assert where["ruff F841"] == 20 and where["unreachable code (after return/raise/break/continue)"] == 16


def test_notebook_lines_map_back_to_cells(tmp_path):
    cells = [
        new_code_cell("!pip install keras\nimport os"),
        new_markdown_cell("text"),
        new_code_cell("def f():\n    x = 1\n    return 2"),
    ]
    ingest = ingest_path(notebook(tmp_path, cells))
    code = rubric_code.student_code(ingest.code_cells)
    _, findings = rubric_code.lint(code.source, "ruff", ["F"], [])
    located = {f.code: code.locate(f.line) for f in findings}
    assert located == {"F401": (1, 2), "F841": (3, 2)}


# --------------------------------------------------------------------------- overrides


def test_overrides_files_toml_and_csv(tmp_path):
    criteria = {"analysis": 3.0, "modifications": 6.0}
    toml_file = tmp_path / "o.toml"
    toml_file.write_text(
        '[[override]]\nstudent = "Zoé Martin"\ncriterion = "analysis"\npoints = 3\ncomment = "bien"\n'
        '[[override]]\nstudent = "minimal"\ncriterion = "modifications"\ndelta = -1\n',
        encoding="utf-8",
    )
    loaded = load_overrides(toml_file, criteria)
    assert loaded.for_student("Zoé Martin")["analysis"].apply(1.0, 3.0) == 3
    assert loaded.for_student("minimal")["modifications"].apply(0.5, 6.0) == 0  # clamped at 0
    csv_file = tmp_path / "o.csv"
    csv_file.write_text(
        "student,criterion,points,delta,comment\nZoé Martin,analysis,2.5,,relu\nminimal,modifications,,+1,\n",
        encoding="utf-8",
    )
    loaded = load_overrides(csv_file, criteria)
    assert loaded.for_student("Zoé Martin")["analysis"].points == 2.5
    assert loaded.for_student("minimal")["modifications"].delta == 1
    for bad, message in [
        ("student,criterion,points,delta,comment\na,anlysis,1,,\n", "unknown criterion 'anlysis'"),
        ("student,criterion,points,delta,comment\na,analysis,4,,\n", "outside 0–3"),
        ("student,criterion,points,delta,comment\na,analysis,1,1,\n", "exactly one of"),
        ("student,criterion,points,delta,comment\na,analysis,x,,\n", "not a number"),
    ]:
        csv_file.write_text(bad, encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            load_overrides(csv_file, criteria)


def test_overrides_keep_the_automatic_points(tmp_path):
    ingest = ingest_path(notebook(tmp_path, [new_code_cell(FACTORIES)]))
    overrides = tmp_path / "o.toml"
    overrides.write_text(
        '[[override]]\nstudent = "student"\ncriterion = "improvement"\ndelta = 1.5\ncomment = "seed noise"\n',
        encoding="utf-8",
    )
    rubric = load_rubric(None, overrides)
    result = score(evidence(ingest, [model("create_improved_model_1", accuracy=0.9010)], rubric=rubric), EN)
    improvement = criterion(result, "improvement")
    assert (improvement.auto_points, improvement.instructor_points, improvement.points) == (2, 3.5, 3.5)
    assert improvement.instructor_comment == "seed noise" and improvement.evidence[-1].kind == "flag"
    assert result.total == result.total_auto + 1.5 and "o.toml sha256:" in result.overrides


def test_older_results_with_text_evidence_still_load():
    old = CriterionScore.model_validate(
        {"id": "a", "title": "A", "points": 1, "max_points": 2, "reason": "r", "evidence": ["found this"]}
    )
    assert old.evidence[0].text == "found this" and old.auto_points is None


def test_every_rubric_message_exists_in_both_languages():
    keys = {k for k in FR.messages if k.startswith("rb_")}
    assert keys == {k for k in EN.messages if k.startswith("rb_")} and len(keys) > 60
    source = "".join(path.read_text(encoding="utf-8") for path in (REPO / "harness" / "scoring").rglob("*.py"))
    used = set(re.findall(r'"(rb_[a-z_]+)"', source))
    assert used <= keys, used - keys


SMALL_SUITE = small_suite(ASSIGNMENT_TESTS, subset="all")


@pytest.fixture(scope="session")
def labelled(tmp_path_factory, mnist_npz, protocol_path):
    """tests/fixtures/labelled_rubric/ graded once with the smoke profile (real workers, real training)."""
    folder = tmp_path_factory.mktemp("labelled") / "class"
    shutil.copytree(LABELLED, folder)
    suite = tmp_path_factory.mktemp("suite") / "suite.toml"
    suite.write_text(SMALL_SUITE, encoding="utf-8")
    out = tmp_path_factory.mktemp("labelled-out") / "out"
    return run_grade(
        [folder],
        out,
        protocol=protocol_path,
        data=mnist_npz,
        cache=out / ".cache",
        profile=EXPECTED["profile"],
        suite=suite,
    )


@pytest.mark.slow
@pytest.mark.parametrize("sample", SAMPLES)
def test_labelled_sample_lands_in_its_expected_ranges(labelled, sample):
    expected = EXPECTED[sample]
    result = labelled.result(Path(expected["file"]).stem)
    points = {c.id: c.points for c in result.score.criteria}
    outside = {
        cid: (points[cid], expected[cid]) for cid in CRITERIA if not expected[cid][0] <= points[cid] <= expected[cid][1]
    }
    low, high = expected["total"]
    if not low <= result.score.total <= high:
        outside["total"] = (result.score.total, expected["total"])
    details = {
        c.id: (c.reason, [c.model_dump(include={"id", "points"}) for c in c.components])
        for c in result.score.criteria
        if c.id in outside
    }
    assert not outside, (outside, details)


@pytest.mark.slow
def test_every_criterion_gives_its_reason_and_located_evidence(labelled):
    for sample in SAMPLES:
        result = labelled.result(Path(EXPECTED[sample]["file"]).stem)
        assert result.status in ("ok", "partial"), (sample, result.reason)
        for c in result.score.criteria:
            assert c.reason.strip() and c.components, (sample, c.id)
            assert c.auto_points == c.points and c.instructor_points is None
        modifications = next(c for c in result.score.criteria if c.id == "modifications")
        located = [e for e in modifications.evidence if e.where and (e.cell or e.line)]
        assert located, (sample, modifications.evidence)
    excellent = labelled.result("excellent")
    texts = " ".join(e.text for c in excellent.score.criteria for e in c.evidence)
    for category in (
        "architecture",
        "régularisation",
        "hyperparamètres",
        "augmentation de données",
        "stratégie d'entraînement",
    ):
        assert f"— {category} :" in texts, category


@pytest.mark.slow
def test_rescore_after_a_threshold_change_is_fast_and_retrains_nothing(labelled, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(labelled.out, out, copy_function=shutil.copy2)
    stored = {p: p.stat().st_mtime_ns for p in [*out.rglob("*.keras"), *out.rglob("training.json")]}
    assert stored
    text = (REPO / "rubric" / "default.toml").read_text(encoding="utf-8")
    changed = tmp_path / "changed.toml"  # one threshold: full points now need a 50-point gain
    changed.write_text(
        text.replace("{ min_gain_pp = 0.5, points = 4 }", "{ min_gain_pp = 50, points = 4 }"), encoding="utf-8"
    )
    started = time.monotonic()
    results = {r.student: r for r in rescore(out, rubric_path=changed, language="fr")}
    seconds = time.monotonic() - started
    assert seconds < 0.05 * labelled.seconds, (seconds, labelled.seconds)
    assert {p: p.stat().st_mtime_ns for p in stored} == stored
    assert not any((out / ".work").glob("*/train")), "a training worker was started"
    before = {r.student: r.score for r in labelled.summary.results}
    for student, result in results.items():
        assert result.score.rubric.startswith("changed.toml sha256:")
        new, old = (
            next(c.points for c in score.criteria if c.id == "improvement") for score in (result.score, before[student])
        )
        assert new == (3 if old == 4 else old), student
        others = [(c.id, c.points) for c in result.score.criteria if c.id != "improvement"]
        assert others == [(c.id, c.points) for c in before[student].criteria if c.id != "improvement"]
    assert next(c.points for c in results["excellent"].score.criteria if c.id == "improvement") == 3


@pytest.mark.slow
def test_overrides_show_in_grades_csv_and_report_and_english(labelled, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(labelled.out, out, copy_function=shutil.copy2)
    overrides = tmp_path / "overrides.csv"
    overrides.write_text(
        "student,criterion,points,delta,comment\n"
        "minimal,analysis,2,,Analyse orale convaincante\n"
        "excellent,documentation,,-0.5,Figures sans légende\n",
        encoding="utf-8",
    )
    rescore(out, language="en", overrides=overrides)
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    header = list(rows["minimal"])
    assert header[:3] == ["student", "status", "total"] and "total_auto" in header
    assert {f"{c}_auto" for c in CRITERIA} <= set(header) and header[-1] == "instructor_comments"
    minimal = rows["minimal"]
    assert float(minimal["analysis"]) == 2 and float(minimal["analysis_auto"]) == 0
    assert float(minimal["total"]) == pytest.approx(float(minimal["total_auto"]) + 2)
    assert "Analyse orale convaincante" in minimal["instructor_comments"]
    excellent = rows["excellent"]
    assert float(excellent["documentation"]) == float(excellent["documentation_auto"]) - 0.5
    report = (out / "minimal" / "report.html").read_text(encoding="utf-8")
    assert "Analyse orale convaincante" in report and "automatic" in report and "instructor" in report
    result = SubmissionResult.read(out / "minimal" / "result.json")
    assert "categories explored" in next(c for c in result.score.criteria if c.id == "modifications").reason


def test_a_best_model_the_students_own_run_contradicts_distrusts_the_analysis(tmp_path):
    printed = "Modèle amélioré 1 - Précision: 99.17%\nModèle amélioré 2 - Précision: 98.61%\n"
    cells = [new_code_cell(FACTORIES, outputs=[new_output("stream", name="stdout", text=printed)])]
    cells += [
        new_markdown_cell(
            "## Conclusion\n\nLe meilleur modèle est le modèle 2 : je recommande de le déployer, il perd moins "
            "de 0,5 point avec le bruit."
        )
    ]
    models = [model("create_improved_model_1", accuracy=0.9), model("create_improved_model_2", accuracy=0.9)]
    result = criterion(score(evidence(ingest_path(notebook(tmp_path, cells)), models, profile="smoke"), EN), "analysis")
    flag = next(e for e in result.evidence if "your own run printed create_improved_model_1" in e.text)
    assert flag.kind == "flag" and "98.61" in flag.text and "99.17" in flag.text
    assert any("cannot be a measurement" in e.text or "distrust" in e.text.lower() for e in result.evidence)
    # the same text, where the run agrees, is trusted
    agreeing = printed.replace("99.17", "98.50")
    cells[0] = new_code_cell(FACTORIES, outputs=[new_output("stream", name="stdout", text=agreeing)])
    trusted = criterion(
        score(evidence(ingest_path(notebook(tmp_path, cells, "ok.ipynb")), models, profile="smoke"), EN), "analysis"
    )
    assert not any("your own run printed" in e.text for e in trusted.evidence)
    assert trusted.points > result.points


COMMENT_REPORT = """from tensorflow import keras


def create_baseline_model():
    return keras.Sequential()

# =====================================================================
# REPORT
# =====================================================================
# Results (one run each, Colab T4)
#   baseline 98.93, extra conv 99.15, L2 99.06
#
# Errors (extra conv model, 85 errors)
#   The most frequent confusions are 4 -> 9 (9 times) and 7 -> 2 (6).
#
# Conclusion
#   I would recommend the model with the extra convolution (99.15%).
"""


def test_a_label_alone_on_its_line_opens_a_comment_block_reports_section(tmp_path):
    found = module_sections(tmp_path, COMMENT_REPORT)
    assert {n: found[n].title for n in ("results", "errors", "conclusion")} == {
        "results": "Results",
        "errors": "Errors",
        "conclusion": "Conclusion",
    }
    assert "4 -> 9" in found["errors"].text and "99.15%" in found["conclusion"].text
    # a sentence is not a label: a capitalised line that ends like a sentence opens nothing
    assert rubric_text.BARE_LABEL.match("Results were good.") is None


DOCSTRING_TITLES = '''"""Mini-projet MNIST

Résultats (test, 10 000 images)

    modèle        test     delta
    cnn_reference 98,96 %    --
    cnn_final     99,47 %  +0,51

Robustesse (bruit sigma 0,1 / 0,3 ; rotation ±15°)

    cnn_reference   98,84   95,1   97,3
    cnn_final       99,40   97,8   99,1
"""
'''


def test_a_title_set_apart_by_a_blank_line_in_a_module_s_plain_text_opens_its_section(tmp_path):
    """In a docstring a title stands on its own line above its table (a parenthesis may hold a ';'); in
    markdown such a line is not a title: '#' marks them there."""
    found = module_sections(tmp_path, DOCSTRING_TITLES)
    assert {n: found[n].title for n in ("results", "robustness")} == {
        "results": "Résultats",
        "robustness": "Robustesse",
    }
    assert "99,47 %" in found["results"].text and "97,8" in found["robustness"].text
    lines = [rubric_text.Line("CONCLUSION", 3, 1), rubric_text.Line("", 3, 2), rubric_text.Line("It worked.", 3, 3)]
    assert "conclusion" not in sections_of(lines) or sections_of(lines)["conclusion"].title != "CONCLUSION"


QA_REPORT = '''"""Mini-projet MNIST — le rapport, sous forme de questions et réponses
==================================================================

Q1. Que fallait-il faire, et comment ai-je comparé les modèles ?
    Améliorer le CNN de l'énoncé (98,9 %) pour lire des formulaires.

Q2. Qu'est-ce qui ne va pas dans la référence ?  (graine 0, 98,96 %, 104 erreurs)
    29 des 104 erreurs sont des chiffres très inclinés ; 4 -> 9 (11 fois).

Q9. Que recommander à l'entreprise, et quelles limites ?
    Le modèle final, avec une relecture humaine des prédictions incertaines.
"""
from tensorflow import keras


def create_baseline_model():
    return keras.Sequential()
'''


def test_a_report_written_as_numbered_questions_has_its_sections(tmp_path):
    found = module_sections(tmp_path, QA_REPORT)
    assert found["baseline"].title.startswith("Q2.") and found["conclusion"].title.startswith("Q9.")
    assert "29 des 104 erreurs" in found["baseline"].text
    # a heading that starts like a question word is not a numbered question
    assert rubric_text.heading_level("Quand le réseau se trompe", "") is None


def test_the_accuracy_a_confidence_threshold_keeps_is_not_implausible():
    sentence = (
        "With a threshold of 0.9, 0.81 % of the digits go to a human and only 13 errors remain on the rest (99.87 %)"
    )
    assert rubric_text.implausible(sentence, 0.997) is None
    assert rubric_text.implausible("The final model reaches 99.87 % on the test set.", 0.997) == "99.87 %"


def test_a_count_of_errors_out_of_one_digit_s_test_images_is_not_implausible():
    """1,135 is how many 1s the test set holds: "3 erreurs sur 1135" is one digit's, not the test accuracy."""
    assert rubric_text.implausible("Le 1 est presque parfait (3 erreurs sur 1135).", 0.997) is None
    assert (
        rubric_text.implausible("Le modèle ne fait que 3 erreurs sur 10 000 images.", 0.997) == "3 erreurs sur 10 000"
    )


def test_of_two_headings_for_one_section_the_one_that_says_what_the_section_is_for_wins():
    """ "## 5. Analyse des erreurs" that only describes the method, then the report's "**Erreurs :** 4 ↔ 9 (15
    erreurs)": the section is the one that names the errors with numbers; an empty "## 4. Comparaison des
    modèles" loses to the report's "### Résultats" and its table."""
    text = (
        "## 4. Comparaison des modèles\n\n"
        "## 5. Analyse des erreurs du meilleur modèle\n\n"
        "Matrice de confusion calculée avec scikit-learn et affichée avec seaborn, et les paires les plus fréquentes.\n\n"
        "## 7. Rapport\n\n### Résultats\n\n| Modèle | Précision |\n|---|---|\n| Référence | 98.91 % |\n\n"
        "### Discussion\n\n- **Erreurs :** les confusions restantes sont surtout 4 ↔ 9 (15 erreurs sur 93).\n"
    )
    lines = [rubric_text.Line(line, 1, n) for n, line in enumerate(text.splitlines(), start=1)]
    found = sections_of(lines)
    assert "4 ↔ 9" in found["errors"].text
    assert "98.91" in found["results"].text


def test_a_passage_that_opens_with_a_model_s_distinctive_word_is_about_that_model():
    """A module's list of changes, "b) dropout -- Dropout(0.25) after each pooling…", "c) augment: rotations of
    ±10°…": the item opens with the word that names ``build_dropout`` or ``build_augment``; a sentence that only
    uses the word further on names nothing."""
    factories = [
        Factory(name="create_baseline_model", role="baseline", cell=None, line=1),
        Factory(name="create_improved_model_1", role="improved", cell=None, line=2),
        Factory(name="create_improved_model_2", role="improved", cell=None, line=3),
    ]
    own = {"create_improved_model_1": "build_dropout", "create_improved_model_2": "build_augment"}
    numbers = rubric_text.factory_numbers(factories, own)
    refs = lambda text: [r[2][-1] for r in rubric_text.model_refs(rubric_text.plain(text), numbers)]  # noqa: E731
    assert refs("b) dropout -- Dropout(0.25) after each pooling, to fight overfitting") == ["1"]
    assert refs("c) ``augment``: rotations of 10 degrees, because scans are tilted") == ["2"]
    assert refs("**Augment** -- the digits are not always straight") == ["2"]
    assert refs("We also tried some dropout in the dense part") == []
    items = (
        "a) ``dropout`` -- Dropout(0.25), to fight overfitting\n   after the dense layer.\nb) ``augment`` -- rotations"
    )
    lines = [rubric_text.Line(line, None, n) for n, line in enumerate(items.splitlines(), start=1)]
    assert [p.text for p in rubric_text.passages(lines)] == [
        "a) ``dropout`` -- Dropout(0.25), to fight overfitting after the dense layer.",
        "b) ``augment`` -- rotations",
    ]
