"""When a finished run's live log may say `end`: after the lines its notifications add.

The notification outbox writes to a run's log after the run has ended, by design: the
dispatcher learns of the end from the store (a pass every `[notify] interval_s`), then
logs "notifying ... of failure" and a line per delivery attempt. A stream that said
`end` as soon as the run had finished and its log was read to the last line would end
before those lines, and a client that stops at `end` (the dashboard) would not show them.

So the stream holds `end` back while the run's notifications are under way: its job
announces this outcome (or an SLA the run missed) and the dispatcher has not recorded
that event yet, or a delivery of it has not had its first attempt logged. Lines that
arrive meanwhile are sent as usual, before `end`. The wait is bounded by `grace_s`
counted from the run's end (not from when a client looked): a run that ended long ago,
a dispatcher that is not running, or a receiver retried with backoff for hours does not
hold streams open; those later lines are in the log, read by page.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from edgebatch.framework.notify.contacts import NotifyEvent
from edgebatch.framework.notify.dispatcher import OUTCOMES
from edgebatch.framework.registry import JobRegistry
from edgebatch.framework.state import Run, StateStore
from edgebatch.framework.state.notifications import PENDING
from edgebatch.settings import NotifySettings

# Beyond two dispatcher passes and one delivery's timeout: slack for a busy store.
SLACK_S = 5.0


def grace_s(config: NotifySettings) -> float:
    """How long after a run's end its notifications' first lines may still come: the
    dispatcher finds the end within one pass (two, if the end commits as a pass begins)
    and the first attempt of each delivery ends within its timeout."""
    return 2 * config.interval_s + config.timeout_s + SLACK_S


def expected_events(registry: JobRegistry, run: Run) -> set[str]:
    """The events the dispatcher records for this finished run (each with a log line)."""
    if run.job not in registry:
        return set()
    job = registry.get(run.job)
    events = set()
    for event, state in OUTCOMES.items():
        if state is run.state and job.contacts and str(event) in job.notify_on:
            events.add(str(event))
    if job.sla is not None and run.ended_at is not None and run.ended_at > run.created_at + job.sla:
        events.add(str(NotifyEvent.SLA_MISS))  # recorded (and logged) with or without contacts
    return events


def notices_under_way(
    store: StateStore, registry: JobRegistry, config: NotifySettings, run: Run, now: datetime
) -> bool:
    """True while a finished run's notifications may still add lines to its log soon."""
    if run.ended_at is None or now >= run.ended_at + timedelta(seconds=grace_s(config)):
        return False
    expected = expected_events(registry, run)
    if not expected:
        return False
    if expected - set(store.notification_events(run.id)):
        return True
    # A delivery still pending with no failed attempt is about to have its first one
    # (or is in it): its line comes within the delivery's timeout.
    return any(
        n.state == PENDING and n.last_error is None for n in store.list_notifications(run_id=run.id)
    )
