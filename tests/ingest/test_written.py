"""Modules a notebook writes with ``%%writefile`` and imports (harness/ingest/written.py)."""

from __future__ import annotations

import nbformat

from harness.ingest.read import ingest_path
from harness.ingest.written import inlined, written_modules
from harness.results import CodeCell

BUILDERS = (
    "import keras\nfrom keras import layers\n\n"
    "def modele_base():\n"
    "    m = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation='relu'),"
    " layers.Flatten(), layers.Dense(10, activation='softmax')])\n"
    "    m.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])\n    return m\n\n"
    "def modele_dropout():\n"
    "    m = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation='relu'),"
    " layers.Flatten(), layers.Dropout(0.3), layers.Dense(10, activation='softmax')])\n"
    "    m.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])\n    return m\n"
)
TRAINER = (
    "def entrainer(modele, nom, epochs=6):\n"
    "    modele.fit(X_train, y_train, epochs=epochs, batch_size=128)\n    return modele\n"
)


def notebook_of(path, sources: list[str]):
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in sources]), path)
    return ingest_path(path)


def test_a_module_the_notebook_writes_then_star_imports_is_read_in_place(tmp_path):
    """The Colab habit: builders in a ``%%writefile modeles.py`` cell, ``from modeles import *`` in the next. The
    file does not exist where the notebook is read: the import used to fail and the submission was graded 0."""
    result = notebook_of(
        tmp_path / "colab.ipynb",
        [
            "%%writefile modeles.py\n" + BUILDERS,
            "from modeles import *   # modele_base, modele_dropout\n" + TRAINER,
            "entrainer(modele_base(), 'ref')\nentrainer(modele_dropout(), 'dropout')\n",
        ],
    )
    assert result.status == "ok", result.reason
    assert result.factory_map == {"create_baseline_model": "modele_base", "create_improved_model_1": "modele_dropout"}
    assert "from modeles" not in result.module_source
    compile(result.module_source, "kept", "exec")
    said = {(r.cell, r.line): (r.before, r.after, r.message.key) for r in result.rewrites}
    assert said[(1, 1)] == ("%%writefile modeles.py", "# %%writefile modeles.py", "rewrite_writefile")
    assert said[(2, 1)][1:] == ("pass", "rewrite_written_import")
    assert result.local_modules == {}  # nothing imports it any more


def test_a_written_module_kept_as_a_namespace_travels_with_the_code(tmp_path):
    """``import modeles`` then ``modeles.modele_base()``: the file is handed to the worker as the student's own
    module, as a file handed in beside the notebook would be; a named import keeps its alias."""
    result = notebook_of(
        tmp_path / "namespace.ipynb",
        [
            "%%writefile src/modeles.py\n" + BUILDERS,
            "import modeles\nfrom modeles import modele_dropout as drop\n" + TRAINER,
            "def create_baseline_model():\n    return modeles.modele_base()\n\n"
            "def create_improved_model_1():\n    return drop()\n",
        ],
    )
    assert set(result.local_modules) == {"modeles.py"} and "def modele_base" in result.local_modules["modeles.py"]
    assert "drop = modele_dropout" in result.module_source and "import modeles" in result.module_source


def test_appends_accumulate_and_files_that_are_not_python_are_left_to_the_magic_rules():
    cells = [
        CodeCell(cell=1, source="%%writefile outils.py\nA = 1\n"),
        CodeCell(cell=2, source="%%writefile -a outils.py\nB = 2\n"),
        CodeCell(cell=3, source="%%writefile requirements.txt\nkeras\n"),
        CodeCell(cell=4, source="import os; from outils import A\nfrom outils import (\n    B,\n)\nprint(A)\n"),
    ]
    assert written_modules(cells) == {"outils.py": "A = 1\nB = 2\n"}
    out, rewrites, files = inlined(cells)
    assert files == written_modules(cells)
    assert out[2] is cells[2]  # not Python: read.py drops it as a foreign cell magic
    # sharing its line with another statement, an import is left alone; one over three lines keeps the count
    assert out[3].source == "import os; from outils import A\npass\n\n\nprint(A)\n"
    assert [(r.cell, r.line) for r in rewrites] == [(1, 1), (2, 1), (4, 2)]


def test_a_notebook_that_writes_no_python_file_is_untouched():
    cells = [CodeCell(cell=1, source="%%bash\nls\n"), CodeCell(cell=2, source="from modeles import *\n")]
    assert inlined(cells) == (cells, [], {})
