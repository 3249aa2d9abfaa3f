"""The job catalog: job definitions as the registries last saw them, for lists and the API."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from edgebatch.framework.state import models as m
from edgebatch.framework.state import records as r
from edgebatch.framework.state.base import StoreBase


class JobCatalog(StoreBase):
    """Job definitions by name: new, changed or unchanged since the last registry saw them."""

    def upsert_job(
        self,
        name: str,
        *,
        definition_hash: str,
        summary: dict[str, Any] | None = None,
        pool: str = "default",
        priority: int = 0,
        tags: Iterable[str] = (),
        at: datetime | None = None,
    ) -> r.JobRecord:
        """Record a job definition as a registry sees it (new, changed or unchanged)."""
        at = self._when(at)
        with self._write() as s:
            job = s.get(m.Job, name, with_for_update=True)
            if job is None:
                job = m.Job(name=name, first_seen_at=at)
                s.add(job)
            job.definition_hash = definition_hash
            job.summary = dict(summary or {})
            job.pool = pool
            job.priority = priority
            job.tags = list(tags)
            job.last_seen_at = at
            s.flush()
            return r.JobRecord.from_row(job)

    def get_job(self, name: str) -> r.JobRecord | None:
        with self._read() as s:
            job = s.get(m.Job, name)
            return r.JobRecord.from_row(job) if job else None

    def list_jobs(self) -> list[r.JobRecord]:
        with self._read() as s:
            return [r.JobRecord.from_row(j) for j in s.scalars(select(m.Job).order_by(m.Job.name))]
