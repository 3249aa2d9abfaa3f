"""The collector: MQTT in, durable landing files out, and only then the acknowledgements.

One thread does everything (network loop, validation, landing, acks), so the order
the broker relies on holds without locks: a message is acknowledged only after the
file holding it is durable, and acknowledgements go out in the order the messages
came (MQTT 5 asks that of a receiver). A collector killed at any point leaves its
unacknowledged messages with the broker, which resends them to the same persistent
session; a broker killed before its autosave loses them, and the agents resend
whatever got no receipt. Either way a message may land twice, never zero times;
the bronze load drops the duplicate by id.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from edgebatch.edge.messages import (
    MAX_RECEIPT_IDS,
    Alarm,
    Batch,
    Health,
    MessageRejected,
    encode_receipt,
    parse_message,
    topic,
)
from edgebatch.warehouse.collector.buffer import Held
from edgebatch.warehouse.collector.config import CollectorConfig
from edgebatch.warehouse.collector.limits import check_storable, normalized_times
from edgebatch.warehouse.collector.records import envelope, quarantine_line
from edgebatch.warehouse.landing import LandingError, LandingFile, LandingZone

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 10.0


@dataclasses.dataclass
class CollectorStats:
    received: int = 0
    landed: int = 0
    quarantined: int = 0
    files: int = 0
    flushes: int = 0
    acked: int = 0
    receipts: int = 0
    connects: int = 0
    landing_failures: int = 0


@dataclasses.dataclass(frozen=True)
class Flushed:
    """What one flush made durable, and why it ran (count, bytes, age, stop)."""

    reason: str
    files: tuple[LandingFile, ...]
    messages: int
    acked: int
    receipt_ids: int


class Collector:
    """`Collector(config, zone).run(stop_event)`; `on_flush` sees every durable landing."""

    def __init__(
        self,
        config: CollectorConfig,
        zone: LandingZone,
        *,
        on_flush: Callable[[Flushed], None] | None = None,
    ) -> None:
        self.config = config
        self.zone = zone
        self.on_flush = on_flush
        self.stats = CollectorStats()
        self.connected = threading.Event()
        self._held = Held()
        self._flushing: Held | None = None
        self._flush_reason = ""
        self._retry_at = 0.0
        self._backoff = 0.5
        self._client = self._make_client()

    # ------------------------------------------------------------ MQTT session

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.config.identity,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.config.username:
            client.username_pw_set(self.config.username, self.config.password or None)
        if self.config.tls:
            client.tls_set(ca_certs=self.config.ca_file or None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry_s
        props.ReceiveMaximum = self.config.receive_maximum
        return props

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        self.stats.connects += 1
        # Subscribe every time: a broker killed before its autosave forgot the session.
        options = SubscribeOptions(qos=1)
        client.subscribe([(t, options) for t in self.config.subscriptions()])
        log.info(
            "connected to %s:%s as %s (session present: %s)",
            self.config.host,
            self.config.port,
            self.config.identity,
            flags.session_present,
        )
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        self._held.forget_acks()
        if self._flushing is not None:
            self._flushing.forget_acks()
        log.warning("disconnected from the broker: %s", reason_code)

    # ------------------------------------------------------------ messages

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        now = time.time()
        self.stats.received += 1
        ack = (message.mid, message.qos) if message.qos > 0 else None
        name = message._topic.decode("utf-8", "replace")
        payload = message.payload
        if not isinstance(payload, bytes):
            payload = bytes(payload)
        try:
            parsed = parse_message(name, payload)
            if isinstance(parsed, Batch):
                receipt = (parsed.tenant, parsed.device, parsed.batch_id)
            elif isinstance(parsed, Alarm):
                receipt = (parsed.tenant, parsed.device, parsed.alarm_id)
            elif isinstance(parsed, Health):
                receipt = None
            else:
                raise MessageRejected(f"a {parsed.kind} message is not collected on {name!r}")
            check_storable(parsed)
            line = envelope(name, payload, now, normalized_times(parsed))
            self._held.add(parsed.kind, line, time.monotonic(), ack, receipt)
        except MessageRejected as exc:
            self._quarantine(name, payload, exc.reason, now, ack)
        except Exception as exc:  # a bug here must cost one message's landing path, not the service
            log.exception("unexpected failure on a message from %r", name)
            self._quarantine(name, payload, f"collector error: {exc!r}"[:500], now, ack)

    def _quarantine(
        self, name: str, payload: bytes, reason: str, now: float, ack: tuple[int, int] | None
    ) -> None:
        line = quarantine_line(name, payload, reason, now, self.config.identity)
        self._held.add("quarantine", line, time.monotonic(), ack)
        self.stats.quarantined += 1

    # ------------------------------------------------------------ landing

    def _maybe_flush(self, force: str = "") -> None:
        now = time.monotonic()
        if self._flushing is None:
            reason = force if force and self._held.messages else ""
            reason = reason or self._held.due(self.config.policy, now) or ""
            if not reason:
                return
            self._flushing, self._held = self._held, Held()
            self._flush_reason = reason
        elif now < self._retry_at and not force:
            return
        self._land(self._flushing)

    def _land(self, held: Held) -> None:
        files = []
        for kind in list(held.lines):
            try:
                files.append(self.zone.write(kind, b"".join(held.lines[kind])))
            except Exception as exc:  # LandingError, or a store's surprise: retry, never die
                self.stats.landing_failures += 1
                wait, self._backoff = self._backoff, min(_MAX_BACKOFF_S, self._backoff * 2)
                self._retry_at = time.monotonic() + wait
                level = logging.ERROR if isinstance(exc, LandingError) else logging.CRITICAL
                log.log(level, "landing failed, retrying in %.1f s: %r", wait, exc)
                return
            del held.lines[kind]
        self._backoff = 0.5
        self._flushing = None
        # Durable: only now may the broker and the agents let these messages go.
        for mid, qos in held.acks:
            self._client.ack(mid, qos)
        ids = self._publish_receipts(held.receipts)
        self.stats.flushes += 1
        self.stats.files += len(files)
        self.stats.landed += held.messages
        self.stats.acked += len(held.acks)
        self.stats.receipts += ids
        flushed = Flushed(self._flush_reason, tuple(files), held.messages, len(held.acks), ids)
        log.debug("landed %d messages in %d files (%s)", held.messages, len(files), flushed.reason)
        if self.on_flush is not None:
            self.on_flush(flushed)

    def _publish_receipts(self, receipts: dict[tuple[str, str], list[str]]) -> int:
        landed_at = time.time()
        sent = 0
        for (tenant, device), ids in receipts.items():
            for i in range(0, len(ids), MAX_RECEIPT_IDS):
                chunk = ids[i : i + MAX_RECEIPT_IDS]
                payload = encode_receipt(chunk, landed_at)
                self._client.publish(topic(tenant, device, "receipt"), payload, qos=1)
                sent += len(chunk)
        return sent

    # ------------------------------------------------------------ the loop

    def run(self, stop: threading.Event) -> CollectorStats:
        """Collect until `stop` is set, then land what is held and disconnect."""
        self._connect_with_retry(stop)
        last_report = time.monotonic()
        while not stop.is_set():
            rc = self._client.loop(timeout=0.05)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._maybe_flush()
                self._reconnect(stop)
            self._maybe_flush()
            if time.monotonic() - last_report > 30:
                log.info("collector: %s", self.stats)
                last_report = time.monotonic()
        self._drain_on_stop()
        return self.stats

    def _drain_on_stop(self) -> None:
        deadline = time.monotonic() + 30
        while (self._flushing is not None or self._held.messages) and time.monotonic() < deadline:
            self._maybe_flush(force="stop")
            if self._flushing is not None:
                time.sleep(0.2)
        # Let the acks and receipts reach the broker before saying goodbye.
        for _ in range(20):
            if self._client.want_write():
                self._client.loop(timeout=0.05)
        self._client.disconnect()
        self._client.loop(timeout=0.1)

    def _connect_with_retry(self, stop: threading.Event) -> None:
        delay = 0.2
        while not stop.is_set():
            try:
                self._client.connect(
                    self.config.host,
                    self.config.port,
                    keepalive=self.config.keepalive_s,
                    clean_start=False,
                    properties=self._connect_properties(),
                )
                return
            except OSError as exc:
                log.warning("cannot reach the broker (%s); retrying in %.1f s", exc, delay)
                stop.wait(delay)
                delay = min(_MAX_BACKOFF_S, delay * 2)

    def _reconnect(self, stop: threading.Event) -> None:
        delay = 0.2
        while not stop.is_set():
            try:
                self._client.reconnect()
                return
            except OSError as exc:
                log.warning("broker unreachable (%s); retrying in %.1f s", exc, delay)
                self._maybe_flush()
                stop.wait(delay)
                delay = min(_MAX_BACKOFF_S, delay * 2)
