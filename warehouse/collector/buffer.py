"""What the collector holds between receiving and landing, and when it must land it.

Pure bookkeeping: lines per landing kind, the MQTT acknowledgements they owe and the
receipts they will earn. `due` decides when to flush and says why (count, bytes,
age), so the decision can be logged and tested without a broker.
"""

from __future__ import annotations

import builtins
import dataclasses


@dataclasses.dataclass(frozen=True)
class FlushPolicy:
    """Land by count, by size or by age of the oldest held message, whichever comes first;
    and at the end of a burst: `idle_min_messages` or more held and nothing new for
    `idle_s`. (A trickle never reaches that many, so it still lands by age, in files
    of a second's worth, not a file per message.)

    `max_messages` must stay below the Receive Maximum the collector asks of the broker,
    or the broker would stop sending before the count is reached (age still flushes).
    """

    max_messages: int = 5000
    max_bytes: int = 8 << 20
    max_age_s: float = 1.0
    idle_s: float = 0.1
    idle_min_messages: int = 500


@dataclasses.dataclass
class Held:
    """Messages received and not yet landed, and what landing them releases."""

    lines: dict[str, list[bytes]] = dataclasses.field(default_factory=dict)
    acks: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    receipts: dict[tuple[str, str], list[str]] = dataclasses.field(default_factory=dict)
    messages: int = 0
    bytes: int = 0
    first_at: float | None = None
    last_at: float = 0.0

    def add(
        self,
        kind: str,
        line: builtins.bytes,
        now: float,
        ack: tuple[int, int] | None = None,
        receipt: tuple[str, str, str] | None = None,
    ) -> None:
        self.lines.setdefault(kind, []).append(line)
        if ack is not None:
            self.acks.append(ack)
        if receipt is not None:
            tenant, device, message_id = receipt
            self.receipts.setdefault((tenant, device), []).append(message_id)
        self.messages += 1
        self.bytes += len(line)
        self.last_at = now
        if self.first_at is None:
            self.first_at = now

    def add_chunk(
        self,
        lines: dict[str, builtins.bytes],
        counts: dict[str, int],
        now: float,
        acks: list[tuple[int, int] | None],
        receipts: list[tuple[str, str, str]],
    ) -> None:
        """A validated chunk at once: lines joined per kind, acks and receipts in order."""
        for kind, blob in lines.items():
            self.lines.setdefault(kind, []).append(blob)
            self.bytes += len(blob)
        self.acks.extend(ack for ack in acks if ack is not None)
        for tenant, device, message_id in receipts:
            self.receipts.setdefault((tenant, device), []).append(message_id)
        self.messages += sum(counts.values())
        self.last_at = now
        if self.first_at is None:
            self.first_at = now

    def due(self, policy: FlushPolicy, now: float) -> str | None:
        """Why these messages must land now, or None while they may wait."""
        if not self.messages:
            return None
        if self.messages >= policy.max_messages:
            return "count"
        if self.bytes >= policy.max_bytes:
            return "bytes"
        if self.first_at is not None and now - self.first_at >= policy.max_age_s:
            return "age"
        if self.messages >= policy.idle_min_messages and now - self.last_at >= policy.idle_s:
            return "idle"
        return None

    def forget_acks(self) -> None:
        """After a disconnect the broker resends every unacknowledged message; old
        packet ids mean nothing on the new connection and must not be acknowledged."""
        self.acks.clear()
