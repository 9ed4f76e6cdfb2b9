"""``harness demo``: the bundled demo class (realistic students only), graded into a fresh folder, sandboxed
where bubblewrap works and said to run unsandboxed where it does not; never into someone's folder.

The demo's real run is the README's first command, which CI runs as written (.ci/run)."""

from __future__ import annotations

import importlib
import os
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from conftest import REPO, SAMPLES

from harness.cli import build_parser, main
from harness.errors import CannotStart
from harness.pipeline import BatchSummary
from harness.pipeline.demo import DemoOptions, check_output_folder, demo, demo_students
from harness.pipeline.session import default_workers
from harness.util.i18n import Translator

EN = Translator("en")
# the module (harness.pipeline.demo the attribute is the function, as harness.pipeline exports it)
demo_module = importlib.import_module("harness.pipeline.demo")


class Stop(Exception):
    """Raised by the fake grade: the test has what it wanted to see."""


@pytest.fixture
def graded_options(monkeypatch) -> list:
    """The GradeOptions the demo hands to the pipeline, which is stopped there (nothing is trained)."""
    seen = []

    def fake_grade(options):
        seen.append(options)
        raise Stop

    monkeypatch.setattr(demo_module, "grade", fake_grade)
    return seen


def test_the_demo_class_is_realistic_students_only():
    students = [p.name for p in demo_students()]
    assert 5 <= len(students) <= 7, students
    assert not any(name.startswith("adv_") or name in ("adversarial", "labelled", "not_json") for name in students)
    assert "expected.toml" not in students and "README.md" not in students


def test_an_installed_harness_carries_the_demo_class():
    """`pip install .` then `harness demo` (the README's first command): every file of the demo class is
    package data of harness.submissions."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert setuptools["package-dir"]["harness.submissions"] == "submissions"
    patterns = setuptools["package-data"]["harness.submissions"]
    files = [p.relative_to(SAMPLES).as_posix() for p in SAMPLES.rglob("*") if p.is_file()]
    assert files and all(any(fnmatch(f, pattern) for pattern in patterns) for f in files), files


@pytest.mark.parametrize("sandboxed", [True, False], ids=["bubblewrap", "no-bubblewrap"])
def test_the_demo_runs_with_or_without_bubblewrap_and_says_which(monkeypatch, tmp_path, graded_options, sandboxed):
    monkeypatch.setattr(demo_module, "bubblewrap_available", lambda: sandboxed)
    said = []
    with pytest.raises(Stop):
        demo(DemoOptions(out=tmp_path / "demo", language="en", log=said.append))
    options = graded_options[0]
    assert options.profile == "smoke" and options.use_bubblewrap is sandboxed
    assert options.unsandboxed_because == "harness demo"
    assert sorted(options.paths) == demo_students()
    assert (EN("demo_no_sandbox") in said) is not sandboxed
    assert options.workers == 2 * default_workers()  # the demo's short trainings leave cores idle at one per core


def test_the_demo_never_writes_into_someone_elses_folder(tmp_path, graded_options, capsys):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("mine", encoding="utf-8")
    assert main(["demo", "--out", str(theirs), "--lang", "en"]) == 2
    assert "is not a harness output folder" in capsys.readouterr().err
    assert graded_options == [] and [p.name for p in theirs.iterdir()] == ["thesis.tex"]
    file = tmp_path / "a-file"
    file.write_text("x", encoding="utf-8")
    with pytest.raises(CannotStart):
        check_output_folder(file, EN)


def test_the_demo_grades_into_a_new_an_empty_or_its_own_earlier_folder(tmp_path):
    check_output_folder(tmp_path / "new", EN)
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty", EN)
    earlier = tmp_path / "earlier"
    (earlier / "_reference").mkdir(parents=True)
    (earlier / "index.html").write_text("", encoding="utf-8")
    check_output_folder(earlier, EN)  # a second demo reuses its cache


def test_demo_defaults_are_the_smoke_profile_into_harness_demo():
    args = build_parser().parse_args(["demo"])
    assert args.profile == "smoke" and args.out == Path("harness-demo") and args.lang == "fr"


@pytest.mark.parametrize("drawn", [True, False], ids=["dashboard", "no-dashboard"])
def test_the_demo_fails_when_its_dashboard_was_not_drawn(monkeypatch, tmp_path, drawn):
    """A page that cannot be drawn is a warning in `harness grade`; the demo's point is the dashboard."""
    out = tmp_path / "demo"
    (out / "_reference").mkdir(parents=True)
    (out / "index.html").write_text("an earlier run's", encoding="utf-8")
    os.utime(out / "index.html", (0, 0))

    def fake_grade(options):
        if drawn:
            (out / "index.html").write_text("this run's", encoding="utf-8")
        return BatchSummary(results=[], reference=None, seconds=1.0)

    monkeypatch.setattr(demo_module, "grade", fake_grade)
    summary = demo(DemoOptions(out=out, log=lambda _: None))
    assert summary.exit_code == (0 if drawn else 1)
    assert ("index.html" in summary.unexpected) is not drawn
