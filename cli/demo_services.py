"""The demo's processes: each started as a user would start it, stopped in reverse order.

Every service is the `edgebatch` command itself (`collect`, `scheduler`, `worker`,
`api`) or Debian's Mosquitto, in a session of its own so that Ctrl-C reaches the demo
alone, which then stops them one by one (SIGTERM, then SIGKILL after a grace), the
last started first: agents, API, worker, scheduler, collector, broker. Output goes to
a log file per process in the demo's folder.
"""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

MOSQUITTO = "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli() -> list[str]:
    exe = Path(sys.executable).parent / "edgebatch"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "edgebatch.cli"]


class Services:
    """Processes started by the demo, by name; `stop_all` ends them last-started first."""

    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.env = dict(env)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - the child holds it
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def run(self, name: str, argv: Sequence[str], stdin: str = "", timeout: float = 120) -> str:
        """Run a command to its end; its output, or `RuntimeError` with it if it failed."""
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, env=self.env, timeout=timeout
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{name} exited with status {done.returncode}: {done.stderr or done.stdout}"
            )
        return done.stdout

    def check_alive(self, names: Sequence[str]) -> None:
        for name in names:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with status {proc.returncode}; see {self.workdir / name}.log"
                )

    def wait_port(self, name: str, port: int, timeout: float = 60) -> None:
        proc = self.procs[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with status {proc.returncode}; see {self.workdir / name}.log"
                )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{name} did not listen on port {port} within {timeout:g} s")

    def stop(self, name: str, grace: float = 30) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return proc.returncode

    def stop_all(self, grace: float = 30) -> dict[str, int | None]:
        """Stop every process, the last started first; a worker gets twice the grace, as
        it first lets its runs finish for `[worker] stop_grace_s`."""
        return {
            name: self.stop(name, grace * 2 if name == "worker" else grace)
            for name in reversed(list(self.procs))
        }


def start_broker(services: Services) -> int:
    """Mosquitto on a free loopback port, persistent (its folder in the demo's)."""
    binary = MOSQUITTO if Path(MOSQUITTO).exists() else shutil.which("mosquitto")
    if not binary:
        raise RuntimeError("mosquitto is not installed (make demo installs Debian's mosquitto)")
    port = free_port()
    store = services.workdir / "mosquitto"
    store.mkdir(parents=True, exist_ok=True)
    conf = services.workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {store}/\nautosave_interval 1\n"
        f"user {getpass.getuser()}\nmax_queued_messages 100000\n"
    )
    services.start("mosquitto", [binary, "-c", str(conf)])
    services.wait_port("mosquitto", port, timeout=15)
    return port
