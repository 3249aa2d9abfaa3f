"""Silver: one row per device, metric and day, merged from every window and revision in bronze.

Count, sum, min and max add up exactly; the variance is recombined from each window's
mean and `m2` (Chan et al.'s parallel formula), so a day's stddev is exact without the
raw readings. Runs for one UTC day per iteration; a day's rows are replaced as a whole.

    edgebatch run device_daily --from 2026-11-01 --to 2026-11-22
    spark-submit --properties-file spark-defaults.conf jobs/device_daily.py --partition 2026-11-22
"""

from __future__ import annotations

from edgebatch.framework.definitions import Retry, job
from edgebatch.framework.entry import main
from edgebatch.framework.partitions import Daily
from edgebatch.framework.scheduler import AfterUpstream, Schedule
from edgebatch.warehouse.catalog import EDGE_BATCHES
from edgebatch.warehouse.tables import declare

DEVICE_DAILY = declare(
    "silver/device_daily",
    """
    tenant STRING NOT NULL, device STRING NOT NULL, metric STRING NOT NULL, date DATE NOT NULL,
    unit STRING, windows BIGINT NOT NULL, count BIGINT NOT NULL, sum DOUBLE, min DOUBLE,
    max DOUBLE, mean DOUBLE, m2 DOUBLE, stddev DOUBLE, first_ts TIMESTAMP, last_ts TIMESTAMP
    """,
    partition_by=("date",),
    keys=("tenant", "device", "metric", "date"),
    comment="Daily statistics per device and metric, exact from the windows' mergeable state.",
)


@job(
    inputs=[EDGE_BATCHES.name],
    outputs=["silver/device_daily"],
    partitions=Daily(column="date"),
    pool="default",
    priority=50,
    retry=Retry(attempts=3, backoff_s=10),
    timeout_s=3600,
    upstream=("bronze_load",),
    tags=("silver", "rollup"),
    # After each bronze load, for exactly the days it wrote (late revisions included).
    schedule=Schedule(triggers=[AfterUpstream("bronze_load")]),
)
def device_daily(ctx):
    """Daily per-device statistics from the window summaries of one day."""
    from pyspark.sql import functions as F

    windows = ctx.table(EDGE_BATCHES.name).where(ctx.predicate())
    keys = ["tenant", "device", "metric", "date"]
    totals = windows.groupBy(*keys).agg(
        F.count("*").alias("windows"),
        F.sum("count").alias("count"),
        F.sum("sum").alias("sum"),
        F.min("min").alias("min"),
        F.max("max").alias("max"),
        F.first("unit", ignorenulls=True).alias("unit"),
        F.min("first_ts").alias("first_ts"),
        F.max("last_ts").alias("last_ts"),
    )
    day_mean = (F.col("t.sum") / F.col("t.count")).alias("mean")
    # M2 of the union = sum of the parts' M2 + sum of n_i * (mean_i - mean)^2.
    spread = (
        windows.alias("w")
        .join(totals.alias("t"), keys)
        .groupBy(*[F.col(f"t.{k}") for k in keys])
        .agg(
            F.sum(
                F.coalesce(F.col("w.m2"), F.lit(0.0))
                + F.col("w.count") * F.pow(F.col("w.mean") - F.col("t.sum") / F.col("t.count"), 2)
            ).alias("m2")
        )
    )
    out = (
        totals.alias("t")
        .join(spread.alias("s"), keys)
        .select(
            *[F.col(f"t.{k}").alias(k) for k in keys],
            "t.unit",
            "t.windows",
            "t.count",
            "t.sum",
            "t.min",
            "t.max",
            day_mean,
            "s.m2",
            F.when(F.col("t.count") > 1, F.sqrt(F.col("s.m2") / (F.col("t.count") - 1))).alias(
                "stddev"
            ),
            "t.first_ts",
            "t.last_ts",
        )
    )
    return out


if __name__ == "__main__":
    raise SystemExit(main(device_daily))
