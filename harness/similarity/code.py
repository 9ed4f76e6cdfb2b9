"""Code fingerprints: the student's code normalised, then winnowed k-grams of tokens (the algorithm behind
MOSS: Schleimer, Wilkerson and Aiken, *Winnowing*, SIGMOD 2003).

Normalised so that the usual disguises change nothing:

- comments, docstrings, blank lines and indentation are dropped (``tokenize``);
- every name the student binds (variables, functions, parameters, ``import … as`` aliases) becomes ``V``,
  and every keyword argument's name ``K``, so renaming hides nothing; Keras's and Python's own names,
  attributes and keywords stay, so two different architectures stay different;
- every number becomes ``N`` and every string ``S``, so changing a dropout rate or a message hides nothing;
- cells are flattened into one token stream, so splitting or merging cells hides nothing; reordering
  functions changes only the few k-grams across their boundaries.

The handout's own code (``reference/handout.py`` and the reference CNN) is fingerprinted the same way
and removed: code every student received is nobody's work.

>>> [t.text for t in canonical_tokens([CodeCell(cell=1, source="lr = 0.01  # rate\\nopt = Adam(lr)")])]
['V', '=', 'N', ';', 'V', '=', 'Adam', '(', 'V', ')', ';']
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import keyword
import tokenize
from dataclasses import dataclass

import numpy as np

from harness.ingest.read import blank_shell_and_magic_lines
from harness.resources import bundled
from harness.results import CodeCell
from harness.util.pysource import parse as parse_python

_DROPPED = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}
_FSTRING = {
    getattr(tokenize, name) for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, name)
}
_MASK = (1 << 63) - 1  # fingerprints fit a signed 64-bit integer (JSON readers, numpy int64)


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


@functools.cache
def _token_id(text: str) -> int:
    """A token's stable 64-bit id (the same in every run and on every machine: fingerprints are kept)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def kgram_hashes(tokens: list[Token], k: int) -> np.ndarray:
    """The hash of every run of k consecutive tokens (a polynomial hash of the tokens' stable ids)."""
    if len(tokens) < k:
        return np.zeros(0, dtype=np.uint64)
    ids = np.fromiter((_token_id(t.text) for t in tokens), dtype=np.uint64, count=len(tokens))
    count = len(tokens) - k + 1
    hashes = np.zeros(count, dtype=np.uint64)
    base = np.uint64(1_000_003)
    for j in range(k):
        hashes = hashes * base + ids[j : j + count]
    hashes ^= hashes >> np.uint64(29)  # mix the high bits down: winnowing picks minima
    hashes *= np.uint64(0xBF58476D1CE4E5B9)
    return hashes & np.uint64(_MASK)


def winnow(hashes: np.ndarray, window: int) -> np.ndarray:
    """Positions chosen by winnowing: in every window of hashes, the smallest (the rightmost of equals)."""
    if len(hashes) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(hashes) <= window:
        return np.array([len(hashes) - 1 - int(np.argmin(hashes[::-1]))])
    windows = np.lib.stride_tricks.sliding_window_view(hashes, window)
    chosen = window - 1 - np.argmin(windows[:, ::-1], axis=1) + np.arange(len(windows))
    return np.unique(chosen)


def _located(tokens: list[Token], start: int, k: int, value: int) -> tuple[int, int | None, int, int]:
    first = tokens[start]
    last = next((t for t in reversed(tokens[start : start + k]) if t.cell == first.cell), first)
    return (value, first.cell, first.line, last.line)


def fingerprints(cells: list[CodeCell], k: int, window: int) -> list[tuple[int, int | None, int, int]]:
    """The winnowed fingerprints of the code, each with its cell and lines, the handout's removed."""
    tokens = canonical_tokens(cells)
    hashes = kgram_hashes(tokens, k)
    handout = handout_hashes(k)
    chosen = [(int(hashes[i]), int(i)) for i in winnow(hashes, window)]
    return [_located(tokens, i, k, value) for value, i in chosen if value not in handout]


@functools.cache
def handout_hashes(k: int) -> frozenset[int]:
    """Every k-gram of the handout's code and the reference CNN, normalised like a student's."""
    found: set[int] = set()
    for name in ("handout.py", "baseline.py"):
        cell = CodeCell(cell=None, source=bundled("reference", name).read_text(encoding="utf-8"))
        found.update(int(h) for h in kgram_hashes(canonical_tokens([cell]), k))
    return frozenset(found)
