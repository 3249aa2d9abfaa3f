"""`edgebatch trigger`, `scheduler --once` and `schedule` as a user types them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from edgebatch.framework.state import StateStore
from tests.support.schedulers import write_config

BIN = Path(sys.executable).parent
JOBS = Path(__file__).resolve().parents[1] / "framework" / "scheduler" / "jobs"


def test_a_triggered_run_of_a_job_with_upstream_jobs_waits_for_the_scheduler(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    config = write_config(
        tmp_path / "edgebatch.toml",
        state_url=url,
        root=(tmp_path / "warehouse").as_uri(),
        jobs=str(JOBS / "pipeline_jobs.py"),
    )

    def edgebatch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "edgebatch"), "--config", str(config), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "200"},
        )

    asked = edgebatch("trigger", "daily_report", "--partition", "2026-11-17")
    assert asked.returncode == 0, asked.stderr
    assert "run 1 of daily_report queued (held until the scheduler's checks pass)" in asked.stdout
    store = StateStore(url)
    assert store.claim_next_run("worker") is None
    again = edgebatch("trigger", "daily_report", "--partition", "2026-11-17", "--run-key", "k")
    assert again.returncode == 0
    assert edgebatch("trigger", "daily_report", "--run-key", "k").stdout.startswith(
        "run 2 of daily_report exists for run key k"
    )

    once = edgebatch("scheduler", "--once", "--holder", "cli-test")
    assert once.returncode == 0, once.stderr
    assert "leader=True" in once.stdout and "released=[1, 2]" in once.stdout
    claimed = store.claim_next_run("worker")
    assert claimed is not None and claimed.id == 1
    log = [line.message for line in store.read_logs(1)]
    assert log[0].startswith("requested: cli request by")
    assert any(m.startswith("enqueued: manual trigger by") for m in log)
    assert any(m.startswith("released to the workers") for m in log)

    listed = edgebatch("schedule")
    assert listed.returncode == 0, listed.stderr
    for words in ("bronze_load", "landing", "daily_report", "upstream:device_daily"):
        assert words in listed.stdout
    assert "no scheduler leads" in listed.stdout  # --once gave its lease up

    bad = edgebatch("trigger", "daily_reprot")
    assert bad.returncode == 2 and "did you mean daily_report" in bad.stderr
    store.close()
