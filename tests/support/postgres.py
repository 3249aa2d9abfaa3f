"""A throwaway PostgreSQL cluster for tests: Debian's server binaries, a temp dir, a free port.

    with postgres_server() as pg:
        url = pg.url                      # a database made for you
        other = pg.create_database("x")   # more, when a test wants an empty one

initdb refuses to run as root, so as root the cluster runs as the `postgres`
user (`runuser`) in a temp dir it owns. Durability is switched off (fsync,
synchronous_commit, full_page_writes): the cluster lives for one test session.
A failure to start raises with the tail of the server log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.net import free_port

BIN_ENV = "EDGEBATCH_PG_BIN"
START_TIMEOUT_S = 20


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing, or the cluster would not start; says which and why."""


@dataclasses.dataclass
class PostgresServer:
    """A running throwaway cluster; `url` is a database created at start."""

    bindir: Path
    root: Path
    port: int
    run_as: str | None
    url: str = ""
    user: str = "postgres"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def stop(self) -> None:
        """Stop the server (immediate: nothing in it is worth a clean shutdown) and delete it."""
        if self.datadir.exists():
            subprocess.run(
                self._cmd("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop"),
                capture_output=True,
                timeout=30,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def _cmd(self, tool: str, *args: str) -> list[str]:
        exe = [str(self.bindir / tool), *args]
        return ["runuser", "-u", self.run_as, "--", *exe] if self.run_as else exe


def find_bindir() -> Path:
    """`$EDGEBATCH_PG_BIN`, else the newest /usr/lib/postgresql/N/bin with initdb."""
    if os.environ.get(BIN_ENV):
        return Path(os.environ[BIN_ENV])
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if not found:
        raise PostgresUnavailable(
            "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: "
            f"install Debian's `postgresql` package or set {BIN_ENV}"
        )
    return Path(found[-1]).parent


def start_postgres(database: str = "edgebatch_test") -> PostgresServer:
    """Init, start and make one database; the caller must `stop()` the server."""
    bindir = find_bindir()
    run_as = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="edgebatch-pg-"))
    if run_as:
        account = pwd.getpwnam(run_as)
        os.chown(root, account.pw_uid, account.pw_gid)
    os.chmod(root, 0o700)
    server = PostgresServer(bindir=bindir, root=root, port=free_port(), run_as=run_as)
    try:
        _run(
            server,
            server._cmd(
                "initdb",
                "-D",
                str(server.datadir),
                "-U",
                server.user,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ),
            "initdb",
        )
        options = " ".join(
            [
                f"-p {server.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={root}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=50",
            ]
        )
        _run(
            server,
            server._cmd(
                "pg_ctl",
                "-D",
                str(server.datadir),
                "-l",
                str(server.logfile),
                "-o",
                options,
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "start",
            ),
            "pg_ctl start",
        )
        server.url = server.create_database(database)
    except BaseException:
        server.stop()
        raise
    return server


def _run(server: PostgresServer, cmd: list[str], what: str) -> None:
    started = time.monotonic()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=START_TIMEOUT_S + 10)
    except subprocess.TimeoutExpired:
        raise PostgresUnavailable(
            f"{what} took over {START_TIMEOUT_S + 10} s; server log:\n{server.log_tail()}"
        ) from None
    if done.returncode != 0:
        raise PostgresUnavailable(
            f"{what} failed (exit {done.returncode}, {time.monotonic() - started:.1f} s): "
            f"{' '.join(cmd)}\n{done.stderr.strip() or done.stdout.strip()}\n"
            f"server log:\n{server.log_tail()}"
        )


@contextlib.contextmanager
def postgres_server(database: str = "edgebatch_test") -> Iterator[PostgresServer]:
    """A running cluster with `database` made, stopped and deleted on exit."""
    server = start_postgres(database)
    try:
        yield server
    finally:
        server.stop()
