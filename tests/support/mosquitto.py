"""A real Mosquitto on a free loopback port, which a test can stop, start and kill -9.

Debian's /usr/sbin/mosquitto with a generated config: persistence on, its data in
a temporary folder, `autosave_interval` configurable (the default 1 s makes a
kill -9 lose at most a second of the broker's state, as a test wants to see).
Run as root, Mosquitto drops to the user `mosquitto` unless told `user`; the
config names the current user, so its folders stay writable either way. A
restart reuses the port, so clients reconnect to the same address.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from tests.support import daemon

BINARY = os.environ.get("EDGEBATCH_MOSQUITTO", "/usr/sbin/mosquitto")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """One broker: `start()`, `stop()` (clean, saves its state), `kill()` (SIGKILL)."""

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        autosave_interval: int = 1,
        passwords: dict[str, str] | None = None,
        tls: tuple[Path, Path, Path] | None = None,
    ):
        """`passwords` turns anonymous access off; `tls` is `(ca, cert, key)` for the listener."""
        if not Path(BINARY).exists() and shutil.which("mosquitto") is None:
            raise daemon.ServiceStartError(
                f"{BINARY} is missing: install Debian's mosquitto (make system-test)"
            )
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.dir = Path(workdir)
        self.data = self.dir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "mosquitto.log"
        self.conf = self.dir / "mosquitto.conf"
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
        self.conf.write_text(
            "\n".join(
                [
                    f"listener {self.port} {self.host}",
                    *access,
                    "persistence true",
                    f"persistence_location {self.data}/",
                    f"autosave_interval {autosave_interval}",
                    f"user {getpass.getuser()}",
                    "max_queued_messages 100000",
                    "log_dest stdout",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "",
                ]
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        binary = BINARY if Path(BINARY).exists() else shutil.which("mosquitto")
        self.process = daemon.spawn([str(binary), "-c", str(self.conf)], self.log)
        daemon.wait_until(
            self._accepts,
            what=f"mosquitto on port {self.port}",
            process=self.process,
            log=self.log,
            timeout=timeout,
            interval=0.05,
        )

    def _accepts(self) -> bool | None:
        with socket.create_connection((self.host, self.port), timeout=0.5):
            return True

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file and exits."""
        daemon.stop(self.process, grace=10.0)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: whatever was not autosaved is lost, as after a power cut."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


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
