"""The collector: MQTT in, durable landing files out, and only then the acknowledgements.

One thread runs the network loop, landing and acks, so the order the broker relies on
holds without locks: a message is acknowledged only after the file holding it is
durable, and acknowledgements go out in the order the messages came (MQTT 5 asks that
of a receiver). Checking each message against the wire format costs about as much as
receiving it, so it runs in chunks in worker processes (`workers.py`) whose results
come back in arrival order; with no workers (one core), the same chunks are checked in
this thread.

A collector killed at any point leaves its unacknowledged messages with the broker,
which resends them to the same persistent session; a broker killed before its
autosave loses them, and the agents resend whatever got no receipt. Either way a
message may land twice, never zero times; the bronze load drops the duplicate by id.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import ssl
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from edgebatch.edge.publisher import disconnect_reason
from edgebatch.edge.wire import topic
from edgebatch.warehouse.collector.buffer import Held
from edgebatch.warehouse.collector.config import CollectorConfig
from edgebatch.warehouse.collector.direct import receipt_payloads
from edgebatch.warehouse.collector.validation import CheckedChunk, check_chunk
from edgebatch.warehouse.collector.workers import ValidationPool
from edgebatch.warehouse.landing import LandingError, LandingFile, LandingZone

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 10.0
# Received messages are checked in chunks of this many, or sooner when the oldest has
# waited this long (at the workers a chunk costs a pickling and a pipe write, not a message).
_CHUNK_MESSAGES = 500
_CHUNK_WAIT_S = 0.02


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
    """`Collector(config, zone).run(stop_event)`; `on_flush` sees every durable landing.

    `connected` is set while the broker accepts us; `subscribed` once the broker has
    granted every subscription of the current connection (its SUBACK): from then on,
    what agents publish reaches this collector's session."""

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
        self.subscribed = threading.Event()
        self._subscribe_mid: int | None = None
        self._held = Held()
        self._flushing: Held | None = None
        self._flush_reason = ""
        self._retry_at = 0.0
        self._backoff = 0.5
        self._client = self._make_client()
        self._pool: ValidationPool | None = None
        # Received, not yet checked: (topic, payload, received_at), and their acks.
        self._received: list[tuple[str, bytes, float]] = []
        self._received_acks: list[tuple[int, int] | None] = []
        self._received_since = 0.0
        # Per chunk at the workers: its acks and the connection they belong to.
        self._chunk_acks: dict[int, tuple[int, list[tuple[int, int] | None]]] = {}
        self._connection = 0

    # ------------------------------------------------------------ MQTT session

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.config.identity,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        mqtt_settings = self.config.mqtt
        if mqtt_settings.username:
            client.username_pw_set(mqtt_settings.username, mqtt_settings.password or None)
        if mqtt_settings.tls:
            client.tls_set(
                ca_certs=mqtt_settings.ca_file or None,
                certfile=mqtt_settings.cert_file or None,
                keyfile=mqtt_settings.key_file or None,
                cert_reqs=ssl.CERT_NONE if mqtt_settings.tls_insecure else ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(mqtt_settings.tls_insecure)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
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
        self.subscribed.clear()
        _, self._subscribe_mid = client.subscribe(
            [(t, options) for t in self.config.subscriptions()]
        )
        log.info(
            "connected to %s:%s as %s (session present: %s)",
            self.config.mqtt.host,
            self.config.mqtt.port,
            self.config.identity,
            flags.session_present,
        )
        self.connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if mid != self._subscribe_mid:
            return
        topics = self.config.subscriptions()
        refused = [
            f"{t} ({rc})" for t, rc in zip(topics, reason_codes, strict=False) if rc.is_failure
        ]
        if refused:
            log.error(
                "the broker refused the subscriptions %s: nothing will be collected from them; "
                "check the broker's ACLs for this client",
                ", ".join(refused),
            )
            return
        log.info("subscribed to %s", ", ".join(topics))
        self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        self.subscribed.clear()
        # Packet ids of messages not landed yet mean nothing on the next connection: the
        # broker resends those messages. Chunks at the workers are told by their number.
        self._connection += 1
        self._received_acks = [None] * len(self._received_acks)
        self._held.forget_acks()
        if self._flushing is not None:
            self._flushing.forget_acks()
        where = f"{self.config.mqtt.host}:{self.config.mqtt.port}"
        if str(reason_code) == "Normal disconnection":
            log.info("disconnected from the broker %s", where)
            return
        log.warning(
            "lost the connection to the broker %s (%s); reconnecting with backoff, at most "
            "%g s apart; the broker sends again what this collector had not acknowledged",
            where,
            disconnect_reason(reason_code),
            _MAX_BACKOFF_S,
        )

    # ------------------------------------------------------------ messages

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        now = time.time()
        self.stats.received += 1
        ack = (message.mid, message.qos) if message.qos > 0 else None
        name = message._topic.decode("utf-8", "replace")
        payload = message.payload
        if not isinstance(payload, bytes):
            payload = bytes(payload)
        if not self._received:
            self._received_since = time.monotonic()
        self._received.append((name, payload, now))
        self._received_acks.append(ack)
        if len(self._received) >= _CHUNK_MESSAGES:
            self._dispatch()

    def _dispatch(self) -> None:
        """Hand the received messages on as one chunk: to the workers, or checked here."""
        received, acks = self._received, self._received_acks
        self._received, self._received_acks = [], []
        if self._pool is None:
            self._accept(self._connection, acks, check_chunk(received, self.config.identity))
            return
        self._chunk_acks[self._pool.submit(received)] = (self._connection, acks)

    def _pump(self, wait_s: float = 0.0) -> None:
        """Hand on what waited long enough; take the workers' results, in order."""
        if self._received and time.monotonic() - self._received_since >= _CHUNK_WAIT_S:
            self._dispatch()
        if self._pool is None:
            return
        for seq, chunk in self._pool.ready(wait_s):
            connection, acks = self._chunk_acks.pop(seq)
            self._accept(connection, acks, chunk)

    def _accept(
        self, connection: int, acks: list[tuple[int, int] | None], chunk: CheckedChunk
    ) -> None:
        if sum(chunk.counts.values()) != len(acks):
            raise RuntimeError(f"validation chunk: {len(acks)} messages sent, results differ")
        self.stats.quarantined += chunk.quarantined
        current = connection == self._connection  # else the broker resends: no acks
        self._held.add_chunk(
            chunk.lines, chunk.counts, time.monotonic(), acks if current else [], chunk.receipts
        )

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
            for payload in receipt_payloads(ids, landed_at):
                self._client.publish(topic(tenant, device, "receipt"), payload, qos=1)
            sent += len(ids)
        return sent

    # ------------------------------------------------------------ the loop

    def run(self, stop: threading.Event) -> CollectorStats:
        """Collect until `stop` is set, then land what is held and disconnect."""
        self.start_workers()
        gc.freeze()  # what is loaded by now lives as long as the service: out of every collection
        try:
            self._connect_with_retry(stop)
            self._collect(stop)
            self._drain_on_stop()
        finally:
            if self._pool is not None:
                self._pool.close()
        return self.stats

    def start_workers(self) -> None:
        """Start the validation workers and wait until they are up (`run` does it otherwise):
        messages arriving meanwhile would wait for the workers' imports."""
        workers = self.config.workers()
        if workers and self._pool is None:
            self._pool = ValidationPool(workers, self.config.identity)
            if not self._pool.wait_started():
                log.warning("validation workers slow to start; collecting anyway")

    def _collect(self, stop: threading.Event) -> None:
        last_report = time.monotonic()
        while not stop.is_set():
            rc = self._client.loop(timeout=0.05)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._maybe_flush()
                self._reconnect(stop)
            self._pump()
            self._maybe_flush()
            if time.monotonic() - last_report > 30:
                log.info("collector: %s", self.stats)
                last_report = time.monotonic()

    def _drain_on_stop(self) -> None:
        deadline = time.monotonic() + 30
        if self._received:
            self._dispatch()
        while self._pool is not None and self._pool.pending and time.monotonic() < deadline:
            self._pump(wait_s=0.2)
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
                    self.config.mqtt.host,
                    self.config.mqtt.port,
                    keepalive=self.config.mqtt.keepalive_s,
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
