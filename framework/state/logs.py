"""Run logs: lines appended in order and read by cursor, so a follower misses none."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, insert, select

from edgebatch.framework.state import models as m
from edgebatch.framework.state import records as r
from edgebatch.framework.state import rowmap as rm
from edgebatch.framework.state.base import StoreBase
from edgebatch.framework.state.errors import StateError
from edgebatch.framework.state.fastread import Prepared, Reader, reads


class Logs(StoreBase):
    """A run's log lines (and its iterations'); `id` is the streaming cursor."""

    def append_log(
        self,
        run_id: int,
        message: str,
        *,
        level: str = "INFO",
        logger: str = "",
        iteration_id: int | None = None,
        ts: datetime | None = None,
    ) -> int:
        """Append one line to a run's log and return its id (the next reader's cursor)."""
        line = r.NewLogLine(message, level, logger, iteration_id, ts)
        return self.append_logs(run_id, [line])[-1]

    def append_logs(self, run_id: int, lines: Iterable[r.NewLogLine]) -> list[int]:
        """Append lines in one transaction (what a log handler flushes); returns their ids."""
        now = self.now()
        rows = [
            {
                "run_id": run_id,
                "iteration_id": line.iteration_id,
                "ts": self._when(line.ts) if line.ts else now,
                "level": line.level.upper(),
                "logger": line.logger,
                "message": line.message,
            }
            for line in lines
        ]
        if not rows:
            return []
        with self._write() as s:
            self._lock_run_log(s, run_id)
            if s.get(m.Run, run_id) is None:
                raise StateError(f"cannot log to run {run_id}: no such run in {self!r}")
            ids = s.scalars(
                insert(m.LogLine).returning(m.LogLine.id, sort_by_parameter_order=True), rows
            )
            return list(ids)

    def read_logs(
        self,
        run_id: int,
        *,
        after_id: int = 0,
        limit: int = 1000,
        iteration_id: int | None = None,
    ) -> list[r.LogLine]:
        """Lines of a run with id > `after_id`, oldest first; pass the last id again to follow."""
        with reads(self._engine) as reader:
            return log_lines(reader, run_id, after_id, limit, iteration_id)


# Read by the API's log pages and live streams many times a second: built once, run on the
# driver's connection (fastread), rows mapped by position (rowmap).
_LINES = rm.LOG_LINES
_LOG_PAGE = (
    select(*rm.LOG_LINE_COLUMNS)
    .where(_LINES.c.run_id == bindparam("run_id"), _LINES.c.id > bindparam("after_id"))
    .order_by(_LINES.c.id)
    .limit(bindparam("limit"))
)
_ITERATION_LOG_PAGE = _LOG_PAGE.where(_LINES.c.iteration_id == bindparam("iteration_id"))
_FAST_LOG_PAGE = Prepared(_LOG_PAGE)
_FAST_ITERATION_LOG_PAGE = Prepared(_ITERATION_LOG_PAGE)


def log_lines(
    reader: Reader, run_id: int, after_id: int, limit: int, iteration_id: int | None
) -> list[r.LogLine]:
    """Lines of a run (of one of its iterations if `iteration_id`) with id > `after_id`."""
    params = {"run_id": run_id, "after_id": after_id, "limit": limit}
    if iteration_id is None:
        rows = reader.all(_FAST_LOG_PAGE, params)
    else:
        rows = reader.all(_FAST_ITERATION_LOG_PAGE, {**params, "iteration_id": iteration_id})
    return [rm.log_line_of(x) for x in rows]
