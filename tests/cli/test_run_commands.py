"""`edgebatch runs`, `cancel`, `logs --follow` and `submit` as a user types them."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgebatch.framework.state import RunState, StateStore
from tests.framework.test_orphans import _write_config

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    config = _write_config(home)

    def edgebatch(*args: str, columns: int = 200, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "edgebatch"), "--config", str(config), *args],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "COLUMNS": str(columns)},
            **kw,
        )

    return edgebatch, f"sqlite:///{home / 'state.db'}", config


def _finished(store: StateStore, job: str, partitions: list[str], done: int, error: str = ""):
    run = store.create_run(job, partitions=partitions, triggered_by="someone-with-a-long-name")
    store.create_iterations(run.id, partitions)
    store.claim_run(run.id, "host:1:abc")
    for i, it in enumerate(store.list_iterations(run.id)):
        store.transition_iteration(it.id, "running")
        store.transition_iteration(it.id, "succeeded" if i < done else "failed", error=error)
    return store.transition_run(
        run.id, "succeeded" if done == len(partitions) else "failed", error=error or None
    )


def test_runs_keeps_id_job_state_progress_and_start_whole_at_80_columns(project):
    edgebatch, url, _ = project
    with StateStore(url) as store:
        ok = _finished(store, "device_daily", ["2026-11-01", "2026-11-02"], 2)
        bad = _finished(store, "device_daily", ["2026-11-03"], 0, "x" * 200)

    out = edgebatch("runs", columns=80)

    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, out.stdout
    assert "…" not in out.stdout
    started = f"{ok.started_at:%Y-%m-%d %H:%M}"
    (row_ok,) = [ln for ln in lines if ln.split()[:1] == [str(ok.id)]]
    (row_bad,) = [ln for ln in lines if ln.split()[:1] == [str(bad.id)]]
    assert row_ok.split()[:4] == [str(ok.id), "device_daily", "succeeded", "2/2"]
    assert row_bad.split()[:4] == [str(bad.id), "device_daily", "failed", "0/1"]
    assert started in row_ok
    wide = edgebatch("runs", columns=240)
    assert "someone-with-a-long-name" in wide.stdout and "xxxxxxxx" in wide.stdout


def test_cancel_stops_a_queued_run_and_says_when_a_run_has_ended(project):
    edgebatch, url, _ = project
    with StateStore(url) as store:
        queued = store.create_run("meter_monthly", partitions=["2025-01"])

    out = edgebatch("cancel", str(queued.id))

    assert out.returncode == 0 and "cancelled" in out.stdout
    with StateStore(url) as store:
        run = store.get_run(queued.id)
        assert run.state == RunState.CANCELLED and "cancelled by" in (run.error or "")
        assert store.list_audit(action="cancel")[0].target == f"run:{queued.id}"
    again = edgebatch("cancel", str(queued.id))
    assert again.returncode == 0 and "has already ended: cancelled" in again.stdout
    missing = edgebatch("cancel", "999")
    assert missing.returncode == 2 and "no run 999" in missing.stderr


def test_logs_follow_prints_lines_as_they_come_until_the_run_ends(project):
    edgebatch, url, config = project
    with StateStore(url) as store:
        run = store.create_run("meter_monthly", partitions=["2025-01"])
        (it,) = store.create_iterations(run.id, ["2025-01"])
        store.claim_run(run.id, "host:1:abc", ttl=600)
        store.append_log(run.id, "line one")
    follower = subprocess.Popen(
        [str(BIN / "edgebatch"), "--config", str(config), "logs", "--follow", str(run.id)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        assert "line one" in follower.stdout.readline()
        with StateStore(url) as store:
            store.append_log(run.id, "line two", iteration_id=it.id)
            time.sleep(1.5)
            assert follower.poll() is None, "logs --follow ended while the run was running"
            store.append_log(run.id, "line three", level="ERROR")
            store.transition_run(run.id, "succeeded")
        rest, _ = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0
    two, three = rest.splitlines()
    assert two.endswith("INFO    [2025-01] line two")
    assert three.endswith("ERROR   line three")


@pytest.mark.integration
def test_submit_and_spark_submit_of_the_bronze_load_record_their_runs_and_reap(project):
    """`edgebatch submit bronze_load` and plain `spark-submit jobs/bronze_load.py` run
    through the framework's entry; the launcher fails a queued run nobody claimed."""
    edgebatch, url, config = project
    with StateStore(url) as store:
        orphan = store.create_run(
            "meter_monthly", at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        )
    conf = ["--conf", "spark.ui.enabled=false", "--conf", "spark.driver.memory=768m"]

    out = edgebatch("submit", "bronze_load", "--master", "local[1]", "--quiet", *conf)

    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    with StateStore(url) as store:
        (submitted,) = store.list_runs(job="bronze_load")
        assert (submitted.state, submitted.trigger) == (RunState.SUCCEEDED, "submit")
        reaped = store.get_run(orphan.id)
        assert reaped.state == RunState.FAILED and "claimed by no process" in (reaped.error or "")

    plain = subprocess.run(
        [
            str(BIN / "spark-submit"),
            "--properties-file",
            "spark-defaults.conf",
            "--master",
            "local[1]",
            *conf,
            "jobs/bronze_load.py",
            "--config",
            str(config),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )

    assert plain.returncode == 0, plain.stdout[-2000:] + plain.stderr[-3000:]
    with StateStore(url) as store:
        latest = store.list_runs(job="bronze_load", limit=1)[0]
        assert latest.id != submitted.id and latest.state == RunState.SUCCEEDED
        assert f"run {latest.id} of bronze_load: succeeded" in plain.stdout
        assert [it.partition_key for it in store.list_iterations(latest.id)] == ["all"]
