"""Spark session start (edgebatch's layered builder with Delta against a bare local session)
and a small Delta write against a plain Parquet write of the same rows, in one run."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from bench.common import Figure, median_of

ROWS = 200_000
REPEATS = 5

_START = """
import json, sys, time
t = time.perf_counter()
if sys.argv[1] == "edgebatch":
    from edgebatch.framework.session import build_session
    spark = build_session(overrides={"spark.ui.enabled": "false"})
else:
    from pyspark.sql import SparkSession
    builder = SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false")
    spark = builder.getOrCreate()
spark.range(1).count()
print(json.dumps({"seconds": time.perf_counter() - t}))
spark.stop()
"""


def _session_start(kind: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _START, kind], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["seconds"]


def run() -> list[Figure]:
    ours_start = median_of(lambda: _session_start("edgebatch"), repeats=3, warmup=0)
    bare_start = median_of(lambda: _session_start("bare"), repeats=3, warmup=0)

    from edgebatch.framework.session import build_session

    spark = build_session(overrides={"spark.ui.enabled": "false"})
    spark.sparkContext.setLogLevel("ERROR")
    df = (
        spark.range(ROWS)
        .selectExpr("id", "cast(id % 100 as string) as device", "rand(7) * 100 as value")
        .cache()
    )
    df.count()
    with tempfile.TemporaryDirectory() as tmp:

        def write(fmt: str) -> float:
            import time

            path = str(Path(tmp) / f"{fmt}-{uuid.uuid4().hex}")
            start = time.perf_counter()
            df.write.format(fmt).mode("overwrite").save(path)
            return time.perf_counter() - start

        delta = median_of(lambda: write("delta"), repeats=REPEATS)
        parquet = median_of(lambda: write("parquet"), repeats=REPEATS)
    df.unpersist()
    return [
        Figure(
            "session_start_with_delta",
            ours_start,
            "s",
            baseline=bare_start,
            baseline_name="bare local SparkSession",
            target=1.5,
            note="cold JVM each time; first query included",
        ),
        Figure(
            f"delta_write_{ROWS}_rows",
            delta,
            "s",
            baseline=parquet,
            baseline_name="plain Parquet write",
            target=2.0,
            note="warm session, cached input; Delta adds its log commit",
        ),
    ]
