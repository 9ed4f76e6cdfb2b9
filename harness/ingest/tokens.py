"""The student's code as a stream of normalised tokens: what stays when names, literals, comments
and layout are set aside. Read by the similarity stage (fingerprints across a class) and by the
rubric's structure reader (near-copied blocks inside one submission).

- comments, docstrings, blank lines and indentation are dropped (``tokenize``);
- every name the student binds (variables, functions, parameters, ``import … as`` aliases) becomes ``V``,
  and every keyword argument's name ``K``, so renaming hides nothing; Keras's and Python's own names,
  attributes and keywords stay, so two different architectures stay different;
- every number becomes ``N`` and every string ``S``;
- each token keeps its cell and line.

>>> [t.text for t in canonical_tokens([CodeCell(cell=1, source="lr = 0.01  # rate\\nopt = Adam(lr)")])]
['V', '=', 'N', ';', 'V', '=', 'Adam', '(', 'V', ')', ';']
"""

from __future__ import annotations

import ast
import io
import keyword
import tokenize
from dataclasses import dataclass

from harness.ingest.read import blank_shell_and_magic_lines
from harness.results import CodeCell
from harness.util.pysource import parse as parse_python

_DROPPED = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}
_FSTRING = {
    getattr(tokenize, name) for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, name)
}


@dataclass(frozen=True)
class Token:
    """A normalised token and where it was written (cell, line)."""

    text: str
    cell: int | None
    line: int


def _bound_in(tree: ast.AST) -> set[str]:
    """The names a piece of code binds itself: what a student may rename without changing the program."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias) and node.asname:
            names.add(node.asname)  # `from keras.layers import Dense` keeps Dense: Keras's name, not the student's
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
    return names


def bound_names(sources: list[str]) -> set[str]:
    """Every name bound by any of the sources (a cell that does not parse binds nothing we can see)."""
    names: set[str] = set()
    for source in sources:
        try:
            names |= _bound_in(parse_python(source))
        except (SyntaxError, ValueError):
            continue
    return names


def _raw_tokens(source: str) -> list[tokenize.TokenInfo]:
    """The tokens of one cell; a cell that does not tokenize to its end gives what it gave before failing."""
    found: list[tokenize.TokenInfo] = []
    try:
        found.extend(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return found


def _without_docstrings(tokens: list[tokenize.TokenInfo]) -> list[tokenize.TokenInfo]:
    """Tokens minus comments and layout; a statement made of one string (a docstring) is dropped whole."""
    kept = [t for t in tokens if t.type not in _DROPPED]
    out: list[tokenize.TokenInfo] = []
    for i, token in enumerate(kept):
        starts_statement = not out or out[-1].type == tokenize.NEWLINE or out[-1].string == ":"
        ends_line = i + 1 == len(kept) or kept[i + 1].type == tokenize.NEWLINE
        if token.type == tokenize.STRING and starts_statement and ends_line:
            continue
        if token.type == tokenize.NEWLINE and (not out or out[-1].type == tokenize.NEWLINE):
            continue  # the end of a dropped docstring's line, or of nothing
        out.append(token)
    return out


def _canonical(token: tokenize.TokenInfo, previous: str | None, bound: set[str], keyword_argument: bool) -> str:
    """The normalised text of a token."""
    if token.type == tokenize.NAME:
        if keyword_argument:  # `epochs=` in a call or a signature: a parameter of Keras's or of the student's
            return "K"
        if keyword.iskeyword(token.string) or previous == "." or token.string not in bound:
            return token.string
        return "V"
    if token.type == tokenize.NUMBER:
        return "N"
    if token.type == tokenize.STRING:
        return "S"
    if token.type == tokenize.NEWLINE:
        return ";"
    return token.string


def _cell_tokens(cell: CodeCell, source: str, bound: set[str]) -> list[Token]:
    """One cell's normalised tokens (an f-string is one string, as before Python 3.12 split it)."""
    found: list[Token] = []
    tokens = _without_docstrings(_raw_tokens(source))
    previous, in_fstring, depth = None, False, 0
    for i, token in enumerate(tokens):
        if token.type in _FSTRING:
            if not in_fstring:
                found.append(Token("S", cell.cell, token.start[0]))
            in_fstring = token.type != getattr(tokenize, "FSTRING_END", None)
            previous = "S"
            continue
        if in_fstring:
            continue
        depth += {"(": 1, ")": -1}.get(token.string, 0) if token.type == tokenize.OP else 0
        following = tokens[i + 1].string if i + 1 < len(tokens) else ""
        text = _canonical(token, previous, bound, depth > 0 and following == "=")
        found.append(Token(text, cell.cell, token.start[0]))
        previous = token.string if token.type == tokenize.OP else text
    return found


def canonical_tokens(cells: list[CodeCell]) -> list[Token]:
    """The code cells as one stream of normalised tokens, each with its cell and line."""
    sources = [blank_shell_and_magic_lines(cell.source, cell.cell, []) for cell in cells]
    bound = bound_names(sources)
    return [token for cell, source in zip(cells, sources) for token in _cell_tokens(cell, source, bound)]
