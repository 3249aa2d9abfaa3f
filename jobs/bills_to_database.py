"""Gold to BI: copy a month of `gold/water_bills` into PostgreSQL for Tableau or Power BI.

Uses the database sink (docs/sinks.md): the month's rows replace the target's rows of
that month in one transaction, throttled as `[sinks.databases.NAME]` says. The database
is the run's `database` parameter (default `bi`).

    edgebatch run bills_to_database --partition 2026-11
"""

from __future__ import annotations

import datetime as dt

from edgebatch.framework.definitions import Retry, job
from edgebatch.framework.entry import main
from edgebatch.framework.partitions import Monthly
from edgebatch.framework.reports.bills import WATER_BILLS
from edgebatch.framework.sinks.jdbc import JdbcSink, JdbcTarget


@job(
    inputs=[WATER_BILLS.name],
    outputs=[],
    partitions=Monthly(column="month"),
    pool="default",
    priority=20,
    retry=Retry(attempts=3, backoff_s=60),
    timeout_s=3600,
    upstream=(),
    tags=("sink", "gold"),
)
def bills_to_database(ctx):
    """The month's bill lines into the BI database, replacing that month's rows."""
    target = JdbcTarget.from_settings(
        ctx.settings, ctx.params.get("database", "bi"), WATER_BILLS.name
    )
    month = dt.date.fromisoformat(ctx.bounds["start"])
    result = JdbcSink(target).write_partition(ctx.table(WATER_BILLS.name), {"month": month})
    ctx.count_in(result.inserted)
    ctx.rows_out = result.inserted
    ctx.log.info(
        "%s: replaced %d rows with %d in %.1f s (%.0f rows/s)",
        target.table,
        result.deleted,
        result.inserted,
        result.stage_seconds + result.swap_seconds,
        result.rows_per_second,
    )
    return None


if __name__ == "__main__":
    raise SystemExit(main(bills_to_database))
