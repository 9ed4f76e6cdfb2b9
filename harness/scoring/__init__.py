"""The rubric, scored from evidence: each criterion by its rule, every point with its reason."""
from harness.scoring.engine import Rubric, failed_score, load_rubric, score_result

__all__ = ["Rubric", "failed_score", "load_rubric", "score_result"]
