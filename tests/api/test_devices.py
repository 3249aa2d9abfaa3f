"""The fleet from real Delta tables and a real broker's retained status topic, alarms with
acknowledgements (stored and audited), and tenants seeing only their own devices."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.conftest import open_api
from tests.api.fleet_tables import now, write_alarms, write_health
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_until
from tests.warehouse.helpers import client

pytestmark = pytest.mark.integration


@pytest.fixture
def fleet_api(tmp_path, broker: Mosquitto):
    gen = open_api(
        tmp_path,
        f"sqlite:///{tmp_path / 's.db'}",
        mqtt_status=True,
        mqtt_port=broker.port,
        device_offline_s=600,
    )
    api = next(gen)
    pub = client("api-status-test", broker.port)
    pub.loop_start()
    for device, state in (("d1", b"online"), ("d2", b"offline"), ("d4", b"online")):
        pub.publish(f"edgebatch/acme/{device}/status", state, qos=1, retain=True).wait_for_publish(
            5
        )
    status = api.app.state.runtime.status
    wait_until(lambda: len(status.snapshot()) >= 3, 10, "the retained statuses")
    t = now()
    write_health(
        api.root,
        [
            {"tenant": "acme", "device": "d1", "ts": t - timedelta(minutes=5), "cpu_percent": 50.0},
            {
                "tenant": "acme",
                "device": "d1",
                "ts": t - timedelta(seconds=30),
                "cpu_percent": 95.0,
                "outbox_backlog": 7,
            },
            {"tenant": "acme", "device": "d2", "ts": t - timedelta(seconds=20)},
            {"tenant": "other", "device": "x1", "ts": t - timedelta(hours=2)},
        ],
    )
    write_alarms(
        api.root,
        [
            {"alarm_id": "1" * 32, "tenant": "acme", "device": "d1", "ts": t, "rule": "too-hot"},
            {"alarm_id": "2" * 32, "tenant": "other", "device": "x1", "ts": t, "rule": "too-hot"},
        ],
    )
    yield api
    for device in ("d1", "d2", "d4"):  # the session's broker outlives this test
        pub.publish(f"edgebatch/acme/{device}/status", b"", qos=1, retain=True).wait_for_publish(5)
    pub.loop_stop()
    pub.disconnect()
    gen.close()


def test_the_fleet_joins_heartbeats_and_presence(fleet_api):
    api = fleet_api
    fleet = {
        (d["tenant"], d["device"]): d
        for d in api.client.get("/api/v1/devices", headers=api.as_("viewer")).json()
    }
    d1, d2, x1, d4 = (
        fleet[("acme", "d1")],
        fleet[("acme", "d2")],
        fleet[("other", "x1")],
        fleet[("acme", "d4")],
    )
    assert d1["online"] and d1["health"] == "warning" and d1["cpu_percent"] == 95.0
    assert d1["outbox_backlog"] == 7 and "cpu at 95%" in d1["problems"]
    assert not d2["online"] and d2["presence"] == "offline" and d2["health"] == "offline"
    assert not x1["online"] and x1["problems"] == ["no recent heartbeat"]
    assert d4["presence"] == "online" and d4["last_seen"] is None and not d4["online"]
    mine = api.client.get("/api/v1/devices", headers=api.as_("acme_viewer")).json()
    assert {d["tenant"] for d in mine} == {"acme"}
    detail = api.client.get("/api/v1/devices/acme/d1", headers=api.as_("acme_viewer")).json()
    assert [h["cpu_percent"] for h in detail["history"]] == [95.0, 50.0]
    assert api.client.get("/api/v1/devices/acme/zz", headers=api.as_("viewer")).status_code == 404


def test_alarms_are_listed_acknowledged_and_audited(fleet_api):
    api = fleet_api
    alarms = api.client.get("/api/v1/alarms", headers=api.as_("acme_viewer")).json()
    assert [a["alarm_id"] for a in alarms] == ["1" * 32] and not alarms[0]["acked"]
    acked = api.client.post(
        f"/api/v1/alarms/{'1' * 32}/ack",
        json={"note": "fan replaced"},
        headers=api.as_("acme_operator"),
    )
    assert acked.status_code == 200 and acked.json()["acked_by"] == "token:acme-operator#5"
    again = api.client.get("/api/v1/alarms", params={"acked": True}, headers=api.as_("viewer"))
    assert [a["note"] for a in again.json()] == ["fan replaced"]
    entry = api.store.list_audit(action="alarm.ack")[0]
    assert entry.target == f"alarm:{'1' * 32}" and entry.detail["note"] == "fan replaced"
    refused = api.client.post(f"/api/v1/alarms/{'2' * 32}/ack", headers=api.as_("acme_operator"))
    assert refused.status_code == 403
