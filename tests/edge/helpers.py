"""What the agent's tests share: a stand-in collector that sends receipts, configs with
sub-second timings, and a patient wait."""

from __future__ import annotations

import collections
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edgebatch.edge.wire import (
    Alarm,
    Batch,
    Health,
    MessageRejected,
    encode_receipt,
    parse_message,
    topic,
)
from tests.support.mosquitto import Mosquitto, reconnect_quickly

_ids = itertools.count()

# A TOML table as tomllib reads it: its values are scalars, arrays or tables.
Table = Mapping[str, Any]


class ReceiptCollector:
    """Plays the collector: keeps every batch, alarm and heartbeat it gets, by id, with every
    payload seen for that id, and answers batches and alarms with receipts."""

    def __init__(
        self,
        broker: Mosquitto,
        *,
        send_receipts: bool = True,
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.send_receipts = send_receipts
        self.lock = threading.Lock()
        self.batches: dict[str, Batch] = {}
        self.alarms: dict[str, Alarm] = {}
        self.heartbeats: dict[str, Health] = {}
        self.payloads: dict[str, set[bytes]] = collections.defaultdict(set)
        self.rejected: list[str] = []
        self.received = 0
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"test-collector-{next(_ids)}-{time.monotonic_ns()}",
            clean_session=False,
        )
        self.client.on_connect = self._connected
        self.client.on_message = self._message
        reconnect_quickly(self.client, max_delay=0.5)
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.times: list[float] = []
        self._subscribed = threading.Event()
        self.client.connect(broker.host, broker.port, keepalive=5)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the test collector could not subscribe")

    def _connected(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(
            [(f"edgebatch/+/+/{k}", 1) for k in ("batch", "alarm", "health")],
        )
        self._subscribed.set()

    def _message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            parsed = parse_message(msg.topic, bytes(msg.payload))
        except MessageRejected as exc:
            with self.lock:
                self.rejected.append(exc.reason)
            return
        with self.lock:
            self.received += 1
            self.times.append(time.monotonic())
            if isinstance(parsed, Batch):
                self.batches[parsed.batch_id] = parsed
                self.payloads[parsed.batch_id].add(bytes(msg.payload))
                landed = parsed.batch_id
            elif isinstance(parsed, Alarm):
                self.alarms[parsed.alarm_id] = parsed
                self.payloads[parsed.alarm_id].add(bytes(msg.payload))
                landed = parsed.alarm_id
            else:
                # Health only: statuses and receipts are not subscribed to.
                if isinstance(parsed, Health):
                    self.heartbeats[parsed.heartbeat_id] = parsed
                return
        if self.send_receipts:
            client.publish(
                topic(parsed.tenant, parsed.device, "receipt"),
                encode_receipt([landed], time.time()),
                qos=1,
            )

    def readings(self) -> int:
        """The sum of `count` over the distinct summaries received."""
        with self.lock:
            return sum(m.count for b in self.batches.values() for m in b.metrics)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def parse_batch(topic_: str, payload: bytes) -> Batch:
    """`parse_message` for a payload the test knows to be a batch."""
    msg = parse_message(topic_, payload)
    assert isinstance(msg, Batch), f"expected a batch, parsed {msg!r}"
    return msg


def agent_config(
    data_dir: Path, broker: Mosquitto | None, **sections: Table | Sequence[Table]
) -> dict[str, Any]:
    """A config dict with test timings; `sections` override or add tables."""
    base: dict[str, Any] = {
        "agent": {
            "tenant": "acme",
            "device": f"dev{next(_ids)}",
            "data_dir": str(data_dir),
            "poll_interval_s": 0.02,
        },
        "window": {
            "size_s": 1.0,
            "allowed_lateness_s": 0.2,
            "idle_timeout_s": 0.5,
            "correction_delay_s": 0.3,
        },
        "mqtt": {
            "host": broker.host if broker else "127.0.0.1",
            "port": broker.port if broker else 1,
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.5,
            "receipt_timeout_s": 1.5,
            "drain_rate_per_s": 2000.0,
            "max_inflight": 100,
            "keepalive_s": 5,
        },
        "health": {"interval_s": 0.5},
        "source": [{"kind": "simulator", "metric_count": 3, "rate_hz": 200.0, "seed": 7}],
    }
    for name, table in sections.items():
        if isinstance(table, Mapping) and isinstance(base.get(name), dict):
            base[name] = {**base[name], **table}
        else:
            base[name] = table
    return base


def _toml(value: object) -> str:
    if isinstance(value, dict):
        raise TypeError("nested tables are written by _write_toml")
    return json.dumps(value)


def write_toml(path: Path, config: Mapping[str, Table | Sequence[Table]]) -> Path:
    """Just enough TOML for an agent config: tables of scalars and arrays of such tables."""
    lines: list[str] = []
    for name, table in config.items():
        if isinstance(table, Mapping):
            lines.append(f"[{name}]")
            lines += [f"{k} = {_toml(v)}" for k, v in table.items()]
        else:
            for item in table:
                lines.append(f"[[{name}]]")
                lines += [f"{k} = {_toml(v)}" for k, v in item.items()]
    path.write_text("\n".join(lines) + "\n")
    tomllib.loads(path.read_text())
    return path


def start_agent(config_path: Path, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "edgebatch.edge", "--config", str(config_path)],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
