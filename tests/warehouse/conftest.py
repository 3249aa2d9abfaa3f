"""Fixtures for the warehouse tests: a landing zone per test (`broker` and `make_broker` come
from tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebatch.warehouse.landing import LandingZone, LocalStore
from edgebatch.warehouse.uri import WarehouseRoot


@pytest.fixture
def root(tmp_path: Path) -> WarehouseRoot:
    return WarehouseRoot.parse((tmp_path / "warehouse").as_uri())


@pytest.fixture
def zone(root: WarehouseRoot) -> LandingZone:
    return LandingZone(root, LocalStore(), writer="test")
