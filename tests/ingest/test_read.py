"""Ingest: discovering submissions, student ids, and the static extraction of what the worker runs."""

from __future__ import annotations

import ast
import unicodedata
from pathlib import Path

import nbformat
import pytest
from conftest import SAMPLES, copy_samples

from harness.ingest import assign_ids, discover, ingest_path, student_id, submission_sha256
from harness.ingest.read import needs_discovery
from harness.util.i18n import Translator


def write_notebook(path: Path, cells: list[tuple[str, str]]) -> Path:
    """A valid nbformat-4 notebook; cells are ("code" | "md", source)."""
    notebook = nbformat.v4.new_notebook()
    for kind, source in cells:
        notebook.cells.append(
            nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
        )
    nbformat.validate(notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def dropped_by_code(result) -> dict[str, object]:
    return {d.code: d for d in result.dropped}


# --------------------------------------------------------------------------- the four forms


def test_single_notebook():
    result = ingest_path(SAMPLES / "baseline_only.ipynb")
    assert result.status == "ok", result.reason
    assert (result.student, result.kind, result.main_file) == ("baseline_only", "notebook", "baseline_only.ipynb")
    assert [(f.name, f.role) for f in result.factories] == [("create_baseline_model", "baseline")]
    assert not result.has_training_config
    assert result.sha256 == submission_sha256(SAMPLES / "baseline_only.ipynb")
    notebook = nbformat.read(SAMPLES / "baseline_only.ipynb", as_version=4)
    factory = result.factories[0]
    cell = notebook.cells[factory.cell - 1]  # cells are numbered from 1
    assert cell.source.splitlines()[factory.line - 1].startswith("def create_baseline_model(")
    # the student's data loading and training are recorded as dropped, never kept
    kinds = {d.kind for d in result.dropped}
    assert {"data", "depends_on_dropped"} <= kinds
    assert "load_data" not in result.module_source and ".fit(" not in result.module_source
    assert result.markdown and result.code_cells


def test_single_module():
    path = SAMPLES / "module_student.py"
    result = ingest_path(path)
    assert result.status == "ok", result.reason
    assert (result.student, result.kind, result.main_file) == ("module_student", "module", "module_student.py")
    names = [f.name for f in result.factories]
    assert names == [
        "create_baseline_model",
        "create_improved_model_1",
        "create_improved_model_2",
        "create_improved_model_3",
    ]
    assert all(f.has_docstring for f in result.factories)
    lines = path.read_text(encoding="utf-8").splitlines()
    for factory in result.factories:
        assert factory.cell is None
        assert lines[factory.line - 1].startswith(f"def {factory.name}(")
    (main,) = [d for d in result.dropped if d.kind == "main"]
    assert lines[main.line - 1].startswith('if __name__ == "__main__":')
    assert "__main__" not in result.module_source
    assert result.has_training_config and "TRAINING_CONFIG = {" in result.module_source
    # constants and private helpers the factories need are kept
    for kept in ("INPUT_SHAPE", "L2_FACTOR", "def _deep_cnn(", "def _compile(", "def _augmented_training_config("):
        assert kept in result.module_source
    assert result.markdown == [] and len(result.code_cells) == 1


def test_student_folder_with_accented_name():
    result = ingest_path(SAMPLES / "Zoé Martin")
    assert result.status == "ok", result.reason
    assert result.student == "Zoé Martin"
    assert (result.kind, result.main_file) == ("folder", "mini_projet.ipynb")
    assert [(i.name, "only the notebook" in i.reason) for i in result.ignored_files] == [("notes.txt", True)]
    assert [f.name for f in result.factories] == [
        "create_baseline_model",
        "create_improved_model_1",
        "create_improved_model_2",
    ]
    kinds = {d.kind for d in result.dropped}
    assert {"shell", "colab", "magic", "data"} <= kinds
    assert "google.colab" not in result.module_source and "drive.mount" not in result.module_source
    compile(result.module_source, "submission.py", "exec")


ORIGINAL_SAMPLES = ["Camille Dupont.ipynb", "Zoé Martin", "baseline_only.ipynb", "broken.ipynb", "module_student.py"]


def test_discover_class_folder(tmp_path):
    promo = tmp_path / "promo"
    copy_samples(promo, ORIGINAL_SAMPLES + ["README.md"])
    paths, ignored = discover([promo])
    ids = assign_ids(paths)
    assert set(ids) == {"Camille Dupont", "Zoé Martin", "baseline_only", "broken", "module_student"}
    assert ids["Zoé Martin"] == promo / "Zoé Martin" and ids["Zoé Martin"].is_dir()
    assert ids["Camille Dupont"] == promo / "Camille Dupont.ipynb"
    assert [(Path(i.name).name, ".md" in i.reason) for i in ignored] == [("README.md", True)]


def test_discover_the_samples_folder():
    paths, ignored = discover([SAMPLES])
    ids = assign_ids(paths)
    assert {"Camille Dupont", "Zoé Martin", "baseline_only", "broken", "module_student"} <= set(ids)
    assert len(ids) == len(paths)
    assert SAMPLES / "README.md" in {Path(i.name) for i in ignored}


def test_discover_one_student_folder_given_directly():
    paths, ignored = discover([SAMPLES / "Zoé Martin"])
    assert paths == [SAMPLES / "Zoé Martin"] and ignored == []


def test_discover_reports_missing_paths(tmp_path):
    paths, ignored = discover([tmp_path / "nope"])
    assert paths == [] and [i.reason for i in ignored] == ["does not exist"]


def test_discover_class_of_student_folders(tmp_path):
    body = [("code", "def create_baseline_model():\n    return 1\n")]
    write_notebook(tmp_path / "promo" / "Zoé Martin" / "mini_projet.ipynb", body)
    (tmp_path / "promo" / "Zoé Martin" / "notes.txt").write_text("brouillon", encoding="utf-8")
    write_notebook(tmp_path / "promo" / "Jean Dupont" / "mini_projet.ipynb", body)
    (tmp_path / "promo" / "empty").mkdir()
    (tmp_path / "promo" / "syllabus.pdf").write_bytes(b"%PDF")
    paths, ignored = discover([tmp_path / "promo"])
    assert set(assign_ids(paths)) == {"Zoé Martin", "Jean Dupont"}
    reasons = {Path(i.name).name: i.reason for i in ignored}
    assert reasons.keys() == {"empty", "syllabus.pdf"}
    assert "without a notebook" in reasons["empty"] and ".pdf" in reasons["syllabus.pdf"]


def test_ids_keep_accents_and_spaces_and_are_nfc(tmp_path):
    decomposed = unicodedata.normalize("NFD", "Zoé Martin")  # as macOS writes file names
    assert decomposed != "Zoé Martin"
    folder = tmp_path / decomposed
    write_notebook(folder / "projet.ipynb", [("code", "def create_baseline_model():\n    return 1\n")])
    assert student_id(folder) == "Zoé Martin"
    assert ingest_path(folder).student == "Zoé Martin"
    file = write_notebook(tmp_path / "Élodie Brûlé.ipynb", [("code", "def create_baseline_model():\n    return 1\n")])
    assert student_id(file) == "Élodie Brûlé"
    assert student_id(tmp_path / "  Jean Dupont  ") == "Jean Dupont"


def test_id_collisions_get_the_folder_as_prefix(tmp_path):
    body = [("code", "def create_baseline_model():\n    return 1\n")]
    first = write_notebook(tmp_path / "Groupe A" / "mini_projet.ipynb", body)
    second = write_notebook(tmp_path / "Groupe B" / "mini_projet.ipynb", body)
    paths, _ = discover([first, second])
    assert assign_ids(paths) == {"Groupe A-mini_projet": first, "Groupe B-mini_projet": second}


def test_id_collisions_inside_a_class_folder(tmp_path):
    body = [("code", "def create_baseline_model():\n    return 1\n")]
    for group in ("g1", "g2"):  # two notebooks per folder: the folders are not student folders
        write_notebook(tmp_path / "promo" / group / "alice.ipynb", body)
        write_notebook(tmp_path / "promo" / group / f"bob_{group}.ipynb", body)
    paths, _ = discover([tmp_path / "promo"])
    assert set(assign_ids(paths)) == {"g1-alice", "g2-alice", "bob_g1", "bob_g2"}


def test_id_collisions_never_lose_a_submission(tmp_path):
    body = [("code", "def create_baseline_model():\n    return 1\n")]
    paths = [write_notebook(tmp_path / year / "groupe1" / "mini_projet.ipynb", body) for year in ("2024", "2025")]
    ids = assign_ids(paths)
    assert sorted(ids.values()) == sorted(paths)


# --------------------------------------------------------------------------- extraction rules

CRAFTED = [
    ("md", "# Mini-projet\nIntroduction."),
    ("code", "!pip install -q tensorflow\nimport math\n%matplotlib inline\nimport numpy as np\nfiles = !ls"),
    ("code", "%%bash\necho hello\nls -la"),
    ("code", "from google.colab import drive\ndrive.mount('/content/drive')"),
    (
        "code",
        "(X_train, y_train), (X_test, y_test) = mnist.load_data()\n"
        "X_train = X_train.reshape(-1, 28, 28, 1) / 255.0\nLR = 1e-3\nN_CLASSES = 10",
    ),
    (
        "code",
        'def helper_config():\n    """Training settings."""\n    return {\'epochs\': 2, \'batch_size\': 32}\n\n\n'
        "def create_baseline_model():\n    return 'baseline'\n",
    ),
    (
        "code",
        "# improved models\ndef create_improved_model_10():\n    return 10\n\n\n"
        'def create_improved_model_2():\n    """Documented."""\n    return LR\n',
    ),
    ("code", "%%time\nmodel = create_baseline_model()\nhistory = model.fit(X_train, y_train, epochs=5)\nTIMED = 3"),
    (
        "code",
        "model.fit(X_train, y_train)\nmodel.evaluate(X_test, y_test)\nplt.show()\nprint('done')\n"
        "score = model.evaluate(X_test, y_test)",
    ),
    ("code", "TRAINING_CONFIG = {'create_improved_model_2': helper_config()}"),
    (
        "code",
        "def build_model():\n    return None\n\n\ndef create_improved_model_3(units):\n    return units\n\n\n"
        "def create_improved_model_4(*, units):\n    return units\n\n\n"
        "def create_improved_model_5(units=3):\n    return units\n",
    ),
]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    path = write_notebook(tmp_path_factory.mktemp("crafted") / "Jean Dupont.ipynb", CRAFTED)
    return ingest_path(path)


def test_crafted_notebook_is_read(crafted):
    assert crafted.status == "ok", crafted.reason
    assert crafted.student == "Jean Dupont"
    compile(crafted.module_source, "submission.py", "exec")


@pytest.mark.parametrize(
    "code, kind, cell",
    [
        ("!pip install -q tensorflow", "shell", 2),
        ("files = !ls", "shell", 2),
        ("%matplotlib inline", "magic", 2),
        ("%%bash", "magic", 3),
        ("from google.colab import drive", "colab", 4),
        ("(X_train, y_train), (X_test, y_test) = mnist.load_data()", "data", 5),
        ("X_train = X_train.reshape(-1, 28, 28, 1) / 255.0", "depends_on_dropped", 5),
        ("%%time", "magic", 8),
        ("history = model.fit(X_train, y_train, epochs=5)", "depends_on_dropped", 8),
        ("model.fit(X_train, y_train)", "training", 9),
        ("model.evaluate(X_test, y_test)", "evaluation", 9),
        ("plt.show()", "plotting", 9),
    ],
)
def test_dropped_statements_have_a_kind_and_a_place(crafted, code, kind, cell):
    dropped = dropped_by_code(crafted)
    assert code in dropped, sorted(dropped)
    assert (dropped[code].kind, dropped[code].cell) == (kind, cell)
    assert dropped[code].reason


@pytest.mark.parametrize(
    "code",
    [
        "drive.mount('/content/drive')",
        "print('done')",
        "model = create_baseline_model()",
        "score = model.evaluate(X_test, y_test)",
    ],
)
def test_top_level_calls_are_dropped(crafted, code):
    assert code in dropped_by_code(crafted)
    assert code not in crafted.module_source


def test_shell_magic_and_bash_cells_never_reach_the_module(crafted):
    source = crafted.module_source
    for text in (
        "pip install",
        "%matplotlib",
        "!ls",
        "echo hello",
        "%%",
        "google.colab",
        "load_data",
        ".fit(",
        ".evaluate(",
        "plt.show",
        "print(",
    ):
        assert text not in source, text
    assert dropped_by_code(crafted)["%%bash"].reason.startswith("cell magic %%bash")


def test_cell_magic_time_keeps_the_cells_python(crafted):
    assert "TIMED = 3" in crafted.module_source
    assert "line removed" in dropped_by_code(crafted)["%%time"].reason


def test_dependent_assignments_name_what_they_depend_on(crafted):
    reason = dropped_by_code(crafted)["X_train = X_train.reshape(-1, 28, 28, 1) / 255.0"].reason
    assert "X_train" in reason and "dropped" in reason


def test_kept_statements(crafted):
    tree = ast.parse(crafted.module_source)
    kept = {type(node).__name__ for node in tree.body if not _harness_block(node)}
    assert kept <= {"Import", "ImportFrom", "FunctionDef", "Assign"}
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {"helper_config", "create_baseline_model", "create_improved_model_2", "build_model"} <= names
    # imports nothing kept uses are left out (the models never need them), each with its reason
    unused = {d.code for d in crafted.dropped if d.kind == "unused_import"}
    assert {"import math", "import numpy as np"} <= unused and "import math" not in crafted.module_source
    assert "LR = 1e-3" in crafted.module_source and "N_CLASSES = 10" in crafted.module_source
    # TRAINING_CONFIG is kept even though it calls a student helper at top level
    assert "TRAINING_CONFIG = {'create_improved_model_2': helper_config()}" in crafted.module_source
    assert crafted.has_training_config
    namespace: dict = {}
    exec(compile(crafted.module_source, "submission.py", "exec"), namespace)  # plain Python: safe here
    # the model is fit twice at top level, with epochs=5 then the defaults: no declared epochs of its own
    assert namespace["TRAINING_CONFIG"] == {"create_improved_model_2": {"epochs": 2, "batch_size": 32}}
    assert namespace["create_improved_model_2"]() == 1e-3


def _harness_block(node: ast.stmt) -> bool:
    """The blocks the harness adds to set declared settings (names starting with ``_harness_``)."""
    return isinstance(node, (ast.If, ast.Try)) and "_harness_" in ast.unparse(node)


def test_factories_in_natural_order_baseline_first(crafted):
    assert [(f.name, f.role) for f in crafted.factories] == [
        ("create_baseline_model", "baseline"),
        ("create_improved_model_2", "improved"),
        ("create_improved_model_5", "improved"),
        ("create_improved_model_10", "improved"),
    ]
    assert {f.name: f.has_docstring for f in crafted.factories}["create_improved_model_2"]


def test_factories_with_required_arguments_and_lookalikes_are_ignored_with_a_reason(crafted):
    ignored = {i.name: i.reason for i in crafted.ignored_functions}
    assert set(ignored) == {"build_model", "create_improved_model_3", "create_improved_model_4"}
    assert "arguments" in ignored["create_improved_model_3"]
    assert "arguments" in ignored["create_improved_model_4"]  # keyword-only without default
    assert "create_baseline_model" in ignored["build_model"]  # says what to call it instead
    assert "helper_config" not in ignored


def test_line_map_points_factories_back_to_their_cell(crafted):
    cells = {index: cell for index, cell in enumerate(CRAFTED, start=1)}
    assert len(crafted.line_map) >= len(crafted.module_source.splitlines())
    module_lines = crafted.module_source.splitlines()
    for factory in crafted.factories:
        cell_lines = cells[factory.cell][1].splitlines()
        assert cell_lines[factory.line - 1].startswith(f"def {factory.name}(")
        # and the map sends the module line of each def to that same place
        (module_line,) = [n for n, text in enumerate(module_lines, 1) if text.startswith(f"def {factory.name}(")]
        assert tuple(crafted.line_map[module_line - 1]) == (factory.cell, factory.line)
    assert [(f.name, f.cell, f.line) for f in crafted.factories] == [
        ("create_baseline_model", 6, 6),
        ("create_improved_model_2", 7, 6),
        ("create_improved_model_5", 11, 13),
        ("create_improved_model_10", 7, 2),
    ]


def test_module_main_guard_is_dropped(tmp_path):
    path = tmp_path / "étudiant.py"
    path.write_text(
        '"""Report."""\nimport math\n\nLR = 1e-3\n\n\ndef create_baseline_model():\n    return LR\n\n\n'
        'if __name__ == "__main__":\n    create_baseline_model().fit()\n    raise SystemExit(1)\n',
        encoding="utf-8",
    )
    result = ingest_path(path)
    assert result.status == "ok" and result.kind == "module" and result.student == "étudiant"
    (main,) = [d for d in result.dropped if d.kind == "main"]
    assert (main.cell, main.line) == (None, 11)
    assert "__main__" not in result.module_source and "SystemExit" not in result.module_source
    namespace: dict = {}
    exec(compile(result.module_source, str(path), "exec"), namespace)
    assert namespace["create_baseline_model"]() == 1e-3
    assert (result.factories[0].cell, result.factories[0].line) == (None, 7)


# --------------------------------------------------------------------------- unreadable submissions


def test_syntax_error_names_the_cell_and_line(tmp_path):
    path = write_notebook(
        tmp_path / "oops.ipynb",
        [
            ("md", "# Titre"),
            ("code", "import math"),
            ("code", "def create_baseline_model():\n    return (1,\n\nx = 1"),
        ],
    )
    result = ingest_path(path)
    assert result.status == "invalid"
    assert "Syntax error in cell 3, line 2" in result.reason
    assert result.factories == [] and result.module_source == ""


def test_broken_sample_is_invalid_with_its_cell():
    result = ingest_path(SAMPLES / "broken.ipynb")
    assert result.status == "invalid"
    assert result.reason.startswith("Syntax error in cell 8, line 12")
    assert "does not match" in result.reason


def test_module_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def create_baseline_model():\n    return 1\n\ndef f(:\n    pass\n", encoding="utf-8")
    result = ingest_path(path)
    assert result.status == "invalid" and "Syntax error in line 4" in result.reason


def test_notebook_that_is_not_json(tmp_path):
    path = tmp_path / "notjson.ipynb"
    path.write_text("def create_baseline_model():\n    return 1\n", encoding="utf-8")
    result = ingest_path(path)
    assert result.status == "invalid"
    assert "not a valid notebook" in result.reason and "not JSON" in result.reason
    assert result.student == "notjson"


def test_json_that_is_not_a_notebook(tmp_path):
    path = tmp_path / "weird.ipynb"
    path.write_text('{"cells": 3}', encoding="utf-8")
    result = ingest_path(path)
    assert result.status == "invalid" and "notebook" in result.reason


def test_module_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.py"
    path.write_bytes("# é\ndef create_baseline_model():\n    return 1\n".encode("latin-1"))
    result = ingest_path(path)
    assert result.status == "invalid" and "UTF-8" in result.reason


ENCODINGS = Path(__file__).resolve().parent.parent / "fixtures" / "encodings"


@pytest.mark.parametrize("name", ["bom_module.py", "latin1_module.py"])
def test_a_module_is_decoded_as_python_decodes_it(name):
    # a BOM was graded invalid ("non-printable character U+FEFF"), a latin-1 declaration refused
    result = ingest_path(ENCODINGS / name)
    assert result.status == "ok", result.reason
    assert [f.name for f in result.factories] == ["create_baseline_model", "create_improved_model_1"]
    assert "Modèle réduit" in result.code_cells[0].source and "\ufeff" not in result.module_source
    # stored as UTF-8 text: a latin-1 declaration left in it would misread the worker's copy
    compile(result.module_source.encode("utf-8"), name, "exec")


def test_an_unknown_encoding_declaration_is_invalid_with_its_reason():
    result = ingest_path(ENCODINGS / "wrong_declaration.py")
    assert result.status == "invalid" and "no-such-codec" in result.reason


def test_no_factory_is_invalid_and_lists_lookalikes(tmp_path):
    path = write_notebook(
        tmp_path / "nofactory.ipynb",
        [("code", "import math\n\ndef build_model():\n    return 1\n\ndef create_cnn_model():\n    return 2\n")],
    )
    result = ingest_path(path)
    assert result.status == "invalid"
    assert result.reason.startswith("No factory found")
    assert "build_model" in result.reason and "create_cnn_model" in result.reason


def test_a_global_filled_by_a_dropped_call_of_the_student_s_own_function_is_not_read_at_import(tmp_path):
    helper = (
        "from tensorflow import keras\n\nruns = {}\nLOG = []\n\n"
        "def create_baseline_model():\n    return keras.Sequential()\n\n"
        "def run(make, name):\n    model = make()\n    history = model.fit(x_train, y_train)\n"
        "    runs[name] = {'hist': history.history}\n    LOG.append(name)\n    local = []\n    local.append(1)\n"
    )
    use = 'run(create_baseline_model, "baseline")\nh = runs["baseline"]["hist"]\nlast = LOG[-1]\nlocal = [2]\n'
    result = ingest_path(write_notebook(tmp_path / "s.ipynb", [("code", helper), ("code", use)]))
    dropped = dropped_by_code(result)
    assert dropped['h = runs["baseline"]["hist"]'].kind == "depends_on_dropped"
    assert dropped["last = LOG[-1]"].kind == "depends_on_dropped"
    assert "local = [2]" in result.module_source  # run()'s own `local` is not the module's
    compile(result.module_source, "submission.py", "exec")


def test_a_kept_assignment_that_fails_at_import_leaves_only_its_own_names_undefined(tmp_path):
    code = (
        "CONFIG = {}\nSCALE = CONFIG['scale']\nUNITS = int('64')\n\n"
        "def create_baseline_model():\n    return UNITS\n\ndef create_improved_model_1():\n    return SCALE\n"
    )
    result = ingest_path(write_notebook(tmp_path / "s.ipynb", [("code", code)]))
    assert "try:  # harness" in result.module_source and "CONFIG = {}\n" in result.module_source
    assert len(result.line_map) >= len(result.module_source.splitlines())
    namespace: dict = {}
    exec(compile(result.module_source, "submission.py", "exec"), namespace)  # plain Python: safe here
    assert namespace["create_baseline_model"]() == 64
    with pytest.raises(NameError, match="SCALE"):
        namespace["create_improved_model_1"]()


@pytest.mark.parametrize(
    "cells",
    [
        [],
        ["def build_model():\n    return 1\n"],
        ["import keras\n\ndef build(units):\n    return keras.Sequential([keras.layers.Dense(units)])\n"],
        [
            "import keras\n\ndef make_cnn(units):\n    return keras.Sequential([keras.layers.Dense(units)])\n",
            "def get_model():\n    return 1\n",
        ],
    ],
)
def test_the_no_factory_reason_is_said_in_french_in_each_of_its_forms(tmp_path, cells):
    """Each of its four forms: nothing, functions it does not call, functions that need arguments, both."""
    result = ingest_path(write_notebook(tmp_path / "nofactory.ipynb", [("code", c) for c in cells]))
    french = Translator("fr").stored(result.reason)
    assert result.reason.startswith("No factory found")
    assert french.startswith("Aucune fabrique trouvée") and "Keras model" not in french
    assert all(name in french for name in ("build_model", "make_cnn", "get_model", "build()") if name in result.reason)


def test_empty_notebook_is_invalid(tmp_path):
    result = ingest_path(write_notebook(tmp_path / "empty.ipynb", []))
    assert result.status == "invalid" and result.reason.startswith("No factory found")


# --------------------------------------------------------------------------- extraction edge cases


def test_operators_at_the_start_of_a_continuation_line_are_not_magics(tmp_path):
    path = write_notebook(
        tmp_path / "pep8.ipynb",
        [
            (
                "code",
                "SAME = (1\n        != 2)\nREST = (7\n        % 3)\n\n\ndef create_baseline_model():\n    return SAME\n",
            )
        ],
    )
    result = ingest_path(path)
    assert result.status == "ok", result.reason
    assert "!= 2" in result.module_source and "% 3" in result.module_source


def test_semicolon_separated_statements_are_classified_separately(tmp_path):
    path = write_notebook(
        tmp_path / "colab.ipynb",
        [
            (
                "code",
                "import os; from google.colab import drive\nLR = 1e-3; model.fit(x)\n\n"
                "def create_baseline_model():\n    return LR\n",
            )
        ],
    )
    result = ingest_path(path)
    assert result.status == "ok", result.reason
    assert "LR = 1e-3" in result.module_source  # the assignment kept, by columns
    assert [d.code for d in result.dropped if d.kind == "unused_import"] == ["import os"]  # its own statement
    assert "google.colab" not in result.module_source
    assert ".fit(" not in result.module_source


def test_a_name_changed_in_place_by_a_dropped_statement_is_not_trusted(tmp_path):
    """`results` is a kept `{}`, but the dropped statements filled it: what reads it afterwards is
    dropped too, instead of failing the import with a KeyError."""
    path = write_notebook(
        tmp_path / "inplace.ipynb",
        [
            (
                "code",
                "import keras\nresults = {}\nscores = []\nLABELS = ['a', 'b']\n"
                "def create_baseline_model():\n    return keras.Sequential([keras.Input((28, 28, 1))])",
            ),
            (
                "code",
                "model = create_baseline_model()\nresults['baseline'] = model.evaluate(x, y)\n"
                "scores.append(model.evaluate(x, y)[1])\nLABELS.sort()",
            ),
            ("code", "best = results['baseline']\nfirst = scores[0]\nN = len(LABELS)\nTITLE = 'MNIST'"),
        ],
    )
    result = ingest_path(path)
    assert result.status == "ok", result.reason
    dropped = dropped_by_code(result)
    for code in ("best = results['baseline']", "first = scores[0]", "N = len(LABELS)"):
        assert dropped[code].kind == "depends_on_dropped", code
    assert "TITLE = 'MNIST'" in result.module_source
    namespace: dict = {}
    exec(compile(result.module_source, "submission.py", "exec"), namespace)  # imports without a KeyError
    assert callable(namespace["create_baseline_model"])


def test_a_call_of_a_function_the_notebook_defines_later_is_dropped(tmp_path):
    # cells run out of order while the notebook was written: the call comes first, the definition after
    cells = [
        ("code", "from tensorflow import keras"),
        ("code", "def create_baseline_model():\n    return keras.Sequential([keras.layers.Dense(10)])"),
        ("code", "resultats_1 = evaluer_modele(create_baseline_model, 'Modèle de base')"),
        ("code", "def evaluer_modele(creer, nom, epochs=5):\n    modele = creer()\n    return modele.fit([], [])"),
    ]
    submission = ingest_path(write_notebook(tmp_path / "eleve.ipynb", cells))
    assert submission.status == "ok", submission.reason
    dropped = dropped_by_code(submission)
    assert "resultats_1 = evaluer_modele(create_baseline_model, 'Modèle de base')" in dropped
    assert "evaluer_modele(create_baseline_model" not in submission.module_source


FACTORIES_WITHOUT_DEF = '''
import functools
from tensorflow import keras


def build_model(dropout=0.0, filters=8):
    """A small CNN."""
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(filters, 3), keras.layers.Flatten(),
                             keras.layers.Dropout(dropout), keras.layers.Dense(10, activation="softmax")])


def build_with(units):
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(units)])


create_baseline_model = build_model
create_improved_model_1 = lambda: build_model(dropout=0.3)
create_improved_model_2 = functools.partial(build_model, filters=16)
create_improved_model_3 = build_with
'''


def test_factories_named_by_an_alias_a_lambda_or_a_partial_are_graded(tmp_path):
    """`create_improved_model_1 = lambda: build_model(0.3)` was dropped as a top-level call of the student's
    function, and aliases and partials were not factories: the inference then graded build_model instead."""
    path = tmp_path / "aliases.py"
    path.write_text(FACTORIES_WITHOUT_DEF, encoding="utf-8")
    result = ingest_path(path)
    found = {f.name: (f.role, f.line, f.has_docstring) for f in result.factories}
    assert found == {
        "create_baseline_model": ("baseline", 16, True),
        "create_improved_model_1": ("improved", 17, False),
        "create_improved_model_2": ("improved", 18, True),
    }  # build_with needs an argument: an alias of it is no factory
    assert not result.factory_map and "lambda: build_model(dropout=0.3)" in result.module_source


def test_a_pytorch_notebook_is_told_so_and_not_run(tmp_path):
    """No Keras model can come out of it: the reason names the framework, and discovery does not run it."""
    path = tmp_path / "becker_tom.py"
    path.write_text(
        "import torch\nimport torch.nn as nn\n\n\nclass Net(nn.Module):\n    def forward(self, x):\n"
        "        return x\n\n\nmodel = Net()\n",
        encoding="utf-8",
    )
    result = ingest_path(path)
    assert result.status == "invalid" and result.other_framework == "PyTorch"
    assert result.reason.startswith("Written with PyTorch, not Keras") and not needs_discovery(result)
    path.write_text(
        "import torch\nfrom tensorflow import keras\nx = 1\n", encoding="utf-8"
    )  # Keras too: the usual reason
    assert ingest_path(path).other_framework is None


VARIANT_RUNS = [
    (
        "code",
        "from tensorflow import keras\nfrom tensorflow.keras import layers\n"
        "from tensorflow.keras.preprocessing.image import ImageDataGenerator",
    ),
    (
        "code",
        "def build_net(variant='baseline'):\n"
        "    model = keras.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(32, 3), layers.Flatten()])\n"
        "    if variant == 'dropout':\n        model.add(layers.Dropout(0.5))\n"
        "    model.add(layers.Dense(10, activation='softmax'))\n"
        "    model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])\n"
        "    return model\n\n"
        "for v in ('baseline', 'dropout'):\n    print(v, build_net(v).count_params())",
    ),
    (
        "code",
        "datagen = ImageDataGenerator(rotation_range=10, width_shift_range=0.1)\n\n"
        "def run_experiment(name, variant='baseline', augment=False, epochs=10):\n"
        "    model = build_net(variant)\n"
        "    if augment:\n        history = model.fit(datagen.flow(X_tr, y_tr, batch_size=128), epochs=epochs)\n"
        "    else:\n        history = model.fit(X_tr, y_tr, batch_size=128, epochs=epochs)\n"
        "    return {'model': model, 'history': history.history}\n\nresults = {}",
    ),
    ("code", "results['Baseline'] = run_experiment('Baseline', 'baseline')"),
    ("code", "results['Dropout'] = run_experiment('Dropout', 'dropout')"),
    (
        "code",
        "# same architecture, only the data changes\nresults['Aug'] = run_experiment('Aug', 'baseline', augment=True)",
    ),
]


def test_a_helper_s_runs_are_the_models_and_a_flag_it_sets_trains_on_the_module_s_generator(tmp_path):
    """``build_net(v).count_params()`` over the variants only builds; the helper's three runs are what the
    notebook trains, the third on the generator its ``augment=True`` switches to (it was the baseline again)."""
    result = ingest_path(write_notebook(tmp_path / "variants.ipynb", VARIANT_RUNS))
    assert result.factory_source == "inferred" and len(result.factories) == 3
    declared = result.module_source.split("_harness_declared = ", 1)[1].split("\n")[0]
    assert "'create_improved_model_2': {'epochs': 10, 'augmentation': ImageDataGenerator(rotation_range=10" in declared


ALIAS_RUNS = [
    (
        "code",
        "from tensorflow import keras\nfrom tensorflow.keras import layers\n"
        "from tensorflow.keras.preprocessing.image import ImageDataGenerator",
    ),
    (
        "code",
        "def modele_reference():\n"
        "    m = keras.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(32, 3), layers.Flatten(),"
        " layers.Dense(10, activation='softmax')])\n"
        "    m.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])\n"
        "    return m\n\n\n"
        "def modele_a_dropout():\n"
        "    m = keras.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(32, 3), layers.Flatten(),"
        " layers.Dropout(0.5), layers.Dense(10, activation='softmax')])\n"
        "    m.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])\n"
        "    return m\n\n\n"
        "# C: the same network as A, only the training changes (augmented data, 10 epochs)\n"
        "modele_c_augmente = modele_a_dropout\n"
        "generateur = ImageDataGenerator(rotation_range=10, zoom_range=0.1)",
    ),
    (
        "code",
        "EPOCHS, BATCH = 5, 64\n\n\n"
        "def entrainer(constructeur, nom, epochs=EPOCHS, augmentation=False):\n"
        "    m = constructeur()\n"
        "    if augmentation:\n        h = m.fit(generateur.flow(X_tr, Y_tr, batch_size=BATCH), epochs=epochs)\n"
        "    else:\n        h = m.fit(X_tr, Y_tr, batch_size=BATCH, epochs=epochs)\n"
        "    return m, h.history\n\n\n"
        "resultats = {}\n"
        "for nom, constr, ep, aug in [('reference', modele_reference, EPOCHS, False),\n"
        "                             ('A dropout', modele_a_dropout, EPOCHS, False),\n"
        "                             ('C augmentation', modele_c_augmente, 10, True)]:\n"
        "    resultats[nom] = entrainer(constr, nom, epochs=ep, augmentation=aug)",
    ),
]


@pytest.mark.parametrize("kind", ["notebook", "module"])
def test_a_builder_bound_to_another_name_and_trained_otherwise_is_a_model_of_its_own(tmp_path, kind):
    """``modele_c_augmente = modele_a_dropout``, then trained on augmented data for 10 epochs: the same network
    trained otherwise is the student's third model (in a module, it was not graded at all)."""
    if kind == "notebook":
        path = write_notebook(tmp_path / "alias.ipynb", ALIAS_RUNS)
    else:
        path = tmp_path / "alias.py"
        path.write_text("\n\n".join(source for _, source in ALIAS_RUNS), encoding="utf-8")
    result = ingest_path(path)
    assert [f.role for f in result.factories] == ["baseline", "improved", "improved"], result.factory_map
    declared = result.module_source.split("_harness_declared = ", 1)[1].split("\n")[0]
    assert "'create_improved_model_2': {'epochs': 10, 'augmentation': ImageDataGenerator(rotation_range=10" in declared


def test_a_top_level_run_of_the_students_own_experiment_class_is_training_and_dropped(tmp_path):
    """``control = Experiment("baseline@8", baseline, epochs=8).run()``: the class's ``run`` calls ``fit`` (through
    another method), so the line trains a model. Kept, it trained at every import of the submission, and under
    load the import ran past its deadline: every model of the submission failed."""
    source = (
        "from tensorflow import keras\n\n"
        "class Experiment:\n"
        "    def __init__(self, name, build_fn, epochs=5):\n"
        "        self.name, self.build_fn, self.epochs = name, build_fn, epochs\n\n"
        "    def _train(self):\n"
        "        self.model.fit(x_train, y_train, epochs=self.epochs)\n\n"
        "    def run(self):\n"
        "        self.model = self.build_fn()\n"
        "        self._train()\n"
        "        return self\n\n"
        "    def describe(self):\n"
        "        return self.name\n\n"
        "def create_baseline_model():\n    return keras.Sequential([keras.Input((28, 28, 1))])\n\n"
        "control = Experiment('baseline@8', create_baseline_model, epochs=8).run()\n"
        "label = Experiment('baseline', create_baseline_model).describe()\n"
    )
    path = tmp_path / "student.py"
    path.write_text(source)
    result = ingest_path(path)
    dropped = dropped_by_code(result)
    assert dropped["control = Experiment('baseline@8', create_baseline_model, epochs=8).run()"].kind == "training"
    assert "control =" not in result.module_source
    assert "label = Experiment('baseline', create_baseline_model).describe()" in result.module_source
