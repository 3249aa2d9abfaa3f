"""When held messages must land: count, bytes, age, and the end of a burst."""

from __future__ import annotations

from edgebatch.warehouse.collector.buffer import FlushPolicy, Held

POLICY = FlushPolicy(max_messages=1000, max_bytes=10_000, max_age_s=1.0, idle_s=0.1,
                     idle_min_messages=50)  # fmt: skip


def held(n: int, at: float = 0.0, size: int = 10) -> Held:
    h = Held()
    for i in range(n):
        h.add("batch", b"x" * size, at, (i + 1, 1))
    return h


def test_nothing_held_is_never_due():
    assert Held().due(POLICY, 100.0) is None


def test_count_bytes_and_age_each_make_a_flush_due():
    assert held(1000).due(POLICY, 0.0) == "count"
    assert held(10, size=1000).due(POLICY, 0.0) == "bytes"
    assert held(3).due(POLICY, 0.99) is None
    assert held(3).due(POLICY, 1.0) == "age"


def test_the_end_of_a_burst_lands_without_waiting_for_the_age():
    burst = held(60)
    assert burst.due(POLICY, 0.05) is None  # still arriving, as far as we know
    assert burst.due(POLICY, 0.1) == "idle"


def test_a_trickle_waits_for_the_age_not_a_file_per_message():
    trickle = held(5)
    assert trickle.due(POLICY, 0.5) is None
    assert trickle.due(POLICY, 1.0) == "age"


def test_a_chunk_counts_its_messages_acks_and_receipts():
    h = Held()
    h.add_chunk({"batch": b"a\nb\n", "quarantine": b"q\n"}, {"batch": 2, "quarantine": 1}, 0.0,
                [(1, 1), None, (3, 1)], [("t", "d", "id1"), ("t", "d", "id2")])  # fmt: skip
    assert (h.messages, h.bytes, h.acks) == (3, 6, [(1, 1), (3, 1)])
    assert h.receipts == {("t", "d"): ["id1", "id2"]}
