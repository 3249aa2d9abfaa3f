"""The reference parser: the strict, complete reading of wire format v1.

`parse_message(topic, payload)` returns a typed message or raises `MessageRejected`
whose `reason` says what was wrong and where (the field path). It defines the format:
the collector's faster path for batches (`edgebatch.warehouse.collector.fastparse`)
may refuse more, never less, and hands what it refuses to this parser for the reason.
Both end in `checked_metric` and `check_batch_id`.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from edgebatch.edge.wire.errors import MessageRejected
from edgebatch.edge.wire.ids import batch_id_for, coarse_batch_id_for
from edgebatch.edge.wire.limits import (
    ALARM_KINDS,
    ALARM_STATES,
    ID_RE,
    MAX_AGENT_LEN,
    MAX_MEMBERS,
    MAX_METRICS,
    MAX_PAYLOAD_BYTES,
    MAX_RECEIPT_IDS,
    MAX_SKETCH_BUCKETS,
    MAX_UNIT_LEN,
    METRIC_RE,
    SEVERITIES,
    VERSION,
)
from edgebatch.edge.wire.times import epoch_of
from edgebatch.edge.wire.topics import parse_topic
from edgebatch.edge.wire.types import (
    ALARM_FIELDS,
    METRIC_FIELDS,
    METRIC_NUMBERS,
    METRIC_OPTIONAL,
    METRIC_REQUIRED,
    METRIC_TIMES,
    Alarm,
    AlarmEvent,
    Batch,
    BatchWindow,
    Health,
    Message,
    MetricSummary,
    Receipt,
    Status,
)

BATCH_FIELDS = (
    "v",
    "batch_id",
    "tenant",
    "device",
    "window_start",
    "window_end",
    "revision",
    "metrics",
    "agent",
)
BATCH_OPTIONAL = ("members",)
MEMBER_FIELDS = ("window_start", "window_end", "revision")
BASELINE_REQUIRED = ("mean", "stddev")
BASELINE_OPTIONAL = ("n",)
BASELINE_FIELDS = BASELINE_REQUIRED + BASELINE_OPTIONAL
"""A zscore alarm's baseline: the rolling mean and standard deviation, and how many
readings they stand for."""
ALARM_MESSAGE_FIELDS = ("v", "alarm_id", "tenant", "device", *ALARM_FIELDS, "agent")
HEALTH_FIGURES = (
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

# The metric fields this parser reads by name, beside the numbers and times it reads by kind.
_METRIC_BY_NAME = ("name", "unit", "count", "sketch")
if set(METRIC_FIELDS) != {*_METRIC_BY_NAME, *METRIC_NUMBERS, *METRIC_TIMES}:
    raise TypeError(f"the reference parser does not read every metric field {METRIC_FIELDS}")


def parse_message(topic_: str, payload: bytes) -> Message:
    """Check a message against wire format v1 and return it typed, or raise `MessageRejected`."""
    tenant, device, kind = parse_topic(topic_)
    check_size(payload)
    if kind == "status":
        if payload == b"online":
            return Status(tenant, device, True)
        if payload == b"offline":
            return Status(tenant, device, False)
        raise MessageRejected(f"status payload {bytes(payload[:40])!r} is not online/offline")
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


def check_size(payload: object) -> None:
    """Bytes, and no more than `MAX_PAYLOAD_BYTES` of them."""
    if not isinstance(payload, bytes | bytearray):
        raise MessageRejected(f"payload is {type(payload).__name__}, not bytes")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MessageRejected(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")


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
        raise MessageRejected(f"payload is not JSON: {json_error(exc)}") from None
    except ValueError as exc:  # an integer of more than 4300 digits, for one
        raise MessageRejected(f"payload is not acceptable JSON: {str(exc)[:120]}") from None
    except RecursionError:
        raise MessageRejected("payload is nested too deeply") from None
    if not isinstance(obj, dict):
        raise MessageRejected(f"payload is a JSON {type(obj).__name__}, not an object")
    return obj


def json_error(exc: json.JSONDecodeError) -> str:
    """What is wrong and where, in one phrase: some of json's messages end in "at" already
    ("Unterminated string starting at"), and must not read "at at"."""
    return f"{exc.msg.removesuffix(' at')} at char {exc.pos}"


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


def _time(obj: Mapping[str, Any], key: str, where: str) -> float:
    return epoch_of(obj[key], key, where)


def _kind(value: Any) -> str:
    if type(value) is float and math.isinf(value):
        return "a number that overflows to infinity"
    return "null" if value is None else type(value).__name__


# ---------------------------------------------------------------- batches


def _parse_batch(tenant: str, device: str, obj: dict[str, Any]) -> Batch:
    _fields(obj, BATCH_FIELDS, BATCH_OPTIONAL, "")
    batch_id = _str(obj, "batch_id", "", ID_RE)
    start = _time(obj, "window_start", "")
    end = _time(obj, "window_end", "")
    if not start < end:
        raise MessageRejected("window_start must be before window_end")
    revision = _int(obj, "revision", "")
    agent = _str(obj, "agent", "", max_len=MAX_AGENT_LEN)
    members = _parse_members(obj["members"]) if "members" in obj else ()
    check_batch_id(tenant, device, batch_id, start, end, revision, members)
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
    return Batch(tenant, device, batch_id, start, end, revision, tuple(parsed), agent, members)


def _parse_members(members: Any) -> tuple[BatchWindow, ...]:
    if not isinstance(members, list) or not 2 <= len(members) <= MAX_MEMBERS:
        raise MessageRejected(f"field 'members' must be a list of 2 to {MAX_MEMBERS} windows")
    out = []
    for i, m in enumerate(members):
        where = f"members[{i}]: "
        if not isinstance(m, dict):
            raise MessageRejected(f"{where}must be an object, got {_kind(m)}")
        _fields(m, MEMBER_FIELDS, (), where)
        out.append(
            BatchWindow(
                _time(m, "window_start", where),
                _time(m, "window_end", where),
                _int(m, "revision", where),
            )
        )
    return tuple(out)


def expected_batch_id(
    tenant: str,
    device: str,
    start: float,
    end: float,
    revision: int,
    members: Sequence[BatchWindow] = (),
) -> str:
    """The id a batch's content gives it: see `encode_batch`."""
    if not members:
        return batch_id_for(tenant, device, start, end, revision)
    ids = (batch_id_for(tenant, device, *m) for m in members)
    return coarse_batch_id_for(tenant, device, start, end, ids)


def check_batch_id(
    tenant: str,
    device: str,
    batch_id: str,
    start: float,
    end: float,
    revision: int,
    members: Sequence[BatchWindow] = (),
) -> None:
    """Refuse a batch whose id is not the one its content gives: bronze keeps one row per
    id, so a second id for the same window would count its readings twice. A coarsened
    batch's members must tile its span, in order, and it has revision 0."""
    if members:
        if revision != 0:
            raise MessageRejected(
                f"a coarsened batch (with 'members') has revision 0, not {revision}"
            )
        at = start
        for i, m in enumerate(members):
            if m.start != at or not m.start < m.end:
                raise MessageRejected(
                    f"members[{i}]: the members must tile window_start to window_end in order"
                )
            at = m.end
        if at != end:
            raise MessageRejected("members: the last member must end at window_end")
    expected = expected_batch_id(tenant, device, start, end, revision, members)
    if batch_id != expected:
        what = "span and members" if members else "device, window and revision"
        raise MessageRejected(
            f"field 'batch_id' {batch_id!r} is not the id of this {what} ({expected!r}); "
            "a coarsened batch must list its 'members'"
        )


def _parse_metric(m: Any, where: str, start: float, end: float) -> MetricSummary:
    if not isinstance(m, dict):
        raise MessageRejected(f"{where}must be an object, got {_kind(m)}")
    _fields(m, METRIC_REQUIRED, METRIC_OPTIONAL, where)
    name = _str(m, "name", where, METRIC_RE)
    where = f"{where[:-2]} ({name}): "
    unit = m.get("unit")
    if unit is not None and (not isinstance(unit, str) or len(unit) > MAX_UNIT_LEN):
        raise MessageRejected(
            f"{where}field 'unit' must be a string of at most {MAX_UNIT_LEN} characters"
        )
    count = _int(m, "count", where, minimum=1)
    numbers = {k: _num(m, k, where) for k in METRIC_NUMBERS}
    times = {k: _time(m, k, where) for k in METRIC_TIMES}
    summary = MetricSummary(
        name=name, unit=unit, count=count, sketch=m["sketch"], **numbers, **times
    )
    checked = checked_metric(summary, where, start, end)
    _parse_sketch(summary.sketch, where, count)
    return checked


def checked_metric(s: MetricSummary, where: str, start: float, end: float) -> MetricSummary:
    """The checks on a metric's values once their types are right; both the reference
    parser and the collector's fast path end here. The sketch each checks its own way:
    field by field here, while decoding there."""
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


# ---------------------------------------------------------------- alarms, health, receipts


def _parse_alarm(tenant: str, device: str, obj: dict[str, Any]) -> Alarm:
    _fields(obj, ALARM_MESSAGE_FIELDS, (), "")
    threshold = _opt_num(obj, "threshold", "")
    baseline = obj["baseline"]
    if baseline is not None:
        if not isinstance(baseline, dict):
            raise MessageRejected("field 'baseline' must be an object or null")
        _fields(baseline, BASELINE_REQUIRED, BASELINE_OPTIONAL, "baseline: ")
        baseline = {k: _num(baseline, k, "baseline: ") for k in baseline}
    if threshold is None and baseline is None:
        raise MessageRejected("an alarm needs a threshold or a baseline")
    event = AlarmEvent(
        rule=_str(obj, "rule", "", max_len=64),
        kind=_str(obj, "kind", "", choices=ALARM_KINDS),
        state=_str(obj, "state", "", choices=ALARM_STATES),  # type: ignore[arg-type]
        metric=_str(obj, "metric", "", METRIC_RE),
        value=_num(obj, "value", ""),
        threshold=threshold,
        baseline=baseline,
        ts=_time(obj, "ts", ""),
        severity=_str(obj, "severity", "", choices=SEVERITIES),
    )
    return Alarm(
        tenant,
        device,
        _str(obj, "alarm_id", "", ID_RE),
        event,
        _str(obj, "agent", "", max_len=MAX_AGENT_LEN),
    )


def _parse_health(tenant: str, device: str, obj: dict[str, Any]) -> Health:
    _fields(obj, ("v", "heartbeat_id", "tenant", "device", "ts", "agent", *HEALTH_FIGURES), (), "")
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
    figures = {k: obj[k] for k in HEALTH_FIGURES}
    return Health(
        tenant,
        device,
        _str(obj, "heartbeat_id", "", ID_RE),
        _time(obj, "ts", ""),
        _str(obj, "agent", "", max_len=MAX_AGENT_LEN),
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
