"""The scheduler drives the real pipeline on PostgreSQL and Spark: landing files start the
bronze load, the daily rollup follows for exactly the days the load wrote (a late revision
reopens its day alone), and a failing check skips the report that needs it."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from edgebatch.edge.wire import topic
from edgebatch.framework.registry import discover
from edgebatch.framework.runner import Runner
from edgebatch.framework.scheduler.loop import Scheduler
from edgebatch.framework.state import RunState, StateStore
from edgebatch.settings import FrameworkSettings, Settings, StateSettings, WarehouseSettings
from edgebatch.warehouse.landing import open_zone
from edgebatch.warehouse.uri import WarehouseRoot
from tests.support.consent import register
from tests.warehouse.helpers import batch, land_directly

JOBS = Path(__file__).parent / "jobs" / "pipeline_jobs.py"
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def window(i: int, revision: int = 0) -> tuple[str, bytes]:
    """(topic, payload) of device m1's i-th 60 s window, as the agent publishes it."""
    return topic("acme", "m1", "batch"), batch("acme", "m1", i, revision)[1]


def age_landing_files(root: Path, seconds: float) -> None:
    """Make what has landed look `seconds` old: the backlog trigger fires on age."""
    past = time.time() - seconds
    for path in (root / "landing").rglob("*.jsonl"):
        os.utime(path, (past, past))


def work(scheduler: Scheduler, runner: Runner, store: StateStore) -> list[int]:
    """Scheduler passes, with every run it releases executed here, until nothing is left."""
    done: list[int] = []
    for _ in range(30):
        scheduler.step()
        released = [
            r.id
            for r in sorted(store.list_runs(state="queued", limit=1000), key=lambda r: r.id)
            if store.get_wait(r.id) is None
        ]
        if not released and not store.waiting_runs():
            return done
        for run_id in released:
            runner.start(run_id)
            runner.wait(run_id, timeout=300)
            done.append(run_id)
    raise AssertionError("the pipeline did not settle in 30 passes")


def test_landing_starts_the_load_the_rollup_follows_its_days_and_a_failed_check_skips_the_report(
    spark, pg, tmp_path
):
    url = pg.create_database(f"p_{uuid.uuid4().hex[:10]}")
    settings = Settings(
        warehouse=WarehouseSettings(root=(tmp_path / "warehouse").as_uri()),
        state=StateSettings(url=url),
        framework=FrameworkSettings(jobs=(str(JOBS),), lease_ttl_s=5, heartbeat_s=1),
        home=tmp_path,
    )
    store = StateStore(url)
    registry = discover(settings)
    runner = Runner(spark, store, settings, registry)
    scheduler = Scheduler(store, registry, settings, holder="pipeline")
    root = WarehouseRoot.parse(settings.warehouse_root)
    zone = open_zone(root)
    # The rollup passes the consent gate: m1 is registered and its customer consented.
    register(spark, root, "acme", {"m1": "c1"})
    try:
        scheduler.step()  # first look at every trigger
        # Windows on Nov 17 and Nov 18 (T0 is 2026-11-18 11:06 UTC; 60 s windows).
        land_directly(zone, [window(i) for i in (-800, -790, 0, 10)])
        scheduler.step()
        assert store.list_runs(job="bronze_load") == []  # a few bytes, just landed
        age_landing_files(tmp_path / "warehouse", 120)
        work(scheduler, runner, store)

        (load,) = store.list_runs(job="bronze_load")
        assert load.state is RunState.SUCCEEDED and load.trigger == "event"
        (daily,) = store.list_runs(job="device_daily")
        assert daily.state is RunState.SUCCEEDED
        assert daily.partitions == ("2026-11-17", "2026-11-18")
        assert daily.run_key == f"device_daily@after:bronze_load:{load.id}"
        (check,) = store.list_runs(job="daily_check")
        assert check.state is RunState.FAILED
        (report,) = store.list_runs(job="daily_report")
        assert report.state is RunState.SKIPPED
        assert report.error is not None and report.error.startswith(
            f"skipped: upstream job daily_check run {check.id} for partition 2026-11-17 failed"
        )
        log = [line.message for line in store.read_logs(report.id)]
        assert any(m.startswith("waiting: upstream: run") for m in log)
        assert report.error in log

        # A late revision of a Nov 18 window: the next load, then a rollup of that day alone.
        land_directly(zone, [window(10, revision=1)])
        age_landing_files(tmp_path / "warehouse", 120)
        work(scheduler, runner, store)
        loads = store.list_runs(job="bronze_load")
        assert [r.state for r in loads] == [RunState.SUCCEEDED] * 2
        latest = store.list_runs(job="device_daily", limit=1)[0]
        assert latest.partitions == ("2026-11-18",) and latest.state is RunState.SUCCEEDED
    finally:
        runner.close()
        store.close()
