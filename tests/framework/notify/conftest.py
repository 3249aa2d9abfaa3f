"""Fixtures of the notification tests: a real SMTP server for the session, an HTTP receiver
per test, a store on a clock that moves only when told, and runs that ended as asked."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edgebatch.framework.definitions import define_job
from edgebatch.framework.notify.dispatcher import Dispatcher
from edgebatch.framework.registry import JobRegistry
from edgebatch.framework.state import Run, RunState, StateStore
from edgebatch.settings import NotifySettings, Settings, StateSettings
from tests.support.postgres import PostgresServer, postgres_server
from tests.support.receivers import SmtpServer, WebhookReceiver, smtp_server


class FakeClock:
    """Time that moves only when told: backoff and deadlines without sleeping."""

    def __init__(self) -> None:
        self.current = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


def noop(ctx: Any) -> None:
    """Does nothing: these jobs only need definitions."""


def make_job(name: str, **options: Any):
    return define_job(name, [noop], source_file=__file__, **options)


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def mail(smtp: SmtpServer) -> SmtpServer:
    smtp.clear()
    return smtp


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def store(state_url: str, clock: FakeClock) -> Iterator[StateStore]:
    with StateStore(state_url, clock=clock) as opened:
        yield opened


@pytest.fixture
def settings(tmp_path: Path, smtp: SmtpServer, state_url: str) -> Settings:
    return Settings(
        state=StateSettings(url=state_url),
        notify=NotifySettings(
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_from="edgebatch@plant.test",
            timeout_s=2.0,
            max_attempts=3,
            backoff_s=10.0,
            max_backoff_s=40.0,
            base_url="http://edgebatch.test:8080",
        ),
        home=tmp_path,
    )


@pytest.fixture
def dispatcher_for(
    store: StateStore, settings: Settings, clock: FakeClock
) -> Callable[..., Dispatcher]:
    """A dispatcher over these jobs (a new one per call: a restart), `[notify]` overrides."""

    def make(*jobs, store_: StateStore | None = None, **notify: Any) -> Dispatcher:
        tuned = dataclasses.replace(settings, notify=dataclasses.replace(settings.notify, **notify))
        return Dispatcher(store_ or store, JobRegistry(jobs), tuned, clock=clock)

    return make


def end_run(
    store: StateStore,
    job: str,
    state: RunState,
    *,
    partitions: tuple[str, ...] = ("2026-02-27", "2026-02-28"),
    failing: tuple[str, ...] = (),
    error: str | None = None,
) -> Run:
    """A run of `job` that went through the store's real moves to `state`."""
    run = store.create_run(job, partitions=partitions)
    if state is RunState.SKIPPED:
        return store.transition_run(run.id, state, error=error or "upstream loader failed")
    store.claim_run(run.id, holder="test-holder")
    for it in store.create_iterations(run.id, partitions):
        store.transition_iteration(it.id, "running")
        failed = it.partition_key in failing
        store.transition_iteration(
            it.id,
            "failed" if failed else "succeeded",
            error="ValueError: bad meter" if failed else None,
        )
    return store.transition_run(run.id, state, error=error)


def log_of(store: StateStore, run_id: int) -> list[str]:
    return [f"{line.level} {line.message}" for line in store.read_logs(run_id)]
