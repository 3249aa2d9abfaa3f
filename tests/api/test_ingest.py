"""HTTP ingest against the MQTT collector on the same messages: the same landing lines
(so the same bronze rows), the receipt only once durable, the device's own token only,
and refusals that say why (quarantined, as the collector does)."""

from __future__ import annotations

import collections
import json
import uuid

import pytest

from edgebatch.warehouse.landing import LandingZone, open_zone
from edgebatch.warehouse.uri import WarehouseRoot
from tests.api.conftest import Api, open_api
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_until
from tests.warehouse.helpers import alarm, batch, client, health, running_collector

pytestmark = pytest.mark.integration

TIME_FIELDS = ("received_at", "collector")


def messages() -> list[tuple[str, str, bytes]]:
    """(kind, id, payload): batches, alarms, heartbeats of acme/d1, and one bad batch."""
    out = []
    for i in range(6):
        out.append(("batch", *batch("acme", "d1", i)))
    for i in range(3):
        out.append(("alarm", *alarm("acme", "d1", i)))
        out.append(("health", *health("acme", "d1", i)))
    bad_id, bad = batch("acme", "other-device", 99)
    out.append(("batch", bad_id, bad))  # names another device than its topic: refused
    return out


def landed(zone: LandingZone) -> dict[str, collections.Counter]:
    """Landing lines per kind, without the fields that say when and by whom they landed."""
    found: dict[str, collections.Counter] = {}
    for f in zone.list():
        with open(f.uri[len("file://") :], "rb") as fh:
            for line in fh:
                record = json.loads(line)
                for key in TIME_FIELDS:
                    record.pop(key, None)
                found.setdefault(f.kind, collections.Counter())[
                    json.dumps(record, sort_keys=True)
                ] += 1
    return found


def test_http_ingest_lands_the_same_lines_as_the_mqtt_collector(
    api: Api, broker: Mosquitto, tmp_path
):
    sent = messages()
    mqtt_zone = open_zone(WarehouseRoot.parse((tmp_path / "mqtt-wh").as_uri()))
    # A client id of its own: another test resuming this session would get its subscriptions.
    name = f"api-ingest-{uuid.uuid4().hex[:8]}"
    with running_collector(mqtt_zone, broker.port, client_id=name) as (collector, _):
        pub = client("api-ingest-test", broker.port)
        pub.loop_start()
        for kind, _, payload in sent:
            pub.publish(f"edgebatch/acme/d1/{kind}", payload, qos=1).wait_for_publish(5)
        wait_until(lambda: collector.stats.landed == len(sent), 20, "the collector to land all")
        pub.loop_stop()
        pub.disconnect()
    receipts = []
    for _kind, message_id, payload in sent:
        answer = api.client.post(
            "/api/v1/ingest/acme/d1", content=payload, headers=api.as_("device")
        )
        if message_id == sent[-1][1]:
            assert answer.status_code == 422
            assert "does not match topic device" in answer.json()["detail"]
        else:
            assert answer.status_code == 200, answer.text
            receipts += answer.json()["ids"]
    expected_ids = [i for kind, i, _ in sent[:-1] if kind in ("batch", "alarm")]
    assert sorted(receipts) == sorted(expected_ids)
    over_http = landed(api.app.state.runtime.zone())
    over_mqtt = landed(mqtt_zone)
    assert set(over_http) == {"batch", "alarm", "health", "quarantine"}
    assert over_http == over_mqtt


def test_several_messages_as_ndjson_in_one_request(api: Api):
    sent = messages()[:-1]
    body = b"\n".join(payload for _, _, payload in sent) + b"\n"
    answer = api.client.post(
        "/api/v1/ingest/acme/d1",
        content=body,
        headers={**api.as_("device"), "Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == len(sent) and answer.json()["quarantined"] == 0
    assert len(answer.json()["ids"]) == 9
    assert sum(landed(api.app.state.runtime.zone())["batch"].values()) == 6


def test_limits_on_size_and_rate_and_an_empty_body(tmp_path):
    gen = open_api(
        tmp_path,
        f"sqlite:///{tmp_path / 's.db'}",
        ingest_per_s=1.0,
        ingest_burst=3,
        ingest_max_bytes=2000,
    )
    api = next(gen)
    try:
        headers = api.as_("device")
        big = api.client.post("/api/v1/ingest/acme/d1", content=b"x" * 3000, headers=headers)
        assert big.status_code == 413
        empty = api.client.post("/api/v1/ingest/acme/d1", content=b"", headers=headers)
        assert empty.status_code == 400
        codes = [
            api.client.post(
                "/api/v1/ingest/acme/d1", content=health("acme", "d1", i)[1], headers=headers
            ).status_code
            for i in range(5)
        ]
        assert codes[:3] == [200, 200, 200] and codes[-1] == 429
    finally:
        gen.close()
