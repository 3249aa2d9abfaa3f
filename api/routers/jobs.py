"""Jobs: their definitions (from the registry), last runs, success rate and duration trend.

A job with a cron `schedule` (set by the scheduler's definitions) shows its next fire
times; a job without one shows none. The figures count only the runs the caller may see.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from edgebatch.api.deps import Runtime, Viewer
from edgebatch.api.errors import NotFound
from edgebatch.api.schemas import RunOut
from edgebatch.framework.definitions import Job
from edgebatch.framework.errors import UnknownJobError

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


class JobOut(BaseModel):
    name: str
    description: str
    definition: dict[str, Any]
    queue: str
    pool: str
    priority: int
    schedule: str | None = Field(None, description="cron expression, when the job has one")
    next_fire_times: list[datetime] = Field(default_factory=list)
    runs: int = Field(description="runs counted (the most recent, up to window)")
    success_rate: float | None
    durations_s: list[float] = Field(description="successful runs' durations, oldest first")
    last_run: RunOut | None


def next_fires(job: Job, count: int = 3, now: datetime | None = None) -> tuple[str | None, list]:
    schedule = getattr(job, "schedule", None)
    expression = getattr(schedule, "cron", schedule)
    if not isinstance(expression, str) or not expression:
        return None, []
    from croniter import croniter

    try:
        it = croniter(expression, now or datetime.now(UTC))
        return expression, [it.get_next(datetime) for _ in range(count)]
    except (ValueError, KeyError):
        return expression, []


def job_out(rt, job: Job, principal, window: int) -> JobOut:
    stats = rt.store.job_run_stats(job.name, window=window, tenants=principal.tenants)
    schedule, fires = next_fires(job)
    return JobOut(
        name=job.name,
        description=job.description,
        definition=job.summary(),
        queue=getattr(job, "queue", "default"),
        pool=job.pool,
        priority=job.priority,
        schedule=schedule,
        next_fire_times=fires,
        runs=stats.runs,
        success_rate=stats.success_rate,
        durations_s=list(stats.durations_s),
        last_run=RunOut.of(stats.last_run) if stats.last_run else None,
    )


@router.get("", response_model=list[JobOut], summary="Every job, with its recent runs' figures")
def list_jobs(
    principal: Viewer, rt: Runtime, window: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[JobOut]:
    return [job_out(rt, job, principal, window) for job in rt.registry()]


@router.get("/{name}", response_model=JobOut, summary="One job")
def get_job(
    name: str, principal: Viewer, rt: Runtime, window: Annotated[int, Query(ge=1, le=500)] = 50
) -> JobOut:
    try:
        job = rt.registry().get(name)
    except UnknownJobError as exc:
        raise NotFound(str(exc)) from None
    return job_out(rt, job, principal, window)
