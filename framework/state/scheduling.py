"""What the scheduler keeps in the store: its leader lease, trigger cursors, and held runs.

The leader lease is a row taken by compare-and-set (an UPDATE that only matches when
the row is ours or expired), so two schedulers never both lead for long, on SQLite
and PostgreSQL alike. A run the scheduler holds back has a `run_waits` row and no
worker claims it; deleting the row releases it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError

from edgebatch.framework.state import models as m
from edgebatch.framework.state import records as r
from edgebatch.framework.state.base import DEFAULT_QUEUE, Seconds, StoreBase, seconds
from edgebatch.framework.state.states import RunState, TriggerKind
from edgebatch.framework.state.transitions import move_run


class Scheduling(StoreBase):
    """Leader lease, cursors and held (waiting) runs."""

    # -- leader lease ---------------------------------------------------------------------

    def take_leadership(
        self, name: str, holder: str, *, ttl: Seconds, at: datetime | None = None
    ) -> r.LeaderLease | None:
        """Take or renew the lease `name` for `holder` until now + `ttl`; None if another holds it.

        One atomic statement decides: the row is updated only if it is ours or has
        expired. Renewing keeps `acquired_at` and the term; a takeover starts a new term.
        """
        at = self._when(at)
        until = at + seconds(ttl)
        lease = m.SchedulerLease
        mine = lease.holder == holder
        stmt = (
            update(lease)
            .where(lease.name == name, or_(mine, lease.expires_at < at))
            .values(
                holder=holder,
                heartbeat_at=at,
                expires_at=until,
                acquired_at=case((mine, lease.acquired_at), else_=at),
                term=case((mine, lease.term), else_=lease.term + 1),
            )
            .execution_options(synchronize_session=False)
        )
        with self._write() as s:
            if cast(CursorResult[Any], s.execute(stmt)).rowcount:
                row = s.get(m.SchedulerLease, name, populate_existing=True)
                return r.LeaderLease.from_row(row) if row else None
        try:
            with self._write() as s:
                row = m.SchedulerLease(
                    name=name,
                    holder=holder,
                    acquired_at=at,
                    heartbeat_at=at,
                    expires_at=until,
                    term=1,
                )
                s.add(row)
                s.flush()
                return r.LeaderLease.from_row(row)
        except IntegrityError:
            return None  # someone else's row exists and is alive

    def release_leadership(self, name: str, holder: str, *, at: datetime | None = None) -> bool:
        """Give the lease up at once (a clean stop), so a standby need not wait for it to expire.

        The row stays, expired, so the next leader's term still counts on from it.
        """
        expired = self._when(at) - timedelta(microseconds=1)
        with self._write() as s:
            result = s.execute(
                update(m.SchedulerLease)
                .where(m.SchedulerLease.name == name, m.SchedulerLease.holder == holder)
                .values(expires_at=expired)
                .execution_options(synchronize_session=False)
            )
            return bool(cast(CursorResult[Any], result).rowcount)

    def get_leadership(self, name: str) -> r.LeaderLease | None:
        with self._read() as s:
            row = s.get(m.SchedulerLease, name)
            return r.LeaderLease.from_row(row) if row else None

    # -- cursors --------------------------------------------------------------------------

    def get_cursor(self, job: str, trigger: str) -> dict[str, Any] | None:
        with self._read() as s:
            row = s.get(m.SchedulerCursor, (job, trigger))
            return dict(row.value) if row else None

    def set_cursor(
        self, job: str, trigger: str, value: dict[str, Any], *, at: datetime | None = None
    ) -> None:
        at = self._when(at)
        with self._write() as s:
            row = s.get(m.SchedulerCursor, (job, trigger), with_for_update=True)
            if row is None:
                s.add(m.SchedulerCursor(job=job, trigger=trigger, value=value, updated_at=at))
            else:
                row.value = value
                row.updated_at = at

    def cursors(self) -> dict[tuple[str, str], dict[str, Any]]:
        with self._read() as s:
            return {(c.job, c.trigger): dict(c.value) for c in s.scalars(select(m.SchedulerCursor))}

    # -- held runs ------------------------------------------------------------------------

    def create_waiting_run(
        self,
        job: str,
        *,
        reason: str,
        partitions: Iterable[str] = (),
        trigger: str = TriggerKind.SCHEDULE,
        triggered_by: str = "",
        params: dict[str, Any] | None = None,
        priority: int = 0,
        queue: str = DEFAULT_QUEUE,
        run_key: str | None = None,
        at: datetime | None = None,
    ) -> tuple[r.Run, bool]:
        """A queued run held back from workers (with `reason`), made with its hold in one step.

        Like `create_run_once`: a `run_key` already used returns that run and False.
        """
        if run_key is not None:
            existing = self._run_with_key(run_key)
            if existing is not None:
                return existing, False
        at = self._when(at)
        try:
            with self._write() as s:
                run = m.Run(
                    job=job,
                    state=RunState.QUEUED.value,
                    trigger=str(trigger),
                    triggered_by=triggered_by,
                    partitions=[str(p) for p in partitions],
                    params=dict(params or {}),
                    priority=priority,
                    queue=queue,
                    run_key=run_key,
                    created_at=at,
                )
                s.add(run)
                s.flush()
                s.add(m.RunWait(run_id=run.id, reason=reason, since=at, checked_at=at))
                s.flush()
                return r.Run.from_row(run), True
        except IntegrityError:
            existing = self._run_with_key(run_key) if run_key is not None else None
            if existing is None:
                raise
            return existing, False

    def _run_with_key(self, run_key: str) -> r.Run | None:
        with self._read() as s:
            run = s.scalars(select(m.Run).where(m.Run.run_key == run_key)).first()
            return r.Run.from_row(run) if run else None

    def waiting_runs(self) -> list[tuple[r.Run, r.RunWait]]:
        """Runs held back, oldest first, with why and since when."""
        with self._read() as s:
            rows = s.execute(
                select(m.Run, m.RunWait)
                .join(m.RunWait, m.RunWait.run_id == m.Run.id)
                .order_by(m.Run.id)
            ).all()
            return [(r.Run.from_row(run), r.RunWait.from_row(w)) for run, w in rows]

    def get_wait(self, run_id: int) -> r.RunWait | None:
        with self._read() as s:
            row = s.get(m.RunWait, run_id)
            return r.RunWait.from_row(row) if row else None

    def note_wait(self, run_id: int, reason: str, *, at: datetime | None = None) -> bool:
        """Record why a held run still waits; True when the reason changed (worth a log line)."""
        at = self._when(at)
        with self._write() as s:
            row = s.get(m.RunWait, run_id, with_for_update=True)
            if row is None:
                return False
            changed = row.reason != reason
            row.reason = reason
            row.checked_at = at
            return changed

    def release_held_run(self, run_id: int, message: str, *, logger: str = "scheduler") -> bool:
        """Let workers claim a held run; its log says why. False if it was not held."""
        now = self.now()
        with self._write() as s:
            result = s.execute(delete(m.RunWait).where(m.RunWait.run_id == run_id))
            if not cast(CursorResult[Any], result).rowcount:
                return False
            self._lock_run_log(s, run_id)
            s.add(m.LogLine(run_id=run_id, ts=now, level="INFO", logger=logger, message=message))
            return True

    def end_waiting_run(
        self, run_id: int, to: RunState, reason: str, *, logger: str = "scheduler"
    ) -> bool:
        """End a held run as `skipped` or `failed` with `reason`, in its log too.

        False when the run was no longer held or no longer queued (cancelled meanwhile).
        """
        now = self.now()
        with self._write() as s:
            run = s.get(m.Run, run_id, with_for_update=True)
            wait = s.get(m.RunWait, run_id, with_for_update=True)
            if run is None or wait is None or run.state != RunState.QUEUED.value:
                if wait is not None:
                    s.delete(wait)
                return False
            s.delete(wait)
            move_run(s, run, to, error=reason, at=now)
            self._lock_run_log(s, run_id)
            level = "WARNING" if to is RunState.SKIPPED else "ERROR"
            s.add(m.LogLine(run_id=run_id, ts=now, level=level, logger=logger, message=reason))
            return True

    def forget_finished_waits(self) -> int:
        """Drop holds of runs that finished anyway (cancelled while held)."""
        with self._write() as s:
            finished = select(m.Run.id).where(m.Run.state != RunState.QUEUED.value)
            result = s.execute(delete(m.RunWait).where(m.RunWait.run_id.in_(finished)))
            return cast(CursorResult[Any], result).rowcount or 0

    # -- what the scheduler asks about runs ---------------------------------------------------

    def active_run_counts(self) -> dict[tuple[str, str], int]:
        """Per (job, queue), runs running or queued and released to workers (not held)."""
        held = select(m.RunWait.run_id)
        with self._read() as s:
            rows = s.execute(
                select(m.Run.job, m.Run.queue, func.count())
                .where(
                    or_(
                        m.Run.state == RunState.RUNNING.value,
                        (m.Run.state == RunState.QUEUED.value) & m.Run.id.not_in(held),
                    )
                )
                .group_by(m.Run.job, m.Run.queue)
            ).all()
        return {(job, queue): n for job, queue, n in rows}

    def free_capacity(self, *, fresh_within: Seconds, at: datetime | None = None) -> int | None:
        """What the running workers can still take, from the health they last reported.

        Per worker with a heartbeat younger than `fresh_within`: its free executor
        cores where it reports them (`health["free_cores"]`), else its free run slots
        (`slots` - `running_runs`). None when no live worker reports either.
        """
        since = self._when(at) - seconds(fresh_within)
        with self._read() as s:
            rows = s.scalars(
                select(m.Worker.health).where(
                    m.Worker.state == "running", m.Worker.heartbeat_at >= since
                )
            ).all()
        free: list[int] = []
        for health in rows:
            if not isinstance(health, dict):
                continue
            cores, slots, busy = (
                health.get("free_cores"),
                health.get("slots"),
                health.get("running_runs"),
            )
            if isinstance(cores, int | float):
                free.append(max(0, int(cores)))
            elif isinstance(slots, int) and isinstance(busy, int):
                free.append(max(0, slots - busy))
        return sum(free) if free else None

    def has_unfinished_run(self, job: str) -> bool:
        with self._read() as s:
            return (
                s.scalars(
                    select(m.Run.id)
                    .where(
                        m.Run.job == job,
                        m.Run.state.in_([RunState.QUEUED.value, RunState.RUNNING.value]),
                    )
                    .limit(1)
                ).first()
                is not None
            )

    def runs_before(self, job: str, before_id: int, *, limit: int = 50) -> list[r.RunPartitions]:
        """Runs of `job` made before run `before_id`, newest first, with the partitions each covers.

        A run's partitions are its iterations' keys once planned, else those it asked for.
        """
        with self._read() as s:
            runs = s.scalars(
                select(m.Run)
                .where(m.Run.job == job, m.Run.id < before_id)
                .order_by(m.Run.id.desc())
                .limit(limit)
            ).all()
            ids = [x.id for x in runs]
            keys: dict[int, list[str]] = {i: [] for i in ids}
            if ids:
                for run_id, key in s.execute(
                    select(m.Iteration.run_id, m.Iteration.partition_key).where(
                        m.Iteration.run_id.in_(ids)
                    )
                ):
                    keys[run_id].append(key)
            return [
                r.RunPartitions(
                    run=r.Run.from_row(x), partitions=tuple(keys[x.id] or x.partitions or ())
                )
                for x in runs
            ]

    def latest_retry(self, run_id: int, *, depth: int = 20) -> r.Run | None:
        """The newest run down the chain of retries of `run_id` (a requeue, `edgebatch retry`)."""
        found: r.Run | None = None
        current = run_id
        with self._read() as s:
            for _ in range(depth):
                row = s.scalars(
                    select(m.Run)
                    .where(m.Run.retry_of == current)
                    .order_by(m.Run.id.desc())
                    .limit(1)
                ).first()
                if row is None:
                    return found
                found, current = r.Run.from_row(row), row.id
        return found

    def succeeded_runs_after(self, job: str, after_id: int, *, limit: int = 100) -> list[r.Run]:
        """Runs of `job` with id > `after_id` that succeeded, oldest first."""
        with self._read() as s:
            rows = s.scalars(
                select(m.Run)
                .where(
                    m.Run.job == job,
                    m.Run.id > after_id,
                    m.Run.state == RunState.SUCCEEDED.value,
                )
                .order_by(m.Run.id)
                .limit(limit)
            )
            return [r.Run.from_row(x) for x in rows]

    def oldest_unfinished_run_id(self, job: str) -> int | None:
        """The smallest id of a run of `job` still queued or running (a cursor must stop there)."""
        with self._read() as s:
            return s.scalar(
                select(func.min(m.Run.id)).where(
                    m.Run.job == job,
                    m.Run.state.in_([RunState.QUEUED.value, RunState.RUNNING.value]),
                )
            )

    def run_keys_with_prefix(self, prefix: str) -> set[str]:
        with self._read() as s:
            keys = s.scalars(
                select(m.Run.run_key).where(m.Run.run_key.startswith(prefix, autoescape=True))
            )
            return {k for k in keys if k is not None}

    def last_run(self, job: str) -> r.Run | None:
        with self._read() as s:
            row = s.scalars(
                select(m.Run).where(m.Run.job == job).order_by(m.Run.id.desc()).limit(1)
            ).first()
            return r.Run.from_row(row) if row else None
