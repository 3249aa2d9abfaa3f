"""Leases and the reaper: a live process proves it owns a run, a dead one's runs are failed.

No ghost runs: every run that is queued or running is either leased to a process
that renews it, or young enough to be claimed yet; anything else is failed with the
reason, by whichever edgebatch process looks next.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import delete, func, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from edgebatch.framework.state import models as m
from edgebatch.framework.state import records as r
from edgebatch.framework.state.base import (
    DEFAULT_LEASE_TTL,
    DEFAULT_QUEUED_TTL,
    DEFAULT_UNLEASED_GRACE,
    REAPER_PRINCIPAL,
    Seconds,
    StoreBase,
    seconds,
)
from edgebatch.framework.state.errors import LeaseError
from edgebatch.framework.state.states import RUN_TERMINAL, IterationState, RunState
from edgebatch.framework.state.transitions import move_iteration, move_run, put_lease
from edgebatch.framework.state.workers import (
    DEFAULT_MAX_REQUEUES,
    is_worker,
    queues_served,
    requeue_abandoned,
)


class Leases(StoreBase):
    """Take, renew, release and check leases, and reap the runs of dead holders."""

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
            return put_lease(s, run, holder, seconds(ttl), at)

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
            lease.expires_at = at + seconds(ttl)
            s.flush()
            return r.Lease.from_row(lease)

    def release_lease(self, run_id: int, holder: str) -> bool:
        """Give a lease up; False if `holder` did not hold it."""
        with self._write() as s:
            result = s.execute(
                delete(m.Lease).where(m.Lease.run_id == run_id, m.Lease.holder == holder)
            )
            return bool(cast(CursorResult[Any], result).rowcount)

    def get_lease(self, run_id: int) -> r.Lease | None:
        with self._read() as s:
            lease = s.get(m.Lease, run_id)
            return r.Lease.from_row(lease) if lease else None

    def reap_orphans(
        self,
        now: datetime | None = None,
        *,
        unleased_grace: Seconds = DEFAULT_UNLEASED_GRACE,
        queued_ttl: Seconds = DEFAULT_QUEUED_TTL,
        max_requeues: int = DEFAULT_MAX_REQUEUES,
    ) -> list[r.ReapedRun]:
        """Fail runs whose holder is gone, with their running iterations and attempts.

        An orphan is a running or queued run whose lease expired (its holder or
        its creator stopped renewing), a running run that has run longer than
        `unleased_grace` with no lease at all, or a queued run that no process
        claimed within `queued_ttl` (its creator died before starting it), unless
        a running worker serves its queue (then it is waiting its turn). Any
        edgebatch process may call this whenever it looks at the store;
        concurrent reapers skip each other's rows, and a holder that renews in
        time is never reaped. A run whose holder was a registered worker is
        put back in its queue as a retry of its unfinished partitions, in the
        same transaction (at most `max_requeues` times in a row; see `workers`).
        """
        now = self._when(now)
        grace = seconds(unleased_grace)
        alive = (RunState.RUNNING.value, RunState.QUEUED.value)
        expired = (
            select(m.Run, m.Lease)
            .join(m.Lease, m.Lease.run_id == m.Run.id)
            .where(m.Run.state.in_(alive), m.Lease.expires_at < now)
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
        unclaimed = (
            select(m.Run)
            .where(
                m.Run.state == RunState.QUEUED.value,
                m.Run.created_at < now - seconds(queued_ttl),
                ~select(m.Lease.run_id).where(m.Lease.run_id == m.Run.id).exists(),
            )
            .order_by(m.Run.id)
            .with_for_update(skip_locked=True)
        )
        reaped: list[r.ReapedRun] = []
        with self._write() as s:
            for run, lease in s.execute(expired).all():
                reason = (
                    f"orphaned: {run.state} and its lease holder {lease.holder} stopped renewing "
                    f"(last heartbeat {lease.heartbeat_at.isoformat()}, lease expired "
                    f"{lease.expires_at.isoformat()}); marked failed by {self._identity}"
                )
                reaped.append(
                    self._reap(s, run, lease.holder, lease.expires_at, reason, now, max_requeues)
                )
            for run in s.scalars(unleased).all():
                reason = (
                    f"orphaned: running since {(run.started_at or run.created_at).isoformat()} "
                    f"with no lease holder; marked failed by {self._identity}"
                )
                reaped.append(self._reap(s, run, None, None, reason, now, max_requeues))
            served = queues_served(s)
            if served:  # a run waiting in a queue a live worker serves is waiting its turn
                unclaimed = unclaimed.where(m.Run.queue.not_in(sorted(served)))
            for run in s.scalars(unclaimed).all():
                reason = (
                    f"orphaned: queued since {run.created_at.isoformat()} and claimed by no "
                    f"process within {seconds(queued_ttl).total_seconds():g} s (its creator, "
                    f"{run.triggered_by or 'unknown'} by {run.trigger}, did not start it); "
                    f"marked failed by {self._identity}"
                )
                reaped.append(self._reap(s, run, None, None, reason, now, max_requeues))
        return reaped

    def _reap(
        self,
        s: Session,
        run: m.Run,
        holder: str | None,
        expired_at: datetime | None,
        reason: str,
        now: datetime,
        max_requeues: int,
    ) -> r.ReapedRun:
        running = s.scalars(
            select(m.Iteration)
            .where(m.Iteration.run_id == run.id, m.Iteration.state == IterationState.RUNNING.value)
            .order_by(m.Iteration.id)
            .with_for_update()
        ).all()
        for it in running:
            move_iteration(s, it, IterationState.FAILED, error=reason, at=now)
        move_run(s, run, RunState.FAILED, error=reason, at=now)
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
        requeued = None
        if is_worker(s, holder):
            requeued = requeue_abandoned(self, s, run, reason, now, max_requeues=max_requeues)
        return r.ReapedRun(
            run_id=run.id,
            job=run.job,
            holder=holder,
            expired_at=expired_at,
            reason=reason,
            iteration_ids=tuple(it.id for it in running),
            requeued_as=requeued.id if requeued else None,
        )
