"""Several processes on one store: no log line lost or reordered, nothing claimed twice.

Workers are forked processes, each with its own StateStore (own connections),
started together behind a barrier; the parent follows the log meanwhile the
way `edgebatch logs --follow` does, and must see every line exactly once.
"""

from __future__ import annotations

import multiprocessing
import time

from edgebatch.framework.state import NewLogLine, StateStore

WORKERS = 4
LINES_PER_WORKER = 60
ITERATIONS = 40
QUEUED_RUNS = 12


def _worker(url: str, n: int, log_run: int, work_run: int, barrier, results) -> None:
    claimed_iterations: list[int] = []
    claimed_runs: list[int] = []
    with StateStore(url) as store:
        barrier.wait()
        for batch in range(LINES_PER_WORKER // 3):
            lines = [NewLogLine(f"w{n} line {batch * 3 + i}") for i in range(3)]
            store.append_logs(log_run, lines)
            if (it := store.claim_iteration(work_run)) is not None:
                claimed_iterations.append(it.id)
                store.transition_iteration(it.id, "succeeded")
            if (run := store.claim_next_run(f"w{n}", job="queue")) is not None:
                claimed_runs.append(run.id)
        while (it := store.claim_iteration(work_run)) is not None:
            claimed_iterations.append(it.id)
            store.transition_iteration(it.id, "succeeded")
        while (run := store.claim_next_run(f"w{n}", job="queue")) is not None:
            claimed_runs.append(run.id)
    results.put((n, claimed_iterations, claimed_runs))


def test_concurrent_writers_lose_nothing_and_never_double_claim(store, empty_url):
    log_run = store.create_run("logs")
    work_run = store.create_run("work", partitions=[f"p{i:02d}" for i in range(ITERATIONS)])
    store.create_iterations(work_run.id, work_run.partitions)
    store.transition_run(work_run.id, "running")
    queued = [store.create_run("queue").id for _ in range(QUEUED_RUNS)]

    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(WORKERS + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(empty_url, n, log_run.id, work_run.id, barrier, results))
        for n in range(WORKERS)
    ]
    for p in procs:
        p.start()
    barrier.wait()

    # Follow the log while the workers write, as a streaming reader would.
    seen: list[tuple[int, str]] = []
    cursor = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        alive = any(p.is_alive() for p in procs)
        page = store.read_logs(log_run.id, after_id=cursor, limit=50)
        seen.extend((x.id, x.message) for x in page)
        cursor = page[-1].id if page else cursor
        if not alive and not page:
            break
        if not page:
            time.sleep(0.01)
    for p in procs:
        p.join(10)
    assert [p.exitcode for p in procs] == [0] * WORKERS
    outcome = sorted(results.get(timeout=5) for _ in procs)

    expected = {f"w{n} line {i}" for n in range(WORKERS) for i in range(LINES_PER_WORKER)}
    messages = [m for _, m in seen]
    assert len(messages) == len(expected) == len(set(messages)) and set(messages) == expected
    # Each worker's lines arrive in the order it wrote them.
    for n in range(WORKERS):
        own = [int(m.rsplit(" ", 1)[1]) for m in messages if m.startswith(f"w{n} ")]
        assert own == sorted(own)

    iterations = [i for _, its, _ in outcome for i in its]
    assert len(iterations) == len(set(iterations)) == ITERATIONS
    assert {i.state for i in store.list_iterations(work_run.id)} == {"succeeded"}
    assert all(i.attempts == 1 for i in store.list_iterations(work_run.id))
    runs = [r for _, _, rs in outcome for r in rs]
    assert sorted(runs) == queued
    owner = {r: f"w{n}" for n, _, rs in outcome for r in rs}
    for run in store.list_runs(job="queue"):
        assert run.state == "running" and store.get_lease(run.id).holder == owner[run.id]
