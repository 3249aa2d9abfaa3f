"""The collector's settings, resolved once: the broker from `[mqtt]`, the rest from
`[collector]`, flags over both."""

from __future__ import annotations

import dataclasses
import socket
from typing import Any

from edgebatch.errors import ConfigError
from edgebatch.settings import RECEIVE_MAXIMUM, MqttSettings, Settings
from edgebatch.warehouse.collector.buffer import FlushPolicy
from edgebatch.warehouse.collector.workers import default_workers

# Kinds the collector subscribes to; status is the agents' retained presence, receipts its own.
SUBSCRIBED = ("batch", "alarm", "health")


@dataclasses.dataclass(frozen=True)
class CollectorConfig:
    mqtt: MqttSettings = dataclasses.field(default_factory=MqttSettings)
    policy: FlushPolicy = dataclasses.field(default_factory=FlushPolicy)
    # The broker keeps the session (subscriptions, unacknowledged messages) this long offline.
    session_expiry_s: int = 7 * 24 * 3600
    # MQTT 5 Receive Maximum: how many unacknowledged messages the broker may send us.
    receive_maximum: int = RECEIVE_MAXIMUM
    kinds: tuple[str, ...] = SUBSCRIBED
    # Processes that check messages beside the network loop; None: one per core but one.
    validation_workers: int | None = None

    def __post_init__(self) -> None:
        if self.policy.max_messages >= self.receive_maximum:
            raise ConfigError(
                f"[collector] max_messages (or --max-messages) is {self.policy.max_messages}: "
                f"it must be below the receive maximum {self.receive_maximum}, or the broker "
                "stops sending before a flush is due"
            )
        if self.validation_workers is not None and self.validation_workers < 0:
            raise ConfigError(
                "[collector] validation_workers (or --validation-workers) must be 0 or more, "
                f"got {self.validation_workers}"
            )

    def workers(self) -> int:
        if self.validation_workers is None:
            return default_workers()
        return self.validation_workers

    @property
    def identity(self) -> str:
        """Stable across restarts (the broker finds the session by it), distinct per collector."""
        return self.mqtt.client_id or f"edgebatch-collector-{socket.gethostname()}"

    def subscriptions(self) -> list[str]:
        return [f"$share/{self.mqtt.share_group}/edgebatch/+/+/{kind}" for kind in self.kinds]

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        host: str | None = None,
        port: int | None = None,
        client_id: str | None = None,
        share_group: str | None = None,
        policy: FlushPolicy | None = None,
        validation_workers: int | None = None,
    ) -> CollectorConfig:
        """The project's settings, with the command line's flags (those not None) over them."""
        flags = {
            "host": host,
            "port": port,
            "client_id": client_id,
            "share_group": share_group,
        }
        files: dict[str, Any] = {
            key: str(settings.path(value))
            for key in ("ca_file", "cert_file", "key_file")
            if (value := getattr(settings.mqtt, key))
        }
        given: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
        mqtt = dataclasses.replace(settings.mqtt, **files, **given)
        collector = settings.collector
        if validation_workers is None and collector.validation_workers >= 0:
            validation_workers = collector.validation_workers
        try:
            return cls(
                mqtt=mqtt,
                policy=policy
                or FlushPolicy(collector.max_messages, collector.max_bytes, collector.max_age_s),
                session_expiry_s=collector.session_expiry_s,
                validation_workers=validation_workers,
            )
        except ConfigError as exc:
            raise ConfigError(f"{exc} (config: {settings.source})") from None
