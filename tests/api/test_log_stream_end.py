"""The live log stream ends (`event: end`) only after the run's last line: the runner
writes "run N succeeded" in the transaction that ends the run, so whoever sees the run
finished sees that line too. Proven with the real runner on the session's Spark, a real
uvicorn and an SSE client, and at the moment of the move itself (a store that reads the
log right after each finishing move, which the old order, state first and line after,
fails every time)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgebatch.api.app import create_app
from edgebatch.framework.requests import RunRequest
from edgebatch.framework.state import Run, RunState, StateStore
from tests.api.conftest import Served, make_tokens
from tests.api.conftest import make_settings as api_settings
from tests.framework.conftest import make_settings as framework_settings

pytestmark = pytest.mark.integration


class LogAtEnd(StateStore):
    """The real store; after each move that finishes a run it notes the run's last line
    as any reader could see it at that instant."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_line_at_end: dict[int, str] = {}

    def transition_run(self, run_id: int, to: str, **kwargs: Any) -> Run:
        run = super().transition_run(run_id, to, **kwargs)
        if run.finished:
            lines = self.read_logs(run_id, limit=100_000)
            self.last_line_at_end[run_id] = lines[-1].message if lines else ""
        return run


# A job of its own: a Python step that writes nothing (the runner still claims, plans,
# logs and ends the run as for any job).
QUIET_JOB = """
import time

from edgebatch.framework.definitions import job
from edgebatch.framework.partitions import Unpartitioned


@job(partitions=Unpartitioned())
def quiet(ctx):
    time.sleep(1.0)  # the stream is following by now
"""


def _events(http: httpx.Client, run_id: int, headers: dict[str, str], started: threading.Event):
    events: list[dict[str, str]] = []
    with http.stream("GET", f"/api/v1/runs/{run_id}/logs/stream", headers=headers) as s:
        started.set()
        event: dict[str, str] = {}
        for raw in s.iter_lines():
            if not raw:
                if event:
                    events.append(event)
                event = {}
                continue
            key, _, value = raw.partition(": ")
            event[key] = value
    return events


def test_the_stream_sends_the_runs_last_line_before_end(spark, tmp_path: Path) -> None:
    from edgebatch.framework.registry import discover
    from edgebatch.framework.runner import Runner

    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "quiet.py").write_text(QUIET_JOB)
    settings = framework_settings(tmp_path / "home", jobs=(str(jobs),))
    store = LogAtEnd(settings.state_url)
    runner = Runner(spark, store, settings, discover(settings))
    app = create_app(api_settings(tmp_path / "api", settings.state_url), store=store)
    tokens = make_tokens(store)
    try:
        run = runner.submit(RunRequest("quiet"))
        with Served(app) as served, httpx.Client(base_url=served.url, timeout=120) as http:
            started = threading.Event()
            found: list[list[dict[str, str]]] = []
            reader = threading.Thread(
                target=lambda: found.append(
                    _events(http, run.id, {"Authorization": f"Bearer {tokens['admin']}"}, started)
                )
            )
            reader.start()
            started.wait(30)
            done = runner.wait(run.id, timeout=120)
            reader.join(60)
        assert done.state is RunState.SUCCEEDED, [x.message for x in store.read_logs(run.id)]
        final = f"run {run.id} succeeded"
        assert store.last_line_at_end == {run.id: final}
        events = found[0]
        assert events[-1]["event"] == "end"
        assert json.loads(events[-1]["data"]) == {"state": "succeeded"}
        logs = [json.loads(e["data"]) for e in events if e.get("event") == "log"]
        assert logs[-1]["message"] == final
        assert [x["id"] for x in logs] == [x.id for x in store.read_logs(run.id)]
    finally:
        runner.close()
        store.close()
