"""The collector against a real Mosquitto: lands, acknowledges after landing, sends receipts,
splits load across a shared subscription, and survives kill -9 of itself and of the broker."""

from __future__ import annotations

import collections
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edgebatch.warehouse.landing import LandingZone
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_until
from tests.warehouse.helpers import (
    SimAgent,
    alarm,
    batch,
    client,
    collector_process,
    health,
    landed_ids,
    running_collector,
)

pytestmark = pytest.mark.integration


def test_agents_get_receipts_only_for_what_landed_and_resends_land_again(
    broker: Mosquitto, zone: LandingZone
):
    with running_collector(zone, broker.port) as (collector, flushed):
        agent = SimAgent("acme", "dev-1", broker.port, resend_after=60)
        try:
            for i in range(40):
                batch_id, payload = batch("acme", "dev-1", i)
                agent.send(batch_id, "batch", payload)
            for i in range(5):
                agent.send(*_kinded(alarm("acme", "dev-1", i), "alarm"))
                hb_id, payload = health("acme", "dev-1", i)
                agent.client.publish("edgebatch/acme/dev-1/health", payload, qos=1)
            wait_until(lambda: agent.pending() == 0, 20, "receipts for every batch and alarm")
            # A resend of windows already landed (an agent that lost its receipts).
            for i in range(10):
                batch_id, payload = batch("acme", "dev-1", i)
                agent.send(batch_id, "batch", payload)
            wait_until(lambda: agent.pending() == 0, 20, "receipts for the resends")
        finally:
            agent.close()
    ids = collections.Counter(landed_ids(zone, "batch"))
    assert set(ids) == {batch("acme", "dev-1", i)[0] for i in range(40)}
    assert sum(ids.values()) == 50
    assert len(landed_ids(zone, "alarm")) == 5
    assert len(landed_ids(zone, "health")) == 5
    assert collector.stats.quarantined == 0
    assert collector.stats.acked == collector.stats.received == 60
    assert sum(f.receipt_ids for f in flushed) == 55
    first = json.loads(Path(zone.list(["batch"])[0].uri[7:]).read_bytes().splitlines()[0])
    assert first["topic"] == "edgebatch/acme/dev-1/batch"
    assert first["received_at"].endswith("Z")


def _kinded(pair: tuple[str, bytes], kind: str) -> tuple[str, str, bytes]:
    return pair[0], kind, pair[1]


def test_two_collectors_in_one_group_split_the_load_and_land_everything_once(
    broker: Mosquitto, zone: LandingZone
):
    with (
        running_collector(zone, broker.port, client_id="split-a", group="split") as (a, _),
        running_collector(zone, broker.port, client_id="split-b", group="split") as (b, _),
    ):
        pub = client("split-pub", broker.port)
        try:
            for i in range(200):
                pub.publish("edgebatch/acme/dev-2/batch", batch("acme", "dev-2", i)[1], qos=1)
            wait_until(lambda: a.stats.landed + b.stats.landed == 200, 20, "200 landed")
        finally:
            pub.loop_stop()
            pub.disconnect()
    assert a.stats.landed > 0 and b.stats.landed > 0
    assert len(landed_ids(zone, "batch")) == 200 == len(set(landed_ids(zone, "batch")))


def test_kill_9_of_the_collector_while_it_lands_loses_nothing(
    make_broker: Callable[..., Mosquitto], tmp_path: Path, zone: LandingZone
):
    """Unacknowledged messages come again to the restarted collector's persistent session."""
    log = tmp_path / "collector.log"
    broker = make_broker(autosave_interval=None)
    args = ("--max-messages", "25", "--max-age", "0.05")
    proc = collector_process(zone.root.uri(), broker.port, "crashy", log, *args)
    pub = client("crash-pub", broker.port)
    sent = []
    try:
        wait_until(lambda: "subscribed to" in log.read_text(), 30, "the collector to subscribe")
        for i in range(600):
            batch_id, payload = batch("acme", "dev-3", i)
            pub.publish("edgebatch/acme/dev-3/batch", payload, qos=1)
            sent.append(batch_id)
            if i == 300:
                wait_until(lambda: len(zone.list()) >= 3, 60, "some landed files")
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                landed_at_kill = set(landed_ids(zone))
            if i % 50 == 0:
                time.sleep(0.02)
        proc = collector_process(zone.root.uri(), broker.port, "crashy", log, *args)
        wait_until(lambda: set(landed_ids(zone)) >= set(sent), 60, "every batch landed")
    finally:
        pub.loop_stop()
        pub.disconnect()
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    # Killed mid-stream: some had landed, and at least the 299 published after the kill
    # reached the restarted collector only through its persistent session.
    assert 0 < len(landed_at_kill) <= 301
    # Each landing file is whole: every line parsed above; no temporary file is listed.
    assert set(landed_ids(zone)) == set(sent)
    assert proc.returncode == 0


def test_kill_9_of_the_broker_loses_nothing_the_agents_produced(
    make_broker: Callable[..., Mosquitto], zone: LandingZone, caplog: pytest.LogCaptureFixture
):
    """Default autosave: the broker forgets everything; receipts make the agents resend. The
    collector says it lost the connection and what happens next, not paho's bare reason."""
    caplog.set_level("WARNING", logger="edgebatch.warehouse.collector.service")
    broker = make_broker(autosave_interval=None)
    agents: list[SimAgent] = []

    def settled() -> bool:
        for agent in agents:
            agent.resend_due()
        return all(agent.pending() == 0 for agent in agents)

    try:
        with running_collector(zone, broker.port, client_id="survivor") as (collector, _):
            agents += [
                SimAgent("acme", f"dev-{d}", broker.port, resend_after=1.5) for d in range(3)
            ]
            for i in range(150):
                for agent in agents:
                    agent.send(*_kinded(batch(agent.tenant, agent.device, i), "batch"))
                if i == 75:
                    broker.kill()
                    time.sleep(0.5)
                    broker.start()
                time.sleep(0.005)
            wait_until(settled, 60, "receipts for every window", interval=0.5)
    finally:
        for agent in agents:
            agent.close()
        broker.kill()
    produced = set().union(*(a.produced for a in agents))
    assert len(produced) == 450
    assert set(landed_ids(zone)) == produced
    assert collector.stats.connects >= 2
    lost = [r.getMessage() for r in caplog.records if "connection" in r.getMessage()]
    assert lost and all("Unspecified error" not in line for line in lost)
    assert f"lost the connection to the broker 127.0.0.1:{broker.port}" in lost[0]
    assert "reconnecting with backoff" in lost[0]


def test_nothing_is_acknowledged_while_landing_fails_and_all_lands_once_it_works(
    broker: Mosquitto, tmp_path: Path
):
    """A landing folder that cannot be made (a file in its place) stands in for HDFS down."""
    from edgebatch.warehouse.landing import LandingZone, LocalStore
    from edgebatch.warehouse.uri import WarehouseRoot

    root = WarehouseRoot.parse((tmp_path / "wh").as_uri())
    blocker = Path(root.resolve("landing"))
    blocker.parent.mkdir(parents=True)
    blocker.write_bytes(b"not a folder")
    zone = LandingZone(root, LocalStore(), writer="blocked")
    with running_collector(zone, broker.port, client_id="blocked") as (collector, _):
        pub = client("blocked-pub", broker.port)
        try:
            for i in range(20):
                pub.publish("edgebatch/acme/dev-4/batch", batch("acme", "dev-4", i)[1], qos=1)
            wait_until(lambda: collector.stats.landing_failures >= 2, 20, "failed landings")
            assert collector.stats.received == 20
            assert collector.stats.acked == 0 and collector.stats.landed == 0
            blocker.unlink()
            wait_until(lambda: collector.stats.landed == 20, 30, "landing once it works")
        finally:
            pub.loop_stop()
            pub.disconnect()
    assert collector.stats.acked == 20
    assert sorted(landed_ids(zone)) == sorted(batch("acme", "dev-4", i)[0] for i in range(20))


def test_collect_warns_at_start_that_it_cannot_verify_the_brokers_persistence(
    broker: Mosquitto, tmp_path: Path, zone: LandingZone
):
    log = tmp_path / "collector.log"
    proc = collector_process(
        zone.root.uri(),
        broker.port,
        "warned",
        log,
        "--validation-workers",
        "0",
        "--group",
        "warned",
    )
    try:
        wait_until(lambda: "subscribed to" in log.read_text(), 30, "the collector to subscribe")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    text = log.read_text()
    assert f"cannot verify that the broker at 127.0.0.1:{broker.port} keeps its state" in text
    assert "docs/collector.md, section 'Broker persistence'" in text
    assert proc.returncode == 0
