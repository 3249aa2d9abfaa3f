"""The dashboard's fixtures: the real API app (SQLite store in the test's folder) with the
dashboard mounted, and users of each role to sign in with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgebatch.settings import (
    ApiSettings,
    FrameworkSettings,
    Settings,
    StateSettings,
    WarehouseSettings,
)

JOBS = Path(__file__).parent / "jobs"
PASSWORD = "correct horse battery"


def dashboard_settings(home: Path, **framework: object) -> Settings:
    home.mkdir(parents=True, exist_ok=True)
    return Settings(
        warehouse=WarehouseSettings(root=(home / "warehouse").as_uri()),
        state=StateSettings(url=f"sqlite:///{home / 'state.db'}"),
        api=ApiSettings(secret="s" * 32, mqtt_status=False, login_per_minute=1000),
        framework=FrameworkSettings(
            jobs=(str(JOBS),),
            lease_ttl_s=5.0,
            heartbeat_s=0.5,
            progress_interval_s=0.3,
            **framework,  # type: ignore[arg-type]
        ),
        home=home,
    )


def add_users(store) -> None:
    from edgebatch.api.security import hash_password

    digest = hash_password(PASSWORD)
    for name, role in (("olga", "operator"), ("vera", "viewer")):
        store.add_user(name, password_hash=digest, role=role, tenants=["*"])


@pytest.fixture
def app_settings(tmp_path: Path) -> Settings:
    return dashboard_settings(tmp_path / "home")


@pytest.fixture
def client(app_settings: Settings) -> Iterator:
    from fastapi.testclient import TestClient

    from edgebatch.api.app import create_app
    from edgebatch.framework.state import StateStore

    store = StateStore.from_settings(app_settings)
    add_users(store)
    with TestClient(create_app(app_settings, store=store)) as c:
        yield c
    store.close()
