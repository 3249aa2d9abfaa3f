"""The operator's run report for a day: what ran, how long, rows, failures, from the state store.

Lands at `<root>/reports/runs/_all/<YYYY-MM-DD>/run-report-<language>.pdf`, one per
language in the run's `languages` parameter (default: en, de, es).

    edgebatch run run_report --partition 2026-11-30
"""

from __future__ import annotations

import datetime as dt

from edgebatch.framework.definitions import job
from edgebatch.framework.entry import main
from edgebatch.framework.partitions import Daily
from edgebatch.framework.reports.archive import ALL_TENANTS, ReportArchive
from edgebatch.framework.reports.locale import LANGUAGES
from edgebatch.framework.reports.pdf import render_run_report
from edgebatch.framework.reports.runs import build_run_report


@job(
    inputs=[],
    outputs=[],
    partitions=Daily(column=None),
    pool="default",
    priority=20,
    timeout_s=600,
    tags=("reports",),
)
def run_report(ctx):
    """A PDF of the day's runs per language, for the operators."""
    day = dt.date.fromisoformat(ctx.partition)
    report = build_run_report(ctx.store, day, day + dt.timedelta(days=1))
    archive = ReportArchive(ctx.root)
    written = 0
    for language in ctx.params.get("languages", LANGUAGES):
        pdf = render_run_report(report, language)
        name = f"run-report-{language}"
        written += archive.write("runs", ALL_TENANTS, day.isoformat(), name, pdf)
    ctx.rows_out = written
    return None


if __name__ == "__main__":
    raise SystemExit(main(run_report))
