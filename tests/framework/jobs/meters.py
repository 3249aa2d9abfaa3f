"""Jobs the framework's tests run: real Spark work, with failures and slowness on demand.

`EDGEBATCH_TEST_FAULTS` names a folder; a file `<job>.<partition>` there holding N makes
the next N attempts of that partition fail (a flaky source), each attempt counting down.
`EDGEBATCH_TEST_SLEEP_S` slows every iteration down (to kill a driver mid-run).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from edgebatch.framework.definitions import Retry, job
from edgebatch.framework.entry import main
from edgebatch.framework.partitions import Monthly, Unpartitioned
from edgebatch.warehouse.tables import declare

METER_MONTHLY = declare(
    "test/meter_monthly",
    "device STRING NOT NULL, date DATE NOT NULL, kwh DOUBLE",
    keys=("device", "date"),
    partition_by=("date",),
)
SPIN = declare("test/spin", "job STRING, tasks BIGINT")


def _maybe_fail(job_name: str, partition: str) -> None:
    folder = os.environ.get("EDGEBATCH_TEST_FAULTS")
    if not folder:
        return
    marker = Path(folder) / f"{job_name}.{partition}"
    if marker.exists():
        left = int(marker.read_text() or "0")
        if left > 0:
            marker.write_text(str(left - 1))
            raise RuntimeError(f"injected fault in {job_name} {partition} ({left - 1} left)")


def _readings(ctx):
    _maybe_fail(ctx.job.name, ctx.partition)
    time.sleep(float(os.environ.get("EDGEBATCH_TEST_SLEEP_S", "0")))
    b = ctx.bounds
    ctx.log.info("generating readings from %s to %s", b["start"], b["end"])
    return _month(ctx, b)


def _month(ctx, b):
    return (
        ctx.spark.range(0, 93)
        .selectExpr(
            "concat('meter-', cast(id % 3 as string)) as device",
            f"date_add(DATE'{b['start']}', cast(id / 3 as int)) as date",
            "cast(id as double) * 1.5 as kwh",
        )
        .where(f"date < DATE'{b['end']}'")
    )


@job(
    outputs=["test/meter_monthly"],
    partitions=Monthly(column="date", start="2025-01"),
    retry=Retry(attempts=2, backoff_s=0.05),
    pool="default",
    tags=("test",),
)
def meter_monthly(ctx):
    """kWh per meter and day, one month per iteration."""
    return _readings(ctx)


@job(
    outputs=["test/meter_monthly"],
    partitions=Monthly(column="date", start="2025-01"),
    retry=Retry(attempts=1),
)
def meter_monthly_once(ctx):
    """The same, without retries inside a run: a failure fails the run."""
    return _readings(ctx)


@job(
    outputs=["test/meter_monthly"],
    partitions=Monthly(column="date", start="2025-01"),
    retry=Retry(attempts=2, backoff_s=0.05),
    span=5,
)
def meter_spans(ctx):
    """The rows of meter_monthly, up to five consecutive months per iteration."""
    _maybe_fail(ctx.job.name, ctx.partition)
    ctx.log.info("months %s", " ".join(ctx.partition_keys))
    frames = [_month(ctx, ctx.job.partitioning.bounds(k)) for k in ctx.partition_keys]
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


@job(partitions=Monthly(column="date"), in_order=True, retry=Retry(attempts=1))
def months_in_order(ctx):
    """Each month after the one before it, one at a time (it would read earlier months)."""
    time.sleep(0.2)


def _spin(ctx, tasks: int, seconds: float):
    def work(rows):
        time.sleep(seconds)
        yield sum(1 for _ in rows)

    n = ctx.spark.sparkContext.parallelize(range(tasks), tasks).mapPartitions(work).count()
    return ctx.spark.createDataFrame([(ctx.job.name, n)], "job STRING, tasks BIGINT")


@job(outputs=["test/spin"], write="append", partitions=Unpartitioned(), pool="backfill")
def long_backfill(ctx):
    """Many short tasks: keeps both cores of a local[2] session busy for a while."""
    return _spin(ctx, int(os.environ.get("EDGEBATCH_TEST_LONG_TASKS", "160")), 0.1)


@job(outputs=["test/spin"], write="append", partitions=Unpartitioned(), pool="critical")
def short_critical(ctx):
    """A few tasks that must not wait for the backfill."""
    return _spin(ctx, 4, 0.1)


@job(outputs=["test/meter_monthly"], partitions=Monthly(column="date"), retry=Retry(attempts=1))
def wrong_schema(ctx):
    """Produces a column its output does not have."""
    return _readings(ctx).withColumnRenamed("kwh", "kwhh")


def _dive(depth: int) -> None:
    if depth == 0:
        raise ValueError("the bottom of user code\nwith a second line of detail")
    _dive(depth - 1)


def _checked(depth: int) -> None:
    try:
        _dive(depth)
    except ValueError as exc:
        raise RuntimeError("the check around it failed too") from exc


@job(outputs=["test/spin"], partitions=Unpartitioned(), retry=Retry(attempts=1))
def deep_failure(ctx):
    """Raises from twelve frames down, through a chained exception."""
    _checked(12)


if __name__ == "__main__":
    raise SystemExit(main(meter_monthly, meter_monthly_once, wrong_schema))
