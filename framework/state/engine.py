"""Engines for the two backends, set up so several processes can write at once.

SQLite: WAL (readers never wait for the writer), a busy timeout (writers wait
for each other instead of failing), foreign keys on, and `BEGIN IMMEDIATE` for
write transactions so a writer takes the lock before it reads, never midway
(a deferred transaction that upgrades its lock late can fail with "database is
locked" whatever the timeout). PostgreSQL: psycopg 3, pre-ping, READ COMMITTED;
the store takes row locks where it needs them.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from edgebatch.framework.state.errors import StateError

WRITE_OPTION = "edgebatch_write"
# Pooled connections to a SQLite file (a file connection costs a descriptor and its page
# cache, nothing on a server).
SQLITE_POOL_SIZE = 16


def normalize_url(url: str | URL) -> URL:
    """The URL to connect to: `postgresql://` means psycopg 3, the driver edgebatch installs."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StateError(
            f"state store URL {url!r} is not a database URL; use sqlite:///PATH "
            "or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StateError(
            f"state store URL {parsed.render_as_string(hide_password=True)!r} names backend "
            f"{parsed.get_backend_name()!r}; the state store runs on sqlite or postgresql"
        )
    return parsed


def make_engine(url: URL, *, busy_timeout_s: float) -> Engine:
    """An engine for `url` with the concurrency settings of this module's docstring."""
    if url.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, busy_timeout_s)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    _forget_pool_in_forked_children(engine)
    return engine


def _sqlite_engine(url: URL, busy_timeout_s: float) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    kwargs: dict[str, Any] = {
        "connect_args": {"timeout": busy_timeout_s, "check_same_thread": False}
    }
    if in_memory:
        # One connection, or every connection would see its own empty database.
        kwargs["poolclass"] = StaticPool
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # Connections kept open for as many threads as read at once (the API's thread pool
        # under load): one opened past the pool's size is closed again after its single
        # use, and opening one (file, WAL and pragmas) costs more than the read it serves.
        kwargs.update(pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (the driver would say plain BEGIN).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _forget_pool_in_forked_children(engine: Engine) -> None:
    """A forked child must not reuse the parent's sockets: it gets a fresh pool instead."""
    ref = weakref.ref(engine)

    def _after_fork() -> None:
        live = ref()
        if live is not None:
            live.dispose(close=False)

    os.register_at_fork(after_in_child=_after_fork)
