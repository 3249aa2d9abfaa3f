"""Triggers become runs with a run key each: cron with catch-up, landing files, uploads,
new table versions, upstream successes with the partitions they wrote, manual requests."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from edgebatch.framework.partitions import Daily
from edgebatch.framework.requests import RunRequest
from edgebatch.framework.scheduler import (
    AfterUpstream,
    Cron,
    LandingBacklog,
    Schedule,
    TableVersion,
    Upload,
)
from edgebatch.framework.scheduler.enqueue import enqueue
from edgebatch.framework.state import RunState, StateStore
from tests.framework.scheduler.conftest import ManualClock, make_job


def keys(store: StateStore, job: str) -> list[str]:
    return sorted(r.run_key or "" for r in store.list_runs(job=job, limit=1000))


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [
        ("all", [f"ticker@2026-01-01T12:{m:02d}:00Z" for m in range(1, 11)]),
        ("once", ["ticker@2026-01-01T12:10:00Z"]),
        ("skip", ["ticker@2026-01-01T12:10:00Z"]),
    ],
)
def test_ticks_missed_while_no_scheduler_ran_follow_the_catch_up_policy(
    scheduler_for, store, clock: ManualClock, catch_up, expected
):
    job = make_job("ticker", schedule=Schedule(triggers=[Cron("* * * * *", catch_up=catch_up)]))
    scheduler_for(job).step()  # first look: remembers now, fires nothing
    assert keys(store, "ticker") == []
    clock.advance(10 * 60 + 30)  # ten ticks pass with no scheduler; the last is 30 s old
    scheduler_for(job).step()
    assert keys(store, "ticker") == expected
    if catch_up != "all":
        run = store.list_runs(job="ticker")[0]
        assert any("9 missed tick(s) not run" in line.message for line in store.read_logs(run.id))


def test_a_skip_policy_drops_the_newest_tick_too_when_it_is_older_than_the_grace(
    scheduler_for, store, clock
):
    job = make_job(
        "ticker", schedule=Schedule(triggers=[Cron("* * * * *", catch_up="skip", grace_s=10)])
    )
    scheduler_for(job).step()
    clock.advance(5 * 60 + 30)
    scheduler_for(job).step()
    assert keys(store, "ticker") == []
    clock.advance(60)
    scheduler_for(job).step()
    assert keys(store, "ticker") == []  # 12:06 is 30 s old: beyond 10 s
    clock.advance(35)  # 12:07:05
    scheduler_for(job).step()
    assert keys(store, "ticker") == ["ticker@2026-01-01T12:07:00Z"]


def test_cron_ticks_in_a_time_zone_fire_at_local_time(scheduler_for, store, clock):
    job = make_job(
        "paris", schedule=Schedule(triggers=[Cron("0 14 * * *", tz="Europe/Paris", catch_up="all")])
    )
    scheduler_for(job).step()
    clock.advance(3600)  # 13:00 UTC is 14:00 in Paris in January
    scheduler_for(job).step()
    assert keys(store, "paris") == ["paris@2026-01-01T13:00:00Z"]


def test_a_tick_evaluated_again_after_a_crash_starts_no_second_run(scheduler_for, store, clock):
    job = make_job("ticker", schedule=Schedule(triggers=[Cron("* * * * *", catch_up="all")]))
    scheduler_for(job).step()
    cursor = store.get_cursor("ticker", job.schedule.triggers[0].key)
    clock.advance(180)
    scheduler_for(job).step()
    # A scheduler that died after enqueueing, before storing its cursor: the next one
    # evaluates the same ticks again.
    store.set_cursor("ticker", job.schedule.triggers[0].key, cursor)
    report = scheduler_for(job, holder="test-scheduler").step()
    assert report.enqueued == []
    assert len(keys(store, "ticker")) == 3


def test_each_uploaded_file_starts_exactly_one_run_with_its_uri(scheduler_for, store, home: Path):
    job = make_job("importer", schedule=Schedule(triggers=[Upload()]))
    folder = home / "warehouse" / "landing" / "uploads" / "importer"
    folder.mkdir(parents=True)
    (folder / "prices.csv").write_text("a,b\n")
    (folder / ".partial.csv").write_text("x")  # still being written: not yet
    scheduler = scheduler_for(job)
    scheduler.step()
    (folder / "more.csv").write_text("c\n")
    scheduler.step()
    scheduler.step()
    runs = store.list_runs(job="importer")
    assert sorted(r.run_key or "" for r in runs) == [
        "importer@upload:more.csv",
        "importer@upload:prices.csv",
    ]
    by_key = {r.run_key: r for r in runs}
    assert by_key["importer@upload:prices.csv"].params["upload"] == (folder / "prices.csv").as_uri()
    assert all(r.trigger == "event" for r in runs)


def test_an_uploaded_file_with_a_very_long_name_still_gets_one_run(scheduler_for, store, home):
    job = make_job("importer", schedule=Schedule(triggers=[Upload()]))
    folder = home / "warehouse" / "landing" / "uploads" / "importer" / ("d" * 200)
    folder.mkdir(parents=True)
    (folder / ("f" * 200)).write_text("x")
    scheduler = scheduler_for(job)
    scheduler.step()
    scheduler.step()
    (run,) = store.list_runs(job="importer")
    assert run.run_key is not None and run.run_key.startswith("importer@upload:sha256:")
    assert run.params["upload"].endswith("f" * 200)


def test_landing_files_start_the_load_once_their_backlog_is_big_or_old_enough(
    scheduler_for, store, settings, clock
):
    from edgebatch.warehouse.landing import open_zone
    from edgebatch.warehouse.uri import WarehouseRoot

    zone = open_zone(WarehouseRoot.parse(settings.warehouse_root))
    job = make_job(
        "loader", schedule=Schedule(triggers=[LandingBacklog(size_bytes=100, age_s=3600)])
    )
    scheduler = scheduler_for(job, zone=zone)
    clock.current = dt.datetime.now(dt.UTC)  # landing files carry real modification times
    zone.write("batch", b"x" * 40)
    scheduler.step()
    assert store.list_runs(job="loader") == []  # 40 bytes, a few ms old: not yet
    newest = zone.write("batch", b"y" * 70)
    scheduler.step()
    (run,) = store.list_runs(job="loader")
    assert run.run_key == f"loader@landing:{newest.name}"
    zone.write("alarm", b"z" * 200)
    scheduler.step()
    assert len(store.list_runs(job="loader")) == 1  # a load is still queued: it takes these too
    store.transition_run(run.id, "running")
    store.transition_run(run.id, "succeeded")
    scheduler.step()
    assert len(store.list_runs(job="loader")) == 2  # (nothing was loaded: the backlog remains)


def test_a_new_table_version_starts_a_run(scheduler_for, store, settings):
    import pyarrow as pa
    from deltalake import write_deltalake

    location = Path(settings.warehouse_root.removeprefix("file://")) / "silver" / "things"
    writer = make_job("writer", outputs=["silver/things"])
    watcher = make_job("watcher", schedule=Schedule(triggers=[TableVersion("silver/things")]))
    scheduler = scheduler_for(writer, watcher)
    scheduler.step()  # the table does not exist yet
    write_deltalake(str(location), pa.table({"x": [1]}))
    scheduler.step()
    scheduler.step()
    write_deltalake(str(location), pa.table({"x": [2]}), mode="append")
    write_deltalake(str(location), pa.table({"x": [3]}), mode="append")
    scheduler.step()
    assert keys(store, "watcher") == [
        "watcher@table:silver/things:v0",
        "watcher@table:silver/things:v2",
    ]


def test_an_upstream_success_starts_the_downstream_for_exactly_the_dates_it_wrote(
    scheduler_for, settings, tmp_path
):
    import pyarrow as pa
    from deltalake import write_deltalake

    # Real times: Delta stamps commits with the wall clock.
    real = StateStore(f"sqlite:///{tmp_path / 'real.db'}")
    location = Path(settings.warehouse_root.removeprefix("file://")) / "silver" / "readings"
    write_deltalake(
        str(location),
        pa.table({"date": ["2026-01-01"], "v": [1]}),
        partition_by=["date"],
    )
    loader = make_job("loader", outputs=["silver/readings"])
    daily = make_job(
        "daily",
        inputs=["silver/readings"],
        upstream=["loader"],
        partitions=Daily(column="date"),
        schedule=Schedule(triggers=[AfterUpstream("loader")]),
    )
    from edgebatch.framework.registry import JobRegistry
    from edgebatch.framework.scheduler.loop import Scheduler

    scheduler = Scheduler(real, JobRegistry([loader, daily]).check(), settings, holder="s")
    scheduler.step()  # first look
    run = real.create_run("loader")
    real.transition_run(run.id, "running")
    # A late revision of Jan 1 and new rows for Jan 3.
    write_deltalake(
        str(location),
        pa.table({"date": ["2026-01-01", "2026-01-03"], "v": [2, 3]}),
        partition_by=["date"],
        mode="append",
    )
    scheduler.step()
    assert real.list_runs(job="daily") == []  # the load has not finished
    real.transition_run(run.id, "succeeded")
    scheduler.step()
    scheduler.step()
    (down,) = real.list_runs(job="daily")
    assert down.partitions == ("2026-01-01", "2026-01-03")
    assert down.run_key == f"daily@after:loader:{run.id}"
    log = [line.message for line in real.read_logs(down.id)]
    assert any(
        f"run {run.id} of loader succeeded and wrote date 2026-01-01, 2026-01-03" in m for m in log
    )
    assert down.state is RunState.QUEUED and real.get_wait(down.id) is None  # released
    real.close()


def test_a_manual_request_with_a_key_makes_one_run(store):
    job = make_job("adhoc")
    request = RunRequest("adhoc", run_key="adhoc@manual:1")
    first = enqueue(store, job, request, why="manual trigger by me")
    again = enqueue(store, job, request, why="manual trigger by me")
    assert first.created and not again.created and first.run.id == again.run.id
    assert not first.held  # no upstream, window or checks: any worker may take it
    assert store.claim_next_run("worker").id == first.run.id


def test_the_next_fire_time_of_a_cron_is_in_utc_from_its_local_time():
    from edgebatch.framework.scheduler.triggers import next_fire

    now = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
    assert next_fire(Cron("0 2 * * *", tz="Europe/Paris"), None, now) == "2026-07-02T00:00:00Z"
    assert "version of silver/x (seen v3)" in next_fire(
        TableVersion("silver/x"), {"version": 3}, now
    )


def test_a_paused_job_fires_nothing_and_the_others_still_tick(store, settings, clock):
    from edgebatch.framework.registry import JobRegistry
    from edgebatch.framework.scheduler.loop import Scheduler

    ticker = make_job("ticker", schedule=Schedule(triggers=[Cron("* * * * *")]))
    sink = make_job("sink", schedule=Schedule(triggers=[Cron("* * * * *")]))
    paused = dataclasses.replace(
        settings, scheduler=dataclasses.replace(settings.scheduler, paused=("sink",))
    )
    registry = JobRegistry([ticker, sink]).check()
    Scheduler(store, registry, paused, clock=clock, holder="t").step()
    clock.advance(90)
    Scheduler(store, registry, paused, clock=clock, holder="t").step()
    assert len(keys(store, "ticker")) == 1
    assert keys(store, "sink") == []
