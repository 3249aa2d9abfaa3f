"""Queues and workers in the store: claims by queue, heartbeats, lost workers, requeues.

Every test runs on SQLite and PostgreSQL (see conftest); time moves by the fake clock.
"""

from __future__ import annotations

import multiprocessing

import pytest

from edgebatch.framework.state import (
    IterationState,
    LeaseError,
    RunState,
    StateError,
    StateStore,
    WorkerState,
)

W1 = "node-a:100:aaa"
W2 = "node-b:200:bbb"


def test_a_claim_takes_the_most_urgent_then_oldest_run_of_the_given_queues_only(store, clock):
    old_default = store.create_run("a", queue="default")
    clock.advance(1)
    urgent_critical = store.create_run("a", queue="critical", priority=50)
    clock.advance(1)
    urgent_backfill = store.create_run("a", queue="backfill", priority=99)
    clock.advance(1)
    new_default = store.create_run("a", queue="default")
    clock.advance(1)
    urgent_default = store.create_run("a", queue="default", priority=50)

    order = []
    while (run := store.claim_next_run(W1, queues=["critical", "default"])) is not None:
        order.append(run.id)
    # Equal priority across queues: the older run first, whichever queue it is in.
    assert order == [urgent_critical.id, urgent_default.id, old_default.id, new_default.id]
    assert store.get_run(urgent_backfill.id).state == RunState.QUEUED
    assert store.claim_next_run(W1, queues=[]) is None
    assert store.claim_next_run(W1).id == urgent_backfill.id  # no queues given: any queue


def test_runs_are_created_in_a_queue_and_default_to_default(store):
    assert store.create_run("a").queue == "default"
    run = store.create_run("a", queue="critical")
    assert store.get_run(run.id).queue == "critical"


def _claimer(url: str, n: int, barrier, results) -> None:
    with StateStore(url) as store:
        barrier.wait()
        got = []
        while (run := store.claim_next_run(f"w{n}", queues=["q1", "q2"])) is not None:
            got.append(run.id)
    results.put(got)


def test_two_processes_claiming_one_queue_never_take_the_same_run(store, empty_url):
    queued = [store.create_run("a", queue="q1" if i % 2 else "q2").id for i in range(30)]
    other = store.create_run("a", queue="elsewhere")
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(empty_url, n, barrier, results)) for n in (1, 2)]
    for p in procs:
        p.start()
    got = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    assert [p.exitcode for p in procs] == [0, 0]
    claimed = got[0] + got[1]
    assert len(claimed) == len(set(claimed)) and sorted(claimed) == queued
    assert store.get_run(other.id).state == RunState.QUEUED


def test_a_worker_registers_beats_and_stops(store, clock):
    w = store.register_worker(W1, queues=["critical", "default", "critical"], pid=100, host="a")
    assert (w.state, w.queues, w.pid, w.host) == (
        WorkerState.RUNNING,
        ("critical", "default"),
        100,
        "a",
    )
    clock.advance(5)
    health = {"cpu_percent": 12.5, "running_iterations": 2, "executors": 3}
    beat = store.heartbeat_worker(W1, health)
    assert beat.heartbeat_at == clock() and beat.health == health and beat.started_at < clock()
    clock.advance(1)
    store.register_worker(W2, queues=["default"])
    assert [w.worker_id for w in store.list_workers()] == [W2, W1]
    stopped = store.stop_worker(W1)
    assert (stopped.state, stopped.stopped_at) == (WorkerState.STOPPED, clock())
    assert [w.worker_id for w in store.list_workers(state="running")] == [W2]
    with pytest.raises(StateError, match="has stopped"):
        store.heartbeat_worker(W1)
    with pytest.raises(StateError, match="no worker 'nobody'"):
        store.heartbeat_worker("nobody")


def test_a_worker_silent_longer_than_the_ttl_is_lost_and_back_when_it_beats(store, clock):
    store.register_worker(W1, queues=["default"])
    store.register_worker(W2, queues=["default"])
    clock.advance(20)
    store.heartbeat_worker(W2)
    clock.advance(15)
    lost = store.mark_lost_workers(ttl=30)
    assert [w.worker_id for w in lost] == [W1] and lost[0].state == WorkerState.LOST
    assert store.mark_lost_workers(ttl=30) == []
    assert store.heartbeat_worker(W1).state == WorkerState.RUNNING


def _claimed_by_worker(store: StateStore, holder: str, partitions=("p1", "p2", "p3")):
    run = store.create_run("load", partitions=partitions, queue="critical", priority=7)
    its = store.create_iterations(run.id, partitions)
    claimed = store.claim_next_run(holder, queues=["critical"], ttl=10)
    assert claimed is not None and claimed.id == run.id
    return run, its


def test_a_dead_workers_run_is_reaped_and_requeued_with_its_unfinished_partitions(store, clock):
    store.register_worker(W1, queues=["critical"])
    run, its = _claimed_by_worker(store, W1)
    store.transition_iteration(its[0].id, IterationState.RUNNING)
    store.transition_iteration(its[0].id, IterationState.SUCCEEDED)
    store.transition_iteration(its[1].id, IterationState.RUNNING)
    clock.advance(11)

    (reaped,) = store.reap_orphans()
    assert reaped.run_id == run.id and reaped.requeued_as is not None
    assert store.get_run(run.id).state == RunState.FAILED
    again = store.get_run(reaped.requeued_as)
    assert (again.state, again.queue, again.priority, again.retry_of) == (
        RunState.QUEUED,
        "critical",
        7,
        run.id,
    )
    assert again.partitions == ("p2", "p3") and again.run_key == f"requeue:{run.id}"
    assert "requeued on queue critical as run" in store.read_logs(run.id)[-1].message
    assert store.reap_orphans() == []
    # Another worker takes it up.
    assert store.claim_next_run(W2, queues=["critical"]).id == again.id


def test_a_run_of_a_process_that_is_no_worker_is_reaped_but_not_requeued(store, clock):
    run, _ = _claimed_by_worker(store, "cli:1:xyz")
    clock.advance(11)
    (reaped,) = store.reap_orphans()
    assert reaped.requeued_as is None
    assert [r.id for r in store.list_runs(job="load")] == [run.id]


def test_a_run_whose_workers_keep_dying_is_requeued_only_so_often(store, clock):
    store.register_worker(W1, queues=["critical"])
    run, _ = _claimed_by_worker(store, W1)
    chain = [run.id]
    for _ in range(3):
        clock.advance(11)
        (reaped,) = store.reap_orphans(max_requeues=2)
        if reaped.requeued_as is None:
            break
        chain.append(reaped.requeued_as)
        store.claim_next_run(W1, queues=["critical"], ttl=10)
    assert len(chain) == 3  # the run and two requeues; the third death leaves it failed
    assert "requeued 2 time(s) in a row" in store.read_logs(chain[-1])[-1].message
    assert store.list_runs(job="load", state="queued") == []


def test_a_stopping_worker_releases_a_run_back_to_its_queue(store, clock):
    store.register_worker(W1, queues=["critical"])
    run, its = _claimed_by_worker(store, W1)
    store.transition_iteration(its[0].id, IterationState.RUNNING)
    with pytest.raises(LeaseError, match=f"worker {W2} cannot release run {run.id}"):
        store.release_run(run.id, W2, reason="stopping")
    again = store.release_run(run.id, W1, reason="stopping")
    assert again is not None and again.partitions == ("p1", "p2", "p3")
    failed = store.get_run(run.id)
    assert failed.state == RunState.FAILED and "released by worker" in (failed.error or "")
    assert store.get_iteration(its[0].id).state == IterationState.FAILED
    assert store.get_lease(run.id) is None


def test_a_run_waiting_in_a_queue_a_live_worker_serves_is_not_an_orphan(store, clock):
    served = store.create_run("a", queue="critical")
    unserved = store.create_run("a", queue="backfill")
    store.register_worker(W1, queues=["critical", "default"])
    clock.advance(3600)
    store.heartbeat_worker(W1)
    assert store.served_queues() == {"critical", "default"}
    assert [x.run_id for x in store.reap_orphans(queued_ttl=900)] == [unserved.id]
    assert store.get_run(served.id).state == RunState.QUEUED
    store.stop_worker(W1)
    assert [x.run_id for x in store.reap_orphans(queued_ttl=900)] == [served.id]
