"""Landing messages that arrive by another road than MQTT (the API's HTTP ingest), with
the collector's own code: each message is checked by `validation.check` (quarantined
with its reason when refused), lines land through `LandingZone.write` (durable, atomic),
and receipts are made by `receipt_payloads`, the same the collector publishes.

Several requests may land together (`land_groups`): one file per kind for all of them,
so each pays a share of one fsync instead of its own; each gets its own receipt back.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Sequence

from edgebatch.edge.wire import MAX_RECEIPT_IDS, encode_receipt
from edgebatch.warehouse.collector.validation import check
from edgebatch.warehouse.landing import LandingFile, LandingZone

Message = tuple[str, bytes, float]  # topic, payload, received at (epoch seconds)


@dataclasses.dataclass(frozen=True)
class Landed:
    """What one group of messages became: receipt ids per device, and what was refused."""

    files: tuple[LandingFile, ...]
    receipts: dict[tuple[str, str], list[str]]
    accepted: int
    quarantined: int
    reasons: tuple[str, ...]
    landed_at: float


def receipt_payloads(ids: Sequence[str], landed_at: float) -> list[bytes]:
    """The receipt messages for `ids`, at most `MAX_RECEIPT_IDS` ids each."""
    return [
        encode_receipt(ids[i : i + MAX_RECEIPT_IDS], landed_at)
        for i in range(0, len(ids), MAX_RECEIPT_IDS)
    ]


def land_groups(
    zone: LandingZone, groups: Sequence[Iterable[Message]], collector: str
) -> list[Landed]:
    """Check every message of every group, land them (one durable file per kind), and say
    per group what landed. Raises what `LandingZone.write` raises: then nothing is
    acknowledged, and the senders send again."""
    lines: dict[str, list[bytes]] = {}
    per_group = []
    for group in groups:
        receipts: dict[tuple[str, str], list[str]] = {}
        accepted = quarantined = 0
        reasons: list[str] = []
        for topic, payload, received_at in group:
            checked = check(topic, payload, received_at, collector)
            lines.setdefault(checked.kind, []).append(checked.line)
            if checked.kind == "quarantine":
                quarantined += 1
                reasons.append(json.loads(checked.line).get("reason", "refused"))
                continue
            accepted += 1
            if checked.receipt is not None:
                tenant, device, message_id = checked.receipt
                receipts.setdefault((tenant, device), []).append(message_id)
        per_group.append((receipts, accepted, quarantined, reasons))
    files = tuple(zone.write(kind, b"".join(kind_lines)) for kind, kind_lines in lines.items())
    landed_at = time.time()
    return [
        Landed(files, receipts, accepted, quarantined, tuple(reasons), landed_at)
        for receipts, accepted, quarantined, reasons in per_group
    ]
