"""The landing line: what one line of a landing file holds, declared once for the collector
that writes it (`collector.records`, `collector.limits`), the key scan that reads a few
of its fields (`landing.keyscan`) and the bronze load that reads it with Spark
(`jobs.bronze_load`). docs/landing-format.md describes it for people.

An accepted message lands as the device sent it, inside an envelope:

    {"received_at": "2026-11-23T10:00:00.123Z", "topic": "edgebatch/t/d/batch",
     "norm": {"ws": 1795000000.0, ...}, "payload": {...}}

`norm` holds the message's times as the parser read them, in epoch seconds, so no reader
parses time text again: per kind, `NORM_FIELDS`. A refused message lands as a
quarantine record, `QUARANTINE_FIELDS`. The Spark schemas the load reads the lines with
(`BATCH_LINE`, ...) are derived here, the payload's from the wire format's own
declarations (`wire.MetricSummary`, `wire.AlarmEvent`), so a field added to the wire
is a field the load reads.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from edgebatch.edge.wire import (
    ALARM_FIELDS,
    METRIC_FIELDS,
    METRIC_REQUIRED,
    METRIC_TIMES,
    AlarmEvent,
    MetricSummary,
)
from edgebatch.edge.wire.parse import BASELINE_FIELDS
from edgebatch.edge.wire.types import ALARM_TIMES, wire_hint

RECEIVED_AT, TOPIC, NORM, PAYLOAD = "received_at", "topic", "norm", "payload"
ENVELOPE = (RECEIVED_AT, TOPIC, NORM, PAYLOAD)
"""An accepted message's line, in the order its fields are written."""

NORM_WS, NORM_WE, NORM_METRICS = "ws", "we", "m"
NORM_TS, NORM_LAST_SEND = "ts", "ls"
NORM_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    # window start and end; per metric, in payload order, its times in `METRIC_TIMES` order
    "batch": ((NORM_WS, "DOUBLE"), (NORM_WE, "DOUBLE"), (NORM_METRICS, "ARRAY<ARRAY<DOUBLE>>")),
    # the alarm's time
    "alarm": ((NORM_TS, "DOUBLE"),),
    # the heartbeat's time and its `last_send` (null before the first send)
    "health": ((NORM_TS, "DOUBLE"), (NORM_LAST_SEND, "DOUBLE")),
}
QUARANTINE_FIELDS: tuple[tuple[str, str], ...] = (
    ("quarantine_id", "STRING"),
    ("topic", "STRING"),
    ("payload_b64", "STRING"),
    ("payload_size", "BIGINT"),
    ("reason", "STRING"),
    ("received_at", "STRING"),
    ("collector", "STRING"),
)
"""A refused message's line, in the order its fields are written."""
QUARANTINE_NAMES = tuple(name for name, _ in QUARANTINE_FIELDS)

__all__ = [
    "ALARM_LINE",
    "BATCH_LINE",
    "ENVELOPE",
    "HEALTH_LINE",
    "LINE_SCHEMAS",
    "METRIC_TIMES",
    "NORM",
    "NORM_LAST_SEND",
    "NORM_METRICS",
    "NORM_TS",
    "NORM_WE",
    "NORM_WS",
    "PAYLOAD",
    "RECEIVED_AT",
    "TOPIC",
    "METRIC_VALUES",
    "NORM_FIELDS",
    "QUARANTINE_FIELDS",
    "QUARANTINE_NAMES",
    "QUARANTINE_LINE",
    "bronze_metric_columns",
    "spark_type",
]

METRIC_VALUES: tuple[str, ...] = tuple(
    k for k in METRIC_FIELDS if k != "name" and k not in METRIC_TIMES
)
"""A metric's fields bronze keeps as they came (its name is the key column `metric`, and its
times come from `norm`, as TIMESTAMPs)."""


def _python_type(hint: Any) -> Any:
    """The plain type under `Annotated`, `Literal` and `X | None`."""
    if typing.get_origin(hint) is typing.Annotated:
        return _python_type(typing.get_args(hint)[0])
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return type(typing.get_args(hint)[0])
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _python_type(inner)
    return origin or hint


_SPARK_TYPES: dict[Any, str] = {str: "STRING", int: "BIGINT", float: "DOUBLE", dict: "STRING"}


def spark_type(cls: type, field: str) -> str:
    """The Spark type a wire field is read as (an object such as the sketch as its JSON
    text; an alarm's baseline as the struct of its numbers)."""
    if cls is AlarmEvent and field == "baseline":
        return f"STRUCT<{', '.join(f'{k} DOUBLE' for k in BASELINE_FIELDS)}>"
    kind = _python_type(wire_hint(cls, field))
    try:
        return _SPARK_TYPES[kind]
    except KeyError:
        raise TypeError(f"no Spark type for wire field {field!r} of type {kind!r}") from None


def bronze_metric_columns() -> str:
    """The metric's columns of `bronze/edge_batches`, as DDL: `METRIC_VALUES`, then the
    times. A required integer (the count) is NOT NULL."""
    columns = []
    for k in METRIC_VALUES:
        kind = spark_type(MetricSummary, k)
        strict = kind == "BIGINT" and k in METRIC_REQUIRED
        columns.append(f"{k} {kind}{' NOT NULL' if strict else ''}")
    columns += [f"{k} TIMESTAMP" for k in METRIC_TIMES]
    return ", ".join(columns)


def _struct(fields: tuple[tuple[str, str], ...]) -> str:
    return f"STRUCT<{', '.join(f'{name} {kind}' for name, kind in fields)}>"


_METRIC_STRUCT = _struct(tuple((k, spark_type(MetricSummary, k)) for k in ("name", *METRIC_VALUES)))
_ENVELOPE = f"{RECEIVED_AT} STRING, {TOPIC} STRING"

BATCH_LINE = (
    f"{_ENVELOPE}, {NORM} {_struct(NORM_FIELDS['batch'])}, "
    f"{PAYLOAD} STRUCT<batch_id STRING, revision INT, agent STRING, "
    f"metrics ARRAY<{_METRIC_STRUCT}>>"
)
"""A batch line as the load reads it: the payload's fields bronze keeps (a revision is an
INT, as the collector checked)."""
ALARM_LINE = f"{_ENVELOPE}, {NORM} {_struct(NORM_FIELDS['alarm'])}, {PAYLOAD} " + _struct(
    (
        ("alarm_id", "STRING"),
        *((k, spark_type(AlarmEvent, k)) for k in ALARM_FIELDS if k not in ALARM_TIMES),
        ("agent", "STRING"),
    )
)
HEALTH_LINE = f"{_ENVELOPE}, {NORM} {_struct(NORM_FIELDS['health'])}, {PAYLOAD} STRING"
"""A health line, its payload kept as JSON text (bronze keeps it whole, and reads figures
from it)."""
QUARANTINE_LINE = ", ".join(f"{name} {kind}" for name, kind in QUARANTINE_FIELDS)

LINE_SCHEMAS = {
    "batch": BATCH_LINE,
    "alarm": ALARM_LINE,
    "health": HEALTH_LINE,
    "quarantine": QUARANTINE_LINE,
}
