"""Copy one partition of a Delta (gold) table into a PostgreSQL table over JDBC, for BI tools.

Idempotent per partition: Spark writes the partition into a staging table of its own,
then one database transaction deletes the partition's rows from the target, inserts the
staged rows and drops the staging table. Readers see the old rows or the new ones, never a
mix; a failure while staging or swapping leaves the target as it was; a rerun of the same
partition leaves the target identical. An advisory lock keyed on the target and partition
serialises the swaps of two sinks of the same partition; each stages into a table of its
own, dropped by the swap or, after a failure, right away.

Throttled: a busy database is not flooded. Rows reach the JDBC writer through a Python
pacer per Spark partition (`connections` of them, each allowed `rows_per_second /
connections`), which never lets a connection run ahead of its budget: at any moment the
rows released are at most the budget times the elapsed time. The JDBC writer
sends them as `batch_size`-row batches (`batchsize`), over `connections` connections
(`numPartitions`). Spark's JDBC options alone bound the batch and the connections but not
the rate, hence the pacer.

    sink = JdbcSink(JdbcTarget.from_settings(settings, "bi", "gold/water_bills"))
    result = sink.write_partition(df, {"tenant": "acme", "month": "2026-11"})
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from edgebatch.framework.errors import FrameworkError
from edgebatch.settings import DatabaseSinkSettings, Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

JDBC_DRIVER = "org.postgresql.Driver"
T = TypeVar("T")


class SinkError(FrameworkError):
    """A database sink could not be configured or could not write; the message says which."""


@dataclasses.dataclass(frozen=True)
class JdbcTarget:
    """Where one Delta table goes: the database, the target table and the throttle."""

    url: str
    user: str
    password: str
    table: str
    rows_per_second: float = 5000.0
    batch_size: int = 1000
    connections: int = 2

    @classmethod
    def from_settings(cls, settings: Settings, database: str, source_table: str) -> JdbcTarget:
        """`source_table`'s target in `[sinks.databases.DATABASE]`; errors name key and file."""
        where = f"[sinks.databases.{database}] of {settings.source}"
        db: DatabaseSinkSettings | None = settings.sinks.databases.get(database)
        if db is None:
            known = ", ".join(sorted(settings.sinks.databases)) or "none"
            raise SinkError(
                f"no database {database!r} in [sinks.databases] of {settings.source} "
                f"(databases: {known})"
            )
        if source_table not in db.tables:
            raise SinkError(
                f"key 'tables' in {where} maps no target for {source_table!r}: add "
                f'"{source_table}" = "schema.table"'
            )
        password = db.password
        if not password and db.password_env:
            if db.password_env not in os.environ:
                raise SinkError(
                    f"key 'password_env' in {where} names {db.password_env!r}, "
                    "which is not set in the environment"
                )
            password = os.environ[db.password_env]
        return cls(
            url=db.url,
            user=db.user,
            password=password,
            table=db.tables[source_table],
            rows_per_second=db.rows_per_second,
            batch_size=db.batch_size,
            connections=db.connections,
        )


@dataclasses.dataclass(frozen=True)
class SinkResult:
    """What one partition's write did: rows replaced and inserted, and how fast it went."""

    table: str
    partition: dict[str, Any]
    deleted: int
    inserted: int
    stage_seconds: float
    swap_seconds: float

    @property
    def rows_per_second(self) -> float:
        """The rate the staging write reached (what the throttle bounds)."""
        return self.inserted / self.stage_seconds if self.stage_seconds > 0 else 0.0


def paced(chunks: Iterable[T], rows_per_second: float, size: Callable[[T], int]) -> Iterator[T]:
    """Yield `chunks` (each of `size(chunk)` rows), holding each back until the budget allows.

    The chunk that brings the count to n rows leaves no sooner than n / rate seconds after
    the start, so at any time the rows released are at most rate x elapsed: the measured
    rate over any whole write is at or below the limit. Pure, so it is tested alone.
    """
    start = time.monotonic()
    sent = 0
    for chunk in chunks:
        sent += size(chunk)
        _wait_until(start + sent / rows_per_second)
        yield chunk


def paced_rows(rows: Iterable[Any], rows_per_second: float, batch: int) -> Iterator[Any]:
    """Rows in lists of `batch`, paced, then one by one: what each Spark partition runs."""

    def lists() -> Iterator[list[Any]]:
        pending: list[Any] = []
        for row in rows:
            pending.append(row)
            if len(pending) >= batch:
                yield pending
                pending = []
        if pending:
            yield pending

    for chunk in paced(lists(), rows_per_second, len):
        yield from chunk


def _wait_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)


class JdbcSink:
    """Writes partitions of a DataFrame to `target.table`; see the module docstring."""

    def __init__(self, target: JdbcTarget) -> None:
        self.target = target

    def write_partition(self, df: DataFrame, partition: Mapping[str, Any]) -> SinkResult:
        """Replace the target's rows of `partition` with `df`'s rows of it, in one transaction."""
        if not partition:
            raise SinkError("a partition to write needs at least one column = value")
        missing = [c for c in partition if c not in df.columns]
        if missing:
            raise SinkError(
                f"partition column(s) {missing} are not columns of the table to write to "
                f"{self.target.table} (columns: {', '.join(df.columns)})"
            )
        from pyspark.sql import functions as F

        terms = [F.col(column) == F.lit(value) for column, value in partition.items()]
        cond = terms[0]
        for term in terms[1:]:
            cond = cond & term
        rows = df.where(cond)
        stage = self._stage_name(partition)
        spark = df.sparkSession
        started = time.monotonic()
        try:
            self._stage(rows, stage)
            staged = time.monotonic()
            deleted, inserted = self._swap(spark, stage, list(df.columns), partition)
        except BaseException:
            self._drop_quietly(spark, stage)
            raise
        return SinkResult(
            table=self.target.table,
            partition=dict(partition),
            deleted=deleted,
            inserted=inserted,
            stage_seconds=staged - started,
            swap_seconds=time.monotonic() - staged,
        )

    def _stage_name(self, partition: Mapping[str, Any]) -> str:
        """A staging table of this write alone: two writes of one partition never share one."""
        key = repr(sorted((k, str(v)) for k, v in partition.items())).encode()
        digest = hashlib.sha1(key).hexdigest()[:8]
        schema, _, table = self.target.table.rpartition(".")
        name = f"{table[:36]}__stage_{digest}_{uuid.uuid4().hex[:8]}"
        return f"{schema}.{name}" if schema else name

    def _drop_quietly(self, spark: SparkSession, stage: str) -> None:
        """After a failure: the staging table is of no use; a failure to drop it hides nothing."""
        try:
            with _connection(spark, self.target) as conn:
                _execute(conn, f"DROP TABLE IF EXISTS {stage}")
        except Exception:  # the original failure is what the caller must see
            pass

    def _stage(self, rows: DataFrame, stage: str) -> None:
        t = self.target
        out = rows.repartition(t.connections)
        if t.rows_per_second > 0:
            per_conn = t.rows_per_second / t.connections
            batch = t.batch_size

            def pace(part: Iterable[Any]) -> Iterator[Any]:
                return paced_rows(part, per_conn, batch)

            # Rows go through Python to be paced (mapInArrow would be cheaper but needs
            # pandas installed); a limit above what that path reaches is simply not hit.
            out = rows.sparkSession.createDataFrame(out.rdd.mapPartitions(pace), rows.schema)
        (
            out.write.format("jdbc")
            .option("url", t.url)
            .option("driver", JDBC_DRIVER)
            .option("dbtable", stage)
            .option("user", t.user)
            .option("password", t.password)
            .option("batchsize", str(t.batch_size))
            .option("numPartitions", str(t.connections))
            .option("isolationLevel", "READ_COMMITTED")
            # The driver sends a batch as multi-row INSERTs: fewer statements, same rows.
            .option("reWriteBatchedInserts", "true")
            .mode("overwrite")
            .save()
        )

    def _swap(
        self, spark: SparkSession, stage: str, columns: list[str], partition: Mapping[str, Any]
    ) -> tuple[int, int]:
        t = self.target
        cols = ", ".join(_quote(c) for c in columns)
        where = " AND ".join(f"{_quote(c)} = ?" for c in partition)
        # Keyed on the target and the partition, not the staging table: two writes of the
        # same partition swap one after the other.
        lock_key = int(
            hashlib.sha1(f"{t.table}{sorted(partition.items())}".encode()).hexdigest()[:15], 16
        )
        with _connection(spark, t) as conn:
            conn.setAutoCommit(False)
            try:
                _execute(conn, f"SELECT pg_advisory_xact_lock({lock_key})")
                _execute(conn, f"CREATE TABLE IF NOT EXISTS {t.table} (LIKE {stage})")
                values = [_jdbc_value(spark, v) for v in partition.values()]
                deleted = _execute(conn, f"DELETE FROM {t.table} WHERE {where}", values)
                inserted = _execute(
                    conn, f"INSERT INTO {t.table} ({cols}) SELECT {cols} FROM {stage}"
                )
                _execute(conn, f"DROP TABLE {stage}")
                conn.commit()
            except Exception as exc:
                conn.rollback()
                raise SinkError(
                    f"replacing partition {dict(partition)} of {t.table} failed, "
                    f"the table is unchanged: {_first_line(exc)}"
                ) from exc
        return deleted, inserted


class _Connection:
    """A JDBC connection in the driver's JVM (the same driver jar the writer uses)."""

    def __init__(self, spark: SparkSession, target: JdbcTarget) -> None:
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        props = jvm.java.util.Properties()
        props.setProperty("user", target.user)
        if target.password:
            props.setProperty("password", target.password)
        try:
            driver = jvm.org.postgresql.Driver()
        except Exception as exc:
            raise SinkError(
                f"the PostgreSQL JDBC driver is not on Spark's classpath ({_first_line(exc)}): "
                "run `make jars` (it fills .cache/jars/jdbc, which spark.jars names)"
            ) from exc
        try:
            self.conn = driver.connect(target.url, props)
        except Exception as exc:
            raise SinkError(f"cannot connect to {target.url}: {_first_line(exc)}") from exc

    def __enter__(self) -> Any:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def _connection(spark: SparkSession, target: JdbcTarget) -> _Connection:
    return _Connection(spark, target)


def _execute(conn: Any, sql: str, params: Iterable[Any] = ()) -> int:
    stmt = conn.prepareStatement(sql)
    try:
        for i, value in enumerate(params, start=1):
            stmt.setObject(i, value)
        if stmt.execute():
            return -1
        return int(stmt.getUpdateCount())
    finally:
        stmt.close()


def _jdbc_value(spark: SparkSession, value: Any) -> Any:
    """A partition value as JDBC expects it: dates and timestamps as java.sql types."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    if isinstance(value, dt.datetime):
        return jvm.java.sql.Timestamp.valueOf(value.strftime("%Y-%m-%d %H:%M:%S.%f"))
    if isinstance(value, dt.date):
        return jvm.java.sql.Date.valueOf(value.isoformat())
    return value


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        if line.strip() and "Traceback" not in line:
            return line.strip()[:300]
    return type(exc).__name__
