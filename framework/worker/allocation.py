"""Executors on demand: Spark dynamic allocation bounded by the queues a worker serves.

A worker is one Spark application, so its executor bounds are one pair for all its
queues. The rule: the widest bounds among them, the largest minimum and the largest
maximum (no bound if any queue has none), so the worker can serve its most demanding
queue. Shuffle tracking replaces the external shuffle service: an executor that
holds shuffle data still needed is kept (at most `shuffle_tracking_timeout_s`).
In local mode Spark has no executors to scale, and nothing is set.
"""

from __future__ import annotations

from collections.abc import Iterable

from edgebatch.settings import WorkerSettings


def executor_bounds(worker: WorkerSettings, queues: Iterable[str]) -> tuple[int, int | None]:
    """(minimum, maximum or None for no bound) executors of a worker serving `queues`."""
    chosen = [worker.of_queue(q) for q in queues]
    if not chosen:
        return 0, None
    low = max(q.min_executors for q in chosen)
    if any(q.max_executors == -1 for q in chosen):
        return low, None
    return low, max(q.max_executors for q in chosen)


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def worker_spark_conf(worker: WorkerSettings, queues: Iterable[str], master: str) -> dict[str, str]:
    """The Spark settings a worker adds to the project's for `master` (empty in local mode)."""
    if not worker.dynamic_allocation or master.startswith("local"):
        return {}
    low, high = executor_bounds(worker, queues)
    conf = {
        "spark.dynamicAllocation.enabled": "true",
        "spark.dynamicAllocation.shuffleTracking.enabled": "true",
        "spark.dynamicAllocation.shuffleTracking.timeout": _ms(worker.shuffle_tracking_timeout_s),
        "spark.dynamicAllocation.minExecutors": str(low),
        "spark.dynamicAllocation.initialExecutors": str(low),
        "spark.dynamicAllocation.executorIdleTimeout": _ms(worker.executor_idle_timeout_s),
    }
    if high is not None:
        conf["spark.dynamicAllocation.maxExecutors"] = str(high)
    return conf
