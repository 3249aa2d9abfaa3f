"""Whether a held run may start now: upstream runs, preconditions, window, free executors.

Each check is a plain function over values that returns a `Decision` with its reason,
so the scheduler can log it in the run's log and a test can assert on it. Limits
(per job, per queue, overall) and aging are applied afterwards across all the runs
that passed (`order_by_aged_priority`), since they compare runs with each other.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from enum import StrEnum

from edgebatch.framework.definitions import Job
from edgebatch.framework.partitions import Unpartitioned
from edgebatch.framework.scheduler.spec import (
    FreeExecutors,
    InputsComplete,
    MinRows,
    Precondition,
    TableFresh,
    Window,
)
from edgebatch.framework.state import Run, RunPartitions, RunState


class Action(StrEnum):
    START = "start"
    WAIT = "wait"
    SKIP = "skip"
    FAIL = "fail"


@dataclasses.dataclass(frozen=True)
class Decision:
    """What to do with a held run, and why, in words for its log."""

    action: Action
    reason: str

    @classmethod
    def start(cls, reason: str = "every check passed") -> Decision:
        return cls(Action.START, reason)

    @classmethod
    def wait(cls, reason: str) -> Decision:
        return cls(Action.WAIT, reason)


def upstream_decision(
    run: Run, upstream: Job, runs: Sequence[RunPartitions], *, same_partitioning: bool
) -> Decision:
    """Wait for, or skip after, the runs of `upstream` over `run`'s partitions made before it.

    For each partition of the run, the newest upstream run made before it that covers
    the partition decides: still queued or running, wait; failed, cancelled or skipped,
    skip; succeeded, go. When the two jobs do not share a partitioning (or the run is
    incremental), the newest upstream run decides for all. No upstream run: go.
    """
    if (
        not same_partitioning
        or not run.partitions
        or isinstance(upstream.partitioning, Unpartitioned)
    ):
        newest = runs[0] if runs else None
        deciding = {"*": newest} if newest else {}
    else:
        deciding = {}
        for key in run.partitions:
            for candidate in runs:  # newest first
                if key in candidate.partitions or not candidate.partitions:
                    deciding[key] = candidate
                    break
    waiting = []
    for key, rp in deciding.items():
        up = rp.run
        where = "" if key == "*" else f" for partition {key}"
        if up.state in (RunState.QUEUED, RunState.RUNNING):
            waiting.append(f"run {up.id} of upstream job {upstream.name}{where} is {up.state}")
        elif up.state is not RunState.SUCCEEDED:
            why = f": {up.error}" if up.error else ""
            return Decision(
                Action.SKIP,
                f"skipped: upstream job {upstream.name} run {up.id}{where} {up.state}{why}",
            )
    if waiting:
        return Decision.wait("upstream: " + "; ".join(waiting))
    return Decision.start()


def window_decision(window: Window | None, now: dt.datetime) -> Decision:
    if window is None or window.contains(now):
        return Decision.start()
    return Decision.wait(f"outside its batch window {window.describe()}")


def executors_decision(need: FreeExecutors | None, free: int | None) -> Decision:
    if need is None:
        return Decision.start()
    if free is None:
        return Decision.wait(f"needs {need.describe()}; no live worker reports its room")
    if free < need.min_free:
        return Decision.wait(f"needs {need.describe()}; live workers report room for {free}")
    return Decision.start()


@dataclasses.dataclass(frozen=True)
class Facts:
    """What preconditions ask about, read by the scheduler (injectable in tests)."""

    loaded: Callable[[str], set[str]]
    last_write: Callable[[str], dt.datetime | None]
    rows: Callable[[str], int | None]


def precondition_unmet(pre: Precondition, run: Run, facts: Facts, now: dt.datetime) -> str | None:
    """Why `pre` does not hold for `run` now; None when it holds."""
    if isinstance(pre, InputsComplete):
        missing = [p for p in run.partitions if p not in facts.loaded(pre.job)]
        return f"partitions not loaded by {pre.job}: {', '.join(missing)}" if missing else None
    if isinstance(pre, TableFresh):
        last = facts.last_write(pre.table)
        if last is None:
            return f"table {pre.table} has never been written"
        age = (now - last).total_seconds()
        if age > pre.within_s:
            return f"table {pre.table} last written {age:.0f} s ago (limit {pre.within_s:g} s)"
        return None
    assert isinstance(pre, MinRows)
    rows = facts.rows(pre.table)
    if rows is None:
        return f"table {pre.table} has files without row counts"
    if rows < pre.rows:
        return f"table {pre.table} has {rows} rows (floor {pre.rows})"
    return None


def preconditions_decision(job: Job, run: Run, facts: Facts, now: dt.datetime) -> Decision:
    """Wait while a precondition fails; fail the run once its deadline has passed."""
    unmet = [
        why
        for pre in job.schedule.preconditions
        if (why := precondition_unmet(pre, run, facts, now))
    ]
    if not unmet:
        return Decision.start()
    deadline = job.schedule.precondition_deadline_s
    waited = (now - run.created_at).total_seconds()
    if deadline is not None and waited >= deadline:
        return Decision(
            Action.FAIL,
            f"failed: preconditions not met within {deadline:g} s: {'; '.join(unmet)}",
        )
    return Decision.wait("preconditions: " + "; ".join(unmet))


def aged_priority(
    run: Run, waiting_since: dt.datetime, now: dt.datetime, per_minute: float
) -> float:
    """Priority grown by the time waited, so a low priority is never passed over forever."""
    minutes = max(0.0, (now - waiting_since).total_seconds() / 60)
    return run.priority + per_minute * minutes
