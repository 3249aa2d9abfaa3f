"""`Worker`: a warm Spark driver that claims the queued runs of its queues and runs them.

One SparkSession for the worker's life. A claim loop takes the most urgent, then
oldest, queued run of the worker's queues whenever one of its `slots` is free, and
hands it to the warm `Runner` (the same one `edgebatch run` uses) in the queue's
fair-scheduler pool. A heartbeat thread records the worker's health in the store and
marks workers that stopped beating as lost. The runner's own watch thread renews the
leases of the runs here and reaps other processes' orphans: a run whose worker died
is failed and queued again with its unfinished partitions (see `state.workers`), for
whichever worker claims next.

    worker = Worker(spark, store, settings, registry, queues=["critical", "default"])
    worker.start()
    ...
    worker.stop()    # finish what runs within the grace period, give back the rest
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from edgebatch.errors import ConfigError
from edgebatch.framework.errors import FrameworkError
from edgebatch.framework.runner import Runner
from edgebatch.framework.state import (
    LeaseError,
    NewLogLine,
    Run,
    RunState,
    StateError,
    StateStore,
)
from edgebatch.framework.worker.health import HealthSampler
from edgebatch.framework.worker.scaling import BoundsKeeper, SparkExecutors
from edgebatch.settings import QUEUE_NAME, QUEUE_NAME_RULE

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from edgebatch.framework.registry import JobRegistry
    from edgebatch.settings import Settings

log = logging.getLogger(__name__)


class Worker:
    """Claims and executes runs of `queues` (default: `[worker] queues`), `slots` at a time."""

    def __init__(
        self,
        spark: SparkSession,
        store: StateStore,
        settings: Settings,
        registry: JobRegistry,
        *,
        queues: Iterable[str] | None = None,
        slots: int | None = None,
        worker_id: str | None = None,
    ) -> None:
        ws = settings.worker
        self.queues, self.slots, self.pools = check_worker(settings, registry, queues, slots)
        self.settings = settings
        self.store = store
        # A slot that frees wakes the claim loop at once, not at its next poll.
        self._wake = threading.Event()
        self.runner = Runner(
            spark,
            store,
            settings,
            registry,
            holder=worker_id,
            on_run_done=lambda _run_id: self._wake.set(),
        )
        self.worker_id = self.runner.holder
        self._ws = ws
        self._health = HealthSampler(self.runner, self.slots)
        sc = spark.sparkContext
        self._bounds = BoundsKeeper(
            store, self.worker_id, SparkExecutors(sc), local=str(sc.master).startswith("local")
        )
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- life -----------------------------------------------------------------------------

    def start(self) -> Worker:
        """Register in the store and start claiming and beating (in background threads)."""
        self.store.register_worker(self.worker_id, queues=self.queues, health=self._health.sample())
        log.info(
            "worker %s serving queues %s with %d slot(s)",
            self.worker_id,
            ", ".join(self.queues),
            self.slots,
        )
        for name, target in (("claim", self._claim_loop), ("beat", self._beat_loop)):
            thread = threading.Thread(target=target, name=f"edgebatch-worker-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, grace_s: float | None = None) -> list[int]:
        """Stop claiming; wait up to `grace_s` for runs here to end, then give back the rest.

        A run given back fails with the reason and its unfinished partitions queue
        again for another worker. Returns the ids of the runs given back.
        """
        grace = self._ws.stop_grace_s if grace_s is None else grace_s
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=10)
        deadline = time.monotonic() + grace
        while self.runner.active_runs() and time.monotonic() < deadline:
            time.sleep(0.1)
        released = []
        for run_id in self.runner.active_runs():
            self.runner.abandon(run_id)
            try:
                again = self.store.release_run(
                    run_id, self.worker_id, reason=f"stopping; still running after {grace:g} s"
                )
            except (LeaseError, StateError) as exc:  # finished, or reaped, meanwhile
                log.info("run %s not released: %s", run_id, exc)
                continue
            released.append(run_id)
            log.warning(
                "run %s given back%s",
                run_id,
                f" as run {again.id}" if again else " (nothing left to run again)",
            )
        self.runner.close(cancel=False, timeout=10)
        if not self._threads:  # never started: never registered
            return released
        try:
            self.store.heartbeat_worker(self.worker_id, self._health.sample())
        except StateError as exc:
            log.info("last heartbeat not recorded: %s", exc)
        self.store.stop_worker(self.worker_id)
        log.info("worker %s stopped", self.worker_id)
        return released

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # -- claiming -------------------------------------------------------------------------

    def claim_once(self) -> Run | None:
        """Claim the next run of this worker's queues and start it, if a slot is free."""
        if len(self.runner.active_runs()) >= self.slots:
            return None
        run = self.store.claim_next_run(
            self.worker_id, queues=self.queues, ttl=self.settings.framework.lease_ttl_s
        )
        if run is None:
            return None
        try:
            self.runner.start(run.id, claimed=True, pool=self.pools[run.queue])
        except FrameworkError as exc:  # e.g. a job this worker's code does not know
            error = f"worker {self.worker_id} cannot run it: {exc}"
            last = NewLogLine(error, level="ERROR", logger="edgebatch.worker")
            return self.store.transition_run(run.id, RunState.FAILED, error=error, log=last)
        self.store.append_log(
            run.id,
            f"claimed from queue {run.queue} by worker {self.worker_id} "
            f"(waited {(run.started_at or run.created_at) - run.created_at})",
            logger="edgebatch.worker",
        )
        return run

    def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                claimed = self.claim_once()
            except Exception:  # the loop must outlive a hiccup of the store
                log.exception("worker %s: claim failed", self.worker_id)
                claimed = None
            if claimed is None:
                self._wake.wait(self._ws.poll_s)
                self._wake.clear()

    # -- heartbeat ------------------------------------------------------------------------

    def beat(self) -> None:
        """Apply the executor bounds an admin set (if any), record health, and mark workers
        silent for longer than `lost_after_s` as lost."""
        health = self._health.sample()
        try:
            health.update(self._bounds.apply())
        except Exception as exc:  # the heartbeat must go on whatever Spark or the store said
            log.warning("worker %s: executor bounds not applied: %s", self.worker_id, exc)
            health["executor_bounds_problem"] = f"{type(exc).__name__}: {exc}"[:300]
        self.store.heartbeat_worker(self.worker_id, health)
        for lost in self.store.mark_lost_workers(ttl=self._ws.lost_after_s):
            log.warning(
                "worker %s (%s, pid %s) is lost: no heartbeat since %s",
                lost.worker_id,
                lost.host,
                lost.pid,
                lost.heartbeat_at.isoformat(),
            )

    def _beat_loop(self) -> None:
        while not self._stopping.wait(self._ws.heartbeat_s):
            try:
                self.beat()
            except Exception:
                log.exception("worker %s: heartbeat failed", self.worker_id)


def check_worker(
    settings: Settings,
    registry: JobRegistry,
    queues: Iterable[str] | None = None,
    slots: int | None = None,
) -> tuple[tuple[str, ...], int, dict[str, str]]:
    """The queues, slots and each queue's pool a worker would have; `ConfigError` naming
    what is wrong otherwise. Cheap: the command line calls it before starting Spark."""
    ws = settings.worker
    names = tuple(dict.fromkeys(queues or ws.queues))
    slots = ws.slots if slots is None else slots
    if not names:
        raise ConfigError("a worker needs at least one queue")
    for q in names:
        if not QUEUE_NAME.match(q):
            raise ConfigError(f"queue name {q!r} must be {QUEUE_NAME_RULE}")
    if slots < 1:
        raise ConfigError(f"a worker needs at least 1 slot, got {slots}")
    pools = {q: ws.pool_of(q) for q in names}
    if registry.pools is not None:
        for q, pool in pools.items():
            if pool not in registry.pools:
                raise ConfigError(
                    f"queue {q!r} runs in fair-scheduler pool {pool!r}, which the allocation "
                    f"file does not declare (pools: {', '.join(sorted(registry.pools))}); "
                    f"declare it there or set [worker.queue.{q}] pool"
                )
    return names, slots, pools
