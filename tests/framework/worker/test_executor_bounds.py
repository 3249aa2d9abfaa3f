"""Executor bounds an admin sets through the API reach the worker: at each heartbeat it
reads them from the store and asks Spark for the missing executors or gives back those
above the maximum, and its health says whether Spark took that.

The decision and its carrying out are tested over a real store with the Spark boundary
faked (which executors exist, what Spark answers); the calls themselves against the
session's real SparkContext (local mode, where Spark answers that it has no executors to
change: the call signatures reach the JVM), and a real worker's heartbeat."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebatch.framework.state import StateStore
from edgebatch.framework.worker.scaling import (
    BoundsKeeper,
    ExecutorPlan,
    SparkExecutors,
    plan_executors,
)
from tests.framework.worker.test_worker import worker_settings


def test_the_plan_brings_the_executors_within_the_bounds():
    assert plan_executors([], 2, 4) == ExecutorPlan(add=2)
    assert plan_executors(["1"], 2, 4) == ExecutorPlan(add=1)
    assert plan_executors(["1", "2", "3"], 2, 4) == ExecutorPlan()
    assert plan_executors(["3", "10", "2", "9"], 0, 1) == ExecutorPlan(remove=("10", "9", "3"))
    assert plan_executors(["1", "2"], 0, 2) == ExecutorPlan()
    with pytest.raises(ValueError, match="minimum exceeds the maximum"):
        plan_executors([], 3, 2)


class FakeSpark:
    """The Spark boundary: executors that exist, and whether Spark takes a request."""

    def __init__(self, ids: list[str], *, takes: bool = True, kill_error: str = "") -> None:
        self.current = ids
        self.takes = takes
        self.kill_error = kill_error
        self.requested: list[int] = []
        self.killed: list[str] = []

    def ids(self) -> list[str]:
        return list(self.current)

    def request(self, more: int) -> bool:
        self.requested.append(more)
        return self.takes

    def kill(self, executor_id: str) -> bool:
        if self.kill_error:
            raise RuntimeError(self.kill_error)
        self.killed.append(executor_id)
        return self.takes


@pytest.fixture
def store(tmp_path: Path):
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as opened:
        yield opened


def test_the_worker_applies_the_bounds_the_store_holds(store: StateStore):
    spark = FakeSpark(["1"])
    keeper = BoundsKeeper(store, "w1", spark, local=False)
    assert keeper.apply() == {}  # nobody set bounds: nothing asked
    store.set_executor_bounds("w1", min_executors=3, max_executors=4, by="admin")
    store.set_executor_bounds("w2", min_executors=0, max_executors=0, by="admin")
    wanted = {"min": 3, "max": 4}
    assert keeper.apply() == {"executor_bounds_wanted": wanted, "executor_bounds": wanted}
    assert spark.requested == [2] and spark.killed == []

    store.set_executor_bounds("w1", min_executors=0, max_executors=1, by="admin")
    spark.current = ["1", "2", "3"]
    health = keeper.apply()
    assert health["executor_bounds"] == {"min": 0, "max": 1}
    assert spark.killed == ["3", "2"]


def test_what_spark_refuses_is_reported_not_hidden(store: StateStore):
    store.set_executor_bounds("w1", min_executors=2, max_executors=2, by="admin")
    refusing = FakeSpark([], takes=False)
    health = BoundsKeeper(store, "w1", refusing, local=False).apply()
    assert "executor_bounds" not in health
    assert "did not take the request for 2 more" in health["executor_bounds_problem"]

    dynamic = FakeSpark(
        ["1", "2", "3"],
        kill_error="requirement failed: killExecutors() "
        "unsupported with Dynamic Allocation turned on",
    )
    health = BoundsKeeper(store, "w1", dynamic, local=False).apply()
    assert "unsupported with Dynamic Allocation" in health["executor_bounds_problem"]

    local = FakeSpark([])
    health = BoundsKeeper(store, "w1", local, local=True).apply()
    assert "local mode" in health["executor_bounds_problem"] and local.requested == []


@pytest.mark.integration
def test_the_calls_reach_spark_and_a_worker_reports_its_bounds(spark, tmp_path: Path):
    executors = SparkExecutors(spark.sparkContext)
    assert executors.ids() == []  # local mode: the driver alone
    # Local mode's scheduler changes no executors and says so (False, not an error).
    assert executors.request(1) is False
    assert executors.kill("1") is False

    from edgebatch.framework.registry import discover
    from edgebatch.framework.worker import Worker

    settings = worker_settings(tmp_path / "home")
    with StateStore(settings.state_url) as store:
        worker = Worker(spark, store, settings, discover(settings), queues=["default"])
        store.register_worker(worker.worker_id, queues=worker.queues, health={})
        store.set_executor_bounds(worker.worker_id, min_executors=1, max_executors=2, by="a")
        worker.beat()
        health = store.get_worker(worker.worker_id).health
        assert health["executor_bounds_wanted"] == {"min": 1, "max": 2}
        assert "local mode" in health["executor_bounds_problem"]
        worker.runner.close()
