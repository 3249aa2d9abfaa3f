"""What the store hands out: frozen dataclasses, never ORM objects, and how rows become them.

Plain values can cross threads, processes and the API's response models
without a database session behind them, and compare equal in tests.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any

from edgebatch.framework.state.states import AttemptState, IterationState, RunState, WorkerState

if TYPE_CHECKING:
    from edgebatch.framework.state import models


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

    @classmethod
    def from_row(cls, x: models.Job) -> JobRecord:
        return cls(
            name=x.name,
            definition_hash=x.definition_hash,
            summary=dict(x.summary or {}),
            pool=x.pool,
            priority=x.priority,
            tags=tuple(x.tags or ()),
            first_seen_at=x.first_seen_at,
            last_seen_at=x.last_seen_at,
        )


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
    priority: int = 0
    run_key: str | None = None
    queue: str = "default"

    @property
    def finished(self) -> bool:
        return self.state not in (RunState.QUEUED, RunState.RUNNING)

    @classmethod
    def from_row(cls, x: models.Run) -> Run:
        return cls(
            id=x.id,
            job=x.job,
            state=RunState(x.state),
            trigger=x.trigger,
            triggered_by=x.triggered_by,
            partitions=tuple(x.partitions or ()),
            params=dict(x.params or {}),
            retry_of=x.retry_of,
            created_at=x.created_at,
            started_at=x.started_at,
            ended_at=x.ended_at,
            error=x.error,
            priority=x.priority,
            run_key=x.run_key,
            queue=x.queue,
        )


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

    @classmethod
    def from_row(cls, x: models.Iteration) -> Iteration:
        return cls(
            id=x.id,
            run_id=x.run_id,
            partition_key=x.partition_key,
            state=IterationState(x.state),
            attempts=x.attempts,
            rows_in=x.rows_in,
            rows_out=x.rows_out,
            stages_done=x.stages_done,
            stages_total=x.stages_total,
            tasks_done=x.tasks_done,
            tasks_total=x.tasks_total,
            started_at=x.started_at,
            ended_at=x.ended_at,
            updated_at=x.updated_at,
            error=x.error,
        )


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

    @classmethod
    def from_row(cls, x: models.Attempt) -> Attempt:
        return cls(
            id=x.id,
            iteration_id=x.iteration_id,
            number=x.number,
            state=AttemptState(x.state),
            started_at=x.started_at,
            ended_at=x.ended_at,
            error=x.error,
        )


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

    @classmethod
    def from_row(cls, x: models.LogLine) -> LogLine:
        return cls(
            id=x.id,
            run_id=x.run_id,
            iteration_id=x.iteration_id,
            ts=x.ts,
            level=x.level,
            logger=x.logger,
            message=x.message,
        )


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

    @classmethod
    def from_row(cls, x: models.Lease) -> Lease:
        return cls(
            run_id=x.run_id,
            holder=x.holder,
            acquired_at=x.acquired_at,
            heartbeat_at=x.heartbeat_at,
            expires_at=x.expires_at,
        )


@dataclasses.dataclass(frozen=True)
class ReapedRun:
    """A run found running with a dead holder and marked failed, with what else was failed."""

    run_id: int
    job: str
    holder: str | None
    expired_at: datetime | None
    reason: str
    iteration_ids: tuple[int, ...]
    # The queued retry of its unfinished partitions, when its holder was a worker.
    requeued_as: int | None = None


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """Who (`principal`) did what (`action`) to which `target`, and when."""

    id: int
    ts: datetime
    principal: str
    action: str
    target: str
    detail: dict[str, Any]

    @classmethod
    def from_row(cls, x: models.AuditEntry) -> AuditEntry:
        return cls(
            id=x.id,
            ts=x.ts,
            principal=x.principal,
            action=x.action,
            target=x.target,
            detail=dict(x.detail or {}),
        )


@dataclasses.dataclass(frozen=True)
class LeaderLease:
    """Who leads the schedulers sharing a store, until when, and in which term."""

    name: str
    holder: str
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
    term: int

    @classmethod
    def from_row(cls, x: models.SchedulerLease) -> LeaderLease:
        return cls(x.name, x.holder, x.acquired_at, x.heartbeat_at, x.expires_at, x.term)


@dataclasses.dataclass(frozen=True)
class RunWait:
    """A queued run the scheduler holds back: why, since when, when it last looked."""

    run_id: int
    reason: str
    since: datetime
    checked_at: datetime

    @classmethod
    def from_row(cls, x: models.RunWait) -> RunWait:
        return cls(x.run_id, x.reason, x.since, x.checked_at)


@dataclasses.dataclass(frozen=True)
class RunPartitions:
    """A run and the partitions it covers (its iterations' keys, else those it asked for)."""

    run: Run
    partitions: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Worker:
    """A worker as it last reported: `health` holds its cpu, memory, runs and executors."""

    worker_id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    state: WorkerState
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    health: dict[str, Any]

    @classmethod
    def from_row(cls, x: models.Worker) -> Worker:
        return cls(
            worker_id=x.worker_id,
            host=x.host,
            pid=x.pid,
            queues=tuple(x.queues or ()),
            state=WorkerState(x.state),
            started_at=x.started_at,
            heartbeat_at=x.heartbeat_at,
            stopped_at=x.stopped_at,
            health=dict(x.health or {}),
        )


@dataclasses.dataclass(frozen=True)
class Notification:
    """One delivery in the outbox: an event of a run, to a contact, through a channel.

    `state` is `pending` (due at `next_attempt_at`), `delivered` or `failed` (given up);
    `payload` is the event as found (job, run, state, partitions, error), sent as it is.
    """

    id: int
    run_id: int
    event: str
    channel: str
    contact: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    payload: dict[str, Any]

    @classmethod
    def from_row(cls, x: models.Notification, payload: dict[str, Any]) -> Notification:
        return cls(
            id=x.id,
            run_id=x.run_id,
            event=x.event,
            channel=x.channel,
            contact=x.contact,
            state=x.state,
            attempts=x.attempts,
            created_at=x.created_at,
            next_attempt_at=x.next_attempt_at,
            delivered_at=x.delivered_at,
            last_error=x.last_error,
            payload=dict(payload or {}),
        )
