"""What one message becomes in a landing file: pure functions, no MQTT and no disk.

An accepted message is landed as the device sent it, inside a small envelope (its fields
declared in `landing.lines`):

    {"received_at":"2026-11-23T10:00:00.123Z","topic":"edgebatch/t/d/batch",
     "norm":{"ws":1795000000.0,...},"payload":{...}}

The payload bytes are copied, not re-encoded: the parser has just proven them a JSON
object, so the collector spends nothing on serialization and the landing file keeps
exactly what the device said. A refused message keeps its raw bytes (base64), its
topic and the parser's reason, so nothing is ever dropped silently.
"""

from __future__ import annotations

import base64
import hashlib
import json

from edgebatch.edge.wire import format_ts
from edgebatch.warehouse.landing.lines import NORM, PAYLOAD, QUARANTINE_NAMES, RECEIVED_AT, TOPIC

# Refused payloads are kept whole up to this size; beyond it, the head, the size and a digest.
QUARANTINE_KEEP_BYTES = 1 << 20


def envelope(topic: str, payload: bytes, received_at: float, norm: bytes = b"null") -> bytes:
    """One landing line for an accepted message (its topic is already validated); `norm`
    holds the times as the parser read them (see `limits.normalized_times`)."""
    if b"\n" in payload or b"\r" in payload:
        # Valid JSON may carry line breaks between tokens; a landing line may not.
        payload = json.dumps(json.loads(payload), separators=(",", ":")).encode()
    head = f'{{"{RECEIVED_AT}":"{_stamp(received_at)}","{TOPIC}":"{topic}","{NORM}":'
    return head.encode() + norm + _PAYLOAD_KEY + payload + b"}\n"


_PAYLOAD_KEY = f',"{PAYLOAD}":'.encode()


_last_stamp: list = [None, ""]


def _stamp(now: float) -> str:
    """`format_ts(now)`, reusing the previous message's text within the same millisecond."""
    ms = int(now * 1000)
    if _last_stamp[0] != ms:
        _last_stamp[0], _last_stamp[1] = ms, format_ts(now)
    return _last_stamp[1]


def quarantine_id(topic: str, payload: bytes) -> str:
    """The same refused bytes on the same topic are one quarantine row, however often resent."""
    digest = hashlib.sha256(topic.encode("utf-8", "replace"))
    digest.update(b"\x00")
    digest.update(payload)
    return digest.hexdigest()[:32]


def quarantine_line(
    topic: str, payload: bytes, reason: str, received_at: float, collector: str
) -> bytes:
    """One landing line for a refused message: topic, raw payload, reason, when and by whom."""
    kept = payload[:QUARANTINE_KEEP_BYTES]
    if len(kept) < len(payload):
        reason = (
            f"{reason} (payload of {len(payload)} bytes kept to its first {len(kept)}; "
            f"sha256 {hashlib.sha256(payload).hexdigest()})"
        )
    values = (
        quarantine_id(topic, payload),
        topic,
        base64.b64encode(kept).decode(),
        len(payload),
        reason,
        format_ts(received_at),
        collector,
    )
    record = dict(zip(QUARANTINE_NAMES, values, strict=True))
    return json.dumps(record, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"
