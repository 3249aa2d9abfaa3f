"""No ghost runs: a driver killed mid-run is found, failed with a reason, and finished by
the next run, which does only the partitions the dead one left undone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from edgebatch.framework.requests import RunRequest
from edgebatch.framework.state import IterationState, RunState, StateStore
from tests.framework.conftest import MONTHS, TEST_JOBS, make_settings, table_rows


def _write_config(home: Path) -> Path:
    config = home / "edgebatch.toml"
    config.write_text(
        f"""
[warehouse]
root = "{(home / "warehouse").as_uri()}"

[state]
url = "sqlite:///{home / "state.db"}"

[spark]
conf = {{ "spark.ui.enabled" = "false", "spark.driver.memory" = "768m" }}

[framework]
jobs = ["{TEST_JOBS}"]
lease_ttl_s = 3.0
heartbeat_s = 0.5
max_parallel_iterations = 1
"""
    )
    return config


def test_a_killed_driver_is_reaped_and_only_unfinished_partitions_run_again(
    spark, tmp_path, clean_table
):
    home = tmp_path / "home"
    settings = make_settings(home, max_parallel_iterations=1)
    config = _write_config(home)
    cli = str(Path(sys.executable).parent / "edgebatch")
    env = {**os.environ, "EDGEBATCH_TEST_SLEEP_S": "1.0"}
    env.pop("EDGEBATCH_TEST_FAULTS", None)
    driver = subprocess.Popen(
        [
            cli,
            "--config",
            str(config),
            "run",
            "meter_monthly",
            "--from",
            MONTHS[0],
            "--to",
            MONTHS[1],
            "--quiet",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    store = StateStore(settings.state_url)
    try:
        deadline = time.monotonic() + 240
        done: list[str] = []
        while time.monotonic() < deadline and driver.poll() is None:
            runs = store.list_runs(job="meter_monthly")
            if runs:
                its = store.list_iterations(runs[0].id)
                done = [i.partition_key for i in its if i.state == IterationState.SUCCEEDED]
                if len(done) >= 3:
                    break
            time.sleep(0.2)
        assert driver.poll() is None, driver.communicate()[1].decode()[-2000:]
        assert len(done) >= 3, "the driver did not get going"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        killed_at = time.monotonic()
        (orphan,) = store.list_runs(job="meter_monthly")
        assert orphan.state == RunState.RUNNING  # nobody has looked yet

        from edgebatch.framework.registry import discover
        from edgebatch.framework.runner import Runner

        runner = Runner(spark, store, settings, discover(settings))
        try:
            while store.get_run(orphan.id).state == RunState.RUNNING:
                assert time.monotonic() - killed_at < 60, "orphan not reaped within 60 s"
                time.sleep(0.5)
                runner.reap()
            reaped = store.get_run(orphan.id)
            assert reaped.state == RunState.FAILED and "orphaned" in (reaped.error or "")
            left = [
                i.partition_key
                for i in store.list_iterations(orphan.id)
                if i.state != IterationState.SUCCEEDED
            ]
            assert all(
                i.state in (IterationState.FAILED, IterationState.QUEUED)
                for i in store.list_iterations(orphan.id)
                if i.partition_key in left
            )
            succeeded_before = sorted(set(store.succeeded_partitions("meter_monthly")))

            after = runner.run(RunRequest("meter_monthly", start=MONTHS[0], end=MONTHS[1]))

            assert after.state == RunState.SUCCEEDED, after.error
            redone = [i.partition_key for i in store.list_iterations(after.id)]
            assert redone == left
            assert not set(redone) & set(succeeded_before)
            assert table_rows(runner) == clean_table
        finally:
            runner.close()
    finally:
        if driver.poll() is None:
            driver.kill()
        store.close()
