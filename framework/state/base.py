"""The state store's foundation: engine, clock, migrations and short transactions.

Each aggregate (`catalog`, `runs`, `logs`, `leases`, `audit`) is a mixin over this
base; `store.StateStore` puts them together behind one door.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any, Self

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from edgebatch.framework.state import models as m
from edgebatch.framework.state.engine import WRITE_OPTION, make_engine, normalize_url
from edgebatch.framework.state.errors import StateError

if TYPE_CHECKING:
    from edgebatch.settings import Settings

Clock = Callable[[], datetime]
Seconds = float | timedelta

DEFAULT_LEASE_TTL = timedelta(seconds=30)
# The queue a run waits in when nobody names one.
DEFAULT_QUEUE = "default"
# A worker whose last heartbeat is older than this is `lost`.
DEFAULT_WORKER_TTL = timedelta(seconds=30)
# A running run with no lease at all (its process died between start and first lease,
# or it never took one) is an orphan once it has run this long without one.
DEFAULT_UNLEASED_GRACE = timedelta(seconds=60)
# A queued run that no process has claimed (or leased) this long after it was created
# is an orphan: its creator died before starting it.
DEFAULT_QUEUED_TTL = timedelta(minutes=15)
# Keys of PostgreSQL advisory locks: (class, object) pairs, class chosen to be edgebatch's.
_LOCK_CLASS_MIGRATE = 0x6562_0001
LOCK_CLASS_RUN_LOG = 0x6562_0002
REAPER_PRINCIPAL = "edgebatch:reaper"


def make_holder() -> str:
    """A lease holder name, `host:pid:uuid`: unique per process start, readable in an error."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def seconds(value: Seconds) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


def _migrations_dir() -> str:
    """The Alembic scripts inside the installed package, wherever it is installed."""
    return str(resources.files("edgebatch.framework.state").joinpath("migrations"))


class StoreBase:
    """The connection to the database and the clock every aggregate of the store shares."""

    def __init__(
        self,
        url: str | URL,
        *,
        clock: Clock = utcnow,
        busy_timeout_s: float = 30.0,
        upgrade: bool = True,
    ) -> None:
        self.url = normalize_url(url)
        self._clock = clock
        self._engine = make_engine(self.url, busy_timeout_s=busy_timeout_s)
        self._write_engine = self._engine.execution_options(**{WRITE_OPTION: True})
        self._postgres = self.url.get_backend_name() == "postgresql"
        self._identity = f"{socket.gethostname()}:{os.getpid()}"
        if upgrade:
            self.upgrade()

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Self:
        """The store the project config names (`Settings.state_url`: `[state] url` or SQLite)."""
        return cls(settings.state_url, **kwargs)

    def close(self) -> None:
        """Close pooled connections; the store can be used again (it reconnects)."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({self.url.render_as_string(hide_password=True)!r})"

    def now(self) -> datetime:
        """The store's clock: what it stamps on rows when the caller gives no time."""
        return self._when(None)

    def _when(self, at: datetime | None) -> datetime:
        """`at` (naive means UTC) or the clock's time, as an aware UTC datetime."""
        at = self._clock() if at is None else at
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)

    # -- schema ---------------------------------------------------------------------------

    def upgrade(self) -> str | None:
        """Bring the database to the newest migration and return its revision.

        Several processes may open a fresh database at once: the first takes the
        write lock (SQLite) or an advisory lock (PostgreSQL) and migrates; the
        others wait, then find it done.
        """
        config = AlembicConfig()
        config.set_main_option("script_location", _migrations_dir())
        head = ScriptDirectory.from_config(config).get_current_head()
        if self.revision() == head:
            return head
        with self._write_engine.begin() as conn:
            if self._postgres:
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:c, 0)"), {"c": _LOCK_CLASS_MIGRATE}
                )
            config.attributes["connection"] = conn
            try:
                command.upgrade(config, "head")
            except CommandError as exc:
                raise StateError(
                    f"cannot upgrade the state store at {self!r} to revision {head}: {exc}; "
                    "if the database was made by a newer edgebatch, upgrade edgebatch"
                ) from None
        return head

    def revision(self) -> str | None:
        """The database's migration revision (None when it has no tables yet)."""
        with self._engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self._write_engine, expire_on_commit=False) as session, session.begin():
            yield session

    def _lock_run_log(self, session: Session, run_id: int) -> None:
        """Serialize log appends of one run so ids commit in order and a cursor misses none.

        A PostgreSQL sequence hands out ids at insert, not at commit: without this,
        line 11 could be read before line 10 commits and the reader would skip 10.
        SQLite needs nothing: its writers are serialized already.
        """
        if self._postgres:
            session.execute(
                text("SELECT pg_advisory_xact_lock(:c, :o)"),
                {"c": LOCK_CLASS_RUN_LOG, "o": run_id % 2**31},
            )

    # -- jobs -----------------------------------------------------------------------------
    def _run_or_raise(self, s: Session, run_id: int, *, lock: bool = False) -> m.Run:
        run = s.get(m.Run, run_id, with_for_update=lock or None)
        if run is None:
            raise StateError(f"no run {run_id} in the state store {self!r}")
        return run

    def _iteration_or_raise(
        self, s: Session, iteration_id: int, *, lock: bool = False
    ) -> m.Iteration:
        it = s.get(m.Iteration, iteration_id, with_for_update=lock or None)
        if it is None:
            raise StateError(f"no iteration {iteration_id} in the state store {self!r}")
        return it

    # -- for tests and tools --------------------------------------------------------------

    def connection(self) -> Connection:
        """A raw connection for tools and tests that inspect the schema; close it after use."""
        return self._engine.connect()
