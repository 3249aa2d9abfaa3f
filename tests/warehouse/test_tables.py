"""Real Spark, real Delta: the registry creates, appends, merges, time-travels and enforces."""

from __future__ import annotations

import datetime as dt

import pytest

from edgebatch.warehouse import catalog
from edgebatch.warehouse.errors import TableError
from edgebatch.warehouse.tables import (
    REGISTRY,
    TableRegistry,
    TableSpec,
    append,
    ensure_table,
    frame,
    merge_new_rows,
    read_table,
    replace_partition,
)

pytestmark = pytest.mark.integration

READINGS = TableSpec(
    name="test/readings",
    schema="id STRING NOT NULL, tenant STRING NOT NULL, value DOUBLE, date DATE NOT NULL",
    partition_by=("tenant", "date"),
    keys=("id",),
)
DAY = dt.date(2026, 11, 1)


def rows(spark, *items):
    return spark.createDataFrame([(i, t, float(v), DAY) for i, t, v in items], READINGS.struct())


def test_architecture_tables_are_declared_with_keys_and_partitions():
    for name in (
        "bronze/edge_batches",
        "bronze/edge_alarms",
        "bronze/device_health",
        "quarantine/rejected",
    ):
        spec = REGISTRY.get(name)
        assert spec.keys, name
        assert "date" in spec.partition_by
    assert catalog.EDGE_BATCHES.keys == ("batch_id", "metric")


def test_unknown_table_names_the_declared_ones():
    with pytest.raises(TableError, match="bronze/edge_batches"):
        REGISTRY.get("bronze/nope")


def test_conflicting_declarations_are_refused():
    registry = TableRegistry()
    registry.declare(READINGS)
    registry.declare(READINGS)
    with pytest.raises(TableError, match="declared twice"):
        registry.declare(TableSpec(name=READINGS.name, schema="id STRING"))


def test_create_on_first_use_has_the_declared_schema_and_partitions(spark, warehouse_root):
    for spec in REGISTRY:
        ensure_table(spark, warehouse_root, spec)
        df = read_table(spark, warehouse_root, spec)
        assert df.columns == spec.columns()
        detail = spark.sql(f"DESCRIBE DETAIL delta.`{spec.location(warehouse_root)}`").first()
        assert list(detail.partitionColumns) == list(spec.partition_by)


def test_append_merge_and_time_travel(spark, warehouse_root):
    append(spark, warehouse_root, READINGS, rows(spark, ("a", "t1", 1), ("b", "t1", 2)))
    merge_new_rows(spark, warehouse_root, READINGS, rows(spark, ("b", "t1", 99), ("c", "t2", 3)))
    current = {r.id: r.value for r in read_table(spark, warehouse_root, READINGS).collect()}
    assert current == {"a": 1.0, "b": 2.0, "c": 3.0}  # the existing key was not overwritten
    # Replaying the same merge changes nothing.
    merge_new_rows(spark, warehouse_root, READINGS, rows(spark, ("b", "t1", 99), ("c", "t2", 3)))
    assert read_table(spark, warehouse_root, READINGS).count() == 3
    # Version 0 is the creation, 1 the append: time travel sees the table as it was then.
    at_append = read_table(spark, warehouse_root, READINGS, version=1)
    assert sorted(r.id for r in at_append.collect()) == ["a", "b"]


def test_idempotent_merge_with_txn_version_is_skipped_on_replay(spark, warehouse_root):
    merge_new_rows(
        spark,
        warehouse_root,
        READINGS,
        rows(spark, ("a", "t1", 1)),
        app_id="loader-1",
        txn_version=7,
    )
    table = f"delta.`{READINGS.location(warehouse_root)}`"
    versions = spark.sql(f"DESCRIBE HISTORY {table}").count()
    merge_new_rows(
        spark,
        warehouse_root,
        READINGS,
        rows(spark, ("z", "t1", 1)),
        app_id="loader-1",
        txn_version=7,
    )
    assert spark.sql(f"DESCRIBE HISTORY {table}").count() == versions
    assert [r.id for r in read_table(spark, warehouse_root, READINGS).collect()] == ["a"]


def test_replace_partition_overwrites_only_that_partition(spark, warehouse_root):
    append(spark, warehouse_root, READINGS, rows(spark, ("a", "t1", 1), ("b", "t2", 2)))
    replace_partition(
        spark, warehouse_root, READINGS, rows(spark, ("x", "t1", 5)), where="tenant = 't1'"
    )
    replace_partition(
        spark, warehouse_root, READINGS, rows(spark, ("x", "t1", 5)), where="tenant = 't1'"
    )
    got = sorted((r.id, r.tenant) for r in read_table(spark, warehouse_root, READINGS).collect())
    assert got == [("b", "t2"), ("x", "t1")]


def test_schema_enforcement_rejects_a_wrong_column(spark, warehouse_root):
    from pyspark.errors import AnalysisException

    append(spark, warehouse_root, READINGS, rows(spark, ("a", "t1", 1)))
    wrong = rows(spark, ("b", "t1", 2)).withColumnRenamed("value", "valeu")
    with pytest.raises(AnalysisException):
        append(spark, warehouse_root, READINGS, wrong)
    with pytest.raises(TableError, match="valeu"):
        merge_new_rows(spark, warehouse_root, READINGS, wrong)
    assert read_table(spark, warehouse_root, READINGS).count() == 1


def test_a_table_path_escaping_the_root_is_refused(spark, warehouse_root):
    from edgebatch.warehouse.errors import StorageError

    evil = TableSpec(name="../outside", schema="id STRING")
    with pytest.raises(StorageError, match="escapes"):
        ensure_table(spark, warehouse_root, evil)


def test_a_key_already_held_under_another_partition_is_not_inserted_again(spark, warehouse_root):
    """A quarantined payload resent a day later keeps its id but lands under a new date."""
    spec = TableSpec(
        name="test/keyed_by_id_across_dates",
        schema="id STRING NOT NULL, tenant STRING NOT NULL, value DOUBLE, date DATE NOT NULL",
        partition_by=("tenant", "date"),
        keys=("id",),
    )
    later = DAY + dt.timedelta(days=1)
    first = spark.createDataFrame([("q1", "t1", 1.0, DAY)], spec.struct())
    again = spark.createDataFrame(
        [("q1", "t1", 1.0, later), ("q2", "t1", 2.0, later)], spec.struct()
    )
    merge_new_rows(spark, warehouse_root, spec, first)
    merge_new_rows(spark, warehouse_root, spec, again)
    got = sorted((r.id, r.date) for r in read_table(spark, warehouse_root, spec).collect())
    assert got == [("q1", DAY), ("q2", later)]


def test_driver_rows_become_a_frame_of_the_declared_schema_and_a_missing_value_is_named(spark):
    from decimal import Decimal

    money = TableSpec(
        name="gold/test_frame_money",
        schema="tenant STRING NOT NULL, day DATE NOT NULL, amount DECIMAL(14,2) NOT NULL, "
        "note STRING",
    )
    rows = [
        {"tenant": "t1", "day": dt.date(2026, 11, 1), "amount": Decimal("12.34")},
        {"tenant": "t2", "day": dt.date(2026, 11, 2), "amount": Decimal("0.05"), "note": "x"},
    ]

    df = frame(spark, money, rows)

    assert df.schema == money.struct()
    assert sorted(map(tuple, df.collect())) == [
        ("t1", dt.date(2026, 11, 1), Decimal("12.34"), None),
        ("t2", dt.date(2026, 11, 2), Decimal("0.05"), "x"),
    ]
    assert frame(spark, money, []).schema == money.struct()
    with pytest.raises(TableError, match=r"1 row\(s\) for 'gold/test_frame_money'.*'amount'"):
        frame(spark, money, [{"tenant": "t1", "day": dt.date(2026, 11, 1)}])


def test_driver_rows_with_timestamps_keep_their_instants(spark):
    stamped = TableSpec(name="gold/test_frame_stamped", schema="id STRING NOT NULL, at TIMESTAMP")
    noon = dt.datetime(2026, 11, 1, 12, 0)
    rows: list[dict[str, dt.datetime | str | None]] = [
        {"id": "naive", "at": noon},
        {"id": "aware", "at": noon.replace(tzinfo=dt.timezone(dt.timedelta(hours=2)))},
        {"id": "none", "at": None},
    ]

    df = frame(spark, stamped, rows)

    got = {r.id: r.epoch for r in df.selectExpr("id", "unix_seconds(at) AS epoch").collect()}
    utc_noon = int(noon.replace(tzinfo=dt.UTC).timestamp())
    assert got == {"naive": utc_noon, "aware": utc_noon - 2 * 3600, "none": None}


def test_a_table_older_than_its_declaration_is_refused_naming_the_missing_columns(
    spark, warehouse_root
):
    append(spark, warehouse_root, READINGS, rows(spark, ("a", "t1", 1)))
    grown = TableSpec(
        name=READINGS.name,
        schema=READINGS.schema + ", window_seconds INT NOT NULL, device_key BIGINT NOT NULL",
        partition_by=READINGS.partition_by,
        keys=READINGS.keys,
    )

    with pytest.raises(TableError, match="lacks the declared column.s. window_seconds, device_key"):
        read_table(spark, warehouse_root, grown)
    # its history stays readable as it was written
    assert read_table(spark, warehouse_root, grown, version=1).count() == 1
