"""The durable outbox: shedding by priority when full (coarsen, then heartbeats, then
summaries, never alarms), counted; receipts retire, silence resends, a reopen keeps all."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

import pytest

from edgebatch.edge.outbox import Entry, Outbox, OutboxRow, ShedDecision, next_shed_action
from edgebatch.edge.stats import MetricStats
from edgebatch.edge.wire import (
    AlarmEvent,
    Batch,
    BatchWindow,
    batch_id_for,
    coarse_batch_id_for,
    encode_alarm,
    encode_batch,
    encode_health,
    topic,
)
from edgebatch.edge.wire.summary import metric_summary
from tests.edge.helpers import parse_batch

T0 = 1_767_225_600.0
TENANT, DEVICE = "acme", "meter-1"


def batch_row(k: int, rng: random.Random, values_out: list[float]) -> OutboxRow:
    start, end = T0 + 60 * k, T0 + 60 * (k + 1)
    stats = MetricStats("flow", "l/s")
    values = [rng.gauss(50, 10) for _ in range(rng.randint(20, 60))]
    values_out += values
    stats.add_chunk(values, [start + i * 0.5 for i in range(len(values))])
    batch_id, payload = encode_batch(
        tenant=TENANT, device=DEVICE, window_start=start, window_end=end, revision=0,
        metrics=[metric_summary(stats)], agent="t",
    )  # fmt: skip
    return OutboxRow(
        batch_id, "batch", topic(TENANT, DEVICE, "batch"), payload, start, start, end, 0,
        len(values),
    )  # fmt: skip


def alarm_row(k: int) -> OutboxRow:
    event = AlarmEvent(rule="hot", kind="threshold", state="raised", metric="flow", value=99.0,
                       threshold=90.0, baseline=None, ts=T0 + k, severity="critical")  # fmt: skip
    alarm_id, payload = encode_alarm(event, tenant=TENANT, device=DEVICE, agent="t")
    return OutboxRow(alarm_id, "alarm", topic(TENANT, DEVICE, "alarm"), payload, T0 + k)


def health_row(k: int) -> OutboxRow:
    figures = {
        "uptime_s": 1.0, "cpu_percent": 1.0, "memory_percent": 1.0, "disk_percent": 1.0,
        "load": [0, 0, 0], "temperature_c": None, "process": {}, "outbox": {"backlog": 0,
        "bytes": 0}, "shed": {"coarsened": 0, "dropped_heartbeats": 0, "dropped_summaries": 0,
        "dropped_readings": 0}, "rejected": {}, "last_send": None,
    }  # fmt: skip
    hb_id, payload = encode_health(
        tenant=TENANT, device=DEVICE, ts=T0 + k, agent="t", figures=figures
    )
    return OutboxRow(hb_id, "health", topic(TENANT, DEVICE, "health"), payload, T0 + k)


def fill(
    tmp_path: Path, max_bytes: int, n_batches: int = 24, span: float = 3600.0
) -> tuple[Outbox, list[float], list[ShedDecision]]:
    rng = random.Random(11)
    values: list[float] = []
    box = Outbox(tmp_path / "outbox.db", max_bytes=1 << 30, max_coarse_span_s=span,
                 tenant=TENANT, device=DEVICE)  # fmt: skip
    rows = [batch_row(k, rng, values) for k in range(n_batches)]
    rows += [alarm_row(k) for k in range(5)] + [health_row(k) for k in range(10)]
    box.put(rows)
    box.max_bytes = max_bytes
    decisions = box.shed()
    return box, values, decisions


def stored(box: Outbox, kind: str) -> list[bytes]:
    return [
        bytes(r[0])
        for r in box.db.execute("SELECT payload FROM outbox WHERE kind = ?", (kind,)).fetchall()
    ]


def batches(box: Outbox) -> list[Batch]:
    return [parse_batch(topic(TENANT, DEVICE, "batch"), p) for p in stored(box, "batch")]


def test_coarsening_keeps_counts_sums_min_and_max_exact(tmp_path: Path):
    full, values, _ = fill(tmp_path / "a", max_bytes=1 << 30)
    size_before = full.bytes
    full.close()
    box, values, decisions = fill(tmp_path / "b", max_bytes=int(size_before * 0.8))
    assert decisions and {d.action for d in decisions} == {"coarsen"}
    assert box.bytes <= box.max_bytes
    counters = box.counters()
    assert counters["coarsened"] == len(decisions)
    assert counters["dropped_summaries"] == counters["dropped_heartbeats"] == 0
    got = batches(box)  # every stored summary still passes the collector's parser
    metrics = [m for b in got for m in b.metrics]
    assert sum(m.count for m in metrics) == len(values)
    assert math.fsum(m.sum for m in metrics) == pytest.approx(math.fsum(values), rel=1e-12)
    assert min(m.min for m in metrics) == min(values)
    assert max(m.max for m in metrics) == max(values)
    coarse = [b for b in got if b.window_end - b.window_start > 60]
    plain_ids = {batch_id_for(TENANT, DEVICE, b.window_start, b.window_end, 0) for b in coarse}
    assert coarse and not plain_ids & {b.batch_id for b in coarse}
    assert len(stored(box, "alarm")) == 5 and len(stored(box, "health")) == 10


def test_when_coarsening_is_not_enough_heartbeats_go_first_then_summaries_never_alarms(
    tmp_path: Path,
):
    box, values, decisions = fill(tmp_path, max_bytes=3000, span=120.0)
    kinds = [(d.action, d.kind) for d in decisions]
    first_summary_drop = kinds.index(("drop", "batch"))
    assert ("drop", "health") in kinds[:first_summary_drop]
    assert ("drop", "health") not in kinds[first_summary_drop:]
    assert stored(box, "health") == []
    assert len(stored(box, "alarm")) == 5
    counters = box.counters()
    assert counters["dropped_heartbeats"] == 10
    assert counters["dropped_summaries"] == kinds.count(("drop", "batch")) > 0
    left = sum(m.count for b in batches(box) for m in b.metrics)
    assert left + counters["dropped_readings"] == len(values)
    assert all(b.window_end - b.window_start <= 120 for b in batches(box))


def test_only_alarms_left_means_the_bound_is_exceeded_rather_than_an_alarm_lost(tmp_path: Path):
    box = Outbox(tmp_path / "o.db", max_bytes=100)
    box.put([alarm_row(k) for k in range(3)])
    assert len(stored(box, "alarm")) == 3 and box.bytes > 100


def test_a_coarsening_of_coarsenings_lists_every_window_so_the_collector_can_check_its_id(
    tmp_path: Path,
):
    box, _, decisions = fill(tmp_path, max_bytes=1 << 30, n_batches=8)
    box.max_bytes = box.bytes // 3
    assert box.shed()
    got = batches(box)  # the reference parser recomputes every id from the payload
    widest = max(got, key=lambda b: b.window_end - b.window_start)
    assert len(widest.members) > 2  # a coarsened summary was coarsened again
    assert [m.start for m in widest.members] == [
        widest.window_start + 60 * k for k in range(len(widest.members))
    ]
    member_ids = [batch_id_for(TENANT, DEVICE, *m) for m in widest.members]
    assert widest.batch_id == coarse_batch_id_for(
        TENANT, DEVICE, widest.window_start, widest.window_end, member_ids
    )


def test_a_summary_coarsened_without_members_counts_as_one_window_when_coarsened_again(
    tmp_path: Path,
):
    """An outbox kept across an upgrade may hold a coarsened summary that lists no members
    (its id cannot be checked); merged once more, the result can be."""
    rng = random.Random(3)
    first, second = batch_row(0, rng, []), batch_row(1, rng, [])
    old_id = coarse_batch_id_for(TENANT, DEVICE, T0, T0 + 60, ["a" * 32, "b" * 32])
    old = dataclasses.replace(first, id=old_id, payload=first.payload.replace(
        first.id.encode(), old_id.encode()))  # fmt: skip
    box = Outbox(tmp_path / "o.db", tenant=TENANT, device=DEVICE)
    box.put([old, second])
    box.max_bytes = box.bytes - 1
    assert [d.action for d in box.shed()] == ["coarsen"]
    (merged,) = batches(box)
    assert merged.members == (BatchWindow(T0, T0 + 60, 0), BatchWindow(T0 + 60, T0 + 120, 0))


def test_a_summary_that_may_have_reached_the_broker_is_never_coarsened(tmp_path: Path):
    box, _, _ = fill(tmp_path, max_bytes=1 << 30, n_batches=6)
    sent = box.take_due(T0 + 10_000, resend_after=60, limit=8)  # 5 alarms, 3 summaries
    sent_batches = {i for i, kind, _, _ in sent if kind == "batch"}
    assert len(sent_batches) == 3
    box.max_bytes = box.bytes - 1
    decisions = box.shed()
    coarsened = {i for d in decisions if d.action == "coarsen" for i in d.ids}
    assert coarsened and not coarsened & sent_batches


def test_next_shed_action_explains_itself():
    entries = [
        Entry("a1", "alarm", 100, 1.0),
        Entry("h1", "health", 100, 2.0),
        Entry("b1", "batch", 100, 3.0, 0.0, 60.0, 0, sends=1),
        Entry("b2", "batch", 100, 4.0, 60.0, 120.0, 0),
        Entry("b3", "batch", 100, 5.0, 120.0, 180.0, 0),
    ]
    d = next_shed_action(entries, 3600)
    assert d is not None
    assert (d.action, d.ids) == ("coarsen", ("b2", "b3")) and "never-sent" in d.reason
    d = next_shed_action(entries[:3], 3600)
    assert d is not None
    assert (d.action, d.kind, d.ids) == ("drop", "health", ("h1",))
    d = next_shed_action([entries[0], entries[2]], 3600)
    assert d is not None
    assert (d.action, d.kind, d.ids) == ("drop", "batch", ("b1",))
    assert next_shed_action(entries[:1], 3600) is None


def test_receipts_retire_silence_resends_the_same_bytes_and_a_reopen_keeps_the_rest(
    tmp_path: Path,
):
    path = tmp_path / "o.db"
    box = Outbox(path)
    rows = [alarm_row(1), health_row(2)]
    box.put(rows)
    first = box.take_due(T0 + 100, resend_after=5, limit=10)
    assert [r[0] for r in first] == [rows[0].id, rows[1].id]  # alarms first
    assert box.take_due(T0 + 104, resend_after=5, limit=10) == []
    again = box.take_due(T0 + 105, resend_after=5, limit=10)
    assert again == first
    assert box.retire([rows[1].id, "0" * 32]) == 1
    box.close()
    box = Outbox(path)
    assert [e.id for e in box.entries()] == [rows[0].id]
    assert box.backlog()["backlog"] == 1 and box.bytes == len(rows[0].payload)
    assert json.loads(box.take_due(T0 + 200, 5, 10)[0][3])["alarm_id"] == rows[0].id
