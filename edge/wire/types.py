"""The typed messages, and the metric summary and alarm declared once for every part.

`MetricSummary` and `AlarmEvent` are the one declaration of what a batch's metric and an
alarm carry: the reference parser takes its field lists from them (`METRIC_FIELDS`, ...),
the collector's msgspec fast path builds its decoder from them, the agent builds alarms
as `AlarmEvent`s, and the warehouse derives its landing schema from them. A field added
here is a field every one of them sees.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Annotated, Any, Literal, NamedTuple

WIRE_TIME = "rfc3339"
Time = Annotated[float, WIRE_TIME]
"""Epoch seconds in Python; RFC 3339 UTC text on the wire."""


@dataclasses.dataclass(frozen=True)
class MetricSummary:
    """One metric's window state: exact count, sum, min and max, `m2` (the sum of squared
    deviations from the mean) for variance, and the sketch (see `edgebatch.edge.sketch`)
    for quantiles: all mergeable across windows. `mean`, `stddev` and the quantiles are
    derived, carried for readers that do not merge."""

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
    first_ts: Time
    last_ts: Time


@dataclasses.dataclass(frozen=True)
class AlarmEvent:
    """An alarm as its rule decided it: all a wire alarm says beyond who sent it.
    `kind` is the rule's kind (threshold, rate, zscore); a zscore alarm's `baseline` holds
    the rolling `mean`, `stddev` and `n` it was measured against."""

    rule: str
    kind: str
    state: Literal["raised", "cleared"]
    metric: str
    value: float
    threshold: float | None
    baseline: dict[str, float] | None
    ts: Time
    severity: str


class BatchWindow(NamedTuple):
    """One window a coarsened batch merges: its span and revision, which give its id."""

    start: float
    end: float
    revision: int


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
    members: tuple[BatchWindow, ...] = ()
    """The windows a coarsened batch merges, in order; empty for a plain window."""
    kind: Literal["batch"] = "batch"


@dataclasses.dataclass(frozen=True)
class Alarm:
    tenant: str
    device: str
    alarm_id: str
    event: AlarmEvent
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


# ---------------------------------------------------------------- field lists, derived


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _is_time(hint: Any) -> bool:
    return typing.get_origin(hint) is Annotated and WIRE_TIME in typing.get_args(hint)[1:]


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint) and not _is_time(hint)


_METRIC_HINTS = _hints(MetricSummary)
METRIC_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(MetricSummary))
"""A metric's fields, in the order `MetricSummary` takes them."""
METRIC_OPTIONAL: tuple[str, ...] = tuple(k for k in METRIC_FIELDS if _optional(_METRIC_HINTS[k]))
METRIC_REQUIRED: tuple[str, ...] = tuple(k for k in METRIC_FIELDS if k not in METRIC_OPTIONAL)
METRIC_TIMES: tuple[str, ...] = tuple(k for k in METRIC_FIELDS if _is_time(_METRIC_HINTS[k]))
METRIC_NUMBERS: tuple[str, ...] = tuple(k for k in METRIC_FIELDS if _METRIC_HINTS[k] is float)
"""The finite numbers that need no more than that to be read (the count is an integer)."""

_ALARM_HINTS = _hints(AlarmEvent)
ALARM_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(AlarmEvent))
ALARM_TIMES: tuple[str, ...] = tuple(k for k in ALARM_FIELDS if _is_time(_ALARM_HINTS[k]))


def wire_hint(cls: type, field: str) -> Any:
    """The declared type of `field` of `MetricSummary` or `AlarmEvent` (times as `Time`)."""
    return _hints(cls)[field]
