"""The similarity stage's settings, read once from ``reference/similarity.toml`` (docs/similarity.md).

Each setting's default lives in the pydantic model; a key the file does not know is an error, so a
misspelt threshold stops the run instead of being ignored.

>>> load_similarity_config().code.min_containment
0.5
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from harness.resources import bundled


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeSettings(_Strict):
    """Winnowing of the code's normalised tokens, and when a pair's shared code is flagged."""

    k: int = Field(12, ge=2)
    window: int = Field(8, ge=1)
    min_shared: int = 8
    min_containment: float = 0.5


class ReportSettings(_Strict):
    """Word shingles of the report, the cross-language concept shingles, and their thresholds."""

    k: int = Field(5, ge=1)
    min_shared: int = 8
    min_containment: float = 0.4
    concept_k: int = Field(4, ge=1)
    concept_min_shared: int = 6
    concept_min_containment: float = 0.5


class ModelSettings(_Strict):
    """When two models are the same design, and when their test errors overlap beyond the class's usual."""

    common_share: float = 0.3
    min_excess: float = 2.0
    alpha: float = 0.001
    min_errors: int = 10


class ClassSettings(_Strict):
    """What is common in a class, when candidate pairs come from LSH, and how the signals combine."""

    common_share: float = 0.3
    common_min: int = 6
    lsh_above: int = 1000
    lsh_threshold: float = 0.2
    lsh_permutations: int = 128
    weights: dict[str, float] = {"code": 1.0, "report": 0.8, "model": 0.9}
    shown_unflagged: int = 10
    detailed: int = 100

    def common_count(self, submissions: int) -> int:
        """How many submissions a fingerprint must be found in to be common (boilerplate, not evidence)."""
        return max(self.common_min, int(self.common_share * submissions + 0.999))


class SimilarityConfig(_Strict):
    """Every setting of ``reference/similarity.toml``, the lexicon, and the file's sha256."""

    code: CodeSettings = CodeSettings()
    report: ReportSettings = ReportSettings()
    model: ModelSettings = ModelSettings()
    class_: ClassSettings = Field(ClassSettings(), alias="class")
    lexicon: dict[str, list[str]] = {}
    sha256: str = ""

    def concepts(self) -> dict[str, str]:
        """Word (lower case, no accents, no plural s) -> its concept, from the lexicon."""
        return {word: concept for concept, words in self.lexicon.items() for word in words}


def _merged(base: dict, over: dict) -> dict:
    return {
        **base,
        **{
            k: _merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
            for k, v in over.items()
        },
    }


def load_similarity_config(path: str | os.PathLike | None = None) -> SimilarityConfig:
    """Read and check the similarity settings: the bundled ``reference/similarity.toml``, with the keys of
    `path` (an instructor's file) over it, so that a file of two thresholds keeps the lexicon and the rest."""
    bundled_file = bundled("reference", "similarity.toml")
    raw = bundled_file.read_bytes()
    values = tomllib.loads(raw.decode("utf-8"))
    if path is not None:
        raw = Path(path).read_bytes()
        values = _merged(values, tomllib.loads(raw.decode("utf-8")))
    try:
        return SimilarityConfig.model_validate({**values, "sha256": hashlib.sha256(raw).hexdigest()})
    except ValueError as error:
        raise ValueError(f"{path or bundled_file}: {error}") from error
