"""The live log stream says `end` only after the lines the notification outbox adds to a
finished run's log ("notifying ...", "notified ..."), which the dispatcher writes after
the run's end by design; and it waits for them no longer than its grace.

The rule on a store with a clock that moves only when told (each case of
`notices_under_way`), then a real run: the runner on the session's Spark, a dispatcher
thread delivering to a webhook on loopback, a real uvicorn and an SSE client."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from edgebatch.api.app import create_app
from edgebatch.api.stream_end import grace_s, notices_under_way
from edgebatch.framework.definitions import define_job
from edgebatch.framework.registry import JobRegistry
from edgebatch.framework.requests import RunRequest
from edgebatch.framework.state import RunState, StateStore
from edgebatch.settings import NotifySettings
from tests.api.conftest import Served, make_tokens
from tests.api.conftest import make_settings as api_settings
from tests.api.test_log_stream_end import _events
from tests.framework.conftest import make_settings as framework_settings
from tests.support.receivers import WebhookReceiver

CONFIG = NotifySettings(interval_s=1.5, timeout_s=2.0)


def _noop(ctx: object) -> None:
    """Nothing: only the definition matters here."""


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _ended(store: StateStore, job: str, clock: Clock | None = None, took_s: float = 0):
    run = store.create_run(job)
    store.transition_run(run.id, "running")
    if clock is not None:
        clock.now += timedelta(seconds=took_s)
    return store.transition_run(run.id, "succeeded")


def test_end_waits_for_an_announced_outcome_until_its_first_attempts_are_logged(
    tmp_path: Path,
) -> None:
    clock = Clock()
    registry = JobRegistry(
        [
            define_job("told", [_noop], contacts=["http://127.0.0.1:9/x"], notify_on=["success"]),
            define_job("quiet", [_noop], notify_on=["success"]),  # no contacts
            define_job("fails_only", [_noop], contacts=["ops@plant.test"]),
            define_job("late", [_noop], sla="1m"),  # an SLA miss is logged without contacts
        ]
    )
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}", clock=clock) as store:

        def under_way(run_id: int) -> bool:
            return notices_under_way(store, registry, CONFIG, store.get_run(run_id), clock())

        told, quiet, fails_only = (_ended(store, j) for j in ("told", "quiet", "fails_only"))
        assert under_way(told.id)  # the dispatcher has not found it yet
        assert not under_way(quiet.id) and not under_way(fails_only.id)
        late = _ended(store, "late", clock, took_s=120)
        assert under_way(late.id)  # it ended 2 minutes after it was queued: an SLA miss
        store.record_notification_event(
            late.id, "sla_miss", job="late", recipients=[], payload={}, log_message="missed"
        )
        assert not under_way(late.id)

        told = _ended(store, "told")
        made = store.record_notification_event(
            told.id,
            "success",
            job="told",
            recipients=[("webhook", "http://127.0.0.1:9/x")],
            payload={},
            log_message="notifying",
        )
        assert made is not None and len(made) == 1
        assert under_way(told.id)  # recorded; its first attempt is yet to be logged
        (claimed,) = store.claim_due_notifications(until=clock() + timedelta(minutes=1))
        assert under_way(told.id)  # being sent
        store.record_delivery(
            claimed,
            delivered=False,
            error="refused",
            retry_at=clock() + timedelta(seconds=30),
            log_message="notification failed; retrying",
        )
        assert not under_way(told.id)  # the retry's line comes after the backoff: not waited for

        waited = _ended(store, "told")
        clock.now += timedelta(seconds=grace_s(CONFIG))
        assert not under_way(waited.id)  # no dispatcher found it within the grace


ANNOUNCED_JOB = """
import time

from edgebatch.framework.definitions import job
from edgebatch.framework.partitions import Unpartitioned


@job(partitions=Unpartitioned(), contacts=[{url!r}], notify_on=["success"])
def announced(ctx):
    time.sleep(1.0)  # the stream is following by now
"""


@pytest.mark.integration
def test_the_stream_sends_the_notification_lines_of_a_real_run_before_end(
    spark, tmp_path: Path
) -> None:
    from edgebatch.framework.notify.dispatcher import Dispatcher
    from edgebatch.framework.registry import discover
    from edgebatch.framework.runner import Runner

    with WebhookReceiver() as hooks:
        jobs = tmp_path / "jobs"
        jobs.mkdir()
        (jobs / "announced.py").write_text(ANNOUNCED_JOB.format(url=hooks.url("/runs")))
        base = framework_settings(tmp_path / "home", jobs=(str(jobs),))
        settings = dataclasses.replace(
            base, api=api_settings(tmp_path / "api", base.state_url).api, notify=CONFIG
        )
        store = StateStore(settings.state_url)
        runner = Runner(spark, store, settings, discover(settings))
        dispatcher = Dispatcher(store, discover(settings), settings).start()
        app = create_app(settings, store=store)
        tokens = make_tokens(store)
        try:
            run = runner.submit(RunRequest("announced"))
            with Served(app) as served, httpx.Client(base_url=served.url, timeout=120) as http:
                started = threading.Event()
                found: list[list[dict[str, str]]] = []
                reader = threading.Thread(
                    target=lambda: found.append(
                        _events(
                            http, run.id, {"Authorization": f"Bearer {tokens['admin']}"}, started
                        )
                    )
                )
                reader.start()
                started.wait(30)
                done = runner.wait(run.id, timeout=120)
                reader.join(60)
            assert done.state is RunState.SUCCEEDED
            events = found[0]
            assert events[-1]["event"] == "end"
            logs = [json.loads(e["data"])["message"] for e in events if e.get("event") == "log"]
            assert logs.index(f"run {run.id} succeeded") < len(logs) - 2
            assert logs[-2].startswith("notifying http://127.0.0.1") and "of success" in logs[-2]
            assert logs[-1].startswith("notified success to http://127.0.0.1")
            assert logs == [x.message for x in store.read_logs(run.id)]
            assert len(hooks.received("/runs")) == 1
        finally:
            dispatcher.stop(10)
            runner.close()
            store.close()
