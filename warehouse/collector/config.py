"""The collector's settings, resolved once: the broker from `[mqtt]`, the rest from
`[collector]`, flags over both."""

from __future__ import annotations

import dataclasses
import socket

from edgebatch.settings import Settings
from edgebatch.warehouse.collector.buffer import FlushPolicy
from edgebatch.warehouse.collector.workers import default_workers

# Kinds the collector subscribes to; status is the agents' retained presence, receipts its own.
SUBSCRIBED = ("batch", "alarm", "health")


@dataclasses.dataclass(frozen=True)
class CollectorConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = ""
    share_group: str = "edgebatch"
    username: str = ""
    password: str = ""
    tls: bool = False
    ca_file: str = ""
    policy: FlushPolicy = dataclasses.field(default_factory=FlushPolicy)
    # The broker keeps the session (subscriptions, unacknowledged messages) this long offline.
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    # MQTT 5 Receive Maximum: how many unacknowledged messages the broker may send us.
    # Mosquitto's own default for clients that do not ask is 20, far too few to batch.
    receive_maximum: int = 65535
    kinds: tuple[str, ...] = SUBSCRIBED
    # Processes that check messages beside the network loop; None: one per core but one.
    validation_workers: int | None = None

    def __post_init__(self) -> None:
        if self.policy.max_messages >= self.receive_maximum:
            raise ValueError(
                f"flush count {self.policy.max_messages} must be below the receive maximum "
                f"{self.receive_maximum}, or the broker stops sending before a flush is due"
            )
        if self.validation_workers is not None and self.validation_workers < 0:
            raise ValueError(f"validation workers must be 0 or more, not {self.validation_workers}")

    def workers(self) -> int:
        if self.validation_workers is None:
            return default_workers()
        return self.validation_workers

    @property
    def identity(self) -> str:
        """Stable across restarts (the broker finds the session by it), distinct per collector."""
        return self.client_id or f"edgebatch-collector-{socket.gethostname()}"

    def subscriptions(self) -> list[str]:
        return [f"$share/{self.share_group}/edgebatch/+/+/{kind}" for kind in self.kinds]

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> CollectorConfig:
        mqtt = settings.mqtt
        values: dict[str, object] = {
            "host": mqtt.host,
            "port": mqtt.port,
            "client_id": mqtt.client_id,
            "share_group": mqtt.share_group,
            "username": mqtt.username,
            "password": mqtt.password,
            "tls": mqtt.tls,
            "ca_file": str(settings.path(mqtt.ca_file)) if mqtt.ca_file else "",
            "session_expiry_s": settings.collector.session_expiry_s,
            "policy": FlushPolicy(
                settings.collector.max_messages,
                settings.collector.max_bytes,
                settings.collector.max_age_s,
            ),
        }
        if settings.collector.validation_workers >= 0:
            values["validation_workers"] = settings.collector.validation_workers
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
