"""What a step sees of the run it belongs to: Spark, its partition, its inputs, its log.

A step reads inputs by table name and hands back frames; committing them idempotently
for the partition (replaceWhere, MERGE) is done here, once, so no job can forget it.
Log lines written through `ctx.log`, or through any `logging` logger from the thread
running the iteration, land in the iteration's log in the state store.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from edgebatch.framework.errors import OutputSchemaError, StepFailed
from edgebatch.warehouse.errors import TableError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession

    from edgebatch.framework.definitions import Job
    from edgebatch.framework.state import StateStore
    from edgebatch.settings import Settings
    from edgebatch.warehouse.uri import WarehouseRoot

T = TypeVar("T")
_current = threading.local()
# Delta detects conflicting commits optimistically; a partition's replaceWhere or MERGE is
# idempotent, so meeting a concurrent commit just means doing it again.
_CONFLICT_RETRIES = 4
_counts_lock = threading.Lock()


def _is_conflict(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return "Concurrent" in type(exc).__name__ or "DELTA_CONCURRENT" in text


@dataclasses.dataclass
class IterationContext:
    """One attempt of one partition of one run."""

    spark: SparkSession
    settings: Settings
    root: WarehouseRoot
    job: Job
    run_id: int
    iteration_id: int
    partition: str
    attempt: int
    params: Mapping[str, Any]
    store: StateStore
    rows_out: int = 0
    rows_in: int | None = None
    # Every partition this iteration covers, in order (more than one for a job with a
    # `span`); `partition` is then the first of them.
    partitions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.log = logging.LoggerAdapter(
            logging.getLogger(f"edgebatch.job.{self.job.name}"),
            {"partition": self.partition},
        )

    @property
    def partition_keys(self) -> tuple[str, ...]:
        """Every partition this iteration covers, oldest first (one, unless the job spans)."""
        return self.partitions or (self.partition,)

    @property
    def bounds(self) -> dict[str, str]:
        """`partition`, and for time partitions `start` (included) and `end` (excluded).

        Over a span of partitions: `start` of the first, `end` of the last, and
        `partition` as `first..last`.
        """
        keys = self.partition_keys
        first = self.job.partitioning.bounds(keys[0])
        if len(keys) == 1:
            return first
        last = self.job.partitioning.bounds(keys[-1])
        spanned = first | {"partition": f"{keys[0]}..{keys[-1]}"}
        if "end" in last:
            spanned["end"] = last["end"]
        return spanned

    def predicate(self, column: str | None = None) -> str:
        """SQL condition for this iteration's rows (every partition of its span), on the
        partition column or `column`."""
        part = self.job.partitioning
        if column and column != part.column:
            part = dataclasses.replace(part, column=column)
        keys = self.partition_keys
        if len(keys) == 1:
            return part.predicate(keys[0])
        return " OR ".join(f"({part.predicate(k)})" for k in keys)

    def table(self, name: str) -> DataFrame:
        """An input table by its registry name (declared in `warehouse.catalog` or a job).

        Silver and gold come through the consent gate (`framework.consent`): only the
        rows of subjects who consented, and only from tables registered with the gate.
        """
        from edgebatch.framework.consent import is_gated, read_gated
        from edgebatch.warehouse.tables import REGISTRY, read_table

        if is_gated(name):
            return read_gated(self.spark, self.root, name)
        return read_table(self.spark, self.root, REGISTRY.get(name))

    def aggregate(
        self,
        name: str,
        by: Sequence[str],
        aggregates: Sequence[Column],
        where: Sequence[Column | str] = (),
    ) -> DataFrame:
        """`name`'s rows matching `where`, grouped by `by` with `aggregates`, through the
        consent gate: for a subject-bearing table the subject's columns join `by` and
        only consented subjects' groups come back.

        Equal to `ctx.table(name).where(...).groupBy(by + subject).agg(...)`, with the
        gate's join on the groups instead of on every row: the way to summarise a large
        silver table (`framework.consent.aggregate_gated`).
        """
        from edgebatch.framework.consent import aggregate_gated, is_gated

        if is_gated(name):
            return aggregate_gated(self.spark, self.root, name, by, aggregates, where)
        return self._grouped(name, by, aggregates, where)

    def aggregate_to_arrow(
        self,
        name: str,
        by: Sequence[str],
        aggregates: Sequence[Column],
        where: Sequence[Column | str] = (),
    ) -> pa.Table:
        """`aggregate(...)`'s groups in the driver, as an Arrow table: for a job that works
        on the groups in Python. The naming of silver's keys and the consent gate run on
        the collected groups, in Arrow (`framework.consent.aggregate_gated_to_arrow`)."""
        from edgebatch.framework.consent import aggregate_gated_to_arrow, is_gated

        if is_gated(name):
            return aggregate_gated_to_arrow(self.spark, self.root, name, by, aggregates, where)
        return self._grouped(name, by, aggregates, where).toArrow()

    def _grouped(
        self,
        name: str,
        by: Sequence[str],
        aggregates: Sequence[Column],
        where: Sequence[Column | str],
    ) -> DataFrame:
        """An ungated table's rows matching `where`, grouped."""
        from edgebatch.warehouse.tables import REGISTRY, read_table

        df = read_table(self.spark, self.root, REGISTRY.get(name))
        for condition in where:
            df = df.where(condition)
        return df.groupBy(*by).agg(*aggregates)

    def in_thread(self, fn: Callable[..., T]) -> Callable[..., T]:
        """`fn` made to run on another thread as part of this iteration: its Spark jobs in
        the iteration's job group (cancelled with it), its log lines in its log.

        For work that mostly waits (small reads, Delta commits) beside a large scan."""
        from pyspark.util import inheritable_thread_target

        target = getattr(_current, "target", None)

        def run(*args: Any, **kwargs: Any) -> T:
            _current.target = target
            try:
                return fn(*args, **kwargs)
            finally:
                _current.target = None

        return inheritable_thread_target(self.spark)(run)

    def count_in(self, rows: int) -> None:
        """Record how many input rows the iteration read (shown beside rows written)."""
        self.rows_in = (self.rows_in or 0) + rows

    def write(
        self, df: DataFrame, table: str | None = None, *, how: str | None = None
    ) -> int | None:
        """Commit `df` to an output table for this partition, as the job's `write` says
        (or `how`, for this table: an output that only gathers new keys says "merge").

        Idempotent: `replace` overwrites exactly this partition's rows, `merge` inserts
        only keys the table lacks. Returns the rows Delta reports written, if it does.
        """
        from edgebatch.warehouse import tables

        spec = tables.REGISTRY.get(self._output(table))
        how = how or self.job.write
        if how not in ("replace", "merge", "append"):
            raise StepFailed(f"job {self.job.name!r}: no write mode {how!r}")
        tag = f"edgebatch:{self.job.name}:run={self.run_id}:it={self.iteration_id}:a={self.attempt}"
        for conflict in range(_CONFLICT_RETRIES + 1):
            observation, observed = self._observe(df, how)
            try:
                self._commit(spec, observed, tag, how)
                break
            except Exception as exc:
                if conflict == _CONFLICT_RETRIES or not _is_conflict(exc):
                    raise
                pause = random.uniform(0.1, 0.5) * (conflict + 1)
                self.log.warning(
                    "commit to %s met a concurrent commit (%s); trying again in %.1f s",
                    spec.name,
                    type(exc).__name__,
                    pause,
                )
                time.sleep(pause)
        if how == "merge":
            return None
        written = None if observation is None else tables.observed_count(observation)
        if written is None:  # not seen by the observation: ask Delta's history
            metrics = tables.commit_metrics(self.spark, self.root, spec, tag) or {}
            written = int(metrics.get("numOutputRows", 0))
        with _counts_lock:  # writes may run side by side (`in_thread`)
            self.rows_out += written
        return written

    def _observe(self, df: DataFrame, how: str) -> tuple[Any, DataFrame]:
        """Count the rows as the write passes them (a MERGE reports its own)."""
        if how == "merge":
            return None, df
        from edgebatch.warehouse.tables import counted

        return counted(df, f"edgebatch-rows-{uuid.uuid4().hex}")

    def _commit(self, spec, df: DataFrame, tag: str, how: str) -> None:
        from edgebatch.warehouse import tables

        try:
            if how == "replace":
                unpartitioned = self.job.partitioning.column is None
                where = None if unpartitioned else self.predicate()
                if not unpartitioned and self.job.partitioning.column not in spec.columns():
                    raise OutputSchemaError(
                        f"job {self.job.name!r}: output {spec.name!r} has no column "
                        f"{self.job.partitioning.column!r} to replace partition {self.partition}"
                    )
                tables.replace_partition(self.spark, self.root, spec, df, where, user_metadata=tag)
            elif how == "merge":
                tables.merge_new_rows(self.spark, self.root, spec, df)
            else:
                tables.append(self.spark, self.root, spec, df, user_metadata=tag)
        except TableError as exc:
            raise OutputSchemaError(
                f"job {self.job.name!r}, partition {self.partition}: {exc}"
            ) from None
        except Exception as exc:  # Delta's own checks arrive as Spark errors
            if "REPLACE_WHERE_MISMATCH" in str(exc) or "schema mismatch" in str(exc).lower():
                raise OutputSchemaError(
                    f"job {self.job.name!r}, partition {self.partition}: output {spec.name!r} "
                    f"refused the frame: {str(exc).splitlines()[0]}"
                ) from None
            raise

    def _output(self, table: str | None) -> str:
        outputs = self.job.outputs
        if table is None:
            if len(outputs) != 1:
                raise StepFailed(
                    f"job {self.job.name!r} has {len(outputs)} outputs; "
                    "name the table: ctx.write(df, table=...) or return {table: df}"
                )
            return outputs[0]
        if table not in outputs:
            raise OutputSchemaError(
                f"job {self.job.name!r} writes {table!r}, which it does not declare as output "
                f"(outputs: {', '.join(outputs) or 'none'})"
            )
        return table


class IterationLogHandler(logging.Handler):
    """Routes log records from a thread running an iteration to that iteration's log."""

    def emit(self, record: logging.LogRecord) -> None:
        target = getattr(_current, "target", None)
        if target is None:
            return
        store, run_id, iteration_id = target
        try:
            store.append_log(
                run_id,
                self.format(record),
                level=record.levelname,
                logger=record.name,
                iteration_id=iteration_id,
            )
        except Exception:  # a log line must never fail the iteration
            self.handleError(record)


_handler_lock = threading.Lock()
_handler: IterationLogHandler | None = None


def route_logs(store: StateStore | None, run_id: int = 0, iteration_id: int | None = None) -> None:
    """Send this thread's log records to an iteration's log (None: stop sending them)."""
    global _handler
    with _handler_lock:
        if _handler is None:
            _handler = IterationLogHandler(level=logging.INFO)
            _handler.setFormatter(logging.Formatter("%(message)s"))
            for name in ("edgebatch.job", "edgebatch.jobs", "edgebatch.framework.name_keys"):
                lg = logging.getLogger(name)
                lg.addHandler(_handler)
                lg.setLevel(min(lg.getEffectiveLevel(), logging.INFO))
    _current.target = None if store is None else (store, run_id, iteration_id)
