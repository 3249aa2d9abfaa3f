"""Small bronze tables for the API's tests, written with delta-rs under the test's root
with the columns the API reads (the bronze load writes the same columns with Spark)."""

from __future__ import annotations

import datetime as dt

from edgebatch.warehouse.catalog import DEVICE_HEALTH, EDGE_ALARMS
from edgebatch.warehouse.uri import WarehouseRoot


def write_health(root: WarehouseRoot, rows: list[dict]) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    ts = pa.timestamp("us", tz="UTC")
    schema = pa.schema(
        [
            ("tenant", pa.string()),
            ("device", pa.string()),
            ("ts", ts),
            ("cpu_percent", pa.float64()),
            ("memory_percent", pa.float64()),
            ("disk_percent", pa.float64()),
            ("load1", pa.float64()),
            ("uptime_s", pa.float64()),
            ("temperature_c", pa.float64()),
            ("outbox_backlog", pa.int64()),
            ("shed_count", pa.int64()),
            ("coarsened_count", pa.int64()),
            ("last_send_at", ts),
            ("agent", pa.string()),
            ("received_at", ts),
            ("date", pa.date32()),
        ]
    )
    full = [
        {
            **{f.name: None for f in schema},
            "cpu_percent": 10.0,
            "memory_percent": 20.0,
            "disk_percent": 30.0,
            "outbox_backlog": 0,
            "shed_count": 0,
            **r,
            "date": r["ts"].date(),
        }
        for r in rows
    ]
    table = pa.Table.from_pylist(full, schema=schema)
    write_deltalake(
        root.resolve(DEVICE_HEALTH.name), table, partition_by=["tenant", "date"], mode="append"
    )


def write_alarms(root: WarehouseRoot, rows: list[dict]) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    schema = pa.schema(
        [
            ("alarm_id", pa.string()),
            ("tenant", pa.string()),
            ("device", pa.string()),
            ("rule", pa.string()),
            ("kind", pa.string()),
            ("metric", pa.string()),
            ("value", pa.float64()),
            ("threshold", pa.float64()),
            ("baseline", pa.float64()),
            ("severity", pa.string()),
            ("state", pa.string()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("detail", pa.string()),
            ("date", pa.date32()),
        ]
    )
    full = [
        {**{f.name: None for f in schema}, "severity": "warning", **r, "date": r["ts"].date()}
        for r in rows
    ]
    write_deltalake(
        root.resolve(EDGE_ALARMS.name),
        pa.Table.from_pylist(full, schema=schema),
        partition_by=["tenant", "date"],
        mode="append",
    )


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)
