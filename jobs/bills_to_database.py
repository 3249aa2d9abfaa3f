"""Gold to BI: copy a month of `gold/water_bills` into PostgreSQL for Tableau or Power BI.

One step, the database sink (docs/sinks.md): the month's rows replace the target's rows
of that month in one transaction, throttled as `[sinks.databases.bi]` says (a run's
`database` parameter picks another database).

    edgebatch run bills_to_database --partition 2026-11
"""

from __future__ import annotations

from edgebatch.framework.definitions import Retry, define_job
from edgebatch.framework.entry import main
from edgebatch.framework.partitions import Monthly
from edgebatch.framework.reports.bills import WATER_BILLS
from edgebatch.framework.scheduler import AfterUpstream, Schedule
from edgebatch.framework.sinks.step import to_database

bills_to_database = define_job(
    "bills_to_database",
    [to_database("bi", WATER_BILLS.name)],
    inputs=[WATER_BILLS.name],
    partitions=Monthly(column="month"),
    pool="default",
    priority=20,
    retry=Retry(attempts=3, backoff_s=60),
    timeout_s=3600,
    tags=("sink", "gold"),
    # after each month water_bills writes (bronze_load -> silver_readings -> water_bills)
    upstream=("water_bills",),
    schedule=Schedule(triggers=[AfterUpstream("water_bills")]),
    description="The month's bill lines into the BI database, replacing that month's rows.",
    source_file=__file__,
)


if __name__ == "__main__":
    raise SystemExit(main(bills_to_database))
