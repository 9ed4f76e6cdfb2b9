"""The ``harness`` command: ``grade``, ``score``, ``report``, ``schema``.

Exit codes: 0 every submission graded; 1 at least one submission failed or was unreadable;
2 the run itself could not start (bad option, data unavailable).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness import __version__
from harness.data import DATA_ENV, DataUnavailable


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lang", choices=["fr", "en"], default="fr", help="language of reports and reasons (default fr)")
    parser.add_argument("--rubric", type=Path, help="rubric TOML file (default: the bundled rubric/default.toml)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description="Grade MNIST course submissions by retraining every model.")
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    grade = commands.add_parser("grade", help="grade submissions: ingest, retrain, evaluate, score, report")
    grade.add_argument("paths", nargs="+", type=Path, help="notebooks, modules, student folders or class folders")
    grade.add_argument("--out", type=Path, default=Path("grading"), help="output folder (default ./grading)")
    grade.add_argument("--profile", default="quick", help="full, quick or smoke (reference/protocol.toml)")
    grade.add_argument("--data", type=Path, help=f"local MNIST .npz (default: ${DATA_ENV}, else Keras's loader)")
    grade.add_argument("--seed", type=int, help="training seed (default: the protocol's)")
    grade.add_argument("--workers", type=int, default=1, help="submissions graded at once (default 1)")
    grade.add_argument("--protocol", type=Path, help="protocol TOML file (default: reference/protocol.toml)")
    grade.add_argument("--memory-mb", type=int, default=None, help="address-space cap per worker in MiB")
    grade.add_argument("--no-sandbox", action="store_true", help="run workers without bubblewrap even if present")
    _common(grade)

    score = commands.add_parser("score", help="re-score stored results (after a rubric change); trains nothing")
    score.add_argument("out", type=Path)
    _common(score)

    report = commands.add_parser("report", help="re-render every report and the dashboard from stored results")
    report.add_argument("out", type=Path)
    report.add_argument("--lang", choices=["fr", "en"], default="fr")

    commands.add_parser("schema", help="print the JSON Schema of result.json")
    return parser


def _grade(args) -> int:
    from harness.grade import GradeOptions, grade
    from harness.sandbox import Limits

    limits = Limits() if args.memory_mb is None else Limits(memory_mb=args.memory_mb)
    options = GradeOptions(paths=args.paths, out=args.out, profile=args.profile, data=args.data, seed=args.seed,
                           language=args.lang, rubric=args.rubric, protocol=args.protocol, workers=args.workers,
                           use_bubblewrap=False if args.no_sandbox else None, limits=limits,
                           log=lambda message: print(message, flush=True))
    summary = grade(options)
    failed = [r for r in summary.results if r.status != "ok"]
    print(f"graded {len(summary.results)} submission(s) in {summary.seconds:.0f} s; "
          f"{len(failed)} not fully graded. Dashboard: {args.out / 'index.html'}")
    return summary.exit_code


def _rescore(args) -> int:
    from harness.rescore import rescore

    results = rescore(args.out, rubric_path=args.rubric, language=args.lang)
    print(f"re-scored {len(results)} submission(s) from {args.out} (nothing retrained)")
    return 0 if all(r.status == "ok" for r in results) else 1


def _report(args) -> int:
    from harness.rescore import rerender

    results = rerender(args.out, language=args.lang)
    print(f"re-rendered {len(results)} report(s) and {args.out / 'index.html'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "grade":
            return _grade(args)
        if args.command == "score":
            return _rescore(args)
        if args.command == "report":
            return _report(args)
        if args.command == "schema":
            from harness.results import json_schema

            print(json.dumps(json_schema(), indent=1, ensure_ascii=False))
            return 0
    except DataUnavailable as error:
        print(f"harness: MNIST is not available: {error}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as error:
        print(f"harness: {error}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
