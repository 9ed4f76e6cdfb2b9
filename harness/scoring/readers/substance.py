"""What the student's analysis says, sentence by sentence: the substance the rubric looks for.

A *marker* (error patterns named, robustness discussed with numbers, models compared, causes
proposed, limits and next steps) is a list of pattern groups: a sentence shows the marker when
every group has a match in it (patterns are matched on lower-case text without accents, French
and English). The sentence that earned a marker is kept, with its cell and line, so each point
shows where it came from. Sentences in the sections that describe the work rather than analyse
it (by default the introduction, the baseline and the improvements, when found by a heading)
are left out: a justification of a change is not an analysis of the results.

>>> earned({"x": [["erreur"], ["\\\\b\\\\d\\\\b"]]}, [Passage("Le modèle fait des erreurs sur le 9.", 3, 1)], lambda p: True)
{'x': Passage(text='Le modèle fait des erreurs sur le 9.', cell=3, line=1)}
"""

from __future__ import annotations

import re
from collections.abc import Callable

from harness.scoring.readers.text import Passage, plain, sentences

# a markdown heading ("### 6.3 Robustesse", "## Limites"): it names a topic and says nothing of it (its
# section number is no measure either); the sentences under it say what the analysis says
HEADING = re.compile(r"^\s*#{1,6}\s")


def shows(groups: list[list[str]], sentence: str) -> bool:
    """Whether one sentence (plain text) has a match for every group of patterns."""
    return all(any(re.search(pattern, sentence) for pattern in group) for group in groups)


def earned(
    markers: dict[str, list[list[str]]],
    passages: list[Passage],
    keep: Callable[[Passage], bool],
    keep_sentence: Callable[[str], bool] = lambda sentence: True,
    grounds: Callable[[str, str], bool] = lambda name, sentence: True,
) -> dict[str, Passage]:
    """Marker name -> the first sentence (as a passage at its passage's place, among those
    `keep_sentence` keeps) that shows it and that `grounds` (name, plain sentence) holds for, or else
    the first that shows it: a list's label ("Confusions dominantes :") names the topic, its items
    ("4 <-> 9 : 16 erreurs") observe it."""
    found: dict[str, Passage] = {}
    settled: set[str] = set()
    for passage in passages:
        if not keep(passage):
            continue
        for sentence in sentences(passage):
            if HEADING.match(sentence) or not keep_sentence(sentence):
                continue
            text = plain(sentence)
            for name, groups in markers.items():
                if name in settled or not shows(groups, text):
                    continue
                grounded = grounds(name, text)
                if name not in found or grounded:
                    found[name] = Passage(sentence.strip(), passage.cell, passage.line)
                if grounded:
                    settled.add(name)
    return found
