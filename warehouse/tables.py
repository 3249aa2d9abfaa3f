"""The table registry: every Delta table declared once, created on first use, written by key.

A `TableSpec` is a value (name, schema, partitioning, keys, properties); code that
reads or writes a table names the spec, never a path, so the location, the partition
columns and the merge keys cannot drift between the job that writes and the API that
reads. Delta enforces the schema on every write: a frame with a column the table does
not have, or a type it cannot take, is refused before anything is committed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from edgebatch.warehouse.errors import PartitionGuard, TableError
from edgebatch.warehouse.uri import WarehouseRoot

if TYPE_CHECKING:
    import pyarrow as pa
    from delta.tables import DeltaTable
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

# Some Delta options exist only as session confs, which every thread of a session shares:
# a MERGE's txnAppId/txnVersion, a commit's userMetadata, OPTIMIZE's file size. They are
# set in one place, `session_confs`, under this lock (re-entrant: a helper that holds it
# may call another that takes it).
_session_lock = threading.RLock()
_TXN_APP = "spark.databricks.delta.write.txnAppId"
_TXN_VERSION = "spark.databricks.delta.write.txnVersion"
_USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
_REPARTITION = "spark.databricks.delta.merge.repartitionBeforeWrite.enabled"

# Deletion vectors stay off: a table whose protocol lists them is refused by delta-rs
# (`deltalake`, the reader under Polars and pandas), and no job here deletes or updates
# rows (MERGEs insert, replaceWhere rewrites whole partitions), so they would buy nothing.
# A table that needs them says so in its own properties, and docs/tables.md names it.
_DEFAULT_PROPERTIES = {
    "delta.enableDeletionVectors": "false",
    "delta.checkpointInterval": "10",
}


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """One Delta table. `schema` is Spark DDL (`"id STRING NOT NULL, n BIGINT"`)."""

    name: str
    schema: str
    partition_by: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    properties: Mapping[str, str] = dataclasses.field(default_factory=dict)
    comment: str = ""
    # True when the key alone decides the partition (a row with a given key can only ever
    # be in one partition): a MERGE then looks for a load's keys in the load's partitions.
    key_fixes_partition: bool = False

    def struct(self) -> StructType:
        from pyspark.sql.types import StructType

        struct = StructType.fromDDL(self.schema)
        assert isinstance(struct, StructType)  # a column list always parses to a struct
        return struct

    def columns(self) -> list[str]:
        return [f.name for f in self.struct().fields]

    def location(self, root: WarehouseRoot) -> str:
        return root.qualified(self.name)


class TableRegistry:
    """Declared tables by name. `REGISTRY.get("bronze/edge_batches")`."""

    def __init__(self) -> None:
        self._specs: dict[str, TableSpec] = {}

    def declare(self, spec: TableSpec) -> TableSpec:
        existing = self._specs.get(spec.name)
        if existing is not None and existing != spec:
            raise TableError(f"table {spec.name!r} is declared twice with different definitions")
        self._specs[spec.name] = spec
        return spec

    def get(self, name: str) -> TableSpec:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(sorted(self._specs)) or "none"
            raise TableError(f"no table named {name!r} is declared (declared: {known})") from None

    def __iter__(self):
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    def __contains__(self, name: object) -> bool:
        return name in self._specs


REGISTRY = TableRegistry()


def declare(
    name: str,
    schema: str,
    *,
    partition_by: Iterable[str] = (),
    keys: Iterable[str] = (),
    properties: Mapping[str, str] | None = None,
    comment: str = "",
    key_fixes_partition: bool = False,
) -> TableSpec:
    """Declare a table in the project registry (idempotent for an identical definition)."""
    spec = TableSpec(
        name=name,
        schema=" ".join(schema.split()),
        partition_by=tuple(partition_by),
        keys=tuple(keys),
        properties={**_DEFAULT_PROPERTIES, **(properties or {})},
        comment=comment,
        key_fixes_partition=key_fixes_partition,
    )
    return REGISTRY.declare(spec)


@contextlib.contextmanager
def session_confs(spark: SparkSession, confs: Mapping[str, str | None]) -> Iterator[None]:
    """Session-wide Delta options for what runs inside, under the one lock, then restored.

    Only for options Delta takes from the session alone; everything else belongs on the
    writer. Other threads' Delta writes that need such options wait for the lock; their
    plain reads and writes do not.
    """
    with _session_lock:
        before = {key: spark.conf.get(key, None) for key in confs}
        try:
            _set_confs(spark, confs)
            yield
        finally:
            _set_confs(spark, before)


def _set_confs(spark: SparkSession, confs: Mapping[str, str | None]) -> None:
    """Set each option, or unset it where the value is None."""
    for key, value in confs.items():
        if value is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, value)


def delta_txn(
    spark: SparkSession,
    *,
    app_id: str | None = None,
    version: int | None = None,
    user_metadata: str | None = None,
) -> contextlib.AbstractContextManager[None]:
    """The options of one Delta commit that only the session carries, for the writes inside.

        with delta_txn(spark, app_id="edgebatch.bronze_load", version=42, user_metadata=tag):
            table.merge(...).whenNotMatchedInsertAll().execute()

    `app_id` and `version` make the commit an idempotent transaction (Delta skips a write
    whose version the table already holds for that application); `user_metadata` is
    stored in the commit, so a writer finds its own commit among concurrent ones.
    """
    if (app_id is None) != (version is None):
        raise TableError("a Delta transaction needs both app_id and version, or neither")
    confs: dict[str, str | None] = {}
    if app_id is not None:
        confs[_TXN_APP] = app_id
        confs[_TXN_VERSION] = str(version)
    if user_metadata is not None:
        confs[_USER_METADATA] = user_metadata
    return session_confs(spark, confs)


_known_tables: set[str] = set()


def forget_known_tables() -> None:
    """Ask Delta again about every table: for a process whose tables were deleted behind
    its back (a benchmark removing its outputs between timed runs)."""
    _known_tables.clear()


def ensure_tables(spark: SparkSession, root: WarehouseRoot, specs: Iterable[TableSpec]) -> None:
    """Create every table of `specs` that does not exist yet: readers of a declared table
    (an API, Polars, a silver job) never meet a missing one because nothing was written."""
    for spec in specs:
        if not is_known_table(root, spec):
            ensure_table(spark, root, spec)


def is_known_table(root: WarehouseRoot, spec: TableSpec) -> bool:
    """Whether this process has already seen `spec`'s table exist (no look at the log)."""
    return spec.location(root) in _known_tables


def ensure_table(spark: SparkSession, root: WarehouseRoot, spec: TableSpec) -> DeltaTable:
    """Create the table at its location if it does not exist yet; return it."""
    from delta.tables import DeltaTable

    location = spec.location(root)
    # A table this process has seen stays a table: skip asking Delta again (a load of
    # four tables asked four times, each a look at the log).
    if location in _known_tables or DeltaTable.isDeltaTable(spark, location):
        _known_tables.add(location)
        return DeltaTable.forPath(spark, location)
    builder = DeltaTable.createIfNotExists(spark).location(location).addColumns(spec.struct())
    if spec.partition_by:
        builder = builder.partitionedBy(*spec.partition_by)
    for key, value in spec.properties.items():
        builder = builder.property(key, value)
    if spec.comment:
        builder = builder.comment(spec.comment)
    table = builder.execute()
    _known_tables.add(location)
    return table


def frame(spark: SparkSession, spec: TableSpec, rows: Sequence[Mapping[str, Any]]) -> DataFrame:
    """Rows built in the driver (dicts by column name) as a DataFrame of `spec`'s schema,
    through Arrow (`arrow_rows`)."""
    if not rows:
        return spark.createDataFrame([], spec.struct())
    return spark.createDataFrame(arrow_rows(spec, rows))


def arrow_rows(spec: TableSpec, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows built in the driver (dicts by column name) as an Arrow table of `spec`'s
    schema (Spark's mapping of its types; needs a session to read the schema).

    Arrow, not Spark's row path: a year of bill lines (90,000 rows with decimals) took
    pickling and a type check per value over 3 s, Arrow a third of that. Columns the
    rows lack are null, and a null in a NOT NULL column is refused here, naming it. A
    TIMESTAMP value with a time zone is that instant; one without is taken as UTC (the
    warehouse's time zone), whatever the machine's.
    """
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = spec.struct()
    table = pa.Table.from_pylist(list(rows), schema=to_arrow_schema(schema, timezone="UTC"))
    for field in schema.fields:
        if not field.nullable and (nulls := table.column(field.name).null_count):
            raise TableError(
                f"{nulls} row(s) for {spec.name!r} have no value in NOT NULL column {field.name!r}"
            )
    return table


def read_table(
    spark: SparkSession, root: WarehouseRoot, spec: TableSpec, version: int | None = None
) -> DataFrame:
    """The table as a DataFrame, at `version` if given (Delta time travel).

    The current version must hold every declared column: a table created before a column
    was declared is refused here, by name, rather than failing later inside a job's plan
    (an old version read by time travel may lack them)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    df = reader.load(spec.location(root))
    missing = [c for c in spec.columns() if c not in df.columns] if version is None else []
    if missing:
        raise TableError(
            f"table {spec.name!r} at {spec.location(root)} lacks the declared column(s) "
            f"{', '.join(missing)}: it was created by an earlier version of its declaration; "
            "rebuild it (docs/tables.md, 'When a declaration changes')"
        )
    return df


def _conform(df: DataFrame, spec: TableSpec) -> DataFrame:
    """Order the frame's columns as the table's; refuse extra or missing non-null columns."""
    table_fields = {f.name: f for f in spec.struct().fields}
    extra = [c for c in df.columns if c not in table_fields]
    if extra:
        raise TableError(
            f"frame written to {spec.name!r} has column(s) {', '.join(extra)} that the table "
            f"does not declare (columns: {', '.join(table_fields)})"
        )
    from pyspark.sql import functions as F

    cols = []
    for name, field in table_fields.items():
        if name in df.columns:
            cols.append(F.col(name).cast(field.dataType).alias(name))
        elif not field.nullable:
            raise TableError(f"frame written to {spec.name!r} lacks NOT NULL column {name!r}")
        else:
            cols.append(F.lit(None).cast(field.dataType).alias(name))
    return df.select(*cols)


def merge_new_rows(
    spark: SparkSession,
    root: WarehouseRoot,
    spec: TableSpec,
    df: DataFrame,
    *,
    app_id: str | None = None,
    txn_version: int | None = None,
    partitions: Sequence[tuple[Any, ...]] | None = None,
    unique: bool = False,
    repartition: bool = True,
    user_metadata: str | None = None,
) -> int | None:
    """Insert the rows whose key the table does not hold yet (a replay changes nothing).

    With `app_id`/`txn_version` the MERGE is an idempotent Delta transaction: skipped if the
    table already committed that version for that application. MERGE takes these, and
    `user_metadata`, only from session confs, so they are set through `delta_txn`.

    By default the MERGE reads every file of the table and drops `df`'s repeated keys first.
    A caller that knows better says so: `partitions`, the values of the partition columns
    `df`'s rows go to (only for a table whose key fixes its partition), limits the reads
    to those, and a row outside them fails the MERGE before it commits (`PartitionGuard`);
    `unique` says no key repeats in `df`, which skips the dedup's shuffle of every row.
    `repartition=False` writes each task's rows where they fall instead of shuffling them
    by partition first (Delta's default): for sources whose tasks each span few partitions,
    such as landing files in arrival order, when no dedup shuffles them anyway.

    Returns the rows inserted, from the metrics row the MERGE itself returns (no history
    lookup, which would cost a Spark job and could pick up another writer's commit), or
    None when Delta skipped the MERGE: it then returns no row at all (seen here).
    """
    from pyspark.sql import functions as F

    from edgebatch.warehouse import pruning

    if not spec.keys:
        raise TableError(f"table {spec.name!r} declares no key columns; MERGE needs them")
    if partitions is not None and not (spec.key_fixes_partition and spec.partition_by):
        raise TableError(
            f"table {spec.name!r}: a MERGE limited to partitions needs a key that fixes "
            "the partition (key_fixes_partition)"
        )
    table = ensure_table(spark, root, spec)
    source = _conform(df, spec)
    if not unique:
        source = source.dropDuplicates(list(spec.keys))
        repartition = True  # the dedup's shuffle spreads every task over every partition
    # Keys alone, unless the partitions are known: `t.date = s.date` would prune no files
    # (Delta prunes only on conditions over the table alone, as literals), and on a table
    # whose key does not fix the partition would make a key seen on another date new.
    condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in spec.keys)
    merge_on = F.expr(condition)
    if partitions is not None:
        parts = list(spec.partition_by)
        source = pruning.guarded(source, parts, partitions)
        merge_on = merge_on & pruning.within(parts, partitions, prefix="t.")
    merge = table.alias("t").merge(source.alias("s"), merge_on).whenNotMatchedInsertAll()
    try:
        if app_id is None and user_metadata is None and repartition:
            return _inserted(merge.execute().collect())
        txn = delta_txn(spark, app_id=app_id, version=txn_version, user_metadata=user_metadata)
        with txn, session_confs(spark, {} if repartition else {_REPARTITION: "false"}):
            return _inserted(merge.execute().collect())
    except Exception as exc:
        if pruning.GUARD_MARK in str(exc):
            raise PartitionGuard(
                f"table {spec.name!r}: a row fell outside the partitions announced for "
                f"this MERGE; nothing was committed ({_first_line(exc)})"
            ) from exc
        raise


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def counted(df: DataFrame, name: str) -> tuple[Any, DataFrame]:
    """`df` with a Spark Observation counting its rows as the next action passes them:
    no second pass over the data and no history lookup afterwards."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    observation = Observation(name)
    return observation, df.observe(observation, F.count(F.lit(1)).alias("rows"))


def observed_count(observation: Any, wait_s: float = 5.0) -> int | None:
    """The rows `counted` saw, or None if its plan never ran within `wait_s` (Spark hands
    observed metrics over from its listener bus, a moment after the action; and a write
    Delta skipped never runs it, where `Observation.get` would block for good). Polled on
    the calling thread: a helper thread would open its own Py4J connection to the JVM."""
    try:
        future = observation._jo.future()
        deadline = time.monotonic() + wait_s
        while not future.isCompleted():
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.002)
        return int(observation.get.get("rows", 0))
    except Exception:  # a failed observation: the caller falls back on what it has
        return None


def _inserted(metrics: list) -> int | None:
    return int(metrics[0].num_inserted_rows) if metrics else None


def replace_partition(
    spark: SparkSession,
    root: WarehouseRoot,
    spec: TableSpec,
    df: DataFrame,
    where: str | None,
    *,
    user_metadata: str | None = None,
) -> None:
    """Overwrite exactly the rows matching `where` (Delta replaceWhere): idempotent.

    `where=None` replaces the whole table. `user_metadata` is stored in the commit, so
    the writer can find its own commit (and its row counts) among concurrent ones.
    """
    ensure_table(spark, root, spec)
    writer = _conform(df, spec).write.format("delta").mode("overwrite")
    if where is not None:
        writer = writer.option("replaceWhere", where)
    if user_metadata:
        writer = writer.option("userMetadata", user_metadata)
    writer.save(spec.location(root))


def append(
    spark: SparkSession,
    root: WarehouseRoot,
    spec: TableSpec,
    df: DataFrame,
    *,
    user_metadata: str | None = None,
) -> None:
    """Append with Delta's own schema enforcement (no silent column additions)."""
    ensure_table(spark, root, spec)
    writer = df.write.format("delta").mode("append")
    if user_metadata:
        writer = writer.option("userMetadata", user_metadata)
    writer.save(spec.location(root))


def commit_metrics(
    spark: SparkSession,
    root: WarehouseRoot,
    spec: TableSpec,
    user_metadata: str,
    *,
    depth: int = 50,
) -> dict[str, str] | None:
    """The operation metrics of the newest commit tagged `user_metadata`, if among the last
    `depth` commits (Delta keeps e.g. `numOutputRows` there: no recount of the data)."""
    from delta.tables import DeltaTable

    history = DeltaTable.forPath(spark, spec.location(root)).history(depth)
    rows = (
        history.where(history.userMetadata == user_metadata)
        .orderBy(history.version.desc())
        .select("operationMetrics")
        .limit(1)
        .collect()
    )
    return dict(rows[0].operationMetrics or {}) if rows else None
