"""Model fingerprints and error overlap: same design, same predictions, errors beyond the class's usual."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import model_result

from harness.config.similarity import ModelSettings
from harness.similarity.models import architecture_hash, error_overlaps, identical, model_print

HANDOUT = {"layers": "Conv2D:32 MaxPooling2D Flatten Dense:10", "optimizer": "Adam", "learning_rate": 0.001}
OTHER = {"layers": "Conv2D:64 Dropout:0.3 Flatten Dense:10", "optimizer": "Nadam", "learning_rate": 0.001}


def _print(entry: dict, errors: list[int], n: int = 1000, name: str = "create_improved_model_1"):
    found = model_print(
        model_result(name, "improved", entry),
        name,
        None,
        None,
        architecture_hash(model_result("r", "reference", HANDOUT)),
    )
    return found.model_copy(update={"n": n, "errors": sorted(errors), "predictions_sha256": str(sorted(errors))})


def test_the_handouts_model_is_never_evidence():
    a, b = _print(HANDOUT, [1, 2]), _print(HANDOUT, [1, 2])
    assert a.handout and identical(a, b, {a.design: 2}, common=6) is None


def test_a_shared_design_is_a_match_unless_common():
    a, b = _print(OTHER, [1, 2]), _print(OTHER, [3, 4])
    assert identical(a, b, {a.design: 2}, common=6).kind == "same_design"
    assert identical(a, b, {a.design: 6}, common=6) is None


def test_identical_predictions_are_a_match():
    a, b = _print(OTHER, [5, 6]), _print({**OTHER, "optimizer": "Adam"}, [5, 6])
    assert identical(a, b, {}, common=6).kind == "same_predictions"


def test_errors_beyond_the_class_usual_are_flagged_and_the_usual_is_not():
    rng = np.random.default_rng(3)
    hard = list(range(40))  # images every model tends to miss
    prints = []
    for student in range(12):
        errors = set(rng.choice(hard, 12, replace=False)) | set(rng.choice(range(40, 1000), 18, replace=False))
        prints.append(
            (f"s{student}", _print({**OTHER, "learning_rate": 0.001 * (student + 1)}, [int(e) for e in errors]))
        )
    copied = set(prints[0][1].errors[:26]) | set(rng.choice(range(40, 1000), 4, replace=False))
    prints.append(("copy", _print({**OTHER, "learning_rate": 0.5}, [int(e) for e in copied])))
    found = error_overlaps(prints, ModelSettings())
    assert [(a, b) for a, b, _ in found] == [("s0", "copy")]
    match = found[0][2]
    assert (
        match.kind == "error_overlap" and match.excess >= 2 and match.p_class < 0.001 and match.ratio_independent > 10
    )


def test_a_settings_file_overrides_only_its_own_keys(tmp_path):
    from harness.config.similarity import load_similarity_config

    path = tmp_path / "s.toml"
    path.write_text("[code]\nmin_containment = 0.7\n", encoding="utf-8")
    config = load_similarity_config(path)
    assert config.code.min_containment == 0.7 and config.code.k == 12 and config.lexicon
    path.write_text("[code]\nmin_containement = 0.7\n", encoding="utf-8")
    with pytest.raises(ValueError, match="min_containement"):
        load_similarity_config(path)
