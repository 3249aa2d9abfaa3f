"""Executor bounds an admin sets for a running worker (`PUT /api/v1/workers/{id}/executors`,
kept in the store's `worker_bounds`), applied by the worker at each heartbeat.

Spark reads its dynamic allocation bounds once, when the application starts; a running
application changes its executors only through SparkContext's developer API:
`requestExecutors(n)` asks the cluster manager for n more, `killExecutor(id)` gives one
back. So at each heartbeat the worker counts its executors and, below the admin's
minimum, asks for the missing ones; above the maximum, gives back the newest ones (their
tasks, if any, run again elsewhere). Spark refuses `killExecutor` while dynamic
allocation is on (it owns the count then, between the bounds it started with): the
worker's health says so (`executor_bounds_problem`), and a worker meant to be scaled in
by hand runs with `[worker] dynamic_allocation = false`. In local mode there are no
executors to scale.

The heartbeat reports `executor_bounds` ({"min", "max"}) once Spark took the requests
(the API's `applied`), or `executor_bounds_problem` saying why not.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pyspark import SparkContext

    from edgebatch.framework.state import StateStore

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ExecutorPlan:
    """What to ask of Spark: `add` executors more, and the ids of those to give back."""

    add: int = 0
    remove: tuple[str, ...] = ()


def plan_executors(ids: Sequence[str], low: int, high: int) -> ExecutorPlan:
    """The change that brings the executors `ids` within `low`..`high`: ask for the
    missing ones, or give back the newest (highest id) above the maximum."""
    if low > high:
        raise ValueError(f"executor bounds {low}..{high}: the minimum exceeds the maximum")
    if len(ids) < low:
        return ExecutorPlan(add=low - len(ids))
    if len(ids) > high:
        newest = sorted(ids, key=lambda x: (len(x), x), reverse=True)
        return ExecutorPlan(remove=tuple(newest[: len(ids) - high]))
    return ExecutorPlan()


class Executors(Protocol):
    """The executors of one Spark application, and the calls that change them."""

    def ids(self) -> list[str]: ...

    def request(self, more: int) -> bool: ...

    def kill(self, executor_id: str) -> bool: ...


class SparkExecutors:
    """`Executors` of the worker's SparkContext, through SparkContext's developer API."""

    def __init__(self, sc: SparkContext) -> None:
        self._sc = sc

    def ids(self) -> list[str]:
        """Executor ids, the driver not counted (none in local mode)."""
        joined = str(self._sc._jsc.sc().getExecutorIds().mkString(","))
        return [x for x in joined.split(",") if x and x != "driver"]

    def request(self, more: int) -> bool:
        return bool(self._sc._jsc.sc().requestExecutors(more))

    def kill(self, executor_id: str) -> bool:
        return bool(self._sc._jsc.sc().killExecutor(executor_id))


class BoundsKeeper:
    """Applies the store's executor bounds of one worker; `apply()` returns the health
    fields that say what happened (empty when no admin set any)."""

    def __init__(
        self, store: StateStore, worker_id: str, executors: Executors, *, local: bool
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.executors = executors
        self.local = local

    def apply(self) -> dict[str, Any]:
        found = self.store.executor_bounds(self.worker_id)
        if not found:
            return {}
        low, high = found[0].min_executors, found[0].max_executors
        wanted = {"min": low, "max": high}
        if self.local:
            return {
                "executor_bounds_wanted": wanted,
                "executor_bounds_problem": "local mode: Spark has no executors to scale",
            }
        try:
            plan = plan_executors(self.executors.ids(), low, high)
            problem = self._carry_out(plan)
        except Exception as exc:  # Spark refused (a Py4J error) or the bounds are wrong
            problem = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
        if problem:
            log.warning("worker %s: executor bounds %s: %s", self.worker_id, wanted, problem)
            return {"executor_bounds_wanted": wanted, "executor_bounds_problem": problem}
        return {"executor_bounds_wanted": wanted, "executor_bounds": wanted}

    def _carry_out(self, plan: ExecutorPlan) -> str | None:
        if plan.add and not self.executors.request(plan.add):
            return f"Spark did not take the request for {plan.add} more executor(s)"
        refused = [x for x in plan.remove if not self.executors.kill(x)]
        if refused:
            return f"Spark did not give back executor(s) {', '.join(refused)}"
        if plan.add or plan.remove:
            log.info(
                "worker %s: asked for %d more executor(s), gave back %s",
                self.worker_id,
                plan.add,
                ", ".join(plan.remove) or "none",
            )
        return None
