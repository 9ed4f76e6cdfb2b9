"""Roles of models under other names read from the submission's text and calls (harness/ingest/roles.py)."""

from __future__ import annotations

import nbformat

from harness.ingest.discovery import baseline_from_headings
from harness.ingest.read import ingest_path
from harness.results import MarkdownCell


def _notebook(tmp_path, cells):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell(text[3:]) if text.startswith("md:") else nbformat.v4.new_code_cell(text)
        for text in cells
    ]
    nbformat.write(notebook, tmp_path / "nb.ipynb")
    return ingest_path(tmp_path / "nb.ipynb")


def _builder(name: str, doc: str = "") -> str:
    docstring = f'    """{doc}"""\n' if doc else ""
    return f"def {name}():\n{docstring}    return keras.Sequential([keras.Input((28, 28, 1))])\n"


def test_a_comparison_names_the_baseline_first(tmp_path):
    result = _notebook(
        tmp_path,
        [
            "import keras",
            _builder("net_small") + _builder("net_wide"),
            "a = net_wide()\nb = net_small()\ncompare_models(a, b)",
        ],
    )
    assert result.factory_map == {"create_baseline_model": "net_wide", "create_improved_model_1": "net_small"}


def test_a_label_given_in_a_call_and_the_text_numbers_order_the_models(tmp_path):
    result = _notebook(
        tmp_path,
        [
            "import keras",
            "md:### Improvement 2: wider",
            _builder("net_one"),
            "md:### Improvement 1: dropout",
            _builder("net_two"),
            _builder("net_three", "The provided model, unchanged."),
            'evaluate_model(net_three, "Baseline")',
        ],
    )
    assert result.factory_map == {
        "create_baseline_model": "net_three",
        "create_improved_model_1": "net_two",
        "create_improved_model_2": "net_one",
    }
    assert result.factory_source == "inferred"  # still marked "names inferred — check"


def test_an_improvement_that_mentions_the_baseline_is_not_the_baseline(tmp_path):
    result = _notebook(
        tmp_path,
        [
            "import keras",
            "md:## Amélioration 1 : le modèle de base avec du dropout",
            _builder("v1"),
            "md:## Modèle de base",
            _builder("v0"),
        ],
    )
    assert result.factory_map["create_baseline_model"] == "v0"


def test_a_discovered_model_under_a_baseline_heading_becomes_the_baseline(tmp_path):
    result = _notebook(tmp_path, ["import keras", "md:## Réseau de départ", "m = 1", "md:## Essai 2", "n = 2"])
    recorded = [
        {"factory": "create_improved_model_1", "role": "improved", "built_cell": 5, "fitted_cell": 5},
        {"factory": "create_improved_model_2", "role": "improved", "built_cell": 3, "fitted_cell": 3},
    ]
    assert [m.cell for m in result.markdown] == [2, 4] and isinstance(result.markdown[0], MarkdownCell)
    baseline_from_headings(recorded, result)
    assert [(e["factory"], e["role"]) for e in recorded] == [
        ("create_improved_model_1", "improved"),
        ("create_baseline_model", "baseline"),
    ]


SWITCHES = (
    "def construire_cnn(dropout=False, augmentation=False, learning_rate=1e-3):\n"
    "    model = keras.Sequential([keras.Input((28, 28, 1))])\n"
    "    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss='mse')\n"
    "    return model\n"
)


def test_a_builder_called_at_its_defaults_beside_calls_that_change_them_is_the_baseline(tmp_path):
    result = _notebook(
        tmp_path,
        [
            "import keras",
            SWITCHES,
            "m0 = construire_cnn()\nm1 = construire_cnn(dropout=True)\nm2 = construire_cnn(learning_rate=5e-4)",
        ],
    )
    assert result.factory_map == {
        "create_baseline_model": "construire_cnn",
        "create_improved_model_1": "construire_cnn(dropout=True)",
        "create_improved_model_2": "construire_cnn(learning_rate=0.0005)",
    }


def test_the_models_a_main_function_builds_are_the_submissions_models(tmp_path):
    main = (
        "def main():\n"
        "    experiences = {\n"
        "        'Référence': dict(modele=construire_cnn(), epochs=5),\n"
        "        'Dropout': dict(modele=construire_cnn(dropout=True), epochs=5),\n"
        "        'Augmentation': dict(modele=construire_cnn(augmentation=True), epochs=5),\n"
        "    }\n"
        "    for nom, exp in experiences.items():\n"
        "        exp['modele'].fit(x, y, epochs=exp['epochs'])\n"
        "\n\nif __name__ == '__main__':\n    main()\n"
    )
    result = _notebook(tmp_path, ["import keras", SWITCHES + "\n\n" + main])
    assert result.factory_map == {
        "create_baseline_model": "construire_cnn",
        "create_improved_model_1": "construire_cnn(dropout=True)",
        "create_improved_model_2": "construire_cnn(augmentation=True)",
    }
