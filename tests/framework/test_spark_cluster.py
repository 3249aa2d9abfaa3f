"""spark-submit of PySpark scripts with Delta to a real Spark standalone master and worker.

Each submit is a cold start (a new driver JVM, a new executor on the worker): the
test prints, and records in the test report, the time from the trigger to the first
task and the total, the figures the launcher's benchmark compares a warm session with.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DELTA_JARS = sorted((REPO / ".cache" / "jars" / "delta").glob("*.jar"))

# Short-lived JVMs on 2 busy cores (measured, docs/services.md): the C1 compiler alone
# takes a cold submit from about 100 s to about 70 s; a Delta snapshot of a tiny table
# in 2 partitions instead of Delta's default 50 saves 15-30 s on its first read.
FAST_START = {
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
    "spark.executor.extraJavaOptions": "-XX:TieredStopAtLevel=1",
    "spark.databricks.delta.snapshotPartitions": "2",
}

DELTA_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pyspark.sql import SparkSession

    table, report = sys.argv[1], sys.argv[2]
    started = time.time()
    spark = SparkSession.builder.appName("edgebatch-submit-check").getOrCreate()
    session_ready = time.time()
    # One task that reports when it ran, on the executor.
    first_task = spark.sparkContext.parallelize([0], 1).map(lambda _: time.time()).collect()[0]
    spark.range(100).write.format("delta").save(table)
    rows = spark.read.format("delta").load(table).count()
    with open(report, "w") as out:
        json.dump(
            {
                "master": spark.sparkContext.master,
                "rows": rows,
                "script_started": started,
                "session_ready": session_ready,
                "first_task": first_task,
                "done": time.time(),
            },
            out,
        )
    spark.stop()
    """
)

FAILING_SCRIPT = textwrap.dedent(
    """
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("edgebatch-submit-fails").getOrCreate()

    def boom(_):
        raise ValueError("boom from the executor")

    spark.sparkContext.parallelize([0], 1).map(boom).collect()
    """
)


def _submit(cluster, tmp_path: Path, name: str, body: str, *args: str):
    script = tmp_path / name
    script.write_text(body)
    return cluster.submit(
        script,
        *args,
        cwd=REPO,  # spark-defaults.conf names fairscheduler.xml relative to the repo
        properties_file=REPO / "spark-defaults.conf",
        jars=DELTA_JARS,
        conf={
            "spark.sql.warehouse.dir": str(tmp_path / "spark-warehouse"),
            "spark.driver.memory": "512m",
            "spark.executor.memory": "512m",
            "spark.task.maxFailures": "1",
            "spark.ui.enabled": "false",
            **FAST_START,
        },
        timeout=300,
    )


def test_cluster_is_up(spark_master):
    status = spark_master.status()
    assert status["status"] == "ALIVE"
    assert status["url"] == spark_master.master_url
    assert spark_master.master_url.startswith("spark://127.0.0.1:")
    [worker] = status["workers"]
    assert (worker["state"], worker["cores"], worker["memory"]) == ("ALIVE", 1, 1024)
    print(f"\nSpark standalone master + worker started in {spark_master.startup_seconds:.1f} s")


def test_submit_writes_and_reads_delta(spark_master, tmp_path: Path, record_property):
    if not DELTA_JARS:
        pytest.fail(f"no Delta jars in {REPO / '.cache/jars/delta'}: run `make jars`")
    table, report = tmp_path / "table", tmp_path / "report.json"
    trigger = time.time()
    done = _submit(spark_master, tmp_path, "delta_check.py", DELTA_SCRIPT, str(table), str(report))
    total = time.time() - trigger
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(report.read_text())
    assert result["master"] == spark_master.master_url
    assert result["rows"] == 100
    assert (table / "_delta_log" / "00000000000000000000.json").exists()

    timings = {
        "to_session": result["session_ready"] - trigger,
        "to_first_task": result["first_task"] - trigger,
        "total": total,
    }
    for key, value in timings.items():
        record_property(f"cold_submit_{key}_s", round(value, 2))
    print(
        "\ncold spark-submit: "
        + ", ".join(f"{key.replace('_', ' ')} {value:.1f} s" for key, value in timings.items()),
        file=sys.stderr,
    )
    apps = {app["name"]: app for app in spark_master.status()["completedapps"]}
    assert apps["edgebatch-submit-check"]["state"] == "FINISHED"


def test_failing_script_exits_non_zero(spark_master, tmp_path: Path):
    done = _submit(spark_master, tmp_path, "fails.py", FAILING_SCRIPT)
    assert done.returncode != 0
    assert "boom from the executor" in done.stderr
