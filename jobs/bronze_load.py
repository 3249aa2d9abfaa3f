"""Bronze load: landing files not yet loaded, MERGEd into bronze on their keys, exactly once.

    edgebatch run bronze_load        # or: edgebatch submit bronze_load
    spark-submit --properties-file spark-defaults.conf jobs/bronze_load.py [--config FILE]
        [--root URI] [--param files=NAME,NAME]
    load(spark, settings)            # the load itself, in any session

Each landing line is the device's payload as sent, in the collector's envelope
(received_at, topic, normalized times). Tenant and device come from the topic, which
the collector checked against the payload and a broker ACL can vouch for. Bookkeeping
and the crash argument: `edgebatch.warehouse.landing.loads` and docs/collector.md.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from edgebatch.framework.definitions import Retry, job
from edgebatch.framework.entry import main
from edgebatch.framework.partitions import Unpartitioned
from edgebatch.framework.scheduler import LandingBacklog, Schedule
from edgebatch.warehouse import catalog
from edgebatch.warehouse.errors import PartitionGuard
from edgebatch.warehouse.landing import keyscan, loads, open_zone
from edgebatch.warehouse.landing.keyscan import KeyScan
from edgebatch.warehouse.landing.lines import (
    ALARM_LINE,
    BATCH_LINE,
    HEALTH_LINE,
    METRIC_TIMES,
    METRIC_VALUES,
    QUARANTINE_LINE,
)
from edgebatch.warehouse.tables import (
    TableSpec,
    counted,
    ensure_tables,
    merge_new_rows,
    observed_count,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from edgebatch.settings import Settings

_log = logging.getLogger(__name__)

HEALTH_PAYLOAD = (
    "agent STRING, uptime_s DOUBLE, cpu_percent DOUBLE, memory_percent DOUBLE, "
    "disk_percent DOUBLE, load ARRAY<DOUBLE>, temperature_c DOUBLE, "
    "outbox MAP<STRING, DOUBLE>, shed MAP<STRING, DOUBLE>"
)


def read_lines(spark: SparkSession, uris: list[str], schema: str) -> DataFrame:
    """Landing lines with their file's name; FAILFAST, since the collector wrote every line
    whole and a line Spark cannot read means a bug to fix, not a row to drop."""
    from pyspark.sql import functions as F

    df = spark.read.schema(schema).option("mode", "FAILFAST").json(uris)
    landed = F.regexp_extract(F.col("_metadata.file_path"), r"/landing/(.+)$", 1)
    return df.withColumn("landed_file", landed)


def _topic_part(i: int) -> Column:
    from pyspark.sql import functions as F

    return F.split(F.col("topic"), "/").getItem(i)


def _ts(col: Column) -> Column:
    from pyspark.sql import functions as F

    return F.timestamp_micros(F.round(col * F.lit(1_000_000)).cast("bigint"))


def batch_rows(lines: DataFrame) -> DataFrame:
    """One row per batch and metric; revisions of one window stay separate rows."""
    from pyspark.sql import functions as F

    exploded = lines.select("*", F.posexplode("payload.metrics").alias("i", "m"))
    window_start = _ts(F.col("norm.ws"))
    return exploded.select(
        F.col("payload.batch_id").alias("batch_id"),
        F.col("m.name").alias("metric"),
        _topic_part(1).alias("tenant"),
        _topic_part(2).alias("device"),
        window_start.alias("window_start"),
        _ts(F.col("norm.we")).alias("window_end"),
        F.col("payload.revision").alias("revision"),
        *(F.col(f"m.{c}").alias(c) for c in METRIC_VALUES),
        *(_ts(F.col("norm.m")[F.col("i")][k]).alias(c) for k, c in enumerate(METRIC_TIMES)),
        F.col("payload.agent").alias("agent"),
        F.to_timestamp("received_at").alias("received_at"),
        "landed_file",
        F.to_date(window_start).alias("date"),
    )


def alarm_rows(lines: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    ts = _ts(F.col("norm.ts"))
    return lines.select(
        F.col("payload.alarm_id").alias("alarm_id"),
        _topic_part(1).alias("tenant"),
        _topic_part(2).alias("device"),
        *(F.col(f"payload.{c}").alias(c) for c in ("rule", "metric", "value", "threshold")),
        F.col("payload.baseline.mean").alias("baseline"),
        F.col("payload.severity").alias("severity"),
        F.col("payload.state").alias("state"),
        ts.alias("ts"),
        F.when(F.col("payload.baseline").isNotNull(), F.to_json("payload.baseline")).alias(
            "detail"
        ),
        F.to_timestamp("received_at").alias("received_at"),
        "landed_file",
        F.to_date(ts).alias("date"),
        F.col("payload.kind").alias("kind"),
        F.col("payload.baseline.stddev").alias("baseline_stddev"),
        F.col("payload.agent").alias("agent"),
    )


def health_rows(lines: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    p = F.from_json("payload", HEALTH_PAYLOAD)
    ts = _ts(F.col("norm.ts"))
    shed = p["shed"]
    dropped = (
        F.coalesce(shed["dropped_heartbeats"], F.lit(0.0))
        + F.coalesce(shed["dropped_summaries"], F.lit(0.0))
        + F.coalesce(shed["dropped_readings"], F.lit(0.0))
    )
    return lines.select(
        _topic_part(1).alias("tenant"),
        _topic_part(2).alias("device"),
        ts.alias("ts"),
        p["cpu_percent"].alias("cpu_percent"),
        p["memory_percent"].alias("memory_percent"),
        p["disk_percent"].alias("disk_percent"),
        p["load"][0].alias("load1"),
        p["uptime_s"].alias("uptime_s"),
        p["temperature_c"].alias("temperature_c"),
        p["outbox"]["backlog"].cast("bigint").alias("outbox_backlog"),
        dropped.cast("bigint").alias("shed_count"),
        shed["coarsened"].cast("bigint").alias("coarsened_count"),
        _ts(F.col("norm.ls")).alias("last_send_at"),
        p["agent"].alias("agent"),
        F.col("payload"),
        F.to_timestamp("received_at").alias("received_at"),
        "landed_file",
        F.to_date(ts).alias("date"),
    )


def quarantine_rows(lines: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    received = F.to_timestamp("received_at")
    return lines.select(
        "quarantine_id",
        "topic",
        F.unbase64("payload_b64").alias("payload"),
        "reason",
        received.alias("received_at"),
        "collector",
        "landed_file",
        F.to_date(received).alias("date"),
        "payload_size",
    )


Builder = Callable[["DataFrame"], "DataFrame"]
# Landing kind -> (table, line schema, rows); the order in which one load MERGEs them.
TARGETS: tuple[tuple[str, TableSpec, str, Builder], ...] = (
    ("batch", catalog.EDGE_BATCHES, BATCH_LINE, batch_rows),
    ("alarm", catalog.EDGE_ALARMS, ALARM_LINE, alarm_rows),
    ("health", catalog.DEVICE_HEALTH, HEALTH_LINE, health_rows),
    ("quarantine", catalog.QUARANTINE, QUARANTINE_LINE, quarantine_rows),
)


def load(spark: SparkSession, settings: Settings, files: Iterable[str] | None = None) -> dict:
    """Load what has landed and is not loaded yet (limited to `files` if given: names or URIs).

    Returns counts: the load id, files taken, and per table the rows read and inserted.
    Running it again, or over files already loaded, changes no table.
    """
    from edgebatch.warehouse.uri import WarehouseRoot

    root = WarehouseRoot.parse(settings.warehouse_root)
    zone = open_zone(
        root, webhdfs_url=settings.warehouse.webhdfs_url, hdfs_user=settings.warehouse.hdfs_user
    )
    # Every table this load writes exists from its first run on, even before any row of
    # its kind arrives: readers of quarantine/rejected must not fail on an absent table.
    ensure_tables(spark, root, (spec for _, spec, _, _ in TARGETS))
    plan = loads.plan(zone, files)
    if plan is None:
        return {"load_id": None, "files": 0, "resumed": False, "tables": {}}
    tables: dict[str, dict[str, int]] = {}
    run = uuid.uuid4().hex[:12]
    utc = spark.conf.get("spark.sql.session.timeZone") in ("UTC", "Etc/UTC")
    for kind, spec, schema, rows in TARGETS:
        taken = [f for f in plan.files if f.kind == kind]
        if not taken:
            continue
        # Dates are computed in the session's time zone; the scan computes them in UTC.
        scanned = keyscan.scan(zone, taken, kind) if spec.key_fixes_partition and utc else None
        df = rows(read_lines(spark, [f.uri for f in taken], schema))
        tag = f"{run}:{spec.name}"
        tables[spec.name] = _merge(spark, root, spec, df, plan.load_id, tag, scanned)
    loads.commit(zone, plan)
    return {
        "load_id": plan.load_id,
        "files": len(plan.files),
        "resumed": plan.resumed,
        "tables": tables,
    }


def _merge(
    spark, root, spec: TableSpec, df: DataFrame, load_id: int, tag: str, scanned: KeyScan | None
) -> dict:
    """MERGE as this load's Delta transaction; a table that already has it skips it.

    With the key scan of the load's files, the MERGE reads only the partitions they go
    to and drops repeated keys only if there are some; should a row fall outside those
    partitions (a scan that disagrees with Spark), the guard fails it uncommitted and it
    runs again as the plain MERGE.

    The counts come from the MERGE's own result and an Observation on the rows read,
    not from a history lookup afterwards (a Spark job per table, and a race with any
    other writer of the table).
    """
    read, observed = counted(df, f"bronze_load:{tag}")
    try:
        inserted = merge_new_rows(
            spark,
            root,
            spec,
            observed,
            app_id=loads.APP_ID,
            txn_version=load_id,
            user_metadata=tag,
            partitions=None if scanned is None else scanned.partitions,
            unique=scanned is not None and not scanned.repeats,
            # Landing files are in arrival order: each task's rows span few dates, and
            # a shuffle by (tenant, date) would move every row to save a few files.
            repartition=False,
        )
    except PartitionGuard as exc:
        if scanned is None:
            raise
        _log.warning("%s; loading %s without its key scan", exc, spec.name)
        read, observed = counted(df, f"bronze_load:{tag}:plain")
        inserted = merge_new_rows(
            spark,
            root,
            spec,
            observed,
            app_id=loads.APP_ID,
            txn_version=load_id,
            user_metadata=tag,
        )
    if inserted is None:
        # Delta skipped it: this table committed the load already (a resumed load).
        # The source was never read then, so the Observation must not be waited on.
        return {"inserted": 0, "source_rows": 0, "committed": 0}
    # A MERGE with a txn pair commits even when nothing is new: it records the pair.
    return {"inserted": inserted, "source_rows": observed_count(read) or 0, "committed": 1}


@job(
    outputs=[spec.name for _, spec, _, _ in TARGETS],
    write="merge",
    partitions=Unpartitioned(),
    pool="critical",
    priority=90,
    retry=Retry(attempts=3, backoff_s=5),
    tags=("bronze", "ingest"),
    # Started by the scheduler once 16 MiB of landing files wait, or the oldest is a minute old.
    schedule=Schedule(triggers=[LandingBacklog(size_bytes=16 << 20, age_s=60)]),
)
def bronze_load(ctx) -> None:
    """Landing files not yet loaded, MERGEd into bronze exactly once (see `load`)."""
    files = ctx.params.get("files")
    counts = load(ctx.spark, ctx.settings, files.split(",") if files else None)
    ctx.count_in(counts["files"])
    ctx.rows_out += sum(t.get("inserted", 0) for t in counts["tables"].values())
    ctx.log.info("bronze load %s", json.dumps(counts, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main(bronze_load))
