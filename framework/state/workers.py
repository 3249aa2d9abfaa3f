"""Workers: processes that claim queued runs, known to the store by their heartbeats.

A worker registers when it starts, beats with its health every few seconds, and says
when it stops. One that stops beating is `lost` once its last heartbeat is older than
a TTL; its runs' leases expire as well, and the reaper fails them. A run a worker
held when it died (or gave back when it stopped) is put back in its queue as a retry
of only its unfinished partitions, in the same transaction that fails it, so nothing
is lost between the two; its `run_key` (`requeue:RUN`) makes sure it happens once.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgebatch.framework.state import models as m
from edgebatch.framework.state import records as r
from edgebatch.framework.state.base import (
    DEFAULT_WORKER_TTL,
    Seconds,
    StoreBase,
    seconds,
)
from edgebatch.framework.state.errors import LeaseError, StateError
from edgebatch.framework.state.states import (
    IterationState,
    RunState,
    TriggerKind,
    WorkerState,
)
from edgebatch.framework.state.transitions import move_iteration, move_run

# A run requeued this many times in a row (its workers kept dying under it) stays failed.
DEFAULT_MAX_REQUEUES = 3
REQUEUE_KEY = "requeue:"
REQUEUE_PRINCIPAL = "edgebatch:requeue"


class WorkerRegistry(StoreBase):
    """Register workers, record their heartbeats and health, find the lost ones."""

    def register_worker(
        self,
        worker_id: str,
        *,
        queues: Iterable[str],
        host: str | None = None,
        pid: int | None = None,
        health: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> r.Worker:
        """Record a worker as running on `queues` (again, if the id was seen before)."""
        at = self._when(at)
        with self._write() as s:
            row = s.get(m.Worker, worker_id, with_for_update=True)
            if row is None:
                row = m.Worker(worker_id=worker_id)
                s.add(row)
            row.host = host or socket.gethostname()
            row.pid = os.getpid() if pid is None else pid
            row.queues = list(dict.fromkeys(queues))
            row.state = WorkerState.RUNNING.value
            row.started_at = at
            row.heartbeat_at = at
            row.stopped_at = None
            row.health = dict(health or {})
            s.flush()
            return r.Worker.from_row(row)

    def heartbeat_worker(
        self, worker_id: str, health: dict[str, Any] | None = None, *, at: datetime | None = None
    ) -> r.Worker:
        """Stamp the worker's heartbeat (and its health, if given).

        A worker marked lost that beats again is running again (it was slow, not
        dead; its runs' leases tell whether it still holds them). A stopped one
        raises `StateError`: a stopped worker id is never reused.
        """
        at = self._when(at)
        with self._write() as s:
            row = self._worker_or_raise(s, worker_id, lock=True)
            if row.state == WorkerState.STOPPED.value:
                raise StateError(f"worker {worker_id} has stopped; it cannot beat again")
            row.state = WorkerState.RUNNING.value
            row.heartbeat_at = at
            if health is not None:
                row.health = dict(health)
            s.flush()
            return r.Worker.from_row(row)

    def stop_worker(self, worker_id: str, *, at: datetime | None = None) -> r.Worker:
        """Record a clean stop (the worker has finished or given back its runs)."""
        at = self._when(at)
        with self._write() as s:
            row = self._worker_or_raise(s, worker_id, lock=True)
            row.state = WorkerState.STOPPED.value
            row.stopped_at = at
            s.flush()
            return r.Worker.from_row(row)

    def get_worker(self, worker_id: str) -> r.Worker:
        with self._read() as s:
            return r.Worker.from_row(self._worker_or_raise(s, worker_id))

    def list_workers(self, *, state: str | Iterable[str] | None = None) -> list[r.Worker]:
        """Workers, the most recently heard from first."""
        query = select(m.Worker).order_by(m.Worker.heartbeat_at.desc(), m.Worker.worker_id)
        if state is not None:
            states = [state] if isinstance(state, str) else list(state)
            query = query.where(m.Worker.state.in_([WorkerState(x).value for x in states]))
        with self._read() as s:
            return [r.Worker.from_row(x) for x in s.scalars(query)]

    def served_queues(self) -> set[str]:
        """The queues some running worker serves."""
        with self._read() as s:
            return queues_served(s)

    def mark_lost_workers(
        self, *, ttl: Seconds = DEFAULT_WORKER_TTL, now: datetime | None = None
    ) -> list[r.Worker]:
        """Mark running workers whose last heartbeat is older than `ttl` as lost; return them."""
        now = self._when(now)
        query = (
            select(m.Worker)
            .where(
                m.Worker.state == WorkerState.RUNNING.value,
                m.Worker.heartbeat_at < now - seconds(ttl),
            )
            .order_by(m.Worker.worker_id)
            .with_for_update(skip_locked=True)
        )
        with self._write() as s:
            rows = s.scalars(query).all()
            for row in rows:
                row.state = WorkerState.LOST.value
            s.flush()
            return [r.Worker.from_row(x) for x in rows]

    def release_run(
        self,
        run_id: int,
        worker_id: str,
        *,
        reason: str,
        max_requeues: int = DEFAULT_MAX_REQUEUES,
        at: datetime | None = None,
    ) -> r.Run | None:
        """A stopping worker gives a run back: it fails, and its unfinished partitions queue again.

        Its running iterations fail with `reason` (their Spark jobs must be stopped
        first). Returns the new queued run, or None when nothing was left to do or
        the run was requeued `max_requeues` times already. Raises `LeaseError` if
        `worker_id` does not hold the run's lease.
        """
        at = self._when(at)
        with self._write() as s:
            run = self._run_or_raise(s, run_id, lock=True)
            lease = s.get(m.Lease, run_id, with_for_update=True)
            if lease is None or lease.holder != worker_id:
                raise LeaseError(
                    f"worker {worker_id} cannot release run {run_id}: "
                    f"{'it is leased to ' + lease.holder if lease else 'it holds no lease'}"
                )
            why = f"released by worker {worker_id}: {reason}"
            running = s.scalars(
                select(m.Iteration)
                .where(
                    m.Iteration.run_id == run_id,
                    m.Iteration.state == IterationState.RUNNING.value,
                )
                .with_for_update()
            ).all()
            for it in running:
                move_iteration(s, it, IterationState.FAILED, error=why, at=at)
            move_run(s, run, RunState.FAILED, error=why, at=at)
            return requeue_abandoned(self, s, run, why, at, max_requeues=max_requeues)

    def _worker_or_raise(self, s: Session, worker_id: str, *, lock: bool = False) -> m.Worker:
        row = s.get(m.Worker, worker_id, with_for_update=lock or None)
        if row is None:
            raise StateError(f"no worker {worker_id!r} in the state store {self!r}")
        return row


def queues_served(s: Session) -> set[str]:
    """The queues some running worker serves, read in the caller's transaction."""
    rows = s.scalars(select(m.Worker.queues).where(m.Worker.state == WorkerState.RUNNING.value))
    return {q for queues in rows for q in queues or ()}


def is_worker(s: Session, holder: str | None) -> bool:
    """Whether a lease holder is a registered worker (whose runs are requeued when it dies)."""
    return holder is not None and s.get(m.Worker, holder) is not None


def requeue_abandoned(
    store: StoreBase,
    s: Session,
    run: m.Run,
    why: str,
    now: datetime,
    *,
    max_requeues: int = DEFAULT_MAX_REQUEUES,
) -> r.Run | None:
    """Queue a retry of the partitions a failed run left unfinished, inside the caller's move.

    Same job, queue, priority and params; `retry_of` links it, `run_key` `requeue:RUN`
    makes a second requeue of one run impossible. Both runs' logs say what happened.
    """
    states = dict(
        s.execute(
            select(m.Iteration.partition_key, m.Iteration.state)
            .where(m.Iteration.run_id == run.id)
            .order_by(m.Iteration.id)
        ).all()
    )
    ordered = list(dict.fromkeys([*(run.partitions or ()), *states]))
    left = [k for k in ordered if states.get(k) != IterationState.SUCCEEDED.value]
    depth = _requeue_depth(s, run)
    if not left and ordered:
        note = f"run {run.id} not requeued: every partition had succeeded"
        new = None
    elif depth >= max_requeues:
        note = (
            f"run {run.id} not requeued: requeued {depth} time(s) in a row already "
            f"(its workers keep dying under it); retry it by hand"
        )
        new = None
    else:
        new = m.Run(
            job=run.job,
            state=RunState.QUEUED.value,
            trigger=TriggerKind.RETRY.value,
            triggered_by=REQUEUE_PRINCIPAL,
            partitions=left,
            params=dict(run.params or {}),
            retry_of=run.id,
            priority=run.priority,
            queue=run.queue,
            run_key=f"{REQUEUE_KEY}{run.id}",
            created_at=now,
        )
        s.add(new)
        s.flush()
        note = (
            f"run {run.id} requeued on queue {run.queue} as run {new.id}: "
            f"{len(left)} unfinished partition(s) {', '.join(left[:10])}"
            f"{' ...' if len(left) > 10 else ''}"
        )
        _log(store, s, new.id, f"requeue of run {run.id} ({why}): {len(left)} partition(s)", now)
        s.add(
            m.AuditEntry(
                ts=now,
                principal=REQUEUE_PRINCIPAL,
                action="requeue",
                target=f"run:{run.id}",
                detail={"job": run.job, "new_run": new.id, "partitions": left},
            )
        )
    _log(store, s, run.id, note, now, level="WARNING")
    s.flush()
    return r.Run.from_row(new) if new is not None else None


def _requeue_depth(s: Session, run: m.Run) -> int:
    """How many requeues in a row led to `run`."""
    depth, current = 0, run
    while current.run_key and current.run_key.startswith(REQUEUE_KEY) and current.retry_of:
        depth += 1
        parent = s.get(m.Run, current.retry_of)
        if parent is None:
            break
        current = parent
    return depth


def _log(
    store: StoreBase, s: Session, run_id: int, message: str, now: datetime, *, level: str = "INFO"
) -> None:
    store._lock_run_log(s, run_id)
    s.add(m.LogLine(run_id=run_id, ts=now, level=level, logger="edgebatch.worker", message=message))
