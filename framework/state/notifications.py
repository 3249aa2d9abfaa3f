"""The notification outbox: events found once per run, deliveries claimed, retried and logged.

An event (a run's failure, skip, success, cancellation or SLA miss) is recorded once
per run: the unique (run, event) row settles two dispatchers or a restart finding
the same outcome, and its deliveries (one per contact and channel) and the line in
the run's log are written in the same transaction, or not at all.

A delivery is claimed before it is sent: its `next_attempt_at` moves past the
sender's timeout and its attempt is counted, under a row lock that other claimants
skip. Its result is recorded only by that claim (same attempt number), so a sender
that outlived its claim cannot overwrite what the next one did.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite

from edgebatch.framework.state import models as m
from edgebatch.framework.state import records as r
from edgebatch.framework.state.base import StoreBase
from edgebatch.framework.state.states import RunState

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
NOTIFY_LOGGER = "edgebatch.notify"


class Notifications(StoreBase):
    """The outbox of run notifications, and the questions a dispatcher asks of runs."""

    def runs_without_event(
        self,
        event: str,
        *,
        jobs: Iterable[str],
        states: Iterable[str],
        ended_after: datetime | None = None,
        created_before: datetime | None = None,
        after_id: int = 0,
        limit: int = 500,
    ) -> list[r.Run]:
        """Runs of `jobs` in `states` with no `event` recorded yet, oldest first; pass the
        last id seen as `after_id` for the next page.

        `ended_after` bounds the look back at finished runs (so a dispatcher new to
        an old store does not announce last year's failures); `created_before` keeps
        to runs queued before a deadline's start.
        """
        names = sorted(set(jobs))
        if not names:
            return []
        seen = exists().where(
            m.NotificationEvent.run_id == m.Run.id, m.NotificationEvent.event == event
        )
        query = (
            select(m.Run)
            .where(
                m.Run.job.in_(names),
                m.Run.state.in_([RunState(s).value for s in states]),
                m.Run.id > after_id,
                ~seen,
            )
            .order_by(m.Run.id)
            .limit(limit)
        )
        if ended_after is not None:
            query = query.where(m.Run.ended_at >= self._when(ended_after))
        if created_before is not None:
            query = query.where(m.Run.created_at <= self._when(created_before))
        with self._read() as s:
            return [r.Run.from_row(x) for x in s.scalars(query)]

    def record_notification_event(
        self,
        run_id: int,
        event: str,
        *,
        job: str,
        recipients: Iterable[tuple[str, str]],
        payload: dict[str, Any],
        log_message: str,
        log_level: str = "INFO",
        at: datetime | None = None,
    ) -> list[r.Notification] | None:
        """Record `event` of a run with a delivery per (channel, contact), and a log line.

        Returns the deliveries made, or None when the event was recorded before (by
        this or another process): then nothing is written.
        """
        at = self._when(at)
        with self._write() as s:
            self._lock_run_log(s, run_id)
            # RETURNING says whether this insert made the row (rowcount does not, everywhere).
            event_id = s.scalars(
                self._insert_ignoring_duplicates(m.NotificationEvent)
                .values(run_id=run_id, job=job, event=event, detected_at=at, payload=payload)
                .returning(m.NotificationEvent.id)
            ).one_or_none()
            if event_id is None:
                return None
            rows = [
                m.Notification(
                    event_id=event_id,
                    run_id=run_id,
                    event=event,
                    channel=channel,
                    contact=contact,
                    state=PENDING,
                    attempts=0,
                    created_at=at,
                    next_attempt_at=at,
                )
                for channel, contact in dict.fromkeys(recipients)
            ]
            s.add_all(rows)
            s.add(
                m.LogLine(
                    run_id=run_id,
                    ts=at,
                    level=log_level.upper(),
                    logger=NOTIFY_LOGGER,
                    message=log_message,
                )
            )
            s.flush()
            return [r.Notification.from_row(x, payload) for x in rows]

    def claim_due_notifications(
        self, *, until: datetime, limit: int = 50, at: datetime | None = None
    ) -> list[r.Notification]:
        """Take pending deliveries due by now: each counts an attempt and is not due again
        before `until` (its claim), unless its result is recorded first."""
        now = self._when(at)
        until = self._when(until)
        query = (
            select(m.Notification, m.NotificationEvent.payload)
            .join(m.NotificationEvent, m.NotificationEvent.id == m.Notification.event_id)
            .where(m.Notification.state == PENDING, m.Notification.next_attempt_at <= now)
            .order_by(m.Notification.next_attempt_at, m.Notification.id)
            .limit(limit)
            .with_for_update(of=m.Notification, skip_locked=True)
        )
        with self._write() as s:
            claimed = []
            for row, payload in s.execute(query).all():
                row.attempts += 1
                row.next_attempt_at = until
                claimed.append((row, payload))
            s.flush()
            return [r.Notification.from_row(x, p) for x, p in claimed]

    def record_delivery(
        self,
        claimed: r.Notification,
        *,
        delivered: bool,
        error: str | None = None,
        retry_at: datetime | None = None,
        log_message: str,
        log_level: str = "INFO",
        at: datetime | None = None,
    ) -> bool:
        """Record the result of a claimed attempt, with its line in the run's log.

        Not delivered: pending again at `retry_at`, or `failed` for good without one.
        False (and nothing written) when the claim was lost: the row moved on since.
        """
        at = self._when(at)
        if delivered:
            values: dict[str, Any] = {
                "state": DELIVERED,
                "delivered_at": at,
                "next_attempt_at": None,
                "last_error": None,
            }
        elif retry_at is not None:
            values = {"next_attempt_at": self._when(retry_at), "last_error": error}
        else:
            values = {"state": FAILED, "next_attempt_at": None, "last_error": error}
        with self._write() as s:
            self._lock_run_log(s, claimed.run_id)
            done = s.execute(
                update(m.Notification)
                .where(
                    and_(
                        m.Notification.id == claimed.id,
                        m.Notification.state == PENDING,
                        m.Notification.attempts == claimed.attempts,
                    )
                )
                .values(**values)
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                return False
            s.add(
                m.LogLine(
                    run_id=claimed.run_id,
                    ts=at,
                    level=log_level.upper(),
                    logger=NOTIFY_LOGGER,
                    message=log_message,
                )
            )
            return True

    def list_notifications(
        self, *, run_id: int | None = None, state: str | None = None, limit: int = 1000
    ) -> list[r.Notification]:
        """Deliveries, oldest first: of one run, or in one state (`pending`, ...)."""
        query = (
            select(m.Notification, m.NotificationEvent.payload)
            .join(m.NotificationEvent, m.NotificationEvent.id == m.Notification.event_id)
            .order_by(m.Notification.id)
            .limit(limit)
        )
        if run_id is not None:
            query = query.where(m.Notification.run_id == run_id)
        if state is not None:
            query = query.where(m.Notification.state == state)
        with self._read() as s:
            return [r.Notification.from_row(x, p) for x, p in s.execute(query).all()]

    def notification_events(self, run_id: int) -> list[str]:
        """The events recorded for a run, in the order found."""
        with self._read() as s:
            return list(
                s.scalars(
                    select(m.NotificationEvent.event)
                    .where(m.NotificationEvent.run_id == run_id)
                    .order_by(m.NotificationEvent.id)
                )
            )

    def _insert_ignoring_duplicates(self, table: type[m.Base]) -> Any:
        """INSERT that does nothing on a unique conflict, in each backend's words."""
        if self._postgres:
            return postgresql.insert(table).on_conflict_do_nothing()
        return sqlite.insert(table).on_conflict_do_nothing()
