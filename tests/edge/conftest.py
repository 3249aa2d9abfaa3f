"""Fixtures for the agent's tests: a stand-in collector on the session's broker (`broker` and
`make_broker` come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.edge.helpers import ReceiptCollector
from tests.support.mosquitto import Mosquitto


@pytest.fixture
def collector(broker: Mosquitto) -> Iterator[ReceiptCollector]:
    c = ReceiptCollector(broker)
    yield c
    c.close()
