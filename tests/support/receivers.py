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
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
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
    """aiosmtpd on a free loopback port; `messages` are the parsed emails it accepted.

    With `tls` (a certificate and key file) it offers STARTTLS and requires it; with
    `users` it requires a login (after STARTTLS, as real relays do). Recipients in
    `refused` are answered 550, as a mailbox that does not exist is.
    """

    def __init__(
        self,
        *,
        tls: tuple[Path, Path] | None = None,
        users: dict[str, str] | None = None,
        refused: tuple[str, ...] = (),
    ) -> None:
        controller_module = require("aiosmtpd.controller")
        smtp_module = require("aiosmtpd.smtp")
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []
        self._lock = threading.Lock()
        self.port = free_port()
        server = self

        class Handler:
            async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook names)
                self, srv: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                if address in refused:
                    return "550 5.1.1 no such mailbox here"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, srv: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with server._lock:
                    server.messages.append(parsed)
                    server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                return "250 Message accepted for delivery"

        def authenticate(srv: Any, session: Any, envelope: Any, mechanism: str, data: Any):
            login = data.login.decode() if isinstance(data.login, bytes) else str(data.login)
            password = data.password.decode() if isinstance(data.password, bytes) else ""
            ok = users is not None and users.get(login) == password
            if ok:
                with server._lock:
                    server.logins.append(login)
            return smtp_module.AuthResult(success=ok, handled=False)

        options: dict[str, Any] = {}
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            options.update(tls_context=context, require_starttls=True)
        if users is not None:
            options.update(authenticator=authenticate, auth_required=True)
            options["auth_require_tls"] = tls is not None
        self.controller = controller_module.Controller(
            Handler(), hostname="127.0.0.1", port=self.port, **options
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
def smtp_server(**options: Any) -> Iterator[SmtpServer]:
    """A running `SmtpServer(**options)`, stopped on exit."""
    server = SmtpServer(**options).start()
    try:
        yield server
    finally:
        server.stop()


def self_signed_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for `host` and its key (openssl), for a TLS server a client trusts
    through `SSL_CERT_FILE`."""
    cert, key = folder / "smtp.crt", folder / "smtp.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={host}", "-addext", f"subjectAltName=IP:{host}",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key
