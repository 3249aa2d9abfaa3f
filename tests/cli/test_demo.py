"""`edgebatch demo --once` as CI runs it: broker, collector, scheduler, worker and API as
their own processes, a small fleet of every kind, the chain run by the scheduler alone,
and exit status 0 only when every run succeeded and every figure matches the landing
files (the checks themselves: test_demo_checks.py)."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLI = str(Path(sys.executable).parent / "edgebatch")
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_a_small_demo_runs_the_chain_through_the_scheduler_and_matches_the_landing_files(
    tmp_path: Path,
):
    config = tmp_path / "edgebatch.toml"
    # Two shuffle partitions, as the suite's own session: the demo's data is small and the
    # machine has two cores (the shipped default of 8 makes four times the tasks per shuffle).
    config.write_text(
        '[spark]\nconf = { "spark.ui.enabled" = "false", "spark.driver.memory" = "1g", '
        '"spark.sql.shuffle.partitions" = "2", "spark.default.parallelism" = "2" }\n'
    )
    demo = subprocess.run(
        [CLI, "--config", str(config), "demo", "--once", "--agents", "20", "--days", "1",
         "--start", "2026-11-24", "--reference", str(REPO / "examples" / "reference"),
         "--timeout", "800"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=880,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip

    out = demo.stdout
    assert demo.returncode == 0, out[-4000:] + demo.stderr[-3000:]
    assert "every run succeeded; every figure matches the landing files" in out
    assert re.search(r"dashboard  http://127\.0\.0\.1:\d+/  \(user demo, password \S+\)", out)
    assert re.search(r"timings: first gold table (never|\d+\.\d s)", out)
    # Consent is part of the data: a withdrawn water customer and an unconsented patient.
    assert "withheld readings (kept in bronze): " in out and "no_consent" in out
    assert "withdrawn" in out
    jvm_lines = re.findall(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (?:WARN|INFO) .*$", demo.stderr, re.M)
    assert jvm_lines == [] and "log4j" not in demo.stderr, "Spark's noise reached the terminal"

    (state,) = (tmp_path / "var" / "demo").glob("*/state.db")
    with sqlite3.connect(state) as db:
        runs = db.execute("SELECT job, state, triggered_by FROM runs").fetchall()
    jobs = {job for job, _, _ in runs}
    assert {"reference_load", "bronze_load", "silver_readings"} <= jobs
    assert {s for _, s, _ in runs} == {"succeeded"}
    # Nothing ran the chain but the scheduler (the reference data is a manual trigger).
    assert {by for job, _, by in runs if job != "reference_load"} == {"scheduler"}
    stopped = out.splitlines()[-1]
    assert stopped.startswith("stopped ") and "exit status" not in stopped
