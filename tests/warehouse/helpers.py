"""Simulated agents and a collector runner for the warehouse tests.

`SimAgent` is a stand-in for the edge agent that does what the contract asks of it
and nothing more: it builds valid wire messages with `edge.wire`, keeps every
batch and alarm until a receipt names it, and resends what has no receipt.
"""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edgebatch.edge.wire import (
    AlarmEvent,
    encode_alarm,
    encode_batch,
    encode_health,
    format_ts,
    topic,
)
from edgebatch.settings import MqttSettings
from edgebatch.warehouse.collector.buffer import FlushPolicy
from edgebatch.warehouse.collector.config import CollectorConfig
from edgebatch.warehouse.collector.service import Collector, Flushed
from edgebatch.warehouse.landing import LandingZone
from tests.support.mosquitto import reconnect_quickly

T0 = 1_795_000_000.0  # 2026-11-18, a fixed window origin
REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "bad_messages.jsonl"


def corpus() -> list[tuple[str, str, bytes]]:
    out = []
    for line in CORPUS.read_text().splitlines():
        e = json.loads(line)
        if "payload" in e:
            payload = e["payload"].encode()
        elif "payload_b64" in e:
            payload = base64.b64decode(e["payload_b64"])
        else:
            payload = "".join(text * times for text, times in e["payload_segments"]).encode()
        out.append((e["kind"], e["topic"], payload))
    return out


def metric(name: str, value: float, start: float, count: int = 3) -> dict:
    return {
        "name": name,
        "unit": "C",
        "count": count,
        "sum": value * count,
        "min": value,
        "max": value,
        "mean": value,
        "m2": 0.0,
        "stddev": 0.0,
        "p50": value,
        "p95": value,
        "p99": value,
        "sketch": {"alpha": 0.01, "pos": {"start": 100, "counts": [count]}},
        "first_ts": format_ts(start + 1),
        "last_ts": format_ts(start + 2),
    }


def batch(tenant: str, device: str, i: int, revision: int = 0) -> tuple[str, bytes]:
    """The i-th 60 s window of a device: two metrics, so two bronze rows."""
    start = T0 + 60 * i
    return encode_batch(
        tenant=tenant,
        device=device,
        window_start=start,
        window_end=start + 60,
        revision=revision,
        metrics=[metric("temp", 20.0 + i % 7, start), metric("hum", 40.0 + i % 5, start)],
        agent="sim/1",
    )


def alarm(tenant: str, device: str, i: int) -> tuple[str, bytes]:
    event = AlarmEvent(
        rule="too-hot",
        kind="threshold",
        state="raised",
        metric="temp",
        value=99.0,
        threshold=80.0,
        baseline=None,
        ts=T0 + 60 * i + 5,
        severity="warning",
    )
    return encode_alarm(event, tenant=tenant, device=device, agent="sim/1")


def health(tenant: str, device: str, i: int) -> tuple[str, bytes]:
    figures = {
        "uptime_s": 100.0 + i,
        "cpu_percent": 12.5,
        "memory_percent": 40.0,
        "disk_percent": 55.0,
        "load": [0.1, 0.2, 0.3],
        "temperature_c": None,
        "process": {"rss_bytes": 1000},
        "outbox": {"backlog": i, "bytes": 10 * i},
        "shed": {
            "coarsened": 1,
            "dropped_heartbeats": 2,
            "dropped_summaries": 0,
            "dropped_readings": 0,
        },
        "rejected": {},
        "last_send": None,
    }
    ts = T0 + 60 * i
    return encode_health(tenant=tenant, device=device, ts=ts, agent="sim/1", figures=figures)


def client(client_id: str, port: int) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    reconnect_quickly(c)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


class SimAgent:
    """Publishes windows at QoS 1, keeps them until a receipt names them, resends the rest."""

    def __init__(self, tenant: str, device: str, port: int, resend_after: float = 2.0) -> None:
        self.tenant, self.device = tenant, device
        self.resend_after = resend_after
        self.outbox: dict[str, tuple[str, bytes, float]] = {}
        self.produced: set[str] = set()
        self.resends = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"agent-{tenant}-{device}",
            protocol=mqtt.MQTTv5,
        )
        reconnect_quickly(self.client)
        self.client.on_connect = lambda c, *_: c.subscribe(topic(tenant, device, "receipt"), qos=1)
        self.client.on_message = self._on_receipt
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_receipt(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        ids = json.loads(message.payload)["ids"]
        with self._lock:
            for i in ids:
                self.outbox.pop(i, None)

    def send(self, message_id: str, kind: str, payload: bytes) -> None:
        name = topic(self.tenant, self.device, kind)
        with self._lock:
            self.outbox[message_id] = (name, payload, time.monotonic())
            self.produced.add(message_id)
        self.client.publish(name, payload, qos=1)

    def resend_due(self) -> int:
        now = time.monotonic()
        with self._lock:
            due = [(i, e) for i, e in self.outbox.items() if now - e[2] >= self.resend_after]
            for i, (name, payload, _) in due:
                self.outbox[i] = (name, payload, now)
        for _, (name, payload, _) in due:
            self.client.publish(name, payload, qos=1)
        self.resends += len(due)
        return len(due)

    def pending(self) -> int:
        with self._lock:
            return len(self.outbox)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@contextlib.contextmanager
def running_collector(
    zone: LandingZone,
    port: int,
    client_id: str = "collector-test",
    group: str = "",
    validation_workers: int | None = None,
    policy: FlushPolicy | None = None,
) -> Iterator[tuple[Collector, list[Flushed]]]:
    """An in-process collector on a thread; yields it and the list of its flushes.

    Each test gets its own share group unless it names one: Mosquitto keeps delivering a
    group's share to a member's offline persistent session, so tests must not share one.
    """
    flushed: list[Flushed] = []
    config = CollectorConfig(
        mqtt=MqttSettings(
            port=port, client_id=client_id, share_group=group or f"g-{uuid.uuid4().hex[:8]}"
        ),
        policy=policy or FlushPolicy(max_messages=200, max_age_s=0.2),
        validation_workers=validation_workers,
    )
    collector = Collector(config, zone, on_flush=flushed.append)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert collector.subscribed.wait(10), "collector did not subscribe"
        yield collector, flushed
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "collector did not stop"


def collector_process(
    root_uri: str, port: int, client_id: str, log: Path, *args: str
) -> subprocess.Popen[bytes]:
    """`edgebatch collect` as its own process, as an operator runs it (to kill -9 it)."""
    cmd = [
        sys.executable,
        "-m",
        "edgebatch.cli",
        "collect",
        "--root",
        root_uri,
        "--port",
        str(port),
        "--client-id",
        client_id,
        "--log-level",
        "INFO",
        *args,
    ]
    out = log.open("ab")
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


def landed_ids(zone: LandingZone, kind: str = "batch") -> list[str]:
    """Every message id in complete landing files of `kind`, duplicates included."""
    key = {"batch": "batch_id", "alarm": "alarm_id", "health": "heartbeat_id"}[kind]
    ids = []
    for f in zone.list([kind]):
        path = f.uri[len("file://") :]
        with open(path, "rb") as fh:
            for line in fh:
                ids.append(json.loads(line)["payload"][key])
    return ids


def land_directly(zone: LandingZone, messages: list[tuple[str, bytes]], per_file: int = 50) -> None:
    """Land messages as the collector would, without a broker: its own per-message check."""
    from edgebatch.warehouse.collector.validation import check

    held: dict[str, list[bytes]] = {}
    for i, (name, payload) in enumerate(messages):
        kind, line, _ = check(name, payload, T0 + 3600 + i, "direct")
        held.setdefault(kind, []).append(line)
        if len(held[kind]) >= per_file:
            zone.write(kind, b"".join(held.pop(kind)))
    for kind, lines in held.items():
        zone.write(kind, b"".join(lines))
