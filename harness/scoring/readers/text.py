"""Reading the student's prose for the rubric: sections, passages near a factory, claims, printed numbers.

The prose is the notebook's markdown cells, or a ``.py`` module's docstrings and comments. Every
line keeps where it came from (cell and line), so each finding can say where it is. Matching is
done on *plain* text: lower case, accents removed (``Résultats`` → ``resultats``), so the
rubric's patterns are written without accents.

>>> plain("Améliorations proposées")
'ameliorations proposees'
>>> heading_level("## 3. Résultats", "")
(2, '3. Résultats')
"""

from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
import unicodedata
from dataclasses import dataclass, field

from harness.ingest.read import config_label
from harness.results import Factory, IngestResult
from harness.scoring.readers.code import is_code, looks_like_code_or_output, pasted_output
from harness.util.pysource import parse as parse_python

UNKNOWN_LEVEL = 7  # bold, numbered or underlined-less headings: below every '#' level


def plain(text: str) -> str:
    """Lower case without accents: what every pattern of the rubric is matched against."""
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in text if not unicodedata.combining(ch))


FENCE = re.compile(r"```.*?```", re.DOTALL)
URL = re.compile(r"https?://\S+")


def count_words(text: str) -> int:
    """Words of prose: runs of two or more letters, code blocks and URLs left out."""
    return len(re.findall(r"[^\W\d_]{2,}", URL.sub(" ", FENCE.sub(" ", text))))


# --------------------------------------------------------------------------- prose with locations


@dataclass(frozen=True)
class Line:
    """One line of the student's prose (markdown, or a module's docstrings and comments), with its place."""

    text: str
    cell: int | None  # notebook cell (from 1); None in a module
    line: int  # line in the cell, or in the module


def prose_lines(ingest: IngestResult) -> list[Line]:
    """The student's prose, line by line, in document order.

    A notebook's prose is its markdown and the text written in its code cells (:func:`code_cell_prose`);
    a module's is its docstrings (module, classes, functions), its comments and the sentences it prints,
    each at its own line of the file.
    """
    if not ingest.code_cells or ingest.code_cells[0].cell is not None:
        return _notebook_prose(ingest)
    source = ingest.code_cells[0].source
    numbered: dict[int, str] = {}
    for first, doc in _docstrings(source):
        for offset, text in enumerate(doc.splitlines()):
            numbered[first + offset] = text
    for number, text in comment_lines(source):
        if not is_code(text):  # commented-out code is not prose (a results table in comments is)
            numbered.setdefault(number, text)
    for number, text in report_strings(source):
        numbered.setdefault(number, text)
    return [Line(text, None, number) for number, text in _paragraphs(numbered)]


def _paragraphs(numbered: dict[int, str]) -> list[tuple[int, str]]:
    """The numbered lines in order, a blank line where code comes between two of them (it ends a paragraph)."""
    out: list[tuple[int, str]] = []
    previous = None
    for number in sorted(numbered):
        if previous is not None and number > previous + 1:
            out.append((previous + 1, ""))
        out.append((number, numbered[number]))
        previous = number
    return out


# A notebook with fewer words of markdown than this (a title, a name) keeps its report in its code cells
MARKDOWN_REPORT_WORDS = 40


def _notebook_prose(ingest: IngestResult) -> list[Line]:
    """The markdown cells and the prose of the code cells, in cell order; in a notebook whose markdown
    holds no report, its code cells' comment blocks and printed sentences, as a module's are read."""
    by_cell = {m.cell: list(enumerate(m.text.splitlines(), start=1)) for m in ingest.markdown}
    no_report = _no_markdown_report(ingest)
    for cell in ingest.code_cells:
        prose = code_cell_prose(cell.source) if cell.cell is not None else []
        if cell.cell is not None and not prose and no_report:
            prose = _written_in_code(cell.source)
        if prose:
            by_cell[cell.cell] = prose
    return [Line(text, cell, number) for cell in sorted(by_cell) for number, text in by_cell[cell]]


def report_in_code(ingest: IngestResult) -> bool:
    """Whether a notebook's report is read from its code cells: no markdown report (see `_notebook_prose`),
    and more words written in its code cells than in its markdown."""
    notebook = bool(ingest.code_cells) and ingest.code_cells[0].cell is not None
    if not notebook or not _no_markdown_report(ingest):
        return False
    in_code = sum(len(text.split()) for cell in ingest.code_cells for _, text in _written_in_code(cell.source))
    return in_code > sum(len(m.text.split()) for m in ingest.markdown)


def _no_markdown_report(ingest: IngestResult) -> bool:
    """Fewer words of markdown than `MARKDOWN_REPORT_WORDS`: a title and a name, no report."""
    return sum(len(m.text.split()) for m in ingest.markdown) < MARKDOWN_REPORT_WORDS


def _written_in_code(source: str) -> list[tuple[int, str]]:
    """(line, text) of a code cell's whole-line comments that read as sentences and of the sentences it
    prints, paragraphs split where code comes between."""
    lines = source.splitlines()
    numbered = {
        number: text
        for number, text in comment_lines(source)
        if lines[number - 1].lstrip().startswith("#") and text and not looks_like_code_or_output(text)
    }
    # a printed sentence, not a label: the handout's own prints ("Performances du modèle {name}:") are short
    for number, text in report_strings(source, min_words=MIN_CODE_PROSE_WORDS):
        numbered.setdefault(number, text)
    return _paragraphs(numbered)


# A code cell's text is prose when it is a sentence or more, not a label: "CONCLUSION" alone is not a report
MIN_CODE_PROSE_WORDS = 8


def code_cell_prose(source: str) -> list[tuple[int, str]]:
    """(line, text) of what a student wrote as prose in a notebook's code cell: a bare string literal at
    the cell's top level (``\"\"\"CONCLUSION …\"\"\"``), or a cell of nothing but comments that read as
    sentences (not commented-out code, not a pasted log). Comments beside code explain the code: they are
    code quality's, not the report's."""
    try:
        tree = parse_python(source)
    except SyntaxError:
        return []
    found: list[tuple[int, str]] = []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            if len(node.value.value.split()) >= MIN_CODE_PROSE_WORDS:
                found += _string_lines(node.value)
    if not tree.body:
        comments = comment_lines(source)
        sentences = [text for _, text in comments if text and not looks_like_code_or_output(text)]
        if sum(len(t.split()) for t in sentences) >= MIN_CODE_PROSE_WORDS and len(sentences) >= 0.6 * len(comments):
            found += comments
    return found


def _nodes(source: str) -> list[ast.AST]:
    """Every node of the module's syntax tree; none when it does not parse (its text is still read)."""
    try:
        return list(ast.walk(parse_python(source)))
    except SyntaxError:
        return []


def _docstrings(source: str) -> list[tuple[int, str]]:
    """(line of the docstring's first non-blank line, cleaned docstring) of the module, classes, functions."""
    found = []
    for node in _nodes(source):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                raw = node.body[0].value.value
                blank = len(raw) - len(raw.lstrip("\n \t"))
                found.append((node.body[0].lineno + raw[:blank].count("\n"), doc))
    return found


def description_lines(ingest: IngestResult) -> set[tuple[int | None, int]]:
    """(cell, line) of a module's function and class docstrings: they say what the code does ("Évalue le
    modèle sur des images bruitées (sigma 0.1)"), not what the student found; a notebook's are not prose."""
    if not ingest.code_cells or ingest.code_cells[0].cell is not None:
        return set()
    found = set()
    for node in _nodes(ingest.code_cells[0].source):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and ast.get_docstring(node):
            docstring = node.body[0]
            found |= {(None, n) for n in range(docstring.lineno, (docstring.end_lineno or docstring.lineno) + 1)}
    return found


def report_strings(source: str, min_words: int = 4) -> list[tuple[int, str]]:
    """(line, text) of the sentences a module prints (``print("…")``, the literal parts of an
    f-string) of at least `min_words` words — a script's report is often printed, not written — and
    of the long texts it holds (:func:`long_strings`: a report it writes to a file)."""
    found = []
    for node in _nodes(source):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            for arg in node.args:
                parts = arg.values if isinstance(arg, ast.JoinedStr) else [arg]
                text = " ".join(p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str))
                if len(text.split()) >= min_words:
                    found.append((arg.lineno, " ".join(text.split())))
    return found + long_strings(source)


# A string in the code is a text of the report from this many words: a sentence, not a label or a title
MIN_LONG_STRING_WORDS = 10


def long_strings(source: str) -> list[tuple[int, str]]:
    """(line, text) of each line of the string literals of at least `MIN_LONG_STRING_WORDS` words that are
    neither docstrings nor printed (:func:`report_strings` reads those): a report written to ``report.md``
    from constants (``ANALYSIS = \"\"\"## Error analysis …\"\"\"``), a conclusion left as a bare string."""
    nodes = _nodes(source)
    docstrings = {
        id(node.body[0].value)
        for node in nodes
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and ast.get_docstring(node, clean=False) is not None
    }
    printed = {
        id(sub)
        for node in nodes
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
        for sub in ast.walk(node)
    }
    read_elsewhere = docstrings | printed
    found = []
    for node in nodes:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in read_elsewhere:
            if count_words(node.value) >= MIN_LONG_STRING_WORDS:
                found += _string_lines(node)
    return found


def _string_lines(node: ast.Constant) -> list[tuple[int, str]]:
    """(line, text) of each line of a string literal, at its line in the source (a triple-quoted string
    that opens with a line break starts on the next line)."""
    text = node.value
    first = node.lineno + len(text) - len(text.lstrip("\n"))
    return [(first + i, line) for i, line in enumerate(text.strip("\n").splitlines())]


def comment_lines(source: str) -> list[tuple[int, str]]:
    """(line, text) of every ``#`` comment (whole-line or trailing), the ``#`` removed."""
    found = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                found.append((token.start[0], token.string.lstrip("#").strip()))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        for number, text in enumerate(source.splitlines(), start=1):
            if text.strip().startswith("#"):
                found.append((number, text.strip().lstrip("#").strip()))
    return found


# --------------------------------------------------------------------------- headings and sections


def heading_level(line: str, next_line: str) -> tuple[int, str] | None:
    """(level, title) when `line` is a heading: ``#`` levels, a bold line, an underlined line, '3. Title'."""
    stripped = line.strip()
    match = re.match(r"^(#{1,6})\s+(.*?)\s*#*$", stripped)
    if match and match.group(2):
        return len(match.group(1)), match.group(2)
    if re.fullmatch(r"\*\*[^*]{2,80}\*\*:?|__[^_]{2,80}__:?", stripped):
        return UNKNOWN_LEVEL, stripped.strip("*_: ")
    underline = next_line.strip()
    # a long title counts when its underline is cut to its length (not a divider under a paragraph)
    sized = len(stripped.split()) <= 16 and len(underline) >= 0.8 * len(stripped)
    if stripped and (len(stripped.split()) <= 8 or sized) and not stripped.startswith(("-", "*", "|")):
        if re.fullmatch(r"={3,}", underline):
            return 1, stripped
        if re.fullmatch(r"[-~]{3,}", underline):
            return 2, stripped
    # "Q2. Qu'est-ce qui ne va pas ?  (graine 0, 104 erreurs)": a report written as questions and answers
    question = re.fullmatch(r"(?:Q|Question\s*)\d{1,2}\s*[.):]?\s+\S.{0,160}", stripped)
    if question and len(re.sub(r"\([^)]*\)", " ", stripped).split()) <= 16:
        return UNKNOWN_LEVEL, stripped
    if (
        re.fullmatch(r"(?:\d{1,2}|[IVX]{1,4})[.)]\s+[^\W\d_].{0,70}", stripped)
        and len(stripped.split()) <= 8
        and not stripped.endswith((".", ",", ";"))
    ):
        return UNKNOWN_LEVEL, stripped
    return None


@dataclass
class Heading:
    """A heading found in the prose: level, title, and where it is."""

    index: int  # position in the prose lines
    level: int
    title: str
    cell: int | None
    line: int
    run_in: bool = False  # "Erreurs (M3) : 4→9 …": a paragraph's opening label, its text on the same line


@dataclass
class Section:
    """A deliverable section found in the prose."""

    name: str
    title: str | None  # the heading; None when found by its content
    cell: int | None
    line: int
    words: int
    text: str
    how: str = "heading"  # 'heading' or 'content'
    score: tuple = field(default=(), repr=False)


def headings(lines: list[Line]) -> list[Heading]:
    """Every heading of the prose: markdown ``#``, setext underlines, bold or numbered title lines."""
    found = []
    for index, line in enumerate(lines):
        following = lines[index + 1].text if index + 1 < len(lines) else ""
        if index + 1 < len(lines) and lines[index + 1].cell != line.cell:
            following = ""
        result = heading_level(line.text, following)
        if result:
            found.append(Heading(index, result[0], result[1], line.cell, line.line))
    return found


# a paragraph that opens with a short label and a colon: "Robustesse (bruit σ 0,2) : …", "**Results**: …"
RUN_IN = re.compile(  # a list item's label too: "- **Erreurs :** 4 ↔ 9 (15)"
    r"^(?:[-+*•]\s+)?[*_]{0,2}([^\W\d_][^:]{0,120}?)[*_]{0,2}\s*:(?:\s+\S|\s*$)"
    r"|^(?:[-+*•]\s+)?(?:\*\*|__)([^\W\d_][^*_:.]{0,60})[.:](?:\*\*|__)\s+\S"  # "**Short version.** The handout CNN…"
)
RUN_IN_WORDS = 6  # words of the label, its parentheses left out
# what follows a label that is a row of results, not a heading: a number alone ("baseline: 98.94%")
MEASURE_ONLY = re.compile(r"^[^:]*:\s*[~≈]?\s*\d+(?:[.,]\d+)?\s*(?:%|pts?|points?)?\s*[*_]{0,2}\s*$")


def run_in_label(text: str) -> re.Match | None:
    """The label opening `text` as a run-in heading ("Conclusion : …", "**Erreurs :** 4 ↔ 9"), or None;
    a label given only a number ("Baseline (5 epochs): 98.94%") is a row of results, not a heading."""
    return None if MEASURE_ONLY.match(text) else RUN_IN.match(text)


def run_in_headings(lines: list[Line], spec: dict[str, dict]) -> list[Heading]:
    """Labels that open a paragraph ("Erreurs (M3, 82) : 4→9 (11) …", "Conclusion: …") and name a
    section of `spec`: the headings of a terse report or of a module's docstring, below every other
    level, their text on their own line."""
    found = []
    for index, line in enumerate(lines):
        previous = lines[index - 1] if index else None
        if previous is not None and previous.cell == line.cell and previous.text.strip(" =-~#*_"):
            continue  # inside a paragraph (a rule of "=====" above ends one)
        match = run_in_label(line.text.strip()) or _bare_label(line, lines[index + 1 : index + 3])
        said = next((group for group in match.groups() if group), "") if match else ""
        label = re.sub(r"\s+([,;])", r"\1", " ".join(re.sub(r"\([^)]*\)", " ", said).split()))
        label = label.strip(" ,*_—–-")
        if not label or len(label.split()) > RUN_IN_WORDS or heading_level(line.text, "") is not None:
            continue
        title = _strip_numbering(label)
        if any(_first_match(s.get("headings", []), title) is not None for s in spec.values()):
            found.append(Heading(index, UNKNOWN_LEVEL + 1, label, line.cell, line.line, run_in=True))
    return found


# a line that is only a capitalised label, with text right under it or after one blank line: "Results (one
# run each)" opening a comment-block report or a docstring's paragraph, or a plain-text title over its table
BARE_LABEL = re.compile(r"^((?:\d{1,2}[.)]\s*)?[A-ZÀ-Ý][^.!?;:]{0,80}?)\s*$")


def _bare_label(line: Line, following: list[Line]) -> re.Match | None:
    """A label alone on its line at a paragraph's start, the paragraph's text on the next line or the one
    after a blank line."""
    below = [f for f in following if f.cell == line.cell]
    # a blank line under a title sets it apart in a module's plain text; in markdown, '#' does
    spaced = line.cell is None and len(below) > 1 and below[1].text.strip()
    if not below or not (below[0].text.strip() or spaced):
        return None
    return BARE_LABEL.match(re.sub(r"\s*\([^)]*\)", "", line.text.strip()))


def cell_end(lines: list[Line], index: int) -> int:
    """Where the notebook cell of line `index` ends (the index of the next cell's first line): a run-in
    label ("change 3: augmentation", "Conclusion : …") heads its paragraph within its cell, never the
    cells after it. A module is one cell: its end is the text's."""
    cell = lines[index].cell
    if cell is None:
        return len(lines)
    return next((i for i in range(index + 1, len(lines)) if lines[i].cell != cell), len(lines))


LIST_ITEM = re.compile(r"^\s*(?:[-+*•]|\d{1,2}[.)])\s+\S")


def run_in_end(lines: list[Line], index: int) -> int:
    """Where the section of the run-in label at line `index` ends: within its cell, and with its list
    when the label only introduces one ("I tried 3 changes:" then its items): the paragraphs after the
    list are the text of the heading above it (a "## Results" cell that opens with the list of changes
    goes on with the results)."""
    end = cell_end(lines, index)
    after = [i for i in range(index + 1, end) if lines[i].text.strip()]
    said = re.sub(r"^.*?:", "", lines[index].text).strip(" *_")  # the label's own text on its line
    if lines[index].cell is None or said or not after or not LIST_ITEM.match(lines[after[0]].text):
        return end  # a module's labels are its only headings; a label's own paragraph runs to its cell's end
    return next((i for i in after if not LIST_ITEM.match(lines[i].text)), end)


def _body(lines: list[Line], start: int, end: int, skip: set[int]) -> str:
    return "\n".join(lines[i].text for i in range(start, end) if i not in skip)


def _strip_numbering(title: str) -> str:
    return re.sub(
        r"^[\s\d.)IVX:–—-]*(?:(?:(?:partie|part|etape|step|section)\s*\d*|q\d{1,2}|question\s*\d{1,2})\s*[:.–—-]?\s*)?",
        "",
        plain(title),
    ).strip()


def _first_match(patterns: list[str], text: str) -> int | None:
    positions = [m.start() for p in patterns for m in [re.search(p, text)] if m]
    return min(positions) if positions else None


def find_sections(lines: list[Line], spec: dict[str, dict]) -> dict[str, Section]:
    """Each deliverable section of `spec` ({name: {"headings": [...], "content": [...],
    "min_content_hits": n, "not_under": [...]}}) found in the prose, by heading first, by content
    otherwise (never in a piece whose heading matches one of its `not_under` patterns).

    A heading's section runs to the next heading of the same or a higher level (sub-headings
    included; a paragraph's run-in label, "Erreurs : …", is a heading below every level), except a heading that holds three or more headings of other sections (a document
    title, a "Partie 2"): only its own introduction counts, and it is passed over when it has none. When
    several headings match a section, one whose text says what the section `needs` (a number) beats one
    that does not (an "Analyse des erreurs" that only describes the method, then the report's "Erreurs :
    4 ↔ 9 (15)"), then the one whose matching word comes first in the title wins ("Améliorations
    proposées" beats "Modèle amélioré 1"), then the higher level, then the longer text; a container
    heading comes after every other.
    """
    titled = headings(lines)
    found_headings = sorted(titled + run_in_headings(lines, spec), key=lambda h: h.index)
    heading_lines = {h.index for h in titled}  # a run-in heading's line is its section's text
    matches: dict[int, dict[str, int]] = {}
    for h in found_headings:
        title = _strip_numbering(h.title)
        for name, s in spec.items():
            position = _first_match(s.get("headings", []), title)
            if position is not None:
                matches.setdefault(h.index, {})[name] = position
    candidates: dict[str, list[Section]] = {}
    for number, h in enumerate(found_headings):
        if h.index not in matches:
            continue
        end = next((o.index for o in found_headings[number + 1 :] if o.level <= h.level), len(lines))
        if h.run_in:
            end = min(end, run_in_end(lines, h.index))
        others = [
            o
            for o in found_headings[number + 1 :]
            if o.index < end and set(matches.get(o.index, {})) - set(matches[h.index])
        ]
        container = len(others) >= 3
        if container:  # a title or a part: only its own introduction is its text
            end = found_headings[number + 1].index if number + 1 < len(found_headings) else len(lines)
        text = _body(lines, h.index + (0 if h.run_in else 1), end, heading_lines)
        words = count_words(text)
        if container and words == 0:
            continue
        for name, position in matches[h.index].items():
            needs = spec[name].get("needs")
            incomplete = bool(needs) and matches_any(needs, plain(text)) is None
            score = (container, incomplete, position, h.level, -words)
            section = Section(name, h.title, h.cell, h.line, words, text, score=score)
            candidates.setdefault(name, []).append(section)
    found = {name: min(options, key=lambda s: s.score) for name, options in candidates.items()}
    # By content: a missing section's words may sit under an unusual heading, or under none.
    used = {(s.cell, s.line) for s in found.values()}
    segments = _segments(lines, found_headings)
    for name, s in spec.items():
        if name in found or not s.get("content"):
            continue
        best = None
        for cell, line, title, text in segments:
            if (cell, line) in used or _titled_otherwise(title, s.get("not_under", [])):
                continue
            body = plain(text if title is None else f"{title}\n{text}")
            if s.get("needs") and matches_any(s["needs"], plain(f"{_strip_numbering(title or '')}\n{text}")) is None:
                continue  # found by its words alone, it must say what it is there for: theory on rotations tests nothing
            hits = sum(1 for pattern in s["content"] if re.search(pattern, body))
            if hits >= s.get("min_content_hits", 2) and (best is None or hits > best[0]):
                best = (hits, cell, line, title, text)
        if best:
            hits, cell, line, title, text = best
            found[name] = Section(name, title, cell, line, count_words(text), text, how="content")
            used.add((cell, line))
    return found


def _titled_otherwise(title: str | None, not_under: list[str]) -> bool:
    """Whether a piece's heading says it is something a section found by content may not be."""
    return title is not None and _first_match(not_under, _strip_numbering(title)) is not None


def _segments(lines: list[Line], found_headings: list[Heading]) -> list[tuple[int | None, int, str | None, str]]:
    """Flat pieces of prose: each heading with the text up to the next heading; text before any
    heading split by cell."""
    out = []
    starts = {h.index: h for h in found_headings}
    current: list[str] = []
    meta: tuple[int | None, int, str | None] | None = None
    for index, line in enumerate(lines):
        if index in starts or (meta is not None and meta[2] is None and line.cell != meta[0]):
            if meta is not None:
                out.append((*meta, "\n".join(current)))
            h = starts.get(index)
            meta, current = ((h.cell, h.line, h.title) if h else (line.cell, line.line, None)), []
            if h is None or not h.run_in:  # a run-in heading's line is its text
                continue
        if meta is None:
            meta = (line.cell, line.line, None)
        current.append(line.text)
    if meta is not None:
        out.append((*meta, "\n".join(current)))
    return out


# --------------------------------------------------------------------------- passages


@dataclass(frozen=True)
class Passage:
    """A paragraph, a list item or a table row: the unit a justification must fit in."""

    text: str
    cell: int | None
    line: int


def passages(lines: list[Line]) -> list[Passage]:
    """The prose cut into passages (paragraphs, list items) with where each starts."""
    out: list[Passage] = []
    current: list[Line] = []

    def flush() -> None:
        if current and any(item.text.strip() for item in current):
            out.append(Passage(" ".join(item.text.strip() for item in current), current[0].cell, current[0].line))
        current.clear()

    previous_cell = object()
    for index, line in enumerate(lines):
        stripped = line.text.strip()
        following = lines[index + 1].text if index + 1 < len(lines) else ""
        heading = heading_level(line.text, following) is not None
        # "b) dropout …", "B. BatchNormalization …" too
        starts_item = bool(re.match(r"^([-*+]\s|\d{1,2}[.)]\s|\(?[a-h]\)\s|[A-H][.)]\s|\|)", stripped))
        if not stripped or line.cell != previous_cell or starts_item or heading:
            flush()
        if stripped and not re.fullmatch(r"[-=~]{3,}", stripped):  # underlines are not text
            current.append(line)
        if heading or stripped.startswith("|"):
            flush()
        previous_cell = line.cell
    flush()
    return out


def sentences(passage: Passage) -> list[str]:
    """A passage's sentences (split after ``.``, ``!``, ``?`` and ``;``)."""
    return [s for s in re.split(r"(?<=[.!?;])\s+", passage.text) if s.strip()]


# --------------------------------------------------------------------------- model references

MODEL_REF = re.compile(
    r"create_improved_model_(?P<name>\w+)"
    r"|\b(?:modeles?|models?|reseaux?|networks?|versions?|cnn|essais?|experiences?|experiments?|variantes?"
    r"|tentatives?|trials?)\s+(?:ameliores?\s+|improved\s+)?"
    r"(?:n[o°]\s*|#\s*)?(?P<n1>\d{1,2})\b"
    r"|\b(?:ameliores?|improved|ameliorations?|improvements?|modifications?)\s+(?:n[o°]\s*|#\s*)?(?P<n2>\d{1,2})\b"
    r"|\bm(?P<n3>\d{1,2})\b"
    r"|(?<!keras )(?<!tensorflow )(?<!tf )(?<!python )\bv(?P<n4>\d{1,2})\b"  # "v3", a version of the model
    r"|\b(?:e|exp\.?\s*)(?P<n5>\d{1,2})\b"  # "E2", "exp 2": an experiment
)
# "the improved model", "le modèle amélioré" without a number: the one improved model, when there is one
SOLE_IMPROVED_REF = re.compile(
    r"\b(?:improved\s+(?:model|network|cnn)|(?:modele|reseau|cnn)\s+ameliore)\b(?!\s*(?:n[o°]\s*|#\s*)?\d)"
)
REFERENCE_REF = re.compile(r"\b(?:modele de (?:reference|base)|reference|baseline|modele initial|initial model)\b")


def factory_numbers(
    factories: list[Factory],
    own: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    techniques: dict[str, set[str]] | None = None,
) -> dict[str, str]:
    """'3' -> 'create_improved_model_3' (numeric suffix, else position among the improved models); with
    `own` (ingest's factory map: the student's own function names), also the name itself
    ('modele_final') and the word that sets it apart from the others ('final'); with `labels` (the improved
    models' run labels, plain), a label that is one name ('label_smoothing' of ``CONFIGS = {"label_smoothing":
    cnn_ls, …}``): the student's name for the run is their name for the model; with `techniques` (each improved
    model's naming words, :func:`harness.scoring.readers.models.naming_words`), a technique only one of them
    adds ("le modèle avec BatchNormalization", "the dropout model"): what students most often call a model by."""
    improved = [f for f in factories if f.role == "improved"]
    numbers = {}
    counted = _own_numbers(improved, own or {})
    for position, factory in enumerate(improved, start=1):
        suffix = factory.name.rsplit("_", 1)[-1]
        numbers[counted.get(factory.name) or (suffix if suffix.isdigit() else str(position))] = factory.name
    named = {f.name: plain(own[f.name]) for f in improved if own and re.fullmatch(r"\w+", own.get(f.name, ""))}
    # a model built from a configuration is named by its label: build_model(Config("resnet_sep", …))
    named |= {f.name: plain(label) for f in improved if own and (label := config_label(own.get(f.name, "")))}
    words = _words_of_their_own({name: set(_name_words(plain(own_name))) for name, own_name in (own or {}).items()})
    short = {name: _name_label(plain(own_name)) for name, own_name in (own or {}).items()}
    for name, own_name in named.items():
        numbers.setdefault(own_name, name)
        for word in sorted(words[name]):
            numbers.setdefault(word, name)
        label = short.get(name)
        if label and list(short.values()).count(label) == 1:
            numbers.setdefault(LABEL + label, name)
    runs = [label.strip() for label in (labels or {}).values()]
    for name, label in (labels or {}).items():
        if re.fullmatch(r"[a-z]\w{2,}", label.strip()) and runs.count(label.strip()) == 1:
            numbers.setdefault(label.strip(), name)
    improved_names = {f.name for f in improved}
    owned = _words_of_their_own({n: w for n, w in (techniques or {}).items() if n in improved_names})
    for name, technique_words in owned.items():
        for word in sorted(technique_words):
            numbers.setdefault(word, name)
    return numbers


def _own_numbers(improved: list[Factory], own: dict[str, str]) -> dict[str, str]:
    """Each improved model's number in the student's own count, when their names all carry one and no
    two the same ("m2", "model_3", "modele2": "modèle 2" of the text is ``m2``, which the harness may
    call its model 1, ``m1`` being the baseline); {} otherwise."""
    found = {f.name: re.fullmatch(OWN_NUMBERED, plain(own.get(f.name, ""))) for f in improved}
    numbers = {name: str(int(m.group(1))) for name, m in found.items() if m}
    return numbers if len(numbers) == len(improved) and len(set(numbers.values())) == len(numbers) else {}


# a name that numbers its model: "m2", "model_3", "modele2", "cnn_v2", "exp4"
OWN_NUMBERED = r"(?:m|mod|model|modele|cnn|net|reseau|network|v|version|exp|experiment|experience)_?v?(\d{1,2})"


LABEL = "label:"  # a key of factory_numbers that is a short label ("b" of modele_b, "v2" of build_model_v2)


def _name_label(own_name: str) -> str | None:
    """The short label that follows a name's generic words: 'modele_b' -> 'b', 'build_model_v2' -> 'v2',
    'cnn_m3' -> 'm3', 'modele_b_batchnorm' -> 'b'; None for 'modele_final' or 'model_2' (a number)."""
    parts = [w for w in own_name.split("_") if w]
    first = next((i for i, w in enumerate(parts) if w not in GENERIC_NAME_WORDS), None)
    # the first word that is not generic, after generic ones: "modele_b_batchnorm" -> "b" too
    if first and re.fullmatch(r"[a-z]\d{0,2}", parts[first]):
        return parts[first]
    return None


# Words of a function's name that say nothing about which model it is
GENERIC_NAME_WORDS = frozenset(
    "create build make get faire creer construire construct define model modele models modeles cnn net "
    "network reseau improved ameliore amelioration improvement simple new nouveau my mon base baseline "
    "reference ref initial".split()
)


def _name_words(own_name: str) -> list[str]:
    """The distinctive words of a function's name: 'modele_final' -> ['final']; four letters at least."""
    return [w for w in own_name.split("_") if len(w) >= 4 and w.isalpha() and w not in GENERIC_NAME_WORDS]


def model_refs(text: str, numbers: dict[str, str]) -> list[tuple[int, int, str]]:
    """(start, end, factory name) of each mention of an improved model in plain `text`: by number, by the
    student's function name, or by its distinctive word or label as a model ("le final", "the dropout
    model", "modèle B"); the one improved model of a submission also as "the improved model". Where the
    student's own name and a number overlap ("v2" of ``build_model_v2``, which may be the harness's model
    1), the student's name decides."""
    own = [
        (m.start(), m.end(), factory)
        for key, factory in numbers.items()
        if not key.isdigit()
        for m in _own_name_ref(key).finditer(text)
    ]
    found = []
    for match in MODEL_REF.finditer(text):
        if any(start < match.end() and match.start() < end for start, end, _ in own):
            continue
        name = match.group("name")
        if name is not None:
            factory = f"create_improved_model_{name}"
            if factory in numbers.values():
                found.append((match.start(), match.end(), factory))
            continue
        number = next((match.group(g) for g in ("n1", "n2", "n3", "n4", "n5") if match.group(g)), None)
        number = str(int(number)) if number else None
        if number in numbers:
            found.append((match.start(), match.end(), numbers[number]))
    if len(set(numbers.values())) == 1:
        found += [(m.start(), m.end(), next(iter(numbers.values()))) for m in SOLE_IMPROVED_REF.finditer(text)]
    return sorted(set(found + own))


@functools.lru_cache(maxsize=256)  # read for every sentence and printed line of a submission
def _own_name_ref(key: str) -> re.Pattern:
    """A function's name as written, its distinctive word used as a model's name, or its short label after
    a model word ("modèle B", "model v2"; a label with a digit alone too: "v2 dropout")."""
    if key.startswith(LABEL):
        label = re.escape(key[len(LABEL) :])
        alone = rf"|\b{label}\b" if any(c.isdigit() for c in key) else ""
        # ... or the list item it opens ("B. BatchNormalization après…", "- B (BatchNorm) : 99,18 %", "B : …")
        item = rf"|^\s*(?:[-*•]\s+)?\(?{label}(?:[.)]\s|\s*[(:]|\s+[-–—]\s)"
        return re.compile(rf"\b(?:modele|model|reseau|network|version|variante|cnn)\s+{label}\b{alone}{item}")
    if "_" in key:
        return re.compile(rf"\b{re.escape(key)}\b")
    # ... with the version a name may carry ("MobileNetV2" of ``make_mobilenet``, "ResNet50")
    word = re.escape(key) + (r"(?:v?\d+)?" if key.isalpha() else "")
    return re.compile(
        rf"\b(?:(?:le|la|the|l')\s*(?:modele\s+|model\s+|reseau\s+)?{word}\b"
        rf"|(?:modele|model|reseau|network)\s+{word}\b|{word}\s+(?:model|network|cnn|one)\b)"
        # the model "with" it, and the word as a sentence's subject: "le modèle avec BatchNormalization",
        # "BatchNorm gives the best accuracy", "Dropout est le plus robuste"
        rf"|\b(?:modele|model|reseau|network|cnn|version)\s+(?:avec|with|using|utilisant)\s+"
        rf"(?:(?:le|la|les|l'|du|des|de\s+la|the)\s*)?{word}\b"
        rf"|^\s*{word}\s+(?:gives?|is|was|reaches?|achieves?|obtains?|performs?|wins?|has|donne|est|atteint"
        rf"|obtient|reste|l'emporte|surpasse|outperforms?)\b"
        # ... and as what the text recommends: "I recommend MobileNetV2", "passer à BatchNorm", "move to X"
        rf"|\b(?:recommend\w*|recommand\w*|deploy\w*|deploie\w*|adopt\w*|move\s+to|switch\s+to|go\s+with|opt\s+for"
        rf"|passer\s+a|opter\s+pour|choisir|retenir)\s+(?:(?:the|le|la|l')\s*)?{word}\b"
        # a class or variable whose name joins the word to a model word: ``WiderExperiment``, ``dropoutModel``
        rf"|\b{word}(?:experiments?|models?|nets?|networks?|cnns?|configs?|variants?|modeles?|reseaux?)\b"
        # the word that opens a list item, or in bold a paragraph, names its subject: "b) dropout -- …",
        # "- augment: …", "**Augment** -- …" (a word alone at a line's start, "final : 0.99", does not)
        rf"|^\s*(?:[-*•]\s+|\(?[a-z0-9]{{1,2}}[.)]\s*)[*_`]{{0,2}}{word}\b|^\s*(?:\*\*|__|``?){word}\b"
    )


# a results table whose first column lists the models: "| Modèle | Précision |", "| # | model | acc |"
MODEL_COLUMN = re.compile(
    r"^\|\s*(?:#|n[o°]|modeles?|models?|reseaux?|networks?|versions?|essais?|experiences?|experiments?"
    r"|variantes?|runs?)\s*\|"
)
ROW_NUMBER = re.compile(r"^\|\s*(?:#\s*)?(\d{1,2})\b(?![.,]\d)")


def passage_models(
    passages: list[Passage], numbers: dict[str, str], labels: dict[str, str] | None = None
) -> list[list[str]]:
    """For each passage, the improved models it names, in order of mention (those it compares with, after
    "que"/"than", last): by name ("modèle 2", "M2", "le final"), in a results table whose first column
    lists the models by the number that starts its row ("| 2 batch 32 | 99.20 % |"), or in any table by a
    first cell that is a model's run label (`labels`, plain: "| BatchNorm | 99,17 |" where the student's
    run printed its results under 'BatchNorm')."""
    given = [label.strip() for label in (labels or {}).values()]
    by_label = {label.strip(): name for name, label in (labels or {}).items() if given.count(label.strip()) == 1}
    named = []
    model_column = False
    for index, passage in enumerate(passages):
        text = plain(passage.text).strip()
        row = text.startswith("|")
        if row and _opens_table(passages, index):
            model_column = bool(MODEL_COLUMN.match(text))  # a table's first row is its header
        refs = model_refs(text, numbers)  # a model named after "than"/"que" is compared with, not the subject
        compared = [bool(COMPARATIVE_BEFORE.search(text[: ref[0]])) for ref in refs]
        models = [ref[2] for ref, c in zip(refs, compared, strict=True) if not c]
        models += [ref[2] for ref, c in zip(refs, compared, strict=True) if c]
        number = ROW_NUMBER.match(text) if row and model_column else None
        if number and str(int(number.group(1))) in numbers:
            models.insert(0, numbers[str(int(number.group(1)))])
        labelled = by_label.get(_first_cell(text)) if row else None
        if labelled and labelled not in models:
            models.insert(0, labelled)
        named.append(models)
    return named


def _first_cell(row: str) -> str:
    """A table row's first cell, its emphasis and code marks left out: '| **combined** | …' -> 'combined'."""
    cells = row.strip().strip("|").split("|")
    return cells[0].strip().strip("*_`").strip() if cells else ""


# --------------------------------------------------------------------------- claims: "the best model is…"

BEST_MARKERS = re.compile(
    r"\b(?:(?:le|la|notre|mon|ce|du|au|the|our|my)\s+meilleure?s?\b|meilleure?\s+modele|meilleure?\s+precision"
    r"|meilleurs?\s+resultats?|the\s+best|best\s+(?:model|accuracy|result|performance)|(?:is|was|performs?)\s+best"
    r"|le\s+plus\s+(?:performant|precis|efficace|robuste)|la\s+plus\s+(?:haute|elevee)|most\s+accurate|highest"
    r"|deploy\w*|deploie\w*|deployer|recommand\w*|recommend\w*|je\s+retiens|retenu|we\s+keep|i\s+keep"
    r"|l'emporte|outperforms?|surpasse)"
)
COMPARATIVE_BEFORE = re.compile(
    r"(?:\bque|\bqu'|\bthan|\bcontre|\bvs\.?|\bversus|\bface\s+au|\bcompare\s+au)\s+"
    r"(?:(?:le|la|l'|du|celui\s+du|the|that\s+of)\s+)?$"
)
CLAIM_WINDOW = 80


@dataclass(frozen=True)
class Claim:
    """A sentence that names one model as the best, with where it stands and in which section."""

    model: str
    cell: int | None
    line: int
    sentence: str
    section: str | None


def best_model_claims(
    lines: list[Line],
    sections: dict[str, Section],
    factories: list[Factory],
    own: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    techniques: dict[str, set[str]] | None = None,
) -> list[Claim]:
    """Sentences that name the student's best (or recommended) model, with the model they name.

    In a sentence with a superlative or a recommendation ("meilleur modèle", "le plus précis",
    "best model", "je recommande", "deploy"), the model mention nearest to it (within 80
    characters, after it on a tie) is the claim; a mention right after "que"/"than"/"contre" is a
    comparison, not a claim.
    """
    numbers = factory_numbers(factories, own, labels, techniques)
    if not numbers:
        return []
    section_of = section_ranges(lines, sections)
    claims = []
    for passage in passages(lines):
        for sentence in sentences(passage):
            text = plain(sentence)
            refs = [r for r in model_refs(text, numbers) if not COMPARATIVE_BEFORE.search(text[: r[0]])]
            if not refs:
                continue
            for marker in BEST_MARKERS.finditer(text):
                distances = [(r[0] - marker.end(), 0, r) for r in refs if 0 <= r[0] - marker.end() <= CLAIM_WINDOW]
                distances += [(marker.start() - r[1], 1, r) for r in refs if 0 <= marker.start() - r[1] <= CLAIM_WINDOW]
                chosen = min(distances)[2] if distances else None
                if chosen:
                    claims.append(
                        Claim(
                            chosen[2],
                            passage.cell,
                            passage.line,
                            sentence.strip(),
                            section_of(passage.cell, passage.line),
                        )
                    )
                    break
    return claims


def _nested(lines: list[Line], level_at: dict[int, int], start: int) -> bool:
    """Whether the section starting at `start` is a list's run-in label inside the section around it,
    which goes on after the list."""
    return start not in level_at and run_in_end(lines, start) < cell_end(lines, start)


def section_ranges(lines: list[Line], sections: dict[str, Section]):
    """A function (cell, line) -> the name of the section under a heading that holds that line, or None.
    A section runs to the next heading of the same or a higher level, or to where another section
    starts: a heading that names no section (a "The scoreboard" of the student's own) ends the section
    before it, as it does for the reader. (A section found by its content under no heading has no
    bounds to trust.)"""
    order = {(line.cell, line.line): index for index, line in enumerate(lines)}
    titled = headings(lines)
    level_at = {h.index: h.level for h in titled}
    starts = {
        name: order[(s.cell, s.line)]
        for name, s in sections.items()
        if s.title is not None and (s.cell, s.line) in order
    }
    spans = []
    for name, start in starts.items():
        level = level_at.get(start)  # None for a run-in label: below every heading
        ends = [h.index for h in titled if h.index > start and (level is None or h.level <= level)]
        ends += [other for other in starts.values() if other > start and not _nested(lines, level_at, other)]
        if level is None:
            ends.append(run_in_end(lines, start))
        spans.append((start, min(ends, default=len(lines)), name))

    def section_of(cell: int | None, line: int) -> str | None:
        position = order.get((cell, line), -1)
        inside = [(start, name) for start, end, name in spans if start <= position < end]
        return max(inside)[1] if inside else None

    return section_of


def claimed_best(claims: list[Claim], prefer: tuple[str, ...] = ("conclusion", "results")) -> Claim | None:
    """The claim that counts: the most frequent in the conclusion, else in the results, else anywhere."""
    for pool in [[c for c in claims if c.section == name] for name in prefer] + [claims]:
        if pool:
            counts: dict[str, int] = {}
            for claim in pool:
                counts[claim.model] = counts.get(claim.model, 0) + 1
            top = max(counts.values())
            return next(c for c in reversed(pool) if counts[c.model] == top)
    return None


# --------------------------------------------------------------------------- numbers the student printed

ACCURACY_WORDS = re.compile(r"precision|accuracy|\bacc\b|exactitude|justesse|taux de reussite|score")
PERCENT = re.compile(r"(?<![\d.,])(\d{1,3}(?:[.,]\d+)?)\s*%")
FRACTION = re.compile(r"(?<![\d.,])(0[.,]\d{2,})(?![\d.,])")
# markdown emphasis around a number ("**99,54 %**"): the number as written
EMPHASIS = re.compile(r"\*\*|__|`")
# a "test" word just before a percentage (a word between allowed, not one that sets it against another model's)
TEST_JUST_BEFORE = re.compile(r"\btest\w*\W{0,3}(?:(?!contre\b|vs\b|versus\b|than\b|against\b|compared\b)\w+\W{1,3})?$")
# a change quoted as its two ends ("went from 98.93 % to 99.52 %", "passe de 98,9 à 99,3 %"): the second is the model's
FROM_TO = re.compile(r"\b(?:from|de)\s+(\d{1,3}(?:[.,]\d+)?)\s*%?\s+(?:to|a)\s+(\d{1,3}(?:[.,]\d+)?)\s*%")
TABLE_NUMBER = re.compile(r"(?<![\d.,])(\d{2,3}[.,]\d{1,3})(?![\d.,])")
# a training log or a Keras summary ("Total params: 225,034", "Param #"), not a result; a results row that
# gives the model's size ("combined | params 897098 | test 98.93 %") is one
SKIP_LINE = re.compile(r"\bstep\b|epoch|val_|loss|/step|━|\bparams?\s*[:#]", re.IGNORECASE)


@dataclass(frozen=True)
class Reported:
    """An accuracy the student's text reports for a model (or the reference), as a fraction."""

    model: str  # factory name, or "reference"
    accuracy: float  # in [0, 1]
    cell: int | None
    text: str


def reported_accuracies(ingest: IngestResult) -> list[Reported]:
    """Test accuracies the student's own run printed (saved notebook outputs), by model.

    A line counts when it names a model ("Modèle amélioré 2", "M3", "model 1", "référence") and
    gives a percentage, a fraction after an accuracy word, or — in an output whose header
    mentions accuracy — a number between 10 and 100 (a printed table). Training logs (epochs,
    steps, losses) are skipped, and so are lines of another accuracy than the test set's (under
    noise or rotation, "Référence - bruit : 98.74 %"; of one digit, "chiffre 9 : référence 1.78 %").
    """
    labels = improved_labels(ingest)
    numbers = factory_numbers(ingest.factories, ingest.own_names, labels)
    found = []
    for cell, output in printed_outputs(ingest):
        table = bool(ACCURACY_WORDS.search(plain(output))) or _named_numbers(output)
        for raw in output.splitlines():
            if SKIP_LINE.search(raw) or ROBUSTNESS_WORDS.search(plain(raw)) or NOT_TEST_ACCURACY.search(plain(raw)):
                continue
            if (value := _accuracy_in(raw, numbers, table, labels)) is not None:
                found.append(Reported(value[0], value[1], cell, raw.strip()[:120]))
    return found


def printed_outputs(ingest: IngestResult) -> list[tuple[int | None, str]]:
    """(cell, text) of what the student's own run printed: a notebook's saved outputs; in a module, which
    saves none, the comment runs that are a program's output pasted in ("# Sortie :" and the log under it)."""
    saved = [(code.cell, output) for code in ingest.code_cells for output in code.outputs]
    if saved or ingest.kind == "notebook":
        return saved
    pasted = []
    for code in ingest.code_cells:
        lines = code.source.splitlines()
        runs: list[list[int]] = []
        for number in sorted(pasted_output(lines)):
            if runs and number == runs[-1][-1] + 1:
                runs[-1].append(number)
            else:
                runs.append([number])
        pasted += [(code.cell, "\n".join(lines[n - 1].strip().lstrip("#").strip() for n in run)) for run in runs]
    return pasted


NAMED_NUMBER = re.compile(r"^\s*[^\W\d_][\w .()-]{0,40}?[\s:=|]+\d{2}[.,]\d{1,3}\s*%?\s*$")


def _named_numbers(output: str) -> bool:
    """An output that is a list of names and percentages without a header ("baseline 98.92", "v3 97.64")."""
    lines = [line for line in output.splitlines() if line.strip()]
    return len(lines) >= 2 and all(NAMED_NUMBER.match(line) for line in lines)


def quoted_accuracies(
    passages: list[Passage],
    factories: list[Factory],
    own: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> list[Reported]:
    """Accuracies the student's text quotes for a model ("le modèle 3 atteint 99,2 %"), sentence by
    sentence, the same way as printed ones (a percentage after the model's name, or after its run's label
    in the first cell of a table's row)."""
    numbers = factory_numbers(factories, own, labels)
    found = []
    for passage in passages:
        for sentence in sentences(passage):
            value = _accuracy_in(sentence, numbers, table=False, labels=labels)
            if value is not None and value[1] >= 0.5:  # an accuracy, not a rate or a share of errors
                # the whole sentence: what it says the number is of may come after it (shown as an excerpt)
                found.append(Reported(value[0], value[1], passage.cell, sentence.strip()))
    return found


def _accuracy_in(
    raw: str, numbers: dict[str, str], table: bool, labels: dict[str, str] | None = None
) -> tuple[str, float] | None:
    """(model, accuracy) of one line naming a model then giving its accuracy, or None."""
    text = EMPHASIS.sub("", plain(raw))  # "passe de **98,94 %** à **99,54 %**": the numbers as written
    refs = model_refs(text, numbers)
    model, end = (refs[0][2], refs[0][1]) if refs else _labelled(text, labels or {})
    named = _label_owner(text, labels or {})
    if refs and named not in (None, model):
        return None  # "| Modèle 3 | RMSprop |": numbered as one model, named as another's run: not read
    if model is None:
        match = REFERENCE_REF.search(text)
        if not match:
            return None
        model, end = "reference", match.end()
    rest = text[end:]
    value = None
    change, m = FROM_TO.search(rest), _test_percent(rest)
    if change is not None and m is not None and change.start(1) <= m.start(1):  # "from 98.93 % to 99.52 %"
        value = float(change.group(2).replace(",", ".")) / 100
    elif m is not None:
        value = float(m.group(1).replace(",", ".")) / 100
    elif ACCURACY_WORDS.search(text) and (m := FRACTION.search(rest)) is not None:
        value = float(m.group(1).replace(",", "."))
    elif table and (m := TABLE_NUMBER.search(rest)) is not None:
        number = float(m.group(1).replace(",", "."))
        value = number / 100 if 10 <= number <= 100 else None
    return (model, value) if value is not None and 0 < value <= 1 else None


def _test_percent(text: str) -> re.Match | None:
    """The line's first percentage, or the one a "test" word stands just before when it gives several
    ("val 98.96 % | test 99.08 %": the test set's)."""
    found = list(PERCENT.finditer(text))
    # "99,54 % sur le test (contre 98,94 %)": the number after "contre" is the other model's
    tested = [m for m in found if TEST_JUST_BEFORE.search(text[max(0, m.start() - 30) : m.start()])]
    return (tested or found or [None])[0]


def improved_labels(ingest: IngestResult) -> dict[str, str]:
    """The improved models' run labels (``'Augmentation'``), plain: the baseline's is the reference's."""
    improved = {f.name for f in ingest.factories if f.role == "improved"}
    return {name: plain(label) for name, label in ingest.run_labels.items() if name in improved}


def _label_owner(text: str, labels: dict[str, str]) -> str | None:
    """The one model whose run's label has a word of its own (four letters at least, in no other label)
    standing as a whole word in plain `text` ("rmsprop" of 'RMSprop lr=0.0005'); None when none or several do."""
    words = _words_of_their_own({model: set(re.findall(r"[a-z]{4,}", label)) for model, label in labels.items()})
    owners = {
        model
        for model, own in words.items()
        for word in own
        if word not in GENERIC_NAME_WORDS and re.search(rf"\b{word}\b", text)
    }
    return next(iter(owners)) if len(owners) == 1 else None


def _words_of_their_own(words: dict[str, set[str]]) -> dict[str, set[str]]:
    """Each model's words that no other model's name (or label) has: what names it alone."""
    return {name: own - {w for other, ws in words.items() if other != name for w in ws} for name, own in words.items()}


# where a row names its model: before the first ":", "=" or " |" of a printed line, the first cell of a table's row
LEADING_NAME = re.compile(r"^\s*\|([^|]*)\||^([^:=|]{1,60})(?:[:=]|\s\|)")


def _labelled(text: str, labels: dict[str, str]) -> tuple[str | None, int]:
    """(model, where its name ends) of a line whose leading name holds one run's label as whole words
    (">>> augmentation: test accuracy", "| **data augmentation** | 99.4 % |"), the longest label winning;
    (None, 0) when none does, or two labels of the same length do."""
    leading = LEADING_NAME.match(text)
    if leading is None or not labels:
        return None, 0
    name = leading.group(1) if leading.group(1) is not None else leading.group(2)
    found = [
        (len(label), model) for model, label in labels.items() if label and re.search(rf"\b{re.escape(label)}\b", name)
    ]
    found.sort(reverse=True)
    if not found or (len(found) > 1 and found[0][0] == found[1][0]):
        return None, 0
    return found[0][1], leading.end()


NOT_FINAL_TEST = re.compile(r"validation|\bval\b|val_acc|epoque|epoch")
ROBUSTNESS_WORDS = re.compile(
    r"bruit|nois|rotat|tourn|perturb|robust|decal|shift|alter|corrupt|fragil|resist|degrad|sigma|σ"
)


def self_contradictions(
    ingest: IngestResult, passages: list[Passage], tolerance_pp: float, reported: list[Reported] | None = None
) -> list[tuple[Reported, Reported]]:
    """(quoted, printed) for each model whose accuracies in the text all differ by more than `tolerance_pp`
    points from the last one the student's own run printed for it (their saved outputs): the report's
    numbers are not the work's. Sentences about robustness, validation, training or one epoch quote other
    accuracies and are left out; `tolerance_pp` 0 finds none. `reported`: the run's printed accuracies when
    already read (:func:`reported_accuracies`)."""
    if not tolerance_pp:
        return []
    printed = {r.model: r for r in (reported_accuracies(ingest) if reported is None else reported)}  # the saved run
    quoted: dict[str, list[Reported]] = {}
    for q in quoted_accuracies(passages, ingest.factories, ingest.own_names, improved_labels(ingest)):
        text = plain(q.text)
        # robustness quotes other accuracies; a validation, training or per-epoch figure is not the test's
        if not (ROBUSTNESS_WORDS.search(text) or NOT_TEST_ACCURACY.search(text) or NOT_FINAL_TEST.search(text)):
            quoted.setdefault(q.model, []).append(q)
    return [
        (quoted[model][0], own)
        for model, own in printed.items()
        if quoted.get(model) and all(100 * abs(q.accuracy - own.accuracy) > tolerance_pp for q in quoted[model])
    ]


# "our final model", "le meilleur modèle", "the chosen network": the model a report presents as its result
RESULT_MODEL = re.compile(
    r"\b(?:final|best|chosen|selected|our|my|meilleure?|notre|mon)\s+(?:\w+\s+)?(?:models?|modeles?|reseau|network|cnn)\b"
    r"|\b(?:modele|reseau|model) (?:final|retenu|choisi)\b"
)


def inflated_results(
    ingest: IngestResult, passages: list[Passage], tolerance_pp: float
) -> list[tuple[Reported, Reported]]:
    """(quoted, printed) where the text gives the model it presents as its result ("our final model reaches
    99.6 %") an accuracy above every test accuracy the student's own run printed (saved outputs, at least
    two) by more than `tolerance_pp` points: a result the work does not show, whatever the model is
    called. Robustness sentences are left out; `tolerance_pp` 0 finds none."""
    if not tolerance_pp:
        return []
    printed = [
        Reported("", float(m.group(1).replace(",", ".")) / 100, cell, raw.strip()[:120])
        for cell, output in printed_outputs(ingest)
        for raw in output.splitlines()
        if not SKIP_LINE.search(raw)
        for m in PERCENT.finditer(raw)
        if 50 <= float(m.group(1).replace(",", ".")) <= 100
    ]
    if len(printed) < 2:
        return []
    best = max(printed, key=lambda r: r.accuracy)
    found = []
    for passage in passages:
        for sentence in sentences(passage):
            text = plain(sentence)
            claim = RESULT_MODEL.search(text)
            if claim is None or ROBUSTNESS_WORDS.search(text):
                continue
            quoted = [float(m.group(1).replace(",", ".")) for m in PERCENT.finditer(text[claim.end() :])]
            quoted = [q / 100 for q in quoted if 50 <= q <= 100]
            if quoted and 100 * (max(quoted) - best.accuracy) > tolerance_pp:
                found.append((Reported("", max(quoted), passage.cell, sentence.strip()[:120]), best))
    return found


DECIMAL_PERCENT = re.compile(r"(?<![\d.,])(\d{2}[.,]\d+) ?%")


ERROR_WORDS = r"(?:erreurs?|errors?|mistakes?|fautes|images? mal class\w*)"
# "10 erreurs sur 10 000", "20 errors out of 10,000": a count of errors against the test set's size
ERRORS_OUT_OF = re.compile(
    rf"(?<![\d.,])(\d{{1,4}}) {ERROR_WORDS} (?:sur|on|out of|of|pour) (?:les )?(\d{{1,3}}(?:[ ,.\u202f]?\d{{3}})?)\b"
)
# "only 20 errors", "ne fait plus que 12 erreurs": the model's whole count, said as small; not a part
# of it ("only 12 errors on the 4/9 pair", "que 3 erreurs sur les images tournées", "only 11 errors are
# fixed by both")
ONLY_ERRORS = re.compile(
    rf"\b(?:only|just|seulement|ne fait (?:plus )?que|n'a (?:plus )?que|plus que) "
    rf"(?:about |around |roughly |environ |a peine |~ ?)?(\d{{1,4}}) {ERROR_WORDS}\b"
    r"(?! (?:on|sur|for|pour|in|dans|among|parmi|entre|between|with|avec) (?:the |les |le |la |l'|des |a |an |un |une )?"
    r"(?:\d|digits?|chiffres?|pairs?|paires?|class|confus|rotat|nois|brui|tourn|images? (?:tourn|bruit|rotat|nois)))"
    # ... nor the errors one change fixed or two models share ("only 11 errors are fixed by both")
    r"(?! (?:(?:are|were|sont|ont ete) )?(?:fixed|corrected|corrigee?s?|removed|supprimee?s?|in common|en commun|shared"
    r"|partagee?s?|common|communes?))"
)
TEST_IMAGES = 10_000  # MNIST's test set: what a student's own count of errors is out of
# how many images of each digit, 0 to 9, the test set holds: "3 erreurs sur 1135" is said of the 1s
DIGIT_TEST_IMAGES = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}


NOT_TEST_ACCURACY = re.compile(
    r"rappel|recall|\bf1\b|par classe|per class|\bclasse? \d|\bdigit \d|\bchiffre \d"
    # a training figure, not the time it took ("test accuracy 98.71 % (training time 131 s)")
    r"|train(?!\w*\s+(?:time|duration))|(?<!temps d.)(?<!duree d.)entrainement"
    # the accuracy on the predictions a confidence threshold keeps (the rest sent to a person)
    r"|confian|confiden|seuil|threshold|accept|couverture|coverage|review|relecture|humain|human"
)


def headed(passages: list[Passage]) -> list[str]:
    """Each passage's text; a table row's cells each led by its column's header ("train acc (last epoch):
    99.71 %"), so that a number is read with what its column says it is. A table's first row (of a run of
    rows in one cell) is its header."""
    out: list[str] = []
    header: list[str] = []
    for index, passage in enumerate(passages):
        text = passage.text.strip()
        if not text.startswith("|") or _opens_table(passages, index):
            header = _row_cells(text) if text.startswith("|") else []
            out.append(passage.text)
            continue
        cells = _row_cells(text)
        if all(re.fullmatch(r":?-+:?", c) for c in cells if c):
            out.append(passage.text)  # the header's rule
            continue
        labels = header + [""] * max(0, len(cells) - len(header))
        out.append("| " + " | ".join(f"{h}: {c}" if h and c else c for h, c in zip(labels, cells, strict=False)) + " |")
    return out


def _row_cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def _opens_table(passages: list[Passage], index: int) -> bool:
    """Whether the passage at `index`, a table row, is its table's first (header) row: the row before it, if
    any, is not a row of the same cell."""
    previous = passages[index - 1] if index else None
    return not (previous and previous.cell == passages[index].cell and previous.text.strip().startswith("|"))


def implausible(text: str, ceiling: float) -> str | None:
    """An accuracy no model of the assignment reaches on MNIST's test set, quoted by the text: a
    percentage with decimals above `ceiling` (a share, 0.997) and below 100 % ("99,9 %"), or a count of
    errors that small ("10 erreurs sur 10 000", "only 20 errors"); None when there is none. A
    percentage or a count said of one class (a recall, "classe 1", "3 erreurs sur 1135": the test
    set's 1s), of the training set, or of the predictions a confidence threshold keeps, is not a test
    accuracy. A table row is read cell by cell
    (each led by its column's header: :func:`headed`)."""
    if text.lstrip().startswith("|"):
        return next((found for cell in _row_cells(text) if (found := implausible(cell, ceiling))), None)
    text = plain(text)

    def of_the_test_set(match: re.Match) -> bool:
        # what the number is said of: its sentence, up to 120 characters before it and 30 after
        start = max(0, match.start() - 120)
        ends = [m.end() for m in re.finditer(r"[.!?;](?:\s|$)", text[start : match.start()])]
        return not NOT_TEST_ACCURACY.search(text[start + (ends[-1] if ends else 0) : match.end() + 30])

    for match in DECIMAL_PERCENT.finditer(text):
        if ceiling * 100 < float(match.group(1).replace(",", ".")) < 100 and of_the_test_set(match):
            return match.group(0)
    for match in ERRORS_OUT_OF.finditer(text):
        total = int(re.sub(r"\D", "", match.group(2)))
        few = int(match.group(1)) < (1 - ceiling) * total
        if few and total >= 1000 and total not in DIGIT_TEST_IMAGES and of_the_test_set(match):
            return match.group(0)
    for match in ONLY_ERRORS.finditer(text):
        if int(match.group(1)) < (1 - ceiling) * TEST_IMAGES and of_the_test_set(match):
            return match.group(0)
    return None


# --------------------------------------------------------------------------- vocabulary matching


def matches_any(patterns: list[str], text: str) -> str | None:
    """The first pattern's matched text in plain `text`, or None."""
    for pattern in patterns:
        match = re.search(pattern, text)
        if match:
            return match.group(0)
    return None
