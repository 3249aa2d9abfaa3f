"""`edgebatch demo` as a user runs it: broker, collector, agents, bronze load and the daily
rollup on the embedded defaults, in a project home of its own, ending in exit status 0
only when bronze counts every reading exactly once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgebatch.framework.state import RunState, StateStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLI = str(Path(sys.executable).parent / "edgebatch")


@pytest.mark.timeout(1200)
def test_the_demo_runs_end_to_end_and_counts_every_reading_once(tmp_path: Path):
    config = tmp_path / "edgebatch.toml"
    config.write_text(
        '[spark]\nconf = { "spark.ui.enabled" = "false", "spark.driver.memory" = "1g" }\n'
    )

    demo = subprocess.run(
        [CLI, "--config", str(config), "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1100,
        env={**os.environ, "COLUMNS": "200"},
    )

    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "exactly once" in demo.stdout and "where to look" in demo.stdout
    jvm_lines = re.findall(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (?:WARN|INFO) .*$", demo.stderr, re.M)
    assert jvm_lines == [] and "log4j" not in demo.stderr, "Spark's noise reached the terminal"
    with StateStore(f"sqlite:///{tmp_path / 'var' / 'state.db'}") as store:
        runs = {run.job: run for run in store.list_runs()}
    assert {job: runs[job].state for job in ("bronze_load", "device_daily")} == {
        "bronze_load": RunState.SUCCEEDED,
        "device_daily": RunState.SUCCEEDED,
    }
    assert (tmp_path / "var" / "warehouse" / "silver" / "device_daily" / "_delta_log").is_dir()
