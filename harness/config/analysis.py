"""The analysis stage's settings, read once from ``reference/analysis.toml``.

The file groups its keys by topic (``[error_analysis]``, ``[significance]``,
``[integrity.test_above_validation]``, ``[integrity.capacity]``, ``[measurement.*]``); the code reads them flat. Each
setting's default lives in the pydantic model alone; a key the file does not know is an error.

>>> load_analysis_config().alpha
0.05
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.resources import bundled


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntegritySettings(_Strict):
    """Thresholds of the integrity flags (``[integrity.*]``): test accuracy above validation, capacity,
    the invariance probe and the private check set (with how that set is made)."""

    min_tolerance: float = 0.005
    z: float = 3.0
    ceiling: float = 0.998
    max_params_ratio: float = 0.1
    max_epochs_ratio: float = 0.5
    min_gain: float = 0.01
    capacity_z: float = 3.0
    capacity_min_reference: float = 0.95
    invariance_min_drop: float = 0.005
    invariance_z: float = 4.0
    invariance_images: int = 2000
    private_images: int = 2000
    private_elastic_pixels: float = 0.75
    private_elastic_sigma: float = 4.0
    private_thicker: float = 0.5
    private_thickness: float = 0.5
    private_recentre_jitter: int = 0
    private_min_excess: float = 0.15
    private_z: float = 4.0


class MeasurementSettings(_Strict):
    """When a profile cannot measure a model (``[measurement.*]``): the collapse signature, unconverged statistics."""

    collapse_min_train_accuracy: float = 0.5
    collapse_min_gap: float = 0.4
    batchnorm_min_shift: float = 0.01
    still_learning_min_excess: float = 0.04


class AnalysisConfig(_Strict):
    """Bins, gallery sizes, significance level and integrity thresholds, with the file's sha256."""

    calibration_bins: int = 15
    confused_pairs: int = 5
    first_errors: int = 10
    confident_errors: int = 10
    alpha: float = 0.05
    confidence: float = 0.95
    integrity: IntegritySettings = IntegritySettings()
    measurement: MeasurementSettings = MeasurementSettings()
    sha256: str = ""


# (table, key) in the file → (group, field) in the model; group None: a field of AnalysisConfig itself
_FILE_LAYOUT = {
    ("error_analysis", "calibration_bins"): (None, "calibration_bins"),
    ("error_analysis", "confused_pairs"): (None, "confused_pairs"),
    ("error_analysis", "first_errors"): (None, "first_errors"),
    ("error_analysis", "confident_errors"): (None, "confident_errors"),
    ("significance", "alpha"): (None, "alpha"),
    ("significance", "confidence"): (None, "confidence"),
    ("integrity.test_above_validation", "min_tolerance"): ("integrity", "min_tolerance"),
    ("integrity.test_above_validation", "z"): ("integrity", "z"),
    ("integrity.test_above_validation", "ceiling"): ("integrity", "ceiling"),
    ("integrity.capacity", "max_params_ratio"): ("integrity", "max_params_ratio"),
    ("integrity.capacity", "max_epochs_ratio"): ("integrity", "max_epochs_ratio"),
    ("integrity.capacity", "min_gain"): ("integrity", "min_gain"),
    ("integrity.capacity", "z"): ("integrity", "capacity_z"),
    ("integrity.capacity", "min_reference_accuracy"): ("integrity", "capacity_min_reference"),
    ("integrity.invariance", "min_drop"): ("integrity", "invariance_min_drop"),
    ("integrity.invariance", "z"): ("integrity", "invariance_z"),
    ("integrity.invariance", "images"): ("integrity", "invariance_images"),
    ("integrity.private_set", "images"): ("integrity", "private_images"),
    ("integrity.private_set", "elastic_pixels"): ("integrity", "private_elastic_pixels"),
    ("integrity.private_set", "elastic_sigma"): ("integrity", "private_elastic_sigma"),
    ("integrity.private_set", "thicker"): ("integrity", "private_thicker"),
    ("integrity.private_set", "thickness"): ("integrity", "private_thickness"),
    ("integrity.private_set", "recentre_jitter"): ("integrity", "private_recentre_jitter"),
    ("integrity.private_set", "min_excess"): ("integrity", "private_min_excess"),
    ("integrity.private_set", "z"): ("integrity", "private_z"),
    ("measurement.collapse", "min_train_accuracy"): ("measurement", "collapse_min_train_accuracy"),
    ("measurement.collapse", "min_gap"): ("measurement", "collapse_min_gap"),
    ("measurement.batchnorm", "min_shift"): ("measurement", "batchnorm_min_shift"),
    ("measurement.still_learning", "min_excess"): ("measurement", "still_learning_min_excess"),
}


def _leaves(data: dict, prefix: str = "") -> list[tuple[str, str, object]]:
    """(table, key, value) of every non-table value, tables named with dots."""
    found = []
    for key, value in data.items():
        if isinstance(value, dict):
            found += _leaves(value, f"{prefix}.{key}" if prefix else key)
        else:
            found.append((prefix, key, value))
    return found


def load_analysis_config(path: str | os.PathLike | None = None) -> AnalysisConfig:
    """Read and check the analysis settings (default: the bundled ``reference/analysis.toml``)."""
    path = Path(path) if path is not None else bundled("reference", "analysis.toml")
    raw = path.read_bytes()
    values: dict = {"integrity": {}, "measurement": {}}
    for table, key, value in _leaves(tomllib.loads(raw.decode("utf-8"))):
        if (table, key) not in _FILE_LAYOUT:
            raise ValueError(f"{path}: unknown setting [{table}] {key}")
        group, name = _FILE_LAYOUT[table, key]
        (values[group] if group else values)[name] = value
    return AnalysisConfig.model_validate({**values, "sha256": hashlib.sha256(raw).hexdigest()})
