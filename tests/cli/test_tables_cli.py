"""`edgebatch tables` lists every declared table (the contract's and the jobs'), reads their
state without starting Spark, and prints nothing of a JVM."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.framework.test_orphans import _write_config

CLI = str(Path(sys.executable).parent / "edgebatch")
JVM_NOISE = re.compile(r"log4j|WARN |SLF4J|WARNING: |NativeCodeLoader|SparkContext|Ivy", re.I)


def test_tables_lists_every_declared_table_without_jvm_noise(spark, tmp_path):
    from edgebatch.jobs.device_daily import DEVICE_DAILY
    from edgebatch.warehouse import catalog
    from edgebatch.warehouse.tables import ensure_tables
    from edgebatch.warehouse.uri import WarehouseRoot

    home = tmp_path / "home"
    home.mkdir()
    config = _write_config(home)
    root = WarehouseRoot.parse((home / "warehouse").as_uri())
    ensure_tables(spark, root, [catalog.EDGE_BATCHES, catalog.QUARANTINE, DEVICE_DAILY])

    out = subprocess.run(
        [CLI, "--config", str(config), "tables"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )

    assert out.returncode == 0, out.stderr[-2000:]
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    for name in (*(s.name for s in catalog.DECLARED), DEVICE_DAILY.name):
        assert name in lines, f"{name} missing from:\n{out.stdout}"
    assert "version 0, 0 rows" in lines["quarantine/rejected"]
    assert "version 0, 0 rows" in lines["silver/device_daily"]
    assert "device_daily" in lines["silver/device_daily"]  # who writes it
    assert "not created yet" in lines["bronze/device_health"]
    noise = [line for line in (out.stdout + out.stderr).splitlines() if JVM_NOISE.search(line)]
    assert not noise, noise


def test_a_command_that_starts_spark_keeps_its_noise_in_a_log_file(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    config = _write_config(home)

    out = subprocess.run(
        [CLI, "--config", str(config), "run", "maintenance", "--partition", "test/spin"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=home,
        env={**os.environ, "COLUMNS": "200", "EDGEBATCH_HOME": str(home)},
    )

    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "succeeded" in out.stdout
    noise = [line for line in (out.stdout + out.stderr).splitlines() if JVM_NOISE.search(line)]
    assert not noise, noise
    log = (home / "var" / "spark-driver.log").read_text()
    assert "WARN" in log or "WARNING" in log  # the JVM said something, and it went here
