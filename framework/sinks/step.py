"""A job step that copies the iteration's partition of a Delta table to a database.

    bills_to_database = define_job(
        "bills_to_database",
        [to_database("bi", "gold/water_bills")],
        inputs=["gold/water_bills"],
        partitions=Monthly(column="month"),
    )

The database is `[sinks.databases.NAME]`; a run's `database` parameter picks another.
Time partitions (daily, monthly) are matched on the partition column's first day as a
DATE, which is how the framework's monthly and daily tables store them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from edgebatch.framework.context import IterationContext
from edgebatch.framework.definitions import PythonStep, python
from edgebatch.framework.partitions import Daily, Monthly, Partitioning
from edgebatch.framework.sinks.jdbc import JdbcSink, JdbcTarget, SinkError


def partition_value(partitioning: Partitioning, key: str) -> Any:
    """The value a partition key stands for in its column: a date for time partitions."""
    if isinstance(partitioning, Monthly | Daily):
        return dt.date.fromisoformat(partitioning.bounds(key)["start"])
    return key


def to_database(database: str, table: str, *, column: str | None = None) -> PythonStep:
    """The step: replace the target's rows of this iteration's partition with the table's."""

    def copy_partition(ctx: IterationContext) -> None:
        name = ctx.params.get("database", database)
        target = JdbcTarget.from_settings(ctx.settings, name, table)
        partitioning = ctx.job.partitioning
        col = column or partitioning.column
        if not col:
            raise SinkError(
                f"job {ctx.job.name!r}: to_database({database!r}, {table!r}) needs a "
                "partitioned job or a column= to match the partition on"
            )
        value = partition_value(partitioning, ctx.partition)
        result = JdbcSink(target).write_partition(ctx.table(table), {col: value})
        ctx.count_in(result.inserted)
        ctx.rows_out = result.inserted
        ctx.log.info(
            "%s: replaced %d rows with %d in %.1f s (staged at %.0f rows/s)",
            target.table,
            result.deleted,
            result.inserted,
            result.stage_seconds + result.swap_seconds,
            result.rows_per_second,
        )

    return python(copy_partition, name=f"to_database[{database}:{table}]")
