"""The agent's settings: typed sections built by `edgebatch.config`, checked at start-up.

Each TOML section is a frozen dataclass, built on its own so that environment
overrides reach it (`EDGEBATCH_MQTT_PASSWORD`, `EDGEBATCH_AGENT_DEVICE`, ...).
`[mqtt]` is the project's one MQTT settings type (`edgebatch.settings.MqttSettings`),
`[window]` the windower's own parameters (`edgebatch.edge.window.WindowParams`).
`[[source]]` tables name a registered source `kind`; the rest of the table builds
that source's own config class, so a wrong key is reported with the file and the
source's index, like any other.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from edgebatch.config import build, load_toml
from edgebatch.edge.alarms import AlarmRule
from edgebatch.edge.sources import REGISTRY
from edgebatch.edge.window import MAX_UNIT_LEN, WindowParams
from edgebatch.edge.wire import METRIC_RE, NAME_RE
from edgebatch.errors import ConfigError
from edgebatch.settings import MqttSettings


@dataclasses.dataclass(frozen=True)
class AgentSection:
    """`[agent]`: who this device is and where it keeps its state."""

    tenant: str
    device: str
    data_dir: Path = Path("/var/lib/edgebatch-agent")
    poll_interval_s: float = 0.05
    batch_max: int = 2048
    unknown_metrics: Literal["reject", "accept"] = "reject"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def validate(self) -> None:
        for key in ("tenant", "device"):
            value = getattr(self, key)
            if not NAME_RE.fullmatch(value):
                raise ConfigError(f"'{key}' {value!r} must match {NAME_RE.pattern}")
        if self.poll_interval_s <= 0 or self.batch_max <= 0:
            raise ConfigError("'poll_interval_s' and 'batch_max' must be positive")


@dataclasses.dataclass(frozen=True)
class OutboxSection:
    """`[outbox]`: the bound on stored payload bytes, and how far coarsening may merge."""

    max_bytes: int = 64 << 20
    max_coarse_span_s: float = 3600.0

    def validate(self) -> None:
        if self.max_bytes < 4096:
            raise ConfigError(f"'max_bytes' must be at least 4096, got {self.max_bytes}")


@dataclasses.dataclass(frozen=True)
class HealthSection:
    """`[health]`: the heartbeat period."""

    interval_s: float = 30.0

    def validate(self) -> None:
        if self.interval_s <= 0:
            raise ConfigError(f"'interval_s' must be positive, got {self.interval_s}")


@dataclasses.dataclass(frozen=True)
class MetricDef:
    """`[[metric]]`: a metric the agent accepts, with its unit."""

    name: str
    unit: str | None = None

    def validate(self) -> None:
        if not METRIC_RE.fullmatch(self.name):
            raise ConfigError(f"metric name {self.name!r} must match {METRIC_RE.pattern}")
        if self.unit is not None and not 0 < len(self.unit) <= MAX_UNIT_LEN:
            raise ConfigError(f"metric '{self.name}': unit must be 1 to {MAX_UNIT_LEN} characters")


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    kind: str
    config: Any


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    agent: AgentSection
    window: WindowParams
    mqtt: MqttSettings
    outbox: OutboxSection
    health: HealthSection
    metrics: tuple[MetricDef, ...]
    alarms: tuple[AlarmRule, ...]
    sources: tuple[SourceSpec, ...]
    source_file: str = "defaults"


_SECTIONS: dict[str, type] = {
    "agent": AgentSection,
    "window": WindowParams,
    "mqtt": MqttSettings,
    "outbox": OutboxSection,
    "health": HealthSection,
}
_LISTS = ("metric", "alarm", "source")


def load(path: str | Path, environ: Mapping[str, str] | None = None) -> AgentConfig:
    """Read and check an agent config file; every error names the key and the file."""
    return from_dict(load_toml(path), source=str(path), environ=environ)


def from_dict(
    data: Mapping[str, Any], *, source: str = "defaults", environ: Mapping[str, str] | None = None
) -> AgentConfig:
    known = [*_SECTIONS, *_LISTS]
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"unknown section '{key}' in {source} (known: {', '.join(known)}){hint}"
            )
    sections: dict[str, Any] = {
        name: build(cls, _table(data, name, source), source=source, section=name, environ=environ)
        for name, cls in _SECTIONS.items()
    }
    metrics = tuple(
        build(MetricDef, m, source=source, section=f"metric[{i}]", environ={})
        for i, m in enumerate(_tables(data, "metric", source))
    )
    alarms = tuple(
        build(AlarmRule, a, source=source, section=f"alarm[{i}]", environ={})
        for i, a in enumerate(_tables(data, "alarm", source))
    )
    names = [a.name for a in alarms]
    if len(set(names)) != len(names):
        raise ConfigError(f"alarm names must be unique in {source}: {names}")
    sources = []
    for i, table in enumerate(_tables(data, "source", source)):
        table = dict(table)
        kind = table.pop("kind", None)
        if kind not in REGISTRY:
            raise ConfigError(
                f"[source[{i}]] of {source}: 'kind' must be one of {', '.join(sorted(REGISTRY))},"
                f" got {kind!r}"
            )
        section = f"source[{i}]"
        cfg: Any = build(REGISTRY[kind][0], table, source=source, section=section, environ={})
        sources.append(SourceSpec(kind, cfg))
    if not sources:
        raise ConfigError(f"{source} has no [[source]]: the agent would have nothing to read")
    return AgentConfig(
        metrics=metrics, alarms=alarms, sources=tuple(sources), source_file=source, **sections
    )


def _table(data: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"'{key}' in {source} must be a table ([{key}])")
    return value


def _tables(data: Mapping[str, Any], key: str, source: str) -> list[Mapping[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError(f"'{key}' in {source} must be an array of tables ([[{key}]])")
    return value
