"""The run report: what ran in a period, how long, rows, what failed; read from the state store."""

from __future__ import annotations

import dataclasses
import datetime as dt

from edgebatch.framework.state import StateStore


@dataclasses.dataclass(frozen=True)
class RunLine:
    run_id: int
    job: str
    state: str
    started_at: dt.datetime | None
    seconds: float | None
    iterations: int
    failed_iterations: int
    rows_out: int
    error: str | None


@dataclasses.dataclass(frozen=True)
class RunReport:
    """Every run created in [start, end), oldest first."""

    start: dt.date
    end: dt.date
    runs: tuple[RunLine, ...]

    @property
    def failures(self) -> tuple[RunLine, ...]:
        return tuple(r for r in self.runs if r.state == "failed" or r.failed_iterations)

    @property
    def rows_out(self) -> int:
        return sum(r.rows_out for r in self.runs)


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def build_run_report(store: StateStore, start: dt.date, end: dt.date) -> RunReport:
    """Read the runs created in [start, end) and their iterations (paging back by id)."""
    lo = dt.datetime.combine(start, dt.time(), dt.UTC)
    hi = dt.datetime.combine(end, dt.time(), dt.UTC)
    lines: list[RunLine] = []
    before: int | None = None
    while True:
        page = store.list_runs(limit=200, before_id=before)
        if not page:
            break
        for run in page:
            created = _utc(run.created_at)
            if not lo <= created < hi:
                continue
            iterations = store.list_iterations(run.id)
            seconds = None
            if run.started_at and run.ended_at:
                seconds = (_utc(run.ended_at) - _utc(run.started_at)).total_seconds()
            lines.append(
                RunLine(
                    run_id=run.id,
                    job=run.job,
                    state=str(run.state),
                    started_at=_utc(run.started_at) if run.started_at else None,
                    seconds=seconds,
                    iterations=len(iterations),
                    failed_iterations=sum(1 for i in iterations if i.state == "failed"),
                    rows_out=sum(i.rows_out or 0 for i in iterations),
                    error=run.error,
                )
            )
        if _utc(page[-1].created_at) < lo:
            break
        before = page[-1].id
    return RunReport(start=start, end=end, runs=tuple(sorted(lines, key=lambda r: r.run_id)))
