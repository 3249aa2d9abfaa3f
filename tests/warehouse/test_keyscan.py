"""The driver's key scan of landing files, and the MERGE it lets the bronze load narrow.

The scan must agree with Spark on every row's partition, or the guard stops the MERGE:
the agreement is checked against Spark itself on times chosen to straddle midnight by
less than a microsecond's rounding.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest

from edgebatch.edge.wire import topic
from edgebatch.warehouse import catalog
from edgebatch.warehouse.collector.records import envelope
from edgebatch.warehouse.errors import PartitionGuard
from edgebatch.warehouse.landing import LandingZone, LocalStore
from edgebatch.warehouse.landing.keyscan import micros, scan, utc_date
from edgebatch.warehouse.uri import WarehouseRoot
from tests.warehouse.helpers import T0, batch, health, land_directly

MIDNIGHT = 1_795_046_400.0  # 2026-11-19T00:00:00Z
# Around midnight by less than the rounding to microseconds, and at exact half microseconds.
EDGES = [
    MIDNIGHT,
    MIDNIGHT - 1e-7,
    MIDNIGHT - 4e-7,
    MIDNIGHT - 6e-7,
    MIDNIGHT - 1e-6,
    MIDNIGHT + 1e-7,
    0.0000005,
    1.5e-6,
    2.5e-6,
    86_399.9999995,
    86_399.9999994,
]


def sent(kind: str, tenant: str, device: str, message: tuple[str, bytes]) -> tuple[str, bytes]:
    """(topic, payload) as an agent publishes the (id, payload) the helpers build."""
    return topic(tenant, device, kind), message[1]


def B(tenant: str, device: str, i: int, revision: int = 0) -> tuple[str, bytes]:
    return sent("batch", tenant, device, batch(tenant, device, i, revision))


def H(tenant: str, device: str, i: int) -> tuple[str, bytes]:
    return sent("health", tenant, device, health(tenant, device, i))


def zone_at(tmp_path: Path) -> LandingZone:
    return LandingZone(WarehouseRoot.parse((tmp_path / "wh").as_uri()), LocalStore(), "test")


def batch_line(tenant: str, device: str, batch_id: str, ws: float) -> bytes:
    """A landing line as the collector writes it, with `ws` exactly as given (the wire's
    millisecond text could not carry these times; the landing line's `norm` can)."""
    metric = {"name": "temp", "unit": "C", "count": 1, "sum": 1.0, "min": 1.0, "max": 1.0}
    payload = {"v": 1, "batch_id": batch_id, "revision": 0, "agent": "t", "metrics": [metric]}
    norm = json.dumps({"ws": ws, "we": ws + 60, "m": [[ws, ws]]}).encode()
    topic = f"edgebatch/{tenant}/{device}/batch"
    return envelope(topic, json.dumps(payload).encode(), T0, norm)


def test_micros_round_half_up_as_spark_does():
    assert micros(0.0000005) == 1
    assert micros(2.5e-6) == 3
    assert micros(-2.5e-6) == -3  # away from zero
    assert micros(-0.0000004) == 0
    assert micros(1_795_000_000.25) == 1_795_000_000_250_000
    assert utc_date(micros(MIDNIGHT)) == dt.date(2026, 11, 19)
    assert utc_date(micros(MIDNIGHT - 1e-3)) == dt.date(2026, 11, 18)
    assert utc_date(-1) == dt.date(1969, 12, 31)


def test_scan_finds_the_partitions_and_no_repeat(tmp_path):
    zone = zone_at(tmp_path)
    messages = [B("acme", f"d{d}", i) for d in range(3) for i in range(0, 3000, 700)]
    messages += [H("acme", "d0", i) for i in range(5)] + [H("beta", "d9", 2000)]
    land_directly(zone, messages, per_file=4)
    files = zone.list()
    batches = scan(zone, [f for f in files if f.kind == "batch"], "batch")
    assert batches is not None and not batches.repeats
    assert batches.lines == 15
    days = {utc_date(micros(T0 + 60 * i)) for i in range(0, 3000, 700)}
    assert set(batches.partitions) == {("acme", d) for d in days}
    healths = scan(zone, [f for f in files if f.kind == "health"], "health")
    assert healths is not None and not healths.repeats and healths.lines == 6
    assert ("beta", utc_date(micros(T0 + 60 * 2000))) in healths.partitions


def test_a_key_resent_in_another_file_is_a_repeat(tmp_path):
    zone = zone_at(tmp_path)
    land_directly(zone, [B("acme", "d1", i) for i in range(4)], per_file=2)
    land_directly(zone, [B("acme", "d1", 3)])
    found = scan(zone, zone.list(), "batch")
    assert found is not None and found.repeats and found.lines == 5
    # A revision of a window has its own batch id: its rows are new keys, not repeats.
    zone2 = zone_at(tmp_path / "rev")
    land_directly(zone2, [B("acme", "d1", 1), B("acme", "d1", 1, revision=1)])
    again = scan(zone2, zone2.list(), "batch")
    assert again is not None and not again.repeats and again.lines == 2


def test_no_scan_for_kinds_without_one_or_lines_it_cannot_read(tmp_path):
    zone = zone_at(tmp_path)
    land_directly(zone, [B("acme", "d1", 1)])
    assert scan(zone, zone.list(), "alarm") is None
    assert scan(zone, [], "batch") is None
    assert scan(zone, zone.list(), "batch", max_bytes=10) is None  # too big for the driver
    zone.write("batch", b'{"topic":"edgebatch/acme/d1/batch","norm":null,"payload":{}}\n')
    assert scan(zone, zone.list(), "batch") is None


@pytest.mark.integration
def test_the_scan_agrees_with_spark_on_every_partition(spark, tmp_path):
    from edgebatch.jobs.bronze_load import BATCH_LINE, batch_rows, read_lines

    zone = zone_at(tmp_path)
    rng = random.Random(7)
    times = EDGES + [rng.uniform(0, 4e9) for _ in range(300)]
    times += [MIDNIGHT + rng.randint(-5, 5) * 5e-7 for _ in range(100)]
    lines = [batch_line(f"t{i % 3}", "d", f"b{i}", ws) for i, ws in enumerate(times)]
    zone.write("batch", b"".join(lines))
    found = scan(zone, zone.list(), "batch")
    assert found is not None
    rows = batch_rows(read_lines(spark, [f.uri for f in zone.list()], BATCH_LINE))
    spark_parts = {(r.tenant, r.date) for r in rows.select("tenant", "date").collect()}
    assert set(found.partitions) == spark_parts
    per_row = {
        r.batch_id: r.date
        for r in rows.select("batch_id", "date").collect()  # one metric: one row per batch
    }
    assert all(per_row[f"b{i}"] == utc_date(micros(ws)) for i, ws in enumerate(times))


@pytest.mark.integration
def test_a_row_outside_the_announced_partitions_fails_the_merge_uncommitted(spark, warehouse_root):
    from delta.tables import DeltaTable

    from edgebatch.warehouse.tables import ensure_table, merge_new_rows

    spec = catalog.DEVICE_HEALTH
    ensure_table(spark, warehouse_root, spec)
    ts = dt.datetime(2026, 11, 19, 12, tzinfo=dt.UTC)
    df = spark.createDataFrame(
        [("acme", "d1", ts, dt.date(2026, 11, 19)), ("acme", "d2", ts, dt.date(2026, 11, 19))],
        "tenant STRING, device STRING, ts TIMESTAMP, date DATE",
    )
    right = [("acme", dt.date(2026, 11, 19))]
    wrong = [("acme", dt.date(2026, 11, 18))]
    with pytest.raises(PartitionGuard, match="announced"):
        merge_new_rows(spark, warehouse_root, spec, df, partitions=wrong, unique=True)
    history = DeltaTable.forPath(spark, spec.location(warehouse_root)).history().collect()
    assert [h.operation for h in history] == ["CREATE TABLE"]
    assert merge_new_rows(spark, warehouse_root, spec, df, partitions=right, unique=True) == 2
    assert merge_new_rows(spark, warehouse_root, spec, df, partitions=right, unique=True) == 0
    with pytest.raises(Exception, match="key_fixes_partition"):
        merge_new_rows(spark, warehouse_root, catalog.EDGE_ALARMS, df, partitions=right)
