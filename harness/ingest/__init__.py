"""Ingest stage: find submissions (:mod:`~harness.ingest.paths`), read their code statically
(:mod:`~harness.ingest.read`); for notebooks without factories, find the models they build by
running them (:mod:`~harness.ingest.discovery`); optionally run them top to bottom
(:mod:`~harness.ingest.execution`). The last two start workers of :mod:`harness.workers`.
"""

from harness.ingest.paths import assign_ids, discover, main_file_path, student_id
from harness.ingest.read import ingest_path, needs_discovery, submission_sha256

__all__ = [
    "assign_ids",
    "discover",
    "ingest_path",
    "main_file_path",
    "needs_discovery",
    "student_id",
    "submission_sha256",
]
