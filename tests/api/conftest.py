"""Fixtures of the API tests: an app over a real state store (SQLite, and PostgreSQL where
a test asks for `pg_url`), a warehouse root of the test's own, and tokens of every kind.

`tokens` holds, by name, a bearer token for: `admin`, `operator`, `viewer` (all tenants),
`acme_admin`/`acme_operator`/`acme_viewer` (tenant acme only), `other_admin`/
`other_operator`/`other_viewer` (tenant other only) and `device` (acme/d1's ingest).
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from edgebatch.api import security
from edgebatch.api.app import create_app
from edgebatch.framework.state import StateStore
from edgebatch.settings import (
    ApiSettings,
    MqttSettings,
    Settings,
    StateSettings,
    WarehouseSettings,
)
from edgebatch.warehouse.uri import WarehouseRoot
from tests.support.net import free_port
from tests.support.postgres import PostgresServer, postgres_server

SECRET = "test-secret-0123456789"


def make_settings(home: Path, state_url: str, **api: Any) -> Settings:
    mqtt_port = api.pop("mqtt_port", 1)
    return Settings(
        warehouse=WarehouseSettings(root=(home / "warehouse").as_uri()),
        state=StateSettings(url=state_url),
        mqtt=MqttSettings(port=mqtt_port),
        api=ApiSettings(**{"secret": SECRET, "mqtt_status": False, **api}),
        home=home,
    )


def add_token(store: StateStore, name: str, role: str, tenants: list[str], device=None) -> str:
    token = security.new_token()
    store.add_token(
        name,
        token_hash=security.token_hash(token),
        prefix=security.token_prefix(token),
        role=role,
        tenants=tenants,
        device=device,
    )
    return token


def make_tokens(store: StateStore) -> dict[str, str]:
    tokens = {}
    for role in ("admin", "operator", "viewer"):
        tokens[role] = add_token(store, role, role, ["*"])
        tokens[f"acme_{role}"] = add_token(store, f"acme-{role}", role, ["acme"])
        tokens[f"other_{role}"] = add_token(store, f"other-{role}", role, ["other"])
    tokens["device"] = add_token(store, "d1", "device", ["acme"], device="acme/d1")
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclasses.dataclass
class Api:
    app: FastAPI
    client: TestClient
    store: StateStore
    settings: Settings
    tokens: dict[str, str]

    @property
    def root(self) -> WarehouseRoot:
        return WarehouseRoot.parse(self.settings.warehouse_root)

    def as_(self, who: str) -> dict[str, str]:
        return bearer(self.tokens[who])


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    return postgres.create_database(f"api_{uuid.uuid4().hex[:12]}")


def open_api(home: Path, url: str, **api: Any) -> Generator[Api, None, None]:
    settings = make_settings(home, url, **api)
    store = StateStore(url)
    app = create_app(settings, store=store)
    tokens = make_tokens(store)
    with TestClient(app) as client:
        yield Api(app, client, store, settings, tokens)
    store.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """The app over a SQLite store in the test's folder."""
    yield from open_api(tmp_path, f"sqlite:///{tmp_path / 'state.db'}")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """The app over SQLite, then over a real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    yield from open_api(tmp_path, url)


class Served:
    """The app under a real uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: FastAPI) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
