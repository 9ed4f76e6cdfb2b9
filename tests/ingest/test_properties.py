"""Property tests (Hypothesis): whatever a student hands in, ingest answers with a result, and an
archive never writes outside its extraction folder nor stops the batch.

The budget is fixed (tests/conftest.py's Hypothesis profile) and the examples that once failed are
replayed from tests/fixtures/hypothesis.
"""

from __future__ import annotations

import io
import itertools
import json
import stat
import zipfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from harness.ingest import discover, ingest_path

FACTORY = "def create_baseline_model():\n    return 1\n"
_counter = itertools.count()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    # one folder per test module: Hypothesis calls the test many times with one fixture value
    return tmp_path_factory.mktemp("properties")


def fresh(scratch: Path, name: str) -> Path:
    folder = scratch / str(next(_counter))
    folder.mkdir()
    return folder / name


def assert_answered(path: Path) -> None:
    """ingest_path returns a result (never raises); an invalid one says why."""
    result = ingest_path(path)
    assert result.status in ("ok", "invalid")
    assert result.status == "ok" or result.reason


# --------------------------------------------------------------------------- any bytes, any JSON

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".py", ".ipynb"]))
@example(data=b"\xef\xbb\xbf" + FACTORY.encode(), suffix=".py")
@example(data=b"(" * 5000 + b")" * 5000, suffix=".py")  # deeper than the parser allows
@example(data=b"[" * 100_000 + b"]" * 100_000, suffix=".ipynb")  # deeper than the JSON decoder recurses
@example(data=b"# coding: utf-16\n" + FACTORY.encode(), suffix=".py")
def test_any_bytes_are_answered(scratch, data, suffix):
    path = fresh(scratch, "student" + suffix)
    path.write_bytes(data)
    assert_answered(path)


@given(value=json_values)
def test_any_json_as_a_notebook_is_answered(scratch, value):
    path = fresh(scratch, "student.ipynb")
    path.write_text(json.dumps(value), encoding="utf-8")
    assert_answered(path)


# --------------------------------------------------------------------------- notebooks with odd cells

sources = st.one_of(st.text(max_size=200), st.lists(st.text(max_size=40), max_size=5), st.just(FACTORY))
outputs = st.lists(
    st.fixed_dictionaries(
        {"output_type": st.sampled_from(["stream", "execute_result", "display_data", "error", "weird"])},
        optional={
            "text": sources,
            "name": st.sampled_from(["stdout", "stderr"]),
            "data": st.dictionaries(st.sampled_from(["text/plain", "image/png"]), sources, max_size=2),
            "ename": st.text(max_size=10),
            "evalue": st.text(max_size=10),
            "metadata": st.just({}),
            "execution_count": st.none() | st.integers(0, 10),
        },
    ),
    max_size=3,
)
cells = st.fixed_dictionaries(
    {"cell_type": st.sampled_from(["code", "markdown", "raw", "heading", "unknown"]), "source": sources},
    optional={"metadata": st.just({}), "outputs": outputs, "execution_count": st.none() | st.integers(0, 99)},
)


@given(
    cells=st.lists(cells, max_size=8),
    nbformat=st.sampled_from([4, 3, 5, 99]),
    minor=st.integers(0, 6),
    huge_output=st.booleans(),
)
def test_notebooks_with_odd_cells_are_answered(scratch, cells, nbformat, minor, huge_output):
    if huge_output and cells:  # a training log of megabytes saved in the notebook
        cells[0] = {**cells[0], "outputs": [{"output_type": "stream", "name": "stdout", "text": "x" * 2_000_000}]}
    notebook = {"cells": cells, "metadata": {}, "nbformat": nbformat, "nbformat_minor": minor}
    path = fresh(scratch, "student.ipynb")
    path.write_text(json.dumps(notebook), encoding="utf-8")
    assert_answered(path)


# --------------------------------------------------------------------------- archives

member_names = st.one_of(
    st.sampled_from(
        [
            "a.py",
            "dossier/a.ipynb",
            "../evil.py",
            "../../evil.py",
            "/etc/evil.py",
            "C:/evil.py",
            "..\\evil.py",
            "x/../../evil.py",
            "./b.py",
            "inner.zip",
            "dossier/",
            "__MACOSX/._a.py",
        ]
    ),
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\0"), min_size=1, max_size=30),
)


def _zip(members: list[tuple[str, str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, kind, data in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if kind == "symlink":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            elif kind == "zip":
                data = _zip([("../nested-evil.py", "file", FACTORY.encode()), ("n.py", "file", FACTORY.encode())])
            archive.writestr(info, data)
    return buffer.getvalue()


def _corrupt(data: bytes, at: int) -> bytes:
    if not data:
        return data
    at %= len(data)
    return data[:at] + bytes(b ^ 0xFF for b in data[at : at + 16]) + data[at + 16 :]


@given(
    members=st.lists(
        st.tuples(member_names, st.sampled_from(["file", "symlink", "zip"]), st.binary(max_size=300)),
        min_size=1,
        max_size=6,
    ),
    corrupt_at=st.none() | st.integers(0, 10_000),
)
def test_archives_never_write_outside_their_folder_nor_raise(scratch, members, corrupt_at):
    root = fresh(scratch, "case")
    root.mkdir()
    data = _zip(members)
    if corrupt_at is not None:
        data = _corrupt(data, corrupt_at)
    (root / "class").mkdir()
    (root / "class" / "rendu.zip").write_bytes(data)
    extract_to = root / "extracted"
    paths, ignored = discover([root / "class"], extract_to=extract_to)
    written = {p for p in root.rglob("*")}
    allowed = {root / "class", root / "class" / "rendu.zip"}
    outside = [p for p in written - allowed if not p.is_relative_to(extract_to) and p != extract_to]
    assert outside == []
    assert not any(p.is_symlink() for p in written)
    for path in paths:
        assert path.resolve().is_relative_to(extract_to.resolve()) or path.is_relative_to(root / "class")
