"""Email through a real SMTP server that wants what relays want: STARTTLS, then a login.
A wrong password is retried (someone may fix it); a mailbox the server refuses, or no
SMTP server configured at all, is given up at once, with the reason in the run's log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edgebatch.framework.state import RunState
from tests.framework.notify.conftest import end_run, log_of, make_job
from tests.support.receivers import SmtpServer, self_signed_certificate, smtp_server

pytestmark = pytest.mark.integration


@pytest.fixture
def relay(tmp_path, monkeypatch) -> Iterator[SmtpServer]:
    cert, key = self_signed_certificate(tmp_path)
    # The client verifies the server as it would any relay; the test's CA is this cert.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with smtp_server(
        tls=(cert, key), users={"edgebatch": "s3cret"}, refused=("ghost@plant.test",)
    ) as server:
        yield server


def test_email_goes_through_starttls_and_a_login(store, relay, dispatcher_for):
    job = make_job("loader", contacts=["ops@plant.test"])
    run = end_run(store, "loader", RunState.FAILED, error="boom")
    done = dispatcher_for(
        job,
        smtp_port=relay.port,
        smtp_starttls=True,
        smtp_user="edgebatch",
        smtp_password="s3cret",
    ).run_once()
    assert done.delivered == 1
    assert relay.logins == ["edgebatch"]
    (message,) = relay.to("ops@plant.test")
    assert message["Subject"] == f"[edgebatch] job loader run {run.id} failed"


def test_a_wrong_password_is_retried_and_a_refused_mailbox_is_given_up(
    store, relay, clock, dispatcher_for
):
    job = make_job("loader", contacts=["ops@plant.test", "ghost@plant.test"])
    run = end_run(store, "loader", RunState.FAILED, error="boom")
    wrong = dispatcher_for(
        job,
        smtp_port=relay.port,
        smtp_starttls=True,
        smtp_user="edgebatch",
        smtp_password="wrong",
    ).run_once()
    assert (wrong.retrying, wrong.given_up) == (2, 0)
    assert relay.messages == []
    log = log_of(store, run.id)
    assert sum("(attempt 1 of 3): SMTP 535" in line for line in log) == 2
    assert all(n.state == "pending" for n in store.list_notifications(run_id=run.id))

    clock.advance(seconds=10)
    fixed = dispatcher_for(
        job,
        smtp_port=relay.port,
        smtp_starttls=True,
        smtp_user="edgebatch",
        smtp_password="s3cret",
    ).run_once()
    assert (fixed.delivered, fixed.given_up) == (1, 1)
    assert len(relay.to("ops@plant.test")) == 1
    states = {n.contact: (n.state, n.attempts) for n in store.list_notifications(run_id=run.id)}
    assert states == {"ops@plant.test": ("delivered", 2), "ghost@plant.test": ("failed", 2)}
    (gone,) = [x for x in log_of(store, run.id) if x.startswith("ERROR")]
    assert "ghost@plant.test" in gone and "550" in gone and "given up: will not succeed" in gone


def test_without_an_smtp_server_an_email_contact_is_given_up_at_once(store, hooks, dispatcher_for):
    job = make_job("loader", contacts=["ops@plant.test", hooks.url("/also")])
    run = end_run(store, "loader", RunState.FAILED, error="boom")
    done = dispatcher_for(job, smtp_host="").run_once()
    assert (done.delivered, done.given_up) == (1, 1)
    (line,) = [x for x in log_of(store, run.id) if x.startswith("ERROR")]
    assert "no SMTP server configured: set [notify] smtp_host" in line
    assert line.endswith("given up: will not succeed")
