"""Reference data: which device belongs to whom, what water costs, who consented.

Declared here, beside the contract's tables, because both jobs (the reference load,
silver) and the framework's consent gate read them. They are small, loaded whole from
CSV per tenant (`jobs/reference_load.py`), and partitioned by tenant so one tenant's
reload never touches another's rows. Money is DECIMAL, never DOUBLE.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from edgebatch.warehouse.errors import TableError
from edgebatch.warehouse.tables import TableSpec, declare

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

    from edgebatch.warehouse.uri import WarehouseRoot

T = TypeVar("T")

# Who a device's readings are about. Every kind needs consent (default deny): for a
# bottling line or a traffic route the tenant itself grants it.
SUBJECT_TYPES = ("customer", "patient", "vehicle", "line", "user", "route")
DEVICE_KINDS = (
    "water_meter",
    "patient_monitor",
    "vehicle",
    "bottling_line",
    "fitness_tracker",
    "traffic_counter",
)
CONSENT_STATUSES = ("granted", "withdrawn")

DEVICES = declare(
    "reference/devices",
    """
    tenant STRING NOT NULL, device STRING NOT NULL, site STRING, kind STRING NOT NULL,
    subject_type STRING NOT NULL, subject STRING NOT NULL, tariff_class STRING,
    installed_on DATE NOT NULL, removed_on DATE
    """,
    partition_by=("tenant",),
    keys=("tenant", "device", "installed_on"),
    comment="Device registry: a device's tenant, site, kind and subject from installed_on "
    "(included) to removed_on (excluded; null while installed).",
)

TARIFFS = declare(
    "reference/tariffs",
    """
    tenant STRING NOT NULL, tariff_class STRING NOT NULL, valid_from DATE NOT NULL,
    valid_to DATE, tier INT NOT NULL, tier_from DECIMAL(18,3) NOT NULL,
    unit STRING NOT NULL, unit_price DECIMAL(18,6) NOT NULL,
    fixed_fee DECIMAL(18,2) NOT NULL, currency STRING NOT NULL
    """,
    partition_by=("tenant",),
    keys=("tenant", "tariff_class", "valid_from", "tier"),
    comment="Tiered tariffs per class, valid from valid_from (included) to valid_to "
    "(excluded; null: open). A tier prices consumption from tier_from up to the next tier.",
)

CONSENT = declare(
    "reference/consent",
    """
    tenant STRING NOT NULL, subject STRING NOT NULL, status STRING NOT NULL,
    at TIMESTAMP NOT NULL, source STRING
    """,
    partition_by=("tenant",),
    keys=("tenant", "subject", "at"),
    comment="Consent events per tenant and subject; the latest event decides.",
)

REFERENCE_TABLES: tuple[TableSpec, ...] = (DEVICES, TARIFFS, CONSENT)

# -- water billing: who a customer is (name, bill language) and what a site can supply.
BILL_LANGUAGES = ("en", "de", "es")

CUSTOMERS = declare(
    "reference/customers",
    """
    tenant STRING NOT NULL, customer STRING NOT NULL, name STRING NOT NULL,
    language STRING NOT NULL
    """,
    partition_by=("tenant",),
    keys=("tenant", "customer"),
    comment="Customers as printed on their bills: name, and the bill's language (en, de, es).",
)

SITES = declare(
    "reference/sites",
    """
    tenant STRING NOT NULL, site STRING NOT NULL, name STRING,
    capacity_m3_per_day DECIMAL(14,3) NOT NULL
    """,
    partition_by=("tenant",),
    keys=("tenant", "site"),
    comment="Supply sites and the water they can supply per day (m3), for the demand trend.",
)

REFERENCE_TABLES += (CUSTOMERS, SITES)
# -- end water billing


def read_reference(spark: SparkSession, root: WarehouseRoot, spec: TableSpec) -> DataFrame:
    """A reference table, refusing any other: jobs read silver and gold only through the
    consent gate, so a direct reader takes reference tables alone."""
    from edgebatch.warehouse.tables import read_table

    if spec not in REFERENCE_TABLES:
        raise TableError(f"{spec.name!r} is not a reference table ({_names()})")
    return read_table(spark, root, spec)


def reference_rows(spark: SparkSession, root: WarehouseRoot, spec: TableSpec) -> tuple[Row, ...]:
    """A reference table's rows, collected once per Delta version in this process (a
    tuple: every caller gets the same rows).

    Reference tables are small and change seldom, and a warm driver reads the same ones
    for run after run: a billing year read five of them, ten small Spark jobs beside its
    scan on two cores."""
    from edgebatch.warehouse.tables import ensure_table, read_table

    if spec not in REFERENCE_TABLES:
        raise TableError(f"{spec.name!r} is not a reference table ({_names()})")

    def collect() -> tuple[Row, ...]:
        ensure_table(spark, root, spec)  # a reader never meets a missing reference table
        return tuple(read_table(spark, root, spec).collect())

    return held_per_version(spec.location(root), "rows", collect)


def held_per_version(location: str, what: str, read: Callable[[], T]) -> T:
    """`read()`'s result for the table at `location`, kept in this process while the table
    keeps its version: read again only after a commit.

    The version comes from the table's log (delta-rs, no Spark job). Where the log cannot
    be read that way, `read()` runs every time. `what` tells apart several things held
    for one table."""
    version = table_version(location)
    with _held_lock:
        kept = _held.get((location, what))
    if kept is not None and version is not None and kept[0] == version:
        return kept[1]
    value = read()
    if version is not None:
        # A commit between the version's look and the read only makes the next call read
        # again: the version it sees is newer than the one kept.
        with _held_lock:
            _held[(location, what)] = (version, value)
    return value


def table_version(location: str) -> tuple[int, int] | None:
    """The table's current version and that commit's time (ms) from its log, or None
    where delta-rs cannot tell. The time tells a table removed and created again at the
    same place, whose versions start over, from the one whose rows are held."""
    try:
        from deltalake import DeltaTable

        table = DeltaTable(location)
        commits = table.history(limit=1)
        return int(table.version()), (int(commits[0]["timestamp"]) if commits else 0)
    except Exception:  # no table yet, or a store delta-rs cannot reach: no caching
        return None


_held: dict[tuple[str, str], tuple[tuple[int, int], Any]] = {}
_held_lock = threading.Lock()


def _names() -> str:
    return ", ".join(s.name for s in REFERENCE_TABLES)


# --- Special-event days (traffic): a fair, a match, a holiday that changes a route's
# traffic. `routes` is `all` or the routes it affects, separated by `;` (kept as the CSV
# has it, so a reader sees the file's own words).
EVENTS = declare(
    "reference/events",
    """
    tenant STRING NOT NULL, date DATE NOT NULL, name STRING NOT NULL, routes STRING NOT NULL
    """,
    partition_by=("tenant",),
    keys=("tenant", "date", "name"),
    comment="Special-event days per tenant: the date, the event's name and the routes it "
    "affects ('all', or route names separated by ';').",
)
EVENT_ALL_ROUTES = "all"
REFERENCE_TABLES += (EVENTS,)
# -- production batches (bottling OEE, jobs/oee.py) ----------------------------------------
BATCHES = declare(
    "reference/batches",
    """
    tenant STRING NOT NULL, line STRING NOT NULL, batch STRING NOT NULL, product STRING,
    planned_start TIMESTAMP NOT NULL, planned_end TIMESTAMP NOT NULL,
    ideal_rate DOUBLE NOT NULL
    """,
    partition_by=("tenant",),
    keys=("tenant", "batch"),
    comment="Production batches per line (a device of kind bottling_line): planned from "
    "planned_start (included) to planned_end (excluded), at ideal_rate bottles per minute.",
)
REFERENCE_TABLES += (BATCHES,)
