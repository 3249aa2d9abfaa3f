"""Every table the demo writes opens in delta-rs (`deltalake`, the reader under Polars and
pandas) with the same rows Spark reads: the demo's jobs (bronze load, daily rollup) on
landing files of every kind, quarantine included."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable as RustTable

from edgebatch.edge.wire import Alarm, Batch, Health
from edgebatch.jobs.bronze_load import load
from edgebatch.settings import Settings, StateSettings, WarehouseSettings
from edgebatch.warehouse.collector.limits import normalized_times
from edgebatch.warehouse.collector.parsing import parse_message
from edgebatch.warehouse.collector.records import envelope, quarantine_line
from edgebatch.warehouse.landing import LandingZone, LocalStore
from edgebatch.warehouse.tables import REGISTRY, ensure_tables, read_table
from edgebatch.warehouse.uri import WarehouseRoot
from tests.support.consent import grant
from tests.warehouse.helpers import alarm, batch, health

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEMO_TABLES = (
    "bronze/edge_batches",
    "bronze/edge_alarms",
    "bronze/device_health",
    "quarantine/rejected",
    "silver/device_daily",
)


def land_every_kind(zone: LandingZone) -> None:
    """Windows over three days, alarms, heartbeats and one refused message, as the
    collector lands them."""
    now = time.time()
    lines: dict[str, list[bytes]] = {"batch": [], "alarm": [], "health": []}
    for d in range(2):
        device = f"dev-{d}"
        messages = [("batch", batch("acme", device, i)) for i in range(0, 2880, 97)]
        messages += [("alarm", alarm("acme", device, i)) for i in range(2)]
        messages += [("health", health("acme", device, i)) for i in range(2)]
        for kind, (_, payload) in messages:
            name = f"edgebatch/acme/{device}/{kind}"
            message = parse_message(name, payload)
            assert isinstance(message, Batch | Alarm | Health)
            norm = normalized_times(message)
            lines[kind].append(envelope(name, payload, now, norm))
    for kind, chunk in lines.items():
        zone.write(kind, b"".join(chunk))
    zone.write("quarantine", quarantine_line("edgebatch/acme/x/batch", b"{no", "bad", now, "t"))


def register_and_grant(spark, root, tenant: str, devices: list[str]) -> None:
    """Registry rows (each device its own subject) and consent, so the gated rollup has rows."""
    from edgebatch.warehouse.reference import DEVICES

    rows = [
        (tenant, d, None, "water_meter", "customer", d, None, dt.date(2026, 1, 1), None)
        for d in devices
    ]
    ensure_tables(spark, root, [DEVICES])
    spark.createDataFrame(rows, DEVICES.struct()).write.format("delta").mode("append").save(
        DEVICES.location(root)
    )
    grant(spark, root, tenant, devices)


def _plain(value):
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


def _rows(records, columns) -> list[tuple]:
    return sorted((tuple(_plain(r[c]) for c in columns) for r in records), key=repr)


def test_every_demo_table_opens_in_deltalake_with_the_rows_spark_reads(spark, tmp_path: Path):
    from edgebatch.framework.registry import discover
    from edgebatch.framework.requests import RunRequest
    from edgebatch.framework.runner import Runner
    from edgebatch.framework.state import RunState, StateStore

    home = tmp_path / "home"
    home.mkdir()
    root = WarehouseRoot.parse((tmp_path / "warehouse").as_uri())
    settings = Settings(
        home=home,
        warehouse=WarehouseSettings(root=root.uri()),
        state=StateSettings(url=f"sqlite:///{home / 'state.db'}"),
    )
    land_every_kind(LandingZone(root, LocalStore(), "test"))
    store = StateStore(settings.state_url)
    runner = Runner(spark, store, settings, discover(settings))
    try:
        ensure_tables(spark, root, (REGISTRY.get(name) for name in DEMO_TABLES))
        assert load(spark, settings)["files"] == 4
        register_and_grant(spark, root, "acme", ["dev-0", "dev-1"])  # the rollup is gated
        daily = runner.run(RunRequest("device_daily", start="2026-11-18", end="2026-11-20"))
    finally:
        runner.close()
        store.close()
    assert daily.state == RunState.SUCCEEDED, daily.error

    for name in DEMO_TABLES:
        spec = REGISTRY.get(name)
        location = spec.location(root)
        theirs = RustTable(location)
        assert theirs.protocol().min_reader_version == 1, name
        columns = spec.columns()
        ours = _rows(read_table(spark, root, spec).collect(), columns)
        assert ours, f"{name} is empty: the test would prove nothing"
        assert _rows(theirs.to_pyarrow_table().to_pylist(), columns) == ours, name


def test_the_bronze_load_creates_every_table_it_writes_before_any_row(spark, tmp_path):
    from edgebatch.jobs.bronze_load import TARGETS
    from edgebatch.warehouse.inventory import table_state

    root = WarehouseRoot.parse((tmp_path / "warehouse").as_uri())
    settings = Settings(home=tmp_path, warehouse=WarehouseSettings(root=root.uri()))

    result = load(spark, settings)  # nothing has landed yet

    assert result["files"] == 0
    for _, spec, _, _ in TARGETS:  # quarantine/rejected included: nothing was refused yet
        assert read_table(spark, root, spec).count() == 0
        assert table_state(root, spec).version == 0
