"""The settings a submission trains its graded models with, read from its own training calls
(harness/ingest/fit_calls.py), and their way into the module the worker imports."""

from __future__ import annotations

import ast
import textwrap

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from harness.ingest.fit_calls import declared_by_calls
from harness.ingest.read import ingest_path

IMPORTS = """
from tensorflow import keras
from tensorflow.keras.callbacks import EarlyStopping, ReduceLROnPlateau
from tensorflow.keras.preprocessing.image import ImageDataGenerator
EPOCHS = 15
"""


def _read(code: str, built_by: dict[str, str]):
    return declared_by_calls([(None, ast.parse(IMPORTS + textwrap.dedent(code)))], built_by)


def _declared(code: str, built_by: dict[str, str]):
    return _read(code, built_by)[0]


def test_a_model_trained_at_top_level_declares_what_its_fit_sets():
    found = _declared(
        """
        gen = ImageDataGenerator(rotation_range=10, zoom_range=0.1)
        m2 = build_cnn(dropout=0.25)
        m2.fit(gen.flow(x, y, batch_size=64), epochs=EPOCHS, callbacks=[EarlyStopping(patience=3)])
        """,
        {"create_improved_model_1": "build_cnn(dropout=0.25)"},
    )
    declared = found["create_improved_model_1"]
    assert declared.settings == {"epochs": 15, "batch_size": 64}
    assert declared.sources == {
        "callbacks": "[EarlyStopping(patience=3)]",
        "augmentation": "ImageDataGenerator(rotation_range=10, zoom_range=0.1)",
    }
    assert declared.said() == "epochs=15, batch_size=64, callbacks, augmentation"


HANDOUT_HELPER = """
def evaluate_model(model_creator, model_name, epochs=5):
    model = model_creator()
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=128)
    return history
"""


def test_the_handout_s_helper_called_with_epochs_declares_them():
    found = _declared(
        HANDOUT_HELPER + 'r2 = evaluate_model(create_improved_model_2, "Modèle 2", epochs=10)\n'
        'r1 = evaluate_model(create_improved_model_1, "Modèle 1")\n',
        {"create_improved_model_1": "create_improved_model_1", "create_improved_model_2": "create_improved_model_2"},
    )
    # a parameter the call leaves out trains with the helper's default: that is what the student's run used
    # the batch size the helper's fit writes itself is every call's
    assert {name: d.settings for name, d in found.items()} == {
        "create_improved_model_2": {"epochs": 10, "batch_size": 128},
        "create_improved_model_1": {"epochs": 5, "batch_size": 128},
    }


def test_a_helper_fitting_with_module_constants_and_literals_trains_every_model_so():
    """``def run(model_fn, name): model.fit(x, y, epochs=EPOCHS, batch_size=64)``: the student trained
    every model handed to it for EPOCHS epochs at batch 64, though no call says so."""
    found = _declared(
        "def run(model_fn, name):\n"
        "    model = model_fn()\n"
        "    model.fit(x, y, epochs=EPOCHS, batch_size=64, validation_split=0.2)\n"
        "    return model\n"
        "def run_for(model_fn, epochs):\n"
        "    model = model_fn()\n"
        "    model.fit(x, y, epochs=epochs, batch_size=64)\n"
        'run(create_baseline_model, "Baseline")\n'
        "run_for(create_model_1, EPOCHS)\n",
        {"create_baseline_model": "create_baseline_model", "create_improved_model_1": "create_model_1"},
    )
    assert found["create_baseline_model"].settings == {"epochs": 15, "batch_size": 64}
    # a module constant passed for a parameter is its value
    assert found["create_improved_model_1"].settings == {"epochs": 15, "batch_size": 64}


def test_a_helper_s_own_defaults_are_the_settings_of_the_calls_that_leave_them():
    """``train_and_eval(create_model_1, "deeper")`` with ``def train_and_eval(model_fn, name, epochs=1,
    batch_size=16)``: the student trained that model one epoch at batch 16, whatever the handout says."""
    found = _declared(
        "def train_and_eval(model_fn, name, epochs=1, batch_size=16):\n"
        "    model = model_fn()\n"
        "    model.fit(x, y, epochs=epochs, batch_size=batch_size)\n"
        "    return model\n"
        'train_and_eval(create_baseline_model, "Baseline", epochs=5, batch_size=128)\n'
        'train_and_eval(create_model_1, "deeper")\n',
        {"create_baseline_model": "create_baseline_model", "create_improved_model_1": "create_model_1"},
    )
    assert found["create_baseline_model"].settings == {"epochs": 5, "batch_size": 128}
    assert found["create_improved_model_1"].settings == {"epochs": 1, "batch_size": 16}


def test_a_call_that_only_shows_the_model_is_not_its_training():
    found = _declared(
        HANDOUT_HELPER + "m = build_model()\nplot_model(m, show_shapes=True)\nprint(m)\nm.fit(x, y, epochs=12)\n",
        {"create_improved_model_1": "build_model"},
    )
    assert found["create_improved_model_1"].settings == {"epochs": 12}


def test_a_model_trained_in_main_declares_what_main_sets():
    found = _declared(
        """
        def main():
            model = build_model()
            callbacks = [keras.callbacks.ReduceLROnPlateau(factor=0.3, patience=2)]
            model.fit(x, y, epochs=EPOCHS, batch_size=32, callbacks=callbacks)
        """,
        {"create_improved_model_1": "build_model"},
    )
    assert found["create_improved_model_1"].settings == {"epochs": 15, "batch_size": 32}
    assert found["create_improved_model_1"].sources["callbacks"].startswith("[keras.callbacks.ReduceLROnPlateau(")


def test_what_cannot_be_one_model_s_settings_is_not_read():
    found = _declared(
        """
        m = build_model()
        m.fit(x, y, epochs=1)              # a quick check ...
        m.fit(x, y, epochs=30)             # ... then the real run: the two disagree, the protocol decides
        for rate in np.linspace(0.2, 0.5, 4):
            other = build_other()
            other.fit(x, y, epochs=3)      # repeated by a loop over what is not written out
        cb = [EarlyStopping(patience=p)]   # not literal
        last = build_last()
        last.fit(x, y, epochs=n_epochs, callbacks=cb)
        """,
        {
            "create_improved_model_1": "build_model",
            "create_improved_model_2": "build_other",
            "create_improved_model_3": "build_last",
        },
    )
    assert found == {}


def test_a_loop_over_a_literal_table_of_experiments_is_read_round_by_round():
    """``for name, (factory, batch) in EXPERIMENTS.items(): train(factory, batch)``: each round as written
    out, so each model gets the batch size its row says; a spread dict of settings becomes keywords."""
    found = _declared(
        """
        EXPERIMENTS = {"Reference": (create_baseline_model, 128), "Batch 32": (create_improved_model_3, 32)}
        CONFIGS = [{"dropout": 0.3}, {"dropout": 0.5}]

        def train(factory, batch_size, epochs=5):
            model = factory()
            model.fit(x, y, epochs=epochs, batch_size=batch_size)

        def main():
            for name, (factory, batch_size) in EXPERIMENTS.items():
                train(factory, batch_size)
            for i, (config, epochs) in enumerate(zip(CONFIGS, [10, 11])):
                m = build_cnn(**config)
                m.fit(x, y, epochs=epochs)
        """,
        {
            "create_baseline_model": "create_baseline_model",
            "create_improved_model_3": "create_improved_model_3",
            "create_improved_model_1": "build_cnn(dropout=0.3)",
            "create_improved_model_2": "build_cnn(dropout=0.5)",
        },
    )
    assert {name: d.settings for name, d in found.items()} == {
        "create_baseline_model": {"batch_size": 128, "epochs": 5},
        "create_improved_model_3": {"batch_size": 32, "epochs": 5},
        "create_improved_model_1": {"epochs": 10},
        "create_improved_model_2": {"epochs": 11},
    }


def test_a_trainer_helper_s_own_generator_and_callbacks_make_a_variant():
    """``train_augmented(best, data, epochs=15)`` builds its ``ImageDataGenerator`` and callbacks itself: the
    model it trains is trained with them, and named callbacks (``[lr_cb]``) are read through their names."""
    declared, variants = _read(
        """
        def train(model, data, epochs=5):
            model.fit(x, y, epochs=epochs)

        def train_augmented(model, data, epochs=15, batch_size=64):
            datagen = ImageDataGenerator(rotation_range=10)
            lr_cb = ReduceLROnPlateau(monitor="val_loss", patience=2)
            model.fit(datagen.flow(x, y, batch_size=batch_size), epochs=epochs, callbacks=[lr_cb])

        def main():
            train(build_model_v3(), data)
            best = build_model_v3()
            train_augmented(best, data, epochs=15)
        """,
        {"create_improved_model_2": "build_model_v3"},
    )
    assert [(v.holder, v.model) for v in variants] == [("best", "create_improved_model_2")]
    assert variants[0].declared.settings == {"epochs": 15, "batch_size": 64}  # the flow's batch size
    assert variants[0].declared.sources == {
        "callbacks": "[ReduceLROnPlateau(monitor='val_loss', patience=2)]",
        "augmentation": "ImageDataGenerator(rotation_range=10)",
    }
    assert declared["create_improved_model_2"].settings == {"epochs": 5}  # its own run: the helper's default
    assert not declared["create_improved_model_2"].sources


def test_a_factory_handed_to_a_helper_with_a_generator_is_a_variant_held_by_what_the_call_returns():
    """``aug_model, aug_results = evaluate_model(create_baseline_model, "Aug", epochs=8, datagen=datagen)``: the
    helper fits on ``datagen.flow(…)`` when given one, so this run of the baseline's factory is another model
    (augmented, 8 epochs), held by the call's first target; the plain run stays the baseline's."""
    declared, variants = _read(
        """
        def evaluate_model(model_creator, model_name, epochs=5, batch_size=128, datagen=None):
            model = model_creator()
            if datagen is None:
                history = model.fit(x_tr, y_tr, epochs=epochs, batch_size=batch_size)
            else:
                history = model.fit(datagen.flow(x_tr, y_tr, batch_size=batch_size), epochs=epochs)
            return model, history

        baseline_model, baseline_results = evaluate_model(create_baseline_model, "Référence")
        datagen = ImageDataGenerator(rotation_range=10, zoom_range=0.1)
        aug_model, aug_results = evaluate_model(create_baseline_model, "Augmentation", epochs=8, datagen=datagen)
        """,
        {"create_baseline_model": "create_baseline_model"},
    )
    assert [(v.holder, v.model) for v in variants] == [("aug_model", "create_baseline_model")]
    assert variants[0].declared.settings == {"epochs": 8, "batch_size": 128}
    assert variants[0].declared.sources == {"augmentation": "ImageDataGenerator(rotation_range=10, zoom_range=0.1)"}
    assert declared["create_baseline_model"].settings == {"epochs": 5, "batch_size": 128}  # the helper's defaults
    assert not declared["create_baseline_model"].sources


def test_the_settings_reach_the_module_and_the_student_s_own_entry_wins(tmp_path):
    cells = [
        "from tensorflow import keras\n\n"
        "def create_baseline_model():\n    return keras.Sequential()\n\n"
        "def create_improved_model_1():\n    return keras.Sequential()\n\n"
        "def create_improved_model_2():\n    return keras.Sequential()\n\n"
        "TRAINING_CONFIG = {'create_improved_model_2': {'epochs': 7}}\n",
        "m1 = create_improved_model_1()\nh1 = m1.fit(x_train, y_train, epochs=12, batch_size=32)\n",
        "m2 = create_improved_model_2()\nh2 = m2.fit(x_train, y_train, epochs=20)\n",
    ]
    path = tmp_path / "student.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), path)
    result = ingest_path(path)
    config_code = result.module_source[result.module_source.index("TRAINING_CONFIG = {") :]
    namespace: dict = {}
    exec(config_code, namespace)  # only the two TRAINING_CONFIG statements: no Keras needed
    assert namespace["TRAINING_CONFIG"] == {
        "create_improved_model_1": {"epochs": 12, "batch_size": 32},
        "create_improved_model_2": {"epochs": 7},
    }
    said = {(d.cell, d.line): d.reason for d in result.dropped}
    assert "epochs=12, batch_size=32 kept as its declared settings" in said[(2, 2)]


def test_a_callback_whose_import_the_module_drops_is_left_out_and_the_numbers_kept(tmp_path):
    cells = [
        "from tensorflow import keras\nfrom tensorflow.keras.callbacks import EarlyStopping\n\n"
        "def create_baseline_model():\n    return keras.Sequential()\n\n"
        "def create_improved_model_1():\n    return keras.Sequential()\n",
        "m1 = create_improved_model_1()\nm1.fit(x_train, y_train, epochs=12, callbacks=[EarlyStopping(patience=2)])\n",
    ]
    path = tmp_path / "student.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), path)
    result = ingest_path(path)
    # EarlyStopping is imported only for the dropped fit: the module does not import it, so no callback
    assert "import EarlyStopping" not in result.module_source and "EarlyStopping(" not in result.module_source
    assert "'create_improved_model_1': {'epochs': 12}" in result.module_source
    compile(result.module_source, "submission.py", "exec")
    assert len(result.line_map) >= len(result.module_source.splitlines())


def test_one_builder_trained_another_way_in_its_own_variable_is_a_variant():
    declared, variants = _read(
        """
        gen = ImageDataGenerator(rotation_range=10)
        baseline = create_baseline_model()
        baseline.fit(x, y, epochs=5, batch_size=128)
        model_aug = create_baseline_model()
        model_aug.fit(gen.flow(x, y, batch_size=128), epochs=5)
        model_cb = create_baseline_model()
        model_cb.fit(x, y, epochs=20, batch_size=128, callbacks=[EarlyStopping(patience=3)])
        model_bs = create_baseline_model()
        model_bs.fit(x, y, epochs=5, batch_size=32)
        longer = create_baseline_model()
        longer.fit(x, y, epochs=12, batch_size=128)     # more epochs: "modifier le nombre d'époques"
        """,
        {"create_baseline_model": "create_baseline_model"},
    )
    assert [(v.holder, v.model) for v in variants] == [
        ("model_aug", "create_baseline_model"),
        ("model_cb", "create_baseline_model"),
        ("model_bs", "create_baseline_model"),
        ("longer", "create_baseline_model"),
    ]
    assert [v.declared.said() for v in variants] == [
        "epochs=5, batch_size=128, augmentation",
        "epochs=20, batch_size=128, callbacks",
        "epochs=5, batch_size=32",
        "epochs=12, batch_size=128",
    ]
    assert declared["create_baseline_model"].settings == {"epochs": 5, "batch_size": 128}


def test_a_variable_built_again_holds_another_model():
    _, variants = _read(
        """
        m = build_model()
        m.fit(x, y, batch_size=128)
        m = build_model()
        m.fit(x, y, batch_size=128, callbacks=[EarlyStopping(patience=3)])
        """,
        {"create_improved_model_1": "build_model"},
    )
    assert [(v.holder, v.declared.said()) for v in variants] == [("m", "batch_size=128, callbacks")]


@pytest.mark.parametrize("holder", ["model_aug", "aug_model", "aug_results"])
def test_a_variant_is_graded_as_a_factory_of_its_own_named_after_its_variable(tmp_path, holder):
    cells = [
        "from tensorflow import keras\nfrom tensorflow.keras.preprocessing.image import ImageDataGenerator\n\n"
        "def create_baseline_model():\n    return keras.Sequential()\n\n"
        "def create_improved_model_1():\n    return keras.Sequential()\n",
        "baseline = create_baseline_model()\nbaseline.fit(x_train, y_train, epochs=5, batch_size=128)\n",
        f"datagen = ImageDataGenerator(rotation_range=10)\n{holder} = create_baseline_model()\n"
        f"{holder}.fit(datagen.flow(x_train, y_train, batch_size=128), epochs=8)\n",
    ]
    path = tmp_path / "student.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), path)
    result = ingest_path(path)
    assert [(f.name, f.role, f.cell, f.line) for f in result.factories][-1] == (
        "create_improved_model_aug",
        "improved",
        3,
        3,
    )
    namespace: dict = {"keras": None}
    source = result.module_source
    exec(source[source.index("def create_improved_model_aug") :].replace("ImageDataGenerator(", "dict("), namespace)
    assert namespace["TRAINING_CONFIG"]["create_improved_model_aug"] == {
        "epochs": 8,
        "batch_size": 128,
        "augmentation": {"rotation_range": 10},
    }
    said = {(d.cell, d.line): d.reason for d in result.dropped}
    assert f"« {holder} » is create_baseline_model trained its own way" in said[(3, 3)]
    assert "create_improved_model_aug" in said[(3, 3)]


def test_a_variable_built_again_in_another_cell_holds_another_model():
    cells = [
        (
            4,
            "from tensorflow.keras.callbacks import EarlyStopping\nmodel = build_model()\nmodel.fit(x, y, batch_size=128)\n",
        ),
        # the same line in another cell
        (
            11,
            "# again\nmodel = build_model()\nmodel.fit(x, y, batch_size=128, callbacks=[EarlyStopping(patience=3)])\n",
        ),
    ]
    trees = [(cell, ast.parse(textwrap.dedent(code))) for cell, code in cells]
    _, variants = declared_by_calls(trees, {"create_improved_model_1": "build_model"})
    assert [(v.holder, v.declared.cell, v.declared.said()) for v in variants] == [
        ("model", 11, "batch_size=128, callbacks")
    ]


def test_a_run_stored_under_a_key_or_named_by_its_label_is_held_by_that_name():
    """``results['Augmentation'] = train(build_cnn(), 'Augmentation', datagen=datagen)``: a run stored in a
    dict, or not stored at all, is held by its key or by the label the call gives it; the baseline's
    builder trained on a generator that way is a variant, as if it had a variable of its own."""
    _, variants = _read(
        """
        def train(model, name, epochs=5, datagen=None):
            if datagen is None:
                model.fit(x, y, epochs=epochs)
            else:
                model.fit_generator(datagen.flow(x, y, batch_size=128), epochs=epochs)
            return model

        results = {}
        results['Référence'] = train(build_cnn(), 'Référence')
        datagen = ImageDataGenerator(rotation_range=10)
        results['Augmentation légère'] = train(build_cnn(), 'Augmentation légère', datagen=datagen)
        train(build_cnn(), 'Rotation 20', datagen=ImageDataGenerator(rotation_range=20))
        """,
        {"create_baseline_model": "build_cnn()"},
    )
    assert [(v.holder, v.model) for v in variants] == [
        ("augmentation_legere", "create_baseline_model"),
        ("rotation_20", "create_baseline_model"),
    ]
    assert variants[0].declared.sources == {"augmentation": "ImageDataGenerator(rotation_range=10)"}


def test_a_helper_switching_to_a_module_generator_by_a_flag_trains_the_runs_that_set_it():
    """``train_model(create_augmented_model, 'Aug', augment=True)`` with ``if augment: model.fit(datagen.flow(…))``
    on a generator of the module: the runs that set the flag are trained on it, the others are not."""
    found = _declared(
        """
        datagen = ImageDataGenerator(rotation_range=10, zoom_range=0.1)

        def train_model(model_creator, name, epochs=5, batch_size=128, augment=False):
            model = model_creator()
            if augment:
                model.fit(datagen.flow(x, y, batch_size=batch_size), epochs=epochs)
            else:
                model.fit(x, y, epochs=epochs, batch_size=batch_size)
            return model

        results = {}
        results['Dropout'] = train_model(create_dropout_model, 'Dropout', epochs=6)
        results['Augmentation'] = train_model(create_augmented_model, 'Augmentation', augment=True)
        """,
        {"create_improved_model_1": "create_dropout_model", "create_improved_model_2": "create_augmented_model"},
    )
    assert found["create_improved_model_2"].sources == {
        "augmentation": "ImageDataGenerator(rotation_range=10, zoom_range=0.1)"
    }
    assert found["create_improved_model_1"].sources == {}


def test_settings_read_from_a_dict_of_the_module_handed_to_the_helper():
    """``entrainer(creer_modele_ameliore, 'amélioré', CONFIG_AMELIORE)`` with ``model.fit(…,
    epochs=config["epochs"], batch_size=config["batch_size"])``: the dict's values are the run's settings."""
    found = _declared(
        """
        CONFIG_AMELIORE = {"epochs": 10, "batch_size": 64}

        def entrainer(creer_modele, nom, config, donnees):
            model = creer_modele()
            model.fit(x, y, epochs=config["epochs"], batch_size=config["batch_size"])
            return model

        if __name__ == "__main__":
            res = entrainer(creer_modele_ameliore, "amélioré", CONFIG_AMELIORE, None)
        """,
        {"create_improved_model_1": "creer_modele_ameliore"},
    )
    assert found["create_improved_model_1"].settings == {"epochs": 10, "batch_size": 64}


def test_a_table_of_builders_and_batch_sizes_looped_over_gives_each_round_its_own_model():
    """``CONFIGS = {'Ref': (lambda: make_cnn(), 128), 'M3 batch64': (lambda: make_cnn(), 64)}`` and
    ``for name, (build, bs) in CONFIGS.items(): m = build(); m.fit(…, batch_size=bs)``: the same builder
    in two rounds with other batch sizes is two models, the second a variant named after its row."""
    declared, variants = _read(
        """
        CONFIGS = {
            'Ref': (lambda: make_cnn(), 128),
            'M1 Dropout': (lambda: make_cnn(dropout=0.25), 128),
            'M3 batch64': (lambda: make_cnn(), 64),
        }
        for name, (build, bs) in CONFIGS.items():
            m = build()
            h = m.fit(x, y, epochs=5, batch_size=bs).history
        """,
        {"create_baseline_model": "make_cnn()", "create_improved_model_1": "make_cnn(dropout=0.25)"},
    )
    assert [(v.holder, v.model) for v in variants] == [("m3_batch64", "create_baseline_model")]
    assert variants[0].declared.settings == {"epochs": 5, "batch_size": 64}
    assert declared["create_baseline_model"].settings == {"epochs": 5, "batch_size": 128}


def test_each_run_s_label_is_kept_with_its_model():
    """``train_model(create_augmented_model, 'Augmentation', augment=True)``: the label a run is given is the
    name its printed lines and the report's table use for that model."""
    from harness.ingest.fit_calls import read_training  # imported here: the one test of the labels

    trees = [
        (
            None,
            ast.parse(
                IMPORTS
                + textwrap.dedent(
                    """
                    def train_model(model_creator, name, epochs=5):
                        model = model_creator()
                        model.fit(x, y, epochs=epochs)
                        return model

                    results = {}
                    results['Baseline'] = train_model(create_baseline_model, 'Baseline')
                    results['Augmentation'] = train_model(create_augmented_model, 'Augmentation')
                    CONFIGS = {'M3 batch64': (lambda: make_cnn(), 64), 'wide': (make_wide, 128)}
                    for name, (build, bs) in CONFIGS.items():
                        if name.startswith('M3'):
                            m = build()
                            m.fit(x, y, batch_size=bs)
                            continue
                        for seed in [0, 1, 2]:  # rounds inside a round keep its label
                            m = build()
                            m.fit(x, y, batch_size=bs)
                    """
                ),
            ),
        )
    ]
    built_by = {
        "create_baseline_model": "create_baseline_model",
        "create_improved_model_1": "create_augmented_model",
        "create_improved_model_2": "make_cnn()",
        "create_improved_model_3": "make_wide",
    }
    assert read_training(trees, built_by)[2] == {
        "create_baseline_model": "Baseline",
        "create_improved_model_1": "Augmentation",
        "create_improved_model_2": "M3 batch64",
        "create_improved_model_3": "wide",
    }


TUPLE_BUILDERS = '''
from tensorflow import keras
from tensorflow.keras import layers


def _cnn(kernel=3):
    """The handout's network; only the kernel size varies."""
    m = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, kernel, activation="relu"),
                          layers.Flatten(), layers.Dense(10, activation="softmax")])
    m.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    return m


def reference():
    """The handout's model, 5 epochs."""
    return _cnn(), 5, []


def wide_kernels():
    """5x5 kernels."""
    return _cnn(kernel=5), 5, []


def early_stopped():
    """Up to 15 epochs, stopped when val_loss stalls."""
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2)
    return _cnn(), 15, [stop]


def main():
    for name, make in [("reference", reference), ("5x5", wide_kernels), ("early stopping", early_stopped)]:
        model, epochs, callbacks = make()
        model.fit(x, y, epochs=epochs, batch_size=64, validation_split=0.2, callbacks=callbacks)


if __name__ == "__main__":
    main()
'''


def test_builders_returning_a_model_with_its_epochs_and_callbacks_are_factories_with_those_settings(tmp_path):
    """``def early_stopped(): return _cnn(), 15, [EarlyStopping(…)]`` unpacked as ``model, epochs, callbacks =
    make()`` before ``model.fit(…, epochs=epochs, callbacks=callbacks)``: each such builder is a model of its
    own (the one that differs from the reference only by its training too), trained with what it returns."""
    path = tmp_path / "student.py"
    path.write_text(TUPLE_BUILDERS)
    result = ingest_path(path)
    mapped = {f.name: f.line for f in result.factories}
    assert mapped == {"create_baseline_model": 14, "create_improved_model_1": 19, "create_improved_model_2": 24}
    namespace: dict = {}
    source = result.module_source
    exec(source[source.index("\ntry:  # harness") :].replace("keras.callbacks.EarlyStopping(", "dict("), namespace)
    config = namespace["TRAINING_CONFIG"]
    assert config["create_improved_model_2"] == {
        "epochs": 15,
        "batch_size": 64,
        "callbacks": [{"monitor": "val_loss", "patience": 2}],
    }
    assert config["create_baseline_model"] == {"epochs": 5, "batch_size": 64}


DISPATCHING_BUILDER = '''
from tensorflow import keras
from tensorflow.keras import layers


def make_variant(name):
    """One builder for every variant, by name; returns (model, epochs, callbacks)."""
    epochs, callbacks, rate = 5, [], 0.0
    if name == "dropout":
        rate = 0.25
    elif name in ("early stopping", "early_stopping"):
        epochs = 12
        callbacks = [keras.callbacks.EarlyStopping(patience=3)]
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dropout(rate),
                              layers.Dense(10, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    return model, epochs, callbacks


for variant in ["reference", "dropout", "early stopping"]:
    model, epochs, callbacks = make_variant(variant)
    model.fit(x, y, epochs=epochs, batch_size=128, callbacks=callbacks)
'''


def test_a_builder_dispatching_on_a_name_is_read_branch_by_branch_for_each_call(tmp_path):
    """``make_variant("early stopping")`` with ``if name == "dropout": … elif name in (…): epochs = 12`` and
    ``return model, epochs, callbacks``: each call's settings are what its branch sets; the call whose
    label says so is the baseline."""
    path = tmp_path / "student.py"
    path.write_text(DISPATCHING_BUILDER)
    result = ingest_path(path)
    source = result.module_source
    assert "def create_baseline_model():  # make_variant('reference')" in source
    namespace: dict = {}
    exec(source[source.index("\ntry:  # harness") :].replace("keras.callbacks.EarlyStopping(", "dict("), namespace)
    config = namespace["TRAINING_CONFIG"]
    assert config["create_baseline_model"] == {"epochs": 5, "batch_size": 128}
    assert config["create_improved_model_1"] == {"epochs": 5, "batch_size": 128}
    assert config["create_improved_model_2"] == {"epochs": 12, "batch_size": 128, "callbacks": [{"patience": 3}]}


def test_runs_in_a_dict_literal_are_held_by_their_keys_and_a_callback_maker_is_seen_through():
    """``{'Plateau': evaluate_model(create_baseline_model, 'Plateau', callbacks=[make_plateau()])}`` with
    ``def make_plateau(): return ReduceLROnPlateau(…)``: the run is the baseline's builder trained its own
    way, held by its key, with the callback its maker returns."""
    declared, variants = _read(
        '''
        def make_plateau():
            """A fresh callback for each run (it keeps a state)."""
            return ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2)

        def evaluate_model(model_creator, model_name, epochs=5, callbacks=None):
            model = model_creator()
            model.fit(x, y, epochs=epochs, callbacks=callbacks or [])
            return model

        all_results = {
            "Reference": evaluate_model(create_baseline_model, "Reference"),
            "Plateau": evaluate_model(create_baseline_model, "Plateau", callbacks=[make_plateau()]),
        }
        ''',
        {"create_baseline_model": "create_baseline_model"},
    )
    assert [(v.holder, v.model) for v in variants] == [("plateau", "create_baseline_model")]
    assert variants[0].declared.sources == {
        "callbacks": "[ReduceLROnPlateau(monitor='val_loss', factor=0.5, patience=2)]"
    }
    assert not declared["create_baseline_model"].sources  # the plain run: the helper's defaults, no callback
    # a maker of the whole list: callbacks=callbacks_list()
    listed = _read(
        """
        def callbacks_list():
            return [ReduceLROnPlateau(patience=2)]

        def evaluate_model(model_creator, epochs=5, callbacks=None):
            model = model_creator()
            model.fit(x, y, epochs=epochs, callbacks=callbacks)

        evaluate_model(create_improved_model_1, callbacks=callbacks_list())
        """,
        {"create_improved_model_1": "create_improved_model_1"},
    )[0]
    assert listed["create_improved_model_1"].sources == {"callbacks": "[ReduceLROnPlateau(patience=2)]"}


FLAGGED_TRAINER = '''
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import callbacks, layers


def build_model(dropout=0.0):
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dropout(dropout),
                              layers.Dense(10, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    return model


def step_decay(epoch, lr):
    return 1e-3 * 0.5 ** (epoch // 4)


def run_experiment(name, epochs, use_schedule=False, **model_kwargs):
    """Trains one configuration, records it, returns its test accuracy (not the model)."""
    model = build_model(**model_kwargs)
    schedule = [tf.keras.callbacks.LearningRateScheduler(step_decay)] if use_schedule else []
    model.fit(x, y, epochs=epochs, callbacks=schedule)
    return model.evaluate(x, y)[1]


run_experiment("A baseline", 5)
run_experiment("B dropout", 5, dropout=0.25)
run_experiment("C decay", 12, use_schedule=True, dropout=0.25)
'''


def test_a_trainer_returning_its_accuracy_is_seen_through_with_the_callbacks_each_call_switches_on(tmp_path):
    """``run_experiment("C decay", 12, use_schedule=True, dropout=0.25)`` with ``schedule =
    [LearningRateScheduler(step_decay)] if use_schedule else []`` in a helper that returns the model's
    accuracy: the builder call it makes is the model, with the schedule only where the call sets it."""
    path = tmp_path / "student.py"
    path.write_text(FLAGGED_TRAINER)
    result = ingest_path(path)
    assert [f.name for f in result.factories] == [
        "create_baseline_model",
        "create_improved_model_1",
        "create_improved_model_2",
    ]
    source = result.module_source
    block = source[source.index("    _harness_declared = ") :].splitlines()[0]
    assert block.endswith(
        "'create_improved_model_2': {'epochs': 12, 'callbacks': [tf.keras.callbacks.LearningRateScheduler(step_decay)]}}"
    )
    assert block.count("LearningRateScheduler") == 1


def test_a_callback_maker_that_returns_early_gives_only_what_the_call_switches_on():
    """``def fresh_callbacks(stop): if not stop: return []; return [EarlyStopping(…)]`` called in a helper's
    fit with the helper's own flag: the runs that set it train with the callback, the others without."""
    declared = _declared(
        """
        def fresh_callbacks(stop):
            if not stop:
                return []
            return [EarlyStopping(patience=3)]

        def run(model_creator, epochs=5, stop=False):
            model = model_creator()
            model.fit(x, y, epochs=epochs, callbacks=fresh_callbacks(stop))

        run(create_baseline_model)
        run(create_improved_model_1, stop=True)
        """,
        {"create_baseline_model": "create_baseline_model", "create_improved_model_1": "create_improved_model_1"},
    )
    assert not declared["create_baseline_model"].sources
    assert declared["create_improved_model_1"].sources == {"callbacks": "[EarlyStopping(patience=3)]"}


def test_a_table_of_rows_whose_label_is_filtered_out_before_the_builder_is_one_model_per_row(tmp_path):
    """``EXPERIENCES = [{"nom": "base"}, {"nom": "bn", "bn": True}]`` looped over into ``build(**{k: v for k,
    v in exp.items() if k != "nom"})``: each row is the builder called with the row less its label."""
    source = (
        "from tensorflow import keras\n\n"
        "def build(filters=32, bn=False):\n    return keras.Sequential([keras.Input((28, 28, 1))])\n\n"
        'EXPERIENCES = [{"nom": "base"}, {"nom": "bn", "bn": True}, {"nom": "large", "filters": 64}]\n\n'
        "for exp in EXPERIENCES:\n"
        '    model = build(**{k: v for k, v in exp.items() if k != "nom"})\n'
        "    model.fit(x, y, epochs=5, batch_size=64)\n"
    )
    path = tmp_path / "student.py"
    path.write_text(source)
    assert ingest_path(path).factory_map == {
        "create_baseline_model": "build",
        "create_improved_model_1": "build(bn=True)",
        "create_improved_model_2": "build(filters=64)",
    }


def test_a_table_of_rows_whose_keywords_sit_under_a_key_is_one_model_per_row_labelled_by_its_name(tmp_path):
    """``EXPERIMENTS = [{"name": "dropout", "kwargs": {"dropout": 0.3}}, …]`` looped over into
    ``make_cnn(**exp["kwargs"])``: each row is the builder called with its ``kwargs``, labelled by its name
    (the row's first string value, never a key)."""
    source = (
        "from tensorflow import keras\n\n"
        "def make_cnn(filters=(32, 64), dropout=0.0, batchnorm=False):\n"
        "    return keras.Sequential([keras.Input((28, 28, 1))])\n\n"
        "EXPERIMENTS = [\n"
        '    {"name": "reference", "kwargs": {}},\n'
        '    {"name": "dropout", "kwargs": {"dropout": 0.3}},\n'
        '    {"name": "wider", "kwargs": {"filters": (64, 128)}},\n'
        "]\n"
        "RUNS = [('bn', {'batchnorm': True})]\n\n"
        "for exp in EXPERIMENTS:\n"
        '    model = make_cnn(**exp["kwargs"])\n'
        "    model.fit(x, y, epochs=6, batch_size=128)\n"
        "for run in RUNS:\n"
        "    model = make_cnn(**run[1])\n"
        "    model.fit(x, y, epochs=6)\n"
    )
    path = tmp_path / "student.py"
    path.write_text(source)
    result = ingest_path(path)
    assert result.factory_map == {
        "create_baseline_model": "make_cnn",
        "create_improved_model_1": "make_cnn(dropout=0.3)",
        "create_improved_model_2": "make_cnn(filters=(64, 128))",
        "create_improved_model_3": "make_cnn(batchnorm=True)",
    }
    assert result.run_labels == {
        "create_baseline_model": "reference",
        "create_improved_model_1": "dropout",
        "create_improved_model_2": "wider",
        "create_improved_model_3": "bn",
    }


def test_a_table_of_dict_calls_spread_into_a_builder_is_one_model_per_row(tmp_path):
    """``VARIANTS = {"dropout 0.3": dict(dropout=0.3), …}`` looped over into ``train(make_cnn(**kwargs), name)``:
    ``dict(dropout=0.3)`` is the same row as ``{"dropout": 0.3}``, each the builder called with its keywords
    (they were dropped, and every row read as the builder's defaults: the baseline again)."""
    source = (
        "from tensorflow import keras\n\n"
        "def create_baseline_model():\n    return keras.Sequential([keras.Input((28, 28, 1))])\n\n"
        "def make_cnn(dropout=0.0, batchnorm=False, filters=32):\n"
        "    return keras.Sequential([keras.Input((28, 28, 1))])\n\n"
        "def train(model, name, epochs=15, batch_size=64):\n"
        "    model.fit(x, y, epochs=epochs, batch_size=batch_size)\n\n"
        "ref = create_baseline_model()\nref.fit(x, y, epochs=5, batch_size=128)\n"
        "variants = {\n"
        "    'dropout 0.3': dict(dropout=0.3),\n"
        "    'batchnorm': dict(batchnorm=True),\n"
        "    'dropout+bn+wider': dict(dropout=0.3, batchnorm=True, filters=64),\n"
        "}\n"
        "for name, kwargs in variants.items():\n"
        "    train(make_cnn(**kwargs), name)\n"
    )
    path = tmp_path / "student.py"
    path.write_text(source)
    result = ingest_path(path)
    assert [f.role for f in result.factories] == ["baseline", "improved", "improved", "improved"]
    assert result.factory_map == {
        "create_improved_model_1": "make_cnn(dropout=0.3)",
        "create_improved_model_2": "make_cnn(batchnorm=True)",
        "create_improved_model_3": "make_cnn(dropout=0.3, batchnorm=True, filters=64)",
    }


def test_a_run_of_the_same_builder_for_more_epochs_is_a_model_of_its_own_and_a_shorter_one_a_quick_check():
    """``evaluate_model(create_baseline_model, "Baseline (12 ep)", epochs=12)`` beside the plain run: the
    assignment's "modifier le nombre d'époques", graded as a model; a one-epoch run on another variable
    before the real one is a quick check, not an experiment."""
    declared, variants = _read(
        HANDOUT_HELPER + 'baseline_results = evaluate_model(create_baseline_model, "Baseline (5 ep)")\n'
        'long_results = evaluate_model(create_baseline_model, "Baseline (12 ep)", epochs=12)\n',
        {"create_baseline_model": "create_baseline_model"},
    )
    assert [(v.holder, v.model) for v in variants] == [("long_results", "create_baseline_model")]
    assert variants[0].declared.settings == {"epochs": 12, "batch_size": 128}
    assert declared["create_baseline_model"].settings == {"epochs": 5, "batch_size": 128}
    _, checked = _read(
        "smoke = build_model()\nsmoke.fit(x, y, epochs=1)\nmodel = build_model()\nmodel.fit(x, y, epochs=10)\n",
        {"create_improved_model_1": "build_model"},
    )
    assert checked == []


def test_a_module_flag_set_before_a_helper_call_switches_that_run_to_the_generator():
    """``utiliser_augmentation = True`` before ``entrainer(creer_modele_complet(), …)``, read by the helper's
    ``if utiliser_augmentation: modele.fit(datagen.flow(…, batch_size=batch_size), …) else: modele.fit(…,
    batch_size=batch_size)``: that run trains on the generator, every run at the helper's batch size."""
    declared = _declared(
        """
        datagen = ImageDataGenerator(rotation_range=10, zoom_range=0.1)
        utiliser_augmentation = False

        def entrainer(modele, nom, epochs=8, batch_size=64):
            if utiliser_augmentation:
                hist = modele.fit(datagen.flow(X_tr, y_tr, batch_size=batch_size), epochs=epochs)
            else:
                hist = modele.fit(X_tr, y_tr, epochs=epochs, batch_size=batch_size)
            return hist

        res_ref = entrainer(creer_reference(), "Référence")
        utiliser_augmentation = True
        res_complet = entrainer(creer_modele_complet(), "BN + Dropout + augmentation")
        utiliser_augmentation = False
        """,
        {"create_baseline_model": "creer_reference", "create_improved_model_1": "creer_modele_complet"},
    )
    assert declared["create_baseline_model"].settings == {"epochs": 8, "batch_size": 64}
    assert not declared["create_baseline_model"].sources
    assert declared["create_improved_model_1"].settings == {"epochs": 8, "batch_size": 64}
    assert declared["create_improved_model_1"].sources == {
        "augmentation": "ImageDataGenerator(rotation_range=10, zoom_range=0.1)"
    }


def test_a_dict_comprehension_over_the_runs_gives_each_run_its_settings():
    """``results = {name: evaluate_model(fn, name, batch_size=BATCH[name]) for name, fn in creators.items()}``:
    each run of the comprehension is read as written out, its batch size looked up in the module's table."""
    found = _declared(
        """
        BATCH = {'baseline': 128, 'dropout': 128, 'batch_64': 64}

        def evaluate_model(model_creator, model_name, epochs=5, batch_size=128):
            model = model_creator()
            model.fit(x, y, epochs=epochs, batch_size=batch_size)
            return model

        creators = {'baseline': create_baseline_model, 'dropout': create_improved_model_1,
                    'batch_64': create_improved_model_2}
        results = {name: evaluate_model(fn, name, batch_size=BATCH[name]) for name, fn in creators.items()}
        """,
        {n: n for n in ("create_baseline_model", "create_improved_model_1", "create_improved_model_2")},
    )
    assert found["create_improved_model_2"].settings == {"epochs": 5, "batch_size": 64}
    assert found["create_improved_model_1"].settings == {"epochs": 5, "batch_size": 128}


def test_a_helper_training_what_a_builder_returns_beside_its_model_trains_with_those_callbacks():
    """``def build_lr_schedule(): return model, [LearningRateScheduler(step_decay)]`` handed to a trainer helper
    that unpacks ``model, callbacks = builder()`` and fits with ``callbacks=callbacks``: that model trains with
    the schedule; a builder returning ``[]`` trains with none."""
    found = _declared(
        """
        from tensorflow.keras.callbacks import LearningRateScheduler

        def step_decay(epoch):
            return 1e-3 * 0.5 ** (epoch // 2)

        def build_baseline():
            return _compile(inp, out), []

        def build_lr_schedule():
            model, _ = build_baseline()
            return model, [LearningRateScheduler(step_decay, verbose=0)]

        def train_and_evaluate(builder, data):
            model, callbacks = builder()
            model.fit(x, y, batch_size=128, epochs=EPOCHS, callbacks=callbacks)
            return model

        BUILDERS = [('baseline', build_baseline), ('lr_schedule', build_lr_schedule)]
        for name, builder in BUILDERS:
            results[name] = train_and_evaluate(builder, data)
        """,
        {"create_baseline_model": "build_baseline", "create_improved_model_1": "build_lr_schedule"},
    )
    assert found["create_improved_model_1"].sources == {"callbacks": "[LearningRateScheduler(step_decay, verbose=0)]"}
    assert found["create_baseline_model"].sources == {}  # the baseline's builder returns no callback
    assert found["create_baseline_model"].settings == {"batch_size": 128, "epochs": 15}


TF_DATA_PIPELINE = """
import tensorflow as tf

def normalise(image, label):
    return tf.cast(image, tf.float32) / 255.0, label

def shift(image, label):
    image = tf.image.resize_with_crop_or_pad(image, 32, 32)
    return tf.image.random_crop(image, size=[28, 28, 1]), label

def pipeline(x, y, augment=False):
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000).map(normalise)
    if augment:
        ds = ds.map(shift, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(64)
    if augment:
        ds = ds.map(lambda x, y: (rotate(x, training=True), y))
    return ds.prefetch(tf.data.AUTOTUNE)
"""


def test_a_tf_data_pipeline_s_maps_are_its_augmentation_and_make_a_variant():
    """A pipeline's maps (``ds.map(shift)`` before ``.batch``, a lambda after it), built by a helper under a flag
    or reassigned step by step at top level, are the run's augmentation: the model trained on the augmented
    pipeline is a variant of the one trained on the plain one. The lambda keeps its own ``x``, though the
    helper's parameter is named ``x`` too."""
    declared, variants = _read(
        TF_DATA_PIPELINE
        + """
        plain = build_cnn()
        plain.fit(pipeline(x_train, y_train), epochs=3)
        augmented = build_cnn()
        augmented.fit(pipeline(x_train, y_train, augment=True), epochs=3)
        train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).map(normalise)
        train_ds = train_ds.map(shift).batch(32)
        other = build_cnn()
        other.fit(train_ds, epochs=3)
        """.replace("\n        ", "\n"),
        {"create_improved_model_1": "build_cnn"},
    )
    normalise = "{'map': globals().get('normalise'), 'batched': False, 'name': 'normalise'}"
    shift = "{'map': globals().get('shift'), 'batched': False, 'name': 'shift'}"
    rotate = "{'map': lambda x, y: (rotate(x, training=True), y), 'batched': True, 'name': 'lambda'}"
    assert declared["create_improved_model_1"].sources == {"augmentation": f"[{normalise}]"}
    assert [(v.holder, v.declared.sources["augmentation"]) for v in variants] == [
        ("augmented", f"[{normalise}, {shift}, {rotate}]"),
        ("other", f"[{normalise}, {shift}]"),
    ]


def test_a_map_that_cannot_be_named_is_no_augmentation():
    """``ds.map(functools.partial(…))`` or a map of a name that is no function of the module: nothing read."""
    declared = _declared(
        TF_DATA_PIPELINE
        + """
        import functools
        ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).map(functools.partial(shift)).batch(64)
        m = build_cnn()
        m.fit(ds, epochs=3)
        """.replace("\n        ", "\n"),
        {"create_improved_model_1": "build_cnn"},
    )
    assert declared["create_improved_model_1"].sources == {}
