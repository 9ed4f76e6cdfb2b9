"""The ``harness`` command line: argparse only, one small function per subcommand.

Each subcommand's work is in :mod:`harness.commands` (``grade``, ``check``, ``demo``, ``score``, ``calibrate``,
``report``, ``similarity``, ``schema``), imported only once its options parsed: the pipeline imports TensorFlow, which takes
seconds, and ``harness --help`` or a bad option should answer at once.

Exit codes: 0 every submission graded; 1 at least one submission failed or was unreadable;
2 the run itself could not start (bad option, data unavailable, ``grade`` without a working bubblewrap and
without ``--no-sandbox``). ``grade --ci``: 0 every
submission as expected (and above ``--min-score``), 1 otherwise (harness/report/ci.py). ``check``: 0 the
submission will be gradable, 1 it will not (the reasons are printed). ``demo``: 0 every student of the
demo class ended with its expected status, 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from harness import __version__
from harness.config.environment import DATA_ENV
from harness.errors import CannotStart, DataUnavailable

EXIT_CANNOT_START = 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lang", choices=["fr", "en"], default="fr", help="language of reports and reasons (default fr)"
    )
    parser.add_argument("--rubric", type=Path, help="rubric TOML file (default: the bundled rubric/default.toml)")
    parser.add_argument(
        "--overrides",
        type=Path,
        help="instructor overrides (.toml or .csv): set or adjust any criterion of any student",
    )


def _notebooks(parser: argparse.ArgumentParser) -> None:
    """Options about notebooks: --execute, --factory-map, top-level model discovery."""
    group = parser.add_argument_group("notebooks")
    group.add_argument(
        "--execute",
        action="store_true",
        help="also run each notebook top to bottom in the sandbox (nbclient) and record failing cells "
        "and printed accuracies; grading does not depend on it",
    )
    group.add_argument(
        "--cell-timeout",
        type=float,
        default=None,
        metavar="S",
        help="--execute: time limit per cell, seconds (default 120)",
    )
    group.add_argument(
        "--execute-timeout",
        type=float,
        default=None,
        metavar="S",
        help="--execute: time limit for the whole notebook, seconds (default 600)",
    )
    group.add_argument(
        "--factory-map",
        action="append",
        default=[],
        metavar="NAME=FUNCTION|FILE.toml",
        help="grade a function named otherwise, e.g. create_improved_model_1=build_cnn (repeatable), "
        'or a TOML file with [all] and ["<student id>"] tables of such pairs',
    )
    group.add_argument(
        "--discover",
        choices=["auto", "never"],
        default="auto",
        help="auto (default): a notebook without factory functions is run with Keras training "
        "intercepted to find the models it builds at top level; never: it is invalid",
    )


def _grade_parser(commands) -> None:
    grade = commands.add_parser("grade", help="grade submissions: ingest, retrain, evaluate, score, report")
    grade.add_argument("paths", nargs="+", type=Path, help="notebooks, modules, student folders or class folders")
    grade.add_argument("--out", type=Path, default=Path("grading"), help="output folder (default ./grading)")
    grade.add_argument("--profile", default="quick", help="full, quick or smoke (reference/protocol.toml)")
    grade.add_argument("--data", type=Path, help=f"local MNIST .npz (default: ${DATA_ENV}, else Keras's loader)")
    grade.add_argument("--seed", type=int, help="training seed (default: the protocol's)")
    grade.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="K",
        help="train every model and the reference on K seeds derived from --seed, and report the "
        "gain's mean ± std and 95%% confidence interval (default 1)",
    )
    grade.add_argument("--suite", type=Path, help="robustness suite TOML (default: reference/robustness_suite.toml)")
    grade.add_argument(
        "--workers",
        type=int,
        default=None,
        help="submissions graded at once, each worker on the protocol's threads: numbers never depend on it "
        "(default: the cores / the protocol's threads, as far as memory allows)",
    )
    grade.add_argument("--cache", type=Path, help="stage cache folder, shareable between runs (default OUT/.cache)")
    grade.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="local worker processes (default) or Ray tasks (pip install 'harness[ray]')",
    )
    grade.add_argument("--address", help="address of an existing Ray cluster (default: start a local Ray)")
    grade.add_argument("--gpus-per-task", type=float, help="GPU fraction per Ray task (default 0.25 when GPUs exist)")
    grade.add_argument("--no-cache", action="store_true", help="rerun every stage, ignoring cached results")
    grade.add_argument(
        "--keep-models",
        action="store_true",
        help="keep the trained .keras files in OUT and the cache (default: deleted once evaluated; reports and "
        "re-scoring read the stored predictions)",
    )
    grade.add_argument(
        "--no-reports",
        action="store_true",
        help="grades, exports and dashboard only, no student's report (faster: their figures are most of the "
        "grader's own work); 'harness report OUT' draws them later",
    )
    grade.add_argument("--protocol", type=Path, help="protocol TOML file (default: reference/protocol.toml)")
    limits = grade.add_argument_group("worker limits (defaults: the profile's [limits.*] in the protocol file)")
    limits.add_argument("--memory-mb", type=int, default=None, help="address space of each worker process, MiB")
    limits.add_argument("--resident-mb", type=int, default=None, help="resident memory of a whole worker, MiB (cgroup)")
    limits.add_argument(
        "--cpu-seconds", type=int, default=None, metavar="S", help="CPU time per worker thread, seconds"
    )
    limits.add_argument("--max-processes", type=int, default=None, help="processes + threads of a worker")
    limits.add_argument("--max-open-files", type=int, default=None, help="open files of a worker process")
    limits.add_argument("--max-output-mb", type=int, default=None, help="what a worker may write, MiB")
    sandbox = grade.add_mutually_exclusive_group()
    sandbox.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run student code in plain processes, without bubblewrap (no filesystem or network isolation); "
        "recorded in every result and on the dashboard. Without it, grade refuses to start (exit 2) where "
        "bubblewrap does not work",
    )
    sandbox.add_argument(
        "--require-sandbox", action="store_true", help="the default (kept for existing scripts): bubblewrap or exit 2"
    )
    _notebooks(grade)
    ci = grade.add_argument_group("continuous integration")
    ci.add_argument(
        "--ci",
        action="store_true",
        help="write OUT/ci/summary.json and OUT/ci/junit.xml (one test case per submission and model); "
        "exit 0 when every submission is as expected, 1 otherwise",
    )
    ci.add_argument(
        "--min-score", type=float, default=None, help="--ci: a submission expected ok must score at least this"
    )
    ci.add_argument(
        "--expect",
        type=Path,
        default=None,
        metavar="FILE.toml",
        help='--ci: expected status per student ([students] broken = "invalid"); others are expected ok',
    )
    _common(grade)
    grade.add_argument(
        "--only-these",
        action="store_true",
        help="grades.csv, the exports and the dashboard list only the submissions of this run "
        "(default: every student graded in OUT, this run's results updated)",
    )
    _wait(grade)
    _roster(grade)
    _assignment(grade)


def _check_parser(commands) -> None:
    check = commands.add_parser(
        "check",
        help="for students: check a notebook or module before submitting (about a minute)",
        description="Build, compile and briefly train every model (1,000 images, one epoch), detect the "
        "modification categories and the report's sections, print a checklist with a predicted "
        "range per rubric criterion, and write an HTML preview of the feedback report. Exit 0 when "
        "the submission will be gradable, 1 otherwise.",
    )
    check.add_argument("path", type=Path, help="the notebook (.ipynb), module (.py), folder or .zip to check")
    check.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the preview and the check's files (default: a folder in the system's "
        "temporary directory, reused between checks)",
    )
    check.add_argument(
        "--cache", type=Path, help="stage cache folder (default OUT/.cache): unchanged models are not retrained"
    )
    check.add_argument("--data", type=Path, help=f"local MNIST .npz (default: ${DATA_ENV}, else Keras's loader)")
    check.add_argument("--profile", default="check", help="protocol profile of the check (default check)")
    check.add_argument("--protocol", type=Path, help="protocol TOML file (default: reference/protocol.toml)")
    check.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run workers without bubblewrap even if present (without bubblewrap, check runs them as plain "
        "processes anyway: it is for one's own code)",
    )
    check.add_argument("--ascii", action="store_true", help="plain ASCII marks instead of ✓ ✗ (old Windows consoles)")
    _notebooks(check)
    _common(check)


def _demo_parser(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="grade the bundled demo class (7 students) into a fresh folder: the quickest way to see the harness",
        description="Grade the demo class shipped with the harness on the smoke profile and print where to open "
        "the dashboard. Sandboxed with bubblewrap when it works here; otherwise the demo's own (harmless) code "
        "runs in plain processes, as the console and every result say. Exit 0 when every student ends with "
        "its expected status (one notebook is unreadable on purpose).",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("harness-demo"),
        help="output folder (default ./harness-demo); an existing folder must be empty or a harness output",
    )
    demo.add_argument(
        "--profile", default="smoke", help="full, quick or smoke (default smoke: 1 epoch on 2,000 images)"
    )
    demo.add_argument("--data", type=Path, help=f"local MNIST .npz (default: ${DATA_ENV}, else Keras's loader)")
    demo.add_argument(
        "--workers",
        type=int,
        default=None,
        help="submissions graded at once (default: twice what the cores hold at the protocol's threads: "
        "the demo's short trainings leave cores idle; the grades never depend on it)",
    )
    demo.add_argument(
        "--lang", choices=["fr", "en"], default="fr", help="language of reports and messages (default fr)"
    )


def _score_parser(commands) -> None:
    score = commands.add_parser("score", help="re-score stored results (after a rubric change); trains nothing")
    score.add_argument("out", type=Path)
    _common(score)
    _wait(score)
    _roster(score)
    score.add_argument(
        "--no-reports",
        action="store_true",
        help="grades, exports and dashboard only, no student's report (a rubric tried on a whole class in "
        "seconds); 'harness report OUT' draws them later",
    )


def _calibrate_parser(commands) -> None:
    calibrate = commands.add_parser(
        "calibrate",
        help="compare the stored marks with an instructor's marks; propose a fitted rubric (never applied)",
        description="Agreement per criterion (share within ±0.5 point, mean absolute error, weighted kappa), "
        "the largest disagreements with the harness's evidence, and rubric parameters fitted to the marks "
        "with cross-validation, written to OUT/calibration/rubric-proposed.toml for `harness score --rubric`.",
    )
    calibrate.add_argument("out", type=Path)
    marks = calibrate.add_mutually_exclusive_group(required=True)
    marks.add_argument("--marks", type=Path, help="CSV: student, criterion, points[, comment][, low, high]")
    marks.add_argument(
        "--expectations",
        type=Path,
        metavar="FILE.toml",
        help="a labelled corpus's expected ranges (tests/fixtures/labelled/expectations.toml), as midpoint marks",
    )
    calibrate.add_argument("--half", choices=["tune", "heldout"], help="--expectations: only this half of the corpus")
    calibrate.add_argument("--folds", type=int, default=5, help="cross-validation folds over the students (default 5)")
    calibrate.add_argument("--no-fit", action="store_true", help="agreement only: propose no parameters")
    calibrate.add_argument("--lang", choices=["fr", "en"], default="fr")


def _report_parser(commands) -> None:
    report = commands.add_parser("report", help="re-render every report and the dashboard from stored results")
    report.add_argument("out", type=Path)
    report.add_argument("--lang", choices=["fr", "en"], default="fr")
    report.add_argument(
        "--screenshots",
        action="store_true",
        help="also open the dashboard and each report in headless Chromium: screenshots in "
        "OUT/screenshots/, console errors and broken images reported",
    )
    _wait(report)
    _roster(report)
    _assignment(report)


def _similarity_parser(commands) -> None:
    similarity = commands.add_parser(
        "similarity",
        help="compare a graded class's submissions (code, report, models) from stored results; trains nothing",
        description="Fingerprint every stored submission's code (the handout's removed), report and models, rank "
        "the pairs by a combined score and write OUT/similarity.json and OUT/similarity.html (linked from the "
        "dashboard). Thresholds: reference/similarity.toml. Never changes a grade.",
    )
    similarity.add_argument("out", type=Path)
    similarity.add_argument(
        "--against",
        type=Path,
        action="append",
        default=[],
        metavar="OTHER_OUT",
        help="also compare with an earlier class's stored fingerprints (its OUT/similarity.json; repeatable)",
    )
    similarity.add_argument(
        "--data", type=Path, help=f"MNIST .npz for the test labels (default: the graded run's, else ${DATA_ENV})"
    )
    similarity.add_argument("--settings", type=Path, help="thresholds TOML (default: reference/similarity.toml)")
    similarity.add_argument("--lang", choices=["fr", "en"], default="fr")
    _wait(similarity)


def _schema_parser(commands) -> None:
    commands.add_parser("schema", help="print the JSON Schema of result.json")


def _wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        action="store_true",
        help="when another grader is writing the output folder, wait for it to finish (default: exit 2 naming it)",
    )


def _roster(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--roster", type=Path, help="CSV mapping student ids to LMS identities for the Moodle and Canvas exports"
    )


def _assignment(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--assignment",
        help="the assignment's name in the LMS: Moodle's grade item, Canvas's column (kept in OUT/lms.toml; "
        'default "Mini-projet MNIST", or "MNIST mini-project" with --lang en)',
    )
    parser.add_argument(
        "--assignment-id",
        help='the assignment\'s Canvas id: the column is then "Name (id)" and Canvas updates that assignment '
        "instead of creating one (kept in OUT/lms.toml)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="harness", description="Grade MNIST course submissions by retraining every model."
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (
        _grade_parser,
        _check_parser,
        _demo_parser,
        _score_parser,
        _calibrate_parser,
        _report_parser,
        _similarity_parser,
        _schema_parser,
    ):
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, then run the command; a run that cannot start exits 2 with one line saying why."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow
    args = build_parser().parse_args(argv)
    try:
        command = importlib.import_module(f"harness.commands.{args.command}")  # after parsing: see the docstring
        return command.run(args)
    except DataUnavailable as error:
        print(f"harness: MNIST is not available: {error}", file=sys.stderr)
    except (ValueError, FileNotFoundError, CannotStart) as error:
        print(f"harness: {error}", file=sys.stderr)
    return EXIT_CANNOT_START


if __name__ == "__main__":
    sys.exit(main())
