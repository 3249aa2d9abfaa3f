"""The dispatcher against a real SMTP server (aiosmtpd) and a real HTTP receiver on loopback:
each outcome reaches each contact once, whatever restarts; failures are retried with
backoff, every attempt in the run's log; SLA misses; a hung receiver holds nothing up."""

from __future__ import annotations

import threading
import time

import pytest

from edgebatch.framework.notify.dispatcher import Dispatcher
from edgebatch.framework.registry import JobRegistry
from edgebatch.framework.state import RunState, StateStore
from tests.framework.notify.conftest import end_run, log_of, make_job
from tests.support.receivers import black_hole
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration


def test_a_failed_run_notifies_each_contact_by_webhook_and_email_exactly_once(
    store, hooks, mail, dispatcher_for
):
    job = make_job(
        "meter_daily",
        contacts=[hooks.url("/ops"), "ops@plant.test", "mailto:oncall@plant.test"],
    )
    run = end_run(
        store,
        "meter_daily",
        RunState.FAILED,
        failing=("2026-02-28",),
        error="1 of 2 iteration(s) failed: 2026-02-28: ValueError: bad meter",
    )
    first = dispatcher_for(job).run_once()
    assert first.found == ((run.id, "failure"),)
    assert (first.delivered, first.retrying, first.given_up) == (3, 0, 0)
    # The same dispatcher again, then a new one (a restart): nothing more is sent.
    assert dispatcher_for(job).run_once().attempts == 0
    again = dispatcher_for(job)
    assert again.run_once() == again.run_once() == type(first)()

    (post,) = hooks.received("/ops")
    body = post.body
    assert (body["job"], body["run_id"], body["state"], body["event"]) == (
        "meter_daily",
        run.id,
        "failed",
        "failure",
    )
    assert body["partitions"] == ["2026-02-27", "2026-02-28"]
    assert body["failed_partitions"] == ["2026-02-28"]
    assert "ValueError: bad meter" in body["error"]
    assert body["links"]["logs"] == f"http://edgebatch.test:8080/api/v1/runs/{run.id}/logs"
    assert body["summary"] == f"job meter_daily run {run.id} failed"
    assert post.headers["Idempotency-Key"] == f"edgebatch-notification-{body['id']}"
    assert post.headers["Content-Type"] == "application/json"

    for address in ("ops@plant.test", "oncall@plant.test"):
        (message,) = mail.to(address)
        assert message["Subject"] == f"[edgebatch] job meter_daily run {run.id} failed"
        assert message["From"] == "edgebatch@plant.test"
        text = message.get_content()
        assert "failed:     2026-02-28" in text and "ValueError: bad meter" in text
    assert len(mail.messages) == 2

    sent = store.list_notifications(run_id=run.id)
    assert sorted((n.channel, n.contact, n.state, n.attempts) for n in sent) == [
        ("email", "oncall@plant.test", "delivered", 1),
        ("email", "ops@plant.test", "delivered", 1),
        ("webhook", hooks.url("/ops"), "delivered", 1),
    ]
    log = log_of(store, run.id)
    assert sum("notifying" in line and "of failure" in line for line in log) == 1
    assert sum(line.startswith("INFO notified failure to") for line in log) == 3
    assert any("by webhook: HTTP 200 (attempt 1)" in line for line in log)
    assert any("to ops@plant.test by email: accepted by 127.0.0.1" in line for line in log)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_dispatchers_at_once_send_each_notification_once(
    backend, request, tmp_path, hooks, mail, settings, clock
):
    """A leader and a standby (or a stray `edgebatch notify`) on one store, passes racing."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        url = request.getfixturevalue("pg").create_database(f"notify_{tmp_path.name[-20:]}")
    job = make_job("loader", contacts=[hooks.url("/race"), "race@plant.test"])
    stores = [StateStore(url, clock=clock) for _ in range(2)]
    try:
        runs = [end_run(stores[0], "loader", RunState.FAILED, error="boom") for _ in range(5)]
        dispatchers = [Dispatcher(s, JobRegistry([job]), settings, clock=clock) for s in stores]
        barrier = threading.Barrier(2)

        def race(d: Dispatcher) -> None:
            barrier.wait()
            for _ in range(3):
                d.run_once()

        threads = [threading.Thread(target=race, args=(d,)) for d in dispatchers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(p.body["run_id"] for p in hooks.received("/race")) == [r.id for r in runs]
        assert len(mail.to("race@plant.test")) == 5
        for run in runs:
            assert stores[1].notification_events(run.id) == ["failure"]
            assert [n.state for n in stores[1].list_notifications(run_id=run.id)] == [
                "delivered",
                "delivered",
            ]
    finally:
        for s in stores:
            s.close()


def test_a_failing_receiver_is_retried_with_backoff_and_every_attempt_is_logged(
    store, hooks, clock, dispatcher_for
):
    hooks.answer("/flaky", 500, 503, 200)
    job = make_job("loader", contacts=[hooks.url("/flaky")])
    run = end_run(store, "loader", RunState.FAILED, error="boom")
    dispatcher = dispatcher_for(job)
    assert dispatcher.run_once().retrying == 1
    # Not due again before its backoff (10 s, then 20 s): no request at all.
    assert dispatcher.run_once().attempts == 0
    clock.advance(seconds=9)
    assert dispatcher.run_once().attempts == 0
    clock.advance(seconds=1)
    assert dispatcher.run_once().retrying == 1
    clock.advance(seconds=19)
    assert dispatcher.run_once().attempts == 0
    clock.advance(seconds=1)
    assert dispatcher.run_once().delivered == 1
    clock.advance(seconds=3600)
    assert dispatcher.run_once().attempts == 0

    assert [p.status for p in hooks.received("/flaky")] == [500, 503, 200]
    (sent,) = store.list_notifications(run_id=run.id)
    assert (sent.state, sent.attempts, sent.last_error) == ("delivered", 3, None)
    attempts = [line for line in log_of(store, run.id) if "to http://127.0.0.1" in line]
    assert len(attempts) == 3
    assert attempts[0].startswith("WARNING notification failure to http://127.0.0.1:")
    assert "(attempt 1 of 3): HTTP 500 Internal Server Error; next attempt in 10s" in attempts[0]
    assert "(attempt 2 of 3): HTTP 503 Service Unavailable; next attempt in 20s" in attempts[1]
    assert attempts[2].startswith("INFO notified failure to") and "(attempt 3)" in attempts[2]


def test_a_receiver_that_never_recovers_or_refuses_for_good_is_given_up_with_the_reason(
    store, hooks, clock, dispatcher_for
):
    hooks.answer("/down", 502)
    hooks.answer("/gone", 404)
    job = make_job("loader", contacts=[hooks.url("/down"), hooks.url("/gone")])
    run = end_run(store, "loader", RunState.FAILED, error="boom")
    dispatcher = dispatcher_for(job)
    first = dispatcher.run_once()
    assert (first.retrying, first.given_up) == (1, 1)
    for _ in range(3):
        clock.advance(seconds=40)
        dispatcher.run_once()
    assert len(hooks.received("/gone")) == 1
    assert len(hooks.received("/down")) == 3
    states = {
        n.contact.rsplit("/", 1)[1]: (n.state, n.attempts) for n in store.list_notifications()
    }
    assert states == {"down": ("failed", 3), "gone": ("failed", 1)}
    errors = [line for line in log_of(store, run.id) if line.startswith("ERROR")]
    assert any("HTTP 404 Not Found; given up: will not succeed" in line for line in errors)
    assert any(
        "(attempt 3 of 3): HTTP 502 Bad Gateway; given up: no attempts left" in line
        for line in errors
    )


def test_an_sla_miss_is_logged_and_notified_once_and_the_failure_after_it_too(
    store, hooks, clock, dispatcher_for
):
    job = make_job("billing", contacts=[hooks.url("/sla")], sla="45m")
    run = store.create_run("billing", partitions=["2026-02"])
    store.claim_run(run.id, holder="test-holder")
    dispatcher = dispatcher_for(job)
    clock.advance(minutes=44)
    assert dispatcher.run_once().found == ()
    clock.advance(minutes=2)
    assert dispatcher.run_once().found == ((run.id, "sla_miss"),)
    clock.advance(minutes=30)
    assert dispatcher.run_once().found == ()
    assert dispatcher_for(job).run_once().found == ()
    store.transition_run(run.id, RunState.FAILED, error="timed out")
    assert dispatcher.run_once().found == ((run.id, "failure"),)

    assert [(p.body["event"], p.body["state"]) for p in hooks.received("/sla")] == [
        ("sla_miss", "running"),
        ("failure", "failed"),
    ]
    assert hooks.received("/sla")[0].body["deadline"] == "2026-03-01T08:45:00Z"
    missed = [line for line in log_of(store, run.id) if "SLA missed" in line]
    assert missed == [
        f"WARNING SLA missed: run {run.id} of billing was to end by 2026-03-01 08:45:00 UTC "
        f"(45m after it was queued); it is still running; notifying {hooks.url('/...')}"
    ]


def test_a_run_that_ended_late_is_an_sla_miss_and_one_without_contacts_is_logged_only(
    store, hooks, clock, dispatcher_for
):
    watched = make_job("watched", contacts=[hooks.url("/late")], sla=1800)
    quiet = make_job("quiet", sla="30m")
    on_time = end_run(store, "watched", RunState.SUCCEEDED)
    late = store.create_run("watched")
    unwatched = store.create_run("quiet")
    clock.advance(minutes=40)
    store.claim_run(late.id, holder="h")
    store.transition_run(late.id, RunState.SUCCEEDED)
    dispatcher = dispatcher_for(watched, quiet)
    assert sorted(dispatcher.run_once().found) == [
        (late.id, "sla_miss"),
        (unwatched.id, "sla_miss"),
    ]
    assert dispatcher.run_once().found == ()
    assert [p.body["run_id"] for p in hooks.received("/late")] == [late.id]
    assert store.notification_events(on_time.id) == []
    (late_line,) = [x for x in log_of(store, late.id) if "SLA missed" in x]
    assert "it ended succeeded 10m late" in late_line
    (quiet_line,) = [x for x in log_of(store, unwatched.id) if "SLA missed" in x]
    assert quiet_line.endswith("it is still queued")
    assert store.list_notifications(run_id=unwatched.id) == []


def test_success_and_cancellations_are_notified_only_where_the_job_asks(
    store, hooks, mail, dispatcher_for
):
    asks = make_job(
        "asks", contacts=[hooks.url("/asks")], notify_on=["failure", "success", "cancelled"]
    )
    default = make_job("default_job", contacts=[hooks.url("/default"), "quiet@plant.test"])
    wanted = end_run(store, "asks", RunState.SUCCEEDED)
    end_run(store, "default_job", RunState.SUCCEEDED)
    skipped = end_run(store, "default_job", RunState.SKIPPED)
    skipped_asks = end_run(store, "asks", RunState.SKIPPED)
    cancelled = end_run(store, "asks", RunState.CANCELLED, error="cancelled by ann")
    end_run(store, "default_job", RunState.CANCELLED, error="cancelled by ann")
    found = dispatcher_for(asks, default).run_once().found
    assert sorted(found) == [
        (wanted.id, "success"),
        (skipped.id, "skipped"),
        (cancelled.id, "cancelled"),
    ]
    assert sorted(p.body["event"] for p in hooks.received("/asks")) == ["cancelled", "success"]
    assert [p.body["event"] for p in hooks.received("/default")] == ["skipped"]
    assert hooks.received("/default")[0].body["error"] == "upstream loader failed"
    assert [m["Subject"] for m in mail.to("quiet@plant.test")] == [
        f"[edgebatch] job default_job run {skipped.id} was skipped"
    ]
    assert store.notification_events(skipped_asks.id) == []


def test_a_hung_receiver_holds_the_pass_no_longer_than_its_timeout(store, hooks, dispatcher_for):
    with black_hole() as hung:
        job = make_job("loader", contacts=[hung, hooks.url("/fine")])
        run = end_run(store, "loader", RunState.FAILED, error="boom")
        dispatcher = dispatcher_for(job, timeout_s=0.5)
        started = time.monotonic()
        done = dispatcher.run_once()
        took = time.monotonic() - started
    assert took < 3.0, f"a pass with a hung receiver took {took:.1f} s"
    assert (done.delivered, done.retrying) == (1, 1)
    assert len(hooks.received("/fine")) == 1
    (stuck,) = [n for n in store.list_notifications(run_id=run.id) if n.contact == hung]
    assert (stuck.state, stuck.attempts, stuck.last_error) == (
        "pending",
        1,
        "no answer within 0.5 s",
    )
    assert any(
        "no answer within 0.5 s; next attempt in 10s" in line for line in log_of(store, run.id)
    )


def test_runs_that_ended_before_the_look_back_are_not_announced(
    store, hooks, clock, dispatcher_for
):
    job = make_job("loader", contacts=[hooks.url("/old")])
    old = end_run(store, "loader", RunState.FAILED, error="long ago")
    clock.advance(days=2)
    recent = end_run(store, "loader", RunState.FAILED, error="just now")
    assert dispatcher_for(job).run_once().found == ((recent.id, "failure"),)
    assert [p.body["run_id"] for p in hooks.received("/old")] == [recent.id]
    assert store.notification_events(old.id) == []


def test_the_background_thread_delivers_then_stops(store, hooks, dispatcher_for):
    job = make_job("loader", contacts=[hooks.url("/bg")])
    dispatcher = dispatcher_for(job, interval_s=0.05).start()
    try:
        assert dispatcher.running
        run = end_run(store, "loader", RunState.FAILED, error="boom")
        wait_until(lambda: hooks.received("/bg"), 10, "the background dispatcher's webhook")
    finally:
        dispatcher.stop(timeout=10)
    assert not dispatcher.running
    assert [p.body["run_id"] for p in hooks.received("/bg")] == [run.id]


def test_more_deliveries_than_workers_go_out_in_batches_within_one_pass(
    store, hooks, dispatcher_for
):
    job = make_job("loader", contacts=[hooks.url(f"/many/{i}") for i in range(5)])
    run = end_run(store, "loader", RunState.FAILED, error="boom")
    done = dispatcher_for(job, workers=2).run_once()
    assert done.delivered == 5
    assert sorted(p.path for p in hooks.received()) == [f"/many/{i}" for i in range(5)]
    assert {n.attempts for n in store.list_notifications(run_id=run.id)} == {1}
