"""One received message in, one landing line out: the collector's per-message work.

Pure (no MQTT, no disk), so it runs the same in the collector's own thread and in
its validation worker processes (`workers.py`), and its result says everything the
network side needs: which landing kind, the line, and the receipt the message earns.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from edgebatch.edge.wire import Alarm, Batch, Health, MessageRejected
from edgebatch.warehouse.collector.limits import check_storable, normalized_times
from edgebatch.warehouse.collector.parsing import parse_message
from edgebatch.warehouse.collector.records import envelope, quarantine_line

log = logging.getLogger(__name__)


class Checked(NamedTuple):
    """`kind` is the landing kind ("quarantine" for a refused message); `receipt` is
    (tenant, device, id) for messages the agent waits to hear about, else None."""

    kind: str
    line: bytes
    receipt: tuple[str, str, str] | None


def check(topic: str, payload: bytes, received_at: float, collector: str) -> Checked:
    """Validate one message; a refused one becomes a quarantine line with its reason."""
    try:
        parsed = parse_message(topic, payload)
        if isinstance(parsed, Batch):
            receipt: tuple[str, str, str] | None = (parsed.tenant, parsed.device, parsed.batch_id)
        elif isinstance(parsed, Alarm):
            receipt = (parsed.tenant, parsed.device, parsed.alarm_id)
        elif isinstance(parsed, Health):
            receipt = None
        else:
            raise MessageRejected(f"a {parsed.kind} message is not collected on {topic!r}")
        check_storable(parsed)
        line = envelope(topic, payload, received_at, normalized_times(parsed))
        return Checked(parsed.kind, line, receipt)
    except MessageRejected as exc:
        reason = exc.reason
    except Exception as exc:  # a bug here must cost one message's landing path, not the service
        log.exception("unexpected failure on a message from %r", topic)
        reason = f"collector error: {exc!r}"[:500]
    return Checked(
        "quarantine", quarantine_line(topic, payload, reason, received_at, collector), None
    )


class CheckedChunk(NamedTuple):
    """A chunk's results as the network thread takes them: per landing kind the lines
    already joined, the receipts in arrival order, and how many messages were refused.
    Built in the worker, so the network thread handles a chunk, not each message."""

    lines: dict[str, bytes]
    counts: dict[str, int]
    receipts: list[tuple[str, str, str]]
    quarantined: int


def check_chunk(messages: list[tuple[str, bytes, float]], collector: str) -> CheckedChunk:
    lines: dict[str, list[bytes]] = {}
    receipts = []
    for topic, payload, at in messages:
        checked = check(topic, payload, at, collector)
        lines.setdefault(checked.kind, []).append(checked.line)
        if checked.receipt is not None:
            receipts.append(checked.receipt)
    return CheckedChunk(
        {kind: b"".join(kind_lines) for kind, kind_lines in lines.items()},
        {kind: len(kind_lines) for kind, kind_lines in lines.items()},
        receipts,
        len(lines.get("quarantine", ())),
    )
