"""Session-wide Delta options (txn pair, commit userMetadata) are set in one place, under one
lock, and restored: concurrent writers in one session each commit with their own."""

from __future__ import annotations

import threading

import pytest
from delta.tables import DeltaTable

from edgebatch.warehouse.errors import TableError
from edgebatch.warehouse.tables import TableSpec, delta_txn, merge_new_rows

pytestmark = pytest.mark.integration

USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
TXN_APP = "spark.databricks.delta.write.txnAppId"


def spec(i: int) -> TableSpec:
    return TableSpec(
        name=f"test/concurrent_{i}",
        schema="id STRING NOT NULL, value BIGINT",
        keys=("id",),
        properties={"delta.enableDeletionVectors": "false"},
    )


def test_concurrent_writers_each_commit_their_own_user_metadata(spark, warehouse_root):
    writers, merges = 3, 3
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(i: int) -> None:
        try:
            start.wait()
            for n in range(merges):
                df = spark.createDataFrame([(f"{i}-{n}", n)], "id STRING, value BIGINT")
                merge_new_rows(
                    spark,
                    warehouse_root,
                    spec(i),
                    df,
                    app_id=f"test.writer{i}",
                    txn_version=n + 1,
                    user_metadata=f"writer-{i}-merge-{n}",
                )
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    for i in range(writers):
        location = spec(i).location(warehouse_root)
        history = DeltaTable.forPath(spark, location).history().collect()
        tags = sorted(h.userMetadata for h in history if h.operation == "MERGE")
        assert tags == [f"writer-{i}-merge-{n}" for n in range(merges)]
    assert spark.conf.get(USER_METADATA, None) is None
    assert spark.conf.get(TXN_APP, None) is None


def test_delta_txn_restores_what_the_session_had(spark):
    spark.conf.set(USER_METADATA, "outer")
    try:
        with delta_txn(spark, app_id="test.app", version=7, user_metadata="inner"):
            assert spark.conf.get(USER_METADATA) == "inner"
            assert spark.conf.get(TXN_APP) == "test.app"
        assert spark.conf.get(USER_METADATA) == "outer"
        assert spark.conf.get(TXN_APP, None) is None
    finally:
        spark.conf.unset(USER_METADATA)


def test_a_txn_needs_both_app_and_version(spark):
    with pytest.raises(TableError, match="both app_id and version"):
        delta_txn(spark, app_id="test.app")
