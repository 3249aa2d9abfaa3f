"""What the warehouse adds to the wire format's checks: values bronze can store, times as
the parser read them.

The shared parser accepts any JSON integer for a count and any ISO 8601 time Python
reads (`20261123T100000Z` too). Bronze stores counts as BIGINT and revisions as INT,
and Spark reads only the extended time form; a message that passed the parser but
that Spark cannot read would fail every later load. So such values are refused
here, into quarantine, and the times land normalized (epoch seconds, as the parser
understood them) beside the raw payload.
"""

from __future__ import annotations

import json

from edgebatch.edge.messages import Alarm, Batch, Health, MessageRejected

MAX_BIGINT = (1 << 63) - 1
MAX_INT = (1 << 31) - 1


def check_storable(message: Batch | Alarm | Health) -> None:
    """Raise `MessageRejected` for a value bronze's column types cannot hold."""
    if isinstance(message, Batch):
        if message.revision > MAX_INT:
            raise MessageRejected(f"field 'revision' {message.revision} exceeds {MAX_INT}")
        for m in message.metrics:
            if m.count > MAX_BIGINT:
                raise MessageRejected(f"metric {m.name!r}: count {m.count} exceeds {MAX_BIGINT}")
    elif isinstance(message, Health):
        for section in ("outbox", "shed"):
            for name, value in message.figures[section].items():
                if value is not None and value > MAX_BIGINT:
                    raise MessageRejected(f"field '{section}.{name}' {value} exceeds {MAX_BIGINT}")


def normalized_times(message: Batch | Alarm | Health) -> bytes:
    """The message's times in epoch seconds, for the load to use instead of re-parsing text."""
    if isinstance(message, Batch):
        norm: dict[str, object] = {
            "ws": message.window_start,
            "we": message.window_end,
            "m": [[m.first_ts, m.last_ts] for m in message.metrics],
        }
    elif isinstance(message, Alarm):
        norm = {"ts": message.ts}
    else:
        last = message.figures.get("last_send")
        norm = {"ts": message.ts, "ls": _epoch(last) if last is not None else None}
    return json.dumps(norm, separators=(",", ":")).encode()


def _epoch(text: str) -> float:
    from edgebatch.edge.messages import parse_ts

    return parse_ts(text)
