"""The consent gate: silver and gold are read through here, or not at all.

Privacy by design, default deny. Every silver or gold table says, where it is
declared, whether its rows are about a subject (a customer, patient, vehicle, ...)
and in which columns (`subject_bearing`), or that they are not (`subject_free`).
`IterationContext.table` reads silver and gold only through `read_gated`, which keeps
the rows of subjects whose latest consent event is `granted` and refuses a silver or
gold table registered neither way. So a gold job gets consent for free, and a table
nobody thought about cannot leak.

A withdrawal takes effect twice: at once for readers (the gate), and on the next run
of `consent_erase` as a Delta DELETE in every subject-bearing table (`erase_denied`),
after which only the tables' history holds the rows, until VACUUM removes the files
older than the table's `delta.deletedFileRetentionDuration`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from edgebatch.framework.errors import FrameworkError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession

    from edgebatch.warehouse.uri import WarehouseRoot

log = logging.getLogger(__name__)
T = TypeVar("T")

GATED_LAYERS = ("silver/", "gold/")
_DELETE_CHUNK = 500


class ConsentGateError(FrameworkError):
    """A silver or gold table read or declared in a way the consent gate cannot vouch for."""


@dataclasses.dataclass(frozen=True)
class SubjectColumns:
    """Where a table's rows name their subject: `tenant` and `subject` column names."""

    table: str
    subject: str = "subject"
    tenant: str = "tenant"


_SUBJECT_BEARING: dict[str, SubjectColumns] = {}
_SUBJECT_FREE: dict[str, str] = {}


def subject_bearing(table: str, *, subject: str = "subject", tenant: str = "tenant") -> None:
    """Register `table` as holding rows about subjects, named by these columns.

    Readers see only consented subjects' rows; `consent_erase` deletes the others.
    A gold job declares its table and then calls this once, next to `declare(...)`.
    """
    _check_gated(table)
    cols = SubjectColumns(table, subject, tenant)
    if _SUBJECT_FREE.get(table) is not None or _SUBJECT_BEARING.get(table, cols) != cols:
        raise ConsentGateError(f"table {table!r} is registered twice with different subjects")
    _SUBJECT_BEARING[table] = cols


def subject_free(table: str, why: str) -> None:
    """Register `table` as holding no subject's data (`why` is shown in the docs and logs)."""
    _check_gated(table)
    if table in _SUBJECT_BEARING:
        raise ConsentGateError(f"table {table!r} is already registered as subject-bearing")
    _SUBJECT_FREE[table] = why


def subject_tables() -> list[SubjectColumns]:
    """Every registered subject-bearing table (those of imported job modules)."""
    return [_SUBJECT_BEARING[name] for name in sorted(_SUBJECT_BEARING)]


def is_gated(table: str) -> bool:
    return table.startswith(GATED_LAYERS)


def _check_gated(table: str) -> None:
    if not is_gated(table):
        raise ConsentGateError(
            f"table {table!r} is not in silver/ or gold/: only those pass the consent gate"
        )


def consent_status(spark: SparkSession, root: WarehouseRoot) -> DataFrame:
    """(tenant, subject, status): each subject's latest consent event (a tie: withdrawn)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from edgebatch.warehouse.reference import CONSENT
    from edgebatch.warehouse.tables import ensure_table, read_table

    ensure_table(spark, root, CONSENT)
    events = read_table(spark, root, CONSENT)
    latest = Window.partitionBy("tenant", "subject").orderBy(
        F.col("at").desc(), F.col("status").desc()
    )
    return (
        events.withColumn("_n", F.row_number().over(latest))
        .where("_n = 1")
        .select("tenant", "subject", "status")
    )


def consented(spark: SparkSession, root: WarehouseRoot) -> DataFrame:
    """(tenant, subject) pairs whose latest consent event is `granted`: who may be read."""
    return consent_status(spark, root).where("status = 'granted'").select("tenant", "subject")


def consented_pairs(spark: SparkSession, root: WarehouseRoot) -> frozenset[tuple[str, str]]:
    """`consented` collected into the driver, once per version of the consent table in
    this process (`warehouse.reference.held_per_version`): for jobs that gate a few
    reference rows in Python rather than joining in Spark."""
    from edgebatch.warehouse.reference import CONSENT, held_per_version

    return held_per_version(
        CONSENT.location(root),
        "consented",
        lambda: frozenset((r.tenant, r.subject) for r in consented(spark, root).collect()),
    )


def read_gated(spark: SparkSession, root: WarehouseRoot, table: str) -> DataFrame:
    """A silver or gold table with only consented subjects' rows (the only way jobs read them)."""
    cols, df = _registered(spark, root, table)
    return df if cols is None else _gate(spark, root, df, cols)


def aggregate_gated(
    spark: SparkSession,
    root: WarehouseRoot,
    table: str,
    by: Sequence[str],
    aggregates: Sequence[Column],
    where: Sequence[Column | str] = (),
) -> DataFrame:
    """`table`'s rows matching `where`, grouped by `by` and the subject's columns, with
    `aggregates`, and only the groups of consented subjects.

    The same rows as aggregating `read_gated(table)`, for less: a group never mixes
    subjects, so gating the groups gates the rows, and the gate's join probes once per
    group instead of once per row (a year of windows: a few hundred thousand groups, not
    seventy million rows). Spark pushes a semi join below an aggregate on its keys, so
    the groups are checkpointed first (a local checkpoint: held by the executors, never
    written to the warehouse) and the gate applies to them. The groups are computed
    when this returns: the checkpoint runs the aggregation. A table with integer name
    keys (`framework.name_keys`, silver/readings) is grouped by its keys, not by the
    strings, and the groups named from its dictionary before the gate.
    """
    from edgebatch.framework.name_keys import group_by_keys

    cols, groups = _groups(
        spark, root, table, by, aggregates, where,
        by_keys=group_by_keys, finish=lambda g: g.localCheckpoint(eager=True),
    )  # fmt: skip
    return groups if cols is None else _gate(spark, root, groups, cols)


def aggregate_gated_to_arrow(
    spark: SparkSession,
    root: WarehouseRoot,
    table: str,
    by: Sequence[str],
    aggregates: Sequence[Column],
    where: Sequence[Column | str] = (),
) -> pa.Table:
    """`aggregate_gated`'s groups collected into the driver as an Arrow table, named and
    gated there: the same groups, for a job that works on them in Python (the naming
    and the gate are joins of a few hundred thousand groups with a few thousand names
    and consented subjects, which Spark ran as half a dozen small jobs).

    The consented subjects are `consented_pairs` (held per version of the consent
    table); the gate keeps the groups whose tenant and subject are among them."""
    from edgebatch.framework.name_keys import group_by_keys_to_arrow

    cols, groups = _groups(
        spark, root, table, by, aggregates, where,
        by_keys=group_by_keys_to_arrow, finish=lambda g: g.toArrow(),
    )  # fmt: skip
    return groups.toArrow() if cols is None else _gate_arrow(spark, root, groups, cols)


def _gate_arrow(spark: SparkSession, root: WarehouseRoot, groups: pa.Table, cols: SubjectColumns):
    import pyarrow as pa

    pairs = consented_pairs(spark, root)
    allowed = pa.table(
        {
            cols.tenant: pa.array([t for t, _ in pairs], groups.schema.field(cols.tenant).type),
            cols.subject: pa.array([s for _, s in pairs], groups.schema.field(cols.subject).type),
        }
    )
    return groups.join(allowed, [cols.tenant, cols.subject], join_type="left semi")


def _groups(
    spark: SparkSession,
    root: WarehouseRoot,
    table: str,
    by: Sequence[str],
    aggregates: Sequence[Column],
    where: Sequence[Column | str],
    *,
    by_keys: Callable[..., T | None],
    finish: Callable[[DataFrame], T],
) -> tuple[SubjectColumns | None, Any]:
    """The table's subject columns and its groups, ungated. A subject-free table: None
    and the grouping as a plan. A subject-bearing one: its subject's columns join `by`,
    and the groups come `by_keys` (grouped by the table's integer name keys,
    `framework.name_keys`, and named) where it can, else grouped by the names and
    `finish`ed (checkpointed, collected) the same way."""
    from edgebatch.framework.name_keys import name_keys

    cols, df = _registered(spark, root, table, where)
    if cols is None:
        return None, df.groupBy(*by).agg(*aggregates)
    keys = list(dict.fromkeys([*by, cols.tenant, cols.subject]))
    spec = name_keys(table)
    groups = None if spec is None else by_keys(spark, root, spec, df, keys, aggregates)
    if groups is None:
        groups = finish(df.groupBy(*keys).agg(*aggregates))
    return cols, groups


def _registered(
    spark: SparkSession, root: WarehouseRoot, table: str, where: Sequence[Column | str] = ()
) -> tuple[SubjectColumns | None, DataFrame]:
    """The table's subject columns (None: subject-free) and its rows matching `where`,
    ungated."""
    from edgebatch.warehouse.tables import REGISTRY, read_table

    cols = _SUBJECT_BEARING.get(table)
    if cols is None and table not in _SUBJECT_FREE:
        raise ConsentGateError(
            f"table {table!r} is registered neither as subject-bearing nor as subject-free: "
            "call edgebatch.framework.consent.subject_bearing(table, subject=COLUMN) or "
            "subject_free(table, why) where the table is declared"
        )
    df = read_table(spark, root, REGISTRY.get(table))
    for condition in where:
        df = df.where(condition)
    return cols, df


def _gate(spark: SparkSession, root: WarehouseRoot, df: DataFrame, cols: SubjectColumns):
    allowed = consented(spark, root).withColumnsRenamed(
        {"tenant": cols.tenant, "subject": cols.subject}
    )
    return df.join(allowed, [cols.tenant, cols.subject], "left_semi")


def gate_device_rows(
    spark: SparkSession, root: WarehouseRoot, rows: DataFrame, devices: DataFrame, subject: str
) -> DataFrame:
    """Rows that skip silver (bronze alarms: `tenant`, `device`, `date`) gated as silver
    gates windows: only those of a device registered that day (a row of `devices`, the
    registry) to a subject whose consent stands, with that subject as column `subject`."""
    from pyspark.sql import functions as F

    r, d = rows.alias("r"), devices.alias("d")
    registered = r.join(
        d,
        (F.col("r.tenant") == F.col("d.tenant"))
        & (F.col("r.device") == F.col("d.device"))
        & (F.col("r.date") >= F.col("d.installed_on"))
        & (F.col("d.removed_on").isNull() | (F.col("r.date") < F.col("d.removed_on"))),
    ).select("r.*", F.col("d.subject").alias(subject))
    allowed = consented(spark, root).withColumnRenamed("subject", subject)
    return registered.join(allowed, ["tenant", subject], "left_semi")


def erase_denied(spark: SparkSession, root: WarehouseRoot) -> dict[str, int]:
    """Delete, in every subject-bearing table, the rows of subjects without consent now.

    Returns rows deleted per table. The subjects to delete are found per table (its
    subjects minus the consented ones) and deleted by a literal condition, in chunks, so
    the DELETE is a plain Delta DELETE every Delta version runs.
    """
    from delta.tables import DeltaTable

    from edgebatch.warehouse.tables import REGISTRY, read_table, session_confs

    allowed = consented(spark, root)
    deleted: dict[str, int] = {}
    for cols in subject_tables():
        spec = REGISTRY.get(cols.table)
        if not DeltaTable.isDeltaTable(spark, spec.location(root)):
            continue
        present = read_table(spark, root, spec).select(
            _col(cols.tenant).alias("tenant"), _col(cols.subject).alias("subject")
        )
        denied = present.distinct().join(allowed, ["tenant", "subject"], "left_anti").collect()
        total = 0
        table = DeltaTable.forPath(spark, spec.location(root))
        for start in range(0, len(denied), _DELETE_CHUNK):
            chunk = denied[start : start + _DELETE_CHUNK]
            condition = " OR ".join(
                f"(`{cols.tenant}` = {_sql_str(r.tenant)} AND `{cols.subject}` = "
                f"{_sql_str(r.subject)})"
                for r in chunk
            )
            with session_confs(
                spark, {"spark.databricks.delta.commitInfo.userMetadata": "edgebatch:consent_erase"}
            ):
                table.delete(condition)
            metrics = table.history(1).select("operationMetrics").first()
            ops = (metrics.operationMetrics if metrics else None) or {}
            total += int(ops.get("numDeletedRows", 0))
        if denied:
            log.info(
                "consent: deleted %d rows of %d subject(s) without consent from %s",
                total,
                len(denied),
                cols.table,
            )
        deleted[cols.table] = total
    return deleted


def _col(name: str):
    from pyspark.sql import functions as F

    return F.col(f"`{name}`")


def _sql_str(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
