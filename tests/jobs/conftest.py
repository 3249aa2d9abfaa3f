"""The gold jobs' tests share one warehouse, landed and loaded to silver once per session
(tests/support/landed.py); each module gets a runner of its own on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.landed import Loaded, Warehouse, load_session_warehouse, warehouse


@pytest.fixture(scope="session")
def gold_loaded(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    """Every registered module's messages landed; reference data, bronze and silver loaded."""
    return load_session_warehouse(spark, tmp_path_factory.mktemp("gold"))


@pytest.fixture(scope="module")
def gold_warehouse(spark: Any, gold_loaded: Loaded) -> Iterator[Warehouse]:
    """The session's warehouse, with a runner that lives as long as the module."""
    with warehouse(spark, gold_loaded) as w:
        yield w
