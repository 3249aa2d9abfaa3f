"""Runs and their iterations and attempts: created, claimed, moved, and asked what is left.

A run is one execution of a job over partitions; an iteration is one partition of a
run, and an attempt one try of an iteration. Moves follow `states.py` under a row
lock (see `transitions`), so two processes never both make one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError

from edgebatch.framework.state import models as m
from edgebatch.framework.state import records as r
from edgebatch.framework.state.base import (
    DEFAULT_LEASE_TTL,
    DEFAULT_QUEUE,
    Seconds,
    StoreBase,
    seconds,
)
from edgebatch.framework.state.errors import StateError
from edgebatch.framework.state.states import (
    RUN_TERMINAL,
    AttemptState,
    IterationState,
    RunState,
    TriggerKind,
    parse_iteration_state,
    parse_run_state,
)
from edgebatch.framework.state.transitions import move_iteration, move_run, put_lease


class RunsAndIterations(StoreBase):
    """Runs, iterations and attempts: the work and where it stands."""

    def create_run(
        self,
        job: str,
        *,
        partitions: Iterable[str] = (),
        trigger: str = TriggerKind.CLI,
        triggered_by: str = "",
        params: dict[str, Any] | None = None,
        retry_of: int | None = None,
        priority: int = 0,
        run_key: str | None = None,
        queue: str = DEFAULT_QUEUE,
        at: datetime | None = None,
    ) -> r.Run:
        """A new `queued` run; `partitions` are those asked for, `retry_of` the run it repeats.

        With a `run_key` already used, nothing is created and the run that key
        made is returned: a request repeated (a retried HTTP call, a schedule
        tick seen twice) is a no-op. `create_run_once` also says which happened.
        """
        return self.create_run_once(
            job,
            partitions=partitions,
            trigger=trigger,
            triggered_by=triggered_by,
            params=params,
            retry_of=retry_of,
            priority=priority,
            run_key=run_key,
            queue=queue,
            at=at,
        )[0]

    def create_run_once(
        self,
        job: str,
        *,
        partitions: Iterable[str] = (),
        trigger: str = TriggerKind.CLI,
        triggered_by: str = "",
        params: dict[str, Any] | None = None,
        retry_of: int | None = None,
        priority: int = 0,
        run_key: str | None = None,
        queue: str = DEFAULT_QUEUE,
        at: datetime | None = None,
    ) -> tuple[r.Run, bool]:
        """`create_run`, and True if this call created the run (False: its `run_key` had one).

        Two processes racing with one key get the same run: the unique column
        lets only one insert through, and the other finds its row.
        """
        if run_key is not None:
            existing = self.run_by_key(run_key)
            if existing is not None:
                return existing, False
        try:
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
                    priority=priority,
                    run_key=run_key,
                    queue=queue,
                    created_at=self._when(at),
                )
                s.add(run)
                s.flush()
                return r.Run.from_row(run), True
        except IntegrityError:
            existing = self.run_by_key(run_key) if run_key is not None else None
            if existing is None:
                raise
            return existing, False

    def run_by_key(self, run_key: str) -> r.Run | None:
        """The run a request with this `run_key` created, if any."""
        with self._read() as s:
            run = s.scalars(select(m.Run).where(m.Run.run_key == run_key)).first()
            return r.Run.from_row(run) if run else None

    def get_run(self, run_id: int) -> r.Run:
        """The run, or a `StateError` saying there is none."""
        with self._read() as s:
            return r.Run.from_row(self._run_or_raise(s, run_id))

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
            return [r.Run.from_row(x) for x in s.scalars(query)]

    def transition_run(
        self,
        run_id: int,
        to: str,
        *,
        error: str | None = None,
        at: datetime | None = None,
        log: r.NewLogLine | None = None,
    ) -> r.Run:
        """Move a run to `to`, stamping `started_at`/`ended_at`; a finished run releases its lease.

        `log` is a line appended in the same transaction, stamped `at`: a reader who
        sees the run finished sees its last line too (the live log stream ends on
        that), and a refused move writes no line.

        Raises `StateError` for a move `states.RUN_MOVES` does not allow, e.g. a
        finished run back to running (retry it as a new run with `retry_of`).
        """
        target = parse_run_state(to)
        at = self._when(at)
        with self._write() as s:
            run = self._run_or_raise(s, run_id, lock=True)
            move_run(s, run, target, error=error, at=at)
            if log is not None:
                self._lock_run_log(s, run_id)
                s.add(
                    m.LogLine(
                        run_id=run_id,
                        iteration_id=log.iteration_id,
                        ts=self._when(log.ts) if log.ts else at,
                        level=log.level.upper(),
                        logger=log.logger,
                        message=log.message,
                    )
                )
            return r.Run.from_row(run)

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
            move_run(s, run, RunState.RUNNING, error=None, at=at)
            put_lease(s, run, holder, seconds(ttl), at)
            return r.Run.from_row(run)

    def claim_next_run(
        self,
        holder: str,
        *,
        job: str | None = None,
        queues: Iterable[str] | None = None,
        ttl: Seconds = DEFAULT_LEASE_TTL,
        at: datetime | None = None,
    ) -> r.Run | None:
        """Take the next queued run (of `job`, of `queues`, if given): most urgent, then oldest.

        The run is started and leased to `holder` in the same step. `queues` None
        means any queue; a worker passes the queues it serves.

        Concurrent callers each get a different run or None: rows another
        transaction is claiming are skipped (`FOR UPDATE SKIP LOCKED`).
        """
        at = self._when(at)
        query = (
            select(m.Run)
            .where(
                m.Run.state == RunState.QUEUED.value,
                # A run the scheduler holds back (upstream, window, limits) is not claimable.
                ~select(m.RunWait.run_id).where(m.RunWait.run_id == m.Run.id).exists(),
            )
            .order_by(m.Run.priority.desc(), m.Run.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if job is not None:
            query = query.where(m.Run.job == job)
        if queues is not None:
            names = list(dict.fromkeys(queues))
            if not names:
                return None
            query = query.where(m.Run.queue.in_(names))
        with self._write() as s:
            run = s.scalars(query).first()
            if run is None:
                return None
            move_run(s, run, RunState.RUNNING, error=None, at=at)
            put_lease(s, run, holder, seconds(ttl), at)
            return r.Run.from_row(run)

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
            return [r.Iteration.from_row(x) for x in rows]

    def get_iteration(self, iteration_id: int) -> r.Iteration:
        with self._read() as s:
            return r.Iteration.from_row(self._iteration_or_raise(s, iteration_id))

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
            return [r.Iteration.from_row(x) for x in s.scalars(query)]

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
            move_iteration(s, it, IterationState.RUNNING, error=None, at=at)
            return r.Iteration.from_row(it)

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
            move_iteration(s, it, target, error=error, at=at)
            if rows_in is not None:
                it.rows_in = rows_in
            if rows_out is not None:
                it.rows_out = rows_out
            s.flush()
            return r.Iteration.from_row(it)

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
            return bool(cast(CursorResult[Any], result).rowcount)

    def list_attempts(self, iteration_id: int) -> list[r.Attempt]:
        with self._read() as s:
            rows = s.scalars(
                select(m.Attempt)
                .where(m.Attempt.iteration_id == iteration_id)
                .order_by(m.Attempt.number)
            )
            return [r.Attempt.from_row(a) for a in rows]

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

    def iteration_counts(self, run_ids: Iterable[int]) -> dict[int, dict[IterationState, int]]:
        """Per run, how many iterations are in each state (for lists of runs)."""
        ids = list(run_ids)
        counts: dict[int, dict[IterationState, int]] = {i: {} for i in ids}
        if not ids:
            return counts
        with self._read() as s:
            rows = s.execute(
                select(m.Iteration.run_id, m.Iteration.state, func.count())
                .where(m.Iteration.run_id.in_(ids))
                .group_by(m.Iteration.run_id, m.Iteration.state)
            ).all()
        for run_id, state, n in rows:
            counts[run_id][IterationState(state)] = n
        return counts

    def loaded_partitions(self, job: str) -> dict[str, datetime]:
        """Each partition of `job` some run loaded, with when its last successful attempt began.

        Input written after that moment may not be in the partition: the planner
        compares it with the age of the partition's input.
        """
        with self._read() as s:
            rows = s.execute(
                select(m.Iteration.partition_key, func.max(m.Attempt.started_at))
                .join(m.Attempt, m.Attempt.iteration_id == m.Iteration.id)
                .join(m.Run, m.Run.id == m.Iteration.run_id)
                .where(m.Run.job == job, m.Attempt.state == AttemptState.SUCCEEDED.value)
                .group_by(m.Iteration.partition_key)
            ).all()
        return {key: at.replace(tzinfo=UTC) if at.tzinfo is None else at for key, at in rows}

    def last_succeeded_run(self, job: str) -> r.Run | None:
        """The newest run of `job` that succeeded: where an incremental run takes up."""
        with self._read() as s:
            run = s.scalars(
                select(m.Run)
                .where(m.Run.job == job, m.Run.state == RunState.SUCCEEDED.value)
                .order_by(m.Run.id.desc())
                .limit(1)
            ).first()
            return r.Run.from_row(run) if run else None
