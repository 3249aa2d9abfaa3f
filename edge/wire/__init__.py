"""The wire format, version 1: what an edge agent and a collector say to each other.

One package, one concern per module: `topics` (where a message goes), `ids` (what it is
called, and why a resend is a duplicate), `types` (the typed messages, and the metric
summary and alarm declared once), `encode` (the agent's side), `parse` (the reference
parser the collector and the agent share), `times` (RFC 3339 UTC), `limits` (patterns
and bounds) and `summary` (a metric's window state to its wire dict and back).
docs/wire-format.md describes the format in full.
"""

from edgebatch.edge.wire.encode import (
    dumps,
    encode_alarm,
    encode_batch,
    encode_health,
    encode_receipt,
)
from edgebatch.edge.wire.errors import MessageRejected
from edgebatch.edge.wire.ids import (
    alarm_id_for,
    batch_id_for,
    coarse_batch_id_for,
    heartbeat_id_for,
)
from edgebatch.edge.wire.limits import (
    ALARM_KINDS,
    ALARM_STATES,
    ID_RE,
    MAX_MEMBERS,
    MAX_METRICS,
    MAX_PAYLOAD_BYTES,
    MAX_RECEIPT_IDS,
    MAX_SKETCH_BUCKETS,
    METRIC_RE,
    NAME_RE,
    SEVERITIES,
    VERSION,
)
from edgebatch.edge.wire.parse import (
    check_batch_id,
    checked_metric,
    expected_batch_id,
    parse_message,
)
from edgebatch.edge.wire.times import epoch_of, format_ts, parse_ts
from edgebatch.edge.wire.topics import KINDS, TOPIC_ROOT, parse_topic, topic
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
    Time,
)

__all__ = [
    "ALARM_FIELDS",
    "ALARM_KINDS",
    "ALARM_STATES",
    "ID_RE",
    "KINDS",
    "MAX_MEMBERS",
    "MAX_METRICS",
    "MAX_PAYLOAD_BYTES",
    "MAX_RECEIPT_IDS",
    "MAX_SKETCH_BUCKETS",
    "METRIC_FIELDS",
    "METRIC_NUMBERS",
    "METRIC_OPTIONAL",
    "METRIC_RE",
    "METRIC_REQUIRED",
    "METRIC_TIMES",
    "NAME_RE",
    "SEVERITIES",
    "TOPIC_ROOT",
    "VERSION",
    "Alarm",
    "AlarmEvent",
    "Batch",
    "BatchWindow",
    "Health",
    "Message",
    "MessageRejected",
    "MetricSummary",
    "Receipt",
    "Status",
    "Time",
    "alarm_id_for",
    "batch_id_for",
    "check_batch_id",
    "checked_metric",
    "coarse_batch_id_for",
    "dumps",
    "encode_alarm",
    "encode_batch",
    "encode_health",
    "encode_receipt",
    "epoch_of",
    "expected_batch_id",
    "format_ts",
    "heartbeat_id_for",
    "parse_message",
    "parse_topic",
    "parse_ts",
    "topic",
]
