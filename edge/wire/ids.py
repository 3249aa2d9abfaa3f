"""Identifiers: each a hash of what it names, so the same window, revision or alarm always
gets the same id, a resend is a duplicate, and a receiver can recompute an id to check it.

Each id is the first 32 hex digits of a SHA-256 over its parts, separated by 0x1f.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from hashlib import sha256

from edgebatch.edge.wire.times import canonical_ts


def _digest(*parts: object) -> str:
    text = "\x1f".join(map(str, parts)) + "\x1f"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def batch_id_for(
    tenant: str, device: str, window_start: float, window_end: float, revision: int
) -> str:
    """Hash of (tenant, device, window_start, window_end, revision): a resend is the same id.

    `_digest` of those parts, written out: the collector recomputes it for every batch."""
    start, end = canonical_ts(window_start), canonical_ts(window_end)
    text = f"batch\x1f{tenant}\x1f{device}\x1f{start}\x1f{end}\x1f{revision}\x1f"
    return sha256(text.encode()).hexdigest()[:32]


def coarse_batch_id_for(
    tenant: str, device: str, window_start: float, window_end: float, member_ids: Iterable[str]
) -> str:
    """A coarsened summary's id: hash of its span and the sorted ids of the windows it merges
    (each `batch_id_for` of one window and revision), so it can collide with neither its
    members nor a plain window of the same span."""
    return _digest(
        "coarse",
        tenant,
        device,
        canonical_ts(window_start),
        canonical_ts(window_end),
        *sorted(member_ids),
    )


def alarm_id_for(tenant: str, device: str, rule: str, metric: str, state: str, ts: float) -> str:
    """Hash of the rule, metric, state and event time that raised or cleared it."""
    return _digest("alarm", tenant, device, rule, metric, state, repr(float(ts)))


def heartbeat_id_for(tenant: str, device: str, ts: float) -> str:
    return _digest("health", tenant, device, repr(float(ts)))
