"""What the warehouse adds to the wire format's checks: values bronze can store, times as
the parser read them.

The shared parser accepts any JSON integer for a count; bronze stores counts as BIGINT
and revisions as INT, and a message that passed the parser but that Spark cannot
read would fail every later load (Spark 4 runs in ANSI mode). So such values are
refused here, into quarantine. The times land normalized (epoch seconds, as the
parser understood them) beside the raw payload, so the load never parses time text.
"""

from __future__ import annotations

from operator import attrgetter

from edgebatch.edge.wire import Alarm, Batch, Health, MessageRejected
from edgebatch.warehouse.landing.lines import (
    METRIC_TIMES,
    NORM_LAST_SEND,
    NORM_METRICS,
    NORM_TS,
    NORM_WE,
    NORM_WS,
)

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
    """The message's times in epoch seconds, for the load to use instead of re-parsing text.

    Built by hand, not with json.dumps: this runs for every message on the hot path, and
    a finite float's repr is valid JSON."""
    if isinstance(message, Batch):
        pairs = ",".join([_TIMES % _metric_times(m) for m in message.metrics])
        text = (
            f'{{"{NORM_WS}":{message.window_start!r},"{NORM_WE}":{message.window_end!r},'
            f'"{NORM_METRICS}":[{pairs}]}}'
        )
    elif isinstance(message, Alarm):
        text = f'{{"{NORM_TS}":{message.event.ts!r}}}'
    else:
        last = message.figures.get("last_send")
        ls = repr(_epoch(last)) if last is not None else "null"
        text = f'{{"{NORM_TS}":{message.ts!r},"{NORM_LAST_SEND}":{ls}}}'
    return text.encode()


# A metric's times in `METRIC_TIMES` order, as a JSON list of epoch seconds.
_metric_times = attrgetter(*METRIC_TIMES)
_TIMES = "[" + ",".join(["%r"] * len(METRIC_TIMES)) + "]"


def _epoch(text: str) -> float:
    from edgebatch.edge.wire import parse_ts

    return parse_ts(text)
