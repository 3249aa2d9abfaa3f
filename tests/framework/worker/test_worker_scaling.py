"""Executors on demand: a worker on the standalone master starts with none, gets one when
a run leaves tasks waiting, and gives it back once idle (dynamic allocation with shuffle
tracking, no external shuffle service)."""

from __future__ import annotations

import signal
import time

import pytest

from edgebatch.framework.registry import discover
from edgebatch.framework.state import RunState, StateStore
from edgebatch.framework.worker import executor_bounds, worker_spark_conf
from edgebatch.settings import QueueSettings, WorkerSettings
from tests.framework.worker.test_worker import enqueue, finished_run, worker_settings
from tests.framework.worker.test_worker_kill import start_worker, write_config
from tests.support.wait import wait_until

BOUNDS = """
executor_idle_timeout_s = 2.0

[worker.queue.critical]
min_executors = 0
max_executors = 2
"""


def test_a_worker_takes_the_widest_executor_bounds_of_its_queues():
    ws = WorkerSettings(
        queue={
            "critical": QueueSettings(min_executors=2, max_executors=4),
            "default": QueueSettings(min_executors=1, max_executors=8),
            "backfill": QueueSettings(max_executors=-1),
        }
    )
    assert executor_bounds(ws, ["critical", "default"]) == (2, 8)
    assert executor_bounds(ws, ["critical", "backfill"]) == (2, None)
    assert executor_bounds(ws, ["elsewhere"]) == (0, None)
    conf = worker_spark_conf(ws, ["critical", "default"], "spark://127.0.0.1:7077")
    assert conf["spark.dynamicAllocation.enabled"] == "true"
    assert conf["spark.dynamicAllocation.shuffleTracking.enabled"] == "true"
    assert (
        conf["spark.dynamicAllocation.minExecutors"],
        conf["spark.dynamicAllocation.maxExecutors"],
    ) == ("2", "8")
    assert worker_spark_conf(ws, ["critical"], "local[2]") == {}
    assert (
        worker_spark_conf(ws, ["backfill"], "yarn").get("spark.dynamicAllocation.maxExecutors")
        is None
    )


@pytest.mark.integration
@pytest.mark.slow
def test_executors_are_added_under_a_backlog_and_released_when_idle(spark_master, tmp_path):
    home = tmp_path / "home"
    settings = worker_settings(home)
    config = write_config(home, queue="critical", extra=BOUNDS)
    text = (
        config.read_text()
        .replace('master = "local[1]"\n', "")
        .replace(
            '"spark.driver.memory" = "512m"',
            '"spark.driver.memory" = "512m", "spark.executor.memory" = "512m", '
            '"spark.executor.cores" = "1", '
            '"spark.executor.extraJavaOptions" = "-XX:TieredStopAtLevel=1"',
        )
    )
    config.write_text(text)
    log = tmp_path / "worker.log"
    proc = start_worker(config, log, "--master", spark_master.master_url, env=spark_master.env())
    store = StateStore(settings.state_url)
    try:
        wait_until(
            lambda: proc.poll() is not None or store.list_workers(state="running"),
            120,
            "the worker to register",
            interval=0.2,
        )
        assert proc.poll() is None, log.read_text()[-3000:]
        (worker,) = store.list_workers(state="running")
        executors = lambda: store.get_worker(worker.worker_id).health.get("executors")  # noqa: E731
        assert wait_until(lambda: executors() == 0, 10, "a heartbeat with no executors") is True
        assert store.get_worker(worker.worker_id).health["spark_master"] == spark_master.master_url

        run = enqueue(
            store,
            discover(settings),
            "busy_executors",
            ("all",),
            params={"tasks": "6", "task_ms": "1500"},
        )
        seen: int = wait_until(lambda: executors() or 0, 60, "an executor added for the backlog")
        assert 1 <= seen <= 2
        finished = finished_run(store, run.id, 60, "the run")
        assert finished.state == RunState.SUCCEEDED, finished.error
        ended = time.monotonic()
        wait_until(lambda: executors() == 0, 30, "the idle executor released")
        assert time.monotonic() - ended < 30

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        store.close()
