"""Bad messages: every kind in tests/data/bad_messages.jsonl is quarantined with its topic,
raw payload and reason, the collector stays up, and the valid messages around them land."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from edgebatch.warehouse.collector.records import (
    QUARANTINE_KEEP_BYTES,
    envelope,
    quarantine_id,
    quarantine_line,
)
from edgebatch.warehouse.landing import LandingZone
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_until
from tests.warehouse.helpers import (
    batch,
    client,
    corpus,
    landed_ids,
    running_collector,
)


def quarantined(zone: LandingZone) -> dict[str, dict]:
    records = {}
    for f in zone.list(["quarantine"]):
        for line in Path(f.uri[len("file://") :]).read_bytes().splitlines():
            record = json.loads(line)
            records[record["quarantine_id"]] = record
    return records


def test_the_corpus_has_at_least_thirty_distinct_kinds():
    kinds = [k for k, _, _ in corpus()]
    assert len(kinds) == len(set(kinds)) >= 30


@pytest.mark.integration
@pytest.mark.parametrize("workers", [None, 0], ids=["worker-processes", "in-thread"])
def test_every_bad_message_is_quarantined_with_a_reason_and_the_good_ones_land(
    broker: Mosquitto, zone: LandingZone, workers: int | None
):
    bad = corpus()
    with running_collector(
        zone, broker.port, client_id=f"quarantine-{workers}", validation_workers=workers
    ) as (collector, _):
        pub = client("quarantine-pub", broker.port)
        try:
            good = []
            for i, (_, name, payload) in enumerate(bad):
                batch_id, ok = batch("acme", "dev-good", i)
                good.append(batch_id)
                pub.publish("edgebatch/acme/dev-good/batch", ok, qos=1).wait_for_publish(10)
                pub.publish(name, payload, qos=1).wait_for_publish(10)
            wait_until(lambda: collector.stats.landed == 2 * len(bad), 30, "every message landed")
        finally:
            pub.loop_stop()
            pub.disconnect()
        assert collector.connected.is_set(), "the collector must still be up"
    records = quarantined(zone)
    for kind, name, payload in bad:
        record = records.get(quarantine_id(name, payload))
        assert record is not None, f"{kind} was not quarantined"
        assert record["topic"] == name and record["reason"], kind
        assert record["payload_size"] == len(payload), kind
        kept = base64.b64decode(record["payload_b64"])
        assert kept == payload[:QUARANTINE_KEEP_BYTES], kind
    assert len(records) == len(bad)
    assert sorted(landed_ids(zone)) == sorted(good)


def test_a_batch_under_a_forged_id_is_quarantined_with_the_reason_and_its_true_id_lands():
    from edgebatch.warehouse.collector.validation import check

    name = "edgebatch/acme/dev-1/batch"
    true_id, payload = batch("acme", "dev-1", 3)
    doc = json.loads(payload)
    doc["batch_id"] = "f" * 32  # well formed, same window, device and revision
    forged = json.dumps(doc).encode()
    refused = check(name, forged, 0.0, "c")
    assert (refused.kind, refused.receipt) == ("quarantine", None)
    reason = json.loads(refused.line)["reason"]
    assert f"field 'batch_id' '{'f' * 32}' is not the id of this device, window" in reason
    assert true_id in reason
    for _ in range(2):  # the true id, sent and resent: the same landing key both times
        landed = check(name, payload, 0.0, "c")
        assert landed.kind == "batch" and landed.receipt == ("acme", "dev-1", true_id)


def test_a_payload_with_line_breaks_lands_on_one_line():
    line = envelope("edgebatch/t/d/batch", b'{\n"v": 1\r\n}', 0.0)
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert json.loads(line)["payload"] == {"v": 1}


def test_an_oversized_payload_keeps_its_head_size_and_digest():
    payload = b"x" * (QUARANTINE_KEEP_BYTES + 10)
    record = json.loads(quarantine_line("t", payload, "too big", 0.0, "c"))
    assert record["payload_size"] == len(payload)
    assert len(base64.b64decode(record["payload_b64"])) == QUARANTINE_KEEP_BYTES
    assert "sha256" in record["reason"] and record["reason"].startswith("too big")
