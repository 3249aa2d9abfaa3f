"""Standby takeover: two `edgebatch scheduler` processes on one PostgreSQL store, the leader
killed with kill -9 KILLS times in a row (each killed one restarted as the new standby),
with the product's defaults (a pass every second, a 10 s lease).

Figures: the worst and the median time from the kill to the standby holding the lease
(target: every one under 15 s), beside the lease's time to live, the floor any takeover
waits; and, over the whole bench, cron ticks (every 2 s) with no run or two runs
(target 0). EDGEBATCH_BENCH_KILLS changes the number of kills.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import Figure

KILLS = int(os.environ.get("EDGEBATCH_BENCH_KILLS", "5"))
LEASE_TTL_S = 10.0
LOOP_S = 1.0
JOBS = Path(__file__).resolve().parents[1] / "tests/framework/scheduler/jobs/failover_jobs.py"


def _tick_errors(store) -> int:
    """Ticks between the first and the last run with no run, plus runs beyond one per tick."""
    keys = [r.run_key or "" for r in store.list_runs(job="ticker", limit=100_000)]
    ticks = sorted(dt.datetime.strptime(k.split("@", 1)[1], "%Y-%m-%dT%H:%M:%SZ") for k in keys)
    if not ticks:
        return 0
    expected = int((ticks[-1] - ticks[0]).total_seconds() // 2) + 1
    return abs(expected - len(set(ticks))) + (len(ticks) - len(set(ticks)))


def run() -> list[Figure]:
    from edgebatch.framework.state import StateStore
    from tests.support.postgres import postgres_server
    from tests.support.schedulers import SchedulerGroup, write_config

    takeovers: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, postgres_server() as pg:
        home = Path(tmp)
        url = pg.create_database(f"bench_{uuid.uuid4().hex[:8]}")
        config = write_config(
            home / "edgebatch.toml",
            state_url=url,
            root=(home / "warehouse").as_uri(),
            jobs=str(JOBS),
            loop_interval_s=LOOP_S,
            lease_ttl_s=LEASE_TTL_S,
        )
        store = StateStore(url)
        with SchedulerGroup(config, store, home) as group:
            names = ["s0", "s1"]
            group.start(names[0])
            group.wait_leader(names[0])
            group.start(names[1])
            time.sleep(3)
            for k in range(KILLS):
                leader = group.leader()
                assert leader is not None, "no scheduler leads"
                standby = next(n for n in names if n != leader)
                killed = group.kill(leader)
                group.wait_leader(standby, timeout=60)
                lease = store.get_leadership("scheduler")
                assert lease is not None
                takeovers.append(lease.acquired_at.timestamp() - killed)
                print(f"   kill {k + 1}: {standby} took over in {takeovers[-1]:.2f} s", flush=True)
                fresh = f"s{k + 2}"
                names = [standby, fresh]
                group.start(fresh)
                time.sleep(3)  # the new standby is up before the next kill
            time.sleep(2 * LOOP_S + 2)
            errors = _tick_errors(store)
        store.close()
    return [
        Figure(
            "failover, worst of kills",
            max(takeovers),
            "s",
            baseline=LEASE_TTL_S,
            baseline_name="lease time to live (the floor)",
            target=15.0,
            target_on="value",
            note=f"{KILLS} kill -9 of the leader; every takeover: "
            + ", ".join(f"{t:.2f}" for t in takeovers),
        ),
        Figure(
            "failover, median",
            statistics.median(takeovers),
            "s",
            baseline=LEASE_TTL_S,
            baseline_name="lease time to live (the floor)",
            target=15.0,
            target_on="value",
        ),
        Figure(
            "cron ticks missed or run twice across the kills",
            float(errors),
            "ticks",
            target=0.0,
            target_on="value",
        ),
    ]
