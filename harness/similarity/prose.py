"""Report fingerprints: word shingles of the student's prose, and concept shingles for reports in two languages.

The prose is what the rubric reads (``prose_lines``: a notebook's markdown, a module's docstrings and
comments). Normalised before shingling: lower case, accents removed, every number written ``#``, markdown
and punctuation dropped, so that re-casing or changing a figure hides nothing. Shingles found in the
assignment's own text (``reference/assignment.md``) are removed: questions and headings every student
received are nobody's work.

A report translated from French to English (or back) shares no word shingle with its original, so a
second signal maps each word to a **concept** through a small bilingual lexicon
(``[lexicon]`` of ``reference/similarity.toml``), keeps numbers by value and technical terms
(``Conv2D``, ``BatchNormalization``) as they are, drops every other word, and shingles what remains,
each shingle taken as a set (a translation may swap neighbouring words: "couche dense", "dense layer").

>>> words("Exactitude : 98,7 % après 5 époques")
['exactitude', '#', '#', 'apres', '#', 'epoques']
"""

from __future__ import annotations

import functools
import hashlib
import re

from harness.resources import bundled
from harness.results import IngestResult
from harness.scoring.readers.text import Line, plain, prose_lines

_WORD = re.compile(r"\d+(?:[.,]\d+)?|[^\W\d_]+(?:['’-][^\W\d_]+)*")
_TECHNICAL = re.compile(r"^(?=.*[A-Z])(?=.*[a-z])[A-Za-z]*[a-z][A-Z][A-Za-z0-9]*$|^[A-Za-z]+\d[A-Za-z0-9]*$")
_FRENCH = {
    "le",
    "la",
    "les",
    "des",
    "du",
    "une",
    "est",
    "et",
    "avec",
    "pour",
    "dans",
    "sur",
    "nous",
    "que",
    "qui",
    "pas",
}
_ENGLISH = {"the", "of", "and", "is", "with", "for", "in", "on", "we", "that", "which", "not", "are", "this", "to"}


def words(text: str) -> list[str]:
    """The words of a text, lower case without accents, each number as ``#``."""
    return ["#" if token[0].isdigit() else token for token in _WORD.findall(plain(text))]


def _hash(parts: list[str] | tuple[str, ...]) -> int:
    return int.from_bytes(hashlib.blake2b(" ".join(parts).encode("utf-8"), digest_size=8).digest(), "little") >> 1


def _shingles(located: list[tuple[str, int | None, int]], k: int) -> list[tuple[int, int | None, int, int]]:
    """Every run of k tokens as [hash, cell, first line, last line] (a text shorter than k: one shingle)."""
    if not located:
        return []
    runs = [located[i : i + k] for i in range(max(1, len(located) - k + 1))]
    return [
        (_hash([t for t, _, _ in run]), run[0][1], run[0][2], run[-1][2] if run[-1][1] == run[0][1] else run[0][2])
        for run in runs
    ]


def _located_words(lines: list[Line]) -> list[tuple[str, int | None, int]]:
    return [(word, line.cell, line.line) for line in lines for word in words(line.text)]


@functools.cache
def assignment_shingles(k: int) -> frozenset[int]:
    """The word shingles of the assignment's own text: what every student received."""
    text = bundled("reference", "assignment.md").read_text(encoding="utf-8")
    return frozenset(h for h, *_ in _shingles([(w, None, 0) for w in words(text)], k))


def report_shingles(ingest: IngestResult, k: int) -> list[tuple[int, int | None, int, int]]:
    """The report's word shingles with where they are, the assignment's own removed, each hash once."""
    handed_out = assignment_shingles(k)
    seen: set[int] = set()
    found = []
    for item in _shingles(_located_words(prose_lines(ingest)), k):
        if item[0] not in handed_out and item[0] not in seen:
            seen.add(item[0])
            found.append(item)
    return found


def _number(token: str) -> str:
    value = float(token.replace(",", "."))
    return f"n:{value:g}"


def concept_tokens(lines: list[Line], lexicon: dict[str, str]) -> list[tuple[str, int | None, int]]:
    """The concepts of the prose, in order: numbers by value, technical terms, lexicon words; the rest dropped."""
    found = []
    for line in lines:
        for raw in _WORD.findall(line.text):
            word = plain(raw)
            if raw[0].isdecimal():  # "²", "¹⁰" are digits to isdigit(), not numbers to float()
                found.append((_number(raw), line.cell, line.line))
            elif _TECHNICAL.match(raw):
                found.append((f"t:{word}", line.cell, line.line))
            elif (concept := lexicon.get(word) or lexicon.get(word.rstrip("sx"))) is not None:
                found.append((f"c:{concept}", line.cell, line.line))
    return found


def concept_shingles(ingest: IngestResult, k: int, lexicon: dict[str, str]) -> list[tuple[int, int | None, int, int]]:
    """Shingles of k concepts, each taken as a sorted set, with at least one number or technical term in it
    (the lexicon alone is a small vocabulary: every report about MNIST uses it)."""
    tokens = concept_tokens(prose_lines(ingest), lexicon)
    found, seen = [], set()
    for i in range(max(0, len(tokens) - k + 1)):
        run = tokens[i : i + k]
        parts = sorted(t for t, _, _ in run)
        if not any(p.startswith(("n:", "t:")) for p in parts):
            continue
        value = _hash(parts)
        if value not in seen:
            seen.add(value)
            found.append((value, run[0][1], run[0][2], run[-1][2] if run[-1][1] == run[0][1] else run[0][2]))
    return found


def language(ingest: IngestResult) -> str:
    """fr, en or unknown: which of the two languages' commonest words the prose uses more."""
    counts = {"fr": 0, "en": 0}
    for line in prose_lines(ingest):
        for word in words(line.text):
            counts["fr"] += word in _FRENCH
            counts["en"] += word in _ENGLISH
    if max(counts.values()) < 5:
        return "unknown"
    return max(counts, key=counts.get)
