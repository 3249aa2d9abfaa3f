"""Where readings come from: a small plugin contract and the four built-in sources.

A source is polled, never waited on: `poll(now, max_n)` returns the readings it
has ready (possibly none) without blocking, and `state()` returns a JSON value
from which a new instance resumes (`Source(config, state, rejects)`). The agent
journals that state with every batch, so a restart picks up where the journal
ends. Plugins register themselves with `@source("kind", ConfigClass)`; the config
names them by `kind` under `[[source]]`.

Built in: `file` (JSON lines or CSV, tailed, surviving rotation and truncation;
a FIFO works too), `stdin`, `simulator` (noise, drift, injected anomalies; what
the demo, tests and benchmarks use) and `system` (psutil figures of the device).
"""

from __future__ import annotations

import abc
import dataclasses
import json
import logging
import math
import os
import random
import select
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

from edgebatch.edge.window import Reading, Rejects
from edgebatch.edge.wire import parse_ts
from edgebatch.errors import ConfigError

log = logging.getLogger(__name__)
_TAU = 2.0 * math.pi

REGISTRY: dict[str, tuple[type, type[Source]]] = {}


def source(kind: str, config_cls: type) -> Callable[[type[Source]], type[Source]]:
    """Register a source class under `kind`, with the dataclass its config section builds."""

    def register(cls: type[Source]) -> type[Source]:
        cls.kind = kind
        REGISTRY[kind] = (config_cls, cls)
        return cls

    return register


class Source(abc.ABC):
    """The plugin contract: `poll`, `state`, and optionally `metrics` and `close`."""

    kind: ClassVar[str] = ""

    def __init__(self, config: Any, state: Any, rejects: Rejects) -> None:
        self.config = config
        self.rejects = rejects

    @abc.abstractmethod
    def poll(self, now: float, max_n: int) -> list[Reading]:
        """Readings ready now, at most `max_n`; never blocks."""

    @abc.abstractmethod
    def state(self) -> Any:
        """A JSON value a new instance resumes from."""

    def metrics(self) -> dict[str, str | None]:
        """Metric names (with units) this source declares, so they need no `[[metric]]` entry."""
        return {}

    @property
    def exhausted(self) -> bool:
        """True when the source will never produce again (a finite simulator, closed stdin)."""
        return False

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        """Release files and descriptors."""


# ---------------------------------------------------------------- line formats


def parse_line(line: bytes, fmt: str, rejects: Rejects) -> Reading | None:
    """One JSON-lines or CSV line as a reading, or None (counted with its reason)."""
    text = line.strip()
    if not text:
        return None
    try:
        s = text.decode("utf-8")
    except UnicodeDecodeError:
        rejects("bad_line", f"line is not UTF-8: {text[:60]!r}")
        return None
    if fmt == "csv":
        parts = [p.strip() for p in s.split(",")]
        if parts[0] == "ts":
            return None
        if len(parts) not in (3, 4):
            rejects("bad_line", f"CSV line needs ts,metric,value[,unit]: {s[:80]!r}")
            return None
        raw_ts, metric, raw_value = parts[0], parts[1], parts[2]
        unit = parts[3] or None if len(parts) == 4 else None
    else:
        try:
            obj = json.loads(s)
        except ValueError as exc:
            rejects("bad_json", f"{exc}: {s[:80]!r}")
            return None
        if not isinstance(obj, dict) or not {"ts", "metric", "value"} <= obj.keys():
            rejects("bad_line", f"JSON line needs ts, metric and value: {s[:80]!r}")
            return None
        raw_ts, metric, raw_value, unit = obj["ts"], obj["metric"], obj["value"], obj.get("unit")
    ts = _number(raw_ts)
    if ts is None and isinstance(raw_ts, str):
        try:
            ts = parse_ts(raw_ts)
        except ValueError:
            ts = None
    if ts is None:
        rejects("bad_timestamp", f"timestamp {str(raw_ts)[:40]!r} is neither epoch nor RFC 3339")
        return None
    value = _number(raw_value)
    if value is None:
        rejects("not_numeric", f"{str(metric)[:60]!r}: value {str(raw_value)[:40]!r}")
        return None
    if unit is not None and not isinstance(unit, str):
        unit = None
    return (ts, metric, value, unit)


def _number(x: Any) -> float | None:
    """A float, or None; an integer too large for a float becomes infinity (refused later)."""
    if type(x) in (int, float) or isinstance(x, str):
        try:
            return float(x)
        except ValueError:
            return None
        except OverflowError:
            return math.inf
    return None


class _LineSplitter:
    """Turns chunks of bytes into complete lines, rejecting ones longer than the limit."""

    def __init__(self, max_line_bytes: int, rejects: Rejects) -> None:
        self.max = max_line_bytes
        self.rejects = rejects
        self.buf = b""
        self.skipping = False

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """Complete lines in `data` (after what was buffered) and the bytes they consumed."""
        data = self.buf + data
        lines = data.split(b"\n")
        self.buf = lines.pop()
        consumed = len(data) - len(self.buf)
        out = []
        for line in lines:
            if self.skipping:
                self.skipping = False
                continue
            if len(line) > self.max:
                self.rejects("oversized_line", f"line of {len(line)} bytes > {self.max}")
                continue
            out.append(line)
        if len(self.buf) > self.max:
            if not self.skipping:
                self.rejects("oversized_line", f"line longer than {self.max} bytes")
            self.skipping = True
            consumed += len(self.buf)
            self.buf = b""
        return out, consumed


# ---------------------------------------------------------------- file and FIFO


@dataclasses.dataclass(frozen=True)
class FileSourceConfig:
    path: str
    format: Literal["jsonl", "csv"] = "jsonl"
    max_line_bytes: int = 4096
    from_start: bool = True


@source("file", FileSourceConfig)
class FileSource(Source):
    """Tails a file (or reads a FIFO). On rotation it finishes the old file, then follows
    the new one; on truncation it starts over. Its state is `{"ino", "pos"}`, and after
    a restart it finds a rotated file by inode beside the path."""

    def __init__(self, config: FileSourceConfig, state: Any, rejects: Rejects) -> None:
        super().__init__(config, state, rejects)
        self.path = Path(config.path)
        self.split = _LineSplitter(config.max_line_bytes, rejects)
        self.fd: int | None = None
        self.ino: int | None = None
        self.pos = 0
        self.fifo = False
        self._resume = state if isinstance(state, dict) else None

    def _open(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        self.fifo = stat.S_ISFIFO(st.st_mode)
        path, pos = self.path, 0
        if self._resume is not None and not self.fifo:
            ino, pos = self._resume.get("ino"), int(self._resume.get("pos", 0))
            if ino != st.st_ino:
                path = self._find_rotated(ino) or self.path
                if path == self.path:
                    pos = 0
        elif not self.config.from_start and not self.fifo:
            pos = st.st_size
        self._resume = None
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.ino = os.fstat(self.fd).st_ino
        if not self.fifo:
            os.lseek(self.fd, pos, os.SEEK_SET)
        self.pos = pos
        return True

    def _find_rotated(self, ino: Any) -> Path | None:
        for p in self.path.parent.glob(self.path.name + "*"):
            try:
                if p.stat().st_ino == ino:
                    return p
            except OSError:
                continue
        return None

    def poll(self, now: float, max_n: int) -> list[Reading]:
        if self.fd is None and not self._open():
            return []
        out: list[Reading] = []
        while len(out) < max_n and self.fd is not None:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                data = b""
            if data:
                lines, consumed = self.split.feed(data)
                self.pos += consumed
                for line in lines:
                    r = parse_line(line, self.config.format, self.rejects)
                    if r is not None:
                        out.append(r)
                continue
            if self.fifo or not self._rotated():
                break
        return out

    def _rotated(self) -> bool:
        """At EOF: switch to a new file at the path (rotation) or rewind (truncation)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        if self.fd is None:
            return False
        if st.st_ino != self.ino:
            os.close(self.fd)
            self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            self.ino = os.fstat(self.fd).st_ino
            self.pos = 0
            self.split.buf = b""
            return True
        if st.st_size < self.pos:
            os.lseek(self.fd, 0, os.SEEK_SET)
            self.pos = 0
            self.split.buf = b""
            return True
        return False

    def state(self) -> Any:
        if self.fifo or self.fd is None:
            return self._resume
        return {"ino": self.ino, "pos": self.pos}

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# ---------------------------------------------------------------- stdin


@dataclasses.dataclass(frozen=True)
class StdinSourceConfig:
    format: Literal["jsonl", "csv"] = "jsonl"
    max_line_bytes: int = 4096


@source("stdin", StdinSourceConfig)
class StdinSource(Source):
    """Reads lines from standard input without blocking; no resume state (a pipe cannot
    be re-read)."""

    def __init__(self, config: StdinSourceConfig, state: Any, rejects: Rejects) -> None:
        super().__init__(config, state, rejects)
        self.fd = sys.stdin.fileno()
        self.split = _LineSplitter(config.max_line_bytes, rejects)
        self.eof = False

    def poll(self, now: float, max_n: int) -> list[Reading]:
        out: list[Reading] = []
        while not self.eof and len(out) < max_n:
            ready, _, _ = select.select([self.fd], [], [], 0)
            if not ready:
                break
            data = os.read(self.fd, 65536)
            if not data:
                self.eof = True
                data = b"\n"
            lines, _ = self.split.feed(data)
            for line in lines:
                r = parse_line(line, self.config.format, self.rejects)
                if r is not None:
                    out.append(r)
        return out

    def state(self) -> Any:
        return None

    @property
    def exhausted(self) -> bool:
        return self.eof


# ---------------------------------------------------------------- simulator


@dataclasses.dataclass(frozen=True)
class SimMetric:
    name: str
    unit: str | None = None
    base: float = 20.0
    noise: float = 1.0
    drift_per_s: float = 0.0
    anomaly_rate: float = 0.0
    anomaly_size: float = 10.0
    daily_amplitude: float = 0.0
    peak_hour: float = 12.0
    floor: float | None = None
    ceiling: float | None = None


@dataclasses.dataclass(frozen=True)
class SimulatorConfig:
    """`rate_hz` readings per second in all, round-robin over the metrics; `metric_count`
    adds generated metrics `sim_00`, `sim_01`, ...; `total` > 0 stops after that many;
    `profile` names a kind of device whose metrics come first (`edge/profiles.py`)."""

    profile: str = ""
    metrics: list[SimMetric] = dataclasses.field(default_factory=list)
    metric_count: int = 0
    rate_hz: float = 20.0
    total: int = 0
    seed: int = 0
    realtime: bool = True
    start_ts: float | None = None

    def validate(self) -> None:
        from edgebatch.edge.profiles import PROFILES

        if self.profile and self.profile not in PROFILES:
            raise ConfigError(
                f"profile must be one of {', '.join(sorted(PROFILES))}, got {self.profile!r}"
            )


def simulated_metrics(config: SimulatorConfig) -> list[SimMetric]:
    """The profile's metrics, replaced or joined by `metrics`, then the generated ones."""
    from edgebatch.edge.profiles import PROFILES

    own = {m.name: m for m in config.metrics}
    profile = PROFILES.get(config.profile, ())
    specs = [own.get(p["name"]) or SimMetric(**p) for p in profile]
    taken = {p["name"] for p in profile}
    specs += [m for m in config.metrics if m.name not in taken]
    return specs + [
        SimMetric(f"sim_{k:02d}", "u", base=10.0 + k) for k in range(config.metric_count)
    ]


@source("simulator", SimulatorConfig)
class SimulatorSource(Source):
    """Synthetic readings with noise, drift and injected anomalies. Reading `i` has event
    time `t0 + i / rate_hz`; its state `{"i", "t0"}` makes a restart continue the sequence
    so that exactly `total` readings are ever produced."""

    def __init__(self, config: SimulatorConfig, state: Any, rejects: Rejects) -> None:
        super().__init__(config, state, rejects)
        specs = simulated_metrics(config)
        if not specs:
            specs = [SimMetric("temperature", "C")]
        self.specs = specs
        if isinstance(state, dict):
            self.i, self.t0 = int(state["i"]), float(state["t0"])
        else:
            self.i = 0
            self.t0 = config.start_ts if config.start_ts is not None else _now()
        self.rng = random.Random(config.seed * 1_000_003 + self.i)

    def poll(self, now: float, max_n: int) -> list[Reading]:
        cfg = self.config
        end = self.i + max_n
        if cfg.realtime:
            end = min(end, math.floor((now - self.t0) * cfg.rate_hz) + 1)
        if cfg.total > 0:
            end = min(end, cfg.total)
        if end <= self.i:
            return []
        specs, m, rate, t0, gauss, rnd = (
            self.specs,
            len(self.specs),
            cfg.rate_hz,
            self.t0,
            self.rng.gauss,
            self.rng.random,
        )
        out: list[Reading] = []
        for j in range(self.i, end):
            spec = specs[j % m]
            ts = t0 + j / rate
            value = spec.base + spec.drift_per_s * (ts - t0) + gauss(0.0, spec.noise)
            if spec.daily_amplitude:
                hour = (ts % 86400.0) / 3600.0
                value += spec.daily_amplitude * math.cos(_TAU * (hour - spec.peak_hour) / 24.0)
            if spec.anomaly_rate and rnd() < spec.anomaly_rate:
                value += spec.anomaly_size
            if spec.floor is not None and value < spec.floor:
                value = spec.floor
            if spec.ceiling is not None and value > spec.ceiling:
                value = spec.ceiling
            out.append((ts, spec.name, value, spec.unit))
        self.i = end
        return out

    def state(self) -> Any:
        return {"i": self.i, "t0": self.t0}

    def metrics(self) -> dict[str, str | None]:
        return {s.name: s.unit for s in self.specs}

    @property
    def exhausted(self) -> bool:
        return self.config.total > 0 and self.i >= self.config.total


# ---------------------------------------------------------------- system metrics


@dataclasses.dataclass(frozen=True)
class SystemSourceConfig:
    interval_s: float = 10.0
    prefix: str = "sys."


@source("system", SystemSourceConfig)
class SystemSource(Source):
    """The device's own figures from psutil, every `interval_s` seconds."""

    def __init__(self, config: SystemSourceConfig, state: Any, rejects: Rejects) -> None:
        super().__init__(config, state, rejects)
        import psutil

        self.psutil = psutil
        self.next = 0.0
        psutil.cpu_percent(None)

    def poll(self, now: float, max_n: int) -> list[Reading]:
        if now < self.next:
            return []
        self.next = now + self.config.interval_s
        ps, p = self.psutil, self.config.prefix
        out: list[Reading] = [
            (now, p + "cpu_percent", float(ps.cpu_percent(None)), "%"),
            (now, p + "memory_percent", float(ps.virtual_memory().percent), "%"),
            (now, p + "disk_percent", float(ps.disk_usage("/").percent), "%"),
            (now, p + "load1", float(os.getloadavg()[0]), None),
        ]
        temp = device_temperature(ps)
        if temp is not None:
            out.append((now, p + "temperature", temp, "C"))
        return out[:max_n]

    def state(self) -> Any:
        return None

    def metrics(self) -> dict[str, str | None]:
        p = self.config.prefix
        return {
            p + "cpu_percent": "%",
            p + "memory_percent": "%",
            p + "disk_percent": "%",
            p + "load1": None,
            p + "temperature": "C",
        }


def device_temperature(psutil: Any) -> float | None:
    """The first temperature sensor psutil knows of, if the platform has any."""
    read = getattr(psutil, "sensors_temperatures", None)
    if read is None:
        return None
    try:
        for entries in read().values():
            for entry in entries:
                if entry.current is not None and math.isfinite(entry.current):
                    return float(entry.current)
    except (OSError, RuntimeError, AttributeError):
        return None
    return None


def _now() -> float:
    import time

    return time.time()
