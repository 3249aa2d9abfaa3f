"""The dispatcher: finds outcomes and SLA misses in the state store, enqueues, delivers.

It reads what runs did from the store, so nothing that runs jobs has to call it: a
scheduler process starts it as a thread (`start()`/`stop()`), or `edgebatch notify`
runs it alone. Every pass (`run_once()`):

1. finds runs that ended in an event their job's contacts hear of (failure, skipped,
   success, cancelled), and runs past their SLA deadline, unfinished or finished late;
   records each event once, with its deliveries and a line in the run's log;
2. claims the deliveries that are due and sends them `workers` at a time, each bounded
   by `timeout_s`; every attempt, delivered or not and why, is a line in the run's log;
   a failed one waits `backoff_s`, doubling up to `max_backoff_s`, until `max_attempts`.

Two dispatchers on one store (a leader and a standby, or a stray `edgebatch notify`)
neither enqueue nor send a notification twice: events are unique per run and event,
and deliveries are claimed under row locks that the other skips.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta

from edgebatch.framework.definitions import Job, Retry
from edgebatch.framework.notify.channels import DeliveryError, post_webhook, send_email
from edgebatch.framework.notify.contacts import Channel, Contact, NotifyEvent, parse_contacts
from edgebatch.framework.notify.notices import build_payload, email_message, webhook_body
from edgebatch.framework.registry import JobRegistry
from edgebatch.framework.state import Notification, Run, RunState, StateStore
from edgebatch.settings import Settings

log = logging.getLogger("edgebatch.notify")

# The run state each outcome event follows.
OUTCOMES: dict[NotifyEvent, RunState] = {
    NotifyEvent.FAILURE: RunState.FAILED,
    NotifyEvent.SKIPPED: RunState.SKIPPED,
    NotifyEvent.SUCCESS: RunState.SUCCEEDED,
    NotifyEvent.CANCELLED: RunState.CANCELLED,
}
UNFINISHED = (RunState.QUEUED, RunState.RUNNING)
FINISHED = tuple(OUTCOMES.values())
# After the first pass, each pass looks back at runs that ended since the previous one
# began, and this much before: a run's end may commit a little after it is stamped.
SCAN_OVERLAP = timedelta(minutes=5)
PAGE = 500


@dataclasses.dataclass(frozen=True)
class DispatchPass:
    """What one pass did: events found (run id, event), and delivery attempts by outcome."""

    found: tuple[tuple[int, str], ...] = ()
    delivered: int = 0
    retrying: int = 0
    given_up: int = 0
    still_sending: int = 0

    @property
    def attempts(self) -> int:
        return self.delivered + self.retrying + self.given_up


class Dispatcher:
    """Notifies a job's contacts of its runs' outcomes and SLA misses (see the module doc).

    `clock` is the time the dispatcher acts on (deadlines, backoff); tests pass a fake
    one, shared with the store's, to test retries and SLAs without sleeping.
    """

    def __init__(
        self,
        store: StateStore,
        registry: JobRegistry,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.config = settings.notify
        self.base_url = self.config.base_url or f"http://{settings.api.host}:{settings.api.port}"
        self._clock = clock or store.now
        self._backoff = Retry(
            attempts=self.config.max_attempts,
            backoff_s=self.config.backoff_s,
            max_backoff_s=self.config.max_backoff_s,
            jitter=0.0,
        )
        self._last_scan: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the pass -------------------------------------------------------------------------

    def run_once(self) -> DispatchPass:
        """Find new events, then deliver what is due; returns what it did."""
        found = self.scan()
        delivered = self.deliver_due()
        return dataclasses.replace(delivered, found=tuple(found))

    def scan(self) -> list[tuple[int, str]]:
        """Record the events not yet recorded: outcomes, then SLA misses."""
        now = self._now()
        since = now - timedelta(seconds=self.config.lookback_s)
        if self._last_scan is not None:
            since = max(since, self._last_scan - SCAN_OVERLAP)
        found: list[tuple[int, str]] = []
        for event, state in OUTCOMES.items():
            jobs = {j.name: j for j in self.registry if j.contacts and event in j.notify_on}
            for run in self._runs(event, jobs, [state], ended_after=since):
                if self._record(run, jobs[run.job], event, now):
                    found.append((run.id, str(event)))
        for job in self.registry:
            for run in self._late_runs(job, now, since):
                if self._record(run, job, NotifyEvent.SLA_MISS, now):
                    found.append((run.id, str(NotifyEvent.SLA_MISS)))
        self._last_scan = now
        return found

    def deliver_due(self, *, max_batches: int = 25) -> DispatchPass:
        """Send the due deliveries, `workers` at a time, each within its timeout.

        Only as many as are sent at once are claimed at once, so no claim runs out
        while its delivery waits its turn. A batch still stuck when it should have
        ended (timeouts at every step, plus slack) ends the pass: its senders keep
        their claims and record their results when they end. More than `max_batches`
        batches wait for the next pass.
        """
        total = DispatchPass()
        for _ in range(max_batches):
            batch = self._deliver_batch()
            total = DispatchPass(
                delivered=total.delivered + batch.delivered,
                retrying=total.retrying + batch.retrying,
                given_up=total.given_up + batch.given_up,
                still_sending=total.still_sending + batch.still_sending,
            )
            if batch.attempts + batch.still_sending < self.config.workers or batch.still_sending:
                break
        return total

    def _deliver_batch(self) -> DispatchPass:
        now = self._now()
        timeout = self.config.timeout_s
        # Long enough for a connect, a few exchanges and the record: nobody else takes
        # a delivery still being sent.
        claim_until = now + timedelta(seconds=timeout * 6 + 30)
        due = self.store.claim_due_notifications(
            until=claim_until, limit=self.config.workers, at=now
        )
        if not due:
            return DispatchPass()
        pool = ThreadPoolExecutor(max_workers=len(due), thread_name_prefix="edgebatch-notify")
        try:
            futures = [pool.submit(self._attempt, n) for n in due]
            done, pending = wait(futures, timeout=timeout * 4 + 5)
        finally:
            pool.shutdown(wait=False)
        outcomes = [f.result() for f in done]
        return DispatchPass(
            delivered=outcomes.count("delivered"),
            retrying=outcomes.count("retrying"),
            given_up=outcomes.count("given_up"),
            still_sending=len(pending),
        )

    # -- the background thread -------------------------------------------------------------

    def start(self) -> Dispatcher:
        """Run passes every `[notify] interval_s` in a daemon thread until `stop()`."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="edgebatch-notify", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to stop after its current pass, and wait for it (up to `timeout`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                # A store outage or a bug must not end notifications for good: the next
                # pass tries again, and nothing is lost (the outbox is in the store).
                log.exception("notification pass failed; trying again in %s s", self.interval)
            self._stop.wait(self.interval)

    @property
    def interval(self) -> float:
        return self.config.interval_s

    # -- inside -----------------------------------------------------------------------------

    def _now(self) -> datetime:
        at = self._clock()
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)

    def _runs(
        self,
        event: NotifyEvent,
        jobs: dict[str, Job],
        states: tuple[RunState, ...] | list[RunState],
        **bounds: datetime,
    ) -> Iterator[Run]:
        after = 0
        while jobs:
            page = self.store.runs_without_event(
                str(event), jobs=jobs, states=states, after_id=after, limit=PAGE, **bounds
            )
            yield from page
            if len(page) < PAGE:
                return
            after = page[-1].id

    def _late_runs(self, job: Job, now: datetime, since: datetime) -> list[Run]:
        """Runs of `job` past their SLA with no miss recorded: unfinished past the deadline,
        or finished (since `since`) after it."""
        if job.sla is None:
            return []
        sla = job.sla
        one = {job.name: job}
        miss = NotifyEvent.SLA_MISS
        unfinished = self._runs(miss, one, UNFINISHED, created_before=now - sla)
        finished = self._runs(miss, one, FINISHED, ended_after=since, created_before=now - sla)
        ended_late = (r for r in finished if r.ended_at and r.ended_at > r.created_at + sla)
        return sorted([*unfinished, *ended_late], key=lambda r: r.id)

    def _record(self, run: Run, job: Job, event: NotifyEvent, now: datetime) -> bool:
        contacts = parse_contacts(job.contacts, job=job.name) if event in job.notify_on else ()
        failed = (
            self.store.failed_or_unfinished_partitions(run.id)
            if run.state is RunState.FAILED
            else []
        )
        payload = build_payload(
            run,
            event,
            base_url=self.base_url,
            failed_partitions=failed,
            sla=job.sla if event is NotifyEvent.SLA_MISS else None,
            detected_at=now,
        )
        to = ", ".join(c.shown for c in contacts)
        if event is NotifyEvent.SLA_MISS:
            assert job.sla is not None
            deadline = run.created_at + job.sla
            if run.finished and run.ended_at is not None:
                status = f"it ended {run.state} {_span(run.ended_at - deadline)} late"
            else:
                status = f"it is still {run.state}"
            message = (
                f"SLA missed: run {run.id} of {job.name} was to end by {deadline:%Y-%m-%d %H:%M:%S}"
                f" UTC ({_span(job.sla)} after it was queued); {status}"
                + (f"; notifying {to}" if contacts else "")
            )
            level = "WARNING"
        else:
            message = f"notifying {to} of {event} (run {run.state})"
            level = "INFO"
        made = self.store.record_notification_event(
            run.id,
            str(event),
            job=job.name,
            recipients=[(str(c.channel), c.address) for c in contacts],
            payload=payload,
            log_message=message,
            log_level=level,
            at=now,
        )
        if made is not None:
            log.info("run %s of %s: %s", run.id, job.name, message)
        return made is not None

    def _attempt(self, n: Notification) -> str:
        contact = Contact(Channel(n.channel), n.contact)
        what = f"{n.event} to {contact.shown} by {n.channel}"
        try:
            if contact.channel is Channel.WEBHOOK:
                outcome = post_webhook(
                    n.contact,
                    webhook_body(n.payload, notification_id=n.id),
                    timeout=self.config.timeout_s,
                    key=f"edgebatch-notification-{n.id}",
                )
            else:
                message = email_message(
                    n.payload,
                    sender=self.config.smtp_from,
                    recipient=n.contact,
                    notification_id=n.id,
                )
                outcome = send_email(self.config, message, timeout=self.config.timeout_s)
        except DeliveryError as exc:
            return self._failed(n, what, str(exc), permanent=exc.permanent)
        except Exception as exc:  # a bug in a channel must not lose the delivery
            log.exception("notification %s: %s", n.id, what)
            return self._failed(n, what, f"{type(exc).__name__}: {exc}", permanent=False)
        self.store.record_delivery(
            n,
            delivered=True,
            log_message=f"notified {what}: {outcome} (attempt {n.attempts})",
            at=self._now(),
        )
        return "delivered"

    def _failed(self, n: Notification, what: str, reason: str, *, permanent: bool) -> str:
        now = self._now()
        of = f"attempt {n.attempts} of {self.config.max_attempts}"
        if permanent or n.attempts >= self.config.max_attempts:
            why = "will not succeed" if permanent else "no attempts left"
            self.store.record_delivery(
                n,
                delivered=False,
                error=reason,
                log_message=f"notification {what} failed ({of}): {reason}; given up: {why}",
                log_level="ERROR",
                at=now,
            )
            return "given_up"
        delay = timedelta(seconds=self._backoff.delay(n.attempts))
        self.store.record_delivery(
            n,
            delivered=False,
            error=reason,
            retry_at=now + delay,
            log_message=(
                f"notification {what} failed ({of}): {reason}; next attempt in {_span(delay)}"
            ),
            log_level="WARNING",
            at=now,
        )
        return "retrying"


def _span(delta: timedelta) -> str:
    """`45m`, `1h30m`, `12s`: a duration as people write it."""
    total = int(round(delta.total_seconds()))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    if total or not parts:
        parts.append(f"{total}s")
    return "".join(parts)
