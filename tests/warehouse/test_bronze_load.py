"""Agents to bronze on real Mosquitto, Spark and Delta: exactly the distinct batches, a load
killed with kill -9 resumes to the same tables as a clean run, and replays change nothing.

One module fixture does the expensive part once: agents publish through the collector,
the landing files are copied to a second root, a `spark-submit` of the job is killed
on the first root right after its first bronze commit, the load is resumed there and
run cleanly on the copy.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgebatch.jobs.bronze_load import load
from edgebatch.settings import Settings, WarehouseSettings
from edgebatch.warehouse import catalog
from edgebatch.warehouse.landing import LandingZone, LocalStore, loads
from edgebatch.warehouse.tables import read_table
from edgebatch.warehouse.uri import WarehouseRoot
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_until
from tests.warehouse.helpers import (
    REPO,
    T0,
    SimAgent,
    alarm,
    batch,
    client,
    corpus,
    health,
    running_collector,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOWS, RESENT, DEVICES = 30, 10, 3
FORGED_ID = "0f" * 16
# Delta rebuilds a table's state in 50 partitions by default: 50 tasks per snapshot of a
# tiny table on 2 busy cores cost this suite minutes. docs/collector.md says more.
SNAPSHOT_PARTITIONS = "spark.databricks.delta.snapshotPartitions"
BRONZE = (catalog.EDGE_BATCHES, catalog.EDGE_ALARMS, catalog.DEVICE_HEALTH, catalog.QUARANTINE)


@dataclasses.dataclass
class Loaded:
    killed: WarehouseRoot
    clean: WarehouseRoot
    distinct_batches: set[str]
    bad: int
    files: int
    killed_result: dict
    clean_result: dict
    killed_before_commit: bool


def settings_for(root: WarehouseRoot, home: Path) -> Settings:
    return Settings(home=home, warehouse=WarehouseSettings(root=root.uri()))


def publish_through_the_collector(zone: LandingZone, broker: Mosquitto) -> tuple[set[str], int]:
    """Agents send windows (some twice, some revised), alarms, heartbeats; garbage beside."""
    distinct: set[str] = set()
    bad = corpus()[:6]
    with running_collector(zone, broker.port, client_id="bronze-e2e") as (collector, _):
        agents = [
            SimAgent("acme", f"dev-{d}", broker.port, resend_after=30) for d in range(DEVICES)
        ]
        try:
            for agent in agents:
                for i in range(WINDOWS):
                    batch_id, payload = batch(agent.tenant, agent.device, i)
                    agent.send(batch_id, "batch", payload)
                    distinct.add(batch_id)
                for i in range(RESENT):  # resends of the same windows: the same ids
                    agent.send(*_id_kind_payload(batch(agent.tenant, agent.device, i), "batch"))
                for i in range(3):  # late readings: revision 1 is a new batch
                    revised = batch(agent.tenant, agent.device, i, revision=1)
                    agent.send(*_id_kind_payload(revised, "batch"))
                    distinct.add(revised[0])
                for i in range(2):
                    agent.send(*_id_kind_payload(alarm(agent.tenant, agent.device, i), "alarm"))
                    agent.client.publish(
                        f"edgebatch/acme/{agent.device}/health",
                        health(agent.tenant, agent.device, i)[1],
                        qos=1,
                    )
            pub = client("bronze-garbage", broker.port)
            for _, name, payload in bad:
                pub.publish(name, payload, qos=1).wait_for_publish(10)
            for agent in agents:  # a real window under a made-up id: refused, not counted twice
                doc = json.loads(batch(agent.tenant, agent.device, 0)[1])
                doc["batch_id"] = FORGED_ID
                name = f"edgebatch/{agent.tenant}/{agent.device}/batch"
                pub.publish(name, json.dumps(doc).encode(), qos=1).wait_for_publish(10)
            pub.loop_stop()
            pub.disconnect()
            wait_until(lambda: all(a.pending() == 0 for a in agents), 30, "every receipt")
            quarantined = len(bad) + len(agents)
            wait_until(lambda: collector.stats.quarantined == quarantined, 10, "quarantine")
        finally:
            for agent in agents:
                agent.close()
    return distinct, quarantined


def _id_kind_payload(pair: tuple[str, bytes], kind: str) -> tuple[str, str, bytes]:
    return pair[0], kind, pair[1]


def kill_load_after_first_bronze_commit(root: WarehouseRoot, home: Path) -> bool:
    """`spark-submit` the job and kill -9 it as soon as bronze/edge_batches has its MERGE.
    True if it died before committing the load (the expected case)."""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "EDGEBATCH_HOME": str(home)}
    env.pop("EDGEBATCH_CONFIG", None)
    cmd = [
        str(Path(sys.executable).parent / "spark-submit"),
        "--properties-file",
        "spark-defaults.conf",
        "--master",
        "local[1]",
        "--driver-memory",
        "768m",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        f"{SNAPSHOT_PARTITIONS}=2",
        "jobs/bronze_load.py",
        "--root",
        root.uri(),
    ]
    output = (home / "spark-submit.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)
    first_merge = Path(root.resolve("bronze/edge_batches/_delta_log/00000000000000000001.json"))
    deadline = time.monotonic() + 240
    try:
        while not first_merge.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"spark-submit ended ({proc.returncode}) before its first bronze commit; "
                    f"see {home / 'spark-submit.log'}"
                )
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
    log = loads.read_log(LandingZone(root, LocalStore()))
    return len(log.plans) == 1 and not log.done  # planned, never committed


@pytest.fixture(scope="module")
def delta(spark):
    """The shared session's SQL twin with small Delta snapshots (the shared conf untouched)."""
    session = spark.newSession()
    session.conf.set(SNAPSHOT_PARTITIONS, "2")
    return session


@pytest.fixture(scope="module")
def loaded(delta, broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    base = tmp_path_factory.mktemp("bronze")
    killed = WarehouseRoot.parse((base / "killed").as_uri())
    clean = WarehouseRoot.parse((base / "clean").as_uri())
    zone = LandingZone(killed, LocalStore(), writer="e2e")
    distinct, bad = publish_through_the_collector(zone, broker)
    files = zone.backlog([]).files
    shutil.copytree(killed.resolve("landing"), clean.resolve("landing"))
    before_commit = kill_load_after_first_bronze_commit(killed, base)
    killed_result = load(delta, settings_for(killed, base))
    clean_result = load(delta, settings_for(clean, base))
    return Loaded(killed, clean, distinct, bad, files, killed_result, clean_result, before_commit)


def rows(spark, root: WarehouseRoot, spec) -> list[tuple]:
    return sorted(tuple(r) for r in read_table(spark, root, spec).collect())


def versions(spark, root: WarehouseRoot, spec) -> list[int]:
    from delta.tables import DeltaTable

    history = DeltaTable.forPath(spark, spec.location(root)).history()
    return sorted(r.version for r in history.select("version").collect())


def test_bronze_holds_exactly_the_distinct_batches(delta, loaded: Loaded):
    batches = read_table(delta, loaded.clean, catalog.EDGE_BATCHES)
    keys = [(r.batch_id, r.metric) for r in batches.select("batch_id", "metric").collect()]
    assert len(keys) == len(set(keys)) == 2 * len(loaded.distinct_batches)
    assert {k[0] for k in keys} == loaded.distinct_batches
    assert read_table(delta, loaded.clean, catalog.EDGE_ALARMS).count() == 2 * DEVICES
    assert read_table(delta, loaded.clean, catalog.DEVICE_HEALTH).count() == 2 * DEVICES
    assert read_table(delta, loaded.clean, catalog.QUARANTINE).count() == loaded.bad
    tables = loaded.clean_result["tables"]
    assert tables["bronze/edge_batches"]["inserted"] == 2 * len(loaded.distinct_batches)
    assert loaded.clean_result["files"] == loaded.files


def test_a_window_sent_under_a_forged_id_is_quarantined_and_counted_once(delta, loaded: Loaded):
    from pyspark.sql import functions as F

    batches = read_table(delta, loaded.clean, catalog.EDGE_BATCHES)
    assert batches.where(F.col("batch_id") == FORGED_ID).count() == 0
    first = batches.where(F.col("window_start") == F.timestamp_seconds(F.lit(T0)))
    # Window 0 of each device: sent, resent under its true id, forged; one row per metric.
    assert first.where(F.col("revision") == 0).count() == 2 * DEVICES
    reasons = read_table(delta, loaded.clean, catalog.QUARANTINE).where(
        F.col("reason").contains(f"field 'batch_id' '{FORGED_ID}' is not the id")
    )
    assert reasons.count() == DEVICES


def test_a_load_killed_mid_run_resumes_to_the_same_tables_as_a_clean_run(delta, loaded: Loaded):
    assert loaded.killed_before_commit, "the kill came after the load committed"
    assert loaded.killed_result["resumed"] is True
    # Delta skipped the MERGE the killed run had committed (same txnAppId and txnVersion).
    assert loaded.killed_result["tables"]["bronze/edge_batches"]["committed"] == 0
    assert versions(delta, loaded.killed, catalog.EDGE_BATCHES) == [0, 1]
    for spec in BRONZE:
        assert rows(delta, loaded.killed, spec) == rows(delta, loaded.clean, spec), spec.name


def test_a_second_load_takes_nothing_and_commits_nothing(delta, loaded: Loaded, tmp_path):
    zone = LandingZone(loaded.clean, LocalStore())
    log_before = sorted(f.path for f in zone.store.list_files(zone.folder(loads.LOG)))
    before = {s.name: versions(delta, loaded.clean, s) for s in BRONZE}
    again = load(delta, settings_for(loaded.clean, tmp_path))
    assert again == {"load_id": None, "files": 0, "resumed": False, "tables": {}}
    assert {s.name: versions(delta, loaded.clean, s) for s in BRONZE} == before
    assert sorted(f.path for f in zone.store.list_files(zone.folder(loads.LOG))) == log_before
    assert loads.backlog(zone).files == 0


def test_replaying_every_landing_file_changes_no_table(delta, loaded: Loaded, tmp_path):
    """Even with the load log lost, the MERGE on keys inserts nothing and writes no file.

    The replay is a new load with a new, larger id (the clock floors it), so Delta does not
    skip it: each MERGE commits an empty version recording the id, and adds no data."""
    from delta.tables import DeltaTable

    def files(spec) -> int:
        detail = DeltaTable.forPath(delta, spec.location(loaded.clean)).detail().first()
        assert detail is not None
        return detail.numFiles

    contents = {s.name: rows(delta, loaded.clean, s) for s in BRONZE}
    before = {s.name: files(s) for s in BRONZE}
    shutil.rmtree(loaded.clean.resolve(f"landing/{loads.LOG}"))
    replay = load(delta, settings_for(loaded.clean, tmp_path))
    assert replay["files"] == loaded.files
    assert all(t["inserted"] == 0 for t in replay["tables"].values())
    assert {s.name: files(s) for s in BRONZE} == before
    assert {s.name: rows(delta, loaded.clean, s) for s in BRONZE} == contents
