"""Jobs the framework benchmark runs (loaded through `[framework] jobs`, not in `jobs/`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from edgebatch.framework.definitions import Retry, job
from edgebatch.framework.entry import main
from edgebatch.framework.partitions import Monthly, Unpartitioned
from edgebatch.warehouse.tables import declare

ROLLUP = declare(
    "bench/meter_rollup",
    "device STRING NOT NULL, date DATE NOT NULL, readings BIGINT, kwh DOUBLE",
    partition_by=("date",),
)
SPIN = declare("bench/spin", "job STRING, tasks BIGINT")
ROWS_PER_MONTH = int(os.environ.get("EDGEBATCH_BENCH_ROWS", "400000"))


def rollup_frame(spark, start: str, end: str):
    """The transformation both sides of the overhead benchmark run: readings to daily kWh."""
    days = (
        spark.range(0, ROWS_PER_MONTH, 1, 4)
        .selectExpr(
            f"date_add(DATE'{start}', cast(id % 28 as int)) as date",
            "concat('meter-', cast(id % 500 as string)) as device",
            "rand(7) * 2 as kwh",
        )
        .where(f"date < DATE'{end}'")
    )
    return (
        days.groupBy("device", "date")
        .agg({"kwh": "sum", "*": "count"})
        .selectExpr("device", "date", "`count(1)` as readings", "`sum(kwh)` as kwh")
    )


@job(
    outputs=[ROLLUP.name],
    partitions=Monthly(column="date", start="2025-01"),
    retry=Retry(attempts=1),
)
def bench_rollup(ctx):
    """Daily kWh per meter, a month per iteration."""
    return rollup_frame(ctx.spark, ctx.bounds["start"], ctx.bounds["end"])


def _mark_first_task(path: str):
    def mark(rows):
        with open(path, "a") as fh:
            fh.write(f"{time.time()}\n")
        yield sum(1 for _ in rows)

    return mark


@job(outputs=[SPIN.name], write="append", partitions=Unpartitioned(), pool="critical")
def bench_ping(ctx):
    """Two tiny tasks that write down when they started (trigger-to-first-task latency)."""
    marks = os.environ["EDGEBATCH_BENCH_MARKS"]
    n = ctx.spark.sparkContext.parallelize(range(2), 2).mapPartitions(_mark_first_task(marks))
    return ctx.spark.createDataFrame([("ping", n.count())], "job STRING, tasks BIGINT")


def _spin(ctx, tasks: int, seconds: float):
    def work(rows):
        time.sleep(seconds)
        yield sum(1 for _ in rows)

    n = ctx.spark.sparkContext.parallelize(range(tasks), tasks).mapPartitions(work).count()
    return ctx.spark.createDataFrame([(ctx.job.name, n)], "job STRING, tasks BIGINT")


@job(outputs=[SPIN.name], write="append", partitions=Unpartitioned(), pool="backfill")
def bench_backfill(ctx):
    """Saturates every core with short tasks for a long while."""
    return _spin(ctx, int(os.environ.get("EDGEBATCH_BENCH_BACKFILL_TASKS", "600")), 0.1)


@job(outputs=[SPIN.name], write="append", partitions=Unpartitioned(), pool="critical")
def bench_critical(ctx):
    """A short job that should not wait for the backfill."""
    return _spin(ctx, 8, 0.1)


if __name__ == "__main__":
    Path(os.environ.get("EDGEBATCH_BENCH_MARKS", "/dev/null")).touch()
    raise SystemExit(main(bench_ping))
