"""What students really hand in: other factory names, helpers with arguments, prose in code cells,
imports of packages the models do not need."""

from __future__ import annotations

import shutil
import textwrap
import tomllib

import nbformat
import pytest
from conftest import FIXTURES, REPO, TINY, run_grade

from harness.ingest import ingest_path
from harness.ingest.legacy import modernise
from harness.ingest.read import factory_functions, model_returning_functions, needs_discovery
from harness.report.render import render_student
from harness.util.i18n import Translator
from harness.workers import hyperparameters

REAL_WORLD = FIXTURES / "real_world"


def test_models_under_other_names_are_graded_with_their_roles_inferred():
    result = ingest_path(REAL_WORLD / "names_inferred_fr.ipynb")
    assert result.status == "ok" and result.factory_source == "inferred"
    assert result.factory_map == {
        "create_baseline_model": "base_cnn",
        "create_improved_model_1": "build_model_v2",
        "create_improved_model_2": "make_dropout_cnn",
        "create_improved_model_3": "get_aug_model",
    }
    # each model placed at the student's own function, as the report shows it
    assert [(f.name, f.role, f.cell) for f in result.factories] == [
        ("create_baseline_model", "baseline", 4),
        ("create_improved_model_1", "improved", 6),
        ("create_improved_model_2", "improved", 8),
        ("create_improved_model_3", "improved", 10),
    ]
    assert not result.candidates


BESIDE_THE_CONVENTION = [
    """
from tensorflow import keras

def block(filters):
    return [keras.layers.Conv2D(filters, 3, activation="relu"), keras.layers.MaxPooling2D()]

def stack(layers):
    model = keras.Sequential([keras.Input((28, 28, 1)), *layers, keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model

def create_baseline_model():
    return stack(block(32) + block(64))

def create_improved_model_1():
    return stack(block(64) + block(128))

create_improved_model_2 = lambda: stack(block(32) + block(64) + [keras.layers.Dropout(0.3)])

def create_final_model(augment=True):
    layers = [keras.layers.RandomRotation(0.03)] if augment else []
    return stack(layers + block(64) + block(128))

def run_seeds(creator, name, epochs=5):
    return [creator().fit(x_train, y_train, epochs=epochs) for _ in range(3)]
""",
    "results = {n: run_seeds(c, n) for n, c in [('ref', create_baseline_model), ('wide', create_improved_model_1)]}",
    "final_plain = run_seeds(lambda: create_final_model(augment=False), 'final without augmentation', epochs=30)\n"
    "final = run_seeds(create_final_model, 'final', epochs=30)",
]


def notebook_of(path, sources: list[str]):
    """`path` written as a notebook of these code cells, then ingested."""
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in sources]), path)
    return ingest_path(path)


def test_a_model_function_trained_beside_the_convention_s_factories_is_graded_after_them(tmp_path):
    result = notebook_of(tmp_path / "beside.ipynb", BESIDE_THE_CONVENTION)
    assert result.status == "ok"
    # stack() is what the factories are built from: a building block, not a model of its own
    assert result.factory_map == {
        "create_improved_model_3": "create_final_model(augment=False)",
        "create_improved_model_4": "create_final_model",
    }
    assert [f.name for f in result.factories][-2:] == ["create_improved_model_3", "create_improved_model_4"]
    last = result.factories[-1]
    assert (last.cell, last.line) == (1, 20)  # at the student's own function
    untrained = notebook_of(tmp_path / "untrained.ipynb", BESIDE_THE_CONVENTION[:2])
    assert untrained.factory_map == {}  # defined but never trained: not the student's model


CONFIG_TABLE = """
from dataclasses import dataclass
import keras
from keras import layers


@dataclass(frozen=True)
class Config:
    name: str
    dropout: float = 0.0
    epochs: int = 5
    batch_size: int = 64


EXPERIMENTS = [
    Config("baseline", batch_size=128),
    Config("dropout_0.3", dropout=0.3),
    Config("long", dropout=0.3, epochs=20),
]


def head(cfg):
    return [layers.Flatten(), layers.Dropout(cfg.dropout), layers.Dense(10, activation="softmax")]


def build_model(cfg: Config):
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3), *head(cfg)])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


class Trainer:
    def run(self, cfg):
        model = build_model(cfg)
        model.fit(x, y, epochs=cfg.epochs, batch_size=cfg.batch_size)
        return model


if __name__ == "__main__":
    for cfg in EXPERIMENTS:
        Trainer().run(cfg)
"""


def test_a_builder_of_configurations_is_one_model_per_row_of_the_table_with_its_settings(tmp_path):
    path = tmp_path / "experiments.py"
    path.write_text(CONFIG_TABLE, encoding="utf-8")
    result = ingest_path(path)
    assert result.status == "ok" and result.factory_source == "inferred"
    assert result.factory_map == {
        "create_baseline_model": "build_model(Config('baseline', batch_size=128))",  # its label says so
        "create_improved_model_1": "build_model(Config('dropout_0.3', dropout=0.3))",
        "create_improved_model_2": "build_model(Config('long', dropout=0.3, epochs=20))",
    }
    # each row's epochs and batch size: the class's defaults, then its own
    assert (
        "_harness_declared = {'create_baseline_model': {'epochs': 5, 'batch_size': 128}, "
        "'create_improved_model_1': {'epochs': 5, 'batch_size': 64}, "
        "'create_improved_model_2': {'epochs': 20, 'batch_size': 64}}" in result.module_source
    )
    two_tables = CONFIG_TABLE.replace("\n\n\ndef head", "\nOTHERS = [Config('a'), Config('b')]\n\n\ndef head")
    path.write_text(two_tables, encoding="utf-8")
    assert ingest_path(path).factory_map == {}  # which table the builder takes is not guessed


RUNS_TABLE = [
    """
import keras
from keras import layers

def make_model(bn=False, dropout=0.0):
    m = keras.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(32, 3)])
    if bn:
        m.add(layers.BatchNormalization())
    m.add(layers.Flatten())
    if dropout:
        m.add(layers.Dropout(dropout))
    m.add(layers.Dense(10, activation="softmax"))
    m.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    return m

RUNS = {                       # name: (model kwargs, batch size)
    "baseline": ({}, 128),
    "+BN": ({"bn": True}, 128),
    "batch 64": ({}, 64),
}

def run(kwargs, batch, seed):
    keras.utils.set_random_seed(seed)
    m = make_model(**kwargs)
    h = m.fit(x_tr, y_tr, epochs=5, batch_size=batch, validation_split=0.2, verbose=0)
    return m, m.evaluate(x_te, y_te, verbose=0)[1], h.history
""",
    "res = {}\nfor name, (kw, bs) in RUNS.items():\n    res[name] = [run(kw, bs, s) for s in (0, 1, 2)]",
]


def test_a_table_of_runs_through_a_seeded_trainer_helper_is_one_model_per_run_with_its_batch_size(tmp_path):
    """``run(kwargs, batch, seed)`` builds with ``make_model(**kwargs)``, returns the model among its metrics,
    and is called once per seed: each run of the table is a model, the first at the builder's defaults its
    baseline, each with the batch size it trains with."""
    result = notebook_of(tmp_path / "runs.ipynb", RUNS_TABLE)
    assert result.status == "ok"
    assert result.factory_map == {
        "create_baseline_model": "make_model()",
        "create_improved_model_1": "make_model(bn=True)",
        "create_improved_model_2": "make_model()",
    }
    assert (
        "_harness_declared = {'create_baseline_model': {'epochs': 5, 'batch_size': 128}, "
        "'create_improved_model_1': {'epochs': 5, 'batch_size': 128}, "
        "'create_improved_model_2': {'epochs': 5, 'batch_size': 64}}" in result.module_source
    )


FACTORY_PASSED_TO_A_TRAINER = [
    """
import keras
from keras import layers

def augmenter(max_deg=12):
    \"\"\"Random geometric jitter: applied to the training batches, not a classifier.\"\"\"
    return keras.Sequential([layers.RandomRotation(max_deg / 360), layers.RandomZoom(0.08)], name="augment")

def build_net(filters=(32, 64), dense=128, bn=False):
    inp = keras.Input((28, 28, 1))
    x = inp
    for f in filters:
        x = layers.Conv2D(f, 3, activation="relu")(x)
    x = layers.Flatten()(layers.BatchNormalization()(x) if bn else x)
    return keras.Model(inp, layers.Dense(10, activation="softmax")(layers.Dense(dense)(x)))

def make_reference_net():  return build_net()
def make_wide_net():       return build_net(filters=(64, 128))

def run(factory, epochs=5, aug=None, seed=0):
    keras.utils.set_random_seed(seed)
    model = factory()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, model.fit(x_train, y_train, epochs=epochs)
""",
    "ref, _ = run(make_reference_net)\nwide, _ = run(make_wide_net, aug=augmenter())",
]


def test_a_shared_builder_and_an_augmentation_pipeline_are_not_models_of_their_own(tmp_path):
    """``build_net`` is what the thin factories call, never the submission itself: their building block;
    ``augmenter()`` returns a Sequential of augmentation layers that transforms images, not a classifier."""
    result = notebook_of(tmp_path / "factories.ipynb", FACTORY_PASSED_TO_A_TRAINER)
    assert result.status == "ok"
    assert result.factory_map == {
        "create_baseline_model": "make_reference_net",
        "create_improved_model_1": "make_wide_net",
    }
    assert "augmenter" not in model_returning_functions(result.module_source)
    # augmentation layers put in front of a classifier the module builds make a model
    spin = "def spin():\n    return keras.Sequential([layers.RandomRotation(0.5)] + make_wide_net().layers)\n"
    assert "spin" in model_returning_functions(result.module_source + spin)


def test_a_keras_application_is_a_model_the_student_built(tmp_path):
    """``keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3))`` returns a whole model: the
    student's function is one more model to grade (the worker then says why it cannot train on MNIST), not
    silently nothing; the module's helpers (``preprocess_input``) build nothing."""
    cells = [
        "import keras\nfrom keras.applications import ResNet50\nfrom keras.applications.mobilenet_v2 import preprocess_input\n",
        "def make_reference():\n    model = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10)])\n"
        "    model.compile('adam', 'categorical_crossentropy')\n    return model\n",
        "def make_mobilenet():\n    model = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), classes=10)\n"
        "    model.compile('adam', 'categorical_crossentropy')\n    return model\n",
        "def make_resnet():\n    return ResNet50(weights=None, classes=10)\n",
        "def prepare(x):\n    return preprocess_input(x)\n",
    ]
    result = notebook_of(tmp_path / "applications.ipynb", cells)
    returning = model_returning_functions(result.module_source)
    assert {"make_mobilenet", "make_resnet"} <= set(returning) and "prepare" not in returning
    assert "make_mobilenet" in result.factory_map.values()


def test_a_helper_with_arguments_is_called_as_the_submission_calls_it():
    result = ingest_path(REAL_WORLD / "helper_with_arguments.py")
    assert result.status == "ok"
    assert result.factory_map == {
        "create_improved_model_1": "build_model",
        "create_improved_model_2": "make_model(0.25, 0.001)",
        "create_improved_model_3": "make_model(0.25, learning_rate=0.0001)",
    }
    namespace: dict = {}
    exec(compile(result.module_source, "submission.py", "exec"), namespace)  # plain Python, safe here
    assert "return make_model(0.25, learning_rate=0.0001)" in result.module_source


def test_models_returned_through_a_compile_helper_are_read_without_running_the_code():
    """``return compile_model(model)``: the helper returns its argument, so the model goes through it; the
    loop passes the builders uncalled (``for fn in (a, b, c)``), each used at its defaults."""
    result = ingest_path(REAL_WORLD / "kim_minji.ipynb")
    assert result.status == "ok" and result.factory_source == "inferred"
    assert result.factory_map == {
        "create_baseline_model": "baseline_net",
        "create_improved_model_1": "dropout_net",
        "create_improved_model_2": "slow_dropout_net",
    }


def test_a_builder_in_a_list_of_experiments_is_used_at_its_defaults_beside_its_calls(tmp_path):
    source = (
        "import keras\n\ndef _compiled(model, optimizer='adam'):\n    model.compile(optimizer=optimizer)\n"
        "    return model\n\ndef create_baseline_model():\n    return _compiled(keras.Sequential())\n\n"
        "def tiny_sgd(learning_rate=1e-4):\n    model = create_baseline_model()\n"
        "    return _compiled(model, keras.optimizers.SGD(learning_rate=learning_rate))\n\n"
        "def main():\n    for build, name in [(tiny_sgd, 'B'), (lambda: tiny_sgd(1e-2), 'check')]:\n"
        "        build().fit()\n\nif __name__ == '__main__':\n    main()\n"
    )
    (tmp_path / "experiments.py").write_text(source, encoding="utf-8")
    result = ingest_path(tmp_path / "experiments.py")
    assert result.factory_source == "inferred"
    assert result.factory_map == {"create_improved_model_1": "tiny_sgd", "create_improved_model_2": "tiny_sgd(0.01)"}


def test_the_convention_when_followed_is_never_overridden(tmp_path):
    source = (
        "import keras\n\ndef create_baseline_model():\n    return keras.Sequential()\n\n"
        "def create_improved_model_1():\n    return keras.Sequential()\n\n"
        "def build_other():\n    return keras.Sequential()\n"
    )
    (tmp_path / "conventional.py").write_text(source, encoding="utf-8")
    result = ingest_path(tmp_path / "conventional.py")
    assert result.factory_source == "functions" and result.factory_map == {}
    assert [f.name for f in result.factories] == ["create_baseline_model", "create_improved_model_1"]


def _notebook(tmp_path, *cells: str):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook, path)
    return path


FACTORY = (
    "import keras\nimport seaborn as sns\nfrom sklearn.metrics import confusion_matrix\n\n"
    "def create_baseline_model():\n    return keras.Sequential([keras.Input((28, 28, 1))])\n"
)


def test_prose_pasted_in_a_code_cell_is_skipped_with_its_reason(tmp_path):
    path = _notebook(tmp_path, FACTORY, "Ici on voit que le modèle 2 est meilleur (99 %) !")
    result = ingest_path(path)
    assert result.status == "ok" and [f.name for f in result.factories] == ["create_baseline_model"]
    skipped = [d for d in result.dropped if d.kind == "syntax_error"]
    assert len(skipped) == 1 and skipped[0].cell == 2 and "does not parse" in skipped[0].reason


def test_a_syntax_error_inside_a_definition_still_names_the_students_error(tmp_path):
    path = _notebook(tmp_path, FACTORY, "def create_improved_model_1(:\n    return None\n")
    result = ingest_path(path)
    assert result.status == "invalid" and "Syntax error in cell 2" in result.reason


def test_imports_the_models_do_not_need_are_left_out(tmp_path):
    """seaborn and scikit-learn serve the student's plots and evaluation, which the harness drops: the
    grading environment need not have them."""
    path = _notebook(
        tmp_path,
        FACTORY,
        "(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()",
        "y_pred = create_baseline_model().predict(x_test).argmax(1)\ncm = confusion_matrix(y_test, y_pred)\nsns.heatmap(cm)",
    )
    result = ingest_path(path)
    assert "seaborn" not in result.module_source and "sklearn" not in result.module_source
    assert "import keras" in result.module_source
    assert {d.code for d in result.dropped if d.kind == "unused_import"} == {
        "import seaborn as sns",
        "from sklearn.metrics import confusion_matrix",
    }


# --------------------------------------------------------------------------- graded end to end


EXPECTED = tomllib.loads((REAL_WORLD / "expected.toml").read_text(encoding="utf-8"))["students"]


@pytest.fixture(scope="module")
def real_world_graded(tmp_path_factory, mnist_npz, protocol_path, stage_cache, suite_path):
    """The whole real-world set graded once, as an instructor would grade a class (2 workers), on the
    cheap ``tiny`` test profile (tests/fixtures/protocol_test_profiles.toml: 600 images, one epoch), without
    the students' reports (``--no-reports``): their figures took half the set's time, and the reports are
    the graded class's tests' (tests/report/)."""
    klass = shutil.copytree(REAL_WORLD, tmp_path_factory.mktemp("real_world") / "class")
    out = tmp_path_factory.mktemp("real_world") / "out"
    return run_grade(
        [klass],
        out,
        protocol=protocol_path,
        data=mnist_npz,
        cache=stage_cache,
        suite=suite_path,
        profile=TINY,
        reports=False,
    )


def drawn(graded, student: str) -> str:
    """The student's report, drawn from the stored result (the set is graded without reports)."""
    render_student(graded.out, graded.result(student), Translator("fr"))
    return (graded.out / student / "report.html").read_text(encoding="utf-8")


def test_every_real_world_submission_has_an_expected_outcome():
    stems = {p.stem for p in REAL_WORLD.iterdir() if p.suffix in (".ipynb", ".py") or p.is_dir()}
    assert stems == set(EXPECTED) and len(EXPECTED) >= 25


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_each_real_world_submission_reaches_its_expected_outcome(real_world_graded, student):
    expected = EXPECTED[student]
    result = real_world_graded.result(student)
    assert result.status == expected["status"], (result.reason, [(m.name, m.status, m.reason) for m in result.models])
    assert sum(m.status == "ok" for m in result.models) == expected["models"]
    if expected.get("reason_contains"):
        assert expected["reason_contains"] in (result.reason or ""), result.reason


@pytest.mark.slow
def test_nine_in_ten_real_world_submissions_have_every_model_graded(real_world_graded):
    """The issue's bar: at least 90 % of the submissions are retrained and scored in full (status ok, as many
    models as expected); every other one says why, in terms of the student's own error, never a failure of the
    harness — or, for pretrained weights, the sandbox's lack of network. The set holds 6 such submissions in 61,
    so the bar leaves no room for a failure of ours."""
    results = real_world_graded.by_student()
    full = [
        s
        for s, result in results.items()
        if result.status == "ok" and sum(m.status == "ok" for m in result.models) == EXPECTED[s]["models"]
    ]
    assert len(full) >= 0.9 * len(results), sorted(set(results) - set(full))
    for student, result in results.items():
        if result.status != "ok":
            assert result.internal_error is None, student
            assert EXPECTED[student]["reason_contains"] in (result.reason or ""), (student, result.reason)
    assert (real_world_graded.out / "grades.csv").is_file()


@pytest.mark.slow
def test_inferred_names_earn_modifications_and_a_measured_improvement(real_world_graded):
    result = real_world_graded.result("names_inferred_fr")
    assert result.status == "ok" and result.names_inferred
    assert result.factory_names["create_improved_model_1"] == "build_model_v2"
    assert [m.status for m in result.models] == ["ok"] * 4
    criteria = {c.id: c for c in result.score.criteria}
    assert criteria["modifications"].points > 0
    assert all(m.test_accuracy is not None for m in result.models if m.role == "improved")
    assert any("create_improved_model" in e.text for e in criteria["improvement"].evidence)
    # graded without reports: the gradebook and the dashboard are there, no student's page until one is drawn
    assert (real_world_graded.out / "grades.csv").is_file()
    assert not (real_world_graded.out / "names_inferred_fr" / "report.html").exists()
    report = drawn(real_world_graded, "names_inferred_fr")
    assert "Noms déduits" in report and "build_model_v2" in report and "get_aug_model" in report
    dashboard = (real_world_graded.out / "index.html").read_text(encoding="utf-8")
    assert "noms déduits" in dashboard


@pytest.mark.slow
def test_a_helper_called_with_arguments_gives_one_model_per_call(real_world_graded):
    result = real_world_graded.result("helper_with_arguments")
    assert result.status == "ok" and [m.status for m in result.models] == ["ok"] * 3


@pytest.mark.slow
def test_a_script_that_trains_in_main_has_its_models_found_and_retrained(real_world_graded):
    result = real_world_graded.result("script_top_level")
    assert result.status == "ok", result.reason
    assert len(result.discovered_models) == 2 and [m.status for m in result.models] == ["ok", "ok"]
    assert {m.role for m in result.models} == {"baseline", "improved"}


def test_keras2_idioms_are_rewritten_where_the_worker_runs_them():
    result = ingest_path(REAL_WORLD / "keras2_colab.py")
    assert result.status == "ok"
    pairs = {(w.before, w.after) for w in result.rewrites}
    assert {
        ("keras.layers.core", "keras.layers"),
        ("3, 3", "(3, 3)"),
        ("lr", "learning_rate"),
        ("border_mode", "padding"),
        ("output_dim", "units"),
    } <= pairs
    assert "Adam(learning_rate=0.001)" in result.module_source and "lr=" not in result.module_source
    assert "Convolution2D(8, 3, 3" in result.code_cells[0].source  # the student's code as handed in


@pytest.mark.slow
def test_keras2_code_trains_under_keras3(real_world_graded):
    result = real_world_graded.result("keras2_colab")
    assert result.status == "ok", result.reason
    assert [m.status for m in result.models] == ["ok", "ok"] and len(result.rewrites) >= 6
    # Convolution2D(8, 3, 3) read as Keras 1 meant it: a 3x3 kernel, stride 1 (Keras 3 alone: stride 3)
    conv = result.models[0].spec.layers[0]
    assert conv.class_name == "Conv2D"
    assert list(conv.config["kernel_size"]) == [3, 3] and list(conv.config["strides"]) == [1, 1]


def test_a_students_own_lr_parameter_is_not_renamed():
    """Only Keras's own classes had `lr=`: a builder of the student's that takes `lr` keeps it."""
    result = ingest_path(REAL_WORLD / "kowalski_anna.py")
    assert result.status == "ok"
    assert "def build_model(dropout" in result.module_source and "lr=" in result.module_source
    namespace: dict = {}
    exec(compile(result.module_source, "submission.py", "exec"), namespace)  # defines only: safe here


def test_a_students_own_class_taking_lr_keeps_it():
    """``Config("lr_3e-3", lr=3e-3)`` of a ``@dataclass class Config`` is the student's: renaming it to
    ``learning_rate=`` made the whole module fail (``TypeError``); ``Adam(lr=…)`` beside it is still renamed."""
    source = textwrap.dedent(
        """
        from dataclasses import dataclass
        from keras.optimizers import Adam

        @dataclass
        class Config:
            name: str
            lr: float = 1e-3

        CONFIGS = [Config("base"), Config("lr_3e-3", lr=3e-3)]
        optimizer = Adam(lr=1e-3)
        """
    )
    rewritten, rewrites = modernise(source, None)
    assert 'Config("lr_3e-3", lr=3e-3)' in rewritten and "Adam(learning_rate=1e-3)" in rewritten
    assert [(w.before, w.after) for w in rewrites] == [("lr", "learning_rate")]


def test_top_level_file_and_data_reads_are_left_out():
    result = ingest_path(REAL_WORLD / "lefebvre_hugo.ipynb")
    assert "np.load(" not in result.module_source
    assert any(d.kind == "data" and "np.load" in d.code for d in result.dropped)
    result = ingest_path(REAL_WORLD / "silva_pedro.ipynb")
    assert "Image.open" not in result.module_source


def test_a_folder_s_own_module_goes_to_the_worker():
    result = ingest_path(REAL_WORLD / "durand_lea", "durand_lea")
    assert list(result.local_modules) == ["outils_modeles.py"]
    assert "outils_modeles.py" not in {i.name for i in result.ignored_files}


@pytest.mark.slow
def test_a_skipped_prose_cell_costs_what_dead_code_costs(real_world_graded):
    """Issue 13: a skipped cell costs what the rubric says (code quality, dead code)."""
    result = real_world_graded.result("dubois_theo")
    quality = next(c for c in result.score.criteria if c.id == "code_quality")
    flagged = [e for e in quality.evidence if "ne se lit pas" in e.text]
    assert len(flagged) == 1 and flagged[0].cell is not None and flagged[0].kind == "flag"
    dead_code = next(c for c in quality.components if c.id == "dead_code")
    assert dead_code.points < dead_code.max_points


# --------------------------------------------------------------------------- issue 13: legacy code, loaders, mixed, roles


def test_roles_are_read_from_the_headings_when_the_names_say_nothing():
    result = ingest_path(REAL_WORLD / "gauthier_marc.ipynb")
    assert result.factory_source == "inferred"  # "names inferred — check"
    assert result.factory_map == {
        "create_baseline_model": "reseau_b",  # "## Modèle de base", though defined second
        "create_improved_model_1": "reseau_a",  # "## Amélioration 1"
        "create_improved_model_2": "reseau_c",  # "## Amélioration 2"
    }
    colab = ingest_path(REAL_WORLD / "wilson_jack.ipynb")
    assert colab.factory_map["create_baseline_model"] == "simple_cnn" and len(colab.factory_map) == 6


def test_a_mixed_notebook_is_also_run_to_find_its_top_level_models():
    mixed = ingest_path(REAL_WORLD / "fontaine_ines.ipynb")
    assert mixed.status == "ok" and needs_discovery(mixed)
    assert factory_functions(mixed) == ["create_baseline_model", "create_improved_model_1"]
    # a notebook that only trains its factories at top level is not run
    assert not needs_discovery(ingest_path(REAL_WORLD / "leroy_manon.ipynb"))


def test_image_generator_and_tensorflow_1_code_is_rewritten_where_the_worker_runs_it():
    leroy = ingest_path(REAL_WORLD / "leroy_manon.ipynb")
    assert "from tensorflow.keras.preprocessing.image import ImageDataGenerator" in leroy.module_source
    sato = ingest_path(REAL_WORLD / "sato_kenji.py")
    assert "disable_eager_execution" not in sato.module_source and "AdamOptimizer" not in sato.module_source
    assert "tf.keras.optimizers.RMSprop(0.001, rho=0.9)" in sato.module_source


@pytest.mark.slow
def test_legacy_code_is_trained_by_the_one_runtime_the_result_names(real_world_graded):
    for student in ("leroy_manon", "sato_kenji"):
        result = real_world_graded.result(student)
        assert [m.status for m in result.models] == ["ok"] * 3, [(m.name, m.reason) for m in result.models]
        assert all(m.runtime and m.runtime.startswith("Keras 3") for m in result.models)
        augmented = result.models[2]
        assert augmented.settings.augmentation == "ImageDataGenerator"
    sato = real_world_graded.result("sato_kenji")
    assert [m.spec.optimizer for m in sato.models[:2]] == ["Adam", "RMSprop"]


@pytest.mark.slow
def test_a_mixed_notebook_has_its_factories_and_its_top_level_model_graded_once_each(real_world_graded):
    result = real_world_graded.result("fontaine_ines")
    assert [(m.name, m.status) for m in result.models] == [
        ("create_baseline_model", "ok"),
        ("create_improved_model_1", "ok"),
        ("create_improved_model_2", "ok"),
    ]
    assert [(m.factory, m.variable) for m in result.discovered_models] == [("create_improved_model_2", "essai_l2")]


@pytest.mark.slow
@pytest.mark.parametrize("student", ["mendes_ana", "novak_petra", "blanc_louis"])
def test_each_data_loader_is_served_the_harness_s_mnist(real_world_graded, student):
    result = real_world_graded.result(student)
    assert result.status == "ok" and len(result.discovered_models) == 2, result.reason
    assert result.discovered_models[0].role == "baseline"  # ref_model / "## Baseline" / "## Modèle de base"


# --------------------------------------------------------------------------- session 7: subclassed models, CSV, MLPs, searches


def test_a_hyper_parameter_search_is_the_students_own_run_and_its_hypermodel_is_graded_at_its_defaults():
    result = ingest_path(REAL_WORLD / "ortiz_diego.ipynb")
    assert result.status == "ok" and [f.name for f in result.factories] == [
        "create_baseline_model",
        "create_improved_model_1",
    ]
    assert "RandomSearch" not in result.module_source and "import keras_tuner as kt" not in result.module_source
    assert any(d.kind == "training" and "RandomSearch" in d.code for d in result.dropped)
    assert result.factory_map == {"create_improved_model_1": "build_tuned(keras_tuner.HyperParameters())"}
    assert result.factory_source == "inferred" and result.candidates == []


def test_a_hypermodel_is_built_at_kerastuner_s_defaults_without_kerastuner():
    """harness/workers/hyperparameters.py: what KerasTuner's HyperParameters() gives a hypermodel."""
    hp = hyperparameters.HyperParameters()
    assert (hp.Int("filters", 4, 8, step=4), hp.Float("dropout", 0.0, 0.5), hp.Choice("lr", [1e-2, 1e-3])) == (
        4,
        0.0,
        1e-2,
    )
    assert (hp.Int("units", 32, 512, default=128), hp.Boolean("bn"), hp.Fixed("k", 3), hp.Int("filters", 16, 32)) == (
        128,
        False,
        3,
        4,  # a name asked again keeps its first value
    )
    with hp.conditional_scope("bn", [True]):
        assert hp.get("units") == 128 and "k" in hp


@pytest.mark.slow
def test_addons_hypermodels_and_sparse_labels_are_trained_with_what_the_student_chose(real_world_graded):
    """TensorFlow Addons served by Keras 3 (the rewrite recorded), a hypermodel at its defaults, sparse
    categorical cross-entropy trained on the harness's one-hot labels (the report says so)."""
    fischer = real_world_graded.result("fischer_max")
    assert [(w.before, w.after) for w in fischer.rewrites] == [("tensorflow_addons", "tensorflow_addons_keras3")]
    assert fischer.models[1].spec.optimizer == "AdamW"
    lopez = real_world_graded.result("lopez_sofia")
    assert lopez.names_inferred and lopez.factory_names["create_improved_model_2"].startswith("model_builder(")
    assert [m.spec.loss_from for m in lopez.models] == ["sparse_categorical_crossentropy"] * 3
    report = drawn(real_world_graded, "lopez_sofia")
    assert "Compilé avec sparse_categorical_crossentropy" in report


@pytest.mark.slow
def test_a_model_held_by_a_local_variable_named_base_is_the_baseline(real_world_graded):
    """fournier_leo builds both models in main(): the variable names are local, and still say which is which."""
    result = real_world_graded.result("fournier_leo")
    assert [(m.variable, m.role) for m in result.discovered_models] == [("base", "baseline"), ("improved", "improved")]


def test_models_built_only_by_running_the_code_are_sent_to_discovery():
    for student in ("lemaire_jules.ipynb", "diallo_aminata.ipynb", "rossi_marco.py"):
        result = ingest_path(REAL_WORLD / student)
        assert result.status == "invalid" and needs_discovery(result), student


def test_a_nested_loop_over_literal_values_is_read_round_by_round():
    """costa_rafael: ``for lr in [1e-2, 1e-3]: for dropout in [0.0, 0.3]: build(lr, dropout)``, read without
    running the script, one model per round."""
    result = ingest_path(REAL_WORLD / "costa_rafael.py")
    assert result.status == "ok" and result.factory_source == "inferred"
    assert list(result.factory_map.values()) == [
        "build(0.01, 0.0)",
        "build(0.01, 0.3)",
        "build(0.001, 0.0)",
        "build(0.001, 0.3)",
    ]


def test_a_table_of_configurations_spread_into_a_builder_is_one_model_per_row_and_the_baseline_is_not_repeated():
    """A dict of configurations, each handed to the builder through ``lambda p=params: make_cnn(**p)``; the
    row at the builder's defaults is what ``create_baseline_model`` already returns."""
    result = ingest_path(REPO / "tests" / "fixtures" / "labelled" / "fr_sklearn_seaborn_b6.ipynb")
    assert result.factory_map == {
        "create_improved_model_1": "make_cnn(n_filters=(64, 128))",
        "create_improved_model_2": "make_cnn(dropout=0.3)",
        "create_improved_model_3": "make_cnn(kernel_size=5)",
        "create_improved_model_4": "make_cnn(lr=0.0005)",
        "create_improved_model_5": "make_cnn(n_filters=(64, 128), dropout=0.3)",
    }
    assert "'create_improved_model_5': {'epochs': 10, 'batch_size': 128}" in result.module_source  # its own call's


@pytest.mark.slow
def test_subclassed_models_are_graded_with_the_arguments_the_student_gave(real_world_graded):
    top_level = real_world_graded.result("lemaire_jules")
    assert [m.status for m in top_level.models] == ["ok", "ok"], [m.reason for m in top_level.models]
    assert [d.variable for d in top_level.discovered_models] == ["modele_base", "modele_dropout"]
    dropout = top_level.models[1].spec.layers
    assert any(layer.class_name == "Dropout" and layer.config.get("rate") == 0.3 for layer in dropout)
    factories = real_world_graded.result("patel_arjun")
    assert [m.status for m in factories.models] == ["ok"] * 3, [m.reason for m in factories.models]
    widths = [
        next(layer.config["filters"] for layer in m.spec.layers if layer.class_name == "Conv2D")
        for m in factories.models
    ]
    assert widths == [4, 8, 8]


@pytest.mark.slow
def test_a_kaggle_csv_and_a_flattened_mlp_are_graded(real_world_graded):
    kaggle = real_world_graded.result("diallo_aminata")
    assert kaggle.status == "ok" and len(kaggle.discovered_models) == 2, kaggle.reason
    mlp = real_world_graded.result("nowak_piotr")
    assert [m.status for m in mlp.models] == ["ok", "ok"], [m.reason for m in mlp.models]
    assert mlp.models[0].spec.layers[0].class_name == "Flatten"  # the harness's images flattened for the MLP


def test_a_script_s_docstring_says_which_function_is_the_baseline():
    assert ingest_path(REAL_WORLD / "patel_arjun.py").factory_map["create_baseline_model"] == "small_net"
    french = ingest_path(REAL_WORLD / "bertrand_alice.py")  # "modele_simple = le modèle de base ; …"
    assert french.factory_map["create_baseline_model"] == "modele_simple"
    assert french.factory_map["create_improved_model_2"] == "modele_normalise_dropout"


@pytest.mark.slow
def test_a_factory_that_trains_its_model_is_trained_by_the_harness_with_its_declared_settings(real_world_graded):
    result = real_world_graded.result("bouvier_lea")
    assert result.status == "ok", result.reason
    for model in result.models:
        assert model.status == "ok", (model.name, model.reason)
        assert {k: model.settings.declared[k] for k in ("epochs", "batch_size")} == {"epochs": 5, "batch_size": 128}


def test_a_model_built_by_a_call_with_arguments_is_placed_where_the_submission_makes_that_call(tmp_path):
    """``construire_cnn(dropout=0.3)`` defined in one cell and called in a later one, under the markdown
    that explains the change: the model is placed at its call (the text around it is about that model), the
    builder at its definition."""
    result = notebook_of(
        tmp_path / "appels.ipynb",
        [
            "from tensorflow import keras\n\ndef construire_cnn(lr=0.001, dropout=0.0):\n"
            "    m = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten()])\n"
            "    if dropout:\n        m.add(keras.layers.Dropout(dropout))\n"
            "    m.add(keras.layers.Dense(10, activation='softmax'))\n"
            "    m.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss='categorical_crossentropy')\n"
            "    return m\n",
            "ref = construire_cnn()\nref.fit(x, y)\n",
            "m1 = construire_cnn(lr=0.0005)\nm1.fit(x, y)\n",
            "m2 = construire_cnn(dropout=0.3)\nm2.fit(x, y)\n",
        ],
    )
    assert result.factory_map == {
        "create_baseline_model": "construire_cnn",
        "create_improved_model_1": "construire_cnn(lr=0.0005)",
        "create_improved_model_2": "construire_cnn(dropout=0.3)",
    }
    assert [(f.name, f.cell) for f in result.factories] == [
        ("create_baseline_model", 1),
        ("create_improved_model_1", 3),
        ("create_improved_model_2", 4),
    ]


GRID_SEARCH = [
    "import keras\nfrom keras import layers\n\n"
    "def build(hp):\n    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(hp['filters'], 3)])\n"
    "    if hp['dropout'] > 0:\n        model.add(layers.Dropout(hp['dropout']))\n"
    "    model.add(layers.Flatten())\n    model.add(layers.Dense(10, activation='softmax'))\n"
    "    model.compile(optimizer='adam', loss='categorical_crossentropy')\n    return model\n\n"
    "def create_baseline_model():\n    return build({'filters': 32, 'dropout': 0.0})\n\n"
    "def run_config(hp, label, epochs, batch_size, seed=0):\n    keras.utils.set_random_seed(seed)\n"
    "    model = build(hp)\n    h = model.fit(x, y, epochs=epochs, batch_size=batch_size)\n"
    "    return {'config': label}, model, h.history\n",
    "GRID = [{'filters': 32, 'dropout': 0.0}, {'filters': 64, 'dropout': 0.25}, {'filters': 64, 'dropout': 0.4}]\n"
    "EPOCHS = 8\nBATCH = 64\nrows, models = [], {}\n"
    "for i, hp in enumerate(GRID):\n"
    "    row, models[i], _ = run_config(hp, str(i), epochs=EPOCHS, batch_size=BATCH)\n    rows.append(row)\n",
]


def test_a_grid_of_configurations_run_through_a_helper_with_a_computed_label_is_one_model_per_row(tmp_path):
    """``for i, hp in enumerate(GRID): run_config(hp, str(i), epochs=EPOCHS, batch_size=BATCH)``: the label the
    helper only prints and the module's constants do not stop each row from being read as the builder call it
    makes, trained with the constants' epochs and batch size."""
    result = notebook_of(tmp_path / "grid.ipynb", GRID_SEARCH)
    built = sorted(result.factory_map.values())
    assert "build({'filters': 64, 'dropout': 0.25})" in built and "build({'filters': 64, 'dropout': 0.4})" in built
    assert "_harness_declared" in result.module_source and "'batch_size': 64" in result.module_source


@pytest.mark.parametrize(
    "label", ['f"{lam:.0e}"', 'f"L2 = {lam}"', '"L2 " + str(lam)', '"%g" % lam', 'f"grid {i}: " + f"{lam}"']
)
def test_a_grid_run_through_a_helper_with_a_formatted_label_is_one_model_per_value(tmp_path, label):
    """``for lam in [1e-5, 1e-4, 1e-3]: experience("L2", f"{lam:.0e}", l2_coef=lam)``: a label written as an
    f-string, a concatenation or a ``%`` format of the loop's value is a label like ``str(lam)``; it used to hide
    the whole grid, whose models were then never graded."""
    loop = f"for i, lam in enumerate([1e-5, 1e-4, 1e-3]):\n    run_config({{'filters': 32, 'dropout': 0.0, 'l2': lam}}, {label}, 8, 64)\n"
    result = notebook_of(tmp_path / "grid.ipynb", [GRID_SEARCH[0], loop])
    built = sorted(result.factory_map.values())
    assert [b for b in built if "'l2'" in b] == [
        f"build({{'filters': 32, 'dropout': 0.0, 'l2': {v}}})" for v in ("0.0001", "0.001", "1e-05")
    ], built


def test_a_builder_given_a_keras_object_built_from_literals_is_called_so(tmp_path):
    """``_cnn(reg=regularizers.l2(1e-4))``, ``build(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))``: an
    argument that is a Keras object built from literals, through a name the module imports, is as readable
    as a literal."""
    result = notebook_of(
        tmp_path / "reg.ipynb",
        [
            "import keras\nfrom keras import layers, regularizers\n\n"
            "def _cnn(noyau=3, reg=None, optimizer='adam'):\n"
            "    m = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, noyau, kernel_regularizer=reg),"
            " layers.Flatten(), layers.Dense(10, activation='softmax')])\n"
            "    m.compile(optimizer, 'categorical_crossentropy')\n    return m\n",
            "ref = _cnn()\nref.fit(x, y)\nm1 = _cnn(reg=regularizers.l2(1e-4))\nm1.fit(x, y)\n"
            "m2 = _cnn(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))\nm2.fit(x, y)\n"
            "m3 = _cnn(reg=undefined_thing(1))\nm3.fit(x, y)\n",
        ],
    )
    assert sorted(result.factory_map.values()) == [
        "_cnn",
        "_cnn(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))",
        "_cnn(reg=regularizers.l2(0.0001))",
    ]


FLAGS_THROUGH_A_SEEDED_RUNNER = [
    """
from tensorflow import keras
from tensorflow.keras import layers

def build_cnn(batchnorm=False, dropout=0.0, augment=False, name='cnn'):
    inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3)(inputs)
    if batchnorm:
        x = layers.BatchNormalization()(x)
    x = layers.Flatten()(x)
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    model = keras.Model(inputs, layers.Dense(10, activation='softmax')(x), name=name)
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    return model

def run(config, seed, epochs=5, make_callbacks=None):
    keras.utils.set_random_seed(seed)
    model = build_cnn(**config)
    callbacks = make_callbacks() if make_callbacks else []
    hist = model.fit(x_tr, y_tr, epochs=epochs, batch_size=128, callbacks=callbacks, verbose=0)
    return {'model': model, 'hist': hist.history}

SEEDS = [0, 1, 2]
""",
    "runs = {'baseline': [run({}, s) for s in SEEDS]}",
    """
SINGLE = {
    'batchnorm': dict(batchnorm=True),
    'dropout': dict(dropout=0.3),
}
for name, cfg in SINGLE.items():
    runs[name] = [run(cfg, s) for s in SEEDS]
""",
    """
COMBINED = dict(batchnorm=True, dropout=0.3)
runs['combined'] = [run(COMBINED, s, epochs=12) for s in SEEDS]
""",
]


def test_configurations_as_dict_calls_handed_to_a_seeded_runner_are_one_model_each(tmp_path):
    """``run(config, seed)`` builds with ``build_cnn(**config)``; the configurations are ``dict(batchnorm=True)``
    rows of a table and a module name bound to one (``COMBINED = dict(…)``), each run on three seeds: one model
    per configuration (the seeds are the same model again), the empty one the baseline."""
    result = notebook_of(tmp_path / "flags.ipynb", FLAGS_THROUGH_A_SEEDED_RUNNER)
    assert result.status == "ok"
    assert result.factory_map == {
        "create_baseline_model": "build_cnn()",
        "create_improved_model_1": "build_cnn(batchnorm=True)",
        "create_improved_model_2": "build_cnn(dropout=0.3)",
        "create_improved_model_3": "build_cnn(batchnorm=True, dropout=0.3)",
    }
