"""The collector's fast path for batches may be stricter than the reference parser, never
looser, and where both accept they return the same message."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgebatch.edge import wire
from edgebatch.edge.wire import MessageRejected, batch_id_for, format_ts
from tests.edge.test_messages import (
    BATCH,
    T0,
    _members,
    batch_payload,
    coarse_payload,
    forged,
    json_values,
    mutate,
    summary,
)
from tests.support.extras import require

fastparse = require("edgebatch.warehouse.collector.fastparse")


def reference(payload: bytes) -> wire.Message | None:
    """The reference parser alone: the message, or None if it rejects."""
    try:
        return wire.parse_message(BATCH, payload)
    except MessageRejected:
        return None


def agree(payload: bytes) -> None:
    fast = fastparse.parse_batch("acme", "meter-1", payload)
    slow = reference(payload)
    if slow is None:
        assert fast is None, f"fast path accepted what the reference rejects: {payload[:300]!r}"
    elif fast is not None:
        assert fast == slow


def test_a_valid_batch_takes_the_fast_path_and_equals_the_reference():
    payload = batch_payload()
    fast = fastparse.parse_batch("acme", "meter-1", payload)
    assert fast is not None and fast == reference(payload)


def _metric(**changes: object) -> bytes:
    doc = json.loads(batch_payload())
    doc["metrics"][0].update(changes)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "payload",
    [
        batch_payload(batch_id="0" * 32 + "\n"),
        batch_payload(batch_id="A" * 32),
        batch_payload(window_start=format_ts(T0).lower()),
        batch_payload(window_start=format_ts(T0) + "\n"),
        batch_payload(window_start="2026-01-01T00:00:00.1234567Z"),
        batch_payload(window_start="2026-01-01T00:00:00+01:00"),
        batch_payload(revision=True),
        batch_payload(revision=1.0),
        batch_payload(revision=2**64),
        batch_payload(v=1.0),
        batch_payload(v=True),
        batch_payload(agent="x" * 65),
        batch_payload(tenant="other"),
        _metric(count=True),
        _metric(count=2**70),
        _metric(unit=None),
        _metric(unit="u" * 33),
        _metric(name="a\n"),
        _metric(sketch={"alpha": 0.01, "zero": None}),
        _metric(sketch={"alpha": 0.01, "pos": None, "zero": 50}),
        _metric(sum=10**400),
        batch_payload().replace(b'"sum":', b'"sum":1e999,"x":', 1),
        batch_payload().replace(b'"agent":', b'"agent":"\xff","agent":', 1),
        batch_payload().replace(b'"device":', b'"device":"meter-1","device":', 1),
        batch_payload(metrics=[summary("m", [1.0]), summary("m", [1.0])]),
        b"\xef\xbb\xbf" + batch_payload(),
        batch_payload() + b"\n",
        batch_payload() + b" x",
        forged(batch_payload()),
        forged(batch_payload(), batch_id_for("acme", "meter-1", T0, T0 + 60, 1)),
        coarse_payload([T0, T0 + 60]),
        coarse_payload([T0, T0 + 60], revision=1),
        coarse_payload([T0, T0 + 60], batch_id="0" * 32),
        coarse_payload([T0, T0 + 60], members=_members([T0, T0 + 60], 1.0)),
        coarse_payload([T0, T0 + 60], members=_members([T0])),
        coarse_payload([T0, T0 + 60], members=[]),
        coarse_payload([T0, T0 + 60], members=None),
    ],
)
def test_edge_cases_agree(payload: bytes):
    agree(payload)


@settings(max_examples=400, deadline=None)
@given(
    path=st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=4),
    value=json_values,
)
def test_any_mutation_agrees(path, value):
    doc = json.loads(batch_payload())
    mutate(doc, path, value)
    agree(json.dumps(doc).encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_agree(payload):
    with contextlib.suppress(MessageRejected):
        agree(payload)


@settings(max_examples=300, deadline=None)
@given(
    path=st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=4),
    value=json_values,
)
def test_any_mutation_of_a_coarsened_batch_agrees(path, value):
    doc = json.loads(coarse_payload([T0, T0 + 60, T0 + 120]))
    mutate(doc, path, value)
    agree(json.dumps(doc).encode())


def test_a_coarsened_batch_takes_the_fast_path_with_its_members():
    payload = coarse_payload([T0, T0 + 60, T0 + 120])
    fast = fastparse.parse_batch("acme", "meter-1", payload)
    assert fast is not None and fast == reference(payload) and len(fast.members) == 3


def test_the_collector_parses_with_the_fast_path_and_words_a_refusal_as_the_reference():
    from edgebatch.warehouse.collector.parsing import parse_message

    assert parse_message is fastparse.parse_message
    with pytest.raises(MessageRejected) as fast_exc:
        parse_message(BATCH, forged(batch_payload()))
    with pytest.raises(MessageRejected) as slow_exc:
        wire.parse_message(BATCH, forged(batch_payload()))
    assert fast_exc.value.reason == slow_exc.value.reason
    assert "is not the id of this device, window and revision" in fast_exc.value.reason


def test_a_sketch_with_every_side_takes_the_fast_path():
    payload = batch_payload(metrics=[summary("m", [-2.0, -0.5, 0.0, 0.0, 3.0])])
    sketch = json.loads(payload)["metrics"][0]["sketch"]
    assert {"pos", "neg", "zero"} <= sketch.keys()
    fast = fastparse.parse_batch("acme", "meter-1", payload)
    assert fast is not None and fast == reference(payload)


def _sketch(change: Callable[[dict[str, Any], int], object]) -> bytes:
    doc = json.loads(batch_payload(metrics=[summary("m", [-2.0, 0.0, 3.0, 4.0])]))
    metric = doc["metrics"][0]
    change(metric["sketch"], metric["count"])
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "change",
    [
        lambda s, n: s.update(extra=1),
        lambda s, n: s.update(pos=[1, 2]),
        lambda s, n: s.update(pos=None),
        lambda s, n: s.pop("neg"),
        lambda s, n: s.pop("zero"),
        lambda s, n: s.pop("alpha"),
        lambda s, n: s["pos"].update(extra=1),
        lambda s, n: s["pos"].pop("counts"),
        lambda s, n: s["pos"]["counts"].append(-1),
        lambda s, n: s["pos"]["counts"].append(0),
        lambda s, n: s["pos"]["counts"].append(1.5),
        lambda s, n: s["pos"]["counts"].append(True),
        lambda s, n: s["pos"].update(counts=[*s["pos"]["counts"][:-1], 1.0]),
        lambda s, n: s["pos"].update(start=2**21),
        lambda s, n: s["pos"].update(start=-(2**20)),
        lambda s, n: s["pos"].update(start=1.0),
        lambda s, n: s.update(alpha=0),
        lambda s, n: s.update(alpha=1),
        lambda s, n: s.update(alpha="0.01"),
        lambda s, n: s.update(alpha=True),
        lambda s, n: s.update(zero=-1),
        lambda s, n: s.update(zero=1.5),
        lambda s, n: s.update(zero=s["zero"] + 1),
        lambda s, n: s.update(pos={"start": 0, "counts": [0] * 8192}, neg=None, zero=n),
        lambda s, n: s.update(pos={"start": 0, "counts": [0] * 8193}, neg=None, zero=n),
    ],
)
def test_sketch_mutations_agree(change):
    agree(_sketch(change))
