"""`StateStore`: the one door to runs, iterations, attempts, logs, leases and the audit.

Every method is one short transaction and returns plain dataclasses, so the
runner, the launcher, the scheduler, the CLI and the API can share a database
from separate processes. Moves between states follow `states.py` and are
checked under a row lock (PostgreSQL `SELECT ... FOR UPDATE`, SQLite's
`BEGIN IMMEDIATE`), so two processes never both make a move; claims skip rows
another process holds (`FOR UPDATE SKIP LOCKED`) instead of waiting for them.

    store = StateStore("sqlite:///var/state.db")
    run = store.create_run("bronze_load", partitions=["2024-01", "2024-02"], trigger="cli")
    store.create_iterations(run.id, run.partitions)
    run = store.claim_run(run.id, holder=make_holder(), ttl=30)
    while (it := store.claim_iteration(run.id)) is not None:
        store.append_log(run.id, f"loading {it.partition_key}", iteration_id=it.id)
        store.transition_iteration(it.id, "succeeded", rows_out=1200)
    store.transition_run(run.id, "succeeded")
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, delete, func, insert, select, text, update
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from edgebatch.framework.state import models as m
from edgebatch.framework.state import records as r
from edgebatch.framework.state.engine import WRITE_OPTION, make_engine, normalize_url
from edgebatch.framework.state.errors import LeaseError, StateError
from edgebatch.framework.state.states import (
    ITERATION_MOVES,
    ITERATION_TERMINAL,
    RUN_MOVES,
    RUN_TERMINAL,
    AttemptState,
    IterationState,
    RunState,
    TriggerKind,
    parse_iteration_state,
    parse_run_state,
)

Clock = Callable[[], datetime]
Seconds = float | timedelta

DEFAULT_LEASE_TTL = timedelta(seconds=30)
# A running run with no lease at all (its process died between start and first lease,
# or it never took one) is an orphan once it has run this long without one.
DEFAULT_UNLEASED_GRACE = timedelta(seconds=60)
# Keys of PostgreSQL advisory locks: (class, object) pairs, class chosen to be edgebatch's.
_LOCK_CLASS_MIGRATE = 0x6562_0001
_LOCK_CLASS_RUN_LOG = 0x6562_0002
REAPER_PRINCIPAL = "edgebatch:reaper"


def make_holder() -> str:
    """A lease holder name, `host:pid:uuid`: unique per process start, readable in an error."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _seconds(value: Seconds) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


def _migrations_dir() -> str:
    """The Alembic scripts inside the installed package, wherever it is installed."""
    return str(resources.files("edgebatch.framework.state").joinpath("migrations"))


class StateStore:
    """Runs, iterations, attempts, log lines, leases and audit in SQLite or PostgreSQL.

    `url` is a SQLAlchemy URL: `sqlite:///path/state.db` (the default of the
    project config) or `postgresql+psycopg://user:pw@host:port/db`. Opening
    upgrades the database to the newest migration. `clock` is how the store
    reads the time; tests pass a fake one to expire leases without sleeping.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        clock: Clock = _utcnow,
        busy_timeout_s: float = 30.0,
        upgrade: bool = True,
    ) -> None:
        self.url = normalize_url(url)
        self._clock = clock
        self._engine = make_engine(self.url, busy_timeout_s=busy_timeout_s)
        self._write_engine = self._engine.execution_options(**{WRITE_OPTION: True})
        self._postgres = self.url.get_backend_name() == "postgresql"
        self._identity = f"{socket.gethostname()}:{os.getpid()}"
        if upgrade:
            self.upgrade()

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> StateStore:
        """The store the project config names (`Settings.state_url`: `[state] url` or SQLite)."""
        return cls(settings.state_url, **kwargs)

    def close(self) -> None:
        """Close pooled connections; the store can be used again (it reconnects)."""
        self._engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({self.url.render_as_string(hide_password=True)!r})"

    def now(self) -> datetime:
        """The store's clock: what it stamps on rows when the caller gives no time."""
        return self._when(None)

    def _when(self, at: datetime | None) -> datetime:
        """`at` (naive means UTC) or the clock's time, as an aware UTC datetime."""
        at = self._clock() if at is None else at
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)

    # -- schema ---------------------------------------------------------------------------

    def upgrade(self) -> str | None:
        """Bring the database to the newest migration and return its revision.

        Several processes may open a fresh database at once: the first takes the
        write lock (SQLite) or an advisory lock (PostgreSQL) and migrates; the
        others wait, then find it done.
        """
        config = AlembicConfig()
        config.set_main_option("script_location", _migrations_dir())
        head = ScriptDirectory.from_config(config).get_current_head()
        if self.revision() == head:
            return head
        with self._write_engine.begin() as conn:
            if self._postgres:
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:c, 0)"), {"c": _LOCK_CLASS_MIGRATE}
                )
            config.attributes["connection"] = conn
            try:
                command.upgrade(config, "head")
            except CommandError as exc:
                raise StateError(
                    f"cannot upgrade the state store at {self!r} to revision {head}: {exc}; "
                    "if the database was made by a newer edgebatch, upgrade edgebatch"
                ) from None
        return head

    def revision(self) -> str | None:
        """The database's migration revision (None when it has no tables yet)."""
        with self._engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self._write_engine, expire_on_commit=False) as session, session.begin():
            yield session

    def _lock_run_log(self, session: Session, run_id: int) -> None:
        """Serialize log appends of one run so ids commit in order and a cursor misses none.

        A PostgreSQL sequence hands out ids at insert, not at commit: without this,
        line 11 could be read before line 10 commits and the reader would skip 10.
        SQLite needs nothing: its writers are serialized already.
        """
        if self._postgres:
            session.execute(
                text("SELECT pg_advisory_xact_lock(:c, :o)"),
                {"c": _LOCK_CLASS_RUN_LOG, "o": run_id % 2**31},
            )

    # -- jobs -----------------------------------------------------------------------------

    def upsert_job(
        self,
        name: str,
        *,
        definition_hash: str,
        summary: dict[str, Any] | None = None,
        pool: str = "default",
        priority: int = 0,
        tags: Iterable[str] = (),
        at: datetime | None = None,
    ) -> r.JobRecord:
        """Record a job definition as a registry sees it (new, changed or unchanged)."""
        at = self._when(at)
        with self._write() as s:
            job = s.get(m.Job, name, with_for_update=True)
            if job is None:
                job = m.Job(name=name, first_seen_at=at)
                s.add(job)
            job.definition_hash = definition_hash
            job.summary = dict(summary or {})
            job.pool = pool
            job.priority = priority
            job.tags = list(tags)
            job.last_seen_at = at
            s.flush()
            return _job(job)

    def get_job(self, name: str) -> r.JobRecord | None:
        with self._read() as s:
            job = s.get(m.Job, name)
            return _job(job) if job else None

    def list_jobs(self) -> list[r.JobRecord]:
        with self._read() as s:
            return [_job(j) for j in s.scalars(select(m.Job).order_by(m.Job.name))]

    # -- runs -----------------------------------------------------------------------------

    def create_run(
        self,
        job: str,
        *,
        partitions: Iterable[str] = (),
        trigger: str = TriggerKind.CLI,
        triggered_by: str = "",
        params: dict[str, Any] | None = None,
        retry_of: int | None = None,
        at: datetime | None = None,
    ) -> r.Run:
        """A new `queued` run; `partitions` are those asked for, `retry_of` the run it repeats."""
        with self._write() as s:
            if retry_of is not None and s.get(m.Run, retry_of) is None:
                raise StateError(
                    f"run of job {job!r} cannot retry run {retry_of}: no such run in {self!r}"
                )
            run = m.Run(
                job=job,
                state=RunState.QUEUED.value,
                trigger=str(trigger),
                triggered_by=triggered_by,
                partitions=[str(p) for p in partitions],
                params=dict(params or {}),
                retry_of=retry_of,
                created_at=self._when(at),
            )
            s.add(run)
            s.flush()
            return _run(run)

    def get_run(self, run_id: int) -> r.Run:
        """The run, or a `StateError` saying there is none."""
        with self._read() as s:
            return _run(self._run_or_raise(s, run_id))

    def list_runs(
        self,
        *,
        job: str | None = None,
        state: str | Iterable[str] | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[r.Run]:
        """Newest first; `before_id` pages back from an id already shown."""
        query = select(m.Run).order_by(m.Run.id.desc()).limit(limit)
        if job is not None:
            query = query.where(m.Run.job == job)
        if state is not None:
            states = [state] if isinstance(state, str) else list(state)
            query = query.where(m.Run.state.in_([parse_run_state(x).value for x in states]))
        if before_id is not None:
            query = query.where(m.Run.id < before_id)
        with self._read() as s:
            return [_run(x) for x in s.scalars(query)]

    def transition_run(
        self, run_id: int, to: str, *, error: str | None = None, at: datetime | None = None
    ) -> r.Run:
        """Move a run to `to`, stamping `started_at`/`ended_at`; a finished run releases its lease.

        Raises `StateError` for a move `states.RUN_MOVES` does not allow, e.g. a
        finished run back to running (retry it as a new run with `retry_of`).
        """
        target = parse_run_state(to)
        at = self._when(at)
        with self._write() as s:
            run = self._run_or_raise(s, run_id, lock=True)
            self._move_run(s, run, target, error=error, at=at)
            return _run(run)

    def claim_run(
        self,
        run_id: int,
        holder: str,
        *,
        ttl: Seconds = DEFAULT_LEASE_TTL,
        at: datetime | None = None,
    ) -> r.Run:
        """Start a queued run and take its lease in one step, so it is never running unleased."""
        at = self._when(at)
        with self._write() as s:
            run = self._run_or_raise(s, run_id, lock=True)
            self._move_run(s, run, RunState.RUNNING, error=None, at=at)
            self._put_lease(s, run, holder, _seconds(ttl), at)
            return _run(run)

    def claim_next_run(
        self,
        holder: str,
        *,
        job: str | None = None,
        ttl: Seconds = DEFAULT_LEASE_TTL,
        at: datetime | None = None,
    ) -> r.Run | None:
        """Take the oldest queued run (of `job`, if given), start it and lease it to `holder`.

        Concurrent callers each get a different run or None: rows another
        transaction is claiming are skipped (`FOR UPDATE SKIP LOCKED`).
        """
        at = self._when(at)
        query = (
            select(m.Run)
            .where(m.Run.state == RunState.QUEUED.value)
            .order_by(m.Run.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if job is not None:
            query = query.where(m.Run.job == job)
        with self._write() as s:
            run = s.scalars(query).first()
            if run is None:
                return None
            self._move_run(s, run, RunState.RUNNING, error=None, at=at)
            self._put_lease(s, run, holder, _seconds(ttl), at)
            return _run(run)

    def _move_run(
        self, s: Session, run: m.Run, target: RunState, *, error: str | None, at: datetime
    ) -> None:
        current = RunState(run.state)
        if target not in RUN_MOVES.get(current, frozenset()):
            raise StateError(_illegal("run", run.id, run.job, None, current, target, RUN_TERMINAL))
        run.state = target.value
        if target is RunState.RUNNING:
            run.started_at = at
        if target in RUN_TERMINAL:
            run.ended_at = at
            s.execute(delete(m.Lease).where(m.Lease.run_id == run.id))
        if error is not None:
            run.error = error
        s.flush()

    def _run_or_raise(self, s: Session, run_id: int, *, lock: bool = False) -> m.Run:
        run = s.get(m.Run, run_id, with_for_update=lock or None)
        if run is None:
            raise StateError(f"no run {run_id} in the state store {self!r}")
        return run

    # -- iterations -----------------------------------------------------------------------

    def create_iterations(
        self, run_id: int, partition_keys: Iterable[str], *, at: datetime | None = None
    ) -> list[r.Iteration]:
        """One `queued` iteration per partition key of a run that has not finished."""
        at = self._when(at)
        keys = [str(k) for k in partition_keys]
        if len(set(keys)) != len(keys):
            dupes = sorted({k for k in keys if keys.count(k) > 1})
            raise StateError(f"run {run_id}: partition keys given twice: {', '.join(dupes)}")
        with self._write() as s:
            run = self._run_or_raise(s, run_id, lock=True)
            if RunState(run.state) in RUN_TERMINAL:
                raise StateError(
                    f"run {run_id} of job {run.job!r} is {run.state}; "
                    "a finished run gets no new iterations (retry it as a new run)"
                )
            existing = set(
                s.scalars(
                    select(m.Iteration.partition_key).where(
                        m.Iteration.run_id == run_id, m.Iteration.partition_key.in_(keys)
                    )
                )
            )
            if existing:
                raise StateError(
                    f"run {run_id} of job {run.job!r} already has iterations for partitions "
                    f"{', '.join(sorted(existing))}"
                )
            rows = [
                m.Iteration(
                    run_id=run_id, partition_key=k, state=IterationState.QUEUED.value, updated_at=at
                )
                for k in keys
            ]
            s.add_all(rows)
            s.flush()
            return [_iteration(x) for x in rows]

    def get_iteration(self, iteration_id: int) -> r.Iteration:
        with self._read() as s:
            return _iteration(self._iteration_or_raise(s, iteration_id))

    def list_iterations(
        self, run_id: int, *, state: str | Iterable[str] | None = None
    ) -> list[r.Iteration]:
        """A run's iterations in the order they were planned."""
        query = select(m.Iteration).where(m.Iteration.run_id == run_id).order_by(m.Iteration.id)
        if state is not None:
            states = [state] if isinstance(state, str) else list(state)
            query = query.where(
                m.Iteration.state.in_([parse_iteration_state(x).value for x in states])
            )
        with self._read() as s:
            return [_iteration(x) for x in s.scalars(query)]

    def claim_iteration(self, run_id: int, *, at: datetime | None = None) -> r.Iteration | None:
        """Start the next queued iteration of a run (a new attempt), or None when none is left.

        Threads and processes working on one run each get a different iteration.
        """
        at = self._when(at)
        query = (
            select(m.Iteration)
            .where(m.Iteration.run_id == run_id, m.Iteration.state == IterationState.QUEUED.value)
            .order_by(m.Iteration.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        with self._write() as s:
            it = s.scalars(query).first()
            if it is None:
                return None
            self._move_iteration(s, it, IterationState.RUNNING, error=None, at=at)
            return _iteration(it)

    def transition_iteration(
        self,
        iteration_id: int,
        to: str,
        *,
        error: str | None = None,
        rows_in: int | None = None,
        rows_out: int | None = None,
        at: datetime | None = None,
    ) -> r.Iteration:
        """Move an iteration and keep its attempts in step.

        To `running` starts a new attempt; from `running` to a finished state
        ends that attempt the same way; `running` back to `queued` is a failed
        attempt waiting for its retry (backoff). Raises `StateError` for a move
        `states.ITERATION_MOVES` does not allow.
        """
        target = parse_iteration_state(to)
        at = self._when(at)
        with self._write() as s:
            it = self._iteration_or_raise(s, iteration_id, lock=True)
            self._move_iteration(s, it, target, error=error, at=at)
            if rows_in is not None:
                it.rows_in = rows_in
            if rows_out is not None:
                it.rows_out = rows_out
            s.flush()
            return _iteration(it)

    def record_progress(
        self,
        iteration_id: int,
        *,
        stages_done: int | None = None,
        stages_total: int | None = None,
        tasks_done: int | None = None,
        tasks_total: int | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Store Spark's progress figures of a running iteration; False if it is not running.

        Not an error when the iteration has just finished: progress is sampled
        by another thread and may arrive late.
        """
        values: dict[str, Any] = {
            k: v
            for k, v in {
                "stages_done": stages_done,
                "stages_total": stages_total,
                "tasks_done": tasks_done,
                "tasks_total": tasks_total,
            }.items()
            if v is not None
        }
        values["updated_at"] = self._when(at)
        with self._write() as s:
            result = s.execute(
                update(m.Iteration)
                .where(
                    m.Iteration.id == iteration_id,
                    m.Iteration.state == IterationState.RUNNING.value,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)

    def list_attempts(self, iteration_id: int) -> list[r.Attempt]:
        with self._read() as s:
            rows = s.scalars(
                select(m.Attempt)
                .where(m.Attempt.iteration_id == iteration_id)
                .order_by(m.Attempt.number)
            )
            return [_attempt(a) for a in rows]

    def _move_iteration(
        self,
        s: Session,
        it: m.Iteration,
        target: IterationState,
        *,
        error: str | None,
        at: datetime,
    ) -> None:
        current = IterationState(it.state)
        if target not in ITERATION_MOVES.get(current, frozenset()):
            raise StateError(
                _illegal(
                    "iteration",
                    it.id,
                    None,
                    (it.run_id, it.partition_key),
                    current,
                    target,
                    ITERATION_TERMINAL,
                )
            )
        if current is IterationState.RUNNING:
            attempt_state = {
                IterationState.SUCCEEDED: AttemptState.SUCCEEDED,
                IterationState.CANCELLED: AttemptState.CANCELLED,
            }.get(target, AttemptState.FAILED)
            s.execute(
                update(m.Attempt)
                .where(
                    m.Attempt.iteration_id == it.id,
                    m.Attempt.state == AttemptState.RUNNING.value,
                )
                .values(state=attempt_state.value, ended_at=at, error=error)
                .execution_options(synchronize_session=False)
            )
        if target is IterationState.RUNNING:
            it.attempts += 1
            it.started_at = it.started_at or at
            it.ended_at = None
            it.error = None
            s.add(
                m.Attempt(
                    iteration_id=it.id,
                    number=it.attempts,
                    state=AttemptState.RUNNING.value,
                    started_at=at,
                )
            )
        if target in ITERATION_TERMINAL:
            it.ended_at = at
        if error is not None:
            it.error = error
        it.state = target.value
        it.updated_at = at
        s.flush()

    def _iteration_or_raise(
        self, s: Session, iteration_id: int, *, lock: bool = False
    ) -> m.Iteration:
        it = s.get(m.Iteration, iteration_id, with_for_update=lock or None)
        if it is None:
            raise StateError(f"no iteration {iteration_id} in the state store {self!r}")
        return it

    # -- retries and incremental runs -----------------------------------------------------

    def failed_or_unfinished_partitions(self, run_id: int) -> list[str]:
        """The partitions of a run that did not succeed: what its retry must run again.

        Asked-for partitions that never got an iteration count as unfinished.
        Order: as asked for, then as planned.
        """
        with self._read() as s:
            run = self._run_or_raise(s, run_id)
            states = dict(
                s.execute(
                    select(m.Iteration.partition_key, m.Iteration.state)
                    .where(m.Iteration.run_id == run_id)
                    .order_by(m.Iteration.id)
                ).all()
            )
        ordered = list(dict.fromkeys([*run.partitions, *states]))
        return [k for k in ordered if states.get(k) != IterationState.SUCCEEDED.value]

    def succeeded_partitions(self, job: str) -> list[str]:
        """Every partition of `job` that some run has loaded: an incremental run skips these."""
        with self._read() as s:
            keys = s.scalars(
                select(m.Iteration.partition_key)
                .join(m.Run, m.Run.id == m.Iteration.run_id)
                .where(m.Run.job == job, m.Iteration.state == IterationState.SUCCEEDED.value)
                .distinct()
            )
            return sorted(keys)

    # -- logs -----------------------------------------------------------------------------

    def append_log(
        self,
        run_id: int,
        message: str,
        *,
        level: str = "INFO",
        logger: str = "",
        iteration_id: int | None = None,
        ts: datetime | None = None,
    ) -> int:
        """Append one line to a run's log and return its id (the next reader's cursor)."""
        line = r.NewLogLine(message, level, logger, iteration_id, ts)
        return self.append_logs(run_id, [line])[-1]

    def append_logs(self, run_id: int, lines: Iterable[r.NewLogLine]) -> list[int]:
        """Append lines in one transaction (what a log handler flushes); returns their ids."""
        now = self.now()
        rows = [
            {
                "run_id": run_id,
                "iteration_id": line.iteration_id,
                "ts": self._when(line.ts) if line.ts else now,
                "level": line.level.upper(),
                "logger": line.logger,
                "message": line.message,
            }
            for line in lines
        ]
        if not rows:
            return []
        with self._write() as s:
            self._lock_run_log(s, run_id)
            if s.get(m.Run, run_id) is None:
                raise StateError(f"cannot log to run {run_id}: no such run in {self!r}")
            ids = s.scalars(
                insert(m.LogLine).returning(m.LogLine.id, sort_by_parameter_order=True), rows
            )
            return list(ids)

    def read_logs(
        self,
        run_id: int,
        *,
        after_id: int = 0,
        limit: int = 1000,
        iteration_id: int | None = None,
    ) -> list[r.LogLine]:
        """Lines of a run with id > `after_id`, oldest first; pass the last id again to follow."""
        query = (
            select(m.LogLine)
            .where(m.LogLine.run_id == run_id, m.LogLine.id > after_id)
            .order_by(m.LogLine.id)
            .limit(limit)
        )
        if iteration_id is not None:
            query = query.where(m.LogLine.iteration_id == iteration_id)
        with self._read() as s:
            return [_log(x) for x in s.scalars(query)]

    # -- leases ---------------------------------------------------------------------------

    def take_lease(
        self,
        run_id: int,
        holder: str,
        *,
        ttl: Seconds = DEFAULT_LEASE_TTL,
        at: datetime | None = None,
    ) -> r.Lease:
        """Lease a run to `holder` until now + `ttl`; free, expired or already ours only.

        Raises `LeaseError` naming the live holder otherwise, or when the run
        has finished (a reaped run cannot be leased back).
        """
        at = self._when(at)
        with self._write() as s:
            run = self._run_or_raise(s, run_id, lock=True)
            if RunState(run.state) in RUN_TERMINAL:
                raise LeaseError(
                    f"cannot lease run {run_id} of job {run.job!r} to {holder}: "
                    f"it is {run.state}{f' ({run.error})' if run.error else ''}"
                )
            return self._put_lease(s, run, holder, _seconds(ttl), at)

    def renew_lease(
        self,
        run_id: int,
        holder: str,
        *,
        ttl: Seconds = DEFAULT_LEASE_TTL,
        at: datetime | None = None,
    ) -> r.Lease:
        """Heartbeat: push the lease's expiry to now + `ttl`.

        Raises `LeaseError` if `holder` no longer holds it (it was reaped after
        expiring, taken over, or released): the caller should stop its work.
        """
        at = self._when(at)
        with self._write() as s:
            lease = s.get(m.Lease, run_id, with_for_update=True)
            if lease is None or lease.holder != holder:
                run = s.get(m.Run, run_id)
                why = (
                    f"held by {lease.holder}"
                    if lease
                    else (
                        f"run is {run.state}: {run.error or 'no error'}" if run else "no such run"
                    )
                )
                raise LeaseError(f"{holder} lost the lease of run {run_id} ({why})")
            lease.heartbeat_at = at
            lease.expires_at = at + _seconds(ttl)
            s.flush()
            return _lease(lease)

    def release_lease(self, run_id: int, holder: str) -> bool:
        """Give a lease up; False if `holder` did not hold it."""
        with self._write() as s:
            result = s.execute(
                delete(m.Lease).where(m.Lease.run_id == run_id, m.Lease.holder == holder)
            )
            return bool(result.rowcount)

    def get_lease(self, run_id: int) -> r.Lease | None:
        with self._read() as s:
            lease = s.get(m.Lease, run_id)
            return _lease(lease) if lease else None

    def _put_lease(
        self, s: Session, run: m.Run, holder: str, ttl: timedelta, at: datetime
    ) -> r.Lease:
        lease = s.get(m.Lease, run.id, with_for_update=True)
        if lease is not None and lease.holder != holder and lease.expires_at > at:
            raise LeaseError(
                f"run {run.id} of job {run.job!r} is leased to {lease.holder} until "
                f"{lease.expires_at.isoformat()}; {holder} cannot take it"
            )
        if lease is None:
            lease = m.Lease(run_id=run.id, acquired_at=at)
            s.add(lease)
        elif lease.holder != holder:
            lease.acquired_at = at
        lease.holder = holder
        lease.heartbeat_at = at
        lease.expires_at = at + ttl
        s.flush()
        return _lease(lease)

    def reap_orphans(
        self, now: datetime | None = None, *, unleased_grace: Seconds = DEFAULT_UNLEASED_GRACE
    ) -> list[r.ReapedRun]:
        """Fail running runs whose holder is gone, with their running iterations and attempts.

        An orphan is a running run whose lease expired, or that has run longer
        than `unleased_grace` with no lease at all. Any edgebatch process may
        call this whenever it looks at the store; concurrent reapers skip each
        other's rows, and a holder that renews in time is never reaped.
        """
        now = self._when(now)
        grace = _seconds(unleased_grace)
        expired = (
            select(m.Run, m.Lease)
            .join(m.Lease, m.Lease.run_id == m.Run.id)
            .where(m.Run.state == RunState.RUNNING.value, m.Lease.expires_at < now)
            .order_by(m.Run.id)
            .with_for_update(skip_locked=True)
        )
        unleased = (
            select(m.Run)
            .where(
                m.Run.state == RunState.RUNNING.value,
                func.coalesce(m.Run.started_at, m.Run.created_at) < now - grace,
                ~select(m.Lease.run_id).where(m.Lease.run_id == m.Run.id).exists(),
            )
            .order_by(m.Run.id)
            .with_for_update(skip_locked=True)
        )
        reaped: list[r.ReapedRun] = []
        with self._write() as s:
            for run, lease in s.execute(expired).all():
                reason = (
                    f"orphaned: lease holder {lease.holder} stopped renewing "
                    f"(last heartbeat {lease.heartbeat_at.isoformat()}, lease expired "
                    f"{lease.expires_at.isoformat()}); marked failed by {self._identity}"
                )
                reaped.append(self._reap(s, run, lease.holder, lease.expires_at, reason, now))
            for run in s.scalars(unleased).all():
                reason = (
                    f"orphaned: running since {(run.started_at or run.created_at).isoformat()} "
                    f"with no lease holder; marked failed by {self._identity}"
                )
                reaped.append(self._reap(s, run, None, None, reason, now))
        return reaped

    def _reap(
        self,
        s: Session,
        run: m.Run,
        holder: str | None,
        expired_at: datetime | None,
        reason: str,
        now: datetime,
    ) -> r.ReapedRun:
        running = s.scalars(
            select(m.Iteration)
            .where(m.Iteration.run_id == run.id, m.Iteration.state == IterationState.RUNNING.value)
            .order_by(m.Iteration.id)
            .with_for_update()
        ).all()
        for it in running:
            self._move_iteration(s, it, IterationState.FAILED, error=reason, at=now)
        self._move_run(s, run, RunState.FAILED, error=reason, at=now)
        self._lock_run_log(s, run.id)
        s.add(
            m.LogLine(
                run_id=run.id,
                ts=now,
                level="ERROR",
                logger="edgebatch.state.reaper",
                message=f"run {run.id} marked failed: {reason}",
            )
        )
        s.add(
            m.AuditEntry(
                ts=now,
                principal=REAPER_PRINCIPAL,
                action="reap",
                target=f"run:{run.id}",
                detail={"job": run.job, "holder": holder, "reason": reason},
            )
        )
        s.flush()
        return r.ReapedRun(
            run_id=run.id,
            job=run.job,
            holder=holder,
            expired_at=expired_at,
            reason=reason,
            iteration_ids=tuple(it.id for it in running),
        )

    # -- audit ----------------------------------------------------------------------------

    def audit(
        self,
        principal: str,
        action: str,
        target: str,
        detail: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> r.AuditEntry:
        """Record that `principal` did `action` to `target` (e.g. "alice", "trigger", "job:x")."""
        with self._write() as s:
            entry = m.AuditEntry(
                ts=self._when(at),
                principal=principal,
                action=action,
                target=target,
                detail=dict(detail or {}),
            )
            s.add(entry)
            s.flush()
            return _audit(entry)

    def list_audit(
        self,
        *,
        principal: str | None = None,
        action: str | None = None,
        target: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[r.AuditEntry]:
        """Newest first, filtered by any of principal, action and target."""
        query = select(m.AuditEntry).order_by(m.AuditEntry.id.desc()).limit(limit)
        for column, value in (
            (m.AuditEntry.principal, principal),
            (m.AuditEntry.action, action),
            (m.AuditEntry.target, target),
        ):
            if value is not None:
                query = query.where(column == value)
        if before_id is not None:
            query = query.where(m.AuditEntry.id < before_id)
        with self._read() as s:
            return [_audit(x) for x in s.scalars(query)]

    # -- for tests and tools --------------------------------------------------------------

    def connection(self) -> Connection:
        """A raw connection for tools and tests that inspect the schema; close it after use."""
        return self._engine.connect()


def _illegal(
    kind: str,
    ident: int,
    job: str | None,
    where: tuple[int, str] | None,
    current: Any,
    target: Any,
    terminal: frozenset[Any],
) -> str:
    what = f"{kind} {ident}"
    if job is not None:
        what += f" of job {job!r}"
    if where is not None:
        what += f" (run {where[0]}, partition {where[1]!r})"
    if current in terminal:
        hint = "it has finished, and a finished " + kind + " never changes state"
        if kind == "run":
            hint += "; retry it as a new run with retry_of"
    else:
        moves = {
            "run": RUN_MOVES,
            "iteration": ITERATION_MOVES,
        }[kind].get(current, frozenset())
        hint = f"from {current} it may become {', '.join(sorted(moves))}"
    return f"{what} is {current} and cannot become {target}: {hint}"


def _job(x: m.Job) -> r.JobRecord:
    return r.JobRecord(
        name=x.name,
        definition_hash=x.definition_hash,
        summary=dict(x.summary or {}),
        pool=x.pool,
        priority=x.priority,
        tags=tuple(x.tags or ()),
        first_seen_at=x.first_seen_at,
        last_seen_at=x.last_seen_at,
    )


def _run(x: m.Run) -> r.Run:
    return r.Run(
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
    )


def _iteration(x: m.Iteration) -> r.Iteration:
    return r.Iteration(
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


def _attempt(x: m.Attempt) -> r.Attempt:
    return r.Attempt(
        id=x.id,
        iteration_id=x.iteration_id,
        number=x.number,
        state=AttemptState(x.state),
        started_at=x.started_at,
        ended_at=x.ended_at,
        error=x.error,
    )


def _log(x: m.LogLine) -> r.LogLine:
    return r.LogLine(
        id=x.id,
        run_id=x.run_id,
        iteration_id=x.iteration_id,
        ts=x.ts,
        level=x.level,
        logger=x.logger,
        message=x.message,
    )


def _lease(x: m.Lease) -> r.Lease:
    return r.Lease(
        run_id=x.run_id,
        holder=x.holder,
        acquired_at=x.acquired_at,
        heartbeat_at=x.heartbeat_at,
        expires_at=x.expires_at,
    )


def _audit(x: m.AuditEntry) -> r.AuditEntry:
    return r.AuditEntry(
        id=x.id,
        ts=x.ts,
        principal=x.principal,
        action=x.action,
        target=x.target,
        detail=dict(x.detail or {}),
    )
