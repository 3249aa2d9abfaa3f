"""Run and iteration states and the moves between them: a contract every part relies on.

Kept pure (no database) so the runner, the API and the tests can ask "may this
move happen?" without a store. The store enforces the same table with
conditional updates, so two processes cannot both make a move.
"""

from __future__ import annotations

from enum import StrEnum

from edgebatch.framework.state.errors import StateError


class RunState(StrEnum):
    """A run's state. `skipped` means an upstream job failed, so the run never started."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


class IterationState(StrEnum):
    """An iteration's (one partition of a run) state: a run's states without `skipped`."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class AttemptState(StrEnum):
    """One try of an iteration; it starts running and ends as its iteration's move says."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class WorkerState(StrEnum):
    """A worker's state: `lost` when its heartbeat is older than the store's worker TTL."""

    RUNNING = "running"
    STOPPED = "stopped"
    LOST = "lost"


class TriggerKind(StrEnum):
    """What started a run: the interfaces a user or the system starts work through."""

    CLI = "cli"
    API = "api"
    SCHEDULE = "schedule"
    EVENT = "event"
    SUBMIT = "submit"
    RETRY = "retry"
    BACKFILL = "backfill"


RUN_TERMINAL = frozenset(
    {RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.SKIPPED}
)
ITERATION_TERMINAL = frozenset(
    {IterationState.SUCCEEDED, IterationState.FAILED, IterationState.CANCELLED}
)

# A finished run never moves again: a retry is a new run with `retry_of` set.
RUN_MOVES: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset(
        {RunState.RUNNING, RunState.CANCELLED, RunState.SKIPPED, RunState.FAILED}
    ),
    RunState.RUNNING: frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED}),
}

# running -> queued is the wait between two attempts (backoff); finished stays finished.
ITERATION_MOVES: dict[IterationState, frozenset[IterationState]] = {
    IterationState.QUEUED: frozenset(
        {IterationState.RUNNING, IterationState.CANCELLED, IterationState.FAILED}
    ),
    IterationState.RUNNING: frozenset(
        {
            IterationState.SUCCEEDED,
            IterationState.FAILED,
            IterationState.CANCELLED,
            IterationState.QUEUED,
        }
    ),
}


def run_sources(target: RunState) -> frozenset[RunState]:
    """The states a run may be in to move to `target`."""
    return frozenset(s for s, moves in RUN_MOVES.items() if target in moves)


def iteration_sources(target: IterationState) -> frozenset[IterationState]:
    """The states an iteration may be in to move to `target`."""
    return frozenset(s for s, moves in ITERATION_MOVES.items() if target in moves)


def parse_run_state(value: str) -> RunState:
    """A `RunState` from a string, with the accepted values in the error."""
    try:
        return RunState(value)
    except ValueError:
        raise StateError(
            f"unknown run state {value!r}; expected one of {', '.join(RunState)}"
        ) from None


def parse_iteration_state(value: str) -> IterationState:
    """An `IterationState` from a string, with the accepted values in the error."""
    try:
        return IterationState(value)
    except ValueError:
        raise StateError(
            f"unknown iteration state {value!r}; expected one of {', '.join(IterationState)}"
        ) from None
