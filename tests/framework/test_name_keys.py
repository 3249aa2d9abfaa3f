"""Grouping by integer name keys gives exactly what grouping by the names gives, and
gives way to the names when the keys cannot be trusted (a collision, a dictionary behind
its rows) instead of merging or dropping groups."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from edgebatch.framework.name_keys import NameKeys, group_by_keys, group_by_keys_to_arrow
from edgebatch.warehouse.tables import append, declare

DAY = dt.date(2026, 11, 2)
ROWS = declare(
    "silver/test_keyed",
    "tenant STRING NOT NULL, date DATE NOT NULL, device STRING NOT NULL, "
    "subject STRING NOT NULL, value BIGINT NOT NULL, "
    "device_key BIGINT NOT NULL, subject_key BIGINT NOT NULL",
    partition_by=("tenant", "date"),
)
NAMES = declare(
    "silver/test_keyed_names",
    "tenant STRING NOT NULL, device STRING NOT NULL, subject STRING NOT NULL, "
    "device_key BIGINT NOT NULL, subject_key BIGINT NOT NULL",
    partition_by=("tenant",),
)
KEYED = NameKeys(
    ROWS.name,
    NAMES.name,
    {"device_key": ("tenant", "device"), "subject_key": ("tenant", "subject")},
)
# (tenant, device, subject, values): the same device name under two tenants, a device
# that changed subject during the day, a subject with two devices
READINGS = [
    ("t1", "d1", "c1", (1, 2, 3)),
    ("t1", "d2", "c2", (10,)),
    ("t1", "d3", "c2", (7, 7)),
    ("t1", "d4", "c3", (5,)),
    ("t1", "d4", "c4", (6, 8)),
    ("t2", "d1", "c1", (100, 200)),
]


def _write(spark, root, collide: bool = False, drop_from_dictionary: str | None = None):
    """The rows with their keys, and the dictionary; `collide` gives d1 and d2 of t1 one
    device key, as a 64-bit collision would."""
    from pyspark.sql import functions as F

    rows = spark.createDataFrame(
        [(t, DAY, d, s, v) for t, d, s, values in READINGS for v in values],
        "tenant STRING, date DATE, device STRING, subject STRING, value BIGINT",
    )
    device_key = F.xxhash64("tenant", "device")
    if collide:
        device_key = F.when(F.col("device").isin("d1", "d2") & (F.col("tenant") == "t1"), 7)
        device_key = device_key.otherwise(F.xxhash64("tenant", "device")).cast("long")
    rows = rows.withColumns(
        {"device_key": device_key, "subject_key": F.xxhash64("tenant", "subject")}
    )
    append(spark, root, ROWS, rows.select(*ROWS.columns()))
    names = rows.select(*NAMES.columns()).distinct()
    if drop_from_dictionary:
        names = names.where(F.col("device") != drop_from_dictionary)
    append(spark, root, NAMES, names)


def _by_names(spark, root):
    from pyspark.sql import functions as F

    from edgebatch.warehouse.tables import read_table

    rows = read_table(spark, root, ROWS).where("value > 1")
    got = rows.groupBy("tenant", "device", "subject").agg(F.sum("value").alias("total"))
    return sorted(map(tuple, got.collect()))


def _by_keys(spark, root, grouping=group_by_keys):
    from pyspark.sql import functions as F

    from edgebatch.warehouse.tables import read_table

    rows = read_table(spark, root, ROWS).where("value > 1")
    return grouping(
        spark, root, KEYED, rows, ("tenant", "device", "subject"), (F.sum("value").alias("total"),)
    )


def test_grouping_by_keys_gives_the_groups_grouping_by_names_gives(spark, warehouse_root):
    _write(spark, warehouse_root)

    grouped = _by_keys(spark, warehouse_root)

    assert grouped is not None
    assert grouped.columns == ["tenant", "device", "subject", "total"]
    assert sorted(map(tuple, grouped.collect())) == _by_names(spark, warehouse_root)
    assert ("t2", "d1", "c1", 300) in grouped.collect()
    in_driver = _by_keys(spark, warehouse_root, group_by_keys_to_arrow)  # named in Arrow
    assert in_driver is not None
    assert in_driver.column_names == ["tenant", "device", "subject", "total"]
    assert sorted(zip(*in_driver.to_pydict().values(), strict=True)) == _by_names(
        spark, warehouse_root
    )


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ({"collide": True}, "device_key 7 stands for 2 names"),
        ({"drop_from_dictionary": "d3"}, "missing from the dictionary"),
    ],
)
@pytest.mark.parametrize("grouping", [group_by_keys, group_by_keys_to_arrow])
def test_untrustworthy_keys_give_way_to_the_names(
    spark, warehouse_root, caplog, case, why, grouping
):
    _write(spark, warehouse_root, **case)

    with caplog.at_level(logging.WARNING, logger="edgebatch.framework.name_keys"):
        grouped = _by_keys(spark, warehouse_root, grouping)

    assert grouped is None
    assert why in caplog.text


def test_keys_stand_in_only_for_groupings_that_hold_every_name(spark, warehouse_root):
    from pyspark.sql import functions as F

    from edgebatch.warehouse.tables import read_table

    _write(spark, warehouse_root)
    rows = read_table(spark, warehouse_root, ROWS)

    # without `device`, a device key would split what the grouping joins
    assert group_by_keys(spark, warehouse_root, KEYED, rows, ("tenant", "subject"),
                         (F.sum("value").alias("total"),)) is None  # fmt: skip
    # rows without the key columns (a table written before it had them)
    plain = rows.drop("device_key", "subject_key")
    assert group_by_keys(spark, warehouse_root, KEYED, plain, ("tenant", "device", "subject"),
                         (F.sum("value").alias("total"),)) is None  # fmt: skip
