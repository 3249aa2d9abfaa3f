"""Records from SQLAlchemy Core rows by position, for the reads the API makes many times
a second.

An ORM object, or a Core row read by column name, costs several microseconds per field;
a row read by position costs almost nothing. Each record here has its table's columns
listed in the record's field order (`RUN_COLUMNS`, ...), so a statement selecting them
hands back tuples the mapping functions unpack directly. The records are the same
frozen dataclasses `records.py` builds from ORM objects: callers cannot tell which path
made them (tests/framework/test_rowmap.py compares the two).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Table

from edgebatch.framework.state import models as m
from edgebatch.framework.state import records as r
from edgebatch.framework.state.states import AttemptState, IterationState, RunState

RUNS: Table = m.Run.__table__  # type: ignore[assignment]
ITERATIONS: Table = m.Iteration.__table__  # type: ignore[assignment]
ATTEMPTS: Table = m.Attempt.__table__  # type: ignore[assignment]
LOG_LINES: Table = m.LogLine.__table__  # type: ignore[assignment]


def _columns(table: Table, record: type) -> tuple[Column[Any], ...]:
    """The table's columns in the order of the record's fields (each field is a column)."""
    return tuple(table.c[f.name] for f in dataclasses.fields(record))


RUN_COLUMNS = _columns(RUNS, r.Run)
ITERATION_COLUMNS = _columns(ITERATIONS, r.Iteration)
ATTEMPT_COLUMNS = _columns(ATTEMPTS, r.Attempt)
LOG_LINE_COLUMNS = _columns(LOG_LINES, r.LogLine)

# Enum members by value: a dict look-up, where calling the enum class goes through its
# metaclass (and an unknown value still fails, with a KeyError naming it).
_RUN_STATES: dict[str, RunState] = {s.value: s for s in RunState}
_ITERATION_STATES: dict[str, IterationState] = {s.value: s for s in IterationState}
_ATTEMPT_STATES: dict[str, AttemptState] = {s.value: s for s in AttemptState}


def run_of(row: Sequence[Any]) -> r.Run:
    """A `Run` from a row of `RUN_COLUMNS`."""
    (
        id_,
        job,
        state,
        trigger,
        triggered_by,
        partitions,
        params,
        retry_of,
        created_at,
        started_at,
        ended_at,
        error,
        priority,
        run_key,
        queue,
    ) = row
    return r.Run(
        id_,
        job,
        _RUN_STATES[state],
        trigger,
        triggered_by,
        tuple(partitions or ()),
        dict(params or {}),
        retry_of,
        created_at,
        started_at,
        ended_at,
        error,
        priority,
        run_key,
        queue,
    )


def iteration_of(row: Sequence[Any]) -> r.Iteration:
    """An `Iteration` from a row of `ITERATION_COLUMNS`."""
    values = list(row)
    values[3] = _ITERATION_STATES[values[3]]
    return r.Iteration(*values)


def attempt_of(row: Sequence[Any]) -> r.Attempt:
    """An `Attempt` from a row of `ATTEMPT_COLUMNS`."""
    id_, iteration_id, number, state, started_at, ended_at, error = row
    return r.Attempt(id_, iteration_id, number, _ATTEMPT_STATES[state], started_at, ended_at, error)


def log_line_of(row: Sequence[Any]) -> r.LogLine:
    """A `LogLine` from a row of `LOG_LINE_COLUMNS` (all plain values: no conversion)."""
    return r.LogLine(*row)


__all__ = [
    "ATTEMPT_COLUMNS",
    "ITERATION_COLUMNS",
    "LOG_LINE_COLUMNS",
    "RUN_COLUMNS",
    "attempt_of",
    "iteration_of",
    "log_line_of",
    "run_of",
]
