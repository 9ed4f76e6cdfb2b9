"""The calibration's agreement table, as console text and as a self-contained HTML page.

What ``harness calibrate`` prints and writes to ``OUT/calibration/index.html``: per criterion, the
share of marks within ±0.5 point of the instructor's (and inside the range when the marks are
ranges), the mean absolute error and the weighted kappa; the largest disagreements with the
harness's reason and evidence; the proposed parameter changes with their cross-validated errors.
Strings are ``cal_*`` keys of ``templates/i18n/*.toml``; no script, font or image from the network.
"""

from __future__ import annotations

from html import escape

from harness.util.i18n import Translator

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}"
    "th{background:#f3f3f3}.num{text-align:right}.low{color:#a40000;font-weight:600}"
    ".scroll{overflow-x:auto}li{margin:.3rem 0}code{background:#f3f3f3;padding:0 .2rem}"
)
LOW_AGREEMENT = 0.8  # shown in red: below this share the criterion needs the instructor's look


def _share(value: float | None, t: Translator) -> str:
    return "—" if value is None else f"{t.number(100 * value, 0)} %"


def _cells(row, t: Translator) -> list[str]:
    kappa = "—" if row.kappa is None else t.number(row.kappa, 2)
    by_confidence = [f"{_share(share, t)} ({n})" for n, share in (row.low_confidence, row.high_confidence)]
    return [
        row.criterion,
        str(row.n),
        _share(row.within, t),
        _share(row.in_range, t),
        t.number(row.mae, 2),
        kappa,
        *by_confidence,
    ]


def _headers(t: Translator) -> list[str]:
    keys = ("cal_criterion", "cal_n", "cal_within", "cal_in_range", "cal_mae", "cal_kappa", "cal_low", "cal_high")
    return [t(k) for k in keys]


def text_table(report, t: Translator) -> str:
    """The agreement table and the proposals as plain text for the console."""
    rows = [_headers(t), *(_cells(row, t) for row in report.agreement)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines += [_proposal_line(p, t) for p in report.proposals]
    if report.proposed_rubric:
        lines.append(t("cal_proposed_file", path=str(report.proposed_rubric)))
    return "\n".join(lines)


def _proposal_line(p, t: Translator) -> str:
    changes = ", ".join(f"{name} = {value:g}" for name, value in p.changes.items())
    key = "cal_proposal" if p.proposed else "cal_no_proposal"
    return t(
        key, criterion=p.criterion, changes=changes, before=t.number(p.cv_mae_current), after=t.number(p.cv_mae_fitted)
    )


def render_calibration(report, t: Translator) -> str:
    """The calibration page: agreement table, largest disagreements, proposals."""
    head = "".join(f"<th>{escape(h)}</th>" for h in _headers(t))
    body = "".join(_html_row(row, t) for row in report.agreement)
    parts = [
        f"<!doctype html><html lang='{t.language}'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{escape(t('cal_title'))}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(t('cal_title'))}</h1>",
        f"<p>{escape(t('cal_intro', n=len(report.students), marks=report.marks, rubric=report.rubric))}</p>",
        f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>",
        f"<h2>{escape(t('cal_disagreements'))}</h2>",
        _disagreements(report, t),
        f"<h2>{escape(t('cal_proposals'))}</h2>",
        "<ul>" + "".join(f"<li>{escape(_proposal_line(p, t))}</li>" for p in report.proposals) + "</ul>",
    ]
    if report.proposed_rubric:
        parts.append(f"<p>{escape(t('cal_proposed_file', path=str(report.proposed_rubric)))}</p>")
    if report.unknown:
        parts.append(f"<p>{escape(t('cal_unknown', students=', '.join(report.unknown)))}</p>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _html_row(row, t: Translator) -> str:
    cells = _cells(row, t)
    low = " class='num low'" if row.within < LOW_AGREEMENT else " class='num'"
    return (
        f"<tr><td>{escape(cells[0])}</td><td class='num'>{cells[1]}</td><td{low}>{escape(cells[2])}</td>"
        + "".join(f"<td class='num'>{escape(c)}</td>" for c in cells[3:])
        + "</tr>"
    )


def _disagreements(report, t: Translator) -> str:
    items = [d for row in report.agreement for d in row.disagreements]
    if not items:
        return f"<p>{escape(t('cal_none'))}</p>"
    out = ["<ul>"]
    for d in sorted(items, key=lambda d: -abs(d.difference)):
        line = t(
            "cal_disagreement",
            student=d.student,
            criterion=d.criterion,
            harness=t.number(d.harness, 1),
            instructor=t.number(d.instructor, 2),
        )
        evidence = "".join(f"<li>{escape(e)}</li>" for e in d.evidence)
        comment = f"<br><em>{escape(d.comment)}</em>" if d.comment else ""
        out.append(f"<li><strong>{escape(line)}</strong>{comment}<br>{escape(d.reason)}<ul>{evidence}</ul></li>")
    out.append("</ul>")
    return "".join(out)
