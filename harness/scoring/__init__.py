"""The rubric, scored from evidence: each criterion by its rule, every point with its reason."""

from harness.scoring.engine import failed_score, score_result
from harness.scoring.rubric import Rubric, load_rubric

__all__ = ["Rubric", "failed_score", "load_rubric", "score_result"]
