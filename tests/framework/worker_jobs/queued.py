"""Jobs the worker tests queue: each execution leaves a line in a trace file, and may
take its time, or keep Spark's executors busy.

Params (strings, as a run request carries them): `trace` a file to append
`partition pid pool` to per execution; `sleep_s` how long each partition takes;
`tasks` and `task_ms` for `busy_executors`, a Spark job of that many tasks each
sleeping that long on an executor (JVM only: no Python on the executors).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from edgebatch.framework.definitions import job
from edgebatch.framework.partitions import Monthly, Unpartitioned


def _trace(ctx) -> None:
    pool = ctx.spark.sparkContext.getLocalProperty("spark.scheduler.pool")
    trace = ctx.params.get("trace")
    if trace:
        with Path(trace).open("a") as out:
            out.write(f"{ctx.partition} {os.getpid()} {pool}\n")


@job(partitions=Monthly(start="2025-01"), retry=0)
def traced(ctx):
    """Sleeps `sleep_s` per partition, then traces it."""
    time.sleep(float(ctx.params.get("sleep_s", "0")))
    _trace(ctx)


@job(partitions=Unpartitioned(), retry=0, queue="critical")
def busy_executors(ctx):
    """A backlog of tasks for the executors, to make dynamic allocation ask for more."""
    tasks, task_ms = int(ctx.params.get("tasks", "4")), int(ctx.params.get("task_ms", "2000"))
    ctx.spark.range(0, tasks, 1, tasks).selectExpr(
        f"reflect('java.lang.Thread', 'sleep', cast({task_ms} as bigint)) as slept"
    ).collect()
    _trace(ctx)
