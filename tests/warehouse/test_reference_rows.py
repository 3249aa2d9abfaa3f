"""A warm driver holds small reference tables' rows per Delta version: the same rows
while the version holds, the new ones as soon as a commit makes a new version."""

from __future__ import annotations

import datetime as dt

import pytest

from edgebatch.framework.consent import consented_pairs
from edgebatch.warehouse.catalog import EDGE_BATCHES
from edgebatch.warehouse.errors import TableError
from edgebatch.warehouse.reference import CONSENT, DEVICES, reference_rows, table_version
from edgebatch.warehouse.tables import append, frame

JAN = dt.date(2026, 1, 1)


def device(name: str, subject: str) -> dict:
    return {
        "tenant": "t", "device": name, "kind": "water_meter", "subject_type": "customer",
        "subject": subject, "installed_on": JAN,
    }  # fmt: skip


def consent(subject: str, status: str, hour: int) -> dict:
    return {
        "tenant": "t",
        "subject": subject,
        "status": status,
        "at": dt.datetime(2026, 1, 1, hour),
    }


def test_rows_are_read_again_only_when_the_table_has_a_new_version(spark, warehouse_root):
    assert reference_rows(spark, warehouse_root, DEVICES) == ()  # no table yet: created, empty
    append(spark, warehouse_root, DEVICES, frame(spark, DEVICES, [device("m1", "c1")]))
    first = reference_rows(spark, warehouse_root, DEVICES)
    assert [r.device for r in first] == ["m1"]
    assert reference_rows(spark, warehouse_root, DEVICES) is first  # same version: held

    append(spark, warehouse_root, DEVICES, frame(spark, DEVICES, [device("m2", "c2")]))
    assert table_version(DEVICES.location(warehouse_root))[0] == 2  # type: ignore[index]  # created, then two commits
    assert sorted(r.device for r in reference_rows(spark, warehouse_root, DEVICES)) == [
        "m1",
        "m2",
    ]


def test_only_reference_tables_are_read_this_way(spark, warehouse_root):
    with pytest.raises(TableError, match="not a reference table"):
        reference_rows(spark, warehouse_root, EDGE_BATCHES)


def test_the_consented_set_follows_the_consent_tables_versions(spark, warehouse_root):
    grants = [consent("c1", "granted", 1), consent("c2", "granted", 1)]
    append(spark, warehouse_root, CONSENT, frame(spark, CONSENT, grants))
    assert consented_pairs(spark, warehouse_root) == {("t", "c1"), ("t", "c2")}

    withdrawal = frame(spark, CONSENT, [consent("c2", "withdrawn", 2)])
    append(spark, warehouse_root, CONSENT, withdrawal)
    assert consented_pairs(spark, warehouse_root) == {("t", "c1")}
