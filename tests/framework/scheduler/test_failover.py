"""Two schedulers on one PostgreSQL store: kill -9 the leader while a cron ticks every 2 s and
files are uploaded; the standby takes over within 15 s and every tick and every file has
started exactly one run."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from edgebatch.framework.state import StateStore
from tests.support.schedulers import SchedulerGroup, write_config
from tests.support.wait import wait_until

JOBS = Path(__file__).parent / "jobs" / "failover_jobs.py"
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def upload(folder: Path, name: str) -> None:
    """Written under a hidden name, then renamed: the scheduler never sees half a file."""
    tmp = folder / f".{name}.tmp"
    tmp.write_text(name)
    os.replace(tmp, folder / name)


def ticks_of(store: StateStore) -> list[dt.datetime]:
    keys = [r.run_key or "" for r in store.list_runs(job="ticker", limit=10_000)]
    return sorted(
        dt.datetime.strptime(k.split("@", 1)[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        for k in keys
    )


def test_the_standby_takes_over_within_15_s_and_no_tick_or_event_starts_two_runs(pg, tmp_path):
    url = pg.create_database(f"f_{uuid.uuid4().hex[:10]}")
    root = tmp_path / "warehouse"
    uploads = root / "landing" / "uploads" / "importer"
    uploads.mkdir(parents=True)
    config = write_config(
        tmp_path / "edgebatch.toml",
        state_url=url,
        root=root.as_uri(),
        jobs=str(JOBS),
        loop_interval_s=0.5,
        lease_ttl_s=5.0,
    )
    store = StateStore(url)
    sent: list[str] = []
    stop_events = threading.Event()

    def events() -> None:
        i = 0
        while not stop_events.is_set():
            name = f"{i:05d}.csv"
            upload(uploads, name)
            sent.append(name)
            i += 1
            stop_events.wait(0.25)

    with SchedulerGroup(config, store, tmp_path) as group:
        group.start("a")
        group.wait_leader("a")
        group.start("b")
        sender = threading.Thread(target=events, daemon=True)
        sender.start()
        wait_until(lambda: len(ticks_of(store)) >= 3, 20, "the first ticks")
        assert group.leader() == "a"
        killed = group.kill("a")
        group.wait_leader("b", timeout=20)
        lease = store.get_leadership("scheduler")
        assert lease is not None and lease.term == 2
        takeover = lease.acquired_at.timestamp() - killed
        assert takeover < 15, f"the standby took {takeover:.1f} s to take over"
        time.sleep(3)  # ticks and events keep coming under the new leader
        stop_events.set()
        sender.join()
        after_last = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
        wait_until(
            lambda: len(store.list_runs(job="importer", limit=10_000)) >= len(sent),
            15,
            "a run per uploaded file",
        )
        wait_until(lambda: ticks_of(store)[-1] >= after_last, 15, "a tick after the last event")
        assert group.stop("b") == 0

    ticks = ticks_of(store)
    # Every 2 s from the first tick to the last, each exactly once, across the failover.
    expected = [ticks[0] + dt.timedelta(seconds=2 * i) for i in range(len(ticks))]
    assert ticks == expected, group.log_of("b")
    assert ticks[-1] - ticks[0] > dt.timedelta(seconds=takeover + 3)
    imported = Counter(
        (r.run_key or "").split(":", 1)[1] for r in store.list_runs(job="importer", limit=10_000)
    )
    assert sorted(imported) == sorted(sent) and set(imported.values()) == {1}
    resigned = store.get_leadership("scheduler")
    assert resigned is not None and resigned.expires_at <= dt.datetime.now(dt.UTC)
    store.close()
