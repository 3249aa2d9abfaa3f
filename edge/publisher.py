"""MQTT at the rim: paho-mqtt 2.x, QoS 1, a persistent session, a last will, paced sends.

The agent drives the network from its own loop (`Publisher.loop(timeout)` doubles as
its sleep), so receipts and PUBACKs arrive on the agent's thread and touch the
outbox without locks. Reconnects are ours rather than paho's, to add jitter: a
fleet of devices coming back after a broker outage must not reconnect in step.
Sends are paced by a token bucket (`drain_rate_per_s`) and capped by the number
of unacknowledged publishes (`max_inflight`), so a backlog drains without
flooding the broker.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from edgebatch.edge.wire import MessageRejected, Receipt, parse_message, topic
from edgebatch.settings import MqttSettings

log = logging.getLogger(__name__)


def disconnect_reason(reason: object) -> str:
    """paho's reason for a lost connection, in words: for a connection that just dropped
    (the broker died, the network went) it has none and says "Unspecified error"."""
    text = str(reason)
    if not text or text == "Unspecified error":
        return "paho gives no reason: the broker went away or the network dropped"
    return f"reason: {text}"


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: uniform between half and all of `low * 2**attempt`,
    capped at `high`. Half rather than zero keeps a down broker from being hammered."""
    ceiling = min(high, low * (2 ** min(attempt, 30)))
    return rng.uniform(ceiling / 2, ceiling)


class TokenBucket:
    """`rate` sends per second on average, bursts of at most `burst`."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self._clock = rate, burst, clock
        self.tokens = burst
        self._last = clock()

    def available(self) -> int:
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
        self._last = now
        return int(self.tokens)

    def spend(self, n: int) -> None:
        self.tokens -= n


class Publisher:
    """One device's MQTT connection; the agent calls `pump`-style methods from its loop."""

    def __init__(
        self,
        cfg: MqttSettings,
        tenant: str,
        device: str,
        *,
        on_receipt: Callable[[Receipt], None],
        on_puback: Callable[[str, str], None],
        backlog: Callable[[], int] | None = None,
        seed: int | None = None,
    ) -> None:
        """`backlog` counts what the outbox keeps for later, for the log when the connection
        is lost."""
        self.cfg = cfg
        self.tenant, self.device = tenant, device
        self.status_topic = topic(tenant, device, "status")
        self.receipt_topic = topic(tenant, device, "receipt")
        self._on_receipt = on_receipt
        self._on_puback = on_puback
        self._backlog = backlog
        self._rng = random.Random(seed)
        self.connected = False
        self._attempt = 0
        self._next_attempt = 0.0
        self._pending: dict[int, tuple[str, str, float]] = {}
        self.bucket = TokenBucket(cfg.drain_rate_per_s, max(1.0, float(cfg.max_inflight)))
        self.last_puback: float | None = None
        self._closing = False
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        cfg = self.cfg
        client_id = cfg.client_id or f"edgebatch-{self.tenant}-{self.device}"
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        client.max_inflight_messages_set(cfg.max_inflight)
        client.will_set(self.status_topic, b"offline", qos=1, retain=True)
        if cfg.username:
            client.username_pw_set(cfg.username, cfg.password or None)
        if cfg.tls:
            client.tls_set(
                ca_certs=cfg.ca_file or None,
                certfile=cfg.cert_file or None,
                keyfile=cfg.key_file or None,
                cert_reqs=ssl.CERT_NONE if cfg.tls_insecure else ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(cfg.tls_insecure)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_publish = self._published
        client.on_message = self._message
        return client

    # ------------------------------------------------------------ connection

    def _connected(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            self._schedule_reconnect()
            return
        self.connected = True
        self._attempt = 0
        log.info("connected to %s:%d", self.cfg.host, self.cfg.port)
        # Subscribe on every connect: a broker that lost its state (kill -9) lost ours too.
        client.subscribe(self.receipt_topic, qos=1)
        client.publish(self.status_topic, b"online", qos=1, retain=True)

    def _disconnected(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self._closing:
            self.connected = False
            return
        was_connected = self.connected
        delay = self._schedule_reconnect()
        if was_connected:
            log.warning(self.connection_lost_message(reason, delay))

    def connection_lost_message(self, reason: object, delay: float) -> str:
        """What happened, why as far as paho knows, and what the agent does next."""
        why = disconnect_reason(reason)
        kept = ""
        if self._backlog is not None:
            n = self._backlog()
            kept = f"; the outbox keeps {n} message{'' if n == 1 else 's'} to send on reconnect"
        cfg = self.cfg
        return (
            f"lost the connection to the broker {cfg.host}:{cfg.port} ({why}); reconnecting "
            f"with backoff, next try in {delay:.1f} s (retries {cfg.reconnect_min_s:g} s to "
            f"{cfg.reconnect_max_s:g} s apart){kept}"
        )

    def _schedule_reconnect(self) -> float:
        self.connected = False
        delay = backoff_delay(
            self._attempt, self.cfg.reconnect_min_s, self.cfg.reconnect_max_s, self._rng
        )
        self._attempt += 1
        self._next_attempt = time.monotonic() + delay
        return delay

    def _try_connect(self) -> None:
        if time.monotonic() < self._next_attempt:
            return
        try:
            self.client.connect(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
            # `connected` turns true on CONNACK; until then another attempt waits its turn.
            self._next_attempt = time.monotonic() + max(self.cfg.keepalive_s, 5)
        except (OSError, ssl.SSLError) as exc:
            log.debug("connect to %s:%d failed: %s", self.cfg.host, self.cfg.port, exc)
            self._schedule_reconnect()

    def loop(self, timeout: float) -> None:
        """Run the network for up to `timeout` seconds (the agent's sleep), reconnecting when
        the backoff allows."""
        if self.client.socket() is None:
            self._try_connect()
            if self.client.socket() is None:
                time.sleep(timeout)
                return
        rc = self.client.loop(timeout=timeout)
        if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN) and self.client.socket() is None:
            self.connected = False

    # ------------------------------------------------------------ sending

    def capacity(self, now: float) -> int:
        """How many messages may be handed over now, by pace and by unacknowledged count."""
        if not self.connected:
            return 0
        stale = now - max(self.cfg.receipt_timeout_s, 1.0)
        for mid in [m for m, (_, _, sent) in self._pending.items() if sent < stale]:
            del self._pending[mid]
        room = self.cfg.max_inflight - len(self._pending)
        return max(0, min(room, self.bucket.available()))

    def send(self, messages: list[tuple[str, str, str, bytes]], now: float) -> int:
        """Publish `(id, kind, topic, payload)` at QoS 1; returns how many were handed over."""
        sent = 0
        for msg_id, kind, topic_, payload in messages:
            info = self.client.publish(topic_, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                # Still queued by paho for the next connect, and resent by the outbox anyway.
                log.debug("publish of %s returned %s", msg_id, info.rc)
            self._pending[info.mid] = (msg_id, kind, now)
            sent += 1
        self.bucket.spend(sent)
        return sent

    def _published(self, _c: mqtt.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        entry = self._pending.pop(mid, None)
        if entry is None:
            return
        self.last_puback = time.time()
        self._on_puback(entry[0], entry[1])

    def _message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            parsed = parse_message(message.topic, bytes(message.payload))
        except MessageRejected as exc:
            log.warning("ignoring a bad message on %s: %s", message.topic, exc.reason)
            return
        if isinstance(parsed, Receipt):
            self._on_receipt(parsed)

    @property
    def inflight(self) -> int:
        return len(self._pending)

    def close(self, timeout: float = 2.0) -> None:
        """Say `offline` (a clean stop is not a failure, so the will is not sent) and leave."""
        self._closing = True
        if self.connected:
            info = self.client.publish(self.status_topic, b"offline", qos=1, retain=True)
            deadline = time.monotonic() + timeout
            while not info.is_published() and time.monotonic() < deadline and self.connected:
                self.client.loop(timeout=0.05)
            self.client.disconnect()
            self.client.loop(timeout=0.05)
        self.connected = False
