"""Runs and iterations move only as the documented states allow, with timings and attempts."""

from __future__ import annotations

import dataclasses

import pytest

from edgebatch.errors import EdgebatchError
from edgebatch.framework.state import (
    AttemptState,
    IterationState,
    RunState,
    StateError,
    StateStore,
)


def _started_run(store: StateStore, partitions=("2024-01", "2024-02")):
    run = store.create_run("bronze_load", partitions=partitions, trigger="cli", triggered_by="ann")
    store.create_iterations(run.id, partitions)
    return store.claim_run(run.id, "host:1:abc", ttl=30)


def test_run_moves_through_its_life_and_stamps_times(store, clock):
    run = store.create_run("bronze_load", partitions=["p1"], trigger="api", triggered_by="bob")
    assert (run.state, run.started_at, run.ended_at) == (RunState.QUEUED, None, None)
    assert run.created_at == clock()
    started = clock.advance(5)
    run = store.transition_run(run.id, "running")
    assert run.state == RunState.RUNNING and run.started_at == started
    ended = clock.advance(7)
    run = store.transition_run(run.id, RunState.SUCCEEDED)
    assert run.state == "succeeded" and run.ended_at == ended and run.finished
    assert store.get_run(run.id) == run


@pytest.mark.parametrize("finished", ["succeeded", "failed", "cancelled"])
def test_finished_run_never_goes_back_to_running(store, finished):
    run = _started_run(store)
    store.transition_run(run.id, finished)
    with pytest.raises(StateError) as caught:
        store.transition_run(run.id, "running")
    message = str(caught.value)
    assert f"run {run.id}" in message and "'bronze_load'" in message
    assert f"is {finished}" in message and "cannot become running" in message
    assert "retry_of" in message
    assert isinstance(caught.value, EdgebatchError)


def test_skipped_is_for_queued_runs_only(store):
    queued = store.create_run("silver")
    assert store.transition_run(queued.id, "skipped", error="upstream failed").state == "skipped"
    running = _started_run(store)
    with pytest.raises(StateError, match="from running it may become cancelled, failed, succeeded"):
        store.transition_run(running.id, "skipped")


def test_unknown_state_names_the_accepted_ones(store):
    run = store.create_run("silver")
    with pytest.raises(StateError, match="unknown run state 'done'.*queued, running"):
        store.transition_run(run.id, "done")
    with pytest.raises(StateError, match="unknown iteration state 'skipped'"):
        store.list_iterations(run.id, state="skipped")


def test_missing_run_is_a_state_error(store):
    with pytest.raises(StateError, match="no run 999"):
        store.get_run(999)


def test_iteration_attempts_follow_its_moves(store, clock):
    run = _started_run(store)
    first = store.claim_iteration(run.id)
    assert (first.partition_key, first.state, first.attempts) == ("2024-01", "running", 1)
    began = first.started_at
    clock.advance(3)
    waiting = store.transition_iteration(first.id, "queued", error="executor lost")
    assert (waiting.state, waiting.error) == (IterationState.QUEUED, "executor lost")
    # The retry picks the same partition up again: it is still the oldest queued one.
    again = store.claim_iteration(run.id)
    assert (again.id, again.attempts, again.error, again.started_at) == (first.id, 2, None, began)
    done = store.transition_iteration(again.id, "succeeded", rows_in=10, rows_out=8)
    assert (done.rows_in, done.rows_out, done.ended_at) == (10, 8, clock())
    attempts = store.list_attempts(first.id)
    assert [(a.number, a.state, a.error) for a in attempts] == [
        (1, AttemptState.FAILED, "executor lost"),
        (2, AttemptState.SUCCEEDED, None),
    ]


def test_finished_iteration_never_runs_again(store):
    run = _started_run(store)
    it = store.claim_iteration(run.id)
    store.transition_iteration(it.id, "failed", error="boom")
    with pytest.raises(StateError) as caught:
        store.transition_iteration(it.id, "running")
    message = str(caught.value)
    assert f"iteration {it.id} (run {run.id}, partition '2024-01')" in message
    assert "is failed and cannot become running" in message


def test_claim_iteration_returns_none_when_all_are_taken(store):
    run = _started_run(store, partitions=("a",))
    assert store.claim_iteration(run.id).partition_key == "a"
    assert store.claim_iteration(run.id) is None


def test_progress_is_recorded_only_while_running(store):
    run = _started_run(store, partitions=("a",))
    it = store.claim_iteration(run.id)
    assert store.record_progress(it.id, stages_done=1, stages_total=3, tasks_done=7, tasks_total=20)
    got = store.get_iteration(it.id)
    assert (got.stages_done, got.stages_total, got.tasks_done, got.tasks_total) == (1, 3, 7, 20)
    store.transition_iteration(it.id, "succeeded")
    assert not store.record_progress(it.id, tasks_done=20)


def test_iterations_are_unique_per_partition_and_not_added_to_finished_runs(store):
    run = _started_run(store, partitions=("a",))
    with pytest.raises(StateError, match="already has iterations for partitions a"):
        store.create_iterations(run.id, ["a", "b"])
    with pytest.raises(StateError, match="given twice: b"):
        store.create_iterations(run.id, ["b", "b"])
    store.transition_run(run.id, "cancelled")
    with pytest.raises(StateError, match="finished run gets no new iterations"):
        store.create_iterations(run.id, ["c"])


def test_list_runs_filters_by_job_and_state_newest_first(store):
    a1 = store.create_run("a")
    b1 = store.create_run("b")
    a2 = store.create_run("a")
    store.transition_run(a2.id, "cancelled")
    assert [r.id for r in store.list_runs()] == [a2.id, b1.id, a1.id]
    assert [r.id for r in store.list_runs(job="a")] == [a2.id, a1.id]
    assert [r.id for r in store.list_runs(state="queued")] == [b1.id, a1.id]
    assert [r.id for r in store.list_runs(job="a", state=["cancelled"])] == [a2.id]
    assert [r.id for r in store.list_runs(limit=1, before_id=a2.id)] == [b1.id]


def test_records_are_plain_frozen_values(store):
    run = store.create_run("a", partitions=["x"], params={"full": True})
    assert dataclasses.fields(run)  # a dataclass (fields() refuses anything else)
    assert run.partitions == ("x",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(run, "state", RunState.RUNNING)  # noqa: B010 - a frozen field, on purpose


def test_retry_reruns_only_failed_and_unfinished_partitions(store):
    months = [f"2024-{m:02d}" for m in range(1, 6)]
    run = _started_run(store, partitions=months)
    outcomes = {"2024-01": "succeeded", "2024-02": "failed", "2024-03": "succeeded"}
    for _ in outcomes:
        it = store.claim_iteration(run.id)
        store.transition_iteration(it.id, outcomes[it.partition_key])
    store.claim_iteration(run.id)  # 2024-04 is left running, 2024-05 never starts
    store.transition_run(run.id, "failed", error="2 partitions failed")
    todo = store.failed_or_unfinished_partitions(run.id)
    assert todo == ["2024-02", "2024-04", "2024-05"]

    retry = store.create_run("bronze_load", partitions=todo, trigger="retry", retry_of=run.id)
    assert retry.retry_of == run.id
    store.create_iterations(retry.id, todo)
    store.claim_run(retry.id, "host:2:def")
    while (it := store.claim_iteration(retry.id)) is not None:
        store.transition_iteration(it.id, "succeeded")
    store.transition_run(retry.id, "succeeded")
    assert store.failed_or_unfinished_partitions(retry.id) == []
    assert store.succeeded_partitions("bronze_load") == months
    assert store.succeeded_partitions("other_job") == []


def test_asked_for_partitions_without_iterations_count_as_unfinished(store):
    run = store.create_run("a", partitions=["x", "y"])
    assert store.failed_or_unfinished_partitions(run.id) == ["x", "y"]


def test_retry_of_a_missing_run_is_refused(store):
    with pytest.raises(StateError, match="cannot retry run 42"):
        store.create_run("a", retry_of=42)


def test_logs_stream_by_cursor_and_filter_by_iteration(store, clock):
    run = _started_run(store, partitions=("a",))
    it = store.claim_iteration(run.id)
    first = store.append_log(run.id, "planning", logger="edgebatch.runner")
    store.append_log(run.id, "reading", level="debug", iteration_id=it.id)
    store.append_log(run.id, "wrote 8 rows", iteration_id=it.id)
    page = store.read_logs(run.id, limit=2)
    assert [(x.message, x.level) for x in page] == [("planning", "INFO"), ("reading", "DEBUG")]
    assert page[0].id == first and page[0].ts == clock() and page[0].logger == "edgebatch.runner"
    rest = store.read_logs(run.id, after_id=page[-1].id)
    assert [x.message for x in rest] == ["wrote 8 rows"]
    assert store.read_logs(run.id, after_id=rest[-1].id) == []
    assert [x.message for x in store.read_logs(run.id, iteration_id=it.id)] == [
        "reading",
        "wrote 8 rows",
    ]
    with pytest.raises(StateError, match="cannot log to run 999"):
        store.append_log(999, "lost")


def test_audit_records_who_did_what(store, clock):
    store.audit("ann", "trigger", "job:bronze_load", {"partitions": ["2024-01"]})
    clock.advance(1)
    store.audit("bob", "cancel", "run:1")
    newest = store.list_audit()
    assert [(e.principal, e.action, e.target) for e in newest] == [
        ("bob", "cancel", "run:1"),
        ("ann", "trigger", "job:bronze_load"),
    ]
    assert newest[1].detail == {"partitions": ["2024-01"]}
    assert [e.principal for e in store.list_audit(target="job:bronze_load")] == ["ann"]
    assert [e.action for e in store.list_audit(principal="bob")] == ["cancel"]


def test_job_definitions_are_upserted(store, clock):
    first = store.upsert_job("a", definition_hash="h1", pool="backfill", priority=1, tags=["x"])
    seen = clock.advance(60)
    again = store.upsert_job("a", definition_hash="h2", summary={"steps": 2}, pool="critical")
    assert again.first_seen_at == first.first_seen_at and again.last_seen_at == seen
    assert (again.definition_hash, again.pool, again.tags) == ("h2", "critical", ())
    assert store.list_jobs() == [again] and store.get_job("nope") is None


def test_a_second_request_with_the_same_run_key_returns_the_first_run(store):
    first = store.create_run("a", partitions=["x"], run_key="a:2026-01-01", priority=5)
    again = store.create_run("a", partitions=["y"], run_key="a:2026-01-01", priority=9)
    other = store.create_run("a", partitions=["x"], run_key="a:2026-01-02")
    assert again == first and (first.priority, first.run_key) == (5, "a:2026-01-01")
    assert other.id != first.id
    assert [r.id for r in store.list_runs(job="a")] == [other.id, first.id]
    assert store.run_by_key("a:2026-01-01") == first and store.run_by_key("nope") is None


def test_the_next_claimed_run_is_the_most_urgent_then_the_oldest(store):
    low = store.create_run("a")
    high = store.create_run("a", priority=90)
    high_later = store.create_run("a", priority=90)
    order = [store.claim_next_run("host:1:abc").id for _ in range(3)]
    assert order == [high.id, high_later.id, low.id]
