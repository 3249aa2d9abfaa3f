"""Leases and reaping: a run whose holder died is failed with the reason, never running forever.

Time moves by the fake clock only; nothing sleeps.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from edgebatch.framework.state import IterationState, LeaseError, RunState, StateStore

LIVE = "node-a:100:aaa"
OTHER = "node-b:200:bbb"


def _running(store: StateStore, partitions=("p1", "p2", "p3"), holder=LIVE, ttl=30):
    run = store.create_run("bronze_load", partitions=partitions)
    store.create_iterations(run.id, partitions)
    return store.claim_run(run.id, holder, ttl=ttl)


def test_a_live_lease_cannot_be_taken_by_another_holder(store, clock):
    run = _running(store)
    lease = store.get_lease(run.id)
    assert (lease.holder, lease.expires_at) == (LIVE, clock() + timedelta(seconds=30))
    with pytest.raises(LeaseError, match=f"leased to {LIVE} until .*{OTHER} cannot take it"):
        store.take_lease(run.id, OTHER, ttl=30)


def test_an_expired_lease_can_be_taken_over(store, clock):
    run = _running(store, ttl=10)
    clock.advance(11)
    lease = store.take_lease(run.id, OTHER, ttl=10)
    assert (lease.holder, lease.acquired_at) == (OTHER, clock())
    with pytest.raises(LeaseError, match=f"{LIVE} lost the lease of run {run.id}.*held by {OTHER}"):
        store.renew_lease(run.id, LIVE)


def test_renewing_moves_expiry_and_keeps_the_run_alive(store, clock):
    run = _running(store, ttl=10)
    for _ in range(5):
        clock.advance(8)
        store.renew_lease(run.id, LIVE, ttl=10)
        assert store.reap_orphans() == []
    assert store.get_run(run.id).state == RunState.RUNNING
    assert store.get_lease(run.id).heartbeat_at == clock()


def test_release_and_finish_give_the_lease_up(store):
    run = _running(store)
    assert not store.release_lease(run.id, OTHER)
    assert store.release_lease(run.id, LIVE)
    assert store.get_lease(run.id) is None
    store.take_lease(run.id, LIVE)
    store.transition_run(run.id, "succeeded")
    assert store.get_lease(run.id) is None
    with pytest.raises(LeaseError, match="it is succeeded"):
        store.take_lease(run.id, LIVE)


def test_reaping_fails_the_run_and_its_running_iterations_naming_the_holder(store, clock):
    run = _running(store, ttl=30)
    done = store.claim_iteration(run.id)
    store.transition_iteration(done.id, "succeeded")
    busy = store.claim_iteration(run.id)
    store.record_progress(busy.id, tasks_done=3, tasks_total=9)
    assert store.reap_orphans() == []

    now = clock.advance(31)
    reaped = store.reap_orphans()
    assert [(x.run_id, x.holder, x.iteration_ids) for x in reaped] == [(run.id, LIVE, (busy.id,))]
    assert LIVE in reaped[0].reason and "stopped renewing" in reaped[0].reason

    after = store.get_run(run.id)
    assert (after.state, after.ended_at, after.error) == (RunState.FAILED, now, reaped[0].reason)
    states = {it.partition_key: it.state for it in store.list_iterations(run.id)}
    assert states == {
        "p1": IterationState.SUCCEEDED,
        "p2": IterationState.FAILED,
        "p3": IterationState.QUEUED,
    }
    assert store.get_iteration(busy.id).error == reaped[0].reason
    assert [a.state for a in store.list_attempts(busy.id)] == ["failed"]
    assert store.get_lease(run.id) is None
    assert store.failed_or_unfinished_partitions(run.id) == ["p2", "p3"]
    # The reaping is visible in the run's log and the audit.
    assert LIVE in store.read_logs(run.id)[-1].message
    assert store.list_audit(target=f"run:{run.id}")[0].action == "reap"
    # The holder, if it was only slow, learns it lost the run and must stop.
    with pytest.raises(LeaseError, match="run is failed: orphaned"):
        store.renew_lease(run.id, LIVE)
    # A second look finds nothing more to do.
    assert store.reap_orphans() == []


def test_a_running_run_without_any_lease_is_reaped_after_the_grace(store, clock):
    run = store.create_run("a")
    store.transition_run(run.id, "running")
    clock.advance(30)
    assert store.reap_orphans(unleased_grace=60) == []
    later = clock.advance(31)
    reaped = store.reap_orphans(later, unleased_grace=60)
    assert [(x.run_id, x.holder) for x in reaped] == [(run.id, None)]
    assert "no lease holder" in store.get_run(run.id).error


def test_reap_orphans_takes_an_explicit_now(store, clock):
    run = _running(store, ttl=30)
    assert store.reap_orphans(clock().replace(year=2025)) == []
    assert [x.run_id for x in store.reap_orphans(clock().replace(year=2027))] == [run.id]


def test_finished_runs_are_never_reaped_and_queued_ones_not_within_their_ttl(store, clock):
    queued = store.create_run("a")
    finished = _running(store, ttl=5)
    store.transition_run(finished.id, "succeeded")
    clock.advance(3600)
    assert store.reap_orphans(queued_ttl=7200) == []
    assert store.get_run(queued.id).state == "queued"
    assert store.get_run(finished.id).state == "succeeded"


def test_a_queued_run_no_process_claims_within_its_ttl_is_reaped(store, clock):
    orphan = store.create_run("a", triggered_by="ann", trigger="submit")
    clock.advance(60)
    young = store.create_run("a")
    clock.advance(60)
    assert store.reap_orphans(queued_ttl=90) and store.get_run(young.id).state == "queued"
    failed = store.get_run(orphan.id)
    assert failed.state == "failed"
    assert "queued since" in failed.error and "claimed by no process within 90 s" in failed.error
    assert "ann by submit" in failed.error
    assert store.list_audit(target=f"run:{orphan.id}")[0].action == "reap"


def test_a_queued_run_leased_by_its_creator_lives_while_the_creator_renews(store, clock):
    run = store.create_run("a")
    store.take_lease(run.id, LIVE, ttl=30)
    for _ in range(4):
        clock.advance(20)
        store.renew_lease(run.id, LIVE, ttl=30)
        assert store.reap_orphans(queued_ttl=10) == []
    clock.advance(31)  # the creator died
    (reaped,) = store.reap_orphans(queued_ttl=10)
    assert (reaped.run_id, reaped.holder) == (run.id, LIVE)
    assert "queued and its lease holder" in store.get_run(run.id).error
