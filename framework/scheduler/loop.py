"""The manager: one pass evaluates triggers, then decides every held run, while it leads.

    scheduler = Scheduler(store, registry, settings)
    scheduler.run(stop)                 # `edgebatch scheduler`: a pass per loop interval
    report = scheduler.step()           # one pass (tests drive it with their own clock)

A pass: renew (or take) the leader lease; if another scheduler holds it, do nothing.
Otherwise, for each job's triggers, enqueue what fired (each with a `run_key`), then
move each trigger's cursor; then for each held run decide start, wait, skip or fail
(`gates`), and release the runs that may start, by aged priority within the limits
per job, per queue and overall. Every decision is a line in the run's log; a reason
to wait is logged when it changes, not every pass.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from edgebatch.framework.definitions import Job
from edgebatch.framework.errors import UnknownJobError
from edgebatch.framework.registry import JobRegistry
from edgebatch.framework.scheduler import gates
from edgebatch.framework.scheduler.clock import Clock, SystemClock
from edgebatch.framework.scheduler.deltas import Tables
from edgebatch.framework.scheduler.enqueue import enqueue
from edgebatch.framework.scheduler.gates import Action, Decision, Facts
from edgebatch.framework.scheduler.triggers import EventSources
from edgebatch.framework.state import (
    Run,
    RunPartitions,
    RunState,
    RunWait,
    StateStore,
    make_holder,
)
from edgebatch.warehouse.uri import WarehouseRoot

if TYPE_CHECKING:
    from edgebatch.settings import Settings
    from edgebatch.warehouse.landing.zone import LandingZone

log = logging.getLogger(__name__)

LoopHook = Callable[["Scheduler"], None]


@dataclasses.dataclass
class PassReport:
    """What one pass did: whether it led, and the runs it made, released, skipped, failed."""

    leader: bool
    term: int | None = None
    enqueued: list[int] = dataclasses.field(default_factory=list)
    released: list[int] = dataclasses.field(default_factory=list)
    skipped: list[int] = dataclasses.field(default_factory=list)
    failed: list[int] = dataclasses.field(default_factory=list)
    waiting: list[int] = dataclasses.field(default_factory=list)


def same_partitioning(a: Job, b: Job) -> bool:
    return type(a.partitioning) is type(b.partitioning) and (
        a.partitioning.column == b.partitioning.column
    )


class Scheduler:
    """Evaluates triggers and holds runs back until they may start, while it holds the lease."""

    def __init__(
        self,
        store: StateStore,
        registry: JobRegistry,
        settings: Settings,
        *,
        clock: Clock | None = None,
        holder: str | None = None,
        zone: LandingZone | None = None,
        tables: Tables | None = None,
        free_executors: Callable[[], int | None] | None = None,
        facts: Facts | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        self.cfg = settings.scheduler
        self.clock = clock or SystemClock()
        self.holder = holder or self.cfg.holder or make_holder()
        root = WarehouseRoot.parse(settings.warehouse_root)
        self.tables = tables or Tables(root)
        if zone is None:
            from edgebatch.warehouse.landing import open_zone

            zone = open_zone(
                root,
                webhdfs_url=settings.warehouse.webhdfs_url,
                hdfs_user=settings.warehouse.hdfs_user,
                writer="scheduler",
            )
        self.events = EventSources(store, self.tables, zone)
        self.free_executors = free_executors or (
            lambda: store.free_capacity(
                fresh_within=settings.worker.lost_after_s,
                at=self.clock.now(),
            )
        )
        self.facts = facts or Facts(
            loaded=lambda job: set(store.loaded_partitions(job)),
            last_write=self.tables.last_write,
            rows=self.tables.rows,
        )
        self._hooks: list[LoopHook] = []
        self._term: int | None = None
        self._last_reap: dt.datetime | None = None

    # -- the loop -------------------------------------------------------------------------

    def add_loop_hook(self, hook: LoopHook) -> None:
        """Call `hook(scheduler)` once per pass while this scheduler leads, after its decisions.

        The place for work that must run once across schedulers, such as sending the
        notifications of runs that ended; a hook that raises is logged, never fatal.
        """
        self._hooks.append(hook)

    def run(self, stop: threading.Event) -> None:
        """Pass after pass until `stop` is set; then give the lease up for a standby."""
        try:
            while not stop.is_set():
                try:
                    self.step()
                except Exception:  # the store away for a moment: try again next pass
                    log.exception("scheduler pass failed; trying again")
                self.clock.sleep(self.cfg.loop_interval_s, stop)
        finally:
            self.resign()

    def resign(self) -> None:
        if self.store.release_leadership(self.cfg.lease_name, self.holder):
            log.info("scheduler %s gave up the leader lease", self.holder)
        self._term = None

    def lead(self) -> bool:
        """Take or renew the leader lease; log when this scheduler starts or stops leading."""
        lease = self.store.take_leadership(
            self.cfg.lease_name, self.holder, ttl=self.cfg.lease_ttl_s, at=self.clock.now()
        )
        term = lease.term if lease else None
        if term != self._term:
            if term is None:
                log.warning("scheduler %s is no longer the leader; standing by", self.holder)
            else:
                log.info("scheduler %s leads (term %s)", self.holder, term)
        self._term = term
        return term is not None

    def step(self) -> PassReport:
        """One pass; does nothing but try for the lease unless this scheduler leads."""
        if not self.lead():
            return PassReport(leader=False)
        report = PassReport(leader=True, term=self._term)
        now = self.clock.now()
        self._reap(now)
        report.enqueued = self.fire_triggers(now)
        if not self.lead():
            return PassReport(leader=False, enqueued=report.enqueued)
        self.decide_held(self.clock.now(), report)
        for hook in self._hooks:
            try:
                hook(self)
            except Exception:
                log.exception("scheduler loop hook %r failed", hook)
        return report

    def _reap(self, now: dt.datetime) -> None:
        """Fail runs of dead workers now and then, so their downstream runs are decided."""
        if self._last_reap and (now - self._last_reap).total_seconds() < 10:
            return
        self._last_reap = now
        fw = self.settings.framework
        for reaped in self.store.reap_orphans(
            now, unleased_grace=fw.lease_ttl_s * 2, queued_ttl=fw.queued_ttl_s
        ):
            log.warning("run %s of %s: %s", reaped.run_id, reaped.job, reaped.reason)

    # -- triggers -------------------------------------------------------------------------

    def fire_triggers(self, now: dt.datetime) -> list[int]:
        """Enqueue what every trigger of every job asks for; returns the runs made."""
        made: list[int] = []
        for job in self.registry:
            if job.name in self.cfg.paused:
                continue
            for trigger in job.schedule.triggers:
                try:
                    made.extend(self._fire(job, trigger, now))
                except Exception:
                    log.exception("job %s: trigger %s failed; trying again", job.name, trigger.key)
        return made

    def _fire(self, job: Job, trigger: object, now: dt.datetime) -> list[int]:
        key = trigger.key  # type: ignore[attr-defined]
        cursor = self.store.get_cursor(job.name, key)
        evaluation = self.events.evaluate(job, trigger, cursor, now)  # type: ignore[arg-type]
        made = []
        for firing in evaluation.firings:
            done = enqueue(
                self.store, job, firing.request, why=firing.why, limits=self.cfg, today=now.date()
            )
            if done.created:
                made.append(done.run.id)
                log.info("job %s: run %s enqueued (%s)", job.name, done.run.id, firing.why)
        if evaluation.cursor is not None:
            self.store.set_cursor(job.name, key, evaluation.cursor, at=now)
        return made

    # -- held runs ------------------------------------------------------------------------

    def decide_held(self, now: dt.datetime, report: PassReport | None = None) -> PassReport:
        """Decide each held run; release those that may start, by aged priority within limits."""
        report = report or PassReport(leader=True, term=self._term)
        self.store.forget_finished_waits()
        ready: list[tuple[Run, RunWait, Job]] = []
        for run, wait in self.store.waiting_runs():
            try:
                job = self.registry.get(run.job)
            except UnknownJobError as exc:
                self._end(run, RunState.FAILED, f"failed: {exc}", report)
                continue
            try:
                decision = self._gate(run, job, now)
            except Exception as exc:
                log.exception("run %s of %s: checks failed", run.id, run.job)
                decision = Decision.wait(f"checks could not run: {exc!r}")
            if decision.action is Action.START:
                ready.append((run, wait, job))
            elif decision.action is Action.WAIT:
                self._wait(run, decision.reason, now, report)
            elif decision.action is Action.SKIP:
                self._end(run, RunState.SKIPPED, decision.reason, report)
            else:
                self._end(run, RunState.FAILED, decision.reason, report)
        self._release_within_limits(ready, now, report)
        return report

    def _gate(self, run: Run, job: Job, now: dt.datetime) -> Decision:
        for name in job.upstream:
            upstream = self.registry.get(name)
            decision = gates.upstream_decision(
                run,
                upstream,
                self._through_retries(self.store.runs_before(name, run.id)),
                same_partitioning=same_partitioning(job, upstream),
            )
            if decision.action is not Action.START:
                return decision
        for decision in (
            gates.preconditions_decision(job, run, self.facts, now),
            gates.window_decision(job.schedule.window, now),
            gates.executors_decision(job.schedule.free_executors, self.free_executors()),
        ):
            if decision.action is not Action.START:
                return decision
        return Decision.start()

    def _through_retries(self, runs: list[RunPartitions]) -> list[RunPartitions]:
        """An upstream run that failed but was retried (a dead worker's run requeued, a
        `edgebatch retry`) is judged by its newest retry, which covers the same partitions."""
        out = []
        for rp in runs:
            if rp.run.state in (RunState.FAILED, RunState.CANCELLED):
                retry = self.store.latest_retry(rp.run.id)
                if retry is not None:
                    rp = dataclasses.replace(rp, run=retry)
            out.append(rp)
        return out

    def _release_within_limits(
        self, ready: list[tuple[Run, RunWait, Job]], now: dt.datetime, report: PassReport
    ) -> None:
        """Release by aged priority while the job's, the queue's and the overall limit allow."""
        going = self.store.active_run_counts()
        per_job: dict[str, int] = {}
        per_queue: dict[str, int] = {}
        for (job_name, queue), n in going.items():
            per_job[job_name] = per_job.get(job_name, 0) + n
            per_queue[queue] = per_queue.get(queue, 0) + n
        total = sum(going.values())
        ready.sort(
            key=lambda x: (
                -gates.aged_priority(x[0], x[1].since, now, self.cfg.aging_per_minute),
                x[0].id,
            )
        )
        for run, wait, job in ready:
            limit = self._limit_reached(job, run.queue, per_job, per_queue, total)
            if limit:
                self._wait(run, limit, now, report)
                continue
            waited = (now - wait.since).total_seconds()
            if self.store.release_held_run(
                run.id, f"released to the workers after {waited:.0f} s held: every check passed"
            ):
                per_job[job.name] = per_job.get(job.name, 0) + 1
                per_queue[run.queue] = per_queue.get(run.queue, 0) + 1
                total += 1
                report.released.append(run.id)

    def _limit_reached(
        self,
        job: Job,
        queue: str,
        per_job: dict[str, int],
        per_queue: dict[str, int],
        total: int,
    ) -> str | None:
        job_limit = job.schedule.max_running
        if job_limit is not None and per_job.get(job.name, 0) >= job_limit:
            return (
                f"limit: job {job.name} has {per_job.get(job.name, 0)} run(s) going "
                f"(max_running {job_limit})"
            )
        queue_limit = self.cfg.max_running_per_queue.get(queue, 0)
        if queue_limit and per_queue.get(queue, 0) >= queue_limit:
            return (
                f"limit: queue {queue} has {per_queue.get(queue, 0)} run(s) going "
                f"(max_running_per_queue {queue_limit})"
            )
        if self.cfg.max_running and total >= self.cfg.max_running:
            return f"limit: {total} run(s) going over all jobs (max_running {self.cfg.max_running})"
        return None

    def _wait(self, run: Run, reason: str, now: dt.datetime, report: PassReport) -> None:
        report.waiting.append(run.id)
        if self.store.note_wait(run.id, reason, at=now):
            self.store.append_log(run.id, f"waiting: {reason}", logger="scheduler")

    def _end(self, run: Run, state: RunState, reason: str, report: PassReport) -> None:
        if self.store.end_waiting_run(run.id, state, reason):
            (report.skipped if state is RunState.SKIPPED else report.failed).append(run.id)
            log.info("run %s of %s %s: %s", run.id, run.job, state, reason)
