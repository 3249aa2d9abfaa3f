"""The tables of the warehouse contract (docs/tables.md), declared once for every part to use.

Bronze keeps what the devices sent, one row per batch and metric (revisions of a
window are separate rows that silver merges), partitioned by tenant and the UTC date
of the window so a month's bill reads only that month's files.
"""

from __future__ import annotations

from edgebatch.warehouse.landing.lines import bronze_metric_columns
from edgebatch.warehouse.tables import declare


def _stats_on(*columns: str) -> dict[str, str]:
    """Delta keeps min/max statistics for the first 32 columns by default; most of ours
    (hash ids, sketches, payloads, measures) skip no file, and computing them cost about a
    sixth of a bronze load's write (measured). Only columns queries filter on."""
    return {"delta.dataSkippingStatsColumns": ",".join(columns)}


EDGE_BATCHES = declare(
    "bronze/edge_batches",
    f"""
    batch_id STRING NOT NULL, metric STRING NOT NULL, tenant STRING NOT NULL,
    device STRING NOT NULL, window_start TIMESTAMP NOT NULL, window_end TIMESTAMP NOT NULL,
    revision INT NOT NULL, {bronze_metric_columns()}, agent STRING,
    received_at TIMESTAMP, landed_file STRING, date DATE NOT NULL
    """,
    partition_by=("tenant", "date"),
    keys=("batch_id", "metric"),
    # The contract: the same window and revision always get the same batch_id, so a
    # batch_id has one window, hence one date (and its tenant is in the topic and the id).
    key_fixes_partition=True,
    properties=_stats_on("device", "metric", "window_start", "window_end", "received_at"),
    comment="Window summaries from edge agents, one row per batch and metric.",
)

EDGE_ALARMS = declare(
    "bronze/edge_alarms",
    """
    alarm_id STRING NOT NULL, tenant STRING NOT NULL, device STRING NOT NULL,
    rule STRING, metric STRING, value DOUBLE, threshold DOUBLE, baseline DOUBLE,
    severity STRING, state STRING, ts TIMESTAMP NOT NULL, detail STRING,
    received_at TIMESTAMP, landed_file STRING, date DATE NOT NULL,
    kind STRING, baseline_stddev DOUBLE, agent STRING
    """,
    partition_by=("tenant", "date"),
    keys=("alarm_id",),
    properties=_stats_on("device", "rule", "metric", "severity", "ts", "received_at"),
    comment="Alarms raised on devices, one row per alarm.",
)

DEVICE_HEALTH = declare(
    "bronze/device_health",
    """
    tenant STRING NOT NULL, device STRING NOT NULL, ts TIMESTAMP NOT NULL,
    cpu_percent DOUBLE, memory_percent DOUBLE, disk_percent DOUBLE, load1 DOUBLE,
    uptime_s DOUBLE, temperature_c DOUBLE, outbox_backlog BIGINT, shed_count BIGINT,
    coarsened_count BIGINT, last_send_at TIMESTAMP, agent STRING, payload STRING,
    received_at TIMESTAMP, landed_file STRING, date DATE NOT NULL
    """,
    partition_by=("tenant", "date"),
    keys=("tenant", "device", "ts"),
    key_fixes_partition=True,  # the date is the key's ts's
    properties=_stats_on("device", "ts", "received_at"),
    comment="Device heartbeats: psutil figures and the agent's own backlog and shedding.",
)

QUARANTINE = declare(
    "quarantine/rejected",
    """
    quarantine_id STRING NOT NULL, topic STRING, payload BINARY, reason STRING NOT NULL,
    received_at TIMESTAMP NOT NULL, collector STRING, landed_file STRING, date DATE NOT NULL,
    payload_size BIGINT
    """,
    partition_by=("date",),
    keys=("quarantine_id",),
    properties=_stats_on("topic", "reason", "received_at", "collector"),
    comment="Messages the collector refused, with the raw payload and the reason.",
)

# What the edge sends, as the bronze load writes it; silver and gold tables are declared
# by the jobs that write them.
DECLARED = (EDGE_BATCHES, EDGE_ALARMS, DEVICE_HEALTH, QUARANTINE)
