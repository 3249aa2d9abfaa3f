"""Fixtures of the framework tests: a project home with its own warehouse and state store,
and a warm runner on the suite's shared SparkSession."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgebatch.framework.requests import RunRequest
from edgebatch.settings import (
    FrameworkSettings,
    Settings,
    StateSettings,
    WarehouseSettings,
)

TEST_JOBS = Path(__file__).parent / "jobs"


def make_settings(home: Path, **framework: Any) -> Settings:
    home.mkdir(parents=True, exist_ok=True)
    fw = FrameworkSettings(
        jobs=(str(TEST_JOBS),), lease_ttl_s=3.0, heartbeat_s=0.5, progress_interval_s=0.2
    )
    return Settings(
        warehouse=WarehouseSettings(root=(home / "warehouse").as_uri()),
        state=StateSettings(url=f"sqlite:///{home / 'state.db'}"),
        framework=dataclasses.replace(fw, **framework),
        home=home,
    )


@pytest.fixture
def faults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "faults"
    folder.mkdir()
    monkeypatch.setenv("EDGEBATCH_TEST_FAULTS", str(folder))
    return folder


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home")


@pytest.fixture
def runner(spark, settings: Settings) -> Iterator:
    from edgebatch.framework.registry import discover
    from edgebatch.framework.runner import Runner
    from edgebatch.framework.state import StateStore

    store = StateStore(settings.state_url)
    runner = Runner(spark, store, settings, discover(settings))
    yield runner
    runner.close()
    store.close()


MONTHS = ("2025-01", "2025-12")


def table_rows(runner, name: str = "test/meter_monthly") -> list[tuple]:
    from edgebatch.warehouse.tables import REGISTRY, read_table

    df = read_table(runner.spark, runner.root, REGISTRY.get(name))
    return sorted(tuple(r) for r in df.collect())


@pytest.fixture(scope="session")
def clean_table(spark, tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    """What a clean run of the 12 months of `meter_monthly` leaves in its table."""
    from edgebatch.framework.registry import discover
    from edgebatch.framework.runner import Runner
    from edgebatch.framework.state import RunState, StateStore

    settings = make_settings(tmp_path_factory.mktemp("clean"))
    with StateStore(settings.state_url) as store:
        runner = Runner(spark, store, settings, discover(settings))
        try:
            run = runner.run(RunRequest("meter_monthly", start=MONTHS[0], end=MONTHS[1]))
            assert run.state == RunState.SUCCEEDED, run.error
            return table_rows(runner)
        finally:
            runner.close()
