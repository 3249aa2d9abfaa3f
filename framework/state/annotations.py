"""What people add to what the system reports: alarm acknowledgements, and the executor
bounds an admin asks of a worker (the worker reads them and applies them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from edgebatch.framework.state import api_models as am
from edgebatch.framework.state.base import StoreBase


@dataclasses.dataclass(frozen=True)
class AlarmAck:
    alarm_id: str
    tenant: str
    device: str
    acked_by: str
    acked_at: datetime
    note: str


@dataclasses.dataclass(frozen=True)
class ExecutorBounds:
    """Dynamic allocation bounds a worker should apply (min and max executors)."""

    worker: str
    min_executors: int
    max_executors: int
    updated_by: str
    updated_at: datetime
    detail: dict[str, Any]


class Annotations(StoreBase):
    def ack_alarm(
        self, alarm_id: str, *, tenant: str, device: str, by: str, note: str = ""
    ) -> AlarmAck:
        """Acknowledge an alarm (again: the newest acknowledgement wins)."""
        with self._write() as s:
            row = s.get(am.AlarmAck, alarm_id, with_for_update=True)
            if row is None:
                row = am.AlarmAck(alarm_id=alarm_id)
                s.add(row)
            row.tenant, row.device, row.acked_by = tenant, device, by
            row.acked_at, row.note = self.now(), note
            s.flush()
            return _ack(row)

    def alarm_acks(self, alarm_ids: Iterable[str]) -> dict[str, AlarmAck]:
        ids = list(alarm_ids)
        if not ids:
            return {}
        found: dict[str, AlarmAck] = {}
        with self._read() as s:
            for i in range(0, len(ids), 500):
                query = select(am.AlarmAck).where(am.AlarmAck.alarm_id.in_(ids[i : i + 500]))
                found.update({x.alarm_id: _ack(x) for x in s.scalars(query)})
        return found

    def set_executor_bounds(
        self, worker: str, *, min_executors: int, max_executors: int, by: str
    ) -> ExecutorBounds:
        with self._write() as s:
            row = s.get(am.WorkerBounds, worker, with_for_update=True)
            if row is None:
                row = am.WorkerBounds(worker=worker, detail={})
                s.add(row)
            row.min_executors, row.max_executors = min_executors, max_executors
            row.updated_by, row.updated_at = by, self.now()
            s.flush()
            return _bounds(row)

    def executor_bounds(self, worker: str | None = None) -> list[ExecutorBounds]:
        """The desired bounds of one worker, or of every worker that has some."""
        query = select(am.WorkerBounds).order_by(am.WorkerBounds.worker)
        if worker is not None:
            query = query.where(am.WorkerBounds.worker == worker)
        with self._read() as s:
            return [_bounds(x) for x in s.scalars(query)]


def _ack(x: am.AlarmAck) -> AlarmAck:
    return AlarmAck(x.alarm_id, x.tenant, x.device, x.acked_by, x.acked_at, x.note)


def _bounds(x: am.WorkerBounds) -> ExecutorBounds:
    return ExecutorBounds(
        x.worker, x.min_executors, x.max_executors, x.updated_by, x.updated_at, dict(x.detail or {})
    )
