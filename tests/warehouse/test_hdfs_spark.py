"""Spark with Delta on a real single-node HDFS, and WebHDFS (the `hdfs` package) beside it.

The suite's shared local SparkSession needs no Hadoop configuration for HDFS: the
pyspark wheel carries the HDFS client, and full `hdfs://127.0.0.1:N/...` URIs name
the NameNode (no `fs.defaultFS`). See docs/services.md.
"""

from __future__ import annotations

import json
import posixpath
import uuid

import pytest

from edgebatch.warehouse.tables import TableSpec, append, ensure_table, merge_new_rows, read_table
from edgebatch.warehouse.uri import WarehouseRoot

pytestmark = pytest.mark.integration

READINGS = TableSpec(
    name="bronze/readings",
    schema="id STRING NOT NULL, tenant STRING NOT NULL, value DOUBLE",
    partition_by=("tenant",),
    keys=("id",),
    properties={"delta.enableDeletionVectors": "true"},
)


@pytest.fixture
def delta_spark(spark):
    """The shared session's SQL twin with tiny Delta snapshots (2 partitions, not 50).

    Delta rebuilds a table's state in `snapshotPartitions` tasks at its first read; for
    a tiny table on 2 busy cores the default 50 costs 15-30 s (docs/services.md).
    """
    session = spark.newSession()
    session.conf.set("spark.databricks.delta.snapshotPartitions", "2")
    return session


@pytest.fixture
def hdfs_root(hdfs) -> WarehouseRoot:
    """A fresh warehouse root on HDFS per test."""
    return WarehouseRoot.parse(f"{hdfs.uri}/warehouse-{uuid.uuid4().hex[:8]}")


def _rows(spark, rows):
    return spark.createDataFrame(rows, "id STRING, tenant STRING, value DOUBLE")


def _as_dict(df) -> dict[str, float]:
    return {r["id"]: r["value"] for r in df.collect()}


def test_webhdfs_takes_writes_from_any_user(hdfs):
    client = hdfs.client("edge-collector")
    path = f"/landing-{uuid.uuid4().hex[:8]}/a.txt"
    client.write(path, data=b"hello", overwrite=False)
    with client.read(path) as reader:
        assert reader.read() == b"hello"
    status = client.status(path)
    assert status["owner"] == "edge-collector"
    assert status["replication"] == 1
    assert hdfs.uri.startswith("hdfs://127.0.0.1:") and hdfs.webhdfs_url.startswith("http://")
    assert hdfs.startup_seconds > 0


def test_delta_table_on_hdfs_append_merge_time_travel(delta_spark, hdfs, hdfs_root):
    spark = delta_spark
    location = READINGS.location(hdfs_root)
    assert location.startswith(f"{hdfs.uri}/warehouse-")

    ensure_table(spark, hdfs_root, READINGS)  # version 0: the empty table
    append(spark, hdfs_root, READINGS, _rows(spark, [("a", "t1", 1.0), ("b", "t1", 2.0)]))
    # A replay plus one new key: MERGE inserts only "c".
    merge_new_rows(
        spark,
        hdfs_root,
        READINGS,
        _rows(spark, [("a", "t1", 99.0), ("b", "t1", 99.0), ("c", "t2", 3.0)]),
    )
    # An upsert MERGE that updates a row (a deletion vector on HDFS) and inserts another.
    from delta.tables import DeltaTable

    (
        DeltaTable.forPath(spark, location)
        .alias("t")
        .merge(_rows(spark, [("b", "t1", 20.0), ("d", "t2", 4.0)]).alias("s"), "t.id = s.id")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )

    assert _as_dict(read_table(spark, hdfs_root, READINGS)) == {
        "a": 1.0,
        "b": 20.0,
        "c": 3.0,
        "d": 4.0,
    }
    assert _as_dict(read_table(spark, hdfs_root, READINGS, version=0)) == {}
    assert _as_dict(read_table(spark, hdfs_root, READINGS, version=1)) == {"a": 1.0, "b": 2.0}
    history = DeltaTable.forPath(spark, location).history().orderBy("version").collect()
    assert [h["operation"] for h in history] == ["CREATE TABLE", "WRITE", "MERGE", "MERGE"]

    # The same files, seen through WebHDFS: the log and the tenant partitions.
    client = hdfs.client()
    table_path = hdfs_root.resolve(READINGS.name)
    log = client.list(posixpath.join(table_path, "_delta_log"))
    assert "00000000000000000003.json" in log
    assert {"tenant=t1", "tenant=t2"} <= set(client.list(table_path))


def test_file_written_through_webhdfs_is_read_by_spark(spark, hdfs, hdfs_root):
    client = hdfs.client("edge-collector")
    folder = hdfs_root.resolve("landing/batch")
    lines = [{"batch_id": f"b{i}", "n": i} for i in range(5)]
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    # The landing pattern: write under a temporary name, then rename into place.
    client.write(f"{folder}/.part-1.json.tmp", data=body)
    client.rename(f"{folder}/.part-1.json.tmp", f"{folder}/part-1.json")

    df = spark.read.schema("batch_id STRING, n INT").json(hdfs_root.uri("landing/batch"))
    assert sorted((r.batch_id, r.n) for r in df.collect()) == [(f"b{i}", i) for i in range(5)]
    # Spark skips names starting with "." or "_": a half-written temp file is never read.
    client.write(f"{folder}/.part-2.json.tmp", data=b'{"batch_id": "half')
    assert df.count() == 5
