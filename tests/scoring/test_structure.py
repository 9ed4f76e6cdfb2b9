"""The structure reader ("bien structuré", issue 14): near-copied blocks anywhere in the code, code
outside functions, training on import, over-long functions, cryptic names; and the part they earn.

Each case is a pattern real classes hand in (a notebook of pasted cells, a loop body written three
times, a module that trains when imported), written here in small.
"""

from __future__ import annotations

import textwrap

import nbformat
import pytest
from test_rubric import EN, FR, REPO, criterion, evidence, model

from harness.ingest.read import ingest_path
from harness.results import CodeCell
from harness.scoring.engine import score
from harness.scoring.readers import code as rubric_code
from harness.scoring.readers.structure import MAX_COPIES, out_of_order, read_structure
from harness.scoring.rubric import load_rubric

STACK = """\
{m} = Sequential()
{m}.add(Conv2D({f}, (3, 3), activation="relu", input_shape=(28, 28, 1)))
{m}.add(MaxPooling2D((2, 2)))
{extra}{m}.add(Flatten())
{m}.add(Dense(10, activation="softmax"))
{m}.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
{h} = {m}.fit(X_train, y_train, epochs=5, batch_size={b}, validation_split=0.2)
print({m}.evaluate(X_test, y_test))
"""


def cells(*sources: str) -> list[CodeCell]:
    return [CodeCell(cell=n, source=textwrap.dedent(s)) for n, s in enumerate(sources, 1)]


def pasted_cells() -> list[CodeCell]:
    """The same stack pasted into three cells, renamed, with other values and an extra layer."""
    return cells(
        STACK.format(m="model", h="hist", f=32, b=128, extra=""),
        STACK.format(m="model2", h="hist2", f=64, b=64, extra=""),
        STACK.format(m="model3", h="hist3", f=32, b=128, extra="model3.add(Dropout(0.25))\n"),
    )


def test_a_stack_pasted_into_cells_renamed_and_changed_is_a_copy_where_it_was_pasted():
    structure = read_structure(pasted_cells(), set())
    code = rubric_code.student_code(pasted_cells())
    assert [(code.locate(c.first.start), code.locate(c.second.start)) for c in structure.copies] == [
        ((1, 1), (2, 1)),
        ((1, 1), (3, 1)),
    ]
    assert all(c.similarity >= 0.9 for c in structure.copies)
    assert structure.function_share == 0  # a script: nothing inside a function


def test_a_loop_body_written_three_times_is_two_copies_and_a_loop_over_the_settings_is_none():
    loop = "res_{n} = {{}}\nfor v in {values}:\n    m = build({n}=v)\n    m.fit(x, y, epochs=5)\n    res_{n}[v] = m.evaluate(x, y)[1]\n    print(v, res_{n}[v])\n"
    three = cells(
        *(loop.format(n=n, values=values) for n, values in (("drop", [0.2, 0.5]), ("lr", [1e-3]), ("f", [32])))
    )
    assert len(read_structure(three, set()).copies) == 2
    once = cells(
        "for name, values in {'drop': [0.2], 'lr': [1e-3]}.items():\n    for v in values:\n"
        "        m = build(**{name: v})\n        m.fit(x, y, epochs=5)\n        print(name, v, m.evaluate(x, y)[1])\n"
    )
    assert read_structure(once, set()).copies == []


def main_pasting(stacks: int) -> str:
    """One ``main()`` that builds, trains and evaluates `stacks` models, the same lines pasted for each."""
    body = "\n\n".join(
        textwrap.indent(STACK.format(m=f"model{n}", h=f"hist{n}", f=32 * n, b=128, extra=""), "    ")
        for n in range(1, stacks + 1)
    )
    return f"def main():\n    results = {{}}\n\n{body}"


def test_the_same_lines_pasted_inside_one_long_function_are_copies_named_by_line():
    structure = read_structure(cells(main_pasting(3)), set())
    assert [(c.first.start, c.second.start, c.second.name) for c in structure.copies] == [(4, 14, ""), (4, 24, "")]
    assert read_structure(cells(main_pasting(1)), set()).copies == []


def test_copies_are_looked_for_until_the_part_is_long_spent():
    """A module of hundreds of pasted paragraphs (hostile or not) costs the grader seconds, not minutes."""
    structure = read_structure(cells(main_pasting(120)), set())
    assert len(structure.copies) == MAX_COPIES


def test_a_function_pasted_whole_is_one_copy_not_one_per_paragraph():
    first = main_pasting(2)
    second = first.replace("def main():", "def main_again():")
    structure = read_structure(cells(first, second), set())
    # each function repeats its own paragraph once; the second function repeats the first as a whole
    assert [(c.first.name, c.second.name) for c in structure.copies] == [("", ""), ("main", "main_again")]


@pytest.mark.parametrize(
    ("counts", "moved"),
    [
        ([1, 2, 3, 4], []),  # run top to bottom
        ([1, 2, 5, 6, 9], []),  # gaps: cells run again or deleted, still in order
        ([1, 2, 3, 27, 4, 5, None, 2], [4, 8]),  # a cell's outputs from later, another's from earlier
        ([1, 2, 3, 9, 4], [4]),  # the cell run again last: one
        ([None, None, None], []),  # never run
    ],
)
def test_cells_run_out_of_the_notebook_s_order_are_the_fewest_that_break_its_order(counts, moved):
    cells_ = [CodeCell(cell=n, source="x = 1", execution_count=c) for n, c in enumerate(counts, 1)]
    assert out_of_order(cells_) == moved


def test_a_notebook_run_in_a_hidden_order_is_a_structure_finding_said_where(tmp_path):
    sources = ["import numpy as np", "x = np.zeros(3)", "y = x + 1", "print(y)", "z = y * 2"]
    counts = [1, 8, 9, 2, 3]  # two cells ran in another order than the notebook's
    path = tmp_path / "hidden_order.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    for cell, count in zip(notebook.cells, counts, strict=True):
        cell.execution_count = count
    nbformat.write(notebook, path)
    ingest = ingest_path(path)
    assert [c.execution_count for c in ingest.code_cells] == counts
    result = criterion(score(evidence(ingest, [model("create_baseline_model", role="baseline")]), EN), "code_quality")
    flag = next(e.text for e in result.evidence if "hidden order" in e.text)
    assert "(2)" in flag
    in_order = [1, 2, 3, 4, 5]
    for cell, count in zip(notebook.cells, in_order, strict=True):
        cell.execution_count = count
    nbformat.write(notebook, path)
    result = criterion(
        score(evidence(ingest_path(path), [model("create_baseline_model", role="baseline")]), EN), "code_quality"
    )
    assert not any("hidden order" in e.text for e in result.evidence)


def test_the_handouts_own_repetition_is_not_the_students_copy():
    code = rubric_code.student_code(pasted_cells()[:2])
    every_line = {n for n, line in enumerate(code.source.splitlines(), 1) if line.strip()}
    assert read_structure(pasted_cells()[:2], every_line).copies == []
    assert len(read_structure(pasted_cells()[:2], set()).copies) == 1


def test_different_factories_are_not_copies():
    factories = cells(
        "def small():\n    m = Sequential([Dense(10)])\n    m.compile(optimizer='adam', loss='mse')\n    return m\n",
        "def deep():\n    inputs = Input((28, 28, 1))\n    z = Conv2D(32, 3)(inputs)\n    z = BatchNormalization()(z)\n"
        "    z = GlobalAveragePooling2D()(z)\n    return Model(inputs, Dense(10)(z))\n",
    )
    assert read_structure(factories, set(), min_lines=2).copies == []


BUILDER = """\
def {name}():
    model = Sequential([
        Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        MaxPooling2D((2, 2)),{extra}
        Flatten(),
        Dense(128, activation="relu"),
        Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model
"""


def test_one_builder_per_modification_is_the_assignment_s_form_one_finding(tmp_path):
    """The handout asks for ``create_improved_model_1()``… each returning its whole model: builders restating the
    layers are one finding however many they are (the rubric's ``builder_copies``: each, once, none), while the
    same lines pasted per model at top level are a copy each."""
    builders = cells(
        BUILDER.format(name="build_reference", extra=""),
        BUILDER.format(name="build_dropout", extra="\n        Dropout(0.25),"),
        BUILDER.format(name="build_batchnorm", extra="\n        BatchNormalization(),"),
    )
    copies = read_structure(builders, set()).copies
    assert [(c.first.name, c.second.name, c.builders) for c in copies] == [
        ("build_reference", "build_dropout", True),
        ("build_dropout", "build_batchnorm", True),
    ]
    assert not any(c.builders for c in read_structure(pasted_cells(), set()).copies)  # top-level pasting
    path = tmp_path / "builders.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.source) for c in builders]), path)
    ingest = ingest_path(path)
    text = (REPO / "rubric" / "default.toml").read_text(encoding="utf-8")
    structure = {}
    for mode in ("each", "once", "none"):
        (tmp_path / f"{mode}.toml").write_text(text.replace('builder_copies = "once"', f'builder_copies = "{mode}"'))
        rubric = load_rubric(tmp_path / f"{mode}.toml")
        result = criterion(score(evidence(ingest, [], rubric=rubric), EN), "code_quality")
        structure[mode] = next(c.points for c in result.components if c.id == "structure")
    # two copies cost a quarter each, or one quarter in all, or nothing (of a part scaled by the own lines' share)
    assert structure["each"] / structure["none"] == pytest.approx(0.5)
    assert structure["once"] / structure["none"] == pytest.approx(0.75)


def test_values_a_rerun_cannot_reproduce_are_hidden_state():
    """A slider's value, a value typed in, a function setting a global: the saved results hold values the
    code does not; each kind is one structure finding, named where it first is."""
    code = cells(
        "rate = 0.2\ndef set_rate(r=0.2):\n    global rate\n    rate = r\n",
        "interact(set_rate, r=FloatSlider(min=0.0, max=0.6, value=0.2))\n",
        'epochs = int(input("Epochs? ") or 5)\nepochs2 = int(input("again? "))\n',
    )
    assert read_structure(code, set()).hidden_state == [("global", 3), ("widget", 6), ("input", 9)]
    assert read_structure(cells("epochs = 5\nprint(rate)\n"), set()).hidden_state == []


def test_a_docstring_left_as_todo_documents_nothing():
    source = (
        'def a():\n    """TODO"""\n    return 1\n\n'
        'def b():\n    """CNN with dropout.\n\n    TODO: explain the rate\n    """\n    return 2\n\n'
        'def c():\n    """Le modèle de base (celui de l\'énoncé)."""\n    return 3\n'
    )
    assert rubric_code.comment_stats(source) == (0, 1, 3)


MODULE = """\
def build():
    return make()


def run():
    m = build()
    m.fit(x, y, epochs=5)
    return m


{call}
"""


def test_a_module_that_trains_on_import_is_found_through_the_helper_that_trains():
    on_import = cells(MODULE.format(call="results = run()"))
    guarded = cells(MODULE.format(call='if __name__ == "__main__":\n    results = run()'))
    assert read_structure(on_import, set(), module=True).training_on_import == 11
    assert read_structure(guarded, set(), module=True).training_on_import is None
    # a notebook trains at top level by design: not a finding there
    assert read_structure(on_import, set(), module=False).training_on_import is None


def test_a_long_function_and_cryptic_names_are_found_and_conventions_are_not():
    body = "".join(f"    v{n} = step({n})\n" for n in range(8))
    code = cells(
        f"def main():\n{body}",
        "m = build()\nm2 = build()\nhh = m2.fit(x, y)\ntmp = hh.history\nfig, ax1 = plt.subplots()\n"
        "for i in range(3):\n    x_train = X[i]\ndf = frame()\n",
    )
    structure = read_structure(code, set(), long_function=5)
    assert [(name, lines) for name, _, lines in structure.long_functions] == [("main", 9)]
    assert sorted(name for name, _ in structure.cryptic) == sorted(
        ["m", "m2", "hh", "tmp", *(f"v{n}" for n in range(8))]
    )


def test_module_docstrings_are_text_not_code_outside_functions():
    report = (
        '"""Report.\n\n' + "A line of the report.\n" * 40 + '"""\n\n\ndef build():\n    """Doc."""\n    return make()\n'
    )
    assert read_structure(cells(report), set()).function_share == 1.0


def test_a_runs_output_pasted_as_comments_is_not_a_comment():
    source = (
        "# normalise the images to [0, 1]\nx = x / 255\n"
        "# Epoch 13/15\n# 782/782 - 21s - accuracy: 0.9921 - loss: 0.0461\n# baseline {'clean': 98.91, 'noise': 97.02}\n"
        "#            0     0.9969    0.9980    0.9975       980\n"
    )
    assert rubric_code.comment_stats(source)[0] == 1
    assert rubric_code.pasted_output(source.splitlines()) == {3, 4, 5, 6}


SCRIPT = """
from keras.models import Sequential
from keras.layers import Conv2D, MaxPooling2D, Flatten, Dense, Dropout

(X_train, y_train), (X_test, y_test) = load()

{body}
"""

FACTORED = """
def train_and_report(model, batch_size=128):
    \"\"\"Train `model` the same way as every other and print its test accuracy.\"\"\"
    history = model.fit(X_train, y_train, epochs=5, batch_size=batch_size, validation_split=0.2)
    print(model.evaluate(X_test, y_test))
    return history


def create_baseline_model(filters=32, dropout=0.0):
    \"\"\"The handout's CNN, with the number of filters and a dropout rate as settings.\"\"\"
    model = Sequential()
    model.add(Conv2D(filters, (3, 3), activation="relu", input_shape=(28, 28, 1)))
    model.add(MaxPooling2D((2, 2)))
    if dropout:
        model.add(Dropout(dropout))
    model.add(Flatten())
    model.add(Dense(10, activation="softmax"))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


if __name__ == "__main__":
    for f, d, b in ((32, 0, 128), (64, 0, 64), (32, 0.25, 128)):
        train_and_report(create_baseline_model(f, d), b)
"""


def test_the_same_work_pasted_as_a_script_earns_less_structure_than_factored_with_located_reasons(tmp_path):
    pasted = "\n\n".join(
        STACK.format(m=m, h=h, f=f, b=b, extra=extra)
        for m, h, f, b, extra in (
            ("model", "hist", 32, 128, ""),
            ("model2", "hist2", 64, 64, ""),
            ("model3", "hist3", 32, 128, "model3.add(Dropout(0.25))\n"),
        )
    )
    parts = {}
    for name, body in (("pasted", pasted), ("factored", FACTORED)):
        path = tmp_path / f"{name}.py"
        path.write_text(SCRIPT.format(body=body), encoding="utf-8")
        ingest = ingest_path(path)
        for lang, t in (("fr", FR), ("en", EN)):
            result = criterion(
                score(evidence(ingest, [model("create_baseline_model", role="baseline")]), t), "code_quality"
            )
            parts[name, lang] = ({c.id: c for c in result.components}["structure"], result.evidence)
    pasted_part, pasted_notes = parts["pasted", "en"]
    factored_part, factored_notes = parts["factored", "en"]
    assert factored_part.detail == "0" and factored_part.points > 0.5
    assert pasted_part.detail == "4" and pasted_part.points == 0  # two copies, a script, training on import
    flags = [e for e in pasted_notes if e.kind == "flag"]
    assert any("repeats the block at line" in e.text and e.line for e in flags)
    assert any("trains a model as soon as it is imported" in e.text for e in flags)
    assert any("inside functions" in e.text for e in flags)
    assert any("structure : aucun bloc recopié" in e.text for e in parts["factored", "fr"][1])
    assert any("reprend le bloc de la ligne" in e.text for e in parts["pasted", "fr"][1])
