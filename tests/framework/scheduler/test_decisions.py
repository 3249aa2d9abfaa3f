"""Held runs: they wait for upstream runs, windows, preconditions and limits, with the reason
in their log; they are skipped when an upstream run failed; a low priority ages."""

from __future__ import annotations

import datetime as dt

from edgebatch.framework.partitions import Daily
from edgebatch.framework.requests import RunRequest
from edgebatch.framework.scheduler import MinRows, Schedule, TableFresh, Window
from edgebatch.framework.scheduler.enqueue import enqueue
from edgebatch.framework.scheduler.gates import Facts
from edgebatch.framework.state import RunState, StateStore
from tests.framework.scheduler.conftest import ManualClock, make_job

DAILY = Daily(column="date")


def messages(store: StateStore, run_id: int) -> list[str]:
    return [line.message for line in store.read_logs(run_id)]


def ask(store: StateStore, job, *partitions: str, key: str | None = None, priority=None):
    request = RunRequest(job.name, partitions=partitions, run_key=key, priority=priority)
    return enqueue(store, job, request, why="test", hold=True).run


def test_a_run_waits_for_its_upstream_run_over_the_same_partitions_then_starts(
    scheduler_for, store
):
    up = make_job("up", partitions=DAILY)
    down = make_job("down", partitions=DAILY, upstream=["up"])
    scheduler = scheduler_for(up, down)
    up_run = ask(store, up, "2026-01-01", "2026-01-02")
    other_day = ask(store, up, "2026-01-05")
    down_run = ask(store, down, "2026-01-02")
    scheduler.step()
    assert store.claim_next_run("w", job="down") is None
    assert store.get_wait(down_run.id).reason == (
        f"upstream: run {up_run.id} of upstream job up for partition 2026-01-02 is queued"
    )
    store.transition_run(up_run.id, "running")
    store.transition_run(up_run.id, "succeeded")
    scheduler.step()
    assert store.claim_next_run("w", job="down").id == down_run.id
    log = messages(store, down_run.id)
    assert any(m.startswith("waiting: upstream: run") for m in log)
    assert any(m.startswith("released to the workers") for m in log)
    assert store.get_run(other_day.id).state is RunState.QUEUED  # not ours to decide


def test_a_failed_upstream_run_skips_the_downstream_run_with_the_reason(scheduler_for, store):
    up = make_job("up", partitions=DAILY)
    mid = make_job("mid", partitions=DAILY, upstream=["up"])
    down = make_job("down", partitions=DAILY, upstream=["mid"])
    scheduler = scheduler_for(up, mid, down)
    ask(store, up, "2026-01-01")
    mid_run = ask(store, mid, "2026-01-01")
    down_run = ask(store, down, "2026-01-01")
    scheduler.step()  # up released; mid waits for up; down waits for mid
    up_run = store.claim_next_run("w", job="up")
    store.transition_run(up_run.id, "succeeded")
    scheduler.step()
    mid_claimed = store.claim_next_run("w", job="mid")
    assert mid_claimed.id == mid_run.id
    store.transition_run(mid_run.id, "failed", error="division by zero")
    report = scheduler.step()
    assert report.skipped == [down_run.id]
    down_after = store.get_run(down_run.id)
    assert down_after.state is RunState.SKIPPED
    assert down_after.error == (
        f"skipped: upstream job mid run {mid_run.id} for partition 2026-01-01 failed: "
        "division by zero"
    )
    assert down_after.error in messages(store, down_run.id)


def test_an_upstream_run_retried_after_failing_is_judged_by_its_retry(scheduler_for, store):
    up = make_job("up", partitions=DAILY)
    down = make_job("down", partitions=DAILY, upstream=["up"])
    scheduler = scheduler_for(up, down)
    up_run = ask(store, up, "2026-01-01")
    down_run = ask(store, down, "2026-01-01")
    scheduler.step()
    store.claim_next_run("w", job="up")
    store.transition_run(up_run.id, "failed", error="its worker died")
    retry = store.create_run("up", partitions=["2026-01-01"], retry_of=up_run.id)
    scheduler.step()
    assert store.get_run(down_run.id).state is RunState.QUEUED
    assert store.get_wait(down_run.id).reason == (
        f"upstream: run {retry.id} of upstream job up for partition 2026-01-01 is queued"
    )
    store.transition_run(retry.id, "running")
    store.transition_run(retry.id, "succeeded")
    assert scheduler.step().released == [down_run.id]


def test_outside_its_window_a_run_waits_and_says_so(scheduler_for, store, clock: ManualClock):
    night = make_job("night", schedule=Schedule(window=Window("22:00", "06:00", tz="Europe/Paris")))
    scheduler = scheduler_for(night)
    run = ask(store, night)
    scheduler.step()  # 12:00 UTC, 13:00 in Paris
    scheduler.step()
    log = messages(store, run.id)
    assert log.count("waiting: outside its batch window 22:00-06:00 Europe/Paris") == 1
    clock.current = dt.datetime(2026, 1, 1, 21, 30, tzinfo=dt.UTC)  # 22:30 in Paris
    scheduler.step()
    assert store.claim_next_run("w").id == run.id


def test_preconditions_hold_a_run_then_fail_it_after_its_deadline(scheduler_for, store, clock):
    checked = make_job(
        "checked",
        schedule=Schedule(
            preconditions=[
                MinRows("bronze/edge_batches", 100),
                TableFresh("bronze/edge_batches", 600),
            ],
            precondition_deadline_s=3600,
        ),
    )
    facts = {"rows": 10, "written": clock.now() - dt.timedelta(hours=2)}
    scheduler = scheduler_for(
        checked,
        facts=Facts(
            loaded=lambda job: set(),
            last_write=lambda table: facts["written"],
            rows=lambda table: facts["rows"],
        ),
    )
    first = ask(store, checked, key="a")
    second = ask(store, checked, key="b")
    scheduler.step()
    assert store.get_wait(first.id).reason == (
        "preconditions: table bronze/edge_batches has 10 rows (floor 100); "
        "table bronze/edge_batches last written 7200 s ago (limit 600 s)"
    )
    facts.update(rows=500, written=clock.now())
    clock.advance(30)
    scheduler.step()
    assert store.get_wait(first.id) is None and store.get_wait(second.id) is None
    third = ask(store, checked, key="c")
    facts.update(rows=0)
    clock.advance(3601)
    report = scheduler.step()
    assert report.failed == [third.id]
    assert store.get_run(third.id).error.startswith("failed: preconditions not met within 3600 s")


def test_limits_hold_runs_and_a_waiting_low_priority_ages_past_new_urgent_ones(
    scheduler_for, store, clock
):
    busy = make_job("busy", schedule=Schedule(max_running=1))
    scheduler = scheduler_for(busy)
    low = ask(store, busy, key="low", priority=0)
    clock.advance(1)
    first = ask(store, busy, key="urgent-0", priority=10)
    scheduler.step()
    assert store.get_wait(low.id).reason == "limit: job busy has 1 run(s) going (max_running 1)"
    # New urgent runs keep coming; each time one finishes, the next is released.
    released = [first.id]
    for i in range(1, 15):
        clock.advance(60)
        ask(store, busy, key=f"urgent-{i}", priority=10)
        run = store.claim_next_run("w")
        store.transition_run(run.id, "succeeded")
        report = scheduler.step()
        released += report.released
        if low.id in report.released:
            break
    assert low.id in released, "the low-priority run starved"
    # Priority 0 + 1 per minute passes 10 after about ten minutes of waiting.
    assert 9 <= released.index(low.id) <= 12


def test_an_overall_limit_counts_every_job(scheduler_for, store, settings):
    import dataclasses

    from edgebatch.framework.registry import JobRegistry
    from edgebatch.framework.scheduler.loop import Scheduler

    a, b = (
        make_job("a", schedule=Schedule(max_running=5)),
        make_job("b", schedule=Schedule(max_running=5)),
    )
    limited = dataclasses.replace(
        settings, scheduler=dataclasses.replace(settings.scheduler, max_running=2)
    )
    scheduler = Scheduler(store, JobRegistry([a, b]).check(), limited, holder="s")
    for i in range(3):
        ask(store, a, key=f"a{i}")
        ask(store, b, key=f"b{i}")
    report = scheduler.step()
    assert len(report.released) == 2 and len(report.waiting) == 4
    # Under an overall limit even a job with no gates of its own is held for the scheduler.
    free = make_job("free")
    made = enqueue(store, free, RunRequest("free"), why="test", limits=limited.scheduler)
    assert made.held and not enqueue(store, free, RunRequest("free"), why="test").held


def test_a_queue_limit_holds_runs_of_that_queue_only(scheduler_for, store, settings):
    import dataclasses

    from edgebatch.framework.registry import JobRegistry
    from edgebatch.framework.scheduler.loop import Scheduler

    cfg = dataclasses.replace(settings.scheduler, max_running_per_queue={"backfill": 1})
    back = make_job("back", queue="backfill", upstream=[], schedule=Schedule(max_running=9))
    crit = make_job("crit", queue="critical", schedule=Schedule(max_running=9))
    scheduler = Scheduler(
        store, JobRegistry([back, crit]).check(), dataclasses.replace(settings, scheduler=cfg)
    )
    held = [ask(store, back, key=f"b{i}") for i in range(3)] + [
        ask(store, crit, key=f"c{i}") for i in range(3)
    ]
    report = scheduler.step()
    assert len(report.released) == 4
    assert store.get_wait(held[1].id).reason == (
        "limit: queue backfill has 1 run(s) going (max_running_per_queue 1)"
    )


def test_a_run_that_needs_free_executors_waits_for_workers_with_room(scheduler_for, store, clock):
    from edgebatch.framework.scheduler import FreeExecutors

    spare = make_job("spare", schedule=Schedule(free_executors=FreeExecutors(min_free=2)))
    scheduler = scheduler_for(spare)
    run = ask(store, spare)
    scheduler.step()
    assert "no live worker reports its room" in store.get_wait(run.id).reason
    store.register_worker("w1", queues=["default"], health={"slots": 2, "running_runs": 1})
    store.register_worker("w2", queues=["default"], health={"free_cores": 0})
    scheduler.step()
    assert store.get_wait(run.id).reason.endswith("live workers report room for 1")
    store.heartbeat_worker("w2", {"free_cores": 4})
    clock.advance(60)  # w1 falls silent: only w2's report counts now
    store.heartbeat_worker("w2", {"free_cores": 4})
    scheduler.step()
    assert store.get_wait(run.id) is None


def test_a_held_run_is_waiting_on_purpose_so_the_reaper_leaves_it(scheduler_for, store, clock):
    night = make_job("night", schedule=Schedule(window=Window("22:00", "06:00")))
    scheduler = scheduler_for(night)
    run = ask(store, night)
    scheduler.step()
    clock.advance(3 * 3600)  # far past the 15 min a queued run may go unclaimed
    assert store.reap_orphans() == []
    assert store.get_run(run.id).state is RunState.QUEUED


def test_a_held_run_cancelled_drops_its_hold(scheduler_for, store):
    night = make_job("night", schedule=Schedule(window=Window("22:00", "06:00")))
    scheduler = scheduler_for(night)
    run = ask(store, night)
    scheduler.step()
    store.transition_run(run.id, "cancelled", error="not tonight")
    report = scheduler.step()
    assert store.get_wait(run.id) is None and report.waiting == []
    assert store.get_run(run.id).state is RunState.CANCELLED
