"""What students actually hand in: zips, Moodle downloads, nbformat 3, Colab exports, other names.

No training here: discovery of submissions, safe extraction and the static reading only.
"""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import nbformat
import pytest
from conftest import SAMPLES

from harness.cli import main
from harness.commands.options import parse_factory_map
from harness.ingest import assign_ids, discover, ingest_path, student_id
from harness.ingest import paths as paths_module

FACTORY = "def create_baseline_model():\n    return 1\n"


def notebook_bytes(cells: list[tuple[str, str]], version: int = 4) -> bytes:
    if version == 3:
        from nbformat import v3

        worksheet_cells = [
            v3.new_code_cell(input=source)
            if kind == "code"
            else (
                v3.new_heading_cell(source.lstrip("# "), level=2)
                if source.startswith("#")
                else v3.new_text_cell("markdown", source=source)
            )
            for kind, source in cells
        ]
        notebook = v3.new_notebook(worksheets=[v3.new_worksheet(cells=worksheet_cells)])
        return nbformat.writes(notebook, version=3).encode()
    notebook = nbformat.v4.new_notebook()
    for kind, source in cells:
        notebook.cells.append(
            nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
        )
    return nbformat.writes(notebook).encode()


def make_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


# --------------------------------------------------------------------------- Moodle and zips


def test_moodle_names_give_the_student_s_name():
    assert student_id(Path("Jean Dupont_12345_assignsubmission_file_")) == "Jean Dupont"
    assert student_id(Path("Zoé Martin_987_assignsubmission_onlinetext_")) == "Zoé Martin"
    assert student_id(Path("/x/Jean Dupont_12345_assignsubmission_file_mini_projet.ipynb")) == "Jean Dupont"
    assert student_id(Path("mini_projet_2024")) == "mini_projet_2024"  # not a Moodle name


def test_a_moodle_download_zip_is_graded_per_student_with_every_skipped_file_reported(tmp_path):
    notebook = notebook_bytes([("code", FACTORY)])
    inner = tmp_path / "inner.zip"
    make_zip(inner, {"projet/mini_projet.ipynb": notebook, "projet/__MACOSX/._mini_projet.ipynb": b"x"})
    archive = make_zip(
        tmp_path / "download" / "MNIST-mini-projet-42.zip",
        {
            "Jean Dupont_12345_assignsubmission_file_/mini_projet.ipynb": notebook,
            "Jean Dupont_12345_assignsubmission_file_/rapport.pdf": b"%PDF",
            "Jean Dupont_12345_assignsubmission_file_/.ipynb_checkpoints/mini_projet-checkpoint.ipynb": notebook,
            "Zoé Martin_67890_assignsubmission_file_/projet.zip": inner.read_bytes(),
            "Paul Durand_111_assignsubmission_onlinetext_/onlinetext.html": b"<p>see attached</p>",
            "__MACOSX/Jean Dupont_12345_assignsubmission_file_/._mini_projet.ipynb": b"x",
            "../escape.ipynb": notebook,
            "/etc/absolute.ipynb": notebook,
        },
        symlinks={"Jean Dupont_12345_assignsubmission_file_/link.ipynb": "/etc/passwd"},
    )
    out = tmp_path / "extracted"
    paths, ignored = discover([archive], extract_to=out)
    ids = assign_ids(paths)
    assert set(ids) == {"Jean Dupont", "Zoé Martin"}
    for path in ids.values():  # everything written stays inside the extraction folder
        assert path.resolve().is_relative_to(out.resolve())
    assert not (tmp_path / "escape.ipynb").exists() and not list(tmp_path.parent.glob("escape*"))
    reasons = {item.name.split(":")[-1]: item.reason for item in ignored}
    assert "unsafe path" in reasons["../escape.ipynb"] and "unsafe path" in reasons["/etc/absolute.ipynb"]
    assert "symbolic link" in reasons["Jean Dupont_12345_assignsubmission_file_/link.ipynb"]
    assert any("macOS" in r for r in reasons.values())
    assert any("Paul Durand" in item.name and "without a notebook" in item.reason for item in ignored)
    # the Moodle folder's other files are reported by ingest, the checkpoint never graded
    jean = ingest_path(ids["Jean Dupont"], "Jean Dupont")
    assert jean.status == "ok" and jean.main_file == "mini_projet.ipynb"
    assert {Path(i.name).name for i in jean.ignored_files} == {"rapport.pdf"}
    zoe = ingest_path(ids["Zoé Martin"], "Zoé Martin")  # a student's zip inside Moodle's zip
    assert zoe.status == "ok", zoe.reason
    # extracting again reuses the folder: same paths, same content hash (unchanged submissions are kept)
    again, _ = discover([archive], extract_to=out)
    assert sorted(again) == sorted(paths)


def test_a_student_zip_is_one_submission_named_after_the_zip(tmp_path):
    make_zip(
        tmp_path / "Élodie Brûlé.zip",
        {
            "mini-projet/mini_projet.ipynb": notebook_bytes([("code", FACTORY)]),
            "mini-projet/data/notes.txt": b"brouillon",
        },
    )
    paths, ignored = discover([tmp_path], extract_to=tmp_path / "x")
    assert list(assign_ids(paths)) == ["Élodie Brûlé"]
    result = ingest_path(paths[0], "Élodie Brûlé")
    assert result.status == "ok" and [i.name for i in result.ignored_files] == ["data/notes.txt"]


def test_a_folder_holding_one_zip_is_that_student_s_and_a_folder_of_zips_is_a_class(tmp_path):
    notebook = notebook_bytes([("code", FACTORY)])
    make_zip(tmp_path / "promo" / "Jean Dupont" / "rendu.zip", {"mini_projet.ipynb": notebook})
    make_zip(tmp_path / "promo" / "archives" / "alice.zip", {"a.ipynb": notebook})
    make_zip(tmp_path / "promo" / "archives" / "bob.zip", {"b.ipynb": notebook})
    paths, _ = discover([tmp_path / "promo"], extract_to=tmp_path / "x")
    assert set(assign_ids(paths)) == {"Jean Dupont", "alice", "bob"}


def test_a_loose_notebook_beside_another_student_s_zip_is_a_class_and_a_data_zip_is_not(tmp_path):
    """One notebook and a zip holding a notebook (with its Jupyter checkpoint and macOS fork) are two students;
    a student's notebook beside a zip of data or models stays that student's folder."""
    notebook = notebook_bytes([("code", FACTORY)])
    class_folder = tmp_path / "classe"
    class_folder.mkdir()
    (class_folder / "becker_tom.ipynb").write_bytes(notebook)
    make_zip(
        class_folder / "leclerc_anais.zip",
        {
            "projet/mnist.ipynb": notebook,
            "projet/.ipynb_checkpoints/mnist-checkpoint.ipynb": notebook,
            "__MACOSX/projet/._mnist.ipynb": b"\x00\x05\x16\x07",
        },
    )
    paths, _ = discover([class_folder], extract_to=tmp_path / "x")
    assert sorted(assign_ids(paths)) == ["becker_tom", "leclerc_anais"]
    student = tmp_path / "Jean Dupont"
    student.mkdir()
    (student / "mini_projet.ipynb").write_bytes(notebook)
    make_zip(student / "modeles.zip", {"best.keras": b"weights", "__MACOSX/._best.py": b"fork"})
    assert list(assign_ids(discover([student], extract_to=tmp_path / "y")[0])) == ["Jean Dupont"]


def test_an_export_or_another_archive_handed_in_instead_of_a_notebook_is_graded_invalid_with_why(tmp_path):
    """The student is in the gradebook, with what to hand in; a roster or the instructions are not a student."""
    export = '<html><body class="jp-Notebook"><pre>model = Sequential()</pre></body></html>'
    (tmp_path / "moulin_lucas.html").write_text(export, encoding="utf-8")
    (tmp_path / "roy_emma.rar").write_bytes(b"Rar!\x1a\x07\x00")
    (tmp_path / "roster.csv").write_text("student\n", encoding="utf-8")
    (tmp_path / "consignes.html").write_text("<html><h1>Mini-projet</h1></html>", encoding="utf-8")
    paths, ignored = discover([tmp_path], extract_to=tmp_path / "x")
    assert sorted(assign_ids(paths)) == ["moulin_lucas", "roy_emma"]
    assert sorted(i.name for i in ignored) == [str(tmp_path / "consignes.html"), str(tmp_path / "roster.csv")]
    html, rar = (ingest_path(p) for p in sorted(paths))
    assert html.status == "invalid" and "HTML export" in html.reason and "hand in the notebook" in html.reason
    assert rar.status == "invalid" and ".zip archives only" in rar.reason


def test_archives_over_the_size_limit_stop_and_say_why(tmp_path, monkeypatch):
    monkeypatch.setattr(paths_module, "ARCHIVE_MAX_TOTAL_BYTES", 10_000)
    archive = make_zip(
        tmp_path / "bomb.zip", {"a/one.ipynb": notebook_bytes([("code", FACTORY)]), "a/zeros.bin": b"\0" * 200_000}
    )
    _, ignored = discover([archive], extract_to=tmp_path / "x")
    assert any("size limit" in item.reason for item in ignored)
    monkeypatch.setattr(paths_module, "ARCHIVE_MAX_MEMBERS", 1)
    _, ignored = discover([archive], extract_to=tmp_path / "y")
    assert any("entries" in item.reason for item in ignored)
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    _, ignored = discover([tmp_path / "bad.zip"], extract_to=tmp_path / "z")
    assert "not a readable zip" in ignored[0].reason


def test_a_corrupt_member_is_reported_and_the_rest_of_the_archive_extracted(tmp_path):
    # bob.py's deflate stream is damaged: zlib.error used to escape and stop the whole batch
    archive = Path(__file__).resolve().parent.parent / "fixtures" / "archives" / "corrupt_member.zip"
    paths, ignored = discover([archive], extract_to=tmp_path / "x")
    assert sorted(assign_ids(paths)) == ["alice"]
    reasons = {item.name.split(":")[-1]: item.reason for item in ignored}
    assert "could not be extracted" in reasons["bob/bob.py"] and "decompressing" in reasons["bob/bob.py"]


# --------------------------------------------------------------------------- notebook formats


def test_nbformat_3_notebooks_are_read(tmp_path):
    path = tmp_path / "ancien.ipynb"
    path.write_bytes(notebook_bytes([("md", "# Introduction"), ("md", "Un texte."), ("code", FACTORY)], version=3))
    assert json.loads(path.read_text())["nbformat"] == 3
    result = ingest_path(path)
    assert result.status == "ok", result.reason
    assert result.notebook_format == "3.0"
    assert [f.name for f in result.factories] == ["create_baseline_model"]
    assert result.factories[0].cell == 3  # heading cells count as cells, from 1
    assert result.markdown[0].text.startswith("#") and "Introduction" in result.markdown[0].text


def test_colab_export_with_outputs_and_without(tmp_path):
    zoe = ingest_path(SAMPLES / "Zoé Martin")  # Colab export: metadata, outputs, !pip, drive.mount
    assert zoe.status == "ok" and zoe.notebook_format.startswith("4")
    notebook = nbformat.read(SAMPLES / "Zoé Martin" / "mini_projet.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    stripped = tmp_path / "Zoé Martin" / "mini_projet.ipynb"
    stripped.parent.mkdir()
    nbformat.write(notebook, stripped)
    bare = ingest_path(stripped.parent)
    assert bare.module_source == zoe.module_source and [f.name for f in bare.factories] == [
        f.name for f in zoe.factories
    ]


# --------------------------------------------------------------------------- factories under other names

OTHER_NAMES = '''
import keras
from keras import layers


def build_cnn():
    """My CNN."""
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(10, activation="softmax")])
    return model


def deeper_cnn(width=32):
    inputs = keras.Input((28, 28, 1))
    outputs = layers.Dense(10, activation="softmax")(layers.Flatten()(inputs))
    return keras.Model(inputs, outputs)


def needs_args(width):
    return build_cnn()


TRAINING_CONFIG = {"build_cnn": {"epochs": 2}}
'''


def test_functions_named_otherwise_are_graded_and_the_rest_reported(tmp_path):
    """No create_* names: the model-returning functions are graded under inferred names; one that takes
    arguments the submission never passes literally stays a candidate, with how to grade it."""
    path = tmp_path / "autres_noms.py"
    path.write_text(OTHER_NAMES, encoding="utf-8")
    result = ingest_path(path)
    assert result.status == "ok" and result.factory_source == "inferred"
    assert result.factory_map == {"create_improved_model_1": "build_cnn", "create_improved_model_2": "deeper_cnn"}
    candidates = {c.name: c.reason for c in result.candidates}
    assert set(candidates) == set()  # an improved model was found: no candidate list
    assert "'create_improved_model_1': 'build_cnn'" in result.module_source  # TRAINING_CONFIG follows the name


def test_candidates_are_reported_when_nothing_can_be_graded(tmp_path):
    path = tmp_path / "seulement_des_arguments.py"
    path.write_text(
        OTHER_NAMES.replace("def build_cnn():", "def build_cnn(width):").replace(
            "def deeper_cnn(width=32):", "def deeper_cnn(width):"
        ),
        encoding="utf-8",
    )
    result = ingest_path(path)
    assert result.status == "invalid"
    candidates = {c.name: c.reason for c in result.candidates}
    assert set(candidates) == {"build_cnn", "deeper_cnn", "needs_args"}
    assert all("takes arguments" in reason for reason in candidates.values())
    assert "build_cnn()" in result.reason and "--factory-map" in result.reason


def test_factory_map_grades_functions_named_otherwise(tmp_path):
    path = tmp_path / "autres_noms.py"
    path.write_text(OTHER_NAMES, encoding="utf-8")
    result = ingest_path(
        path,
        factory_map={
            "create_baseline_model": "build_cnn",
            "create_improved_model_1": "deeper_cnn",
            "create_improved_model_2": "needs_args",
            "create_improved_model_3": "missing_function",
        },
    )
    assert result.status == "ok" and result.factory_source == "mapped"
    assert [(f.name, f.line, f.has_docstring) for f in result.factories] == [
        ("create_baseline_model", 6, True),
        ("create_improved_model_1", 12, False),
    ]  # the functions' own lines
    refused = {i.name: i.reason for i in result.ignored_functions}
    assert "takes arguments" in refused["create_improved_model_2=needs_args"]
    assert "not defined" in refused["create_improved_model_3=missing_function"]
    namespace: dict = {}
    source = result.module_source.replace("from keras import layers", "layers = None").replace(
        "import keras", "keras = None"
    )
    exec(compile(source, "m", "exec"), namespace)  # no Keras import: only the module's top level runs
    # the student's TRAINING_CONFIG entry follows the mapping
    assert namespace["TRAINING_CONFIG"]["create_baseline_model"] == {"epochs": 2}


def test_factory_map_option_forms(tmp_path):
    table = tmp_path / "noms.toml"
    table.write_text(
        '[all]\ncreate_improved_model_1 = "build_cnn"\n\n["Jean Dupont"]\ncreate_baseline_model = "modele_base"\n',
        encoding="utf-8",
    )
    assert parse_factory_map(["create_improved_model_2=deeper", str(table)]) == {
        "*": {"create_improved_model_2": "deeper", "create_improved_model_1": "build_cnn"},
        "Jean Dupont": {"create_baseline_model": "modele_base"},
    }
    with pytest.raises(ValueError):
        parse_factory_map([str(tmp_path / "nope.toml")])
    assert main(["grade", str(tmp_path), "--factory-map", "nonsense", "--out", str(tmp_path / "o")]) == 2
