"""The billing year on a Spark standalone master with two workers, the warehouse on HDFS.

Run by `bench/billing.py` as a child process (a SparkSession is one per process, and the
parent's is local):

    python -m bench._billing_cluster WAREHOUSE_DIR OUT_JSON

It starts the test suite's throwaway services (`tests/support/hdfs.py`,
`tests/support/spark_cluster.py`) plus a second worker (1 core each), uploads the cached
`silver/readings` and reference tables to HDFS through WebHDFS (the same files: Delta's
log names them relatively), runs `water_bills` for the year through the runner with
the master as `spark.master`, and writes the time and the bill totals to OUT_JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench._billing_data import REPO
from bench.billing import JOB, MONTHS, bill_totals, framework_settings, make_runner

WORKERS = 2
WORKER_MEMORY = "2g"
EXECUTOR_MEMORY = "1536m"


def _second_worker(cluster, n: int):
    """Another worker process for the master `cluster` started (it starts one)."""
    from tests.support import daemon
    from tests.support.spark_cluster import spark_home

    assert cluster.root is not None
    log = cluster.root / f"worker-{n}.log"
    work = cluster.root / f"work-{n}"
    work.mkdir()
    return daemon.spawn(
        [
            str(spark_home() / "bin" / "spark-class"),
            "org.apache.spark.deploy.worker.Worker",
            cluster.master_url,
            "--host", "127.0.0.1", "--port", "0", "--webui-port", "0",
            "--cores", "1", "--memory", WORKER_MEMORY, "--work-dir", str(work),
        ],
        log,
        env=cluster.env(),
        cwd=cluster.root,
    )  # fmt: skip


def _alive_workers(cluster) -> int:
    return sum(1 for w in cluster.status().get("workers", []) if w.get("state") == "ALIVE")


def main(warehouse: Path, out: Path) -> None:
    from edgebatch.framework.requests import RunRequest
    from edgebatch.framework.session import build_session
    from tests.support import daemon
    from tests.support.hdfs import MiniHdfs
    from tests.support.spark_cluster import SparkStandalone

    figures: dict[str, object] = {}
    t = time.perf_counter()
    with (
        MiniHdfs.started(heap="1g") as hdfs,
        SparkStandalone.started(worker_cores=1, worker_memory=WORKER_MEMORY) as cluster,
    ):
        extra = [_second_worker(cluster, n) for n in range(2, WORKERS + 1)]
        try:
            daemon.wait_ready(
                lambda: True if _alive_workers(cluster) >= WORKERS else None,
                what=f"{WORKERS} Spark workers",
                process=extra[-1],
                log=cluster.root / f"worker-{WORKERS}.log",  # type: ignore[operator]
                timeout=90,
            )
            figures["services_start_s"] = time.perf_counter() - t
            t = time.perf_counter()
            client = hdfs.client()
            for part in ("silver", "reference"):
                client.upload(f"/bench/warehouse/{part}", str(warehouse / part), n_threads=2)
            figures["hdfs_upload_s"] = time.perf_counter() - t
            home = Path(tempfile.mkdtemp(prefix="edgebatch-billbench-cluster-"))
            settings = framework_settings(home, f"{hdfs.uri}/bench/warehouse")
            os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
            os.environ["PYSPARK_PYTHON"] = sys.executable
            spark = build_session(
                settings,
                {
                    "spark.master": cluster.master_url,
                    "spark.executor.memory": EXECUTOR_MEMORY,
                    "spark.executor.cores": "1",
                    "spark.cores.max": str(WORKERS),
                    "spark.driver.host": "127.0.0.1",
                    "spark.hadoop.dfs.replication": "1",
                    "spark.ui.enabled": "false",
                },
            )
            spark.sparkContext.setLogLevel("ERROR")
            spark.range(WORKERS * 4, numPartitions=WORKERS * 4).count()  # executors up
            runner = make_runner(spark, settings)
            t = time.perf_counter()
            run = runner.run(RunRequest(JOB, start=MONTHS[0], end=MONTHS[1]))
            figures["job_s"] = time.perf_counter() - t
            figures["state"] = run.state
            figures["error"] = run.error
            if run.state == "succeeded":
                totals = bill_totals(spark, runner.root)
                figures["totals"] = {f"{m}|{c}": str(v) for (m, c), v in totals.items()}
            runner.close()
            spark.stop()
            shutil.rmtree(home, ignore_errors=True)
        finally:
            for process in extra:
                daemon.stop(process)
    out.write_text(json.dumps(figures, default=str))


if __name__ == "__main__":
    os.chdir(REPO)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
