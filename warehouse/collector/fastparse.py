"""Batch messages decoded and type-checked in C (msgspec): the collector's hot path.

The collector checks every message before it lands it, and the reference parser
(`edgebatch.edge.wire.parse_message`) spends most of its time per batch on Python type
checks, field by field. Here msgspec checks the shape (fields, types, patterns, bounds)
while it decodes, and the reference's own value checks (`wire.checked_metric`,
`wire.check_batch_id`) do the rest. Whatever this path declines goes on to the
reference parser, which defines the format and words the reason: so this path may be
stricter than the reference, never looser (the tests run both on every mutation of a
valid message). msgspec comes with the `server` extra; the agent does not need it.

The metric's decoder is built from `wire.MetricSummary`, the one declaration of a
metric's fields: a field added there is decoded here, or the import fails saying which.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Literal

import msgspec

from edgebatch.edge import wire
from edgebatch.edge.wire.limits import MAX_AGENT_LEN, MAX_UNIT_LEN
from edgebatch.edge.wire.parse import check_batch_id, check_size, checked_metric

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
    """The sketch's shape, checked in C (the reference's field-by-field sketch check took
    a quarter of a batch's time); absent sides stay UNSET, so the dict handed on has
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


# Each metric field's decoded type: by name where the reference checks it by name, else
# by kind (a finite number, or a time's text). Times and the sketch are converted after.
_BY_NAME: dict[str, Any] = {
    "name": Annotated[str, _whole(wire.METRIC_RE.pattern)],
    "unit": Annotated[str, msgspec.Meta(max_length=MAX_UNIT_LEN)] | None,
    "count": Count,
    "sketch": _Sketch,
}


def _metric_field(name: str) -> tuple[str, Any] | tuple[str, Any, Any]:
    if name in _BY_NAME:
        kind = _BY_NAME[name]
    elif name in wire.METRIC_NUMBERS:
        kind = Finite
    elif name in wire.METRIC_TIMES:
        kind = str
    else:
        raise TypeError(f"the fast path has no decoded type for metric field {name!r}")
    return (name, kind, None) if name in wire.METRIC_OPTIONAL else (name, kind)


# Fields in `MetricSummary`'s order (keyword-only, so the optional ones may sit anywhere):
# `astuple` of a decoded metric then lines up with `MetricSummary`'s arguments.
_Metric = msgspec.defstruct(
    "_Metric",
    [_metric_field(name) for name in wire.METRIC_FIELDS],
    kw_only=True,
    forbid_unknown_fields=True,
)
_NAME_AT = wire.METRIC_FIELDS.index("name")
_SKETCH_AT = wire.METRIC_FIELDS.index("sketch")
_COUNT_AT = wire.METRIC_FIELDS.index("count")
_TIMES_AT = tuple((wire.METRIC_FIELDS.index(k), k) for k in wire.METRIC_TIMES)


class _Member(msgspec.Struct, forbid_unknown_fields=True):
    window_start: str
    window_end: str
    revision: NonNegative


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    v: Literal[1]
    batch_id: Annotated[str, _whole(wire.ID_RE.pattern)]
    tenant: str
    device: str
    window_start: str
    window_end: str
    revision: NonNegative
    metrics: Annotated[list[_Metric], msgspec.Meta(min_length=1, max_length=wire.MAX_METRICS)]  # type: ignore[valid-type]
    agent: Annotated[str, msgspec.Meta(max_length=MAX_AGENT_LEN)]
    members: (
        Annotated[list[_Member], msgspec.Meta(min_length=2, max_length=wire.MAX_MEMBERS)]
        | msgspec.UnsetType
    ) = msgspec.UNSET


_BATCH = msgspec.json.Decoder(_Batch)
_astuple = msgspec.structs.astuple


def parse_batch(tenant: str, device: str, payload: bytes) -> wire.Batch | None:
    """The typed batch, or None when anything is wrong (the reference parser says what)."""
    epoch_of = wire.epoch_of
    try:
        raw = _BATCH.decode(payload)
        if raw.tenant != tenant or raw.device != device:
            return None
        start = epoch_of(raw.window_start, "window_start")
        end = epoch_of(raw.window_end, "window_end")
        if not start < end:
            return None
        members: tuple[wire.BatchWindow, ...] = ()
        if raw.members is not msgspec.UNSET:
            members = tuple(
                wire.BatchWindow(
                    epoch_of(m.window_start, "window_start"),
                    epoch_of(m.window_end, "window_end"),
                    m.revision,
                )
                for m in raw.members
            )
        check_batch_id(tenant, device, raw.batch_id, start, end, raw.revision, members)
        metrics = []
        names = set()
        for m in raw.metrics:
            values = list(_astuple(m))
            if values[_NAME_AT] in names:
                return None
            names.add(values[_NAME_AT])
            sketch = _sketch(values[_SKETCH_AT], values[_COUNT_AT])
            if sketch is None:
                return None
            values[_SKETCH_AT] = sketch
            for at, key in _TIMES_AT:
                values[at] = epoch_of(values[at], key)
            metrics.append(checked_metric(wire.MetricSummary(*values), "", start, end))
    except (msgspec.MsgspecError, wire.MessageRejected, ValueError):  # bad UTF-8 is a ValueError
        return None
    return wire.Batch(
        tenant,
        device,
        raw.batch_id,
        start,
        end,
        raw.revision,
        tuple(metrics),
        raw.agent,
        members,
    )


def parse_message(topic: str, payload: bytes) -> wire.Message:
    """`wire.parse_message`, with batches taken by the fast path when it accepts them."""
    tenant, device, kind = wire.parse_topic(topic)
    if kind == "batch":
        check_size(payload)
        batch = parse_batch(tenant, device, payload)
        if batch is not None:
            return batch
    return wire.parse_message(topic, payload)
