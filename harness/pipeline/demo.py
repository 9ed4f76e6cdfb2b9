"""``harness demo``: the bundled demo class graded into a fresh folder, on any machine.

The demo class (``submissions/``, installed as ``harness/submissions``) holds only realistic
students, code shipped with the harness and read by its authors. So, unlike ``harness grade``,
which refuses students' code without a sandbox, the demo runs it in plain processes where
bubblewrap does not work, says so on the console and records it in every result
(``run.sandbox``) and on the dashboard. The run passes (exit 0) when every student ends with the
status ``submissions/expected.toml`` gives it: the unreadable notebook is unreadable on purpose.

>>> summary = demo(DemoOptions(out=Path("harness-demo")))  # doctest: +SKIP
>>> summary.exit_code                                        # doctest: +SKIP
0
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import CannotStart
from harness.pipeline.batch import BatchSummary, grade
from harness.pipeline.session import GradeOptions, default_workers
from harness.report.ci import Expectation, judge, load_expectations
from harness.resources import bundled
from harness.sandbox import bubblewrap_available
from harness.util.i18n import Translator

DEMO_CLASS = "submissions"
# What only a harness output folder holds: a folder with one of them may be graded into again (the cache
# makes a second demo quick); any other non-empty folder is someone's files, never overwritten.
OUTPUT_MARKERS = ("class.json", "_reference", ".work", ".cache")


@dataclass(frozen=True)
class DemoOptions:
    """``harness demo``'s options: where, which profile, which data, which language."""

    out: Path = Path("harness-demo")
    profile: str = "smoke"
    data: Path | None = None
    language: str = "fr"
    workers: int | None = None
    log: Callable[[str], None] = print


@dataclass
class DemoSummary:
    """The demo's grading, where its dashboard is, and what did not end as expected (students, the dashboard),
    with why."""

    batch: BatchSummary
    dashboard: Path
    sandboxed: bool
    unexpected: dict[str, list[str]]

    @property
    def exit_code(self) -> int:
        """0 when every student ended with its expected status, else 1."""
        return 0 if not self.unexpected else 1


# The demo's smoke profile trains each model for a second or two: most of its time goes to single-threaded
# steps (the interpreter and TensorFlow starting in each sandboxed worker, ingest, analysis, the report),
# so two submissions at once keep the cores busy where one leaves them half idle. Measured on 2 cores, cold
# caches (docs/benchmarks.md#harness-demo): 244 s with one worker, 193 s with two, 201 s with three; the
# grades identical (the threads per training are the protocol's, whatever the workers).
DEMO_OVERSUBSCRIPTION = 2


def demo_workers() -> int:
    """Submissions graded at once by default: twice what the cores hold at the protocol's threads."""
    return DEMO_OVERSUBSCRIPTION * default_workers()


def demo_students() -> list[Path]:
    """The demo class's submissions, one path per student: notebooks, modules and student folders (not the
    ``__pycache__`` that installing the package leaves beside ``module_student.py``)."""
    return sorted(
        p
        for p in bundled(DEMO_CLASS).iterdir()
        if p.suffix in (".ipynb", ".py") or (p.is_dir() and not p.name.startswith(("_", ".")))
    )


def check_output_folder(out: Path, t: Translator) -> None:
    """Refuse a folder that exists with someone's files in it: the demo writes reports and a cache there."""
    if not out.exists():
        return
    ours = out.is_dir() and (not any(out.iterdir()) or any((out / m).exists() for m in OUTPUT_MARKERS))
    if not ours:
        raise CannotStart(t("demo_refuse_folder", path=out))


def demo(options: DemoOptions) -> DemoSummary:
    """Grade the demo class into ``options.out``; sandboxed when bubblewrap works, in plain processes otherwise."""
    t = Translator(options.language)
    out = options.out.resolve()
    check_output_folder(out, t)
    sandboxed = bubblewrap_available()
    if not sandboxed:
        options.log(t("demo_no_sandbox"))
    students = demo_students()
    started = time.time()
    options.log(t("demo_start", n=len(students), source=bundled(DEMO_CLASS), profile=options.profile, out=out))
    batch = grade(
        GradeOptions(
            paths=students,
            out=out,
            profile=options.profile,
            data=options.data,
            language=options.language,
            workers=options.workers or demo_workers(),
            use_bubblewrap=sandboxed,
            unsandboxed_because="harness demo",
            log=options.log,
        )
    )
    expected = load_expectations(bundled(DEMO_CLASS, "expected.toml"))
    judged = {r.student: judge(r, expected.get(r.student, Expectation()), None) for r in batch.results}
    unexpected = {student: problems for student, problems in judged.items() if problems}
    dashboard = out / "index.html"
    if not dashboard.exists() or dashboard.stat().st_mtime < started:  # a page that failed keeps the old one
        unexpected[dashboard.name] = ["not drawn (the warnings above say why)"]
    return DemoSummary(batch, dashboard, sandboxed, unexpected)
