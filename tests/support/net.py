"""Loopback ports for the services tests start."""

from __future__ import annotations

import socket

from tests.support.wait import wait_until


def free_port() -> int:
    """A port free on 127.0.0.1 now (the kernel's pick; another process may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def port_closed(host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until nothing listens on `port`, so a restart can bind it again."""
    wait_until(lambda: not accepts(host, port), timeout, f"port {port} to close")
