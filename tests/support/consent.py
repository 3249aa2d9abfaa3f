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
