"""The outbox in the state store, on SQLite and PostgreSQL: an event is recorded once with its
deliveries and log line; a claimed delivery is nobody else's until its claim runs out; a
sender that outlived its claim records nothing over the next one's result."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from edgebatch.framework.state import StateStore
from tests.framework.notify.conftest import FakeClock

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def outbox(request, tmp_path, clock: FakeClock) -> Iterator[StateStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'outbox.db'}"
    else:
        url = request.getfixturevalue("pg").create_database(f"outbox_{tmp_path.name[-20:]}")
    with StateStore(url, clock=clock) as store:
        yield store


def _event(store: StateStore, run_id: int, event: str = "failure"):
    return store.record_notification_event(
        run_id,
        event,
        job="loader",
        recipients=[("webhook", "http://h/1"), ("email", "a@b.test"), ("webhook", "http://h/1")],
        payload={"job": "loader", "run_id": run_id},
        log_message=f"notifying of {event}",
    )


def test_an_event_is_recorded_once_with_its_deliveries_and_one_log_line(outbox):
    run = outbox.create_run("loader")
    made = _event(outbox, run.id)
    assert made is not None
    assert sorted((n.channel, n.contact, n.state, n.attempts) for n in made) == [
        ("email", "a@b.test", "pending", 0),
        ("webhook", "http://h/1", "pending", 0),
    ]
    assert _event(outbox, run.id) is None
    assert len(outbox.list_notifications(run_id=run.id)) == 2
    assert [x.message for x in outbox.read_logs(run.id)] == ["notifying of failure"]
    # Another event of the same run is another record.
    assert _event(outbox, run.id, "sla_miss") is not None
    assert outbox.notification_events(run.id) == ["failure", "sla_miss"]
    assert outbox.runs_without_event("failure", jobs=["loader"], states=["queued"]) == []
    assert outbox.runs_without_event("success", jobs=["loader"], states=["queued"]) == [run]
    assert outbox.list_notifications(run_id=run.id)[0].payload == {
        "job": "loader",
        "run_id": run.id,
    }


def test_a_sender_that_outlived_its_claim_cannot_overwrite_the_next_attempt(outbox, clock):
    run = outbox.create_run("loader")
    _event(outbox, run.id)
    until = clock.current + timedelta(seconds=60)
    first = outbox.claim_due_notifications(until=until, limit=1)
    assert [n.attempts for n in first] == [1]
    # Claimed: another claimant gets the other delivery only, then nothing.
    other = outbox.claim_due_notifications(until=until, limit=10)
    assert [n.id for n in other] != [first[0].id] and len(other) == 1
    assert outbox.claim_due_notifications(until=until) == []
    # The first sender hangs past its claim; the delivery is due again and taken anew.
    clock.advance(seconds=61)
    until = clock.current + timedelta(seconds=60)
    (again,) = [n for n in outbox.claim_due_notifications(until=until) if n.id == first[0].id]
    assert again.attempts == 2
    assert not outbox.record_delivery(first[0], delivered=True, log_message="late first")
    assert outbox.record_delivery(again, delivered=False, error="HTTP 500", log_message="second")
    (row,) = [n for n in outbox.list_notifications() if n.id == again.id]
    assert (row.state, row.attempts, row.last_error) == ("failed", 2, "HTTP 500")
    assert "late first" not in [x.message for x in outbox.read_logs(run.id)]
