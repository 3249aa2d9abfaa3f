"""Silver: one row per device, metric and day, merged from every window and revision in bronze.

Count, sum, min and max add up exactly; the variance is recombined from each window's
mean and `m2` (Chan et al.'s parallel formula), so a day's stddev is exact without the
raw readings. Runs for one UTC day per iteration; a day's rows are replaced as a whole.

Consent: it reads bronze (right after each load, for the days the load wrote), so it
applies the gate itself, as `silver_readings` does: a window reaches the rollup only if
its device has a registry row for that day and the subject's latest consent event is
`granted`; the others are counted in the log and stay in bronze. The table names the
subject and registers as subject-bearing, so readers see consented subjects only and
`consent_erase` deletes a withdrawn subject's days.

    edgebatch run device_daily --from 2026-11-01 --to 2026-11-22
    spark-submit --properties-file spark-defaults.conf jobs/device_daily.py --partition 2026-11-22
"""

from __future__ import annotations

from edgebatch.framework.consent import consent_status, subject_bearing
from edgebatch.framework.definitions import Retry, job
from edgebatch.framework.entry import main
from edgebatch.framework.partitions import Daily
from edgebatch.framework.scheduler import AfterUpstream, Schedule
from edgebatch.warehouse.catalog import EDGE_BATCHES
from edgebatch.warehouse.reference import CONSENT, DEVICES
from edgebatch.warehouse.tables import declare

DEVICE_DAILY = declare(
    "silver/device_daily",
    """
    tenant STRING NOT NULL, device STRING NOT NULL, metric STRING NOT NULL, date DATE NOT NULL,
    unit STRING, windows BIGINT NOT NULL, count BIGINT NOT NULL, sum DOUBLE, min DOUBLE,
    max DOUBLE, mean DOUBLE, m2 DOUBLE, stddev DOUBLE, first_ts TIMESTAMP, last_ts TIMESTAMP,
    subject STRING NOT NULL
    """,
    partition_by=("date",),
    keys=("tenant", "device", "metric", "date"),
    comment="Daily statistics per consented device and metric, exact from the windows' "
    "mergeable state.",
)
subject_bearing(DEVICE_DAILY.name, subject="subject")


@job(
    inputs=[EDGE_BATCHES.name, DEVICES.name, CONSENT.name],
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
    """Daily per-device statistics from the consented window summaries of one day."""
    from pyspark.sql import functions as F

    windows = consented_windows(ctx, ctx.table(EDGE_BATCHES.name).where(ctx.predicate()))
    keys = ["tenant", "device", "metric", "date", "subject"]
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


def consented_windows(ctx, windows):
    """The bronze rows whose device is registered on their day and whose subject has
    consent now, with the subject; the others are counted in the log, never written."""
    from pyspark.sql import functions as F

    from edgebatch.jobs.silver_readings import enrich
    from edgebatch.warehouse.tables import ensure_table, read_table

    ensure_table(ctx.spark, ctx.root, DEVICES)
    devices = read_table(ctx.spark, ctx.root, DEVICES)
    rows = enrich(windows, devices, consent_status(ctx.spark, ctx.root))
    allowed = F.col("_registered") & F.coalesce(F.col("_consent") == "granted", F.lit(False))
    withheld = rows.where(~allowed).count()
    if withheld:
        ctx.log.info("consent gate: withheld %d bronze rows (unregistered or no consent)", withheld)
    return rows.where(allowed).select(*windows.columns, "subject")


if __name__ == "__main__":
    raise SystemExit(main(device_daily))
