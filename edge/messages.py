"""The wire format, version 1: topics, builders, and the strict parser the collector shares.

Contract: `../shared/ARCHITECTURE.md` ("Wire format"). This module is the one place
that knows it, on both sides: the agent builds payloads with `encode_*`, the
collector calls `parse_message(topic, payload)`, which returns a typed message
or raises `MessageRejected` whose `reason` says what was wrong and where (the
field path), so the quarantine table can say it too.

Shapes (JSON, UTF-8, no NaN or infinities anywhere, unknown fields rejected):

- batch: `v, batch_id, tenant, device, window_start, window_end, revision, metrics, agent`;
  each metric `name, unit?, count, sum, min, max, mean, m2, stddev, p50, p95, p99,
  sketch, first_ts, last_ts`. `sketch` is `{"alpha", "pos"?: {"start", "counts"},
  "neg"?: {"start", "counts"}, "zero"?}`: DDSketch's logarithmic mapping (see
  `edgebatch.edge.sketch`), dense bucket counts from key `start`; its counts add
  up to `count`. Times are RFC 3339 UTC (`...Z`).
- alarm: `v, alarm_id, tenant, device, rule, kind, state, metric, value, threshold, baseline,
  ts, severity, agent` (`threshold` or `baseline` may be null, not both).
- health: `v, heartbeat_id, tenant, device, ts, agent, uptime_s, cpu_percent, memory_percent,
  disk_percent, load, temperature_c, process, outbox, shed, rejected, last_send`.
- status: the bytes `online` or `offline` (retained; `offline` is the last will).
- receipt (collector to agent): `v, ids, landed_at`.

Identifiers are deterministic (`batch_id_for`, `coarse_batch_id_for`, `alarm_id_for`):
the same window and revision always give the same id, so a resend is a duplicate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from edgebatch.edge.errors import EdgeError

VERSION = 1
TOPIC_ROOT = "edgebatch"
KINDS = ("batch", "alarm", "health", "status", "receipt")
NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
METRIC_RE = re.compile(r"[A-Za-z0-9_.:/-]{1,128}")
ID_RE = re.compile(r"[0-9a-f]{32}")
TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
MAX_PAYLOAD_BYTES = 1 << 20
MAX_METRICS = 1024
MAX_SKETCH_BUCKETS = 8192
MAX_RECEIPT_IDS = 10_000
ALARM_KINDS = ("threshold", "rate", "zscore")
ALARM_STATES = ("raised", "cleared")
SEVERITIES = ("info", "warning", "critical")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ZERO = dt.timedelta(0)


class MessageRejected(EdgeError):
    """A message that breaks the wire format; `reason` is short, precise, and names the field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------- topics and times


def topic(tenant: str, device: str, kind: str) -> str:
    """`edgebatch/{tenant}/{device}/{kind}`, checking the names so a bad config fails early."""
    if not NAME_RE.fullmatch(tenant):
        raise EdgeError(f"tenant {tenant!r} must match {NAME_RE.pattern}")
    if not NAME_RE.fullmatch(device):
        raise EdgeError(f"device {device!r} must match {NAME_RE.pattern}")
    if kind not in KINDS:
        raise EdgeError(f"unknown message kind {kind!r}; one of {', '.join(KINDS)}")
    return f"{TOPIC_ROOT}/{tenant}/{device}/{kind}"


def format_ts(epoch: float) -> str:
    """RFC 3339 UTC; whole seconds when integral, else milliseconds (truncated, never rounded up,
    so a reading's time never crosses its window's end)."""
    # One microsecond of slack absorbs binary rounding: 1234.3 is stored as 1234.29999...,
    # and must print as .300 so that parse_ts and format_ts round-trip.
    whole, ms = divmod(math.floor(epoch * 1000.0 + 0.001), 1000)
    stamp = _EPOCH + dt.timedelta(seconds=whole)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    if ms == 0:
        return text + "Z"
    return f"{text}.{ms:03d}Z"


def parse_ts(text: str) -> float:
    """Epoch seconds of an RFC 3339 UTC time; raises ValueError otherwise.

    Only the extended form (`2026-01-01T00:00:00.5Z`, or `+00:00`): Python would also read
    ISO 8601's basic form, which Spark and most consumers downstream do not."""
    if type(text) is not str or not TS_RE.fullmatch(text):
        raise ValueError("not an RFC 3339 time (YYYY-MM-DDTHH:MM:SS[.ffffff]Z)")
    stamp = dt.datetime.fromisoformat(text)
    if stamp.utcoffset() != _ZERO:  # None, for a time without an offset, is not zero either
        raise ValueError("not UTC")
    return (stamp - _EPOCH).total_seconds()


# ---------------------------------------------------------------- identifiers


def _digest(*parts: object) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(str(p).encode())
        h.update(b"\x1f")
    return h.hexdigest()[:32]


def batch_id_for(
    tenant: str, device: str, window_start: float, window_end: float, revision: int
) -> str:
    """Hash of (tenant, device, window_start, window_end, revision): a resend is the same id."""
    return _digest(
        "batch", tenant, device, format_ts(window_start), format_ts(window_end), revision
    )


def coarse_batch_id_for(
    tenant: str, device: str, window_start: float, window_end: float, member_ids: Iterable[str]
) -> str:
    """A coarsened summary's id: hash of its span and the sorted ids of the windows it merges,
    so it can collide with neither its members nor a plain window of the same span."""
    return _digest(
        "coarse",
        tenant,
        device,
        format_ts(window_start),
        format_ts(window_end),
        *sorted(member_ids),
    )


def alarm_id_for(tenant: str, device: str, rule: str, metric: str, state: str, ts: float) -> str:
    """Hash of the rule, metric, state and event time that raised or cleared it."""
    return _digest("alarm", tenant, device, rule, metric, state, repr(float(ts)))


def heartbeat_id_for(tenant: str, device: str, ts: float) -> str:
    return _digest("health", tenant, device, repr(float(ts)))


# ---------------------------------------------------------------- builders


def dumps(obj: Mapping[str, Any]) -> bytes:
    """Compact JSON that refuses NaN and infinities (they are not JSON)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def encode_batch(
    *,
    tenant: str,
    device: str,
    window_start: float,
    window_end: float,
    revision: int,
    metrics: list[dict[str, Any]],
    agent: str,
    batch_id: str | None = None,
) -> tuple[str, bytes]:
    """`(batch_id, payload)` for one window summary; `metrics` as from `metric_summary`."""
    if batch_id is None:
        batch_id = batch_id_for(tenant, device, window_start, window_end, revision)
    payload = {
        "v": VERSION,
        "batch_id": batch_id,
        "tenant": tenant,
        "device": device,
        "window_start": format_ts(window_start),
        "window_end": format_ts(window_end),
        "revision": revision,
        "metrics": metrics,
        "agent": agent,
    }
    return batch_id, dumps(payload)


def encode_alarm(
    *,
    tenant: str,
    device: str,
    rule: str,
    kind: str,
    state: str,
    metric: str,
    value: float,
    threshold: float | None,
    baseline: Mapping[str, float] | None,
    ts: float,
    severity: str,
    agent: str,
) -> tuple[str, bytes]:
    alarm_id = alarm_id_for(tenant, device, rule, metric, state, ts)
    payload = {
        "v": VERSION,
        "alarm_id": alarm_id,
        "tenant": tenant,
        "device": device,
        "rule": rule,
        "kind": kind,
        "state": state,
        "metric": metric,
        "value": value,
        "threshold": threshold,
        "baseline": dict(baseline) if baseline is not None else None,
        "ts": format_ts(ts),
        "severity": severity,
        "agent": agent,
    }
    return alarm_id, dumps(payload)


def encode_health(
    *, tenant: str, device: str, ts: float, agent: str, figures: Mapping[str, Any]
) -> tuple[str, bytes]:
    """`figures` holds the health fields after `agent` (see the module docstring)."""
    heartbeat_id = heartbeat_id_for(tenant, device, ts)
    payload = {
        "v": VERSION,
        "heartbeat_id": heartbeat_id,
        "tenant": tenant,
        "device": device,
        "ts": format_ts(ts),
        "agent": agent,
        **figures,
    }
    return heartbeat_id, dumps(payload)


def encode_receipt(ids: Iterable[str], landed_at: float) -> bytes:
    return dumps({"v": VERSION, "ids": list(ids), "landed_at": format_ts(landed_at)})


# ---------------------------------------------------------------- typed messages


@dataclasses.dataclass(frozen=True)
class MetricSummary:
    name: str
    unit: str | None
    count: int
    sum: float
    min: float
    max: float
    mean: float
    m2: float
    stddev: float
    p50: float
    p95: float
    p99: float
    sketch: dict[str, Any]
    first_ts: float
    last_ts: float


@dataclasses.dataclass(frozen=True)
class Batch:
    tenant: str
    device: str
    batch_id: str
    window_start: float
    window_end: float
    revision: int
    metrics: tuple[MetricSummary, ...]
    agent: str
    kind: Literal["batch"] = "batch"


@dataclasses.dataclass(frozen=True)
class Alarm:
    tenant: str
    device: str
    alarm_id: str
    rule: str
    alarm_kind: str
    state: str
    metric: str
    value: float
    threshold: float | None
    baseline: dict[str, float] | None
    ts: float
    severity: str
    agent: str
    kind: Literal["alarm"] = "alarm"


@dataclasses.dataclass(frozen=True)
class Health:
    tenant: str
    device: str
    heartbeat_id: str
    ts: float
    agent: str
    figures: dict[str, Any]
    kind: Literal["health"] = "health"


@dataclasses.dataclass(frozen=True)
class Status:
    tenant: str
    device: str
    online: bool
    kind: Literal["status"] = "status"


@dataclasses.dataclass(frozen=True)
class Receipt:
    tenant: str
    device: str
    ids: tuple[str, ...]
    landed_at: float
    kind: Literal["receipt"] = "receipt"


Message = Batch | Alarm | Health | Status | Receipt


# ---------------------------------------------------------------- the parser


def parse_topic(topic_: str) -> tuple[str, str, str]:
    """`(tenant, device, kind)` of a wire topic, or `MessageRejected`."""
    if not isinstance(topic_, str):
        raise MessageRejected("topic is not a string")
    parts = topic_.split("/")
    if len(parts) != 4 or parts[0] != TOPIC_ROOT:
        raise MessageRejected(
            f"topic {topic_[:200]!r} is not {TOPIC_ROOT}/{{tenant}}/{{device}}/{{kind}}"
        )
    _, tenant, device, kind = parts
    if not NAME_RE.fullmatch(tenant):
        raise MessageRejected(f"topic tenant {tenant[:80]!r} does not match {NAME_RE.pattern}")
    if not NAME_RE.fullmatch(device):
        raise MessageRejected(f"topic device {device[:80]!r} does not match {NAME_RE.pattern}")
    if kind not in KINDS:
        raise MessageRejected(f"topic kind {kind[:80]!r} is not one of {', '.join(KINDS)}")
    return tenant, device, kind


def parse_message(topic_: str, payload: bytes) -> Message:
    """Check a message against wire format v1 and return it typed, or raise `MessageRejected`."""
    tenant, device, kind = parse_topic(topic_)
    if not isinstance(payload, bytes | bytearray):
        raise MessageRejected(f"payload is {type(payload).__name__}, not bytes")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MessageRejected(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    if kind == "status":
        if payload == b"online":
            return Status(tenant, device, True)
        if payload == b"offline":
            return Status(tenant, device, False)
        raise MessageRejected(f"status payload {bytes(payload[:40])!r} is not online/offline")
    if kind == "batch" and (fast := _fast_batches()) is not None:
        message = fast(tenant, device, payload)
        if message is not None:
            return message
    obj = _json_object(payload)
    version = obj.get("v")
    if type(version) is not int or version != VERSION:
        raise MessageRejected(f"field 'v' must be {VERSION}, got {_kind(version)} {version!r}")
    if kind == "receipt":
        return _parse_receipt(tenant, device, obj)
    for key in ("tenant", "device"):
        got = obj.get(key)
        want = tenant if key == "tenant" else device
        if got != want:
            raise MessageRejected(f"field '{key}' {got!r} does not match topic {key} {want!r}")
    if kind == "batch":
        return _parse_batch(tenant, device, obj)
    if kind == "alarm":
        return _parse_alarm(tenant, device, obj)
    return _parse_health(tenant, device, obj)


_fast: list = []


def _fast_batches():
    """`edge.fastparse.parse_batch` where msgspec is installed (the collector), else None."""
    if not _fast:
        try:
            from edgebatch.edge.fastparse import parse_batch
        except ImportError:
            parse_batch = None
        _fast.append(parse_batch)
    return _fast[0]


def _reject_constant(name: str) -> float:
    raise MessageRejected(f"JSON constant {name} is not allowed (no NaN or infinities)")


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageRejected(f"payload is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        # No parse_float hook (it would call Python for every number): a literal that
        # overflows to infinity is caught by the finite-number check of its field.
        obj = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise MessageRejected(f"payload is not JSON: {exc.msg} at char {exc.pos}") from None
    except ValueError as exc:  # an integer of more than 4300 digits, for one
        raise MessageRejected(f"payload is not acceptable JSON: {str(exc)[:120]}") from None
    except RecursionError:
        raise MessageRejected("payload is nested too deeply") from None
    if not isinstance(obj, dict):
        raise MessageRejected(f"payload is a JSON {type(obj).__name__}, not an object")
    return obj


def _fields(
    obj: Mapping[str, Any], required: Iterable[str], optional: Iterable[str], where: str
) -> None:
    required, optional = tuple(required), tuple(optional)
    keys = obj.keys()
    if keys == _keyset(required) or (
        optional and _keyset(required) <= keys <= _keyset(required + optional)
    ):
        return
    allowed = set(required) | set(optional)
    missing = [k for k in required if k not in obj]
    if missing:
        raise MessageRejected(f"{where}missing field(s) {', '.join(missing)}")
    extra = sorted(k for k in obj if k not in allowed)
    if extra:
        raise MessageRejected(f"{where}unknown field(s) {', '.join(map(str, extra[:5]))}")


@functools.cache
def _keyset(keys: tuple[str, ...]) -> frozenset[str]:
    return frozenset(keys)


def _num(obj: Mapping[str, Any], key: str, where: str) -> float:
    value = obj[key]
    if not _is_finite_number(value):
        raise MessageRejected(f"{where}field '{key}' must be a finite number, got {_kind(value)}")
    return float(value)


def _is_finite_number(value: Any) -> bool:
    """A JSON number a float can hold: not a bool, not NaN, not an integer beyond 1e308."""
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is int:
        return abs(value) <= 1 << 1000
    return False


def _opt_num(obj: Mapping[str, Any], key: str, where: str) -> float | None:
    return None if obj.get(key) is None else _num(obj, key, where)


def _int(obj: Mapping[str, Any], key: str, where: str, minimum: int = 0) -> int:
    value = obj[key]
    if type(value) is not int:
        raise MessageRejected(f"{where}field '{key}' must be an integer, got {_kind(value)}")
    if value < minimum:
        raise MessageRejected(f"{where}field '{key}' must be >= {minimum}, got {value}")
    return value


def _str(
    obj: Mapping[str, Any],
    key: str,
    where: str,
    pattern: re.Pattern[str] | None = None,
    choices: tuple[str, ...] = (),
    max_len: int = 200,
) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise MessageRejected(f"{where}field '{key}' must be a string, got {_kind(value)}")
    if len(value) > max_len:
        raise MessageRejected(f"{where}field '{key}' is longer than {max_len} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise MessageRejected(
            f"{where}field '{key}' {value[:80]!r} does not match {pattern.pattern}"
        )
    if choices and value not in choices:
        raise MessageRejected(f"{where}field '{key}' {value!r} is not one of {', '.join(choices)}")
    return value


# Times already read, by text: a stream repeats them (every device closes the same windows),
# and reading one costs a regex and a datetime. Bounded; emptied when full.
_SEEN_TIMES: dict[str, float] = {}
_SEEN_TIMES_MAX = 4096


def _time(obj: Mapping[str, Any], key: str, where: str) -> float:
    return epoch_of(obj[key], key, where)


def epoch_of(value: Any, key: str, where: str = "") -> float:
    """Epoch seconds of field `key`'s RFC 3339 text, or `MessageRejected` naming it."""
    if type(value) is str:
        seen = _SEEN_TIMES.get(value)
        if seen is not None:
            return seen
    try:
        epoch = parse_ts(value)
    except (ValueError, TypeError):
        raise MessageRejected(
            f"{where}field '{key}' must be an RFC 3339 UTC time, got {str(value)[:60]!r}"
        ) from None
    if len(_SEEN_TIMES) >= _SEEN_TIMES_MAX:
        _SEEN_TIMES.clear()
    _SEEN_TIMES[value] = epoch
    return epoch


def _kind(value: Any) -> str:
    if type(value) is float and math.isinf(value):
        return "a number that overflows to infinity"
    return "null" if value is None else type(value).__name__


_METRIC_REQUIRED = (
    "name",
    "count",
    "sum",
    "min",
    "max",
    "mean",
    "m2",
    "stddev",
    "p50",
    "p95",
    "p99",
    "sketch",
    "first_ts",
    "last_ts",
)


_METRIC_NUMBERS = ("sum", "min", "max", "mean", "m2", "stddev", "p50", "p95", "p99")


def _parse_batch(tenant: str, device: str, obj: dict[str, Any]) -> Batch:
    _fields(
        obj,
        (
            "v",
            "batch_id",
            "tenant",
            "device",
            "window_start",
            "window_end",
            "revision",
            "metrics",
            "agent",
        ),
        (),
        "",
    )
    batch_id = _str(obj, "batch_id", "", ID_RE)
    start = _time(obj, "window_start", "")
    end = _time(obj, "window_end", "")
    if not start < end:
        raise MessageRejected("window_start must be before window_end")
    revision = _int(obj, "revision", "")
    agent = _str(obj, "agent", "", max_len=64)
    metrics = obj["metrics"]
    if not isinstance(metrics, list) or not metrics:
        raise MessageRejected("field 'metrics' must be a non-empty list")
    if len(metrics) > MAX_METRICS:
        raise MessageRejected(
            f"field 'metrics' has {len(metrics)} entries, more than {MAX_METRICS}"
        )
    seen: set[str] = set()
    parsed = []
    for i, m in enumerate(metrics):
        summary = _parse_metric(m, f"metrics[{i}]: ", start, end)
        if summary.name in seen:
            raise MessageRejected(f"metrics[{i}]: metric {summary.name!r} appears twice")
        seen.add(summary.name)
        parsed.append(summary)
    return Batch(tenant, device, batch_id, start, end, revision, tuple(parsed), agent)


def _parse_metric(m: Any, where: str, start: float, end: float) -> MetricSummary:
    if not isinstance(m, dict):
        raise MessageRejected(f"{where}must be an object, got {_kind(m)}")
    _fields(m, _METRIC_REQUIRED, ("unit",), where)
    name = _str(m, "name", where, METRIC_RE)
    where = f"{where[:-2]} ({name}): "
    unit = m.get("unit")
    if unit is not None and (not isinstance(unit, str) or len(unit) > 32):
        raise MessageRejected(f"{where}field 'unit' must be a string of at most 32 characters")
    count = _int(m, "count", where, minimum=1)
    values = [_num(m, k, where) for k in _METRIC_NUMBERS]
    first = _time(m, "first_ts", where)
    last = _time(m, "last_ts", where)
    summary = MetricSummary(name, unit, count, *values, m["sketch"], first, last)
    checked = checked_metric(summary, where, start, end)
    _parse_sketch(summary.sketch, where, count)
    return checked


def checked_metric(s: MetricSummary, where: str, start: float, end: float) -> MetricSummary:
    """The checks on a metric's values once their types are right; both the reference
    parser and the collector's fast path (`edge.fastparse`) end here. The sketch each
    checks its own way: field by field here, while decoding there."""
    if s.min > s.max:
        raise MessageRejected(f"{where}min {s.min} is greater than max {s.max}")
    slack = 1e-9 * max(abs(s.min), abs(s.max), 1e-300)
    if not s.min - slack <= s.mean <= s.max + slack:
        raise MessageRejected(f"{where}mean {s.mean} is outside [min, max]")
    if s.m2 < 0 or s.stddev < 0:
        raise MessageRejected(f"{where}m2 and stddev must not be negative")
    if not s.p50 <= s.p95 <= s.p99:
        raise MessageRejected(f"{where}quantiles must satisfy p50 <= p95 <= p99")
    if not start <= s.first_ts <= s.last_ts <= end:
        raise MessageRejected(f"{where}first_ts/last_ts must be ordered and inside the window")
    return s


def _parse_sketch(s: Any, where: str, count: int) -> dict[str, Any]:
    where = f"{where}sketch: "
    if not isinstance(s, dict):
        raise MessageRejected(f"{where}must be an object, got {_kind(s)}")
    _fields(s, ("alpha",), ("pos", "neg", "zero"), where)
    alpha = _num(s, "alpha", where)
    if not 0 < alpha < 1:
        raise MessageRejected(f"{where}alpha must be in (0, 1), got {alpha}")
    total = _int(s, "zero", where) if "zero" in s else 0
    buckets = 0
    for side in ("pos", "neg"):
        store = s.get(side)
        if store is None:
            continue
        if not isinstance(store, dict):
            raise MessageRejected(f"{where}{side} must be an object")
        _fields(store, ("start", "counts"), (), f"{where}{side}: ")
        if type(store["start"]) is not int or abs(store["start"]) > 1 << 20:
            raise MessageRejected(f"{where}{side}.start must be an integer key")
        counts = store["counts"]
        if not isinstance(counts, list):
            raise MessageRejected(f"{where}{side}.counts must be a list")
        buckets += len(counts)
        if buckets > MAX_SKETCH_BUCKETS:
            raise MessageRejected(f"{where}more than {MAX_SKETCH_BUCKETS} buckets")
        # Whole-list checks run in C: a sketch may carry thousands of buckets.
        if counts and (set(map(type, counts)) != {int} or min(counts) < 0):
            raise MessageRejected(f"{where}{side}.counts must be non-negative integers")
        total += sum(counts)
    if total != count:
        raise MessageRejected(f"{where}bucket counts add up to {total}, not count {count}")
    return s


def _parse_alarm(tenant: str, device: str, obj: dict[str, Any]) -> Alarm:
    _fields(
        obj,
        (
            "v",
            "alarm_id",
            "tenant",
            "device",
            "rule",
            "kind",
            "state",
            "metric",
            "value",
            "threshold",
            "baseline",
            "ts",
            "severity",
            "agent",
        ),
        (),
        "",
    )
    threshold = _opt_num(obj, "threshold", "")
    baseline = obj["baseline"]
    if baseline is not None:
        if not isinstance(baseline, dict):
            raise MessageRejected("field 'baseline' must be an object or null")
        _fields(baseline, ("mean", "stddev"), ("n",), "baseline: ")
        baseline = {k: _num(baseline, k, "baseline: ") for k in baseline}
    if threshold is None and baseline is None:
        raise MessageRejected("an alarm needs a threshold or a baseline")
    return Alarm(
        tenant,
        device,
        _str(obj, "alarm_id", "", ID_RE),
        _str(obj, "rule", "", max_len=64),
        _str(obj, "kind", "", choices=ALARM_KINDS),
        _str(obj, "state", "", choices=ALARM_STATES),
        _str(obj, "metric", "", METRIC_RE),
        _num(obj, "value", ""),
        threshold,
        baseline,
        _time(obj, "ts", ""),
        _str(obj, "severity", "", choices=SEVERITIES),
        _str(obj, "agent", "", max_len=64),
    )


_HEALTH_FIGURES = (
    "uptime_s",
    "cpu_percent",
    "memory_percent",
    "disk_percent",
    "load",
    "temperature_c",
    "process",
    "outbox",
    "shed",
    "rejected",
    "last_send",
)


def _parse_health(tenant: str, device: str, obj: dict[str, Any]) -> Health:
    _fields(obj, ("v", "heartbeat_id", "tenant", "device", "ts", "agent", *_HEALTH_FIGURES), (), "")
    for key in ("uptime_s", "cpu_percent", "memory_percent", "disk_percent"):
        if _num(obj, key, "") < 0:
            raise MessageRejected(f"field '{key}' must not be negative")
    _opt_num(obj, "temperature_c", "")
    load = obj["load"]
    if not (isinstance(load, list) and len(load) == 3 and all(_is_finite_number(x) for x in load)):
        raise MessageRejected("field 'load' must be a list of three numbers")
    for key in ("process", "outbox", "shed", "rejected"):
        section = obj[key]
        if not isinstance(section, dict):
            raise MessageRejected(f"field '{key}' must be an object")
        for name, value in section.items():
            if value is not None and (not _is_finite_number(value) or value < 0):
                raise MessageRejected(f"field '{key}.{name}' must be a non-negative number")
    for name in ("backlog", "bytes"):
        if name not in obj["outbox"]:
            raise MessageRejected(f"field 'outbox' is missing '{name}'")
    for name in ("coarsened", "dropped_heartbeats", "dropped_summaries", "dropped_readings"):
        if type(obj["shed"].get(name)) is not int:
            raise MessageRejected(f"field 'shed.{name}' must be an integer count")
    if obj["last_send"] is not None:
        _time(obj, "last_send", "")
    figures = {k: obj[k] for k in _HEALTH_FIGURES}
    return Health(
        tenant,
        device,
        _str(obj, "heartbeat_id", "", ID_RE),
        _time(obj, "ts", ""),
        _str(obj, "agent", "", max_len=64),
        figures,
    )


def _parse_receipt(tenant: str, device: str, obj: dict[str, Any]) -> Receipt:
    _fields(obj, ("v", "ids", "landed_at"), (), "")
    ids = obj["ids"]
    if not isinstance(ids, list) or len(ids) > MAX_RECEIPT_IDS:
        raise MessageRejected(f"field 'ids' must be a list of at most {MAX_RECEIPT_IDS} ids")
    for i, x in enumerate(ids):
        if not isinstance(x, str) or not ID_RE.fullmatch(x):
            raise MessageRejected(f"ids[{i}] is not a 32-hex-digit id")
    return Receipt(tenant, device, tuple(ids), _time(obj, "landed_at", ""))
