"""Partition planning: which partitions a run covers, and why each other one is left out.

A plan is a value, made by a pure function from the job, the request, what the store
says was loaded when, and (where the runner can look) how new each partition's input
is. It is logged in the run's log line by line, so "why did it (not) run 2026-11-03?"
has an answer, and tests assert on it without Spark.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping

from edgebatch.framework.definitions import Job
from edgebatch.framework.errors import PartitionError
from edgebatch.framework.requests import RunRequest
from edgebatch.framework.state import NewLogLine, Run, StateStore

# Why a partition runs.
NAMED = "named in the request"
RERUN = "rerun asked for"
NOT_LOADED = "not loaded yet"
FILLING = "still filling up (the current period)"
# Why a partition is left out.
LOADED = "already loaded; its input has not changed since"
LOADED_UNKNOWN = "already loaded (input changes not checked here)"
NOT_DUE = "not yet due (its period has not begun)"


@dataclasses.dataclass(frozen=True)
class PartitionDecision:
    """One partition of a plan: whether it runs, and the reason in words."""

    key: str
    runs: bool
    reason: str

    def describe(self) -> str:
        return f"{self.key}: {'run' if self.runs else 'skip'}, {self.reason}"


@dataclasses.dataclass(frozen=True)
class PartitionPlan:
    """The decisions for one request, in partition order."""

    job: str
    decisions: tuple[PartitionDecision, ...]

    @property
    def to_run(self) -> list[str]:
        return [d.key for d in self.decisions if d.runs]

    @property
    def skipped(self) -> list[PartitionDecision]:
        return [d for d in self.decisions if not d.runs]

    def reason(self, key: str) -> str:
        for d in self.decisions:
            if d.key == key:
                return d.reason
        raise KeyError(key)

    def summary(self) -> str:
        return (
            f"plan for {self.job}: {len(self.to_run)} partition(s) to run, "
            f"{len(self.skipped)} skipped"
        )

    def log_lines(self) -> list[str]:
        """What the run's log says of the plan: the summary, then one line per partition."""
        return [self.summary(), *(f"  {d.describe()}" for d in self.decisions)]


def _newer(seen: dt.datetime, loaded: dt.datetime) -> str:
    return (
        f"new input since it was last loaded at {loaded:%Y-%m-%d %H:%M:%S} "
        f"(newest input file {seen:%Y-%m-%d %H:%M:%S})"
    )


def plan_partitions(
    job: Job,
    request: RunRequest,
    *,
    loaded: Mapping[str, dt.datetime] | Iterable[str] = (),
    input_changes: Mapping[str, dt.datetime] | None = None,
    today: dt.date | None = None,
) -> PartitionPlan:
    """The partitions a run of `job` for `request` covers, each with its reason.

    Named partitions run as named. A range (`start`..`end`) is a backfill: its
    partitions not loaded yet, or all of them with `rerun`. Neither: an incremental
    run, the partitions not loaded yet plus the one still filling up. `loaded` maps
    each partition some run loaded to when its last successful attempt started.
    `input_changes` maps partitions to the time of their newest input file; where it
    is given, a loaded partition whose input is newer than its load runs again, and
    an incremental run also takes every partition with input, not only those
    `up_to(today)` lists (a day revised late, a daily job with no start date).
    """
    part = job.partitioning
    today = today or dt.datetime.now(dt.UTC).date()
    done: Mapping[str, dt.datetime | None] = (
        loaded if isinstance(loaded, Mapping) else dict.fromkeys(loaded)
    )
    changes = dict(input_changes or {})
    try:
        if request.partitions:
            keys = [part.validate(p) for p in request.partitions]
            decisions = [PartitionDecision(k, True, NAMED) for k in dict.fromkeys(keys)]
            return PartitionPlan(job.name, tuple(decisions))
        if not request.incremental:
            first, last = request.start or request.end or "", request.end or request.start or ""
            keys = part.between(first, last)
            current = None
        else:
            keys = part.up_to(today)
            current = part.current(today)
            extra = []
            for key in changes:
                try:
                    extra.append(part.validate(key))
                except PartitionError:
                    continue  # an input row that belongs to no partition of this job
            keys = sorted({*keys, *extra})
    except PartitionError as exc:
        raise PartitionError(f"job {job.name!r}: {exc}") from None
    decisions = []
    for key in keys:
        decisions.append(_decide(job, request, key, current, done, changes, input_changes, today))
    return PartitionPlan(job.name, tuple(decisions))


def _decide(
    job: Job,
    request: RunRequest,
    key: str,
    current: str | None,
    done: Mapping[str, dt.datetime | None],
    changes: Mapping[str, dt.datetime],
    input_changes: Mapping[str, dt.datetime] | None,
    today: dt.date,
) -> PartitionDecision:
    if job.partitioning.not_yet_due(key, today):
        return PartitionDecision(key, False, NOT_DUE)
    if request.rerun:
        return PartitionDecision(key, True, RERUN)
    if key not in done:
        return PartitionDecision(key, True, NOT_LOADED)
    if key == current:
        return PartitionDecision(key, True, FILLING)
    loaded_at, seen = done[key], changes.get(key)
    if seen is not None and (loaded_at is None or seen > loaded_at):
        return PartitionDecision(key, True, _newer(seen, loaded_at) if loaded_at else NOT_LOADED)
    return PartitionDecision(key, False, LOADED if input_changes is not None else LOADED_UNKNOWN)


def record_run(
    store: StateStore, job: Job, request: RunRequest, plan: PartitionPlan
) -> tuple[Run, bool]:
    """Create the queued run a request and its plan describe, with the plan in its log.

    With a `run_key` another request already used, that request's run comes back
    (and False: nothing was created or recorded).
    """
    who = request.requester()
    run, created = store.create_run_once(
        job.name,
        partitions=plan.to_run,
        trigger=request.trigger,
        triggered_by=who,
        params=dict(request.params),
        retry_of=request.retry_of,
        priority=job.priority if request.priority is None else request.priority,
        run_key=request.run_key,
        queue=job.queue if request.queue is None else request.queue,
    )
    if not created:
        return run, False  # the run an earlier request with this run_key made: a no-op
    action = "submit" if request.trigger == "submit" else "trigger"
    store.audit(who, action, f"job:{job.name}", {"run": run.id, "trigger": str(request.trigger)})
    store.append_logs(
        run.id,
        [
            NewLogLine(f"requested: {request.describe()}", logger="planner"),
            *(NewLogLine(line, logger="planner") for line in plan.log_lines()),
        ],
    )
    return run, True
