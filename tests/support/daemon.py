"""Start, watch and stop a long-running service process for tests (a JVM, usually).

What HDFS and the Spark standalone cluster share: output to a log file whose tail
goes into every start-up error, a readiness poll with a deadline that gives up as
soon as the process dies, a stop that escalates from SIGTERM to SIGKILL, and a
child that dies with the test process even after `kill -9` of pytest (Linux's
parent-death signal), so no JVM outlives the session that started it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1


class ServiceStartError(RuntimeError):
    """A test service would not start; the message says which, why, and ends with its log tail."""


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. Only the main thread should start
    # services: the signal fires when the *thread* that forked the child exits.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def spawn(
    cmd: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `cmd` with stdout and stderr in `log`, in its own session, dying with us."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent if os.name == "posix" else None,
        )


def log_tail(log: Path, lines: int = 40) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return f"(no log at {log})"
    return "\n".join(text.splitlines()[-lines:]) or f"(empty log at {log})"


def wait_ready(
    probe: Callable[[], T | None],
    *,
    what: str,
    process: subprocess.Popen[bytes],
    log: Path,
    timeout: float,
    interval: float = 0.2,
) -> T:
    """Call `probe` until it returns a value other than None, the process dies, or time runs out.

    `probe` may raise OSError (connection refused, file half-written) while the
    service is coming up; that counts as "not yet".
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
        except (OSError, ValueError) as exc:
            value, last_error = None, exc
        if value is not None:
            return value
        code = process.poll()
        if code is not None:
            raise ServiceStartError(
                f"{what}: the process exited with code {code} before it was ready "
                f"(log {log}):\n{log_tail(log)}"
            )
        if time.monotonic() >= deadline:
            hint = f"; last probe error: {last_error!r}" if last_error else ""
            raise ServiceStartError(
                f"{what}: not ready after {timeout:.0f} s{hint} (log {log}):\n{log_tail(log)}"
            )
        time.sleep(interval)


def stop(process: subprocess.Popen[bytes] | None, grace: float = 15.0) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL; safe to call twice."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
