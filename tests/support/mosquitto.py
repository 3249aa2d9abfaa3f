"""A real Mosquitto on a free loopback port, which a test can stop, kill -9 and start again.

    broker = Mosquitto(tmp_path / "mq", autosave_interval=1).start()
    broker.port               # the same port across restarts, so clients reconnect
    broker.kill()             # SIGKILL: whatever was not autosaved is lost
    broker.start()            # again: same port, same persistence file

Debian's /usr/sbin/mosquitto with a generated config, the one docs/collector.md
recommends: persistence on (unless `persistence=False`), its data in the test's
folder, no cap on queued messages. `autosave_interval=None` keeps Mosquitto's
default (1800 s): after a kill -9 the broker forgets every queued message and
session since it started, which is what the end-to-end receipts exist for; 1
makes a kill -9 lose at most a second. Run as root, Mosquitto drops to the user
`mosquitto` unless told `user`, and then cannot write its persistence file: the
config names the current user.

The suite's fixtures (tests/conftest.py): `broker`, one shared per session, never
stopped by a test, and `make_broker(...)`, a test's own with these options.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt

from tests.support import daemon
from tests.support.net import free_port, port_closed

BINARY = os.environ.get("EDGEBATCH_MOSQUITTO", "/usr/sbin/mosquitto")


class Mosquitto:
    """One broker process at a time on a fixed port: `start()`, `stop()` (clean, saves its
    state), `kill()` (SIGKILL), and `start()` again."""

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        persistence: bool = True,
        autosave_interval: int | None = 1,
        passwords: dict[str, str] | None = None,
        tls: tuple[Path, Path, Path] | None = None,
    ):
        """`passwords` turns anonymous access off; `tls` is `(ca, cert, key)` for the listener."""
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.dir = Path(workdir)
        self.data = self.dir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "mosquitto.log"
        self.conf = self.dir / "mosquitto.conf"
        self.starts = 0
        access = ["allow_anonymous true"]
        if passwords:
            pw_file = self.dir / "passwords"
            pw_file.write_text("".join(f"{u}:{p}\n" for u, p in passwords.items()))
            subprocess.run(["mosquitto_passwd", "-U", str(pw_file)], check=True)
            pw_file.chmod(0o600)
            access = ["allow_anonymous false", f"password_file {pw_file}"]
        if tls:
            ca, cert, key = tls
            access += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        stored = ["persistence false"]
        if persistence:
            stored = ["persistence true", f"persistence_location {self.data}/"]
            if autosave_interval is not None:
                stored.append(f"autosave_interval {autosave_interval}")
        self.conf.write_text(
            "\n".join(
                [
                    f"listener {self.port} {self.host}",
                    *access,
                    *stored,
                    f"user {getpass.getuser()}",
                    "max_queued_messages 0",
                    "log_dest stdout",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "",
                ]
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def binary() -> str:
        if Path(BINARY).exists():
            return BINARY
        found = shutil.which("mosquitto")
        if found is None:
            raise daemon.ServiceStartError(
                f"{BINARY} is missing: install Debian's mosquitto (make system-test)"
            )
        return found

    def start(self, timeout: float = 15.0) -> Mosquitto:
        if self.running:
            raise RuntimeError(f"mosquitto on port {self.port} is already running")
        self.process = daemon.spawn([self.binary(), "-c", str(self.conf)], self.log)
        daemon.wait_ready(
            self._accepts,
            what=f"mosquitto on port {self.port}",
            process=self.process,
            log=self.log,
            timeout=timeout,
            interval=0.05,
        )
        self.starts += 1
        return self

    def _accepts(self) -> bool | None:
        with socket.create_connection((self.host, self.port), timeout=0.5):
            return True

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file and exits."""
        daemon.stop(self.process, grace=10.0)
        self.process = None
        port_closed(self.host, self.port)

    def kill(self) -> None:
        """SIGKILL: whatever was not autosaved is lost, as after a power cut."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None
        port_closed(self.host, self.port)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def reconnect_quickly(client: mqtt.Client, max_delay: float = 1.0) -> None:
    """Retry 0.1 s after a broker restart, doubling up to `max_delay`, rather than paho's
    default of 1 s to 120 s, so a test that restarts its broker waits no longer than it must."""
    # paho annotates both delays as int, yet only sleeps on them: sub-second delays work.
    client.reconnect_delay_set(0.1, max_delay)  # type: ignore[arg-type]


def make_test_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with openssl."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (
        directory / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=edgebatch-test-ca", "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr))  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return ca, cert, key
