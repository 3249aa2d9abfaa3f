"""The wire format: what the agent encodes, the collector's parser accepts as is, and what
breaks the format is rejected with a reason that names the field."""

from __future__ import annotations

import contextlib
import json
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgebatch.edge.sketch import QuantileSketch
from edgebatch.edge.stats import MetricStats
from edgebatch.edge.wire import (
    Alarm,
    AlarmEvent,
    Batch,
    BatchWindow,
    Health,
    MessageRejected,
    Receipt,
    Status,
    alarm_id_for,
    batch_id_for,
    coarse_batch_id_for,
    encode_alarm,
    encode_batch,
    encode_health,
    encode_receipt,
    epoch_of,
    format_ts,
    parse_message,
    parse_topic,
    parse_ts,
    topic,
)
from edgebatch.edge.wire.times import canonical_ts
from tests.edge.helpers import parse_batch

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
BATCH = topic("acme", "meter-1", "batch")


def summary(
    name: str, values: list[float], unit: str | None = "C", step: float = 1.0
) -> dict[str, Any]:
    """A metric's wire dict built from the real statistics classes, not typed in by hand."""
    stats = MetricStats(name, unit)
    stats.add_chunk(values, [T0 + i * step for i in range(len(values))])
    sk = stats.sketch
    out: dict[str, Any] = {"name": name, **({"unit": unit} if unit else {})}
    out.update(
        count=stats.count,
        sum=stats.sum,
        min=stats.min,
        max=stats.max,
        mean=stats.mean,
        m2=stats.m2,
        stddev=stats.stddev,
        p50=sk.quantile(0.5),
        p95=sk.quantile(0.95),
        p99=sk.quantile(0.99),
        sketch=sk.to_wire(),
        first_ts=format_ts(stats.first_ts),
        last_ts=format_ts(stats.last_ts),
    )
    return out


def batch_payload(**overrides: object) -> bytes:
    rng = random.Random(1)
    metrics = [
        summary("temperature", [rng.gauss(20, 3) for _ in range(50)]),
        summary("flow", [rng.uniform(-5, 5) for _ in range(40)] + [0.0], unit=None),
    ]
    _, payload = encode_batch(
        tenant="acme",
        device="meter-1",
        window_start=T0,
        window_end=T0 + 60,
        revision=0,
        metrics=metrics,
        agent="edgebatch-edge/0.1.0",
    )
    doc = json.loads(payload)
    doc.update(overrides)
    return json.dumps(doc).encode()


def health_figures() -> dict[str, object]:
    return {
        "uptime_s": 12.5,
        "cpu_percent": 3.0,
        "memory_percent": 41.0,
        "disk_percent": 60.2,
        "load": [0.1, 0.2, 0.3],
        "temperature_c": None,
        "process": {"rss_bytes": 20_000_000, "cpu_percent": 1.5},
        "outbox": {"backlog": 3, "bytes": 2048, "oldest_age_s": None},
        "shed": {
            "coarsened": 0,
            "dropped_heartbeats": 1,
            "dropped_summaries": 0,
            "dropped_readings": 0,
        },
        "rejected": {"not_finite": 2},
        "last_send": format_ts(T0 + 5),
    }


# ---------------------------------------------------------------- round trips


def test_batch_round_trips_with_its_mergeable_state():
    batch_id, payload = encode_batch(
        tenant="acme",
        device="meter-1",
        window_start=T0,
        window_end=T0 + 60,
        revision=2,
        metrics=[summary("temperature", [1.0, 2.5, 4.0, -3.0])],
        agent="edgebatch-edge/0.1.0",
    )
    msg = parse_message(BATCH, payload)
    assert isinstance(msg, Batch)
    assert (msg.batch_id, msg.revision) == (batch_id, 2)
    assert (msg.window_start, msg.window_end) == (T0, T0 + 60)
    (m,) = msg.metrics
    assert (m.count, m.sum, m.min, m.max, m.unit) == (4, 4.5, -3.0, 4.0, "C")
    assert m.m2 == pytest.approx(sum((x - 1.125) ** 2 for x in [1.0, 2.5, 4.0, -3.0]))
    assert QuantileSketch.from_wire(m.sketch).count == 4
    assert (m.first_ts, m.last_ts) == (T0, T0 + 3)


def test_batch_id_is_the_same_for_a_resend_and_differs_per_revision_and_window():
    a = batch_id_for("acme", "meter-1", T0, T0 + 60, 0)
    assert a == batch_id_for("acme", "meter-1", T0, T0 + 60, 0)
    others = {
        batch_id_for("acme", "meter-1", T0, T0 + 60, 1),
        batch_id_for("acme", "meter-1", T0 + 60, T0 + 120, 0),
        batch_id_for("acme", "meter-2", T0, T0 + 60, 0),
        batch_id_for("other", "meter-1", T0, T0 + 60, 0),
    }
    assert a not in others and len(others) == 4


@pytest.mark.parametrize(
    ("kind", "threshold", "baseline"),
    [("threshold", 80.0, None), ("zscore", None, {"mean": 20.0, "stddev": 1.5, "n": 300.0})],
)
def test_alarm_round_trips(kind, threshold, baseline):
    event = AlarmEvent(
        rule="hot",
        kind=kind,
        state="raised",
        metric="temperature",
        value=91.5,
        threshold=threshold,
        baseline=baseline,
        ts=T0 + 1.25,
        severity="critical",
    )
    alarm_id, payload = encode_alarm(
        event, tenant="acme", device="meter-1", agent="edgebatch-edge/0.1.0"
    )
    msg = parse_message(topic("acme", "meter-1", "alarm"), payload)
    assert isinstance(msg, Alarm)
    assert (
        msg.alarm_id
        == alarm_id
        == alarm_id_for("acme", "meter-1", "hot", "temperature", "raised", T0 + 1.25)
    )
    assert msg.event == event


def test_health_round_trips():
    hb_id, payload = encode_health(
        tenant="acme", device="meter-1", ts=T0, agent="a/1", figures=health_figures()
    )
    msg = parse_message(topic("acme", "meter-1", "health"), payload)
    assert isinstance(msg, Health)
    assert msg.heartbeat_id == hb_id
    assert msg.figures == health_figures()


def test_receipt_and_status_round_trip():
    ids = [batch_id_for("acme", "d", T0, T0 + 60, r) for r in range(3)]
    msg = parse_message(topic("acme", "d", "receipt"), encode_receipt(ids, T0 + 9.5))
    assert msg == Receipt("acme", "d", tuple(ids), T0 + 9.5)
    assert parse_message(topic("acme", "d", "status"), b"online") == Status("acme", "d", True)
    assert parse_message(topic("acme", "d", "status"), b"offline") == Status("acme", "d", False)


@given(st.integers(min_value=0, max_value=4_102_444_800_000))
def test_times_round_trip_at_millisecond_precision(ms):
    text = format_ts(ms / 1000)
    assert text.endswith("Z")
    assert format_ts(parse_ts(text)) == text
    assert round(parse_ts(text) * 1000) == ms


@given(
    st.integers(min_value=0, max_value=253_402_300_799_999),
    st.sampled_from(["Z", ".000Z", "+00:00", ".5Z", ".250Z"]),
)
def test_a_time_read_gives_the_text_the_id_of_its_window_is_made_of(ms, tail):
    """The collector recomputes ids from times it read; the text it hashes for a time must be
    `format_ts`'s, whichever RFC 3339 form the time came in."""
    text = format_ts(ms / 1000)
    if tail != "Z":
        text = text.removesuffix("Z").split(".")[0] + tail
    epoch = epoch_of(text, "t")
    assert canonical_ts(epoch) == format_ts(epoch) == format_ts(parse_ts(text))


def test_parse_ts_takes_the_extended_utc_form_only():
    assert parse_ts("2026-01-01T00:00:00Z") == T0
    assert parse_ts("2026-01-01T00:00:00.250+00:00") == T0 + 0.25
    for text in ("20260101T000000Z", "2026-01-01", "2026-01-01T00:00Z", "1767225600", ""):
        with pytest.raises(ValueError):
            parse_ts(text)


def test_format_ts_never_moves_a_time_past_the_next_millisecond():
    assert format_ts(T0 + 59.9999) == "2026-01-01T00:00:59.999Z"
    assert format_ts(T0 + 0.3) == "2026-01-01T00:00:00.300Z"


# ---------------------------------------------------------------- rejections


def _mutated_metric(**changes: object) -> bytes:
    doc = json.loads(batch_payload())
    doc["metrics"][0].update(changes)
    return json.dumps(doc).encode()


def _without(key: str) -> bytes:
    doc = json.loads(batch_payload())
    del doc[key]
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("topic_", "payload", "reason"),
    [
        ("edgebatch/acme/batch", batch_payload(), "is not edgebatch/{tenant}/{device}/{kind}"),
        ("edgebatch/ac me/meter-1/batch", batch_payload(), "topic tenant"),
        ("edgebatch/acme/meter-1/readings", batch_payload(), "topic kind"),
        (BATCH, b"\xff\xfe", "not UTF-8"),
        (BATCH, b"{not json", "not JSON"),
        (BATCH, b"[1, 2]", "not an object"),
        (BATCH, b'{"v": NaN}', "NaN"),
        (BATCH, b'{"v": 1e999}', "infinity"),
        (BATCH, b'{"v": ' + b"9" * 5000 + b"}", "not acceptable JSON"),
        (BATCH, b"[" * 100_000, "nested too deeply"),
        (BATCH, batch_payload(v=2), "field 'v' must be 1"),
        (BATCH, batch_payload(v=True), "field 'v' must be 1"),
        (BATCH, batch_payload(device="meter-2"), "does not match topic device"),
        (BATCH, batch_payload(extra=1), "unknown field(s) extra"),
        (BATCH, _without("window_end"), "missing field(s) window_end"),
        (BATCH, batch_payload(batch_id="XYZ"), "field 'batch_id'"),
        (BATCH, batch_payload(window_end=format_ts(T0)), "window_start must be before"),
        (BATCH, batch_payload(window_start="yesterday"), "window_start' must be an RFC 3339"),
        (BATCH, batch_payload(window_start="2026-01-01T00:00:00"), "window_start"),
        (BATCH, batch_payload(window_start="20260101T000000Z"), "window_start"),
        (BATCH, batch_payload(window_start="2026-01-01 00:00:00Z"), "window_start"),
        (BATCH, batch_payload(window_start="2026-01-01T00:00:00+02:00"), "window_start"),
        (BATCH, batch_payload(revision=-1), "field 'revision' must be >= 0"),
        (BATCH, batch_payload(metrics=[]), "non-empty list"),
        (BATCH, _mutated_metric(count=0), "metrics[0] (temperature): field 'count'"),
        (BATCH, _mutated_metric(count=51), "bucket counts add up to 50, not count 51"),
        (BATCH, _mutated_metric(sum="12"), "field 'sum' must be a finite number"),
        (BATCH, _mutated_metric(sum=10**400), "field 'sum' must be a finite number"),
        (BATCH, _mutated_metric(min=99.0), "greater than max"),
        (BATCH, _mutated_metric(mean=1e6), "mean"),
        (BATCH, _mutated_metric(m2=-1.0), "m2 and stddev"),
        (BATCH, _mutated_metric(p50=1e6), "p50 <= p95 <= p99"),
        (BATCH, _mutated_metric(first_ts=format_ts(T0 - 1)), "inside the window"),
        (BATCH, _mutated_metric(name="bad name"), "field 'name'"),
        (BATCH, _mutated_metric(sketch={"alpha": 2.0}), "alpha must be in (0, 1)"),
        (BATCH, _mutated_metric(sketch=[]), "sketch: must be an object"),
        (topic("acme", "d", "status"), b"maybe", "not online/offline"),
        (
            topic("acme", "d", "receipt"),
            b'{"v":1,"ids":["x"],"landed_at":"2026-01-01T00:00:00Z"}',
            "ids[0] is not a 32-hex-digit id",
        ),
    ],
)
def test_a_broken_message_is_rejected_with_a_reason_naming_the_field(topic_, payload, reason):
    with pytest.raises(MessageRejected) as exc:
        parse_message(topic_, payload)
    assert reason in exc.value.reason


def test_a_duplicated_metric_is_rejected():
    doc = json.loads(batch_payload())
    doc["metrics"].append(doc["metrics"][0])
    with pytest.raises(MessageRejected, match="appears twice"):
        parse_message(BATCH, json.dumps(doc).encode())


def test_an_alarm_needs_a_threshold_or_a_baseline():
    event = AlarmEvent(rule="r", kind="threshold", state="raised", metric="m", value=1.0,
                       threshold=1.0, baseline=None, ts=T0, severity="info")  # fmt: skip
    _, payload = encode_alarm(event, tenant="acme", device="d", agent="a")
    doc = json.loads(payload)
    doc["threshold"] = None
    with pytest.raises(MessageRejected, match="threshold or a baseline"):
        parse_message(topic("acme", "d", "alarm"), json.dumps(doc).encode())


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"v": "abc', "payload is not JSON: Unterminated string starting at char 6"),
        (b'{"v" 1}', "payload is not JSON: Expecting ':' delimiter at char 5"),
        (b'{"v": "a\x01"}', "payload is not JSON: Invalid control character at char 8"),
        (
            b"{not json",
            "payload is not JSON: Expecting property name enclosed in double quotes at char 1",
        ),
        (b'{"v": 1} x', "payload is not JSON: Extra data at char 9"),
    ],
)
def test_a_malformed_json_rejection_reads_as_one_sentence(payload, reason):
    with pytest.raises(MessageRejected) as exc:
        parse_message(BATCH, payload)
    assert exc.value.reason.startswith(reason) and " at at " not in exc.value.reason


# ---------------------------------------------------------------- ids match what they name


def forged(payload: bytes, batch_id: str = "0123456789abcdef" * 2) -> bytes:
    doc = json.loads(payload)
    doc["batch_id"] = batch_id
    return json.dumps(doc).encode()


def test_a_batch_under_an_id_its_content_does_not_give_is_rejected_naming_the_true_id():
    true_id = batch_id_for("acme", "meter-1", T0, T0 + 60, 0)
    with pytest.raises(MessageRejected) as exc:
        parse_message(BATCH, forged(batch_payload()))
    assert "field 'batch_id'" in exc.value.reason and true_id in exc.value.reason
    # Another real window's id, or another revision's, is as wrong as a made-up one.
    for other in (batch_id_for("acme", "meter-1", T0, T0 + 60, 1),
                  batch_id_for("acme", "meter-2", T0, T0 + 60, 0)):  # fmt: skip
        with pytest.raises(MessageRejected, match="is not the id of this device, window"):
            parse_message(BATCH, forged(batch_payload(), other))
    assert parse_batch(BATCH, batch_payload()).batch_id == true_id


def coarse_payload(starts: list[float], **changes: object) -> bytes:
    """A coarsened batch over the windows `[s, s + 60)` as the agent's outbox encodes it."""
    members = [BatchWindow(s, s + 60, 0) for s in starts]
    _, payload = encode_batch(
        tenant="acme", device="meter-1", window_start=starts[0], window_end=starts[-1] + 60,
        revision=0, metrics=[summary("temperature", [1.0, 2.0, 3.0])], agent="a",
        members=members,
    )  # fmt: skip
    doc = json.loads(payload)
    doc.update(changes)
    return json.dumps(doc).encode()


def test_a_coarsened_batch_carries_its_members_and_its_id_is_checked_from_them():
    starts = [T0, T0 + 60, T0 + 120]
    msg = parse_message(BATCH, coarse_payload(starts))
    assert isinstance(msg, Batch)
    assert msg.members == tuple(BatchWindow(s, s + 60, 0) for s in starts)
    member_ids = [batch_id_for("acme", "meter-1", s, s + 60, 0) for s in starts]
    assert msg.batch_id == coarse_batch_id_for("acme", "meter-1", T0, T0 + 180, member_ids)
    assert msg.batch_id != batch_id_for("acme", "meter-1", T0, T0 + 180, 0)


def _members(starts: list[float], shift: float = 0.0) -> list[dict]:
    return [
        {"window_start": format_ts(s + shift), "window_end": format_ts(s + 60), "revision": 0}
        for s in starts
    ]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"batch_id": "0" * 32}, "is not the id of this span and members"),
        ({"members": _members([T0, T0 + 60])}, "the last member must end at window_end"),
        ({"members": _members([T0, T0 + 60, T0 + 120], 1.0)}, "must tile window_start"),
        ({"members": _members([T0, T0 + 120, T0 + 60])}, "must tile window_start"),
        ({"members": _members([T0])}, "field 'members' must be a list of 2 to"),
        ({"members": [{"window_start": format_ts(T0)}, {}]}, "members[0]: missing field(s)"),
        ({"revision": 1}, "a coarsened batch (with 'members') has revision 0"),
        ({"window_end": format_ts(T0 + 240)}, "the last member must end at window_end"),
    ],
)
def test_a_coarsened_batch_whose_members_do_not_give_its_id_is_rejected(changes, reason):
    with pytest.raises(MessageRejected) as exc:
        parse_message(BATCH, coarse_payload([T0, T0 + 60, T0 + 120], **changes))
    assert reason in exc.value.reason


def test_a_coarsened_batch_without_its_members_is_rejected_as_a_plain_window():
    """What an agent that lists no members sends: its id cannot be checked, so it is not
    taken (docs/wire-format.md, "Versions")."""
    doc = json.loads(coarse_payload([T0, T0 + 60]))
    del doc["members"]
    with pytest.raises(MessageRejected, match="a coarsened batch must list its 'members'"):
        parse_message(BATCH, json.dumps(doc).encode())


def test_parse_topic_splits_a_valid_topic():
    assert parse_topic("edgebatch/acme/meter-1/health") == ("acme", "meter-1", "health")


# ---------------------------------------------------------------- never a crash

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def mutate(doc: dict[str, Any], path: list[int], value: object) -> None:
    """Replace the node of `doc` that `path` leads to (indices taken modulo) with `value`."""
    node: dict[str, Any] | list[Any] = doc
    for step in path[:-1]:
        children = list(node.values()) if isinstance(node, dict) else node
        if not isinstance(children, list) or not children:
            break
        child = children[step % len(children)]
        if not isinstance(child, dict | list):
            break
        node = child
    if isinstance(node, dict):
        keys = sorted(node)
        node[keys[path[-1] % len(keys)]] = value
    elif node:
        node[path[-1] % len(node)] = value


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["batch", "alarm", "health", "receipt", "status"]),
    path=st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=3),
    value=json_values,
)
def test_any_mutation_of_a_valid_message_parses_or_is_rejected_never_crashes(kind, path, value):
    """Replace one node of a valid payload with arbitrary JSON: the parser either accepts it
    or raises MessageRejected, nothing else (the collector must never crash on a message)."""
    if kind == "batch":
        doc = json.loads(batch_payload())
    elif kind == "health":
        doc = json.loads(
            encode_health(
                tenant="acme", device="meter-1", ts=T0, agent="a", figures=health_figures()
            )[1]
        )
    else:
        doc = {"v": 1, "ids": [batch_id_for("acme", "meter-1", T0, T0 + 1, 0)],
               "landed_at": format_ts(T0)}  # fmt: skip
    mutate(doc, path, value)
    payload = json.dumps(doc).encode()
    try:
        msg = parse_message(topic("acme", "meter-1", kind), payload)
    except MessageRejected as exc:
        assert exc.reason
    else:
        assert msg.kind == kind


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_rejected_not_crashed_on(payload):
    for kind in ("batch", "receipt", "status"):
        with contextlib.suppress(MessageRejected):
            parse_message(topic("acme", "d", kind), payload)


def test_parse_keeps_quantiles_within_the_sketch_bound():
    values = [math.exp(x / 10) for x in range(1, 200)]
    msg = parse_batch(BATCH, batch_payload(metrics=[summary("m", values, step=0.25)]))
    exact = sorted(values)[int(0.95 * (len(values) - 1))]
    assert abs(msg.metrics[0].p95 - exact) <= 0.01 * exact * (1 + 1e-9)
