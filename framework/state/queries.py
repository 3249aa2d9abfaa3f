"""Read-only questions the API and its metrics ask of runs: filtered pages of runs,
per-job success rates and durations, counts by state, and recent iteration timings.

Kept apart from `runs.py` (which moves runs) so the listing can grow filters without
touching the code that enforces state moves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from edgebatch.framework.state import models as m
from edgebatch.framework.state import records as r
from edgebatch.framework.state.base import StoreBase
from edgebatch.framework.state.states import RunState, parse_run_state

TENANT_PARAM = "tenant"


@dataclasses.dataclass(frozen=True)
class JobRunStats:
    """A job's recent runs: how many, how many succeeded, and their durations (seconds)."""

    job: str
    runs: int
    succeeded: int
    failed: int
    durations_s: tuple[float, ...]
    last_run: r.Run | None

    @property
    def success_rate(self) -> float | None:
        finished = self.succeeded + self.failed
        return None if not finished else self.succeeded / finished


def run_tenant(run: r.Run) -> str | None:
    """The tenant a run belongs to: its `tenant` parameter, or None for a fleet-wide run."""
    value = run.params.get(TENANT_PARAM)
    return value if isinstance(value, str) and value else None


class RunQueries(StoreBase):
    """Filtered, paged reads of runs for the API."""

    def find_runs(
        self,
        *,
        job: str | None = None,
        states: Iterable[str] | None = None,
        tenants: Iterable[str] | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        before_id: int | None = None,
        limit: int = 50,
        extra: Any = None,
    ) -> list[r.Run]:
        """Newest first. `tenants` None: every run; else only runs whose `tenant` parameter
        is one of them. `extra` is one more SQL condition on `runs` (e.g. a queue)."""
        query = select(m.Run).order_by(m.Run.id.desc()).limit(limit)
        if job is not None:
            query = query.where(m.Run.job == job)
        if states:
            query = query.where(m.Run.state.in_([parse_run_state(x).value for x in states]))
        if tenants is not None:
            names = sorted(set(tenants))
            if not names:
                return []
            query = query.where(m.Run.params[TENANT_PARAM].as_string().in_(names))
        if created_from is not None:
            query = query.where(m.Run.created_at >= self._when(created_from))
        if created_to is not None:
            query = query.where(m.Run.created_at < self._when(created_to))
        if before_id is not None:
            query = query.where(m.Run.id < before_id)
        if extra is not None:
            query = query.where(extra)
        with self._read() as s:
            return [r.Run.from_row(x) for x in s.scalars(query)]

    def job_run_stats(
        self, job: str, *, window: int = 50, tenants: Iterable[str] | None = None
    ) -> JobRunStats:
        """The last `window` runs of a job (seen by `tenants`, None: all)."""
        runs = self.find_runs(job=job, tenants=tenants, limit=window)
        durations = tuple(
            (x.ended_at - x.started_at).total_seconds()
            for x in reversed(runs)
            if x.started_at and x.ended_at and x.state == RunState.SUCCEEDED
        )
        return JobRunStats(
            job=job,
            runs=len(runs),
            succeeded=sum(1 for x in runs if x.state == RunState.SUCCEEDED),
            failed=sum(1 for x in runs if x.state == RunState.FAILED),
            durations_s=durations,
            last_run=runs[0] if runs else None,
        )

    def count_runs_by_state(self) -> dict[str, int]:
        with self._read() as s:
            rows = s.execute(select(m.Run.state, func.count()).group_by(m.Run.state)).all()
        return {state: n for state, n in rows}

    def iteration_seconds_since(self, since: datetime, *, limit: int = 50_000) -> list[float]:
        """Durations of iterations that ended since `since` (for a histogram)."""
        query = (
            select(m.Iteration.started_at, m.Iteration.ended_at)
            .where(m.Iteration.ended_at >= self._when(since), m.Iteration.started_at.is_not(None))
            .limit(limit)
        )
        with self._read() as s:
            rows = s.execute(query).all()
        return [(end - start).total_seconds() for start, end in rows if start and end]

    def runs_with_ids(self, run_ids: Iterable[int]) -> dict[int, r.Run]:
        ids = list(run_ids)
        if not ids:
            return {}
        with self._read() as s:
            rows = s.scalars(select(m.Run).where(m.Run.id.in_(ids)))
            return {x.id: r.Run.from_row(x) for x in rows}

    def attempts_of_run(self, run_id: int) -> dict[int, list[r.Attempt]]:
        """Every attempt of a run's iterations, by iteration id, in order."""
        query = (
            select(m.Attempt)
            .join(m.Iteration, m.Iteration.id == m.Attempt.iteration_id)
            .where(m.Iteration.run_id == run_id)
            .order_by(m.Attempt.iteration_id, m.Attempt.number)
        )
        found: dict[int, list[r.Attempt]] = {}
        with self._read() as s:
            for x in s.scalars(query):
                found.setdefault(x.iteration_id, []).append(r.Attempt.from_row(x))
        return found

    def queue_depths(self) -> list[QueueDepth]:
        return queue_depths(self)

    def log_count(self, run_id: int) -> int:
        with self._read() as s:
            return int(
                s.scalar(
                    select(func.count()).select_from(m.LogLine).where(m.LogLine.run_id == run_id)
                )
                or 0
            )


__all__ = ["JobRunStats", "RunQueries", "run_tenant"]


@dataclasses.dataclass(frozen=True)
class QueueDepth:
    """One queue: runs waiting and running, and when the oldest waiting one was made."""

    queue: str
    queued: int
    running: int
    oldest_queued_at: datetime | None


def queue_depths(store: StoreBase) -> list[QueueDepth]:
    """Every queue with runs queued or running (the metrics and the API show these)."""
    active = (RunState.QUEUED.value, RunState.RUNNING.value)
    query = (
        select(m.Run.queue, m.Run.state, func.count(), func.min(m.Run.created_at))
        .where(m.Run.state.in_(active))
        .group_by(m.Run.queue, m.Run.state)
    )
    with store._read() as s:
        rows = s.execute(query).all()
    found: dict[str, dict[str, Any]] = {}
    for queue, state, n, oldest in rows:
        entry = found.setdefault(queue, {"queued": 0, "running": 0, "oldest": None})
        entry[state] = n
        if state == RunState.QUEUED.value:
            entry["oldest"] = oldest
    return [QueueDepth(q, e["queued"], e["running"], e["oldest"]) for q, e in sorted(found.items())]
