"""Turning a `RunRequest` into a queued run, held for the scheduler's checks or not.

The plan is made without Spark (named partitions as named, a range or an incremental
request from what the store says was loaded), and written to the run's log with the
request, as every other way of starting a run does. A run with a `run_key` already
used is not made again: that is what makes a tick or event start one run at most.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING

from edgebatch.framework.definitions import Job
from edgebatch.framework.planning import plan_partitions
from edgebatch.framework.requests import RunRequest
from edgebatch.framework.state import NewLogLine, Run, StateStore

if TYPE_CHECKING:
    from edgebatch.settings import SchedulerSettings

HELD = "new: waiting for the scheduler to check upstream runs, window, limits and preconditions"


def needs_scheduler(job: Job, limits: SchedulerSettings | None = None) -> bool:
    """Whether a run of `job` must pass the scheduler's checks before a worker may take it:
    it has upstream jobs or gates, or an overall or queue limit applies to it."""
    limited = limits is not None and bool(
        limits.max_running or limits.max_running_per_queue.get(job.queue)
    )
    return bool(job.upstream) or job.schedule.gated or limited


@dataclasses.dataclass(frozen=True)
class Enqueued:
    """What enqueueing did: the run, whether this call made it, whether it is held."""

    run: Run
    created: bool
    held: bool


def enqueue(
    store: StateStore,
    job: Job,
    request: RunRequest,
    *,
    why: str,
    hold: bool | None = None,
    limits: SchedulerSettings | None = None,
    today: dt.date | None = None,
) -> Enqueued:
    """Queue a run of `job` for `request`, logging the request, the plan and `why`.

    `hold` None: held when `needs_scheduler(job, limits)`.
    """
    hold = needs_scheduler(job, limits) if hold is None else hold
    if request.run_key is not None:
        existing = store.run_by_key(request.run_key)
        if existing is not None:
            return Enqueued(existing, False, store.get_wait(existing.id) is not None)
    plan = plan_partitions(
        job, request, loaded=store.loaded_partitions(job.name), input_changes=None, today=today
    )
    who = request.requester()
    priority = job.priority if request.priority is None else request.priority
    queue = job.queue if request.queue is None else request.queue
    if hold:
        run, created = store.create_waiting_run(
            job.name,
            reason=HELD,
            partitions=plan.to_run,
            trigger=request.trigger,
            triggered_by=who,
            params=dict(request.params),
            priority=priority,
            queue=queue,
            run_key=request.run_key,
        )
    else:
        run, created = store.create_run_once(
            job.name,
            partitions=plan.to_run,
            trigger=request.trigger,
            triggered_by=who,
            params=dict(request.params),
            priority=priority,
            queue=queue,
            run_key=request.run_key,
        )
    if not created:
        return Enqueued(run, False, store.get_wait(run.id) is not None)
    store.audit(who, "trigger", f"job:{job.name}", {"run": run.id, "trigger": str(request.trigger)})
    store.append_logs(
        run.id,
        [
            NewLogLine(f"requested: {request.describe()}", logger="planner"),
            *(NewLogLine(line, logger="planner") for line in plan.log_lines()),
            NewLogLine(
                f"enqueued: {why}" + ("; held for the scheduler's checks" if hold else ""),
                logger="scheduler",
            ),
        ],
    )
    return Enqueued(run, True, hold)
