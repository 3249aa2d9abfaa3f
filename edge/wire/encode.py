"""What the agent (and the collector, for receipts) puts on the wire: compact JSON bytes
and the id each message is known by."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from edgebatch.edge.wire.ids import (
    alarm_id_for,
    batch_id_for,
    coarse_batch_id_for,
    heartbeat_id_for,
)
from edgebatch.edge.wire.limits import VERSION
from edgebatch.edge.wire.times import format_ts
from edgebatch.edge.wire.types import ALARM_TIMES, AlarmEvent, BatchWindow


def dumps(obj: Mapping[str, Any]) -> bytes:
    """Compact JSON that refuses NaN and infinities (they are not JSON)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def encode_batch(
    *,
    tenant: str,
    device: str,
    window_start: float,
    window_end: float,
    revision: int,
    metrics: list[dict[str, Any]],
    agent: str,
    members: Sequence[BatchWindow] = (),
) -> tuple[str, bytes]:
    """`(batch_id, payload)` for one window summary; `metrics` as from `metric_summary`.

    With `members` (the windows a coarsened summary merges, in order), the id is
    `coarse_batch_id_for` of them and the payload lists them, so the collector can
    recompute it; without, `batch_id_for` of the window and revision. The id is never
    the caller's to choose: the collector refuses one its content does not give."""
    payload: dict[str, Any] = {
        "v": VERSION,
        "batch_id": "",
        "tenant": tenant,
        "device": device,
        "window_start": format_ts(window_start),
        "window_end": format_ts(window_end),
        "revision": revision,
        "metrics": metrics,
        "agent": agent,
    }
    if members:
        payload["batch_id"] = coarse_batch_id_for(
            tenant,
            device,
            window_start,
            window_end,
            (batch_id_for(tenant, device, *m) for m in members),
        )
        payload["members"] = [
            {
                "window_start": format_ts(m.start),
                "window_end": format_ts(m.end),
                "revision": m.revision,
            }
            for m in members
        ]
    else:
        payload["batch_id"] = batch_id_for(tenant, device, window_start, window_end, revision)
    return payload["batch_id"], dumps(payload)


def encode_alarm(event: AlarmEvent, *, tenant: str, device: str, agent: str) -> tuple[str, bytes]:
    """`(alarm_id, payload)` for one raise or clear: `event`'s fields, its id and sender."""
    alarm_id = alarm_id_for(tenant, device, event.rule, event.metric, event.state, event.ts)
    fields = dataclasses.asdict(event)
    for key in ALARM_TIMES:
        fields[key] = format_ts(fields[key])
    payload = {
        "v": VERSION,
        "alarm_id": alarm_id,
        "tenant": tenant,
        "device": device,
        **fields,
        "agent": agent,
    }
    return alarm_id, dumps(payload)


def encode_health(
    *, tenant: str, device: str, ts: float, agent: str, figures: Mapping[str, Any]
) -> tuple[str, bytes]:
    """`figures` holds the health fields after `agent` (see `parse.HEALTH_FIGURES`)."""
    heartbeat_id = heartbeat_id_for(tenant, device, ts)
    payload = {
        "v": VERSION,
        "heartbeat_id": heartbeat_id,
        "tenant": tenant,
        "device": device,
        "ts": format_ts(ts),
        "agent": agent,
        **figures,
    }
    return heartbeat_id, dumps(payload)


def encode_receipt(ids: Iterable[str], landed_at: float) -> bytes:
    return dumps({"v": VERSION, "ids": list(ids), "landed_at": format_ts(landed_at)})
