"""Consent events for tests that write gold rows directly: the gate hides the rows of
subjects nobody granted, so a test that means "these customers' bills" grants them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

GRANTED_AT = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def grant(spark: Any, root: Any, tenant: str, subjects: Iterable[str]) -> None:
    """Append a `granted` event for each subject of `tenant` to `reference/consent`."""
    from edgebatch.warehouse.reference import CONSENT
    from edgebatch.warehouse.tables import ensure_table

    ensure_table(spark, root, CONSENT)
    rows = [(tenant, s, "granted", GRANTED_AT, "test") for s in subjects]
    spark.createDataFrame(rows, CONSENT.struct()).write.format("delta").mode("append").save(
        CONSENT.location(root)
    )


def register(
    spark: Any,
    root: Any,
    tenant: str,
    devices: dict[str, str],
    *,
    kind: str = "water_meter",
    subject_type: str = "customer",
    installed_on: dt.date = dt.date(2020, 1, 1),
) -> None:
    """Register each device (name -> subject) in `reference/devices` and grant its subject:
    what a device's readings need to pass the consent gate into silver."""
    from edgebatch.warehouse.reference import DEVICES
    from edgebatch.warehouse.tables import ensure_table

    ensure_table(spark, root, DEVICES)
    rows = [
        (tenant, device, None, kind, subject_type, subject, None, installed_on, None)
        for device, subject in devices.items()
    ]
    spark.createDataFrame(rows, DEVICES.struct()).write.format("delta").mode("append").save(
        DEVICES.location(root)
    )
    grant(spark, root, tenant, set(devices.values()))
