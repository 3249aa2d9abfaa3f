"""Asking for work without executing it: queue a run for a worker, ask for a retry, cancel.

The runner executes what it submits; a process without Spark (the API) only records
the queued run, planned the same way (`planning.plan_partitions`, `planning.record_run`),
for a worker to claim. A retry and a cancel mean the same whoever asks: the CLI, the
runner and the API all come through here.
"""

from __future__ import annotations

import getpass

from edgebatch.framework.errors import FrameworkError
from edgebatch.framework.planning import plan_partitions, record_run
from edgebatch.framework.registry import JobRegistry
from edgebatch.framework.requests import RunRequest, retry_request
from edgebatch.framework.state import Run, RunState, StateStore


def enqueue(store: StateStore, registry: JobRegistry, request: RunRequest) -> tuple[Run, bool]:
    """Plan `request` and record it as a queued run; True if this call created it.

    Planned without looking at the inputs (no Spark here): named partitions run as
    named, a range skips what is loaded, an incremental request takes what is not
    loaded yet plus the current period. A `run_key` used before returns that run.
    """
    job = registry.get(request.job)
    if request.run_key is not None:
        existing = store.run_by_key(request.run_key)
        if existing is not None:
            return existing, False
    plan = plan_partitions(job, request, loaded=store.loaded_partitions(job.name))
    return record_run(store, job, request, plan)


def retry_request_for(store: StateStore, run_id: int, *, triggered_by: str = "") -> RunRequest:
    """The request that runs again only what run `run_id` did not finish."""
    old = store.get_run(run_id)
    if not old.finished:
        raise FrameworkError(f"run {run_id} of job {old.job!r} is {old.state}; wait or cancel")
    keys = store.failed_or_unfinished_partitions(run_id)
    if not keys:
        raise FrameworkError(f"run {run_id} of job {old.job!r} has nothing left to retry")
    return retry_request(old.job, run_id, keys, old.params, triggered_by=triggered_by)


def cancel_run(store: StateStore, run_id: int, *, by: str = "") -> Run:
    """Cancel a queued or running run through the store (audited); a finished one stays.

    The process executing it sees at its next heartbeat that it lost the run and stops.
    """
    who = by or getpass.getuser()
    run = store.get_run(run_id)
    if run.finished:
        return run
    store.audit(who, "cancel", f"run:{run.id}", {"job": run.job})
    return store.transition_run(run.id, RunState.CANCELLED, error=f"cancelled by {who}")
