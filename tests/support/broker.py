"""A real Mosquitto on a free loopback port, with persistence; a test can stop, kill, restart it.

    with Broker.started(tmp_path) as broker:
        broker.port               # the same port across restarts, so clients reconnect
        broker.kill()             # SIGKILL: whatever is not autosaved is lost
        broker.start()            # again, same port, same persistence file

`autosave_interval=None` keeps Mosquitto's default (1800 s): after `kill -9` the
broker forgets every queued message and session since it started, which is what
the end-to-end receipts exist for. The generated config is the one
docs/collector.md recommends: no cap on queued messages, so a persistent session
that is offline during a spike loses nothing to the broker's default of 1000.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support import daemon

MOSQUITTO = "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """One Mosquitto process at a time on a fixed port, its data under `root`."""

    def __init__(
        self, root: Path, *, autosave_interval: int | None = None, port: int | None = None
    ) -> None:
        self.root = Path(root)
        self.port = port or free_port()
        self.autosave_interval = autosave_interval
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.root / "mosquitto.log"

    @property
    def config(self) -> Path:
        return self.root / "mosquitto.conf"

    def _write_config(self) -> None:
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {data}/",
            # Tests may run as root; Mosquitto would drop to `mosquitto`, who cannot write here.
            "user root",
            "max_queued_messages 0",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_dest stderr",
        ]
        if self.autosave_interval is not None:
            lines.append(f"autosave_interval {self.autosave_interval}")
        self.config.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 15.0) -> Broker:
        if shutil.which(MOSQUITTO) is None:
            raise daemon.ServiceStartError(f"{MOSQUITTO} is missing: apt-get install mosquitto")
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("broker already running")
        self._write_config()
        self.process = daemon.spawn([MOSQUITTO, "-c", str(self.config)], self.log)
        daemon.wait_until(
            self._accepting,
            what=f"mosquitto on port {self.port}",
            process=self.process,
            log=self.log,
            timeout=timeout,
            interval=0.05,
        )
        self.starts += 1
        return self

    def _accepting(self) -> bool | None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
            return True

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file on a clean exit."""
        daemon.stop(self.process, grace=10.0)
        self._wait_port_free()

    def kill(self) -> None:
        """SIGKILL: nothing is saved beyond the last autosave."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._wait_port_free()

    def _wait_port_free(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                return
            time.sleep(0.05)

    @classmethod
    @contextlib.contextmanager
    def started(cls, root: Path, **kwargs: object) -> Iterator[Broker]:
        broker = cls(root, **kwargs).start()  # type: ignore[arg-type]
        try:
            yield broker
        finally:
            broker.kill()
