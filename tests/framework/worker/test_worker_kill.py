"""Two `edgebatch worker` processes share a queue; one is killed with SIGKILL mid-run.

The survivor reaps the dead one's run, which goes back to the queue with only its
unfinished partitions, and finishes it: every partition succeeds exactly once (counted
in the store), no partition finished by the dead worker runs again (counted in the
trace the job writes), and the dead worker is marked lost.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edgebatch.framework.registry import discover
from edgebatch.framework.state import IterationState, RunState, StateStore, WorkerState
from tests.framework.worker.test_worker import (
    WORKER_JOBS,
    enqueue,
    finished_run,
    requeued_run,
    worker_settings,
)
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEYS = tuple(f"2025-{m:02d}" for m in range(1, 9))


def write_config(home: Path, *, queue: str, extra: str = "") -> Path:
    config = home / "edgebatch.toml"
    config.write_text(
        f"""
[warehouse]
root = "{(home / "warehouse").as_uri()}"

[state]
url = "sqlite:///{home / "state.db"}"

[spark]
master = "local[1]"
conf = {{ "spark.ui.enabled" = "false", "spark.driver.memory" = "512m", \
"spark.driver.extraJavaOptions" = "-XX:TieredStopAtLevel=1" }}

[framework]
jobs = ["{WORKER_JOBS}"]
lease_ttl_s = 3.0
heartbeat_s = 0.5
max_parallel_iterations = 1

[worker]
queues = ["{queue}"]
slots = 1
heartbeat_s = 0.5
lost_after_s = 2.0
poll_s = 0.1
stop_grace_s = 10.0
{extra}
"""
    )
    return config


def start_worker(
    config: Path, log: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    cli = str(Path(sys.executable).parent / "edgebatch")
    with log.open("ab") as out:
        return subprocess.Popen(
            [cli, "--config", str(config), "worker", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def test_a_killed_workers_run_is_finished_by_the_other_running_only_what_was_left(tmp_path):
    home = tmp_path / "home"
    settings = worker_settings(home)
    config = write_config(home, queue="default")
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    procs = [start_worker(config, log) for log in logs]
    store = StateStore(settings.state_url)
    trace = tmp_path / "trace.txt"
    try:
        wait_until(
            lambda: len(store.list_workers(state="running")) == 2 or _dead(procs, logs),
            120,
            "two workers to register",
            interval=0.2,
        )
        assert not _dead(procs, logs)
        run = enqueue(
            store,
            discover(settings),
            "traced",
            KEYS,
            params={"trace": str(trace), "sleep_s": "0.7"},
        )
        wait_until(
            lambda: len(store.list_iterations(run.id, state="succeeded")) >= 2,
            60,
            "two partitions done",
        )
        holder = store.get_lease(run.id)
        assert holder is not None
        victim = store.get_worker(holder.holder)
        by_pid = {p.pid: p for p in procs}
        os.kill(victim.pid, signal.SIGKILL)
        by_pid[victim.pid].wait(10)
        survivor = next(p for p in procs if p.pid != victim.pid)

        again = requeued_run(store, run.id, 30)
        final = finished_run(store, again.id, 60, "the requeued run to end")
        assert final.state == RunState.SUCCEEDED, final.error
        dead_run = store.get_run(run.id)
        assert dead_run.state == RunState.FAILED and "orphaned" in (dead_run.error or "")

        # Only what was left ran again, on the survivor.
        done_first = {i.partition_key for i in store.list_iterations(run.id, state="succeeded")}
        assert set(final.partitions) == set(KEYS) - done_first
        assert store.get_lease(again.id) is None
        # Every partition succeeded exactly once, counted in the store.
        succeeded = collections.Counter(
            i.partition_key
            for r in (run.id, again.id)
            for i in store.list_iterations(r)
            if i.state == IterationState.SUCCEEDED
        )
        assert succeeded == dict.fromkeys(KEYS, 1)
        # ... and in the job's own trace: what the dead worker finished never ran again (the
        # partition it was in the middle of may have traced before it died: at least once).
        lines = [line.split() for line in trace.read_text().splitlines()]
        traced = collections.Counter(key for key, _, _ in lines)
        assert {k: traced[k] for k in done_first} == dict.fromkeys(done_first, 1)
        assert {key for key, pid, _ in lines if int(pid) != victim.pid} == set(final.partitions)

        wait_until(
            lambda: store.get_worker(victim.worker_id).state == WorkerState.LOST,
            10,
            "the killed worker marked lost",
        )
        lost = store.get_worker(victim.worker_id)
        assert lost.heartbeat_at < store.now()
        alive = store.list_workers(state="running")
        assert [w.pid for w in alive] == [survivor.pid]
        assert {"cpu_percent", "memory_percent", "running_iterations", "executors"} <= set(
            alive[0].health
        )

        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(30) == 0
        assert store.get_worker(alive[0].worker_id).state == WorkerState.STOPPED
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        store.close()


def _dead(procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> str:
    for p, log in zip(procs, logs, strict=True):
        if p.poll() is not None:
            return f"worker exited with {p.returncode}: {log.read_text()[-3000:]}"
    return ""
