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
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgebatch.config import build, load_toml
from edgebatch.errors import ConfigError

CONFIG_ENV = "EDGEBATCH_CONFIG"
# A queue's name (in job definitions, run requests and `[worker]`): it also names a pool.
QUEUE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
QUEUE_NAME_RULE = "lower case letters, digits, _ and -, starting with a letter, at most 64"
HOME_ENV = "EDGEBATCH_HOME"
# A target table of a database sink: `table` or `schema.table`, plain identifiers only.
SQL_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
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


def _check_queue_name(key: str, name: str) -> None:
    if not QUEUE_NAME.match(name):
        raise ConfigError(f"key {key!r}: queue name {name!r} must be {QUEUE_NAME_RULE}")


@dataclasses.dataclass(frozen=True)
class QueueSettings:
    """`[worker.queue.NAME]`: how a worker runs the runs of one queue."""

    # The fair-scheduler pool its runs' Spark jobs go in; empty: the pool named as the queue.
    pool: str = ""
    # Executors (Spark dynamic allocation, on a cluster) a worker serving this queue keeps
    # at least and asks for at most; -1: no upper bound.
    min_executors: int = 0
    max_executors: int = -1

    def validate(self) -> None:
        if self.min_executors < 0:
            raise ConfigError(f"key 'min_executors' must be 0 or more, got {self.min_executors}")
        if self.max_executors != -1 and self.max_executors < max(1, self.min_executors):
            raise ConfigError(
                f"key 'max_executors' must be -1 (no bound) or at least 1 and min_executors "
                f"({self.min_executors}), got {self.max_executors}"
            )


@dataclasses.dataclass(frozen=True)
class WorkerSettings:
    """`edgebatch worker` (`[worker]`): which queues it serves and how; its flags override these."""

    queues: tuple[str, ...] = ("default",)
    # Runs executing at once (each in its own thread of the warm session).
    slots: int = 2
    # Heartbeat and health in the store this often; a worker silent for `lost_after_s` is lost.
    heartbeat_s: float = 5.0
    lost_after_s: float = 30.0
    # How often an idle worker (or one with every slot busy) looks for work again.
    poll_s: float = 0.2
    # On SIGTERM/SIGINT, runs still going after this long are given back to their queue.
    stop_grace_s: float = 30.0
    # Spark dynamic allocation on a cluster master (never in local mode), with shuffle
    # tracking instead of an external shuffle service.
    dynamic_allocation: bool = True
    executor_idle_timeout_s: float = 60.0
    # An executor holding shuffle data still referenced is kept at most this long.
    shuffle_tracking_timeout_s: float = 1800.0
    queue: dict[str, QueueSettings] = dataclasses.field(default_factory=dict)

    def validate(self) -> None:
        if not self.queues:
            raise ConfigError("key 'queues' must name at least one queue")
        for name in (*self.queues, *self.queue):
            _check_queue_name("queues", name)
        if self.slots < 1:
            raise ConfigError(f"key 'slots' must be at least 1, got {self.slots}")
        for key in ("heartbeat_s", "lost_after_s", "poll_s", "executor_idle_timeout_s"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"key {key!r} must be positive, got {getattr(self, key)}")
        if self.lost_after_s <= self.heartbeat_s:
            raise ConfigError(
                f"key 'lost_after_s' ({self.lost_after_s}) must be longer than 'heartbeat_s' "
                f"({self.heartbeat_s}), or every worker would be lost between two beats"
            )
        if self.stop_grace_s < 0 or self.shuffle_tracking_timeout_s <= 0:
            raise ConfigError(
                "keys 'stop_grace_s' (0 or more) and 'shuffle_tracking_timeout_s' (positive)"
            )

    def of_queue(self, name: str) -> QueueSettings:
        """The settings of queue `name` (defaults for a queue with no table of its own)."""
        return self.queue.get(name, QueueSettings())

    def pool_of(self, name: str) -> str:
        return self.of_queue(name).pool or name


@dataclasses.dataclass(frozen=True)
class SchedulerSettings:
    """`edgebatch scheduler` (`[scheduler]`): its pace, its leader lease, its limits."""

    # One pass (lease, triggers, held runs) every this many seconds.
    loop_interval_s: float = 1.0
    # The leader's lease lasts this long without renewal; a standby takes over after it.
    lease_ttl_s: float = 10.0
    # This scheduler's name in the lease; empty: host:pid:random.
    holder: str = ""
    # Schedulers sharing a store and this name elect one leader among them.
    lease_name: str = "scheduler"
    # Runs at once over all jobs, and per queue (0: no limit).
    max_running: int = 0
    max_running_per_queue: dict[str, int] = dataclasses.field(default_factory=dict)
    # A held run's priority grows by this much per minute it waits (aging).
    aging_per_minute: float = 1.0
    # Jobs whose triggers this scheduler does not evaluate (runs by hand still start):
    # e.g. a sink job on a machine with no database configured for it.
    paused: tuple[str, ...] = ()

    def validate(self) -> None:
        if self.loop_interval_s <= 0:
            raise ConfigError(f"key 'loop_interval_s' must be positive, got {self.loop_interval_s}")
        if self.lease_ttl_s < 2 * self.loop_interval_s:
            raise ConfigError(
                "key 'lease_ttl_s' must be at least twice 'loop_interval_s' (the leader renews "
                f"once per loop), got {self.lease_ttl_s} and {self.loop_interval_s}"
            )
        if self.max_running < 0 or any(v < 0 for v in self.max_running_per_queue.values()):
            raise ConfigError("keys 'max_running' and 'max_running_per_queue' must not be negative")
        if self.aging_per_minute < 0:
            raise ConfigError(
                f"key 'aging_per_minute' must not be negative, got {self.aging_per_minute}"
            )


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
    """`edgebatch api` (`[api]`): where it listens, its secret, CORS, limits and demo mode.

    `secret` signs the dashboard's session cookies and CSRF tokens; the service refuses
    to start without one unless `demo` is true (then a random one lasts one process).
    """

    host: str = "127.0.0.1"
    port: int = 8080
    secret: str = ""
    demo: bool = False
    # Origins allowed to call the API from a browser; empty: CORS off.
    cors_origins: tuple[str, ...] = ()
    # Sign-in attempts per client address and per user name, per minute.
    login_per_minute: int = 10
    # HTTP ingest per device: sustained messages per second and the burst above it.
    ingest_per_s: float = 200.0
    ingest_burst: int = 2000
    ingest_max_bytes: int = 4 << 20
    upload_max_bytes: int = 1 << 30
    session_ttl_s: float = 12 * 3600.0
    # Mark the session cookie Secure (serve the API over HTTPS, or behind a proxy that does).
    cookie_secure: bool = False
    # Subscribe to the agents' retained status topic for the fleet's online/offline.
    mqtt_status: bool = True
    # A device with no heartbeat this long is offline whatever its status topic says.
    device_offline_s: float = 300.0
    # Days of bronze/device_health the fleet view reads.
    device_lookback_days: int = 7
    # /metrics without a token (Prometheus scrapers inside a trusted network).
    metrics_public: bool = False

    def validate(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"key 'port' must be 1..65535, got {self.port}")
        if self.secret and len(self.secret) < 16:
            raise ConfigError("key 'secret' must be at least 16 characters")
        positive = ("login_per_minute", "ingest_per_s", "ingest_burst", "ingest_max_bytes")
        for key in (*positive, "upload_max_bytes", "session_ttl_s", "device_offline_s"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"key {key!r} must be positive, got {getattr(self, key)}")


@dataclasses.dataclass(frozen=True)
class DatabaseSinkSettings:
    """One database the sinks write to (`[sinks.databases.NAME]`; docs/sinks.md).

    `tables` maps a Delta table's registry name to the target table (`schema.table`).
    The password comes from `password`, else the environment variable `password_env` names.
    """

    url: str = ""
    user: str = ""
    password: str = ""
    password_env: str = ""
    tables: dict[str, str] = dataclasses.field(default_factory=dict)
    # Throttle: at most this many rows per second over all connections (0: unthrottled),
    # sent in JDBC batches of `batch_size` rows over at most `connections` connections.
    rows_per_second: float = 5000.0
    batch_size: int = 1000
    connections: int = 2

    def validate(self) -> None:
        if not self.url.startswith("jdbc:postgresql://"):
            raise ConfigError(f"key 'url' must be a jdbc:postgresql:// URL, got {self.url!r}")
        if self.rows_per_second < 0:
            raise ConfigError(
                f"key 'rows_per_second' must be 0 (unthrottled) or more, got {self.rows_per_second}"
            )
        for key in ("batch_size", "connections"):
            if getattr(self, key) < 1:
                raise ConfigError(f"key {key!r} must be at least 1, got {getattr(self, key)}")
        for source, target in self.tables.items():
            if not SQL_TABLE_NAME.match(target):
                raise ConfigError(
                    f"key 'tables.{source}' must be a table name like schema.table "
                    f"(letters, digits, _), got {target!r}"
                )


@dataclasses.dataclass(frozen=True)
class SinksSettings:
    """`[sinks]`: the databases gold tables are copied to for BI tools."""

    databases: dict[str, DatabaseSinkSettings] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Settings:
    warehouse: WarehouseSettings = dataclasses.field(default_factory=WarehouseSettings)
    spark: SparkSettings = dataclasses.field(default_factory=SparkSettings)
    state: StateSettings = dataclasses.field(default_factory=StateSettings)
    mqtt: MqttSettings = dataclasses.field(default_factory=MqttSettings)
    collector: CollectorSettings = dataclasses.field(default_factory=CollectorSettings)
    api: ApiSettings = dataclasses.field(default_factory=ApiSettings)
    framework: FrameworkSettings = dataclasses.field(default_factory=FrameworkSettings)
    scheduler: SchedulerSettings = dataclasses.field(default_factory=SchedulerSettings)
    worker: WorkerSettings = dataclasses.field(default_factory=WorkerSettings)
    sinks: SinksSettings = dataclasses.field(default_factory=SinksSettings)
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
    "scheduler": SchedulerSettings,
    "worker": WorkerSettings,
    "sinks": SinksSettings,
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
