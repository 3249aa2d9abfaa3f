"""Request and response models of the API, apart from the store's records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field

from edgebatch.framework.state import Attempt, Iteration, LogLine, Run

NAME = r"^[A-Za-z0-9_-]{1,64}$"


def to_json(fields: dict[str, Any]) -> bytes:
    """A response's fields (from the `*_fields` functions below) as the JSON its model
    would give, without validating them once more on the way out: they come from the
    store's typed records, and validating a log page of 100 lines took four times as long
    as writing it. The route still names the model (it documents the answer);
    tests/api/test_plain_json.py holds the two outputs byte-equal."""
    return pydantic_core.to_json(fields, inf_nan_mode="null")


class RunOut(BaseModel):
    id: int
    job: str
    state: str
    trigger: str
    triggered_by: str
    tenant: str | None
    queue: str
    partitions: list[str]
    params: dict[str, Any]
    priority: int
    retry_of: int | None
    run_key: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    error: str | None
    iterations: dict[str, int] = Field(default_factory=dict, description="count per state")

    @classmethod
    def of(cls, run: Run, counts: dict[str, int] | None = None) -> RunOut:
        return cls.model_validate(run_fields(run, counts))


def run_fields(run: Run, counts: dict[str, int] | None = None) -> dict[str, Any]:
    """A `RunOut`'s fields as a dict. Pages are validated once from these (one call into
    pydantic for a whole page, not one per item and again for the page)."""
    from edgebatch.framework.state.queries import run_tenant

    end = run.ended_at
    return {
        "id": run.id,
        "job": run.job,
        "state": str(run.state),
        "trigger": run.trigger,
        "triggered_by": run.triggered_by,
        "tenant": run_tenant(run),
        "queue": run.queue,
        "partitions": list(run.partitions),
        "params": dict(run.params),
        "priority": run.priority,
        "retry_of": run.retry_of,
        "run_key": run.run_key,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "ended_at": end,
        "duration_s": (end - run.started_at).total_seconds() if end and run.started_at else None,
        "error": run.error,
        "iterations": dict(counts or {}),
    }


class AttemptOut(BaseModel):
    number: int
    state: str
    started_at: datetime
    ended_at: datetime | None
    error: str | None

    @classmethod
    def of(cls, a: Attempt) -> AttemptOut:
        return cls.model_validate(attempt_fields(a))


def attempt_fields(a: Attempt) -> dict[str, Any]:
    return {
        "number": a.number,
        "state": str(a.state),
        "started_at": a.started_at,
        "ended_at": a.ended_at,
        "error": a.error,
    }


class IterationOut(BaseModel):
    id: int
    partition: str
    state: str
    attempts: int
    rows_in: int | None
    rows_out: int | None
    stages_done: int
    stages_total: int
    tasks_done: int
    tasks_total: int
    progress: float | None = Field(description="tasks done / tasks total, when Spark told")
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    error: str | None
    attempt_list: list[AttemptOut] = Field(default_factory=list)

    @classmethod
    def of(cls, it: Iteration, attempts: list[Attempt] | None = None) -> IterationOut:
        return cls.model_validate(iteration_fields(it, attempts))


def iteration_fields(it: Iteration, attempts: list[Attempt] | None = None) -> dict[str, Any]:
    """An `IterationOut`'s fields as a dict (see `run_fields`)."""
    end = it.ended_at
    return {
        "id": it.id,
        "partition": it.partition_key,
        "state": str(it.state),
        "attempts": it.attempts,
        "rows_in": it.rows_in,
        "rows_out": it.rows_out,
        "stages_done": it.stages_done,
        "stages_total": it.stages_total,
        "tasks_done": it.tasks_done,
        "tasks_total": it.tasks_total,
        "progress": (it.tasks_done / it.tasks_total) if it.tasks_total else None,
        "started_at": it.started_at,
        "ended_at": end,
        "duration_s": (end - it.started_at).total_seconds() if end and it.started_at else None,
        "error": it.error,
        "attempt_list": [attempt_fields(a) for a in attempts or ()],
    }


def run_detail_fields(
    run: Run, its: list[Iteration], attempts: dict[int, list[Attempt]]
) -> dict[str, Any]:
    """A `RunDetail`'s fields: the run, its iterations in order with their attempts (by
    iteration id), counts of iterations by state and the rows they read and wrote."""
    counts: dict[str, int] = {}
    for it in its:
        counts[str(it.state)] = counts.get(str(it.state), 0) + 1
    rows_in = [it.rows_in for it in its if it.rows_in is not None]
    rows_out = [it.rows_out for it in its if it.rows_out is not None]
    return {
        **run_fields(run, counts),
        "iteration_list": [iteration_fields(it, attempts.get(it.id)) for it in its],
        "rows_in": sum(rows_in) if rows_in else None,
        "rows_out": sum(rows_out) if rows_out else None,
    }


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page")


class RunDetail(RunOut):
    iteration_list: list[IterationOut]
    rows_in: int | None
    rows_out: int | None


class LogLineOut(BaseModel):
    id: int
    iteration_id: int | None
    ts: datetime
    level: str
    logger: str
    message: str

    @classmethod
    def of(cls, line: LogLine) -> LogLineOut:
        return cls.model_validate(log_line_fields(line))


def log_line_fields(line: LogLine) -> dict[str, Any]:
    """A `LogLineOut`'s fields as a dict (see `run_fields`)."""
    return {
        "id": line.id,
        "iteration_id": line.iteration_id,
        "ts": line.ts,
        "level": line.level,
        "logger": line.logger,
        "message": line.message,
    }


class LogPage(BaseModel):
    items: list[LogLineOut]
    next_after: int = Field(description="pass as ?after= to read on from here")
    finished: bool = Field(description="the run has ended (no more lines will come)")


class RunSubmit(BaseModel):
    """A run request. Give `partitions` (or a producer's explicit `iterations`: the same
    thing, one iteration per item), or a `start`..`end` range, or neither (what is due)."""

    model_config = ConfigDict(extra="forbid")

    job: str = Field(min_length=1, max_length=200)
    partitions: list[str] = Field(default_factory=list, max_length=10_000)
    iterations: list[str] = Field(default_factory=list, max_length=10_000)
    start: str | None = Field(None, max_length=100)
    end: str | None = Field(None, max_length=100)
    rerun: bool = False
    priority: int | None = Field(None, ge=-1000, le=1000)
    queue: str | None = Field(None, pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    tenant: str | None = Field(None, pattern=NAME)
    run_key: str | None = Field(None, min_length=1, max_length=300)
    params: dict[str, str | int | float | bool] = Field(default_factory=dict, max_length=100)


class Submitted(RunOut):
    created: bool = Field(description="False when run_key named a run made before")


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class MeOut(BaseModel):
    name: str
    kind: str
    role: str
    tenants: list[str] | None = Field(description="None: every tenant")
    csrf_token: str | None = Field(None, description="send as X-CSRF-Token with every change")
