"""Fixtures for the warehouse tests: a real Mosquitto per session, a landing zone per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgebatch.warehouse.landing import LandingZone, LocalStore
from edgebatch.warehouse.uri import WarehouseRoot
from tests.support.broker import Broker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The session's broker; tests that kill a broker start their own."""
    with Broker.started(tmp_path_factory.mktemp("mosquitto")) as b:
        yield b


@pytest.fixture
def root(tmp_path: Path) -> WarehouseRoot:
    return WarehouseRoot.parse((tmp_path / "warehouse").as_uri())


@pytest.fixture
def zone(root: WarehouseRoot) -> LandingZone:
    return LandingZone(root, LocalStore(), writer="test")
