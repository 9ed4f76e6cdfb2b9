"""Class dashboard at a few hundred students: page size, render time, load and sort time in Chromium.

    harness grade submissions/ --profile smoke --out /tmp/demo        # any graded class
    python bench/dashboard_scale.py /tmp/demo --students 300 [--reports] [--browser]

The graded class's stored results are replicated (student ``ana`` becomes ``ana-000``, ``ana-025``…,
each a copy of its folder with the name changed in ``result.json``) into a fresh folder until it holds
``--students`` students; nothing is trained. Then:

1. ``render_dashboard`` (what ``harness grade``, ``score`` and ``report`` call last) is timed
   ``--repeat`` times, after reading the stored results (timed too) — the size of ``index.html``;
2. with ``--reports``, ``harness report`` re-renders every student's report as well (figures come
   from each folder's ``figures.json``, as after any first render);
3. with ``--browser``, headless Chromium (the system one, as ``harness report --screenshots``)
   opens the dashboard offline and clicks the "total" heading to sort the 300 rows, timing both.

Writes ``bench/results/dashboard_scale.{md,json}`` (``--results`` to change).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from harness.pipeline.rescore import _reference, rerender, stored_results
from harness.report.render import _environment, render_dashboard
from harness.util.i18n import Translator

SHARED = ("_reference", "_suite")


def replicate(source: Path, dest: Path, students: int) -> None:
    stored = stored_results(source)
    for name in SHARED:
        if (source / name).is_dir():
            shutil.copytree(source / name, dest / name)
    for index in range(students):
        path, result = stored[index % len(stored)]
        name = f"{result.student}-{index:03d}"
        shutil.copytree(path.parent, dest / name, ignore=shutil.ignore_patterns("models", "*.keras"))
        copy = result.model_copy(update={"student": name})
        copy.write(dest / name / "result.json")


def browser_timings(page_path: Path) -> dict:
    from playwright.sync_api import sync_playwright

    from harness.report.screenshots import CHROMIUM_FLAGS, chromium_path

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            started = time.perf_counter()
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            load = time.perf_counter() - started
            rows = page.evaluate("document.querySelectorAll('#students tbody tr').length")
            sort = page.evaluate("""() => {
                const th = document.querySelectorAll('#students th.sortable')[2];
                const t0 = performance.now(); th.click(); th.click(); return (performance.now() - t0) / 2; }""")
            first = page.evaluate("document.querySelector('#students tbody tr td').textContent.trim()")
            return {
                "load_seconds": round(load, 3),
                "rows": rows,
                "sort_ms": round(sort, 1),
                "first_row_after_sort": first,
                "page_errors": errors,
            }
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="a graded class's output folder")
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--language", default="fr")
    parser.add_argument("--reports", action="store_true", help="also time `harness report` (every student's report)")
    parser.add_argument("--browser", action="store_true", help="also time loading and sorting in headless Chromium")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "dashboard_scale")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dashboard-scale-"))
    try:
        replicate(args.out, work, args.students)
        started = time.perf_counter()
        results = [result for _, result in stored_results(work)]
        read_seconds = time.perf_counter() - started
        translator = Translator(args.language)
        env, reference = _environment(translator), _reference(work)
        render = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            page = render_dashboard(work, results, reference, translator, env)
            render.append(time.perf_counter() - started)
        figures = {
            "students": len(results),
            "source": str(args.out),
            "source_students": len(stored_results(args.out)),
            "read_results_seconds": round(read_seconds, 3),
            "render_dashboard_seconds": [round(s, 3) for s in render],
            "index_html_bytes": page.stat().st_size,
            "cores": os.cpu_count(),
            "load_average": round(os.getloadavg()[0], 1),
            "python": platform.python_version(),
        }
        if args.reports:
            rerender(work, args.language)  # first pass: figures.json digests are checked (and kept)
            started = time.perf_counter()
            rerender(work, args.language)
            figures["harness_report_seconds"] = round(time.perf_counter() - started, 1)
        if args.browser:
            figures["chromium"] = browser_timings(page)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.with_suffix(".json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"# Class dashboard with {figures['students']} students",
        "",
        f"`python bench/dashboard_scale.py OUT --students {args.students}"
        f"{' --reports' if args.reports else ''}{' --browser' if args.browser else ''}` "
        f"({figures['source_students']} graded students replicated; {figures['cores']} cores, "
        f"load average {figures['load_average']})",
        "",
        "| measure | value |",
        "|---|---|",
        f"| `index.html` size | {figures['index_html_bytes'] / 1024:.0f} KiB |",
        f"| reading the stored results | {figures['read_results_seconds']:.2f} s |",
        f"| rendering the dashboard (median of {len(render)}) | {statistics.median(render):.2f} s |",
    ]
    if "harness_report_seconds" in figures:
        lines.append(
            f"| `harness report` (every report + dashboard + exports) | {figures['harness_report_seconds']:.0f} s |"
        )
    if "chromium" in figures:
        c = figures["chromium"]
        lines += [
            f"| Chromium: open offline (load event) | {c['load_seconds']:.2f} s, {c['rows']} rows |",
            f"| Chromium: sort by total (one click) | {c['sort_ms']:.0f} ms |",
        ]
    args.results.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
