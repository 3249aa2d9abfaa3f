"""The notification dispatcher against what it stands in for, in one run (SQLite store):

(a) delivering 300 webhook notifications (300 failed runs, one contact each) through the
    outbox, every attempt claimed, recorded and logged, against the same JSON bodies
    POSTed by a bare loop with as many threads (the outbox's bookkeeping);
(b) an idle pass (nothing new, nothing due) over a store holding 2,000 finished runs
    of jobs with contacts, all notified already: what a scheduler's process pays every
    `interval_s` for notifications (target: under 50 ms).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.common import Figure

RUNS = 300
HISTORY = 2000
WORKERS = 4


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (the http.server name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _receiver() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _failed_runs(store, job: str, n: int) -> None:
    for _ in range(n):
        run = store.create_run(job, partitions=["2026-03-01"])
        store.claim_run(run.id, holder="bench")
        store.transition_run(run.id, "failed", error="bench failure")


def _setup(home: Path, url: str, runs: int):
    from edgebatch.framework.definitions import define_job
    from edgebatch.framework.notify.dispatcher import Dispatcher
    from edgebatch.framework.registry import JobRegistry
    from edgebatch.framework.state import StateStore
    from edgebatch.settings import NotifySettings, Settings, StateSettings

    settings = Settings(
        state=StateSettings(url=f"sqlite:///{home / 'state.db'}"),
        notify=NotifySettings(workers=WORKERS, timeout_s=5.0),
        home=home,
    )
    job = define_job("bench_job", [lambda ctx: None], contacts=[url], source_file=__file__)
    store = StateStore(settings.state_url)
    _failed_runs(store, "bench_job", runs)
    return store, lambda: Dispatcher(store, JobRegistry([job]), settings)


def _through_outbox(url: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store, make = _setup(Path(tmp), url, RUNS)
        dispatcher = make()
        try:
            start = time.perf_counter()
            delivered = 0
            while delivered < RUNS:
                delivered += dispatcher.run_once().delivered
            return time.perf_counter() - start
        finally:
            store.close()


def _bare_posts(url: str) -> float:
    body = json.dumps({"job": "bench_job", "run_id": 1, "state": "failed"}).encode()

    def post(_: int) -> None:
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(post, range(RUNS)))
    return time.perf_counter() - start


def _idle_pass(url: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store, make = _setup(Path(tmp), url, HISTORY)
        dispatcher = make()
        try:
            while dispatcher.run_once().attempts:  # announce the history once
                pass
            fresh = []
            for _ in range(5):  # a restarted dispatcher looks back a whole day
                start = time.perf_counter()
                make().scan()
                fresh.append(time.perf_counter() - start)
            idle = []
            for _ in range(20):
                start = time.perf_counter()
                dispatcher.run_once()
                idle.append(time.perf_counter() - start)
            return statistics.median(idle), statistics.median(fresh)
        finally:
            store.close()


def run() -> list[Figure]:
    server = _receiver()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        bare = statistics.median(_bare_posts(url) for _ in range(3))
        outbox = statistics.median(_through_outbox(url) for _ in range(3))
        idle, fresh = _idle_pass(url)
    finally:
        server.shutdown()
        server.server_close()
    return [
        Figure(
            metric=f"deliver {RUNS} webhook notifications",
            value=outbox,
            unit="s",
            baseline=bare,
            baseline_name=f"bare POST loop, {WORKERS} threads",
            note="each delivery: claim, POST, record and a log line, in the state store",
        ),
        Figure(
            metric=f"idle pass over {HISTORY} notified runs",
            value=idle * 1000,
            unit="ms",
            target=50,
            target_on="value",
            note="scan (outcomes, SLAs) and an empty claim",
        ),
        Figure(
            metric=f"first scan after a restart over {HISTORY} notified runs",
            value=fresh * 1000,
            unit="ms",
            note="looks back lookback_s (a day) once",
        ),
    ]
