"""The configuration layer: each course file parsed once, checked, defaults in one place."""

from __future__ import annotations

import pytest

from harness.config.analysis import AnalysisConfig, load_analysis_config
from harness.config.protocol import load_protocol
from harness.pipeline.session import missing_packages, profile_limits
from harness.resources import bundled


def test_the_bundled_analysis_file_gives_the_documented_settings():
    config = load_analysis_config()
    assert config.model_dump(exclude={"sha256"}) == AnalysisConfig().model_dump(exclude={"sha256"})
    assert len(config.sha256) == 64


def test_the_analysis_file_is_read_by_its_tables(tmp_path):
    path = tmp_path / "analysis.toml"
    path.write_text("[significance]\nalpha = 0.01\n[integrity.capacity]\nz = 4.5\n", encoding="utf-8")
    config = load_analysis_config(path)
    assert (config.alpha, config.integrity.capacity_z, config.integrity.z) == (0.01, 4.5, 3.0)


@pytest.mark.parametrize(
    "text, error",
    [
        ("[significance]\nalfa = 0.01\n", "unknown setting \\[significance\\] alfa"),
        ("[error_analysis]\ncalibration_bins = 'many'\n", "calibration_bins"),
    ],
)
def test_a_mistake_in_the_analysis_file_is_named(tmp_path, text, error):
    path = tmp_path / "analysis.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=error):
        load_analysis_config(path)


def test_the_protocol_carries_its_limits_read_once():
    protocol = load_protocol()
    assert protocol.limits_table("smoke")["memory_mb"] == profile_limits(protocol, "smoke").memory_mb
    assert bundled("reference", "protocol.toml").is_file()


def test_the_course_environment_names_packages_by_what_students_import(tmp_path):
    path = tmp_path / "protocol.toml"
    path.write_text('[environment]\npackages = ["scikit-learn", "pillow", "numpy", "no-such-package-xyz"]\n')
    protocol = load_protocol(path)
    assert protocol.environment.modules == ["sklearn", "PIL", "numpy", "no_such_package_xyz"]
    assert "no-such-package-xyz" in missing_packages(protocol) and "numpy" not in missing_packages(protocol)
    assert "scikit-learn" in load_protocol().environment.packages


@pytest.mark.parametrize(("value", "wanted"), [(None, True), ("1", True), ("0", False), ("off", False), ("No", False)])
def test_warm_training_workers_are_on_unless_the_environment_turns_them_off(monkeypatch, value, wanted):
    from harness.config.environment import WARM_WORKERS_ENV, warm_workers_wanted  # only this test reads it

    if value is None:
        monkeypatch.delenv(WARM_WORKERS_ENV, raising=False)
    else:
        monkeypatch.setenv(WARM_WORKERS_ENV, value)
    assert warm_workers_wanted() is wanted
