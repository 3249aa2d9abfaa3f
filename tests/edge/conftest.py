"""Fixtures for the agent's tests: a real broker per session (or per test, to kill it) and a
stand-in collector."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.edge.helpers import ReceiptCollector
from tests.support.mosquitto import Mosquitto


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """The session's broker; tests that stop or kill a broker start their own."""
    b = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "mosquitto", autosave_interval=1)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def collector(broker: Mosquitto) -> Iterator[ReceiptCollector]:
    c = ReceiptCollector(broker)
    yield c
    c.close()
