"""Fixtures of the scheduler tests: a store on a clock moved by hand, jobs made on the spot."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgebatch.framework.definitions import Job, define_job
from edgebatch.framework.registry import JobRegistry
from edgebatch.framework.scheduler.loop import Scheduler
from edgebatch.framework.state import StateStore
from edgebatch.settings import SchedulerSettings, Settings, StateSettings, WarehouseSettings
from tests.support.postgres import PostgresServer, postgres_server


class ManualClock:
    """The scheduler's clock in tests: `sleep` moves it, nothing waits."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.current = start or dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self.current

    def __call__(self) -> dt.datetime:  # the store's clock
        return self.current

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> dt.datetime:
        self.current += dt.timedelta(seconds=seconds)
        return self.current


def nothing(ctx: Any) -> None:
    """A step that does nothing: these tests are about when runs start, not what they do."""


def make_job(name: str, **options: Any) -> Job:
    return define_job(name, [nothing], **options)


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for the scheduler tests that need two processes on one store."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "warehouse").mkdir()
    return tmp_path


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings(
        warehouse=WarehouseSettings(root=(home / "warehouse").as_uri()),
        state=StateSettings(url=f"sqlite:///{home / 'state.db'}"),
        scheduler=SchedulerSettings(loop_interval_s=1.0, lease_ttl_s=10.0),
        home=home,
    )


@pytest.fixture
def store(settings: Settings, clock: ManualClock) -> Iterator[StateStore]:
    with StateStore(settings.state_url, clock=clock) as opened:
        yield opened


@pytest.fixture
def scheduler_for(store: StateStore, settings: Settings, clock: ManualClock):
    """`scheduler_for(job, ...)`: a scheduler over those jobs on the test's store and clock."""

    def make(*jobs: Job, holder: str = "test-scheduler", **kwargs: Any) -> Scheduler:
        registry = JobRegistry(jobs).check()
        return Scheduler(store, registry, settings, clock=clock, holder=holder, **kwargs)

    return make
