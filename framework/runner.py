"""The warm runner: one long-lived SparkSession runs many runs and iterations in threads.

Each iteration's thread puts its Spark jobs in the job's fair-scheduler pool
(`spark.scheduler.pool`) and in a job group of its own, so a critical job overtakes a
backfill, a cancel or timeout stops exactly that iteration's Spark jobs, and the status
tracker tells its progress. A watch thread renews each run's lease (no ghost runs: a
run whose holder dies is failed by whichever edgebatch process looks next), samples
progress, and reaps other processes' orphans.
"""

from __future__ import annotations

import dataclasses
import functools
import getpass
import logging
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from edgebatch.framework.changes import newest_input_files
from edgebatch.framework.context import IterationContext, route_logs
from edgebatch.framework.definitions import Job
from edgebatch.framework.enqueue import retry_request_for
from edgebatch.framework.errors import FrameworkError, StepFailed
from edgebatch.framework.planning import PartitionPlan, plan_partitions, record_run
from edgebatch.framework.registry import JobRegistry, record_job
from edgebatch.framework.requests import RunRequest
from edgebatch.framework.state import (
    IterationState,
    LeaseError,
    NewLogLine,
    Run,
    RunState,
    StateError,
    StateStore,
    make_holder,
)
from edgebatch.framework.steps import run_steps
from edgebatch.warehouse.uri import WarehouseRoot

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from edgebatch.settings import Settings

log = logging.getLogger(__name__)

_POOL = "spark.scheduler.pool"
_GROUP_PROPS = ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel")


@dataclasses.dataclass
class _ActiveRun:
    """What this process knows of a run it is executing."""

    run_id: int
    job: Job
    partitions: list[str]
    params: Mapping[str, Any]
    pool: str
    claimed: bool = False
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    lost: bool = False
    groups: dict[int, str] = dataclasses.field(default_factory=dict)
    group_started: dict[int, float] = dataclasses.field(default_factory=dict)
    last_progress: dict[int, tuple[int, int, int, int]] = dataclasses.field(default_factory=dict)
    processes: dict[int, subprocess.Popen] = dataclasses.field(default_factory=dict)
    timed_out: set[int] = dataclasses.field(default_factory=set)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


class Runner:
    """Executes runs of registry jobs in this process's SparkSession."""

    def __init__(
        self,
        spark: SparkSession,
        store: StateStore,
        settings: Settings,
        registry: JobRegistry,
        *,
        holder: str | None = None,
        on_run_done: Callable[[int], None] | None = None,
    ) -> None:
        self.spark = spark
        self.store = store
        self.settings = settings
        self.registry = registry
        self.root = WarehouseRoot.parse(settings.warehouse_root)
        self.holder = holder or make_holder()
        self._fw = settings.framework
        self._active: dict[int, _ActiveRun] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        # Told the id of each run that stops executing here (a worker claims the next one).
        self._on_run_done = on_run_done
        for job in registry:
            record_job(store, job)
        self.reap()
        self._watch = threading.Thread(target=self._watch_loop, name="edgebatch-watch", daemon=True)
        self._watch.start()

    # -- triggering ------------------------------------------------------------------------

    def plan(self, request: RunRequest, *, look_at_inputs: bool = True) -> PartitionPlan:
        """What a run for `request` would cover, and why it leaves the rest out.

        Named partitions and reruns run as asked; otherwise the job's inputs are asked
        how new each partition's data is, so late windows reopen a loaded day.
        """
        job = self.registry.get(request.job)
        changes = None
        if look_at_inputs and not request.partitions and not request.rerun:
            changes = newest_input_files(self.spark, self.root, job)
        return plan_partitions(
            job,
            request,
            loaded=self.store.loaded_partitions(job.name),
            input_changes=changes,
        )

    def submit(self, request: RunRequest) -> Run:
        """Plan and start a run in the background; returns it as queued.

        A request whose `run_key` made a run already returns that run, untouched.
        """
        job = self.registry.get(request.job)
        self.reap()
        if request.run_key is not None:
            existing = self.store.run_by_key(request.run_key)
            if existing is not None:
                log.info("run_key %s: run %s exists already", request.run_key, existing.id)
                return existing
        run, created = record_run(self.store, job, request, self.plan(request))
        return self.start(run.id) if created else run

    def retry(self, run_id: int, *, triggered_by: str = "") -> Run:
        """A new run of only the partitions of `run_id` that did not succeed."""
        return self.submit(retry_request_for(self.store, run_id, triggered_by=triggered_by))

    def start(self, run_id: int, *, claimed: bool = False, pool: str | None = None) -> Run:
        """Execute an existing queued run (one the launcher or the API created) here.

        `claimed`: this process has claimed the run already (a worker's
        `claim_next_run` with this runner's holder), so it is running and leased.
        `pool`: the fair-scheduler pool of its Spark jobs instead of the job's own
        (a worker runs a queue's runs in the queue's pool).
        """
        run = self.store.get_run(run_id)
        job = self.registry.get(run.job)
        active = _ActiveRun(
            run_id, job, list(run.partitions), run.params, pool or job.pool, claimed
        )
        with self._lock:
            if run_id in self._active:
                raise FrameworkError(f"run {run_id} is already executing in this process")
            self._active[run_id] = active
        threading.Thread(
            target=self._drive, args=(active,), name=f"edgebatch-run-{run_id}", daemon=True
        ).start()
        return run

    def run(self, request: RunRequest) -> Run:
        """Submit and wait: the CLI's and spark-submit's way."""
        run = self.submit(request)
        return self.wait(run.id)

    def wait(self, run_id: int, timeout: float | None = None) -> Run:
        """Block until the run has finished (here or in another process) or `timeout` passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                active = self._active.get(run_id)
            if active is not None:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                active.done.wait(left)
            run = self.store.get_run(run_id)
            if run.finished and (active is None or active.done.is_set()):
                return run
            if deadline is not None and time.monotonic() >= deadline:
                return run
            if active is None:
                time.sleep(0.5)

    def cancel(self, run_id: int, *, by: str | None = None) -> Run:
        """Cancel a run: its Spark jobs, commands and waiting retries stop; state `cancelled`.

        A run executing in another process is cancelled through the store: its holder
        sees that it lost the run at its next heartbeat and stops.
        """
        who = by or getpass.getuser()
        run = self.store.get_run(run_id)
        if run.finished:
            return run
        self.store.audit(who, "cancel", f"run:{run_id}", {"job": run.job})
        with self._lock:
            active = self._active.get(run_id)
        if active is None:
            return self.store.transition_run(
                run_id, RunState.CANCELLED, error=f"cancelled by {who}"
            )
        self._stop_active(active)
        active.done.wait(60)
        return self.store.get_run(run_id)

    def active_runs(self) -> list[int]:
        with self._lock:
            return sorted(self._active)

    def abandon(self, run_id: int, *, timeout: float = 60.0) -> bool:
        """Stop executing a run here without ending it: its Spark jobs and commands stop,
        and the run's state is left to the caller (a stopping worker gives it back to its
        queue). False if the run is not executing here."""
        with self._lock:
            active = self._active.get(run_id)
        if active is None:
            return False
        active.lost = True
        self._stop_active(active)
        active.done.wait(timeout)
        return True

    def running_iterations(self) -> int:
        """Iterations executing in this process now (their Spark jobs' groups are set)."""
        with self._lock:
            active = list(self._active.values())
        total = 0
        for a in active:
            with a.lock:
                total += len(a.groups)
        return total

    def reap(self) -> None:
        """Fail orphaned runs of dead holders (any process may, and should, do this)."""
        for reaped in self.store.reap_orphans(
            unleased_grace=self._fw.lease_ttl_s * 2, queued_ttl=self._fw.queued_ttl_s
        ):
            log.warning("run %s of %s: %s", reaped.run_id, reaped.job, reaped.reason)

    def close(self, *, cancel: bool = True, timeout: float = 60.0) -> None:
        """Stop watching; cancel (or wait for) what still runs."""
        with self._lock:
            active = list(self._active.values())
        for a in active:
            if cancel:
                self._stop_active(a)
        for a in active:
            a.done.wait(timeout)
        self._closed.set()
        self._watch.join(timeout=5)

    # -- executing -------------------------------------------------------------------------

    def _drive(self, active: _ActiveRun) -> None:
        run_id, job = active.run_id, active.job
        try:
            try:
                if not active.claimed:
                    self.store.claim_run(run_id, self.holder, ttl=self._fw.lease_ttl_s)
            except (StateError, LeaseError) as exc:
                log.warning("run %s not started: %s", run_id, exc)
                return
            iterations = self.store.list_iterations(run_id) or self.store.create_iterations(
                run_id, active.partitions
            )
            self.store.append_log(
                run_id,
                f"run {run_id} of {job.name} started by {self.holder}: "
                f"{len(iterations)} partition(s) in pool {active.pool}",
            )
            self._create_outputs(job)
            pending = [i for i in iterations if i.state == IterationState.QUEUED]
            if job.in_order or job.span > 1:
                pending.sort(key=lambda i: i.partition_key)
            spans = spans_of(job, pending)
            if spans:
                workers = max(1, min(len(spans), self._fw.max_parallel_iterations))
                if job.in_order:
                    workers = 1
                with ThreadPoolExecutor(workers, thread_name_prefix=f"run{run_id}") as pool:
                    list(pool.map(lambda span: self._iterate(active, span), spans))
            self._finish(active)
        except Exception as exc:  # the framework's own failure: record it, never hide it
            log.exception("run %s failed in the runner", run_id)
            self._end_run(run_id, RunState.FAILED, f"runner error: {exc!r}")
        finally:
            with self._lock:
                self._active.pop(run_id, None)
            active.done.set()
            if self._on_run_done is not None:
                self._on_run_done(run_id)

    def _create_outputs(self, job: Job) -> None:
        """Create missing output tables once, before iterations race to create them; side
        by side, as each creation mostly waits on its first commit."""
        from edgebatch.warehouse.tables import REGISTRY, ensure_table, is_known_table

        specs = [REGISTRY.get(n) for n in job.outputs if n in REGISTRY]
        missing = [s for s in specs if not is_known_table(self.root, s)]
        if not missing:
            return
        with ThreadPoolExecutor(len(missing), thread_name_prefix="create-outputs") as pool:
            list(pool.map(lambda spec: ensure_table(self.spark, self.root, spec), missing))

    def _finish(self, active: _ActiveRun) -> None:
        if active.lost:
            return
        its = self.store.list_iterations(active.run_id)
        failed = [i for i in its if i.state == IterationState.FAILED]
        if active.cancel.is_set():
            self._end_run(active.run_id, RunState.CANCELLED, "cancelled")
        elif failed:
            detail = "; ".join(f"{i.partition_key}: {i.error}" for i in failed[:5])
            self._end_run(
                active.run_id,
                RunState.FAILED,
                f"{len(failed)} of {len(its)} iteration(s) failed: {detail}",
            )
        else:
            self._end_run(active.run_id, RunState.SUCCEEDED, None)

    def _end_run(self, run_id: int, state: RunState, error: str | None) -> None:
        # The last line goes in with the state: a live log stream ends when it sees the
        # run finished, so a line written after that would never reach it.
        last = NewLogLine(
            f"run {run_id} {state}" + (f": {error}" if error else ""),
            level="INFO" if state is RunState.SUCCEEDED else "ERROR",
        )
        try:
            self.store.transition_run(run_id, state, error=error, log=last)
        except StateError as exc:
            log.warning("run %s could not move to %s: %s", run_id, state, exc)
            return
        self.store.release_lease(run_id, self.holder)

    def _iterate(self, active: _ActiveRun, span: list[Any]) -> None:
        """Attempt one iteration, or a job's span of them together, until it succeeds, runs
        out of attempts or is cancelled. The first iteration of a span leads: its id names
        the Spark job group and carries the rows; the others follow its every move."""
        job = active.job
        sc = self.spark.sparkContext
        iteration_id, followers = span[0].id, [i.id for i in span[1:]]
        while True:
            if active.cancel.is_set() or active.lost:
                for i in (iteration_id, *followers):
                    self._safe_move(i, IterationState.CANCELLED, "cancelled")
                return
            try:
                it = self.store.transition_iteration(iteration_id, IterationState.RUNNING)
                keys = [it.partition_key]
                for f in followers:
                    keys.append(
                        self.store.transition_iteration(f, IterationState.RUNNING).partition_key
                    )
            except StateError as exc:
                log.warning("iteration %s not started: %s", iteration_id, exc)
                return
            ctx = IterationContext(
                spark=self.spark,
                settings=self.settings,
                root=self.root,
                job=job,
                run_id=active.run_id,
                iteration_id=it.id,
                partition=it.partition_key,
                attempt=it.attempts,
                params=active.params,
                store=self.store,
                partitions=tuple(keys),
            )
            name = ctx.bounds["partition"]  # `first..last` over a span
            group = f"edgebatch-run{active.run_id}-it{it.id}-a{it.attempts}"
            sc.setLocalProperty(_POOL, active.pool)
            sc.setJobGroup(group, f"{job.name} {name} #{it.attempts}", True)
            with active.lock:
                active.groups[it.id] = group
                active.group_started[it.id] = time.monotonic()
            route_logs(self.store, active.run_id, it.id)
            timer = None
            if job.timeout_s:
                timer = threading.Timer(job.timeout_s, self._time_out, (active, it.id, group))
                timer.daemon = True
                timer.start()
            started = time.monotonic()
            try:
                run_steps(ctx, functools.partial(self._track_process, active, it.id))
                if it.id in active.timed_out:
                    raise TimeoutError(f"timed out after {job.timeout_s:g} s")
                self.store.transition_iteration(
                    it.id, IterationState.SUCCEEDED, rows_in=ctx.rows_in, rows_out=ctx.rows_out
                )
                for f in followers:
                    self.store.transition_iteration(f, IterationState.SUCCEEDED)
                together = f" (with {len(followers)} more, rows counted here)" if followers else ""
                self.store.append_log(
                    active.run_id,
                    f"partition {name} succeeded in {time.monotonic() - started:.1f} s"
                    f" (attempt {it.attempts}, rows written {ctx.rows_out}){together}",
                    iteration_id=it.id,
                )
                return
            except Exception as exc:
                if not self._after_failure(active, it, exc, started, followers):
                    return
            finally:
                if timer:
                    timer.cancel()
                with active.lock:
                    active.groups.pop(it.id, None)
                    active.group_started.pop(it.id, None)
                for key in (_POOL, *_GROUP_PROPS):
                    sc.setLocalProperty(key, None)  # type: ignore[arg-type]  # None unsets it
                route_logs(None)

    def _after_failure(
        self,
        active: _ActiveRun,
        it: Any,
        exc: Exception,
        started: float,
        followers: Sequence[int] = (),
    ) -> bool:
        """Record a failed attempt; True if another attempt follows (after its backoff).

        The iteration's error is one line naming job, partition, step and attempt; its
        log gets the whole traceback.
        """
        job = active.job
        if it.id in active.timed_out:
            exc = TimeoutError(f"timed out after {job.timeout_s:g} s")
        if isinstance(exc, StepFailed) and exc.traceback_text:
            message, trace = str(exc), exc.traceback_text
        else:
            text = str(exc).strip()
            message = f"job {job.name!r}, partition {it.partition_key!r}, attempt {it.attempts}: "
            message += f"{type(exc).__name__}" + (f": {text.splitlines()[0]}" if text else "")
            trace = "".join(traceback.format_exception(exc))
        if active.cancel.is_set() or active.lost:
            for i in (it.id, *followers):
                self._safe_move(i, IterationState.CANCELLED, "cancelled")
            return False
        self.store.append_log(
            active.run_id,
            f"partition {it.partition_key} attempt {it.attempts} failed after "
            f"{time.monotonic() - started:.1f} s: {message}\n{trace}",
            level="ERROR",
            iteration_id=it.id,
        )
        active.timed_out.discard(it.id)
        if it.attempts < job.retry.attempts:
            delay = job.retry.delay(it.attempts)
            for i in (it.id, *followers):
                self._safe_move(i, IterationState.QUEUED, message)
            self.store.append_log(
                active.run_id,
                f"partition {it.partition_key}: attempt {it.attempts + 1} of "
                f"{job.retry.attempts} in {delay:.1f} s",
                level="WARNING",
                iteration_id=it.id,
            )
            active.cancel.wait(delay)
            return True
        for i in (it.id, *followers):
            self._safe_move(i, IterationState.FAILED, message)
        return False

    def _safe_move(self, iteration_id: int, to: IterationState, error: str | None) -> None:
        try:
            self.store.transition_iteration(iteration_id, to, error=error)
        except StateError as exc:  # reaped or cancelled from elsewhere meanwhile
            log.info("iteration %s stays: %s", iteration_id, exc)

    def _track_process(self, active: _ActiveRun, iteration_id: int, proc: Any) -> None:
        with active.lock:
            if proc is None:
                active.processes.pop(iteration_id, None)
            else:
                active.processes[iteration_id] = proc
        if proc is not None and (active.cancel.is_set() or iteration_id in active.timed_out):
            proc.kill()

    def _time_out(self, active: _ActiveRun, iteration_id: int, group: str) -> None:
        active.timed_out.add(iteration_id)
        self.spark.sparkContext.cancelJobGroup(group)
        with active.lock:
            proc = active.processes.get(iteration_id)
        if proc is not None:
            proc.kill()

    def _stop_active(self, active: _ActiveRun) -> None:
        active.cancel.set()
        with active.lock:
            groups = list(active.groups.values())
            procs = list(active.processes.values())
        for group in groups:
            self.spark.sparkContext.cancelJobGroup(group)
        for proc in procs:
            proc.kill()

    # -- watching --------------------------------------------------------------------------

    def _watch_loop(self) -> None:
        last_beat = time.monotonic()
        while not self._closed.wait(self._fw.progress_interval_s):
            try:
                self._sample_progress()
                if time.monotonic() - last_beat >= self._fw.heartbeat_s:
                    last_beat = time.monotonic()
                    self._heartbeat()
            except Exception:  # the watcher must outlive a hiccup of the store
                log.exception("watch loop")

    def _heartbeat(self) -> None:
        with self._lock:
            active = list(self._active.values())
        for a in active:
            try:
                self.store.renew_lease(a.run_id, self.holder, ttl=self._fw.lease_ttl_s)
            except LeaseError as exc:
                state = self.store.get_run(a.run_id).state
                if state == RunState.QUEUED:
                    continue  # not claimed yet
                if state == RunState.SUCCEEDED:
                    continue  # only this runner ends it so: it finished since the list was taken
                log.warning("run %s: lost its lease (%s); stopping it here", a.run_id, exc)
                a.lost = True
                self._stop_active(a)
        self.reap()

    def _sample_progress(self) -> None:
        """Spark's stage and task counts per running iteration, stored when they change.

        An iteration younger than one interval is not sampled: short iterations pay
        nothing for progress (the sampler's Py4J calls compete with the job's driver).
        """
        sc = self.spark.sparkContext
        if sc is None:  # the session was stopped under us
            return
        tracker = sc.statusTracker()
        now = time.monotonic()
        with self._lock:
            active = list(self._active.values())
        for a in active:
            with a.lock:
                groups = {
                    i: g
                    for i, g in a.groups.items()
                    if now - a.group_started.get(i, now) >= self._fw.progress_interval_s
                }
            for iteration_id, group in groups.items():
                stages_total = stages_done = tasks_total = tasks_done = 0
                for job_id in tracker.getJobIdsForGroup(group):
                    info = tracker.getJobInfo(job_id)
                    if info is None:
                        continue
                    for stage_id in info.stageIds:
                        stage = tracker.getStageInfo(stage_id)
                        if stage is None:
                            continue
                        stages_total += 1
                        tasks_total += stage.numTasks
                        tasks_done += stage.numCompletedTasks
                        stages_done += int(
                            stage.numCompletedTasks >= stage.numTasks and not stage.numActiveTasks
                        )
                figures = (stages_done, stages_total, tasks_done, tasks_total)
                if stages_total and a.last_progress.get(iteration_id) != figures:
                    a.last_progress[iteration_id] = figures
                    self.store.record_progress(
                        iteration_id,
                        stages_done=stages_done,
                        stages_total=stages_total,
                        tasks_done=tasks_done,
                        tasks_total=tasks_total,
                    )


def spans_of(job: Job, pending: list[Any]) -> list[list[Any]]:
    """The queued iterations grouped as they will run: alone, or (a job with a `span`)
    up to `span` consecutive partitions together, in partition order."""
    if job.span <= 1:
        return [[it] for it in pending]
    spans: list[list[Any]] = []
    for it in pending:
        last = spans[-1] if spans else None
        if (
            last is not None
            and len(last) < job.span
            and job.partitioning.between(last[-1].partition_key, it.partition_key)
            == [last[-1].partition_key, it.partition_key]
        ):
            last.append(it)
        else:
            spans.append([it])
    return spans
