"""Read-only questions the API and its metrics ask of runs: filtered pages of runs,
per-job success rates and durations, counts by state, and recent iteration timings.

Kept apart from `runs.py` (which moves runs) so the listing can grow filters without
touching the code that enforces state moves.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, select

from edgebatch.framework.state import models as m
from edgebatch.framework.state import records as r
from edgebatch.framework.state import rowmap as rm
from edgebatch.framework.state.base import StoreBase
from edgebatch.framework.state.fastread import Prepared, reads
from edgebatch.framework.state.logs import log_lines
from edgebatch.framework.state.states import RunState, parse_run_state

TENANT_PARAM = "tenant"

# The hot reads of the API, built once with bound parameters, so a call neither builds
# nor compiles a statement (SQLAlchemy's compiled cache is keyed on the built one), and
# selecting each record's columns in its field order, so rows map by position (rowmap).
_RUNS, _ITS, _ATTS = rm.RUNS, rm.ITERATIONS, rm.ATTEMPTS
_RUN_BY_ID = select(*rm.RUN_COLUMNS).where(_RUNS.c.id == bindparam("run_id"))
# A run with its iterations and their attempts in one statement (one row per attempt, or
# per iteration without one, or one row for a run without iterations).
_RUN_DETAIL = (
    select(*rm.RUN_COLUMNS, *rm.ITERATION_COLUMNS, *rm.ATTEMPT_COLUMNS)
    .select_from(
        _RUNS.outerjoin(_ITS, _ITS.c.run_id == _RUNS.c.id).outerjoin(
            _ATTS, _ATTS.c.iteration_id == _ITS.c.id
        )
    )
    .where(_RUNS.c.id == bindparam("run_id"))
    .order_by(_ITS.c.id, _ATTS.c.number)
)
# The run status and a log page's run, run on the driver's connection (fastread).
_FAST_RUN_BY_ID = Prepared(_RUN_BY_ID)
_FAST_RUN_DETAIL = Prepared(_RUN_DETAIL)
_IT_AT = len(rm.RUN_COLUMNS)
_ATT_AT = _IT_AT + len(rm.ITERATION_COLUMNS)
_ITERATION_COUNTS = (
    select(_ITS.c.run_id, _ITS.c.state, func.count())
    .where(_ITS.c.run_id.in_(bindparam("run_ids", expanding=True)))
    .group_by(_ITS.c.run_id, _ITS.c.state)
)
# The filters of a run listing, in the order of the key of `_RUN_LISTS`.
_RUN_FILTERS = ("job", "states", "tenants", "created_from", "created_to", "before_id", "queue")
# One statement per combination of filters given, made on first use.
_RUN_LISTS: dict[tuple[bool, ...], Select[Any]] = {}


def _run_list(given: tuple[bool, ...]) -> Select[Any]:
    """The listing statement for the filters `given` (flags in `_RUN_FILTERS` order)."""
    query = _RUN_LISTS.get(given)
    if query is not None:
        return query
    job, states, tenants, created_from, created_to, before_id, queue = given
    query = select(*rm.RUN_COLUMNS).order_by(_RUNS.c.id.desc()).limit(bindparam("limit"))
    if job:
        query = query.where(_RUNS.c.job == bindparam("job"))
    if states:
        query = query.where(_RUNS.c.state.in_(bindparam("states", expanding=True)))
    if tenants:
        tenant = _RUNS.c.params[TENANT_PARAM].as_string()
        query = query.where(tenant.in_(bindparam("tenants", expanding=True)))
    if created_from:
        query = query.where(_RUNS.c.created_at >= bindparam("created_from"))
    if created_to:
        query = query.where(_RUNS.c.created_at < bindparam("created_to"))
    if before_id:
        query = query.where(_RUNS.c.id < bindparam("before_id"))
    if queue:
        query = query.where(_RUNS.c.queue == bindparam("queue"))
    _RUN_LISTS[given] = query
    return query


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
    """Filtered, paged reads of runs for the API.

    Read in one transaction with SQLAlchemy Core rows (not ORM objects): an API answer
    is several small queries, and a session per query cost more than the queries.
    """

    @property
    def embedded(self) -> bool:
        """The database is a file this process reads itself (SQLite): a point read is a
        function call of some 100 microseconds, not a round trip to a server."""
        return not self._postgres

    @contextlib.contextmanager
    def _rows(self) -> Iterator[Connection]:
        with self._engine.begin() as conn:
            yield conn

    def run_detail(
        self, run_id: int
    ) -> tuple[r.Run, list[r.Iteration], dict[int, list[r.Attempt]]] | None:
        """A run, its iterations in order and their attempts by iteration, or None."""
        with reads(self._engine) as reader:
            rows = reader.all(_FAST_RUN_DETAIL, {"run_id": run_id})
        if not rows:
            return None
        run = rm.run_of(rows[0][:_IT_AT])
        iterations: list[r.Iteration] = []
        attempts: dict[int, list[r.Attempt]] = {}
        for row in rows:
            it_id = row[_IT_AT]
            if it_id is None:
                continue
            if not iterations or iterations[-1].id != it_id:
                iterations.append(rm.iteration_of(row[_IT_AT:_ATT_AT]))
            if row[_ATT_AT] is not None:
                attempts.setdefault(it_id, []).append(rm.attempt_of(row[_ATT_AT:]))
        return run, iterations, attempts

    def find_run(self, run_id: int) -> r.Run | None:
        with reads(self._engine) as reader:
            rows = reader.all(_FAST_RUN_BY_ID, {"run_id": run_id})
        return rm.run_of(rows[0]) if rows else None

    def run_page(
        self, *, limit: int, **filters: Any
    ) -> tuple[list[r.Run], dict[int, dict[str, int]]]:
        """`find_runs` and each run's iteration counts by state, in one transaction."""
        found = self._run_list_params(limit=limit, **filters)
        if found is None:
            return [], {}
        query, params = found
        with self._rows() as conn:
            runs = [rm.run_of(x) for x in conn.execute(query, params).all()]
            counts: dict[int, dict[str, int]] = {x.id: {} for x in runs}
            if runs:
                for run_id, state, n in conn.execute(_ITERATION_COUNTS, {"run_ids": list(counts)}):
                    counts[run_id][state] = n
        return runs, counts

    def log_page(
        self, run_id: int, *, after_id: int = 0, limit: int = 1000, iteration_id: int | None = None
    ) -> list[r.LogLine]:
        """`read_logs`: lines with id > `after_id`, oldest first."""
        with reads(self._engine) as reader:
            return log_lines(reader, run_id, after_id, limit, iteration_id)

    def run_log_page(
        self, run_id: int, *, after_id: int = 0, limit: int = 1000, iteration_id: int | None = None
    ) -> tuple[r.Run | None, list[r.LogLine]]:
        """The run (None if there is none) and `log_page` of it, in one transaction."""
        with reads(self._engine, snapshot=True) as reader:
            rows = reader.all(_FAST_RUN_BY_ID, {"run_id": run_id})
            if not rows:
                return None, []
            lines = log_lines(reader, run_id, after_id, limit, iteration_id)
        return rm.run_of(rows[0]), lines

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
        queue: str | None = None,
    ) -> list[r.Run]:
        """Newest first. `tenants` None: every run; else only runs whose `tenant` parameter
        is one of them. `queue` keeps one queue's runs; `extra` is one more SQL condition on
        `runs` (a statement made per call: prefer the named filters)."""
        found = self._run_list_params(
            job=job,
            states=states,
            tenants=tenants,
            created_from=created_from,
            created_to=created_to,
            before_id=before_id,
            limit=limit,
            extra=extra,
            queue=queue,
        )
        if found is None:
            return []
        query, params = found
        with self._rows() as conn:
            return [rm.run_of(x) for x in conn.execute(query, params).all()]

    def _run_list_params(
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
        queue: str | None = None,
    ) -> tuple[Select[Any], dict[str, Any]] | None:
        """The listing statement and its parameters; None when no run can match (an empty
        set of tenants)."""
        values: dict[str, Any] = {
            "job": job,
            "states": [parse_run_state(x).value for x in states] if states else None,
            "tenants": None,
            "created_from": None if created_from is None else self._when(created_from),
            "created_to": None if created_to is None else self._when(created_to),
            "before_id": before_id,
            "queue": queue,
        }
        if tenants is not None:
            names = sorted(set(tenants))
            if not names:
                return None
            values["tenants"] = names
        query = _run_list(tuple(values[k] is not None for k in _RUN_FILTERS))
        if extra is not None:
            query = query.where(extra)
        params = {k: v for k, v in values.items() if v is not None}
        params["limit"] = limit
        return query, params

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
