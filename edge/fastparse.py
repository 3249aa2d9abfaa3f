"""Batch messages decoded and type-checked in C (msgspec): the collector's hot path.

The collector checks every message before it lands it, and the reference parser
(`edge.messages.parse_message`) spends most of its time per batch on Python type
checks, field by field. Here msgspec checks the shape (fields, types, patterns,
bounds) while it decodes, and the reference's own value checks
(`messages.checked_metric`) do the rest. Whatever this path declines goes on to the
reference parser, which defines the format and words the reason: so this path may
be stricter than the reference, never looser (the tests run both on every mutation
of a valid message). msgspec comes with the `server` extra; the agent does not need it.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Literal

import msgspec

from edgebatch.edge import messages as wire

# Bounds that refuse the infinities an overflowing literal (1e999) decodes to.
Finite = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
Count = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]


def _whole(pattern: str) -> msgspec.Meta:
    # msgspec searches; \A and \Z anchor like fullmatch (a `$` would let a final newline in).
    return msgspec.Meta(pattern=rf"\A(?:{pattern})\Z")


class _Store(msgspec.Struct, forbid_unknown_fields=True):
    start: Annotated[int, msgspec.Meta(ge=-(1 << 20), le=1 << 20)]
    counts: list[NonNegative]


class _Sketch(msgspec.Struct, forbid_unknown_fields=True):
    """The sketch's shape, checked in C (`messages._parse_sketch` in Python took a
    quarter of a batch's check); absent sides stay UNSET, so the dict handed on has
    exactly the keys the message had, as the reference parser's has."""

    alpha: Annotated[float, msgspec.Meta(gt=0, lt=1)]
    pos: _Store | None | msgspec.UnsetType = msgspec.UNSET
    neg: _Store | None | msgspec.UnsetType = msgspec.UNSET
    zero: NonNegative | msgspec.UnsetType = msgspec.UNSET


def _sketch(s: _Sketch, count: int) -> dict[str, Any] | None:
    """The sketch as the reference parser's dict, or None if its buckets do not add up
    to `count` or are too many."""
    out: dict[str, Any] = {"alpha": s.alpha}
    total = buckets = 0
    for side, store in (("pos", s.pos), ("neg", s.neg)):
        if store is msgspec.UNSET:
            continue
        if store is None:
            out[side] = None
            continue
        out[side] = {"start": store.start, "counts": store.counts}
        total += sum(store.counts)
        buckets += len(store.counts)
    if s.zero is not msgspec.UNSET:
        out["zero"] = s.zero
        total += s.zero
    if total != count or buckets > wire.MAX_SKETCH_BUCKETS:
        return None
    return out


class _Metric(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, _whole(wire.METRIC_RE.pattern)]
    count: Count
    sum: Finite
    min: Finite
    max: Finite
    mean: Finite
    m2: Finite
    stddev: Finite
    p50: Finite
    p95: Finite
    p99: Finite
    sketch: _Sketch
    first_ts: str
    last_ts: str
    unit: Annotated[str, msgspec.Meta(max_length=32)] | None = None


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    v: Literal[1]
    batch_id: Annotated[str, _whole(wire.ID_RE.pattern)]
    tenant: str
    device: str
    window_start: str
    window_end: str
    revision: NonNegative
    metrics: Annotated[list[_Metric], msgspec.Meta(min_length=1, max_length=wire.MAX_METRICS)]
    agent: Annotated[str, msgspec.Meta(max_length=64)]


_BATCH = msgspec.json.Decoder(_Batch)


def parse_batch(tenant: str, device: str, payload: bytes) -> wire.Batch | None:
    """The typed batch, or None when anything is wrong (the reference parser says what)."""
    try:
        raw = _BATCH.decode(payload)
        if raw.tenant != tenant or raw.device != device:
            return None
        start = wire.epoch_of(raw.window_start, "window_start")
        end = wire.epoch_of(raw.window_end, "window_end")
        if not start < end:
            return None
        metrics = []
        names = set()
        for m in raw.metrics:
            if m.name in names:
                return None
            names.add(m.name)
            sketch = _sketch(m.sketch, m.count)
            if sketch is None:
                return None
            summary = wire.MetricSummary(
                m.name,
                m.unit,
                m.count,
                m.sum,
                m.min,
                m.max,
                m.mean,
                m.m2,
                m.stddev,
                m.p50,
                m.p95,
                m.p99,
                sketch,
                wire.epoch_of(m.first_ts, "first_ts"),
                wire.epoch_of(m.last_ts, "last_ts"),
            )
            metrics.append(wire.checked_metric(summary, "", start, end))
    except (msgspec.MsgspecError, wire.MessageRejected, ValueError):  # bad UTF-8 is a ValueError
        return None
    return wire.Batch(
        tenant, device, raw.batch_id, start, end, raw.revision, tuple(metrics), raw.agent
    )
