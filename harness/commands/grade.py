"""``harness grade PATH...``: grade a class (or one submission) into OUT."""

from __future__ import annotations

import argparse
import sys

from harness.commands.options import execute_options, log, parse_factory_map
from harness.config.protocol import load_protocol
from harness.errors import Interrupted
from harness.pipeline import GradeOptions, default_workers, grade
from harness.pipeline.session import profile_limits
from harness.report.ci import load_expectations, print_summary, write_ci
from harness.report.exports import keep_assignment
from harness.sandbox.interrupt import stop_on_signals


def grade_options(args: argparse.Namespace) -> GradeOptions:
    """The command line's options as the pipeline takes them (the protocol's limits, overridden by the flags)."""
    factory_map = parse_factory_map(args.factory_map)
    limits = profile_limits(load_protocol(args.protocol), args.profile).replace(
        memory_mb=args.memory_mb,
        resident_mb=args.resident_mb,
        cpu_seconds_per_thread=args.cpu_seconds,
        processes=args.max_processes,
        open_files=args.max_open_files,
        output_mb=args.max_output_mb,
    )
    return GradeOptions(
        paths=args.paths,
        out=args.out,
        profile=args.profile,
        data=args.data,
        seed=args.seed,
        language=args.lang,
        rubric=args.rubric,
        overrides=args.overrides,
        protocol=args.protocol,
        workers=args.workers or default_workers(args.protocol),
        cache=args.cache,
        use_cache=not args.no_cache,
        keep_models=args.keep_models,
        reports=not args.no_reports,
        backend=args.backend,
        address=args.address,
        gpus_per_task=args.gpus_per_task,
        use_bubblewrap=not args.no_sandbox,  # secure by default: bubblewrap or exit 2, unless --no-sandbox
        limits=limits,
        seeds=args.seeds,
        suite=args.suite,
        log=log,
        execute=args.execute,
        execute_options=execute_options(args),
        discover_models=args.discover,
        factory_map=factory_map,
        roster=args.roster,
        only_these=args.only_these,
        wait=args.wait,
    )


def run(args: argparse.Namespace) -> int:
    """Grade; exit 0 when every submission is fully graded (with --ci: as expected), else 1; stopped by
    Ctrl-C or SIGTERM, 130 or 143."""
    expectations = load_expectations(args.expect) if args.ci else None  # a bad file stops the run before training
    options = grade_options(args)
    if args.assignment or args.assignment_id:  # before grading: the exports written at its end name it
        keep_assignment(args.out, args.assignment, args.assignment_id)
    try:
        with stop_on_signals():
            summary = grade(options)
    except Interrupted as stop:
        print(
            f"harness: stopped by {stop.signal_name}: every worker killed; the submissions graded before it are kept "
            f"in {args.out}. Run the same command again to grade the others.",
            file=sys.stderr,
        )
        return 128 + stop.signum  # the shell's code for a process ended by that signal: 130, 143
    failed = [r for r in summary.results if r.status != "ok"]
    print(
        f"graded {len(summary.results)} submission(s) in {summary.seconds:.0f} s; "
        f"{len(failed)} not fully graded. Dashboard: {args.out / 'index.html'}"
    )
    if not args.ci:
        return summary.exit_code
    code, document = write_ci(summary, args.out, min_score=args.min_score, expectations=expectations)
    print_summary(document, log)
    return code
