"""Similarity stage: copied code (the handout aside), copied reports, identical models, across a class.

Runs after a class is graded, from stored results only (``harness similarity OUT``; also at the end of
``harness grade`` and ``harness report``). It flags pairs for the instructor to look at and never changes
a grade. See docs/similarity.md.
"""

from harness.similarity.records import SIMILARITY_FILE, SIMILARITY_PAGE, SimilarityResult, SubmissionPrint
from harness.similarity.stage import compare_class, fingerprint

__all__ = ["SIMILARITY_FILE", "SIMILARITY_PAGE", "SimilarityResult", "SubmissionPrint", "compare_class", "fingerprint"]
