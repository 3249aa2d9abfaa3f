"""The publisher's decisions (backoff, pace) and its status topic: `online` when connected,
`offline` from the last will when the agent dies, retained for whoever looks later."""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edgebatch.edge.publisher import TokenBucket, backoff_delay
from edgebatch.edge.wire import topic
from tests.edge.helpers import agent_config, start_agent, write_toml
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_until


def test_backoff_grows_to_its_cap_and_is_jittered():
    rng = random.Random(1)
    delays = [[backoff_delay(a, 0.5, 60.0, rng) for _ in range(200)] for a in range(10)]
    for attempt, ds in enumerate(delays):
        ceiling = min(60.0, 0.5 * 2**attempt)
        assert all(ceiling / 2 <= d <= ceiling for d in ds)
        assert max(ds) - min(ds) > ceiling / 4  # spread: a fleet does not reconnect in step
    assert backoff_delay(10_000, 0.5, 60.0, rng) <= 60.0


def test_token_bucket_paces_after_its_burst():
    now = [0.0]
    bucket = TokenBucket(rate=10.0, burst=5.0, clock=lambda: now[0])
    assert bucket.available() == 5
    bucket.spend(5)
    assert bucket.available() == 0
    now[0] += 0.35
    assert bucket.available() == 3
    now[0] += 100.0
    assert bucket.available() == 5


class StatusWatcher:
    def __init__(self, broker: Mosquitto, status_topic: str) -> None:
        self.seen: list[tuple[bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(status_topic, 1)
        self.client.loop_start()

    def _message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.seen.append((bytes(msg.payload), bool(msg.retain)))

    def last(self) -> bytes | None:
        with self.lock:
            return self.seen[-1][0] if self.seen else None

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.integration
def test_status_is_online_then_offline_by_last_will_after_kill_and_by_the_agent_on_stop(
    broker, tmp_path: Path
):
    config = agent_config(
        tmp_path / "agent", broker, mqtt={"keepalive_s": 1},
        source=[{"kind": "simulator", "rate_hz": 10.0}],
    )  # fmt: skip
    path = write_toml(tmp_path / "agent.toml", config)
    status = topic("acme", config["agent"]["device"], "status")
    watcher = StatusWatcher(broker, status)
    log = tmp_path / "agent.log"
    agent = start_agent(path, log)
    try:
        wait_until(lambda: watcher.last() == b"online" or None, 15, "online")
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        started = time.monotonic()
        wait_until(lambda: watcher.last() == b"offline" or None, 10, "the last will")
        assert time.monotonic() - started < 5  # 1.5 keepalives, give or take
        agent = start_agent(path, log)
        wait_until(lambda: watcher.last() == b"online" or None, 15, "online again")
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(15) == 0
        wait_until(lambda: watcher.last() == b"offline" or None, 5, "offline on a clean stop")
    finally:
        if agent.poll() is None:
            agent.kill()
        watcher.close()
    late = StatusWatcher(broker, status)  # a newcomer sees the retained state
    try:
        wait_until(lambda: late.seen or None, 5, "the retained status")
        assert late.seen[0] == (b"offline", True)
    finally:
        late.close()


@pytest.mark.integration
def test_a_lost_connection_is_logged_with_what_the_agent_does_next(
    make_broker, caplog: pytest.LogCaptureFixture
):
    """Not paho's bare "Unspecified error": the broker, the cause as far as it is known, the
    reconnect with backoff, and what the outbox keeps meanwhile."""
    from edgebatch.edge.publisher import Publisher
    from edgebatch.settings import MqttSettings

    own_broker = make_broker()
    cfg = MqttSettings(port=own_broker.port, reconnect_min_s=2.0, reconnect_max_s=30.0)
    publisher = Publisher(
        cfg, "acme", "lost-1", on_receipt=print, on_puback=lambda *_: None, backlog=lambda: 42
    )

    def connected() -> bool:
        publisher.loop(0.05)
        return publisher.connected

    try:
        wait_until(connected, 10, "a connection")
        own_broker.kill()
        with caplog.at_level("WARNING", logger="edgebatch.edge.publisher"):
            wait_until(lambda: not connected(), 10, "the loss")
    finally:
        publisher.close()
    (line,) = [r.getMessage() for r in caplog.records if "connection" in r.getMessage()]
    assert "Unspecified error" not in line
    assert f"lost the connection to the broker 127.0.0.1:{own_broker.port}" in line
    assert "reconnecting with backoff, next try in" in line and "2 s to 30 s apart" in line
    assert "the outbox keeps 42 messages" in line
