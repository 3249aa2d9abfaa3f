"""What the store hands out: frozen dataclasses, never ORM objects.

Plain values can cross threads, processes and the API's response models
without a database session behind them, and compare equal in tests.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from edgebatch.framework.state.states import AttemptState, IterationState, RunState


@dataclasses.dataclass(frozen=True)
class JobRecord:
    """A job definition as the registry last saw it."""

    name: str
    definition_hash: str
    summary: dict[str, Any]
    pool: str
    priority: int
    tags: tuple[str, ...]
    first_seen_at: datetime
    last_seen_at: datetime


@dataclasses.dataclass(frozen=True)
class Run:
    """One execution of a job; `retry_of` links a retry to the run it repeats."""

    id: int
    job: str
    state: RunState
    trigger: str
    triggered_by: str
    partitions: tuple[str, ...]
    params: dict[str, Any]
    retry_of: int | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    error: str | None

    @property
    def finished(self) -> bool:
        return self.state not in (RunState.QUEUED, RunState.RUNNING)


@dataclasses.dataclass(frozen=True)
class Iteration:
    """One partition of a run."""

    id: int
    run_id: int
    partition_key: str
    state: IterationState
    attempts: int
    rows_in: int | None
    rows_out: int | None
    stages_done: int
    stages_total: int
    tasks_done: int
    tasks_total: int
    started_at: datetime | None
    ended_at: datetime | None
    updated_at: datetime
    error: str | None


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One try of an iteration, numbered from 1."""

    id: int
    iteration_id: int
    number: int
    state: AttemptState
    started_at: datetime
    ended_at: datetime | None
    error: str | None


@dataclasses.dataclass(frozen=True)
class LogLine:
    """A log line; pass the last `id` seen as `after_id` to read the next ones."""

    id: int
    run_id: int
    iteration_id: int | None
    ts: datetime
    level: str
    logger: str
    message: str


@dataclasses.dataclass(frozen=True)
class NewLogLine:
    """A log line to append; `ts` defaults to the store's clock."""

    message: str
    level: str = "INFO"
    logger: str = ""
    iteration_id: int | None = None
    ts: datetime | None = None


@dataclasses.dataclass(frozen=True)
class Lease:
    """A run's lease: `holder` is `host:pid:uuid` of the process that renews it."""

    run_id: int
    holder: str
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime


@dataclasses.dataclass(frozen=True)
class ReapedRun:
    """A run found running with a dead holder and marked failed, with what else was failed."""

    run_id: int
    job: str
    holder: str | None
    expired_at: datetime | None
    reason: str
    iteration_ids: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """Who (`principal`) did what (`action`) to which `target`, and when."""

    id: int
    ts: datetime
    principal: str
    action: str
    target: str
    detail: dict[str, Any]
