"""Gold to PDF: one bill per customer and month from `gold/water_bills`, in the customer's language.

Each bill lands at `<root>/reports/bills/<tenant>/<YYYY-MM>/<customer>.pdf`; a bill whose
PDF would not change is not rewritten, so a rerun of a month changes nothing.

    edgebatch run bill_reports --partition 2026-11
"""

from __future__ import annotations

from edgebatch.framework.definitions import Retry, job
from edgebatch.framework.entry import main
from edgebatch.framework.partitions import Monthly
from edgebatch.framework.reports.archive import ReportArchive
from edgebatch.framework.reports.bills import WATER_BILLS, bills_from_rows
from edgebatch.framework.reports.pdf import render_bill
from edgebatch.framework.scheduler import AfterUpstream, Schedule


@job(
    inputs=[WATER_BILLS.name],
    outputs=[],
    partitions=Monthly(column="month"),
    pool="default",
    priority=30,
    retry=Retry(attempts=2, backoff_s=30),
    timeout_s=3600,
    tags=("reports", "gold"),
    # after each month water_bills writes (bronze_load -> silver_readings -> water_bills)
    upstream=("water_bills",),
    schedule=Schedule(triggers=[AfterUpstream("water_bills")]),
)
def bill_reports(ctx):
    """Monthly bills as PDF per customer, from the gold bill lines."""
    lines = ctx.table(WATER_BILLS.name).where(ctx.predicate())
    rows = [r.asDict() for r in lines.collect()]
    ctx.count_in(len(rows))
    archive = ReportArchive(ctx.root)
    written = 0
    for bill in bills_from_rows(rows):
        pdf = render_bill(bill)
        written += archive.write("bills", bill.tenant, bill.period, bill.customer, pdf)
    ctx.rows_out = written
    ctx.log.info("%d bill lines, %d PDFs written (the rest unchanged)", len(rows), written)
    return None


if __name__ == "__main__":
    raise SystemExit(main(bill_reports))
