"""`edgebatch scheduler` processes against one state store, to kill and watch take over.

with SchedulerGroup(config_path, store) as group:
    a = group.start("a"); group.wait_leader("a")
    b = group.start("b")
    killed_at = group.kill(a)                  # kill -9
    took = group.wait_leader("b") - killed_at  # seconds until b holds the lease
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edgebatch.framework.state import StateStore
from tests.support.wait import wait_until


def write_config(path: Path, *, state_url: str, root: str, jobs: str, **scheduler: Any) -> Path:
    """A project config for schedulers: the store, the warehouse, extra jobs, `[scheduler]`."""
    lines = [
        "[state]",
        f'url = "{state_url}"',
        "[warehouse]",
        f'root = "{root}"',
        "[framework]",
        f'jobs = ["{jobs}"]',
        "[scheduler]",
        *(f"{k} = {v!r}" for k, v in scheduler.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


class SchedulerGroup:
    """Scheduler processes sharing a config; every one still alive is stopped on exit."""

    def __init__(self, config: Path, store: StateStore, log_dir: Path) -> None:
        self.config = config
        self.store = store
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> SchedulerGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    def start(self, holder: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"scheduler-{holder}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgebatch.cli", "--config", str(self.config), "scheduler"]
            + ["--holder", holder],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.procs[holder] = proc
        return proc

    def kill(self, holder: str) -> float:
        """kill -9 the scheduler; returns when (time.time()) it was killed."""
        proc = self.procs[holder]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        return time.time()

    def stop(self, holder: str) -> int:
        proc = self.procs[holder]
        proc.send_signal(signal.SIGTERM)
        return proc.wait(20)

    def leader(self, name: str = "scheduler") -> str | None:
        lease = self.store.get_leadership(name)
        if lease is None or lease.expires_at.timestamp() < time.time():
            return None
        return lease.holder

    def wait_leader(self, holder: str, timeout: float = 30) -> float:
        """Wait until `holder` leads; returns when (time.time()) that was first seen."""
        wait_until(lambda: self.leader() == holder, timeout, f"scheduler {holder} to lead", 0.05)
        return time.time()

    def log_of(self, holder: str) -> str:
        path = self.log_dir / f"scheduler-{holder}.log"
        return path.read_text(errors="replace") if path.exists() else ""
