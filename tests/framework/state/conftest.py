"""Fixtures of the state store tests: every test runs on SQLite and on a real PostgreSQL.

`backend` is a parametrized session fixture, so pytest runs the whole module
once per backend and starts the PostgreSQL cluster only once, when first needed.
Each test gets an empty database of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from edgebatch.framework.state import StateStore
from tests.support.postgres import PostgresServer, postgres_server

BACKENDS = ["sqlite", "postgresql"]


class FakeClock:
    """A clock that moves only when told, so lease expiry is tested without sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def empty_url(backend: str, tmp_path, request: pytest.FixtureRequest) -> str:
    """The URL of an empty database on the current backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(empty_url: str, clock: FakeClock) -> Iterator[StateStore]:
    with StateStore(empty_url, clock=clock) as opened:
        yield opened
