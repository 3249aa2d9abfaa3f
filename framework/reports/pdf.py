"""Bills and run reports as PDF (reportlab), in the reader's language.

Rendered with reportlab's `invariant` mode (no creation time, a fixed document id), so
the same bill renders to the same bytes: a rerun of the report job rewrites nothing.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from edgebatch.framework.reports.bills import Bill
from edgebatch.framework.reports.locale import Formatter
from edgebatch.framework.reports.runs import RunReport

_GRID = TableStyle(
    [
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
        ("ALIGN", (2, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
)


def _document(title: str, flowables: list[Any]) -> bytes:
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        title=title,
        author="edgebatch",
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        invariant=1,
    )
    doc.build(flowables)
    return out.getvalue()


def _table(header: Sequence[str], rows: list[list[str]], widths: Sequence[float]) -> Table:
    table = Table([list(header), *rows], colWidths=[w * mm for w in widths], repeatRows=1)
    table.setStyle(_GRID)
    return table


def render_bill(bill: Bill, language: str | None = None, issued: dt.date | None = None) -> bytes:
    """The bill in `language` (default: the customer's); `issued` defaults to the month's end."""
    fmt = Formatter(language or bill.language)
    styles = getSampleStyleSheet()
    issued = issued or _month_end(bill.month)
    rows = [
        [
            line.meter,
            f"{fmt.date(line.period_start)} – {fmt.date(line.period_end)}",
            fmt.number(line.consumption_m3, 3),
            line.tier + (f" ({fmt.word('estimated')})" if line.estimated else ""),
            fmt.money(line.unit_price, bill.currency),
            fmt.money(line.amount, bill.currency),
        ]
        for line in bill.lines
    ]
    header = [
        fmt.word(k) for k in ("meter", "from_to", "consumption", "tier", "unit_price", "amount")
    ]
    flow: list[Any] = [
        Paragraph(f"{fmt.word('bill')} {bill.period}", styles["Title"]),
        Paragraph(
            f"{fmt.word('customer')}: {bill.customer_name} ({bill.customer})", styles["Normal"]
        ),
        Paragraph(
            f"{fmt.word('period')}: {fmt.date(bill.month)} – {fmt.date(_month_end(bill.month))}",
            styles["Normal"],
        ),
        Paragraph(f"{fmt.word('issued')}: {fmt.date(issued)}", styles["Normal"]),
        Spacer(1, 6 * mm),
        _table(header, rows, (26, 48, 26, 28, 22, 24)),
        Spacer(1, 4 * mm),
        Paragraph(
            f"<b>{fmt.word('total')}: {fmt.money(bill.total, bill.currency)}</b>",
            styles["Heading3"],
        ),
    ]
    if any(line.estimated for line in bill.lines):
        flow.append(Paragraph(fmt.word("estimated_note"), styles["Italic"]))
    return _document(f"{fmt.word('bill')} {bill.customer} {bill.period}", flow)


def render_run_report(report: RunReport, language: str = "en") -> bytes:
    fmt = Formatter(language)
    styles = getSampleStyleSheet()
    rows = [
        [
            str(r.run_id),
            r.job,
            r.state,
            fmt.datetime(r.started_at) if r.started_at else "–",
            fmt.number(r.seconds, 1) if r.seconds is not None else "–",
            fmt.number(r.iterations),
            fmt.number(r.failed_iterations),
            fmt.number(r.rows_out),
        ]
        for r in report.runs
    ]
    header = [
        fmt.word(k)
        for k in ("run", "job", "state", "started", "duration", "iterations", "failed", "rows")
    ]
    last = report.end - dt.timedelta(days=1)
    flow: list[Any] = [
        Paragraph(
            f"{fmt.word('run_report')}: {fmt.date(report.start)} – {fmt.date(last)}",
            styles["Title"],
        ),
        Paragraph(
            f"{fmt.word('runs')}: {fmt.number(len(report.runs))} · "
            f"{fmt.word('failures')}: {fmt.number(len(report.failures))} · "
            f"{fmt.word('rows')}: {fmt.number(report.rows_out)}",
            styles["Normal"],
        ),
        Spacer(1, 5 * mm),
        _table(header, rows, (12, 38, 20, 42, 18, 18, 16, 20)),
        Spacer(1, 5 * mm),
        Paragraph(fmt.word("failures"), styles["Heading3"]),
    ]
    if not report.failures:
        flow.append(Paragraph(fmt.word("none"), styles["Normal"]))
    for r in report.failures:
        text = _escape(r.error or f"{r.failed_iterations} {fmt.word('failed')}")
        flow.append(Paragraph(f"{fmt.word('run')} {r.run_id} ({r.job}): {text}", styles["Normal"]))
    return _document(f"{fmt.word('run_report')} {report.start}", flow)


def _month_end(month: dt.date) -> dt.date:
    nxt = dt.date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def _escape(text: str) -> str:
    return text[:500].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
