"""The agents' presence: a subscriber to the retained `edgebatch/+/+/status` topic.

Each agent publishes `online` (retained) when it connects and the broker publishes its
last will `offline` when it drops, so one subscription gives the whole fleet's
presence at once and keeps it current. Held in memory; the fleet view joins it with
the devices' last heartbeat from bronze/device_health.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edgebatch.edge.wire import MessageRejected, parse_topic
from edgebatch.settings import MqttSettings

log = logging.getLogger(__name__)

STATUS_TOPIC = "edgebatch/+/+/status"


class StatusCache:
    """`status(tenant, device)` -> ("online" | "offline", epoch seconds seen) or None."""

    def __init__(self, mqtt_settings: MqttSettings) -> None:
        self.settings = mqtt_settings
        self._seen: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._client: mqtt.Client | None = None

    def start(self) -> None:
        s = self.settings
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"edgebatch-api-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if s.username:
            client.username_pw_set(s.username, s.password or None)
        if s.tls:
            client.tls_set(
                ca_certs=s.ca_file or None, certfile=s.cert_file or None, keyfile=s.key_file or None
            )
            client.tls_insecure_set(s.tls_insecure)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 30)
        client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        client.loop_start()
        self._client = client

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("the broker refused the API's status subscriber: %s", reason_code)
            return
        self.connected.set()
        client.subscribe(STATUS_TOPIC, qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        self.subscribed.clear()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        try:
            tenant, device, _ = parse_topic(message.topic)
        except MessageRejected:
            return
        text = message.payload[:32].decode("utf-8", "replace").strip().lower()
        state = "online" if text.startswith("online") else "offline"
        with self._lock:
            self._seen[(tenant, device)] = (state, time.time())

    def status(self, tenant: str, device: str) -> tuple[str, float] | None:
        with self._lock:
            return self._seen.get((tenant, device))

    def snapshot(self) -> dict[tuple[str, str], tuple[str, float]]:
        with self._lock:
            return dict(self._seen)
