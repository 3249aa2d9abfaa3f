"""Executor bounds on the standalone master: a driver without dynamic allocation gives
its executor back when an admin's bounds say 0..0 and gets a new one when they say 1..1,
through the same `BoundsKeeper` a worker's heartbeat calls (its own process: one Spark
application per process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DRIVER = """
import sys, time
from pyspark.sql import SparkSession
from edgebatch.framework.state import StateStore
from edgebatch.framework.worker.scaling import BoundsKeeper, SparkExecutors

master, url = sys.argv[1], sys.argv[2]
spark = (
    SparkSession.builder.master(master).appName("executor-bounds")
    .config("spark.driver.memory", "512m").config("spark.executor.memory", "512m")
    .config("spark.executor.cores", "1").config("spark.cores.max", "1")
    .config("spark.executor.extraJavaOptions", "-XX:TieredStopAtLevel=1")
    .getOrCreate()
)
executors = SparkExecutors(spark.sparkContext)
store = StateStore(url)
keeper = BoundsKeeper(store, "w1", executors, local=False)


def until(check, what):
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}; executors {executors.ids()}")


until(lambda: len(executors.ids()) == 1, "the first executor")
first = executors.ids()
store.set_executor_bounds("w1", min_executors=0, max_executors=0, by="admin")
print("SCALE IN", keeper.apply(), flush=True)
until(lambda: executors.ids() == [], "the executor given back")
store.set_executor_bounds("w1", min_executors=1, max_executors=1, by="admin")
print("SCALE OUT", keeper.apply(), flush=True)
until(lambda: len(executors.ids()) == 1 and executors.ids() != first, "a new executor")
print("DONE", first, executors.ids(), flush=True)
spark.stop()
"""


def test_a_driver_scales_in_and_out_to_the_bounds_an_admin_sets(spark_master, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, spark_master.master_url, url],
        env=spark_master.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    applied = "'executor_bounds': {'min': %d, 'max': %d}"
    assert "SCALE IN" in out and applied % (0, 0) in out
    assert "SCALE OUT" in out and applied % (1, 1) in out
    assert "DONE" in out
