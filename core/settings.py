"""The project config: one TOML file, `EDGEBATCH_*` overrides, defaults that run on one machine.

Resolution, in one place (argument, then environment, then file, then default):
the path given, else `EDGEBATCH_CONFIG`, else `./edgebatch.toml` if present, else
defaults alone. Relative paths in the file are relative to the file's folder;
defaults are relative to `EDGEBATCH_HOME` (the working directory unless set).
Spark's own settings stay in `spark-defaults.conf`; `[spark] conf` adds to them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgebatch.config import build, load_toml
from edgebatch.errors import ConfigError

CONFIG_ENV = "EDGEBATCH_CONFIG"
HOME_ENV = "EDGEBATCH_HOME"
DEFAULT_FILE = "edgebatch.toml"


@dataclasses.dataclass(frozen=True)
class WarehouseSettings:
    """Where tables and landing files live: `file:///...` or `hdfs://host:port/...`."""

    root: str = ""
    # WebHDFS endpoint for hdfs:// roots (the collector writes through it); derived if empty.
    webhdfs_url: str = ""
    hdfs_user: str = ""

    def validate(self) -> None:
        if self.root and not self.root.startswith(("file://", "hdfs://", "/")):
            raise ConfigError(
                "key 'root' must be a file:// or hdfs:// URI (or an absolute path), "
                f"got {self.root!r}"
            )


@dataclasses.dataclass(frozen=True)
class SparkSettings:
    master: str = ""
    defaults_file: str = ""
    # Folder of Delta's jars, filled by `make jars`; empty means the repo's .cache/jars/delta.
    jars_dir: str = ""
    app_name: str = "edgebatch"
    conf: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class StateSettings:
    """SQLAlchemy URL of the state store: SQLite by default, PostgreSQL on a server."""

    url: str = ""


# MQTT 5 Receive Maximum the collector asks for: how many unacknowledged messages the broker
# may send it. Mosquitto's own default for clients that do not ask is 20, far too few to batch.
RECEIVE_MAXIMUM = 65535


@dataclasses.dataclass(frozen=True)
class MqttSettings:
    """`[mqtt]`: the broker and how to reach it, the same table in the project's config (the
    collector) and in an agent's config. Light on purpose: the agent imports it.

    Most keys mean the same on both sides; `share_group` is the collector's alone, and the
    reconnect, pacing and receipt keys are the agent's (the collector keeps its own pace).
    """

    host: str = "127.0.0.1"
    port: int = 1883
    username: str = ""
    password: str = ""
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    tls_insecure: bool = False
    keepalive_s: int = 30
    # Empty: `edgebatch-{tenant}-{device}` for an agent, `edgebatch-collector-HOSTNAME` for
    # a collector. The broker finds a persistent session by it: keep it stable.
    client_id: str = ""
    # The collector: MQTT 5 shared subscription group, so several collectors split the load.
    share_group: str = "edgebatch"
    # The agent: reconnect backoff bounds, unacknowledged publishes at once, send pace, and
    # how long a batch or alarm waits for its receipt before it is sent again.
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 60.0
    max_inflight: int = 20
    drain_rate_per_s: float = 50.0
    receipt_timeout_s: float = 60.0

    def validate(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"key 'port' must be 1..65535, got {self.port}")
        if self.keepalive_s < 0:
            raise ConfigError(f"key 'keepalive_s' must not be negative, got {self.keepalive_s}")
        if self.reconnect_min_s <= 0 or self.reconnect_max_s < self.reconnect_min_s:
            raise ConfigError(
                "keys 'reconnect_min_s' and 'reconnect_max_s' need 0 < reconnect_min_s <= "
                f"reconnect_max_s, got {self.reconnect_min_s} and {self.reconnect_max_s}"
            )
        if self.drain_rate_per_s <= 0 or self.max_inflight <= 0:
            raise ConfigError("keys 'drain_rate_per_s' and 'max_inflight' must be positive")
        if self.receipt_timeout_s <= 0:
            raise ConfigError(
                f"key 'receipt_timeout_s' must be positive, got {self.receipt_timeout_s}"
            )


@dataclasses.dataclass(frozen=True)
class CollectorSettings:
    """`edgebatch collect` (`[collector]`); its flags override these."""

    # Land a file per kind when this many messages, bytes, or seconds of the oldest are held.
    max_messages: int = 5000
    max_bytes: int = 8 << 20
    max_age_s: float = 1.0
    # Processes checking messages beside the network loop; -1: one per core but one (max 4).
    validation_workers: int = -1
    # The broker keeps an offline collector's session (and its messages) this long.
    session_expiry_s: int = 7 * 24 * 3600

    def validate(self) -> None:
        if self.max_messages < 1 or self.max_bytes < 1 or self.max_age_s <= 0:
            raise ConfigError("keys 'max_messages', 'max_bytes' and 'max_age_s' must be positive")
        if self.max_messages >= RECEIVE_MAXIMUM:
            raise ConfigError(
                f"key 'max_messages' must be below {RECEIVE_MAXIMUM} (the messages the broker "
                f"sends before it waits for acknowledgements), got {self.max_messages}"
            )
        if self.validation_workers < -1:
            raise ConfigError(
                f"key 'validation_workers' must be -1 (auto), 0 or more, "
                f"got {self.validation_workers}"
            )


@dataclasses.dataclass(frozen=True)
class FrameworkSettings:
    """How runs are executed and watched (`[framework]`)."""

    # Extra job modules or folders to discover beside the package's own `jobs/`.
    jobs: tuple[str, ...] = ()
    # A running run's lease lasts this long without a heartbeat; then any edgebatch
    # process that looks marks it failed. Heartbeats come every `heartbeat_s`.
    lease_ttl_s: float = 30.0
    heartbeat_s: float = 10.0
    # A queued run that no process claims this long after it was made is failed (its
    # creator died before starting it).
    queued_ttl_s: float = 900.0
    # Iterations of one run executing at once in the warm session.
    max_parallel_iterations: int = 4
    # How often Spark's status tracker is sampled for progress (iterations running at
    # least this long): sampling competes with the driver, so not too often.
    progress_interval_s: float = 2.0


@dataclasses.dataclass(frozen=True)
class NotifySettings:
    """`[notify]`: how run notifications are delivered (docs/notifications.md).

    Webhooks need nothing here; email needs `smtp_host`. Secrets belong in the
    environment: `EDGEBATCH_NOTIFY_SMTP_PASSWORD`.
    """

    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "edgebatch@localhost"
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = ""
    # Seconds a webhook or SMTP exchange may take (connect, and each read) before it counts
    # as a failed attempt; deliveries run beside each other, `workers` at once.
    timeout_s: float = 10.0
    workers: int = 4
    # Attempts per delivery (the first included), waiting backoff_s, 2x, 4x ... up to
    # max_backoff_s between them; then the delivery is given up, with the reason logged.
    max_attempts: int = 8
    backoff_s: float = 30.0
    max_backoff_s: float = 3600.0
    # How often the background dispatcher looks for outcomes and due deliveries.
    interval_s: float = 5.0
    # Runs that ended longer ago are never announced (a new dispatcher on an old store).
    lookback_s: float = 86400.0
    # Where links in notifications point (the API's address); empty: http://[api] host:port.
    base_url: str = ""

    def validate(self) -> None:
        if not 0 < self.smtp_port < 65536:
            raise ConfigError(f"key 'smtp_port' must be 1..65535, got {self.smtp_port}")
        for key in ("timeout_s", "backoff_s", "max_backoff_s", "interval_s", "lookback_s"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"key '{key}' must be positive, got {getattr(self, key)}")
        if self.max_attempts < 1 or self.workers < 1:
            raise ConfigError("keys 'max_attempts' and 'workers' must be at least 1")
        if self.max_backoff_s < self.backoff_s:
            raise ConfigError(
                f"key 'max_backoff_s' ({self.max_backoff_s}) must not be below 'backoff_s' "
                f"({self.backoff_s})"
            )
        if "@" not in self.smtp_from:
            raise ConfigError(f"key 'smtp_from' must be an email address, got {self.smtp_from!r}")
        if self.smtp_user and not self.smtp_host:
            raise ConfigError("key 'smtp_user' is set but 'smtp_host' is not")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"key 'base_url' must start with http:// or https://, got {self.base_url!r}"
            )


@dataclasses.dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclasses.dataclass(frozen=True)
class Settings:
    warehouse: WarehouseSettings = dataclasses.field(default_factory=WarehouseSettings)
    spark: SparkSettings = dataclasses.field(default_factory=SparkSettings)
    state: StateSettings = dataclasses.field(default_factory=StateSettings)
    mqtt: MqttSettings = dataclasses.field(default_factory=MqttSettings)
    collector: CollectorSettings = dataclasses.field(default_factory=CollectorSettings)
    api: ApiSettings = dataclasses.field(default_factory=ApiSettings)
    framework: FrameworkSettings = dataclasses.field(default_factory=FrameworkSettings)
    notify: NotifySettings = dataclasses.field(default_factory=NotifySettings)
    # Where relative paths resolve, and where the embedded defaults put their files.
    home: Path = dataclasses.field(default_factory=Path.cwd)
    source: str = "defaults"

    @property
    def var_dir(self) -> Path:
        return self.home / "var"

    @property
    def warehouse_root(self) -> str:
        root = self.warehouse.root or (self.var_dir / "warehouse").as_uri()
        if root.startswith("/"):
            return Path(root).as_uri()
        return root

    @property
    def state_url(self) -> str:
        return self.state.url or f"sqlite:///{self.var_dir / 'state.db'}"

    def path(self, value: str | Path) -> Path:
        """A path from the config, made absolute against `home`."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.home / p


_SECTIONS: dict[str, type] = {
    "warehouse": WarehouseSettings,
    "spark": SparkSettings,
    "state": StateSettings,
    "mqtt": MqttSettings,
    "collector": CollectorSettings,
    "api": ApiSettings,
    "framework": FrameworkSettings,
    "notify": NotifySettings,
}


def find_config_file(path: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    if path:
        return Path(path)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    candidate = Path.cwd() / DEFAULT_FILE
    return candidate if candidate.exists() else None


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve the project config (see the module docstring); errors name the key and file."""
    environ = os.environ if environ is None else environ
    file = find_config_file(path, environ)
    data: dict[str, Any] = load_toml(file) if file else {}
    source = str(file) if file else "defaults"
    for key in data:
        if key not in _SECTIONS:
            known = ", ".join(sorted(_SECTIONS))
            raise ConfigError(f"unknown section [{key}] in {source} (known sections: {known})")
    if environ.get(HOME_ENV):
        home = Path(environ[HOME_ENV]).resolve()
    elif file:
        home = file.resolve().parent
    else:
        home = Path.cwd()
    sections: dict[str, Any] = {
        name: build(cls, data.get(name), source=source, section=name, environ=environ)
        for name, cls in _SECTIONS.items()
    }
    return Settings(**sections, home=home, source=source)
