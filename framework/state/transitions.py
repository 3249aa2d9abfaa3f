"""Moves of runs and iterations inside a transaction, checked against `states.py`.

Shared by the runs aggregate (transitions, claims) and the reaper (which fails what a
dead holder left running), so both make a move the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from edgebatch.framework.state import models as m
from edgebatch.framework.state import records as r
from edgebatch.framework.state.errors import LeaseError, StateError
from edgebatch.framework.state.states import (
    ITERATION_MOVES,
    ITERATION_TERMINAL,
    RUN_MOVES,
    RUN_TERMINAL,
    AttemptState,
    IterationState,
    RunState,
)


def move_run(s: Session, run: m.Run, target: RunState, *, error: str | None, at: datetime) -> None:
    current = RunState(run.state)
    if target not in RUN_MOVES.get(current, frozenset()):
        raise StateError(illegal("run", run.id, run.job, None, current, target, RUN_TERMINAL))
    run.state = target.value
    if target is RunState.RUNNING:
        run.started_at = at
    if target in RUN_TERMINAL:
        run.ended_at = at
        s.execute(delete(m.Lease).where(m.Lease.run_id == run.id))
    if error is not None:
        run.error = error
    s.flush()


def move_iteration(
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
            illegal(
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


def illegal(
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
        table: Mapping[Any, frozenset[Any]] = RUN_MOVES if kind == "run" else ITERATION_MOVES
        moves = table.get(current, frozenset())
        hint = f"from {current} it may become {', '.join(sorted(moves))}"
    return f"{what} is {current} and cannot become {target}: {hint}"


def put_lease(s: Session, run: m.Run, holder: str, ttl: timedelta, at: datetime) -> r.Lease:
    """Lease `run` to `holder` (free, expired or already theirs), inside the caller's move."""
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
    return r.Lease.from_row(lease)
