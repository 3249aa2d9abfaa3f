"""A device that hangs up halfway through its body (wrk at the end of a benchmark, a
device losing its link) leaves no stack trace in the service's log, and the next request
is served."""

from __future__ import annotations

import logging
import socket
import time

import httpx
import pytest

from tests.api.conftest import Api, Served

pytestmark = pytest.mark.integration


def test_a_body_cut_short_is_no_error_in_the_log(api: Api, caplog: pytest.LogCaptureFixture):
    token = api.tokens["device"]
    with Served(api.app) as served, caplog.at_level(logging.ERROR):
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
            sock.sendall(
                b"POST /api/v1/ingest/acme/d1 HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: Bearer " + token.encode() + b"\r\n"
                b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
                b'{"v": 1, "device": "d1"'
            )
        time.sleep(1.0)  # the service notices the hang-up and reads no more
        with httpx.Client(base_url=served.url, timeout=10) as http:
            again = http.get("/healthz")  # the request after it is served
    assert again.status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records
    ]
