"""Device health: a daily rollup of each device's heartbeats, and the devices gone silent.

From `bronze/device_health` (the agent's heartbeat: cpu, memory and disk use, load,
temperature, outbox backlog, shed and coarsened counts), one month per iteration:

- `gold/device_health_daily`: per device and UTC day, how many heartbeats, first and
  last seen, min/avg/max of each figure, the backlog at the day's last heartbeat, and
  what the agent shed during the day (its counters count since its outbox was created,
  so the day's share is the last value minus the first);
- `gold/silent_devices`: per device in the registry and day it was registered, the
  longest stretch of the day without a heartbeat if longer than `SILENT_AFTER`. The day
  is observed from 00:00 to 24:00 UTC (to now for today; days to come are not observed),
  and a stretch runs from the day's start, or a heartbeat, to the next heartbeat or the
  day's end, so a device silent all day is silent from 00:00 to 24:00, and
  `silent_at_end` says the silence lasts to the end of the observed day: on a month's
  last observed day, that the device is silent at the end of the period.

Both are about devices, not people: host and agent figures and heartbeat times, no
reading of what a device measures and no subject. A month's rows are replaced as a
whole, so rerunning a past month changes nothing (today's rows move with the clock).

    edgebatch run device_health --from 2026-11 --to 2026-12
    spark-submit --properties-file spark-defaults.conf jobs/device_health.py --partition 2026-11
"""

from __future__ import annotations

import datetime as dt

from edgebatch.framework.entry import main
from edgebatch.framework.expectations import Expectations, in_range, unique
from edgebatch.framework.gold import monthly_gold, monthly_table
from edgebatch.warehouse.catalog import DEVICE_HEALTH
from edgebatch.warehouse.reference import DEVICES

SILENT_AFTER = dt.timedelta(minutes=15)
"""Longer than this without a heartbeat is silence: 30 heartbeats at the agent's default
period of 30 s (`[health] interval_s`)."""

FIGURES = ("cpu_percent", "memory_percent", "disk_percent", "load1", "temperature_c")

HEALTH_DAILY = monthly_table(
    "gold/device_health_daily",
    """
    tenant STRING NOT NULL, month DATE NOT NULL, date DATE NOT NULL, device STRING NOT NULL,
    heartbeats BIGINT NOT NULL, first_seen TIMESTAMP NOT NULL, last_seen TIMESTAMP NOT NULL,
    longest_gap_s DOUBLE,
    cpu_percent_min DOUBLE, cpu_percent_avg DOUBLE, cpu_percent_max DOUBLE,
    memory_percent_min DOUBLE, memory_percent_avg DOUBLE, memory_percent_max DOUBLE,
    disk_percent_min DOUBLE, disk_percent_avg DOUBLE, disk_percent_max DOUBLE,
    load1_min DOUBLE, load1_avg DOUBLE, load1_max DOUBLE,
    temperature_c_min DOUBLE, temperature_c_avg DOUBLE, temperature_c_max DOUBLE,
    outbox_backlog_avg DOUBLE, outbox_backlog_max BIGINT, outbox_backlog_last BIGINT,
    shed_count_last BIGINT, shed_during_day BIGINT, coarsened_count_last BIGINT,
    coarsened_during_day BIGINT
    """,
    keys=("tenant", "device", "date"),
    comment="Daily rollup of each device's heartbeats: counts, times, min/avg/max figures, "
    "backlog and shedding.",
    no_subject="host and agent figures of devices (cpu, memory, disk, backlog, shedding) and "
    "heartbeat times; no reading of what a device measures and no subject",
)

SILENT_DEVICES = monthly_table(
    "gold/silent_devices",
    """
    tenant STRING NOT NULL, month DATE NOT NULL, date DATE NOT NULL, device STRING NOT NULL,
    kind STRING, site STRING, heartbeats BIGINT NOT NULL, silent_from TIMESTAMP NOT NULL,
    silent_to TIMESTAMP NOT NULL, silent_s DOUBLE NOT NULL, silent_at_end BOOLEAN NOT NULL,
    last_seen TIMESTAMP
    """,
    keys=("tenant", "device", "date"),
    comment="Registered devices with a stretch of a day longer than the threshold without a "
    "heartbeat: the longest such stretch per device and day.",
    no_subject="registered devices and the times they sent no heartbeat; no reading and no subject",
)

EXPECTATIONS = Expectations(
    unique(("tenant", "device", "date"), action="fail", name="one_row_per_device_day"),
    in_range("cpu_percent_max", min=0.0, max=100.0, action="warn"),
    in_range("disk_percent_max", min=0.0, max=100.0, action="warn"),
)


def _seconds(later, earlier):
    from pyspark.sql import functions as F

    return (F.unix_micros(later) - F.unix_micros(earlier)) / F.lit(1e6)


def daily(beats):
    """One row per tenant, device and day of the heartbeats given."""
    from pyspark.sql import functions as F

    keys = ("tenant", "device", "date")
    stats = [
        agg(F.col(c)).alias(f"{c}_{name}")
        for c in FIGURES
        for name, agg in (("min", F.min), ("avg", F.avg), ("max", F.max))
    ]
    rows = beats.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("heartbeats"),
        F.min("ts").alias("first_seen"),
        F.max("ts").alias("last_seen"),
        F.array_sort(F.collect_list("ts")).alias("_ts"),
        *stats,
        F.avg("outbox_backlog").alias("outbox_backlog_avg"),
        F.max("outbox_backlog").alias("outbox_backlog_max"),
        F.max_by("outbox_backlog", "ts").alias("outbox_backlog_last"),
        F.max_by("shed_count", "ts").alias("shed_count_last"),
        (F.max_by("shed_count", "ts") - F.min_by("shed_count", "ts")).alias("shed_during_day"),
        F.max_by("coarsened_count", "ts").alias("coarsened_count_last"),
        (F.max_by("coarsened_count", "ts") - F.min_by("coarsened_count", "ts")).alias(
            "coarsened_during_day"
        ),
    )
    gaps = _gaps(F.col("_ts"))
    return rows.withColumn(
        "longest_gap_s", F.when(F.size("_ts") > 1, F.array_max(gaps)["s"])
    ).withColumn("month", F.trunc("date", "month"))


def _gaps(points):
    """The stretches between consecutive times of a sorted array, as (s, from, to) structs."""
    from pyspark.sql import functions as F

    n = F.size(points)
    return F.zip_with(
        F.slice(points, 1, n - 1),
        F.slice(points, 2, n - 1),
        lambda a, b: F.struct(_seconds(b, a).alias("s"), a.alias("from"), b.alias("to")),
    )


def registered_days(ctx, devices, now: dt.datetime):
    """(tenant, device, kind, site, date, span_start, span_end) for each day of the month a
    device had a registry row, observed up to `now`."""
    from pyspark.sql import functions as F

    first = dt.date.fromisoformat(ctx.bounds["start"])
    end = dt.date.fromisoformat(ctx.bounds["end"])
    last = min(end - dt.timedelta(days=1), now.date())
    if last < first:
        return None
    days = ctx.spark.createDataFrame(
        [(first + dt.timedelta(days=i),) for i in range((last - first).days + 1)], "date DATE"
    )
    on = (F.col("date") >= F.col("installed_on")) & (
        F.col("removed_on").isNull() | (F.col("date") < F.col("removed_on"))
    )
    day_end = F.least(F.date_add("date", 1).cast("timestamp"), F.lit(now).cast("timestamp"))
    return (
        devices.join(days, on)
        .groupBy("tenant", "device", "date")
        .agg(F.max("kind").alias("kind"), F.max("site").alias("site"))
        .withColumn("span_start", F.col("date").cast("timestamp"))
        .withColumn("span_end", day_end)
    )


def silent(days, beats, history):
    """The longest heartbeat-less stretch of each registered device-day, if above the
    threshold; `history` is each device's last heartbeat per day, for `last_seen` (the
    last heartbeat at or before the silence, that day or any earlier one)."""
    from pyspark.sql import functions as F

    in_day = beats.select("tenant", "device", "date", "ts")
    d, b = days.alias("d"), in_day.alias("b")
    joined = d.join(
        b,
        (F.col("d.tenant") == F.col("b.tenant"))
        & (F.col("d.device") == F.col("b.device"))
        & (F.col("d.date") == F.col("b.date"))
        & (F.col("b.ts") >= F.col("d.span_start"))
        & (F.col("b.ts") < F.col("d.span_end")),
        "left",
    )
    per_day = joined.groupBy(*[F.col(f"d.{c}") for c in days.columns]).agg(
        F.count("b.ts").alias("heartbeats"),
        F.array_sort(F.collect_list("b.ts")).alias("_ts"),
    )
    points = F.concat(F.array("span_start"), F.col("_ts"), F.array("span_end"))
    longest = F.array_max(_gaps(points))
    found = (
        per_day.withColumn("_g", longest)
        .where(F.col("_g.s") > F.lit(SILENT_AFTER.total_seconds()))
        .select(
            "tenant", "device", "date", "kind", "site", "heartbeats",
            F.col("_g.from").alias("silent_from"),
            F.col("_g.to").alias("silent_to"),
            F.col("_g.s").alias("silent_s"),
            (F.col("_g.to") == F.col("span_end")).alias("silent_at_end"),
            # the day's last heartbeat before the silence, if it had one
            F.array_max(F.filter("_ts", lambda t: t <= F.col("_g.from"))).alias("_same_day"),
        )
    )  # fmt: skip
    f, h = found.alias("f"), history.alias("h")
    columns = [c for c in found.columns if c != "_same_day"]
    seen = (
        f.join(
            h,
            (F.col("f.tenant") == F.col("h.tenant"))
            & (F.col("f.device") == F.col("h.device"))
            & (F.col("h.date") < F.col("f.date")),
            "left",
        )
        .groupBy(*[F.col(f"f.{c}") for c in found.columns])
        .agg(F.max("h.last_ts").alias("_before"))
        .select(*columns, F.coalesce("_same_day", "_before").alias("last_seen"))
    )
    return seen.withColumn("month", F.trunc("date", "month"))


@monthly_gold(
    "health",
    inputs=[DEVICE_HEALTH.name, DEVICES.name],
    outputs=[HEALTH_DAILY.name, SILENT_DEVICES.name],
    after="bronze_load",
)
def device_health(ctx):
    """Daily heartbeat rollup per device and the silent devices of one month."""
    from pyspark.sql import functions as F

    from edgebatch.warehouse.reference import read_reference
    from edgebatch.warehouse.tables import ensure_table

    ensure_table(ctx.spark, ctx.root, DEVICES)
    health = ctx.table(DEVICE_HEALTH.name)
    beats = health.where(ctx.predicate("date")).persist()
    try:
        rollup = EXPECTATIONS.apply(ctx, daily(beats).select(*HEALTH_DAILY.columns()))
        ctx.write(rollup.frame, HEALTH_DAILY.name)
        now = dt.datetime.now(dt.UTC)
        days = registered_days(ctx, read_reference(ctx.spark, ctx.root, DEVICES), now)
        if days is None:
            ctx.log.info("device_health: %s has no day observed yet", ctx.partition)
            quiet = ctx.spark.createDataFrame([], SILENT_DEVICES.struct())
        else:
            history = (
                health.where(F.col("date") < F.lit(ctx.bounds["end"]).cast("date"))
                .groupBy("tenant", "device", "date")
                .agg(F.max("ts").alias("last_ts"))
            )
            quiet = silent(days, beats, history).select(*SILENT_DEVICES.columns())
        ctx.write(quiet, SILENT_DEVICES.name)
    finally:
        beats.unpersist()
    return None


if __name__ == "__main__":
    raise SystemExit(main(device_health))
