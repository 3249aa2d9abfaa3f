"""Real receivers of notifications on loopback: an SMTP server (aiosmtpd), an HTTP server
that records POSTs and answers as told, and a black hole that never answers.

    with smtp_server() as smtp, WebhookReceiver() as hooks:
        hooks.answer("/flaky", 500, 200)      # first 500, then 200 for good
        ... smtp.messages, hooks.received("/flaky")
"""

from __future__ import annotations

import contextlib
import dataclasses
import email
import email.message
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.extras import require
from tests.support.net import free_port


@dataclasses.dataclass(frozen=True)
class Post:
    """One request a receiver got: its path, headers, JSON body and the status it answered."""

    path: str
    headers: dict[str, str]
    body: Any
    status: int


class WebhookReceiver:
    """An HTTP server in a thread: records every POST; answers each path with the statuses
    queued by `answer()` in turn (then the last one for good), 200 by default."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self._answers: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server name)
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                with receiver._lock:
                    queued = receiver._answers.get(self.path, [200])
                    status = queued.pop(0) if len(queued) > 1 else queued[0]
                    receiver.posts.append(
                        Post(self.path, dict(self.headers.items()), json.loads(raw), status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def answer(self, path: str, *statuses: int) -> None:
        with self._lock:
            self._answers[path] = list(statuses)

    def received(self, path: str | None = None) -> list[Post]:
        with self._lock:
            return [p for p in self.posts if path is None or p.path == path]

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def black_hole() -> Iterator[str]:
    """A URL whose server accepts connections (the kernel does, from the backlog) and never
    says a word: what a hung receiver looks like to a client."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/never"
    finally:
        sock.close()


class SmtpServer:
    """aiosmtpd on a free loopback port; `messages` are the parsed emails it accepted."""

    def __init__(self) -> None:
        controller_module = require("aiosmtpd.controller")
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()
        self.port = free_port()
        server = self

        class Handler:
            async def handle_DATA(self, srv: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with server._lock:
                    server.messages.append(parsed)
                    server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                return "250 Message accepted for delivery"

        self.controller = controller_module.Controller(
            Handler(), hostname="127.0.0.1", port=self.port
        )

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self._lock:
            return [
                m
                for m, (_, rcpts) in zip(self.messages, self.envelopes, strict=True)
                if address in rcpts
            ]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.envelopes.clear()

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@contextlib.contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()
