"""The audit: who did what to which run or job, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from edgebatch.framework.state import models as m
from edgebatch.framework.state import records as r
from edgebatch.framework.state.base import StoreBase


class Audit(StoreBase):
    """Triggers, cancels, retries and reaps, each with its principal."""

    def audit(
        self,
        principal: str,
        action: str,
        target: str,
        detail: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> r.AuditEntry:
        """Record that `principal` did `action` to `target` (e.g. "alice", "trigger", "job:x")."""
        with self._write() as s:
            entry = m.AuditEntry(
                ts=self._when(at),
                principal=principal,
                action=action,
                target=target,
                detail=dict(detail or {}),
            )
            s.add(entry)
            s.flush()
            return r.AuditEntry.from_row(entry)

    def list_audit(
        self,
        *,
        principal: str | None = None,
        action: str | None = None,
        target: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[r.AuditEntry]:
        """Newest first, filtered by any of principal, action and target."""
        query = select(m.AuditEntry).order_by(m.AuditEntry.id.desc()).limit(limit)
        for column, value in (
            (m.AuditEntry.principal, principal),
            (m.AuditEntry.action, action),
            (m.AuditEntry.target, target),
        ):
            if value is not None:
                query = query.where(column == value)
        if before_id is not None:
            query = query.where(m.AuditEntry.id < before_id)
        with self._read() as s:
            return [r.AuditEntry.from_row(x) for x in s.scalars(query)]
