"""Silver readings: one trusted row per device, metric and window, about a consented subject.

From `bronze/edge_batches`, one UTC day per iteration:

1. duplicates go (a batch id and metric seen twice is one row);
2. a window's revisions merge into one row: revision 0 and the corrections carrying
   late readings are parts of the same window, so count and sum add up, min and max
   combine, and mean and M2 fold with Chan's formula in revision order (exact and
   the same on every run);
3. the device registry valid on that day adds site, kind, subject and tariff class;
4. the consent gate: a window whose subject's latest consent is not `granted`, or
   whose device is not registered that day, never reaches silver; it is counted in
   `silver/withheld` by device and reason, and stays in bronze;
5. the job's expectations judge what is left (quarantine, warn or fail per rule).

A day's rows are replaced as a whole, so a rerun changes nothing, and an incremental
run takes exactly the days whose bronze files changed (late windows, revisions).

    edgebatch run silver_readings --from 2026-11-01 --to 2026-11-30
    spark-submit --properties-file spark-defaults.conf jobs/silver_readings.py \
        --partition 2026-11-02
"""

from __future__ import annotations

import datetime as dt
import json

from edgebatch.framework.consent import consent_status, subject_bearing, subject_free
from edgebatch.framework.definitions import Retry, job
from edgebatch.framework.entry import main
from edgebatch.framework.expectations import Expectations, fresh, in_range, min_rows, unique
from edgebatch.framework.name_keys import declare_name_keys, dictionary_rows, key_column
from edgebatch.framework.partitions import Daily
from edgebatch.framework.scheduler import AfterUpstream, Schedule
from edgebatch.warehouse.catalog import EDGE_BATCHES
from edgebatch.warehouse.reference import CONSENT, DEVICES
from edgebatch.warehouse.tables import declare

WINDOW_KEY = ("tenant", "device", "metric", "window_start", "window_end")
PARTITION_BY = ("tenant", "date", "kind", "metric")
# Within a file, a device's windows side by side: runs the Parquet encodings shrink, and
# per-file statistics of device and subject narrow enough to skip files.
FILE_ORDER = ("device", "window_start")

READINGS = declare(
    "silver/readings",
    """
    tenant STRING NOT NULL, date DATE NOT NULL, device STRING NOT NULL,
    metric STRING NOT NULL, window_start TIMESTAMP NOT NULL, window_end TIMESTAMP NOT NULL,
    unit STRING, revisions INT NOT NULL, last_revision INT NOT NULL,
    count BIGINT NOT NULL, sum DOUBLE, min DOUBLE, max DOUBLE, mean DOUBLE, m2 DOUBLE,
    stddev DOUBLE, first_ts TIMESTAMP, last_ts TIMESTAMP, sketches ARRAY<STRING>,
    site STRING, kind STRING NOT NULL, subject_type STRING NOT NULL, subject STRING NOT NULL,
    tariff_class STRING, received_at TIMESTAMP,
    window_seconds INT NOT NULL, device_key BIGINT NOT NULL, subject_key BIGINT NOT NULL
    """,
    # A gold job reads one kind's metrics: with kind and metric in the path it reads only
    # their files, and Spark filters on them per file instead of comparing two strings in
    # every row (a year of one metric of one kind: a third of the scan's CPU).
    partition_by=PARTITION_BY,
    keys=WINDOW_KEY,
    properties={
        "delta.dataSkippingStatsColumns": "device,window_start,subject",
    },
    comment="One row per consented device, metric and window, revisions merged, enriched "
    "from the device registry.",
)
subject_bearing(READINGS.name, subject="subject")

# Integer stand-ins for the names gold jobs group a year of windows by (`ctx.aggregate`
# groups by these and names the groups from the dictionary: framework/name_keys.py).
NAME_KEYS = {"device_key": ("tenant", "device"), "subject_key": ("tenant", "subject")}
READING_KEYS = declare(
    "silver/reading_keys",
    """
    tenant STRING NOT NULL, device STRING NOT NULL, subject STRING NOT NULL,
    device_key BIGINT NOT NULL, subject_key BIGINT NOT NULL
    """,
    partition_by=("tenant",),
    keys=("tenant", "device", "subject"),
    comment="Each device and subject of silver/readings with its key: the dictionary that "
    "names groups made by key. Gains a row when silver meets a new pairing, and loses a "
    "subject's rows with its consent.",
)
subject_bearing(READING_KEYS.name, subject="subject")
READINGS_KEYED = declare_name_keys(READINGS.name, READING_KEYS.name, NAME_KEYS)

WITHHELD = declare(
    "silver/withheld",
    """
    tenant STRING NOT NULL, date DATE NOT NULL, device STRING NOT NULL, kind STRING,
    reason STRING NOT NULL, windows BIGINT NOT NULL, readings BIGINT NOT NULL
    """,
    partition_by=("date",),
    keys=("tenant", "date", "device", "reason"),
    comment="Windows kept out of silver per device, day and reason (no_consent, withdrawn, "
    "unregistered); the readings stay in bronze.",
)
subject_free(WITHHELD.name, "counts per device and reason; no reading and no subject")

EXPECTATIONS = Expectations(
    in_range("count", min=1, action="quarantine"),
    in_range("revisions", min=1, max=1024, action="warn"),
    unique(WINDOW_KEY, action="quarantine", name="one_registry_row_per_window"),
    fresh("received_at", max_age=dt.timedelta(days=3), action="warn"),
    min_rows(1, action="warn"),
)


def merged_windows(batches):
    """One row per window: its revisions (duplicates dropped) merged exactly, in order."""
    from pyspark.sql import functions as F

    parts = batches.dropDuplicates(["batch_id", "metric"]).select(
        *WINDOW_KEY,
        "date",
        F.struct(
            "revision", "batch_id", "count", "sum", "min", "max", "mean", "m2",
            "first_ts", "last_ts", "sketch", "unit", "received_at",
        ).alias("p"),
    )  # fmt: skip
    grouped = parts.groupBy(*WINDOW_KEY, "date").agg(
        F.array_sort(F.collect_list("p")).alias("parts")
    )
    zero = F.struct(
        F.lit(0).cast("long").alias("n"),
        F.lit(0.0).alias("mean"),
        F.lit(0.0).alias("m2"),
    )

    def chan(acc, x):
        n = acc["n"] + x["count"]
        delta = F.coalesce(x["mean"], x["sum"] / x["count"]) - acc["mean"]
        part_m2 = F.coalesce(x["m2"], F.lit(0.0))
        return F.struct(
            n.alias("n"),
            (acc["mean"] + delta * x["count"] / n).alias("mean"),
            (acc["m2"] + part_m2 + delta * delta * acc["n"] * x["count"] / n).alias("m2"),
        )

    folded = F.aggregate("parts", zero, chan)
    field = lambda name: F.transform("parts", lambda x: x[name])  # noqa: E731
    return grouped.select(
        *WINDOW_KEY,
        "date",
        F.element_at(F.filter(field("unit"), lambda u: u.isNotNull()), 1).alias("unit"),
        F.size("parts").alias("revisions"),
        F.array_max(field("revision")).alias("last_revision"),
        F.aggregate("parts", F.lit(0).cast("long"), lambda a, x: a + x["count"]).alias("count"),
        F.aggregate("parts", F.lit(0.0), lambda a, x: a + x["sum"]).alias("sum"),
        F.array_min(field("min")).alias("min"),
        F.array_max(field("max")).alias("max"),
        folded["mean"].alias("mean"),
        folded["m2"].alias("m2"),
        F.when(folded["n"] > 1, F.sqrt(folded["m2"] / (folded["n"] - 1))).alias("stddev"),
        F.array_min(field("first_ts")).alias("first_ts"),
        F.array_max(field("last_ts")).alias("last_ts"),
        F.filter(field("sketch"), lambda s: s.isNotNull()).alias("sketches"),
        F.array_max(field("received_at")).alias("received_at"),
    )


def enrich(windows, devices, status):
    """Add the registry row valid on the window's day and the subject's consent status."""
    from pyspark.sql import functions as F

    w, d = windows.alias("w"), devices.alias("d")
    on = (
        (F.col("w.tenant") == F.col("d.tenant"))
        & (F.col("w.device") == F.col("d.device"))
        & (F.col("w.date") >= F.col("d.installed_on"))
        & (F.col("d.removed_on").isNull() | (F.col("w.date") < F.col("d.removed_on")))
    )
    joined = w.join(d, on, "left").select(
        "w.*", "d.site", "d.kind", "d.subject_type", "d.subject", "d.tariff_class",
        F.col("d.device").isNotNull().alias("_registered"),
        (F.unix_timestamp("w.window_end") - F.unix_timestamp("w.window_start"))
        .cast("int").alias("window_seconds"),
        key_column("w.tenant", "w.device").alias("device_key"),
        key_column("w.tenant", "d.subject").alias("subject_key"),
    )  # fmt: skip
    return joined.join(
        status.withColumnRenamed("status", "_consent"), ["tenant", "subject"], "left"
    )


@job(
    inputs=[EDGE_BATCHES.name, DEVICES.name, CONSENT.name],
    outputs=[READINGS.name, READING_KEYS.name, WITHHELD.name],
    partitions=Daily(column="date"),
    pool="default",
    priority=50,
    retry=Retry(attempts=3, backoff_s=10),
    timeout_s=3600,
    upstream=("bronze_load", "reference_load"),
    tags=("silver",),
    # After each bronze load, for exactly the days it wrote (late revisions included).
    schedule=Schedule(triggers=[AfterUpstream("bronze_load")]),
)
def silver_readings(ctx):
    """Windows of one day, revisions merged, enriched, consent-gated and checked."""
    from pyspark.sql import functions as F

    from edgebatch.warehouse.tables import ensure_table, read_table

    ensure_table(ctx.spark, ctx.root, DEVICES)
    windows = merged_windows(ctx.table(EDGE_BATCHES.name).where(ctx.predicate()))
    devices = read_table(ctx.spark, ctx.root, DEVICES)
    rows = enrich(windows, devices, consent_status(ctx.spark, ctx.root))
    reason = (
        F.when(~F.col("_registered"), "unregistered")
        .when(F.col("_consent").isNull(), "no_consent")
        .when(F.col("_consent") != "granted", "withdrawn")
    )
    # counted, checked and written from one computation of the day, not four
    rows = rows.withColumn("_withheld", reason).persist()
    try:
        allowed = rows.where(F.col("_withheld").isNull()).select(*READINGS.columns())
        withheld = (
            rows.where(F.col("_withheld").isNotNull())
            .groupBy("tenant", "date", "device", "kind", F.col("_withheld").alias("reason"))
            .agg(F.count(F.lit(1)).alias("windows"), F.sum("count").alias("readings"))
        )
        counts = {
            r.reason: {"windows": r.windows, "readings": r.readings} for r in _by_reason(withheld)
        }
        ctx.log.info(
            "consent gate: withheld %d windows (%d readings) of %s",
            sum(c["windows"] for c in counts.values()),
            sum(c["readings"] for c in counts.values()),
            ", ".join(f"{k}: {c['windows']}" for k, c in sorted(counts.items())) or "no device",
        )
        ctx.log.info("withheld %s", json.dumps(counts, sort_keys=True))
        checked = EXPECTATIONS.apply(ctx, allowed)
        # The dictionary before the rows it names: a reader never finds a group it cannot
        # name, and would group by the names if it did. Most days bring no new pairing:
        # then there is nothing to commit.
        new = new_pairings(ctx, checked.frame)
        if new.first() is not None:
            ctx.write(new, READING_KEYS.name, how="merge")
        ctx.write(checked.frame.sortWithinPartitions(*PARTITION_BY, *FILE_ORDER), READINGS.name)
        ctx.write(withheld, WITHHELD.name)
    finally:
        rows.unpersist()
    return None


def new_pairings(ctx, rows):
    """The rows' device and subject pairings (with their keys) not in the dictionary yet
    (the rows are consented ones: the gated dictionary is all they can be compared with)."""
    from edgebatch.warehouse.tables import ensure_table

    ensure_table(ctx.spark, ctx.root, READING_KEYS)
    known = ctx.table(READING_KEYS.name)
    pairs = dictionary_rows(READINGS_KEYED, rows)
    return pairs.join(known, list(READINGS_KEYED.names), "left_anti")


def _by_reason(withheld):
    from pyspark.sql import functions as F

    return (
        withheld.groupBy("reason")
        .agg(F.sum("windows").alias("windows"), F.sum("readings").alias("readings"))
        .collect()
    )


if __name__ == "__main__":
    raise SystemExit(main(silver_readings))
