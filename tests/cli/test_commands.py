"""The `edgebatch` job commands as a user types them: exit status tells success from
failure, bad requests name the job or partition, runs and logs are listed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgebatch.framework.state import IterationState, RunState, StateStore
from tests.framework.test_orphans import _write_config

CLI = str(Path(sys.executable).parent / "edgebatch")


@pytest.fixture
def project(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    config = _write_config(home)

    def edgebatch(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [CLI, "--config", str(config), *args],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "COLUMNS": "200", **(env or {})},
        )

    return edgebatch, f"sqlite:///{home / 'state.db'}"


def test_run_runs_and_logs_from_the_command_line(project, tmp_path):
    edgebatch, url = project
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "meter_monthly_once.2025-03").write_text("1")
    env = {"EDGEBATCH_TEST_FAULTS": str(faults)}

    ok = edgebatch("run", "meter_monthly", "--partition", "2025-02", "--quiet", env=env)
    bad = edgebatch("run", "meter_monthly_once", "--partition", "2025-03", "--quiet", env=env)

    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "succeeded" in ok.stdout
    assert bad.returncode == 1 and "injected fault" in bad.stdout
    with StateStore(url) as store:
        first, second = sorted(store.list_runs(), key=lambda r: r.id)
        assert (first.state, second.state) == (RunState.SUCCEEDED, RunState.FAILED)
        assert first.trigger == "cli"
        (it,) = store.list_iterations(first.id)
        assert it.state == IterationState.SUCCEEDED and it.rows_out == 84
    runs = edgebatch("runs", "--job", "meter_monthly_once")
    assert runs.returncode == 0 and "failed" in runs.stdout and "meter_monthly_once" in runs.stdout
    logs = edgebatch("logs", str(second.id))
    assert "attempt 1 failed" in logs.stdout and "[2025-03]" in logs.stdout
    assert "Traceback (most recent call last)" in logs.stdout
    assert "plan for meter_monthly_once: 1 partition(s) to run" in logs.stdout

    retried = edgebatch("retry", str(second.id), "--quiet", env=env)

    assert retried.returncode == 0, retried.stderr[-2000:]
    with StateStore(url) as store:
        third = store.list_runs(limit=1)[0]
        assert (third.retry_of, third.trigger, third.state) == (second.id, "retry", "succeeded")
        assert third.partitions == ("2025-03",)
    nothing = edgebatch("retry", str(third.id))
    assert nothing.returncode == 2 and "nothing left to retry" in nothing.stderr


def test_bad_requests_exit_2_naming_the_problem(project):
    edgebatch, _ = project
    unknown = edgebatch("run", "meter_montly")
    assert unknown.returncode == 2
    assert "no job named 'meter_montly'; did you mean meter_monthly" in unknown.stderr
    month = edgebatch("run", "meter_monthly", "--partition", "2025-13")
    assert month.returncode == 2 and "2025-13" in month.stderr and "meter_monthly" in month.stderr
    jobs = edgebatch("jobs")
    assert jobs.returncode == 0 and "long_backfill" in jobs.stdout and "backfill" in jobs.stdout
