"""Code fingerprints: the student's code normalised, then winnowed k-grams of tokens (the algorithm behind
MOSS: Schleimer, Wilkerson and Aiken, *Winnowing*, SIGMOD 2003).

Normalised so that the usual disguises change nothing:

- comments, docstrings, layout dropped; the student's names become ``V``, numbers ``N``, strings ``S``
  (:mod:`harness.ingest.tokens`), so renaming or changing a dropout rate hides nothing;
- cells are flattened into one token stream, so splitting or merging cells hides nothing; reordering
  functions changes only the few k-grams across their boundaries.

The handout's own code (``reference/handout.py`` and the reference CNN) is fingerprinted the same way
and removed: code every student received is nobody's work.

>>> [t.text for t in canonical_tokens([CodeCell(cell=1, source="lr = 0.01  # rate\\nopt = Adam(lr)")])]
['V', '=', 'N', ';', 'V', '=', 'Adam', '(', 'V', ')', ';']
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from harness.ingest.tokens import Token, bound_names, canonical_tokens
from harness.resources import bundled
from harness.results import CodeCell

__all__ = ["Token", "bound_names", "canonical_tokens", "fingerprints", "handout_hashes", "kgram_hashes", "winnow"]

_MASK = (1 << 63) - 1  # fingerprints fit a signed 64-bit integer (JSON readers, numpy int64)


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
