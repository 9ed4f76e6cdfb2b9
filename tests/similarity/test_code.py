"""Code fingerprints: renaming, comments, split cells and reordering hide no copy; the handout is nobody's."""

from __future__ import annotations

import ast
import keyword
import string

import nbformat
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.results import CodeCell
from harness.similarity.code import bound_names, canonical_tokens, fingerprints

K, WINDOW = 12, 8


def _cells(student: str) -> list[CodeCell]:
    notebook = nbformat.read(FIXTURES / "class" / f"{student}.ipynb", as_version=4)
    return [CodeCell(cell=i, source=c.source) for i, c in enumerate(notebook.cells, 1) if c.cell_type == "code"]


def _hashes(cells: list[CodeCell]) -> set[int]:
    return {h for h, *_ in fingerprints(cells, K, WINDOW)}


def _containment(a: set[int], b: set[int]) -> float:
    return len(a & b) / max(1, min(len(a), len(b)))


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def visit_Name(self, node):
        node.id = self.names.get(node.id, node.id)
        return node

    def visit_arg(self, node):
        node.arg = self.names.get(node.arg, node.arg)
        return node

    def visit_alias(self, node):
        node.asname = self.names.get(node.asname, node.asname) if node.asname else None
        return node

    def visit_FunctionDef(self, node):
        node.name = self.names.get(node.name, node.name)
        return self.generic_visit(node)


def _renamed(source: str, names: dict[str, str]) -> str:
    return ast.unparse(_Rename(names).visit(ast.parse(source)))


identifiers = st.text(string.ascii_letters + "_", min_size=3, max_size=12).filter(
    lambda s: not keyword.iskeyword(s) and s[0] != "_"
)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), student=st.sampled_from(["s1_alice", "s2_bruno", "s3_chloe", "s6_farid", "s8_hugo"]))
def test_renaming_never_hides_a_copy(data, student):
    own = [c for c in _cells(student)][3:]  # the student's own cells (the first three are the handout's)
    names = sorted(bound_names([c.source for c in own]) - {"create_improved_model_1", "TRAINING_CONFIG"})
    fresh = data.draw(st.lists(identifiers, min_size=len(names), max_size=len(names), unique=True))
    taken = {n for c in own for n in ast.unparse(ast.parse(c.source)).split()}
    mapping = {old: f"x_{new}" for old, new in zip(names, fresh) if f"x_{new}" not in taken}
    original = [c.model_copy(update={"source": ast.unparse(ast.parse(c.source))}) for c in own]
    renamed = [c.model_copy(update={"source": _renamed(c.source, mapping)}) for c in own]
    assert [t.text for t in canonical_tokens(original)] == [t.text for t in canonical_tokens(renamed)]
    assert _hashes(original) == _hashes(renamed) and _hashes(original)


def test_comments_docstrings_and_layout_change_nothing():
    plain = CodeCell(cell=1, source="def f(a, b):\n    return a * b + 2\n\n\nvalue = f(3, 4)\n")
    dressed = CodeCell(
        cell=1,
        source='def f(a, b):  # product\n    """Multiply."""\n\n    return a*b + 7   # plus\n\n# call it\nvalue = f(\n    3, 4)\n',
    )
    assert [t.text for t in canonical_tokens([plain])] == [t.text for t in canonical_tokens([dressed])]


def test_splitting_or_merging_cells_changes_nothing():
    cells = _cells("s2_bruno")
    merged = [CodeCell(cell=1, source="\n".join(c.source for c in cells))]
    assert _hashes(cells) == _hashes(merged)


def test_reordering_functions_keeps_most_fingerprints():
    cells = _cells("s2_bruno")[3:]
    functions = "\n".join(c.source for c in cells).split("\n\n\n")
    reordered = [CodeCell(cell=i, source=f) for i, f in enumerate(reversed(functions), 1)]
    assert _containment(_hashes(cells), _hashes(reordered)) >= 0.8


def test_the_handout_is_nobodys_code():
    handout_only = _cells("h1_ines")[:3]  # the handout's three cells, as a student copies them
    assert _hashes(handout_only) == set()
    shared = _hashes(_cells("h1_ines")) & _hashes(_cells("h2_jules"))  # the handout and two lines each
    assert len(shared) < 8  # under [code] min_shared


def test_two_independent_students_share_little():
    assert _containment(_hashes(_cells("s1_alice")), _hashes(_cells("s8_hugo"))) < 0.3


def test_fingerprints_say_where_they_are():
    cells = _cells("s6_farid")
    for _, cell, first, last in fingerprints(cells, K, WINDOW):
        assert cell in {c.cell for c in cells} and 1 <= first <= last
    assert {cell for _, cell, *_ in fingerprints(cells, K, WINDOW)} >= {c.cell for c in cells[3:]}
