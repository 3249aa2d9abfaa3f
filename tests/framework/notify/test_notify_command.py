"""`edgebatch notify` as a deployment runs it: one pass with `--once`, or passes until
SIGTERM; the job's contacts hear of a failure once, by webhook and email."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edgebatch.framework.state import RunState, StateStore
from tests.framework.notify.conftest import end_run
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "edgebatch")
JOBS = Path(__file__).parent / "jobs"


@pytest.fixture
def project(tmp_path, smtp, hooks):
    config = tmp_path / "edgebatch.toml"
    config.write_text(
        f"""
[state]
url = "sqlite:///{tmp_path / "state.db"}"

[framework]
jobs = ["{JOBS}"]

[notify]
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
timeout_s = 2.0
"""
    )
    env = {
        **os.environ,
        "EDGEBATCH_TEST_HOOK": hooks.url("/cli"),
        "EDGEBATCH_TEST_MAIL": "cli@plant.test",
    }
    return config, env, f"sqlite:///{tmp_path / 'state.db'}"


def test_notify_once_delivers_a_failure_and_a_second_pass_sends_nothing(project, hooks, mail):
    config, env, url = project
    with StateStore(url) as store:
        run = end_run(store, "watched_loader", RunState.FAILED, error="boom")

    def once() -> subprocess.CompletedProcess:
        return subprocess.run(
            [CLI, "--config", str(config), "notify", "--once"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )

    first, second = once(), once()
    assert first.returncode == 0, first.stderr[-2000:]
    assert "events found 1, delivered 2, retrying 0, given up 0" in first.stdout
    assert "events found 0, delivered 0" in second.stdout
    assert [p.body["run_id"] for p in hooks.received("/cli")] == [run.id]
    assert len(mail.to("cli@plant.test")) == 1


def test_notify_runs_until_sigterm(project, hooks):
    config, env, url = project
    proc = subprocess.Popen(
        [CLI, "--config", str(config), "notify", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        with StateStore(url) as store:
            run = end_run(store, "watched_loader", RunState.SKIPPED)
        wait_until(lambda: hooks.received("/cli"), 60, "the skipped run's webhook")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert "dispatching every 0.2 s" in out
    assert [(p.body["run_id"], p.body["event"]) for p in hooks.received("/cli")] == [
        (run.id, "skipped")
    ]
