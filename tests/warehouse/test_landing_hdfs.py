"""The landing zone on a real HDFS: the collector lands through WebHDFS, Spark loads the same
files as hdfs:// into bronze on the same root."""

from __future__ import annotations

import uuid

import pytest

from edgebatch.jobs.bronze_load import load
from edgebatch.settings import Settings, WarehouseSettings
from edgebatch.warehouse import catalog
from edgebatch.warehouse.landing import LandingError, WebHdfsStore, loads, open_zone
from edgebatch.warehouse.tables import read_table
from edgebatch.warehouse.uri import WarehouseRoot
from tests.support.hdfs import MiniHdfs
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_until
from tests.warehouse.helpers import SimAgent, batch, running_collector

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def hdfs_root(hdfs: MiniHdfs) -> WarehouseRoot:
    return WarehouseRoot.parse(f"{hdfs.uri}/edgebatch-{uuid.uuid4().hex[:8]}")


def test_webhdfs_landing_is_atomic_listed_in_order_and_never_overwrites(hdfs, hdfs_root):
    zone = open_zone(hdfs_root, webhdfs_url=hdfs.webhdfs_url, hdfs_user="collector")
    assert isinstance(zone.store, WebHdfsStore)
    first = zone.write("batch", b'{"a":1}\n', now=1_795_000_000)
    second = zone.write("alarm", b'{"b":2}\n', now=1_795_000_001)
    client = hdfs.client("collector")
    folder = hdfs_root.resolve("landing/batch/date=2026-11-18")
    client.write(f"{folder}/.half-written.tmp", data=b"half")
    assert [f.name for f in zone.list()] == [first.name, second.name]
    assert first.uri.startswith(f"{hdfs.uri}/") and first.size == 8
    with client.read(hdfs_root.resolve(f"landing/{first.name}")) as reader:
        assert reader.read() == b'{"a":1}\n'
    with pytest.raises(LandingError, match="could not land"):
        zone.store.write_atomic(hdfs_root.resolve(f"landing/{first.name}"), b"again\n")
    assert zone.backlog([first.name]).files == 1


def test_the_load_log_on_hdfs_refuses_a_second_plan_for_the_same_slot(hdfs, hdfs_root, monkeypatch):
    zone = open_zone(hdfs_root, webhdfs_url=hdfs.webhdfs_url, hdfs_user="collector")
    zone.write("batch", b'{"a":1}\n', now=1_795_000_000)
    stale = loads.read_log(zone)
    first = loads.plan(zone)
    assert first is not None
    monkeypatch.setattr(loads, "read_log", lambda _zone: stale)
    with pytest.raises(loads.LoadConflict, match="at the same time"):
        loads.plan(zone)
    monkeypatch.undo()
    loads.commit(zone, first)
    assert loads.backlog(zone).files == 0 and loads.plan(zone) is None


def test_collector_lands_on_hdfs_and_spark_loads_it_from_hdfs(
    spark, hdfs, hdfs_root, broker: Mosquitto
):
    zone = open_zone(hdfs_root, webhdfs_url=hdfs.webhdfs_url, hdfs_user="collector")
    with running_collector(zone, broker.port, client_id="hdfs-collector") as (collector, _):
        agent = SimAgent("acme", "dev-h", broker.port, resend_after=30)
        try:
            ids = set()
            for i in range(40):
                batch_id, payload = batch("acme", "dev-h", i)
                agent.send(batch_id, "batch", payload)
                ids.add(batch_id)
            for i in range(10):  # resends
                agent.send(*_with_kind(batch("acme", "dev-h", i)))
            wait_until(lambda: agent.pending() == 0, 30, "receipts from the HDFS landing")
        finally:
            agent.close()
    assert collector.stats.landed == 50 and collector.stats.landing_failures == 0
    session = spark.newSession()
    session.conf.set("spark.databricks.delta.snapshotPartitions", "2")
    warehouse = WarehouseSettings(
        root=hdfs_root.uri(), webhdfs_url=hdfs.webhdfs_url, hdfs_user="collector"
    )
    result = load(session, Settings(warehouse=warehouse))
    assert result["tables"]["bronze/edge_batches"]["inserted"] == 80
    bronze = read_table(session, hdfs_root, catalog.EDGE_BATCHES)
    assert {r.batch_id for r in bronze.select("batch_id").collect()} == ids
    assert catalog.EDGE_BATCHES.location(hdfs_root).startswith("hdfs://")


def _with_kind(pair: tuple[str, bytes]) -> tuple[str, str, bytes]:
    return pair[0], "batch", pair[1]
