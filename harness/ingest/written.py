"""Python modules a notebook writes itself (``%%writefile modeles.py``) and then imports.

Colab students often keep their builders in a cell that writes a file and import it in the next one::

    %%writefile modeles.py
    def modele_bn(): ...

    from modeles import *
    entrainer(modele_bn(), "BN")

The file does not exist where the harness reads the notebook, so without this the import fails and nothing
is graded. Read as a person reads it, the cell defines its functions in place: its ``%%writefile`` line is
kept as a comment (the cell is Python), and the imports of the written module in the other cells are
removed (the names are now the notebook's own; a star import after them would rebind the builders to
copies the harness has not instrumented). The file is still handed to the worker as the student's own
module (:func:`written_modules`), for code that keeps it as a namespace (``import modeles``,
``modeles.modele_bn()``). A written file that is not Python (``requirements.txt``) is left to the magic
rules of harness/ingest/read.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import PurePosixPath

from harness.results import CodeCell, Message, Rewrite
from harness.util.i18n import Translator
from harness.util.pysource import parse as parse_python

# ``%%writefile [-a] name.py`` (``%%file`` is its older name); a path keeps only its file name
WRITEFILE = re.compile(r"^\s*%%(?:writefile|file)(\s+-a)?\s+['\"]?([^\s'\"]+\.py)['\"]?\s*$")


def written_modules(cells: list[CodeCell]) -> dict[str, str]:
    """{file name: its source} of the Python files the notebook's cells write, in cell order (``-a``
    appends, as IPython does)."""
    files: dict[str, str] = {}
    for cell in cells:
        first, _, body = cell.source.partition("\n")
        match = WRITEFILE.match(first)
        if match:
            name = PurePosixPath(match.group(2)).name
            files[name] = (files.get(name, "") if match.group(1) else "") + body
    return files


def inlined(cells: list[CodeCell]) -> tuple[list[CodeCell], list[Rewrite], dict[str, str]]:
    """The cells with each written Python module read in place and its imports elsewhere removed (line
    numbers kept), what was changed where, and the files written (:func:`written_modules`); `cells` itself
    when no cell writes a Python file."""
    files = written_modules(cells)
    stems = {PurePosixPath(name).stem for name in files}
    if not stems:
        return cells, [], {}
    english = Translator("en")
    out, rewrites = [], []
    for cell in cells:
        first, newline, body = cell.source.partition("\n")
        match = WRITEFILE.match(first)
        if match:
            after = "# " + first.strip()
            rewrites.append(_rewrite(cell.cell, 1, first.strip(), after, "rewrite_writefile", english, match.group(2)))
            out.append(cell.model_copy(update={"source": after + newline + body}))
            continue
        source, edits = _without_imports_of(cell.source, stems)
        rewrites += [
            _rewrite(cell.cell, line, before, after, "rewrite_written_import", english, name)
            for line, before, after, name in edits
        ]
        out.append(cell.model_copy(update={"source": source}) if edits else cell)
    return out, rewrites, files


def _without_imports_of(source: str, stems: set[str]) -> tuple[str, list[tuple[int, str, str, str]]]:
    """`source` with its ``from <stem> import …`` statements replaced by ``pass`` or the aliases they bind
    (the same indent, the same number of lines), and (line, the statement, what replaced it, the module) of
    each; a cell that does not parse as it stands (a magic line) is read with those lines blanked."""
    lines = source.splitlines(keepends=True)
    try:
        tree = parse_python("".join(re.sub(r"^(\s*)[!%].*", r"\1pass", line) for line in lines))
    except SyntaxError:
        return source, []
    found = [
        node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in stems
    ]
    edits = []
    for node in sorted(found, key=lambda n: n.lineno, reverse=True):
        start, end = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        indent = re.match(r"\s*", lines[start]).group(0)
        rest = lines[end].encode()[node.end_col_offset :].decode(errors="replace").strip()  # offsets count bytes
        if node.col_offset != len(indent) or (rest and not rest.startswith("#")):
            continue  # shares its line with another statement (``from m import f; import os``): left alone
        before = "".join(lines[start : end + 1]).strip()
        # ``from modeles import modele_bn as bn``: the name it bound still names the function
        after = "; ".join(f"{a.asname} = {a.name}" for a in node.names if a.asname and a.asname != a.name) or "pass"
        lines[start : end + 1] = [f"{indent}{after}\n"] + ["\n"] * (end - start)
        edits.append((node.lineno, before, after, f"{node.module}.py"))
    return "".join(lines), sorted(edits)


def _rewrite(cell: int | None, line: int, before: str, after: str, key: str, english: Translator, name: str) -> Rewrite:
    message = Message(key=key, values={"file": name})
    return Rewrite(
        cell=cell, line=line, before=before, after=after, reason=str(english.render(message)), message=message
    )
