"""The state store's tables as SQLAlchemy 2 typed ORM models.

These are storage models only: the store hands out plain dataclasses (see
`records.py`), so nothing outside this package holds a session-bound object.
The Alembic migrations in `migrations/versions/` create exactly these tables;
a change here needs a new migration (`alembic revision --autogenerate` works
against `target_metadata = Base.metadata`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from edgebatch.framework.state.states import (
    AttemptState,
    IterationState,
    RunState,
    WorkerState,
)

# Names for constraints and indexes, so migrations can refer to them on every backend.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and always returned timezone-aware.

    SQLite has no timezone type and hands back naive values; PostgreSQL's
    `timestamptz` hands back aware ones. This makes both the same. A naive
    value given to the store is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Job(Base):
    """A job definition as last seen by a registry: enough to list and compare, not to run."""

    __tablename__ = "jobs"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    definition_hash: Mapped[str] = mapped_column(String(128))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pool: Mapped[str] = mapped_column(String(100), default="default")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Run(Base):
    """One execution of a job over a set of partitions."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(_in("state", RunState), name="state"),
        Index(None, "job", "id"),
        Index(None, "state", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default=RunState.QUEUED.value)
    trigger: Mapped[str] = mapped_column(String(32))
    triggered_by: Mapped[str] = mapped_column(String(200), default="")
    partitions: Mapped[list[str]] = mapped_column(JSON, default=list)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    retry_of: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The named queue the run waits in; workers claim from the queues they serve.
    queue: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    # The caller's name for the request: a second request with the same key is a no-op.
    run_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)


# A worker's claim: queued runs of its queues, highest priority, then oldest; the index
# holds them in exactly that order, so the claim reads the first row of each queue.
Index("ix_runs_claim", Run.state, Run.queue, Run.priority.desc(), Run.id)


class Iteration(Base):
    """One partition of a run, with its own state, attempts, row counts and progress."""

    __tablename__ = "iterations"
    __table_args__ = (
        CheckConstraint(_in("state", IterationState), name="state"),
        UniqueConstraint("run_id", "partition_key"),
        Index(None, "run_id", "state"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    partition_key: Mapped[str] = mapped_column(String(400))
    state: Mapped[str] = mapped_column(String(16), default=IterationState.QUEUED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    rows_in: Mapped[int | None] = mapped_column(BigInteger)
    rows_out: Mapped[int | None] = mapped_column(BigInteger)
    stages_done: Mapped[int] = mapped_column(Integer, default=0)
    stages_total: Mapped[int] = mapped_column(Integer, default=0)
    tasks_done: Mapped[int] = mapped_column(Integer, default=0)
    tasks_total: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class Attempt(Base):
    """One try of an iteration; the iteration's `attempts` counts these."""

    __tablename__ = "attempts"
    __table_args__ = (
        CheckConstraint(_in("state", AttemptState), name="state"),
        UniqueConstraint("iteration_id", "number"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    iteration_id: Mapped[int] = mapped_column(ForeignKey("iterations.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=AttemptState.RUNNING.value)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class LogLine(Base):
    """A log line of a run (and maybe one of its iterations); `id` is the streaming cursor."""

    __tablename__ = "log_lines"
    __table_args__ = (Index(None, "run_id", "id"), Index(None, "iteration_id", "id"))

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    iteration_id: Mapped[int | None] = mapped_column(
        ForeignKey("iterations.id", ondelete="CASCADE")
    )
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    level: Mapped[str] = mapped_column(String(10))
    logger: Mapped[str] = mapped_column(String(200), default="")
    message: Mapped[str] = mapped_column(Text)


class Lease(Base):
    """Proof that a live process owns a running run; it renews `expires_at` by heartbeat."""

    __tablename__ = "leases"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    holder: Mapped[str] = mapped_column(String(300))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AuditEntry(Base):
    """Who did what to which target: triggers, cancels, retries, config changes."""

    __tablename__ = "audit"
    __table_args__ = (Index(None, "target", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    principal: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(300))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SchedulerLease(Base):
    """Which scheduler leads: one row per lease `name`, taken over once `expires_at` passes."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(300))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Grows by one at each change of holder: a log line can say which term decided.
    term: Mapped[int] = mapped_column(Integer, default=1)


class SchedulerCursor(Base):
    """How far the scheduler has evaluated one trigger of one job (last tick, version, run)."""

    __tablename__ = "scheduler_cursors"

    job: Mapped[str] = mapped_column(String(200), primary_key=True)
    trigger: Mapped[str] = mapped_column(String(300), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RunWait(Base):
    """A queued run the scheduler holds back (upstream runs, window, limits, preconditions).

    No worker claims a run that has a row here; the scheduler deletes the row when
    the run may start, or ends the run (skipped, failed) with the reason.
    """

    __tablename__ = "run_waits"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Worker(Base):
    """A worker process (a warm Spark driver) as it last reported itself by heartbeat."""

    __tablename__ = "workers"
    __table_args__ = (
        CheckConstraint(_in("state", WorkerState), name="state"),
        Index(None, "state", "heartbeat_at"),
    )

    worker_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default=WorkerState.RUNNING.value)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # cpu and memory, runs and iterations running, executors, Spark UI and application id.
    health: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class NotificationEvent(Base):
    """Something a job's contacts hear of (a run's outcome, an SLA miss), recorded once.

    Unique per run and event, so whatever restarts, an outcome is enqueued once;
    `payload` is what the run looked like when it was found, sent as it is.
    """

    __tablename__ = "notification_events"
    __table_args__ = (UniqueConstraint("run_id", "event"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    job: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(16))
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Notification(Base):
    """The outbox: one delivery of an event to a contact through a channel, until it is done.

    A pending row is due at `next_attempt_at`; a dispatcher claims it by pushing that
    time past its delivery timeout, so two dispatchers never send it at once.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint("channel IN ('email', 'webhook')", name="channel"),
        CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="state"),
        UniqueConstraint("run_id", "event", "contact", "channel"),
        Index(None, "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("notification_events.id", ondelete="CASCADE"), index=True
    )
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(16))
    contact: Mapped[str] = mapped_column(String(1000))
    channel: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
