"""Data expectations a job declares beside its code, each with what to do when rows fail it.

    CHECKS = Expectations(
        not_null("subject", action="quarantine"),
        in_range("count", min=1, action="quarantine"),
        unique(("tenant", "device", "metric", "window_start"), action="fail"),
        fresh("received_at", max_age=dt.timedelta(days=2), action="warn"),
        min_rows(1, action="warn"),
    )
    checked = CHECKS.apply(ctx, frame)   # in the step; returns the rows to commit

`frame` is a Spark DataFrame, or a pyarrow Table of rows the job built in the driver
(bill lines, say): those are judged in Arrow, without a Spark job, by the same rules.

Actions: `warn` logs the count and keeps the rows; `quarantine` moves the failing rows,
each with the rule's name, into `quarantine/expectations` and keeps the rest; `fail`
fails the iteration (`ExpectationFailed`), so nothing of the partition is committed.
Row rules (`not_null`, `in_range`, `unique`) may take any action; frame rules
(`fresh`, `min_rows`) judge the whole partition, so they warn or fail.

Every rule's count goes to the iteration's log, one line per rule and one JSON line
(`expectations {...}`) for machines, whatever the outcome: the run's record says
what was checked, not only what went wrong.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from edgebatch.framework.errors import FrameworkError, JobDefinitionError
from edgebatch.warehouse.tables import declare

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame

    from edgebatch.framework.context import IterationContext

Action = Literal["warn", "quarantine", "fail"]
_ACTIONS = ("warn", "quarantine", "fail")

QUARANTINE = declare(
    "quarantine/expectations",
    """
    job STRING NOT NULL, partition STRING NOT NULL, rule STRING NOT NULL,
    row STRING NOT NULL, run_id BIGINT, quarantined_at TIMESTAMP NOT NULL
    """,
    partition_by=("job",),
    keys=("job", "partition", "rule", "row"),
    comment="Rows a job's expectations quarantined, with the rule they failed (as JSON).",
)


class ExpectationFailed(FrameworkError):
    """A `fail` expectation found failing rows: the iteration commits nothing."""


@dataclasses.dataclass(frozen=True)
class Rule:
    """One expectation. `kind` is row (judges each row) or frame (judges the partition)."""

    name: str
    action: Action
    check: str  # not_null, range, unique, fresh, min_rows
    columns: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    max_age: dt.timedelta | None = None
    floor: int = 0

    @property
    def per_row(self) -> bool:
        return self.check in ("not_null", "range", "unique")

    def __post_init__(self) -> None:
        if self.action not in _ACTIONS:
            raise JobDefinitionError(
                f"expectation {self.name!r}: action must be one of {', '.join(_ACTIONS)}, "
                f"got {self.action!r}"
            )
        if self.action == "quarantine" and not self.per_row:
            raise JobDefinitionError(
                f"expectation {self.name!r} judges the whole partition, so it can warn or "
                "fail but not quarantine rows"
            )

    def failing(self) -> Column:
        """True for a row that fails this row rule (never null)."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        if self.check == "not_null":
            return F.col(self.columns[0]).isNull()
        if self.check == "range":
            value = F.col(self.columns[0])
            bad = value.isNull()
            if self.low is not None:
                bad = bad | (value < F.lit(self.low))
            if self.high is not None:
                bad = bad | (value > F.lit(self.high))
            return F.coalesce(bad, F.lit(True))
        if self.check == "unique":
            return F.count(F.lit(1)).over(Window.partitionBy(*self.columns)) > 1
        raise AssertionError(self.check)  # pragma: no cover - frame rules have no row test

    def failing_in(self, table: pa.Table) -> pa.BooleanArray:
        """`failing()` over an Arrow table: True for each row that fails (never null)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.check == "not_null":
            return pc.is_null(table.column(self.columns[0])).combine_chunks()
        if self.check == "range":
            value = table.column(self.columns[0]).combine_chunks()
            bad = pc.is_null(value)
            for bound, outside in ((self.low, pc.less), (self.high, pc.greater)):
                if bound is not None:
                    bad = pc.or_(bad, pc.fill_null(outside(value, pa.scalar(bound)), True))
            return bad
        if self.check == "unique":
            return _repeated(table.select(list(self.columns)))
        raise AssertionError(self.check)  # pragma: no cover - frame rules have no row test


def _repeated(keys: pa.Table) -> pa.BooleanArray:
    """True for each row whose key (all of `keys`' columns, nulls equal to nulls, as
    Spark's window partitions them) some other row has too."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = keys.num_rows
    if n < 2:
        return pa.array([False] * n, pa.bool_())
    order = pc.sort_indices(keys, [(c, "ascending") for c in keys.column_names])
    ordered = keys.take(order)
    same = pa.array([True] * (n - 1), pa.bool_())  # row i+1 has row i's key
    for name in ordered.column_names:
        column = ordered.column(name).combine_chunks()
        a, b = column[:-1], column[1:]
        equal = pc.or_(pc.fill_null(pc.equal(a, b), False), pc.and_(pc.is_null(a), pc.is_null(b)))
        same = pc.and_(same, equal)
    false = pa.array([False], pa.bool_())
    repeated = pc.or_(pa.concat_arrays([false, same]), pa.concat_arrays([same, false]))
    # back from sorted order to the rows' own order
    return repeated.take(pc.sort_indices(order))


def not_null(column: str, *, action: Action = "fail", name: str = "") -> Rule:
    return Rule(name or f"not_null:{column}", action, "not_null", (column,))


def in_range(
    column: str,
    *,
    min: float | None = None,
    max: float | None = None,
    action: Action = "fail",
    name: str = "",
) -> Rule:
    """Values from `min` to `max`, both included; a null fails too."""
    if min is None and max is None:
        raise JobDefinitionError(f"in_range({column!r}) needs min, max or both")
    return Rule(name or f"range:{column}", action, "range", (column,), low=min, high=max)


def unique(columns: Sequence[str], *, action: Action = "fail", name: str = "") -> Rule:
    """No two rows share these columns' values; every row of a repeated key fails."""
    cols = tuple(columns)
    return Rule(name or f"unique:{','.join(cols)}", action, "unique", cols)


def fresh(column: str, *, max_age: dt.timedelta, action: Action = "warn", name: str = "") -> Rule:
    """The partition's newest `column` is at most `max_age` older than the partition's end
    (or now, for a partition still filling up). An empty partition is not fresh."""
    return Rule(name or f"fresh:{column}", action, "fresh", (column,), max_age=max_age)


def min_rows(floor: int, *, action: Action = "fail", name: str = "") -> Rule:
    """At least `floor` rows in the partition."""
    return Rule(name or f"min_rows:{floor}", action, "min_rows", floor=floor)


@dataclasses.dataclass(frozen=True)
class Checked:
    """The rows to commit (of the kind judged: a DataFrame or an Arrow table) and how
    many rows failed each rule."""

    frame: Any
    failed: dict[str, int]
    quarantined: int


@dataclasses.dataclass(frozen=True)
class Expectations:
    """A job's expectations, applied in its step with `apply(ctx, frame)`."""

    rules: tuple[Rule, ...]

    def __init__(self, *rules: Rule) -> None:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise JobDefinitionError(f"expectation names must be unique: {names}")
        object.__setattr__(self, "rules", tuple(rules))

    def apply(
        self, ctx: IterationContext, frame: Any, *, now: dt.datetime | None = None
    ) -> Checked:
        """Judge `frame` (one partition's output: a DataFrame, or an Arrow table built in
        the driver), act on each rule, return what to commit, of the same kind."""
        if _is_arrow(frame):
            return self._apply_arrow(ctx, frame, now)
        from pyspark.sql import functions as F

        flags = self._flag_columns
        flagged = frame.select(
            "*", *[r.failing().alias(flags[r.name]) for r in self.rules if r.per_row]
        )
        aggregates = [F.count(F.lit(1)).alias("_rows")]
        aggregates += [F.sum(F.col(c).cast("long")).alias(c) for c in flags.values()]
        aggregates += [
            F.max(F.col(r.columns[0])).alias(f"_newest_{i}")
            for i, r in enumerate(self.rules)
            if r.check == "fresh"
        ]
        summary = flagged.agg(*aggregates).first()
        assert summary is not None  # a global aggregate always has one row
        failed = self._judge(
            ctx,
            summary["_rows"],
            {name: int(summary[flag] or 0) for name, flag in flags.items()},
            {i: summary[f"_newest_{i}"] for i, r in enumerate(self.rules) if r.check == "fresh"},
            now,
        )
        quarantine = self._quarantining
        if not quarantine:
            # Nothing to take out: commit the frame as it came, not the flagged plan (a
            # uniqueness rule's window would be computed again by the write).
            return Checked(frame, failed, 0)
        quarantined = self._quarantine(ctx, flagged, frame.columns, quarantine, flags, failed)
        keep = F.lit(True)
        for rule in quarantine:
            keep = keep & ~F.col(flags[rule.name])
        return Checked(flagged.where(keep).select(*frame.columns), failed, quarantined)

    @property
    def _flag_columns(self) -> dict[str, str]:
        """Each row rule's column in a flagged frame: True where the row fails it."""
        return {r.name: f"_fail_{i}" for i, r in enumerate(self.rules) if r.per_row}

    @property
    def _quarantining(self) -> list[Rule]:
        return [r for r in self.rules if r.action == "quarantine"]

    def _apply_arrow(
        self, ctx: IterationContext, table: pa.Table, now: dt.datetime | None
    ) -> Checked:
        """The same judgement over rows held in the driver, in Arrow: no Spark job (a
        year's bill lines took three, about a second, for what is a few array scans)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        flags = {r.name: r.failing_in(table) for r in self.rules if r.per_row}
        newest = {}
        for i, rule in enumerate(self.rules):
            if rule.check == "fresh":
                value = pc.max(table.column(rule.columns[0])).as_py()
                if isinstance(value, dt.datetime) and value.tzinfo is None:
                    value = value.replace(tzinfo=dt.UTC)  # Arrow's naive timestamps are UTC
                newest[i] = value
        failed = self._judge(
            ctx,
            table.num_rows,
            {name: int(pc.sum(flag).as_py() or 0) for name, flag in flags.items()},
            newest,
            now,
        )
        quarantine = self._quarantining
        if not quarantine:
            return Checked(table, failed, 0)
        # The quarantined rows are written as the DataFrame path writes them (Spark's JSON).
        columns = table.column_names
        names = self._flag_columns
        flagged = table
        for name, flag in flags.items():
            flagged = flagged.append_column(names[name], flag)
        spark_flagged = ctx.spark.createDataFrame(flagged)
        quarantined = self._quarantine(ctx, spark_flagged, columns, quarantine, names, failed)
        drop = pa.array([False] * table.num_rows, pa.bool_())
        for rule in quarantine:
            drop = pc.or_(drop, flags[rule.name])
        return Checked(table.filter(pc.invert(drop)), failed, quarantined)

    def _judge(
        self,
        ctx: IterationContext,
        rows: int,
        row_failures: dict[str, int],
        newest: dict[int, Any],
        now: dt.datetime | None,
    ) -> dict[str, int]:
        """Each rule's failing count, logged; raises if a `fail` rule has any."""
        failed: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            if rule.per_row:
                failed[rule.name] = row_failures[rule.name]
            elif rule.check == "min_rows":
                failed[rule.name] = 0 if rows >= rule.floor else 1
            else:
                failed[rule.name] = self._stale(ctx, rule, newest[i], now)
        self._record(ctx, rows, failed)
        broken = [r.name for r in self.rules if r.action == "fail" and failed[r.name]]
        if broken:
            raise ExpectationFailed(
                f"job {ctx.job.name!r}, partition {ctx.partition}: expectation(s) "
                + ", ".join(f"{n} ({failed[n]} failing)" for n in broken)
                + " declared to fail the iteration; nothing was committed"
            )
        return failed

    def _stale(self, ctx: IterationContext, rule: Rule, newest, now: dt.datetime | None) -> int:
        if newest is None:
            return 1
        now = now or dt.datetime.now(dt.UTC)
        end_text = ctx.bounds.get("end")
        end = dt.datetime.fromisoformat(end_text) if end_text else now
        if end.tzinfo is None:
            end = end.replace(tzinfo=dt.UTC)
        if newest.tzinfo is None:  # Spark hands back naive local time for TIMESTAMP
            newest = newest.astimezone(dt.UTC)
        assert rule.max_age is not None
        return int(min(end, now) - newest > rule.max_age)

    def _record(self, ctx: IterationContext, rows: int, failed: dict[str, int]) -> None:
        for rule in self.rules:
            count = failed[rule.name]
            level = ctx.log.warning if count and rule.action != "fail" else ctx.log.info
            level("expectation %s (%s): %d failing of %d rows", rule.name, rule.action, count, rows)
        ctx.log.info(
            "expectations %s",
            json.dumps(
                {
                    "rows": rows,
                    "rules": {
                        r.name: {"action": r.action, "failed": failed[r.name]} for r in self.rules
                    },
                },
                sort_keys=True,
            ),
        )

    def _quarantine(
        self,
        ctx: IterationContext,
        flagged: DataFrame,
        columns: list[str],
        rules: list[Rule],
        flags: dict[str, str],
        failed: dict[str, int],
    ) -> int:
        """Replace this job's and partition's quarantined rows with the failing ones now."""
        from pyspark.sql import functions as F

        from edgebatch.warehouse.tables import replace_partition

        parts = [
            flagged.where(F.col(flags[r.name])).select(
                F.lit(r.name).alias("rule"), F.to_json(F.struct(*columns)).alias("row")
            )
            for r in rules
        ]
        if not parts:
            return 0
        where = f"job = {_sql_str(ctx.job.name)} AND partition = {_sql_str(ctx.partition)}"
        union = parts[0]
        for part in parts[1:]:
            union = union.unionByName(part)
        out = union.select(
            F.lit(ctx.job.name).alias("job"),
            F.lit(ctx.partition).alias("partition"),
            "rule",
            "row",
            F.lit(ctx.run_id).cast("long").alias("run_id"),
            F.current_timestamp().alias("quarantined_at"),
        )
        replace_partition(ctx.spark, ctx.root, QUARANTINE, out, where)
        return sum(failed[r.name] for r in rules)


def _is_arrow(frame: Any) -> bool:
    """A pyarrow Table, told apart without importing pyarrow for DataFrames."""
    return type(frame).__module__.startswith("pyarrow") and hasattr(frame, "column_names")


def _sql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
