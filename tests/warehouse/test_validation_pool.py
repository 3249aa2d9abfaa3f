"""Validation worker processes: results come back in arrival order, and a worker killed
with chunks in hand loses none of them."""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from edgebatch.warehouse.collector.validation import CheckedChunk, check, check_chunk
from edgebatch.warehouse.collector.workers import Chunk, ValidationPool
from tests.warehouse.helpers import batch

TOPIC = "edgebatch/acme/dev-{}/batch"


def chunks(n: int, size: int) -> list[Chunk]:
    out: list[Chunk] = []
    for c in range(n):
        chunk: Chunk = []
        for i in range(size):
            device = f"{c}"
            payload = batch("acme", f"dev-{device}", i)[1] if i % 10 else b"{not json"
            chunk.append((TOPIC.format(device), payload, 1_767_225_600.0 + i))
        out.append(chunk)
    return out


def drain(
    pool: ValidationPool, expected: int, on_first: Callable[[], object] = lambda: None
) -> list[tuple[int, CheckedChunk]]:
    released: list[tuple[int, CheckedChunk]] = []
    deadline = time.monotonic() + 60
    while len(released) < expected and time.monotonic() < deadline:
        got = pool.ready(wait_s=0.2)
        if got and not released:
            on_first()
        released.extend(got)
    return released


def run_pool(
    workers: int,
    work: list[Chunk],
    on_first: Callable[[ValidationPool], object] = lambda pool: None,
) -> tuple[list[tuple[int, CheckedChunk]], ValidationPool]:
    """Submit every chunk, take all results back, close the pool."""
    pool = ValidationPool(workers, "pool-test")
    try:
        for chunk in work:
            pool.submit(chunk)
        return drain(pool, len(work), lambda: on_first(pool)), pool
    finally:
        pool.close()


def test_results_come_back_in_order_and_equal_checking_in_thread():
    work = chunks(12, 50)
    released, pool = run_pool(2, work)
    assert [seq for seq, _ in released] == list(range(len(work)))
    for (_, results), chunk in zip(released, work, strict=True):
        assert results == check_chunk(chunk, "pool-test")
        kinds = [check(t, p, at, "pool-test").kind for t, p, at in chunk]
        assert results.counts == {k: kinds.count(k) for k in set(kinds)}
    assert pool.pending == 0


def test_a_worker_killed_with_chunks_in_hand_loses_none():
    work = chunks(30, 200)

    def kill_worker(pool: ValidationPool) -> None:
        pid = pool._procs[0].pid
        assert pid is not None, "the worker has not started"
        os.kill(pid, signal.SIGKILL)

    released, pool = run_pool(1, work, on_first=kill_worker)
    restarts = pool.restarts
    assert restarts >= 1
    assert [seq for seq, _ in released] == list(range(len(work)))
    assert sum(sum(r.counts.values()) for _, r in released) == 30 * 200
    assert sum(r.quarantined for _, r in released) == 30 * 20


POISON = b'{"v": 1, "poison": true}'


def crash_on_poison(chunk: Chunk, collector: str) -> CheckedChunk:
    """The real checker, except that one payload kills the process outright, as a crash in
    C code would (a refusal is no crash: `check` quarantines those)."""
    if any(payload == POISON for _, payload, _ in chunk):
        os.kill(os.getpid(), signal.SIGSEGV)
    return check_chunk(chunk, collector)


def test_a_message_that_crashes_the_checker_is_quarantined_and_the_rest_checked(monkeypatch):
    # Spawned workers import the checker by its module and take the parent's sys.path.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    work = chunks(6, 40)
    work[2][17] = (TOPIC.format("2"), POISON, 1_767_225_617.0)
    pool = ValidationPool(1, "pool-test", checker=crash_on_poison)
    try:
        for chunk in work:
            pool.submit(chunk)
        released = drain(pool, len(work))
    finally:
        pool.close()
    assert [seq for seq, _ in released] == list(range(len(work)))
    assert pool.restarts == 4  # twice on the whole chunk, twice on the message alone
    for seq, results in released:
        if seq != 2:
            assert results == check_chunk(work[seq], "pool-test")
    poisoned = released[2][1]
    innocent = work[2][:17] + work[2][18:]
    expected = check_chunk(innocent, "pool-test")
    assert poisoned.receipts == expected.receipts
    assert poisoned.counts["batch"] == expected.counts["batch"]
    assert poisoned.quarantined == expected.quarantined + 1
    lines = [json.loads(x) for x in poisoned.lines["quarantine"].splitlines()]
    crashed = [x for x in lines if "crashed" in x["reason"]]
    assert len(crashed) == 1 and base64.b64decode(crashed[0]["payload_b64"]) == POISON
    assert crashed[0]["topic"] == TOPIC.format("2")
