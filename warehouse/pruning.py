"""Partition predicates a MERGE can prune the table's files on, and a guard that the rows
written really fall inside them.

Delta prunes a MERGE's reads of the table only on conditions over the table's own
columns, given as literals: `t.tenant = 'a' AND t.date IN (...)`. A condition joining
the table to the source (`t.date = s.date`) prunes nothing. So a load that knows in
advance which partitions its rows go to (`landing.keyscan`) names them, and the guard
makes a load whose rows stray outside them fail before its commit instead of inserting
a key the MERGE did not look for.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from functools import reduce
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# In the message of the error the guard raises, so a caller can tell it from any other.
GUARD_MARK = "edgebatch-partition-guard"


def within(parts: Sequence[str], values: Sequence[tuple[Any, ...]], prefix: str = "") -> Column:
    """Partition columns equal to one of `values`, as literals Delta prunes files on:
    grouped by all but the last column, `(tenant = 'a' AND date IN (...)) OR ...`.

    Written as one SQL predicate, parsed by Spark in one call: built literal by literal
    it took a Py4J round trip per value (about 45 ms for a load's 70 dates, twice per
    MERGE). Values SQL text cannot carry as plainly (a quote, a backslash, another type)
    take that slower way."""
    from pyspark.sql import functions as F

    if not values:
        return F.lit(False)
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for value in values:
        groups[tuple(value[:-1])].append(value[-1])
    try:
        return F.expr(_sql(parts, groups, prefix))
    except _NotPlain:
        pass
    last = F.col(f"{prefix}`{parts[-1]}`")
    ors = []
    for head, tails in groups.items():
        term = last.isin(tails)
        for name, v in zip(parts[:-1], head, strict=True):
            term = (F.col(f"{prefix}`{name}`") == F.lit(v)) & term
        ors.append(term)
    return reduce(lambda a, b: a | b, ors)


class _NotPlain(ValueError):
    pass


def _literal(value: Any) -> str:
    # Exact types only: a bool is an int and a datetime a date, and neither reads back so.
    if type(value) is str and "'" not in value and "\\" not in value:
        return f"'{value}'"
    if type(value) is dt.date:
        return f"DATE'{value.isoformat()}'"
    if type(value) is int:
        return str(value)
    raise _NotPlain(value)


def _sql(parts: Sequence[str], groups: dict[tuple[Any, ...], list[Any]], prefix: str) -> str:
    if any("`" in p for p in parts):
        raise _NotPlain(parts)
    ors = []
    for head, tails in groups.items():
        terms = [f"{prefix}`{n}` = {_literal(v)}" for n, v in zip(parts[:-1], head, strict=True)]
        terms.append(f"{prefix}`{parts[-1]}` IN ({', '.join(_literal(v) for v in tails)})")
        ors.append("(" + " AND ".join(terms) + ")")
    return " OR ".join(ors)


def guarded(df: DataFrame, parts: Sequence[str], values: Sequence[tuple[Any, ...]]) -> DataFrame:
    """`df` whose last partition column fails the query when a row's partition is not one
    of `values`, checked on a column the write needs (so never pruned away): by `within`
    for a few tenants (a comparison or two and a hash-set lookup per row), else by one
    lookup of the row's partition as a text label."""
    from pyspark.sql import functions as F

    row = F.concat_ws(_SEP, *(F.col(f"`{p}`").cast("string") for p in parts))
    if len({tuple(v[:-1]) for v in values}) <= _FEW:
        ok = within(parts, values)
    else:
        ok = row.isin([_SEP.join(str(v) for v in value) for value in values])
    message = F.concat(F.lit(f"{GUARD_MARK}: a row's partition was not announced: "), row)
    last = parts[-1]
    return df.withColumn(last, F.when(ok, F.col(f"`{last}`")).otherwise(F.raise_error(message)))


_FEW = 8
# Between a partition's values in the guard's labels; a null value drops out of Spark's
# label, so that row fails the guard (it would land in no announced partition anyway).
_SEP = "\x1f"
