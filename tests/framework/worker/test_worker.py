"""A worker in this process, on the suite's SparkSession: what it claims, in which order and
pool, what it reports, and how it stops."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgebatch.framework.planning import plan_partitions, record_run
from edgebatch.framework.registry import JobRegistry, discover
from edgebatch.framework.requests import RunRequest
from edgebatch.framework.state import IterationState, Run, RunState, StateStore, WorkerState
from edgebatch.framework.worker import Worker
from edgebatch.settings import Settings, WorkerSettings
from tests.framework.conftest import make_settings
from tests.support.wait import wait_until

WORKER_JOBS = Path(__file__).resolve().parents[1] / "worker_jobs"


def worker_settings(home: Path, **worker) -> Settings:
    base = make_settings(home, jobs=(str(WORKER_JOBS),), max_parallel_iterations=1)
    fast = WorkerSettings(heartbeat_s=0.2, lost_after_s=2.0, poll_s=0.05, stop_grace_s=0)
    return dataclasses.replace(base, worker=dataclasses.replace(fast, **worker))


def enqueue(
    store: StateStore,
    registry: JobRegistry,
    job: str,
    partitions: tuple[str, ...],
    **request,
) -> Run:
    """A run queued the way every producer queues one: a request, its plan, the store."""
    req = RunRequest(job, partitions=partitions, **request)
    definition = registry.get(job)
    run, created = record_run(store, definition, req, plan_partitions(definition, req))
    assert created
    return run


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def settings(home: Path) -> Settings:
    return worker_settings(home)


@pytest.fixture
def store(settings: Settings) -> Iterator[StateStore]:
    with StateStore(settings.state_url) as opened:
        yield opened


@pytest.fixture
def registry(settings: Settings) -> JobRegistry:
    return discover(settings)


def finished_run(store: StateStore, run_id: int, timeout: float, what: str) -> Run:
    """The run once it has ended."""
    wait_until(lambda: store.get_run(run_id).finished, timeout, what)
    return store.get_run(run_id)


def requeued_run(store: StateStore, run_id: int, timeout: float) -> Run:
    """The run queued again for what `run_id` left unfinished."""
    wait_until(lambda: store.run_by_key(f"requeue:{run_id}"), timeout, f"run {run_id} requeued")
    again = store.run_by_key(f"requeue:{run_id}")
    assert again is not None
    return again


def _finished(store: StateStore, runs: list[Run]) -> list[Run]:
    now = [store.get_run(r.id) for r in runs]
    return now if all(r.finished for r in now) else []


def test_a_worker_claims_by_priority_then_age_across_its_queues_and_ignores_others(
    spark, settings, store, registry, tmp_path
):
    trace = tmp_path / "trace.txt"
    params = {"trace": str(trace)}

    def queued(key: str, queue: str, priority: int) -> Run:
        return enqueue(
            store, registry, "traced", (key,), queue=queue, priority=priority, params=params
        )

    old_default = queued("2025-01", "default", 0)
    other_queue = queued("2025-02", "backfill", 99)
    urgent_critical = queued("2025-03", "critical", 5)
    urgent_default = queued("2025-04", "default", 5)
    new_default = queued("2025-05", "default", 0)

    worker = Worker(spark, store, settings, registry, queues=["critical", "default"], slots=1)
    worker.start()
    try:
        mine = [old_default, urgent_critical, urgent_default, new_default]
        done = wait_until(lambda: _finished(store, mine), 60, "the worker's runs to finish")
        assert {r.state for r in done} == {RunState.SUCCEEDED}
        order = [r.id for r in sorted(done, key=lambda r: r.started_at or r.created_at)]
        assert order == [urgent_critical.id, urgent_default.id, old_default.id, new_default.id]
        assert store.get_run(other_queue.id).state == RunState.QUEUED
        # Each run's Spark jobs ran in its queue's pool.
        pools = dict(line.split()[::2] for line in trace.read_text().splitlines())
        assert pools == {
            "2025-03": "critical",
            "2025-04": "default",
            "2025-01": "default",
            "2025-05": "default",
        }
        claimed = [x.message for x in store.read_logs(urgent_critical.id)]
        assert any(
            f"claimed from queue critical by worker {worker.worker_id}" in m for m in claimed
        )
        # Heartbeats carry the worker's health.
        row = wait_until(
            lambda: (w := store.get_worker(worker.worker_id)).heartbeat_at > w.started_at and w,
            5,
            "a heartbeat",
        )
        assert row.state == WorkerState.RUNNING and row.queues == ("critical", "default")
        health = row.health
        assert health["slots"] == 1 and health["executors"] == 0  # local mode: the driver's own
        assert 0 <= health["cpu_percent"] <= 100 and health["process_rss_bytes"] > 0
        assert health["running_iterations"] == 0 and health["spark_master"].startswith("local")
    finally:
        worker.stop()
    stopped = store.get_worker(worker.worker_id)
    assert stopped.state == WorkerState.STOPPED and stopped.stopped_at is not None


def test_a_stopping_worker_gives_back_what_it_did_not_finish(spark, settings, store, registry):
    keys = ("2025-01", "2025-02", "2025-03", "2025-04")
    run = enqueue(store, registry, "traced", keys, params={"sleep_s": "0.4"})
    worker = Worker(spark, store, settings, registry, slots=1).start()
    try:
        wait_until(
            lambda: store.list_iterations(run.id, state="succeeded"), 30, "a first partition"
        )
    finally:
        released = worker.stop(grace_s=0)
    assert released == [run.id]
    given_back = store.get_run(run.id)
    assert given_back.state == RunState.FAILED and "released by worker" in (given_back.error or "")
    done = [i.partition_key for i in store.list_iterations(run.id, state="succeeded")]
    (again,) = store.list_runs(job="traced", state="queued")
    assert again.retry_of == run.id and again.queue == "default"
    assert sorted([*done, *again.partitions]) == list(keys) and not set(done) & set(
        again.partitions
    )
    assert store.get_worker(worker.worker_id).state == WorkerState.STOPPED
    assert not store.list_iterations(run.id, state=IterationState.RUNNING)


def test_a_run_of_a_job_the_worker_does_not_know_fails_with_the_reason(spark, settings, store):
    run = store.create_run("not_deployed_here", partitions=["x"])
    worker = Worker(spark, store, settings, JobRegistry(), slots=1)
    try:
        failed = worker.claim_once()
    finally:
        worker.stop()
    assert failed is not None and failed.id == run.id and failed.state == RunState.FAILED
    assert "cannot run it: no job named 'not_deployed_here'" in (failed.error or "")


def test_a_queue_whose_pool_is_not_declared_is_refused(spark, home, store, registry):
    from edgebatch.errors import ConfigError

    settings = worker_settings(home)
    with pytest.raises(ConfigError, match="queue 'etl' runs in fair-scheduler pool 'etl'"):
        Worker(spark, store, settings, registry, queues=["etl"])
